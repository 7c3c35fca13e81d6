"""LoRA for any transformers task, read from the shared ``peft:`` section.

One policy for every task: ``lora_config`` builds PEFT's ``LoraConfig`` from the section; ``apply_lora`` wraps a
model for tasks trained by a plain ``Trainer`` (TRL trainers take the config instead); ``merge_for_saving`` turns the
trained adapter into a plain model for tasks whose run folder must load with plain transformers, keeping the
adapter beside it. QLoRA (``peft.quantization``) needs CUDA and bitsandbytes: ``check_peft`` says so at validation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

ADAPTER_DIR = "adapter"  # the trained LoRA adapter of a run whose model folder holds the merged model
# The new heads PEFT trains in full (modules_to_save) per task type. "all-linear" would also put LoRA on them, which
# PEFT refuses ("modules_to_save cannot be applied to modules of type lora.Linear"); it spares them for SEQ_CLS only.
TASK_HEADS = {"SEQ_CLS": ["classifier", "score"], "TOKEN_CLS": ["classifier", "score"], "QUESTION_ANS": ["qa_outputs"]}


def lora_config(
    config: Any, task_type: str, new_token_ids: list[int] | None = None, exclude: list[str] | None = None
) -> Any:
    """The run's ``peft.LoraConfig``, or None when ``peft.enabled`` is off.

    Args:
        config: The validated ``RunConfig``.
        task_type: PEFT's task type (``CAUSAL_LM``, ``SEQ_CLS``, ``SEQ_2_SEQ_LM``, ``TOKEN_CLS``,
            ``QUESTION_ANS``); it makes PEFT train (and save) the task's new head with the adapter.
        new_token_ids: Token ids whose embedding rows train too (tokens a chat template added).
        exclude: Full names of modules LoRA leaves alone (those the task froze, ``frozen_modules``).
    """
    section = config.peft
    if not section.enabled:
        return None
    from peft import LoraConfig

    extra: dict[str, Any] = {"trainable_token_indices": new_token_ids} if new_token_ids else {}
    excluded = list(exclude or [])
    if section.target_modules == "all-linear" and task_type in TASK_HEADS:
        excluded += TASK_HEADS[task_type]
    if excluded:
        extra["exclude_modules"] = excluded
    return LoraConfig(
        r=section.r,
        lora_alpha=section.alpha,
        lora_dropout=section.dropout,
        bias="none",
        target_modules=section.target_modules,
        task_type=task_type,
        **extra,
    )


def apply_lora(ctx: Any, model: Any, task_type: str) -> Any:
    """``model`` wrapped with the run's LoRA adapter (only adapter and head train), or unchanged without peft.

    Modules whose parameters the task froze in ``build_model`` get no adapter (``frozen_modules``).

    Raises:
        ValueError: From PEFT when ``peft.target_modules`` names no module of the model (validate checks the
            names against the model's config first, so a config that passed validation does not get here).
    """
    peft_config = lora_config(ctx.config, task_type, exclude=frozen_modules(model))
    if peft_config is None:
        return model
    from peft import get_peft_model

    return get_peft_model(model, peft_config)


def frozen_modules(model: Any) -> list[str]:
    """Names of the modules whose every parameter the task froze before LoRA (a VLM's vision tower, say).

    LoRA leaves them alone: an adapter there would only be frozen too, computed for nothing. Models with nothing
    frozen (every task but those that freeze a part in ``build_model``) give an empty list: PEFT's choice stands.
    """
    frozen = []
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if name and own and not any(p.requires_grad for p in own):
            frozen.append(name)
    return frozen


def merge_for_saving(trainer: Any, run_dir: Path) -> Path | None:
    """Save the trainer's adapter in ``run_dir/adapter`` and swap the trainer's model for the merged one.

    After this, ``trainer.save_model(run_dir)`` writes a plain transformers model (the adapter's update added to
    the base weights; PEFT's ``merge_and_unload``), which ``pipeline(..., model=run_dir)`` loads with no peft.

    Returns:
        The adapter folder, or None when the trainer's model is not a PEFT model.
    """
    from peft import PeftModel

    model = trainer.model
    if not isinstance(model, PeftModel):
        return None
    folder = run_dir / ADAPTER_DIR
    model.save_pretrained(str(folder))
    trainer.model = model.merge_and_unload()
    return folder


def check_peft(config: Any) -> list[tuple[str, str]]:
    """Problems of the ``peft:`` section only this machine reveals: QLoRA needs a CUDA GPU and bitsandbytes."""
    quantization = config.peft.quantization
    if not quantization:
        return []
    import torch

    if not torch.cuda.is_available():
        return [
            (
                "peft.quantization",
                f"{quantization} (QLoRA via bitsandbytes) needs a CUDA GPU and none is visible; remove it to train "
                "LoRA on the unquantized model",
            )
        ]
    if importlib.util.find_spec("bitsandbytes") is None:
        return [("peft.quantization", "needs bitsandbytes: pip install bitsandbytes")]
    return []
