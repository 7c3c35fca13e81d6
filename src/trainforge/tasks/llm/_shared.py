"""What every LLM task shares: params, chat templates, tokenizer and model loading, LoRA/QLoRA, TRL configs.

Adding a method (KTO, SimPO) is one module that imports from here and ends with its ``SPEC``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from trainforge.config.sections import ADVANCED, BASIC
from trainforge.errors import ConfigError
from trainforge.tasks.spec import AUTOTRAIN_DROP as DROP
from trainforge.tasks.spec import Metric, Prepared, TaskParams

TemplateName = Literal["tokenizer", "chatml", "zephyr", "llama3", "none"]

# ---------------------------------------------------------------------------------------------------- params


class LLMParams(TaskParams):
    """Parameters every LLM task shares (tokenizer, template, sequence length, LoRA/QLoRA, generation)."""

    chat_template: TemplateName | None = Field(
        None,
        description=(
            "Chat template: 'tokenizer' (the model's own), a built-in (chatml, zephyr, llama3: adds their special "
            "tokens and resizes embeddings) or 'none'. Default: the model's own for conversational data (chatml when "
            "it has none), and for prompt/completion data when the model has one; plain text otherwise."
        ),
        json_schema_extra=BASIC,
    )
    block_size: int = Field(1024, gt=0, description="Maximum tokens per training sequence.", json_schema_extra=BASIC)
    truncation: Literal["truncate", "drop"] = Field(
        "truncate",
        description="Sequences longer than block_size: cut to block_size, or drop the row (counted either way).",
        json_schema_extra=ADVANCED,
    )
    add_eos_token: bool = Field(
        True,
        description="End plain-text examples with the EOS token (chat turns always end with it).",
        json_schema_extra=ADVANCED,
    )
    padding_side: Literal["right", "left"] = Field(
        "right", description="Tokenizer padding side for training.", json_schema_extra=ADVANCED
    )
    peft: bool = Field(False, description="Train a LoRA adapter instead of every weight.", json_schema_extra=BASIC)
    quantization: Literal["int4", "int8"] | None = Field(
        None,
        description="QLoRA: load the frozen base in 4 or 8 bits (needs peft, a CUDA GPU and bitsandbytes).",
        json_schema_extra=ADVANCED,
    )
    lora_r: int = Field(16, gt=0, description="LoRA rank.", json_schema_extra=ADVANCED)
    lora_alpha: int = Field(
        32, gt=0, description="LoRA scaling (alpha / r multiplies the update).", json_schema_extra=ADVANCED
    )
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.", json_schema_extra=ADVANCED)
    target_modules: str | list[str] = Field(
        "all-linear",
        description="Modules LoRA adapts: 'all-linear', a list, or a comma-separated string.",
        json_schema_extra=ADVANCED,
    )
    merge_adapter: bool = Field(
        False,
        description="After training, also write the adapter merged into the base as a full model in merged/.",
        json_schema_extra=BASIC,
    )
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2", "flex_attention"] | None = Field(
        None,
        description="Attention kernel (default: the model's, usually sdpa). flex_attention skips the masked blocks of "
        "padding-free packed batches on GPU.",
        json_schema_extra=ADVANCED,
    )
    max_new_tokens: int = Field(
        256, gt=0, description="predict/chat: most tokens generated per answer.", json_schema_extra=ADVANCED
    )
    temperature: float = Field(
        0.0, ge=0, description="predict/chat: sampling temperature (0 = greedy).", json_schema_extra=ADVANCED
    )
    top_p: float = Field(
        1.0, gt=0, le=1, description="predict/chat: nucleus sampling mass.", json_schema_extra=ADVANCED
    )

    @field_validator("target_modules")
    @classmethod
    def _split_modules(cls, value):
        if isinstance(value, str) and value != "all-linear":
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not value:
            raise ValueError("name at least one module, or 'all-linear'")
        return value

    @model_validator(mode="after")
    def _peft_options(self):
        if self.quantization and not self.peft:
            raise ValueError("quantization (QLoRA) trains an adapter on a frozen quantized base: set peft: true")
        if self.merge_adapter and not self.peft:
            raise ValueError("merge_adapter needs peft: true (a full fine-tune is already a full model)")
        return self


class PreferenceParams(LLMParams):
    """Shared by the preference methods (DPO, ORPO, reward): pairs longer than block_size are cut or dropped."""


def check_config(config) -> list[tuple[str, str]]:
    """Problems only this machine reveals: QLoRA needs CUDA and bitsandbytes (fails before any data loads)."""
    problems = []
    params = config.params
    if params.quantization:
        import torch

        if not torch.cuda.is_available():
            problems.append(
                (
                    "params.quantization",
                    f"{params.quantization} (QLoRA via bitsandbytes) needs a CUDA GPU and none is visible; "
                    "remove it to "
                    "train LoRA on the unquantized model",
                )
            )
        elif importlib.util.find_spec("bitsandbytes") is None:
            problems.append(("params.quantization", "needs bitsandbytes: pip install bitsandbytes"))
    if params.attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        problems.append(
            ("params.attn_implementation", "flash_attention_2 needs the flash-attn package (and a CUDA GPU)")
        )
    return problems


def best_metric(ctx) -> Metric:
    """Every LLM task selects checkpoints (and stops early) on the evaluation loss."""
    return Metric("loss", greater_is_better=False)


def no_metrics(ctx):
    """LLM metrics come from the TRL trainers' own evaluation (loss, rewards, accuracy) plus perplexity."""
    return None


# ---------------------------------------------------------------------------------------------------- AutoTrain

AUTOTRAIN_PARAMS = {
    "block_size": "block_size",
    "chat_template": "chat_template",
    "add_eos_token": "add_eos_token",
    "padding": "padding_side",
    "peft": "peft",
    "quantization": "quantization",
    "lora_r": "lora_r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "target_modules": "target_modules",
    "merge_adapter": "merge_adapter",
    "use_flash_attention_2": "attn_implementation",
    "model_max_length": "model_max_length",
    "trainer": "trainer",
    "unsloth": "unsloth",
    "distributed_backend": "distributed_backend",
    "max_prompt_length": "max_prompt_length",
    "max_completion_length": "max_completion_length",
}


def autotrain_value(trainer: str):
    """Convert the reference's LLM param values for the task whose reference trainer is ``trainer``."""

    def convert(name: str, value: Any) -> Any:
        if name == "trainer":
            expected = {"default", "generic"} if trainer == "default" else {trainer}
            if value not in expected:
                raise ConfigError([("params.trainer", f"{value!r} does not match this task; use task: llm-{value}")])
            return DROP
        if name == "block_size" and (value is None or value == -1 or isinstance(value, list | str)):
            if isinstance(value, list | str) and str(value) not in ("-1", "None"):
                value = int(str(value).split(",")[0]) if not isinstance(value, list) else int(value[0])
                return value
            _note("params.block_size -1 (automatic) -> trainforge's default 1024")
            return DROP
        if name in ("max_prompt_length", "max_completion_length"):
            if value is not None:
                _note(f"params.{name} {value}: trainforge cuts whole pairs at block_size (see params.truncation)")
            return DROP
        if name == "model_max_length":
            _note(f"params.model_max_length {value}: trainforge cuts sequences at block_size only")
            return DROP
        if name == "chat_template" and value in (None, "None"):
            return None
        if name == "quantization":
            return _quantization(value)
        if name == "use_flash_attention_2":
            return "flash_attention_2" if value else DROP
        if name == "unsloth":
            if value:
                raise ConfigError([("params.unsloth", "unsloth is not supported; remove it")])
            return DROP
        if name == "distributed_backend":
            if value not in (None, "ddp"):
                raise ConfigError(
                    [("params.distributed_backend", f"{value!r}: multi-GPU launch goes through accelerate")]
                )
            return DROP
        return value

    return convert


def _quantization(value: Any) -> Any:
    if value in (None, "none", "None"):
        return None
    import torch

    if torch.cuda.is_available():
        return value
    # The reference applies bitsandbytes quantization only on CUDA in practice; keep its config runnable on CPU.
    _note(f"params.quantization {value} needs a CUDA GPU; none here, so LoRA trains on the unquantized model")
    return None


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------------- chat templates

# Built-in templates: (jinja, eos, additional special tokens). Each closes an assistant turn with its EOS.
BUILTIN_TEMPLATES = {
    "chatml": (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
        "'<|im_end|>' + '\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
        "<|im_end|>",
        ["<|im_start|>", "<|im_end|>"],
    ),
    "zephyr": (
        "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '</s>' + '\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}",
        "</s>",
        ["<|system|>", "<|user|>", "<|assistant|>", "</s>"],
    ),
    "llama3": (
        "{{ '<|begin_of_text|>' }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
        "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
        "<|eot_id|>",
        ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    ),
}


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


def load_processor(ctx):
    """The run's tokenizer, loaded once per run (``RunContext.processor``); ``analyze`` installs its template."""
    return load_tokenizer(ctx.config)


def load_tokenizer(config):
    """The base tokenizer with a pad token (EOS when missing) and the configured padding side; no template yet."""
    from transformers import AutoTokenizer

    folder, gguf = model_location(config.model.name)
    tokenizer = AutoTokenizer.from_pretrained(
        folder, gguf_file=gguf, revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = config.params.padding_side
    return tokenizer


def template_choice(config, data_format: str, has_own: bool) -> str | None:
    """Which template a run uses: 'tokenizer', a built-in name, or None (plain text)."""
    chosen = config.params.chat_template
    if chosen == "none":
        return None
    if chosen == "tokenizer":
        return "tokenizer" if has_own else "chatml"
    if chosen is not None:
        return chosen
    if data_format == "messages":
        return "tokenizer" if has_own else "chatml"
    if data_format in ("prompt_completion", "alpaca", "preference") and has_own:
        return "tokenizer"
    return None


def configure_tokenizer(tokenizer, config, data_format: str) -> list[str]:
    """Install the run's chat template on ``tokenizer`` (in place) and make EOS close every assistant turn.

    Returns:
        Notes for the user (template chosen, tokens added, EOS changes).
    """
    has_own = bool(getattr(tokenizer, "chat_template", None))
    choice = template_choice(config, data_format, has_own)
    notes = []
    if choice is None:
        tokenizer.chat_template = None  # the saved tokenizer tells predict/chat: plain prompts, no template
        return [f"no chat template: {data_format} rows are trained as plain text"]
    if choice == "tokenizer":
        notes.append("chat template: the model's own")
    else:
        jinja, eos, specials = BUILTIN_TEMPLATES[choice]
        added = tokenizer.add_special_tokens({"extra_special_tokens": specials}, replace_extra_special_tokens=False)
        tokenizer.chat_template = jinja
        tokenizer.eos_token = eos
        if config.params.chat_template is None:
            notes.append(f"chat template: built-in {choice} (the model has none)")
        else:
            notes.append(f"chat template: built-in {choice}")
        if added:
            notes.append(f"added {added} special token(s); embeddings are resized")
    turn_end = assistant_turn_end(tokenizer)
    if turn_end is not None and turn_end != tokenizer.eos_token:
        notes.append(
            f"EOS set to {turn_end!r}, the token that closes the template's assistant turn "
            f"(was {tokenizer.eos_token!r})"
        )
        tokenizer.eos_token = turn_end
    elif turn_end is None:
        notes.append(f"the template ends assistant turns without a special token: {tokenizer.eos_token!r} is appended")
    return notes


def assistant_turn_end(tokenizer) -> str | None:
    """The special token the template writes right after an assistant message (None when there is none)."""
    probe = [{"role": "user", "content": "ping"}, {"role": "assistant", "content": "pong"}]
    text = tokenizer.apply_chat_template(probe, tokenize=False)
    tail = text[text.rfind("pong") + 4 :]
    if tokenizer.eos_token and tail.lstrip().startswith(tokenizer.eos_token):
        return tokenizer.eos_token
    specials = sorted(set(tokenizer.all_special_tokens) | set(tokenizer.get_added_vocab()), key=len, reverse=True)
    stripped = tail.lstrip()
    return next((token for token in specials if token and stripped.startswith(token)), None)


# ---------------------------------------------------------------------------------------------------- model


def torch_dtype(config):
    """Weights dtype: bf16/fp16 under mixed precision with LoRA (frozen base), fp32 otherwise."""
    import torch

    from trainforge.training.arguments import resolve_precision

    precision = resolve_precision(config.training.precision)
    if config.params.peft and precision in ("bf16", "fp16"):
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
    if params.quantization and quantize:
        kwargs["quantization_config"] = _bnb_config(params.quantization, kwargs["dtype"])
        kwargs["device_map"] = {"": 0}
    if head == "causal_lm":
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1, **kwargs)
    if gguf:
        _unflag_gguf(model)
    if vocab_size is not None and model.get_input_embeddings().num_embeddings < vocab_size:
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


def lora_config(config, task_type: str, new_token_ids: list[int]):
    """The run's ``LoraConfig`` (None without peft); tokens added by a built-in template train their embeddings."""
    if not config.params.peft:
        return None
    from peft import LoraConfig

    params = config.params
    extra = {"trainable_token_indices": new_token_ids} if new_token_ids else {}
    return LoraConfig(
        r=params.lora_r,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        bias="none",
        target_modules=params.target_modules,
        task_type=task_type,
        **extra,
    )


def set_up_tokenizer(ctx, template_format: str) -> list[str]:
    """Install the run's template on the run's tokenizer (once, by ``analyze``); returns the setup notes.

    The base vocabulary size is kept in ``ctx`` so that ``prepare`` knows which ids the template added.
    """
    tokenizer = ctx.processor
    ctx.base_vocab_size = len(tokenizer)
    return configure_tokenizer(tokenizer, ctx.config, template_format)


def added_token_ids(ctx) -> list[int]:
    """Ids beyond the base vocabulary (added by a built-in template)."""
    return list(range(getattr(ctx, "base_vocab_size", len(ctx.processor)), len(ctx.processor)))


# ---------------------------------------------------------------------------------------------------- TRL configs


def trl_config(config_class, args: dict[str, Any], **fields):
    """A TRL config from the driver's ``TrainingArguments`` keyword arguments plus TRL's own ``fields``.

    TRL configs subclass ``TrainingArguments`` but change defaults (bf16 on, gradient checkpointing on, another
    learning rate); ``TrainingArguments``' own defaults are passed for every field the driver leaves unset, so
    ``training.*`` means the same for every task.
    """
    from transformers import TrainingArguments

    values: dict[str, Any] = {}
    for f in dataclasses.fields(TrainingArguments):
        if not f.init or f.name.startswith("_"):
            continue
        if f.default is not dataclasses.MISSING:
            values[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            values[f.name] = f.default_factory()
    values.update(args)
    known = {f.name for f in dataclasses.fields(config_class)}
    return config_class(**{k: v for k, v in values.items() if k in known}, **fields)


def sft_trainer(inputs, **fields):
    """TRL ``SFTTrainer`` on data this package encoded (its own preparation skipped: masks and EOS are ours).

    ``fields``: more ``SFTConfig`` fields (packing). Shared by ``llm_sft`` and ``llm_generic``.
    """
    from trl import SFTConfig, SFTTrainer

    block_size = inputs.ctx.config.params.block_size
    return trl_trainer(
        inputs,
        SFTTrainer,
        SFTConfig,
        perplexity=True,
        max_length=block_size,
        dataset_kwargs={"skip_prepare_dataset": True},
        **fields,
    )


def trl_trainer(inputs, trainer_base, config_class, peft_task: str = "CAUSAL_LM", perplexity: bool = False, **fields):
    """The task's TRL trainer (with ``LLMTrainerMixin``) on the prepared data, its config built from the run's.

    Args:
        inputs: The driver's ``TrainerInputs`` (context, model, prepared data, arguments, callbacks).
        trainer_base: The TRL trainer class (``SFTTrainer``, ``DPOTrainer``...).
        config_class: Its config class (``SFTConfig``...), given the run's arguments plus ``fields``.
        peft_task: PEFT task type of the LoRA adapter (``CAUSAL_LM``; ``SEQ_CLS`` for reward models).
        perplexity: Add ``eval_perplexity`` (exp of the evaluation loss) to evaluations.
        **fields: TRL config fields of this method (beta, max_length...); ``trainer_kwargs`` is passed to the
            trainer itself (e.g. a reference model).
    """
    ctx, prepared = inputs.ctx, inputs.prepared
    trainer_kwargs = fields.pop("trainer_kwargs", {})
    trainer = trainer_class(trainer_base)(
        model=inputs.model,
        args=trl_config(config_class, inputs.args, **fields),
        train_dataset=prepared.train,
        eval_dataset=prepared.eval,
        processing_class=ctx.processor,
        callbacks=inputs.callbacks,
        peft_config=lora_config(ctx.config, peft_task, prepared.new_token_ids),
        **trainer_kwargs,
    )
    trainer.run_config, trainer.report_perplexity = ctx.config, perplexity
    return trainer


# TRL trainers that compute log-probabilities from the output layer's weight directly (trl 1.16) and so refuse a LoRA
# adapter on that layer; trainforge leaves the layer out of their targets (validate notes it: models/config_checks.py).
OUTPUT_LAYER_REFUSED_BY = ("SFTTrainer", "DPOTrainer")


class LLMTrainerMixin:
    """Added to each TRL trainer: perplexity in evaluation, and the merged model beside the adapter on save."""

    run_config = None
    report_perplexity = False

    def __init__(self, *args, **kwargs):  # noqa: D107
        refuses = any(cls.__name__ in OUTPUT_LAYER_REFUSED_BY for cls in type(self).__mro__)
        if refuses and kwargs.get("peft_config") is not None and hasattr(kwargs.get("model"), "named_modules"):
            kwargs["peft_config"] = without_output_layer(kwargs["peft_config"], kwargs["model"])
        super().__init__(*args, **kwargs)

    def evaluate(self, *args, **kwargs):  # noqa: D102
        metrics = super().evaluate(*args, **kwargs)
        if self.report_perplexity and "eval_loss" in metrics:
            metrics["eval_perplexity"] = math.exp(min(metrics["eval_loss"], 50.0))
        return metrics

    def save_model(self, output_dir=None, _internal_call=False):  # noqa: D102
        from trainforge.tasks.llm._inference import finish_generation_config, merge_adapter

        if not _internal_call and output_dir is not None:
            finish_generation_config(self.model, self.processing_class)
        super().save_model(output_dir, _internal_call=_internal_call)
        if _internal_call or output_dir is None:
            return
        if self.run_config is not None and self.run_config.params.merge_adapter:
            merge_adapter(self.model, self.processing_class, self.run_config, Path(output_dir))


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


def trainer_class(base):
    """``base`` (a TRL trainer class) with ``LLMTrainerMixin``."""
    return type(f"Trainforge{base.__name__}", (LLMTrainerMixin, base), {})


@dataclasses.dataclass
class LLMPrepared(Prepared):
    """``Prepared`` plus the token ids the run's template added (their embeddings train under LoRA)."""

    new_token_ids: list[int] = dataclasses.field(default_factory=list)


def tokenizer_for(config, data_format: str):
    """A tokenizer set up exactly as a run's (template, special tokens, EOS), with the setup notes.

    For code outside a run (inspecting a config); a run sets up its one tokenizer with ``set_up_tokenizer``.
    """
    tokenizer = load_tokenizer(config)
    notes = configure_tokenizer(tokenizer, config, data_format)
    return tokenizer, notes


def build_causal_lm(ctx):
    """The base causal LM, its embeddings resized for tokens the run's template adds."""
    return load_base_model(ctx.config, vocab_size=len(ctx.processor))


def require_template_for(config, data_format: str) -> None:
    """Conversational data cannot be trained without a template."""
    if data_format in ("messages", "conversational") and config.params.chat_template == "none":
        raise ConfigError(
            [
                (
                    "params.chat_template",
                    "'none', but the data is conversational (lists of turns): "
                    "choose tokenizer, chatml, zephyr or llama3",
                )
            ]
        )


# ---------------------------------------------------------------------------------------------------- model card


def model_card(run_dir: Path, config) -> str:
    """The "Use it" section of an LLM run's model card: what the folder holds and how to load it."""
    reward = config.task == "llm_reward"
    auto_class = "AutoModelForSequenceClassification" if reward else "AutoModelForCausalLM"
    folder, gguf = model_location(config.model.name)
    base_kwargs = f'"{folder}", gguf_file="{gguf}"' if gguf else f'"{folder}"'
    if not config.params.peft:
        body = f"""This folder holds the full fine-tuned model.

```python
from transformers import AutoTokenizer, {auto_class}

model = {auto_class}.from_pretrained("{run_dir}")
tokenizer = AutoTokenizer.from_pretrained("{run_dir}")
```
"""
    else:
        merged = (
            f"""
`merged/` holds the adapter merged into the base weights: a plain model, no peft needed.

```python
model = {auto_class}.from_pretrained("{run_dir}/merged")
```
"""
            if config.params.merge_adapter
            else "\nSet `params.merge_adapter: true` to also get a merged full model in `merged/`.\n"
        )
        body = f"""This folder holds a **LoRA adapter** (`adapter_config.json`, `adapter_model.safetensors`), not full
weights: load the base model, then the adapter on top.

```python
from peft import PeftModel
from transformers import AutoTokenizer, {auto_class}

base = {auto_class}.from_pretrained({base_kwargs})
model = PeftModel.from_pretrained(base, "{run_dir}")
tokenizer = AutoTokenizer.from_pretrained("{run_dir}")  # carries the chat template used in training
```
{merged}"""
    usage = "" if reward else f'\nChat with it: `trainforge chat {run_dir}` (or `--prompt "..."` for one answer).\n'
    return f"## Use it\n\n{body}{usage}"
