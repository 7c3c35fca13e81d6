"""Base models: finding their files, loading them with the run's policy, LoRA, merging.

Where the files are (Hub id, folder, GGUF file), loading with the run's dtype/attention/quantization policy, the
LoRA adapter config, merging an adapter and the generation config a saved model gets.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from trainforge.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn


def model_location(name: str) -> tuple[str, str | None]:
    """``(folder or Hub id, gguf file name or None)`` for ``model.name`` (a GGUF file, or a folder holding one)."""
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), path.name
    if path.is_dir() and not (path / "config.json").exists():
        found = sorted(path.glob("*.gguf"))
        if len(found) > 1:
            raise ConfigError(
                [("model.name", f"{path} holds several GGUF files; name one: {', '.join(p.name for p in found)}")]
            )
        if found:
            return str(path), found[0].name
    return name, None


def torch_dtype(config):
    """Weights dtype: bf16/fp16 under mixed precision with LoRA (frozen base), fp32 otherwise."""
    import torch

    from trainforge.training.arguments import resolve_precision

    precision = resolve_precision(config.training.precision)
    if config.peft.enabled and precision in ("bf16", "fp16"):
        return torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.float32


def load_base_model(config, vocab_size: int | None = None, head: str = "causal_lm", quantize: bool = True):
    """Load the base (Hub id, folder or GGUF) as a causal LM or a 1-label scoring model, resized to ``vocab_size``."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    folder, gguf = model_location(config.model.name)
    params = config.params
    kwargs: dict[str, Any] = {
        "revision": config.model.revision,
        "trust_remote_code": config.model.trust_remote_code,
        "dtype": torch_dtype(config),
    }
    if gguf:
        kwargs["gguf_file"] = gguf
    if params.attn_implementation:
        kwargs["attn_implementation"] = params.attn_implementation
    if config.peft.quantization and quantize:
        kwargs["quantization_config"] = _bnb_config(config.peft.quantization, kwargs["dtype"])
        # Each process of a multi-GPU run loads its quantized copy on its own GPU (torchrun's LOCAL_RANK).
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    if head == "causal_lm":
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1, **kwargs)
    if gguf:
        _unflag_gguf(model)
    if vocab_size is not None:
        # transformers annotates the input embeddings as any nn.Module; they are an nn.Embedding (or a subclass).
        embeddings = cast("nn.Embedding", model.get_input_embeddings())
        if embeddings.num_embeddings < vocab_size:
            model.resize_token_embeddings(vocab_size)
    if config.training.gradient_checkpointing:
        model.config.use_cache = False
    return model


def _unflag_gguf(model) -> None:
    """Clear the quantization flags transformers leaves on a model it de-quantised from GGUF.

    The weights are ordinary float tensors, but ``Trainer`` refuses a model flagged as GGUF-quantized (transformers
    5.24, ``validate_quantization_for_training``); without the flags it trains and saves as a plain model.
    """
    model.hf_quantizer = None
    model.is_quantized = False
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config


def _bnb_config(quantization: str, dtype):
    import torch
    from transformers import BitsAndBytesConfig

    if quantization == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = dtype if dtype != torch.float32 else torch.float16
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)


def without_output_layer(peft_config, model):
    """``peft_config`` without the target names that match ``model``'s output layer (when others remain)."""
    targets = peft_config.target_modules
    output = model.get_output_embeddings()
    if output is None or isinstance(targets, str) or not targets:
        return peft_config
    name = next((n for n, module in model.named_modules() if module is output), None)
    kept = {t for t in targets if name is None or not (name == t or name.endswith(f".{t}"))}
    if not kept or kept == set(targets):  # nothing else to adapt: validate already refused such a config
        return peft_config
    return dataclasses.replace(peft_config, target_modules=kept)


def build_causal_lm(ctx):
    """The base causal LM, its embeddings resized for tokens the run's template adds."""
    return load_base_model(ctx.config, vocab_size=len(ctx.processor))


MERGED_DIR = "merged"  # a LoRA run's adapter merged into the base, beside the adapter


def finish_generation_config(model, tokenizer) -> None:
    """Generation stops at the run's EOS (the token that closes assistant turns) and pads with its pad token."""
    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(target, "generation_config", None) is not None:
        target.generation_config.eos_token_id = tokenizer.eos_token_id
        target.generation_config.pad_token_id = tokenizer.pad_token_id


def merge_adapter(model, tokenizer, config, run_dir: Path) -> Path:
    """Write the adapter merged into the base as a full model in ``run_dir/merged`` (base dtype, sharded safetensors).

    Without quantization the trained model is merged in place (no second copy). A quantized (QLoRA) base is
    reloaded unquantized on the CPU first, because merging into 4/8-bit weights would lose precision.
    """
    from peft import PeftModel

    if config.peft.quantization:
        base = load_base_model(config, vocab_size=len(tokenizer), quantize=False)
        model = PeftModel.from_pretrained(base, str(run_dir))
    merged = model.merge_and_unload()
    dtype = getattr(merged.config, "dtype", None)
    if dtype is not None and merged.dtype != dtype:
        merged = merged.to(dtype)  # back to the base's own dtype (training may have upcast it)
    finish_generation_config(merged, tokenizer)
    folder = run_dir / MERGED_DIR
    merged.save_pretrained(str(folder), max_shard_size="2GB")
    tokenizer.save_pretrained(str(folder))
    return folder
