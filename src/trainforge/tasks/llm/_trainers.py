"""The LLM tasks' trainers: one TRL-trainer factory over the driver's arguments.

Also the mixin that adds perplexity and the merged model on save, checkpoint selection, and the model card section.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from trainforge.models.peft import lora_config
from trainforge.tasks.llm._models import model_location, without_output_layer
from trainforge.tasks.spec import Metric, Prepared


def best_metric(ctx) -> Metric:
    """Every LLM task selects checkpoints (and stops early) on the evaluation loss."""
    return Metric("loss", greater_is_better=False)


def no_metrics(ctx):
    """LLM metrics come from the TRL trainers' own evaluation (loss, rewards, accuracy) plus perplexity."""
    return None


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


def trl_trainer(inputs, trainer_base, config_class, perplexity: bool = False, **fields):
    """The task's TRL trainer (with ``LLMTrainerMixin``) on the prepared data, its config built from the run's.

    Args:
        inputs: The driver's ``TrainerInputs`` (context, model, prepared data, arguments, callbacks).
        trainer_base: The TRL trainer class (``SFTTrainer``, ``DPOTrainer``...).
        config_class: Its config class (``SFTConfig``...), given the run's arguments plus ``fields``.
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
        peft_config=lora_config(ctx.config, ctx.spec.lora, prepared.new_token_ids),  # the spec's adapter type
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

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):  # noqa: D102
        # A mixin: the TRL trainer after it in the MRO defines evaluate.
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)  # type: ignore[misc]
        loss = metrics.get(f"{metric_key_prefix}_loss")
        if self.report_perplexity and loss is not None:
            metrics[f"{metric_key_prefix}_perplexity"] = math.exp(min(loss, 50.0))
        return metrics

    def save_model(self, output_dir=None, _internal_call=False):  # noqa: D102
        from trainforge.tasks.llm._models import finish_generation_config, merge_adapter

        if not _internal_call and output_dir is not None:
            finish_generation_config(self.model, self.processing_class)
        super().save_model(output_dir, _internal_call=_internal_call)
        if _internal_call or output_dir is None:
            return
        if self.run_config is not None and self.run_config.peft.merge_adapter:
            merge_adapter(self.model, self.processing_class, self.run_config, Path(output_dir))


def trainer_class(base):
    """``base`` (a TRL trainer class) with ``LLMTrainerMixin``."""
    return type(f"Trainforge{base.__name__}", (LLMTrainerMixin, base), {})


@dataclasses.dataclass
class LLMPrepared(Prepared):
    """``Prepared`` plus the token ids the run's template added (their embeddings train under LoRA)."""

    new_token_ids: list[int] = dataclasses.field(default_factory=list)


def encoded_prepared(ctx, make) -> LLMPrepared:
    """``LLMPrepared`` of every split analysis encoded (``Analysis.facts["encoded"]``: split name -> frame).

    ``make`` turns one encoded frame into the trainer's ``datasets.Dataset``.
    """
    from trainforge.tasks.llm._tokenizer import added_token_ids

    encoded = ctx.labels.facts["encoded"]

    def made(name: str):
        return make(encoded[name]) if name in encoded else None

    return LLMPrepared(made("train"), made("eval"), None, made("test"), new_token_ids=added_token_ids(ctx))


def model_card(run_dir: Path, config) -> str:
    """The "Use it" section of an LLM run's model card: what the folder holds and how to load it."""
    reward = config.task == "llm_reward"
    auto_class = "AutoModelForSequenceClassification" if reward else "AutoModelForCausalLM"
    folder, gguf = model_location(config.model.name)
    base_kwargs = f'"{folder}", gguf_file="{gguf}"' if gguf else f'"{folder}"'
    if not config.peft.enabled:
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
            if config.peft.merge_adapter
            else "\nSet `peft.merge_adapter: true` to also get a merged full model in `merged/`.\n"
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
