"""The run's model without its weights, LoRA applied as the run applies it, and the parameter counts.

``base_model`` runs the task's ``build_model`` (so heads, label counts, resized embeddings and sentence-
transformers modules are the run's) while every ``from_pretrained`` builds its model from the config under
accelerate's ``init_empty_weights``: parameters live on the meta device, nothing is read from the weight files and no
memory is used. LoRA is then applied with PEFT exactly as the driver (``models/peft.apply_lora``) or the TRL trainer
(``lora_config`` minus the output layer for trainers that refuse it) would, so the trainable count is PEFT's own.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Keywords transformers' from_pretrained takes that only matter when weights load (or pick the files to load).
_LOAD_ONLY = ("quantization_config", "device_map", "ignore_mismatched_sizes", "low_cpu_mem_usage", "max_memory")


@contextlib.contextmanager
def weightless_loading() -> Iterator[None]:
    """Within: ``PreTrainedModel.from_pretrained`` builds the model from its config on the meta device.

    The config is read as ``from_pretrained`` reads it (keywords such as ``num_labels`` set on it, GGUF metadata,
    revision, remote code), then ``_from_config`` builds the model under ``accelerate.init_empty_weights`` and ties
    its weights as loading would. ``nn.Module.to`` leaves meta modules where they are (sentence-transformers moves its
    model to a device when built). Held under the SDK's load lock: the patch is process-wide while it lasts.
    """
    import torch
    from accelerate import init_empty_weights
    from transformers import PretrainedConfig, PreTrainedModel

    from trainforge.sdk import _LOAD_LOCK

    original_from_pretrained = PreTrainedModel.__dict__["from_pretrained"]
    original_to = torch.nn.Module.to

    def from_pretrained(cls, name, *args, config=None, **kwargs):
        if not isinstance(config, PretrainedConfig):
            config, kwargs = cls.config_class.from_pretrained(config or name, return_unused_kwargs=True, **kwargs)
        for key in list(kwargs):  # keywords naming config attributes set them, as from_pretrained does
            if key not in ("dtype", "torch_dtype", "attn_implementation") and hasattr(config, key):
                setattr(config, key, kwargs.pop(key))
        options = {k: kwargs[k] for k in ("dtype", "attn_implementation") if kwargs.get(k) is not None}
        with init_empty_weights():
            model = cls._from_config(config, **options)
        model.tie_weights()
        return model

    def to(self, *args, **kwargs):
        if any(p.is_meta for p in self.parameters()):
            return self
        return original_to(self, *args, **kwargs)

    with _LOAD_LOCK:
        PreTrainedModel.from_pretrained = classmethod(from_pretrained)
        torch.nn.Module.to = to  # type: ignore[method-assign]
        try:
            yield
        finally:
            PreTrainedModel.from_pretrained = original_from_pretrained
            torch.nn.Module.to = original_to  # type: ignore[method-assign]


def base_model(ctx: Any) -> Any:
    """The task's model (``spec.build_model``) with every parameter on the meta device (no weights read)."""
    with weightless_loading():
        model = ctx.spec.build_model(ctx)
    tie = getattr(model, "tie_weights", None)
    if callable(tie):  # resizing embeddings on meta unties them; loading ties them again
        tie()
    return model


def with_lora(ctx: Any, model: Any) -> Any:
    """A copy of ``model`` with the run's LoRA adapter, as the driver or the task's TRL trainer adds it.

    Returns ``model`` itself when ``peft.enabled`` is off or the task trains no adapter.
    """
    config, spec = ctx.config, ctx.spec
    if not config.peft.enabled or spec.lora is None:
        return model
    from peft import get_peft_model

    from trainforge.models.config_checks import _FUSED_OUTPUT_TRAINERS
    from trainforge.models.peft import lora_config

    new_tokens: list[int] = []
    if spec.lora_by_trainer:
        from trainforge.tasks.llm._tokenizer import added_token_ids

        new_tokens = added_token_ids(ctx)
    peft_config = lora_config(config, spec.lora, new_tokens)
    if spec.lora_by_trainer and spec.name in _FUSED_OUTPUT_TRAINERS:
        from trainforge.tasks.llm._models import without_output_layer

        peft_config = without_output_layer(peft_config, model)
    return get_peft_model(copy.deepcopy(model), peft_config)


@dataclass(frozen=True)
class Counts:
    """Parameter counts (``model.num_parameters()`` counts each shared tensor once)."""

    total: int
    trainable: int


def counts(model: Any) -> Counts:
    """Total and trainable parameters, each shared (tied) tensor once, as ``num_parameters``/PEFT count them.

    PEFT's ``get_nb_trainable_parameters`` (what ``print_trainable_parameters`` prints) counts the same way for an
    adapter model; a plain model's trainable count is every parameter (the Trainer trains them all).
    """
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
    else:
        unique = {id(p): p for p in model.parameters()}.values()
        total = sum(p.numel() for p in unique)
        trainable = sum(p.numel() for p in unique if p.requires_grad)
    return Counts(int(total), int(trainable))


def quantizable_parameters(model: Any) -> int:
    """Elements of the weights bitsandbytes would store in 4/8 bits: every ``nn.Linear`` weight but the output layer's.

    transformers keeps the output embeddings (``lm_head``) and a new task head in the compute dtype
    (``get_keys_to_not_convert``); LoRA's own A/B matrices are never quantized.
    """
    import torch

    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    skipped = {id(output.weight)} if output is not None and hasattr(output, "weight") else set()
    seen: set[int] = set()
    total = 0
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or "lora_" in name or name.rsplit(".", 1)[-1] in _HEAD_NAMES:
            continue
        weight = module.weight
        if id(weight) in skipped or id(weight) in seen:
            continue
        seen.add(id(weight))
        total += weight.numel()
    return total


_HEAD_NAMES = ("classifier", "score", "qa_outputs", "lm_head")
