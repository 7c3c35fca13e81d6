"""The single translation point from our config sections to ``transformers.TrainingArguments``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from trainforge.config.schema import RunConfig
from trainforge.errors import ConfigError
from trainforge.metrics import GREATER_IS_BETTER
from trainforge.tasks.spec import Metric


def resolve_precision(precision: str) -> str:
    """Turn ``auto`` into bf16/fp16/fp32 for this machine; reject mixed precision without a CUDA GPU."""
    import torch

    cuda = torch.cuda.is_available()
    if precision == "auto":
        if not cuda:
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision in ("fp16", "bf16") and not cuda:
        raise ConfigError(
            [("training.precision", f"{precision} needs a CUDA GPU and none is visible; use auto or fp32")]
        )
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError([("training.precision", "this GPU does not support bf16; use fp16 or auto")])
    return precision


def auto_logging_steps(train_rows: int, config: RunConfig) -> int:
    """About 50 loss logs per run, at least one every 25 optimizer steps (an optimizer step spans every process)."""
    training = config.training
    if training.logging_steps:
        return training.logging_steps
    per_step = training.per_device_train_batch_size * training.gradient_accumulation_steps * config.compute.world_size
    steps = (
        training.max_steps if training.max_steps > 0 else math.ceil(train_rows / per_step) * training.num_train_epochs
    )
    return int(min(25, max(1, steps // 50)))


def training_arguments(
    config: RunConfig, run_dir: Path, has_eval: bool, metric: Metric, train_rows: int, sampling: str | None = None
) -> dict[str, Any]:
    """``transformers.TrainingArguments`` keyword arguments for this run (the one translation of our sections).

    A dict, not an instance: each trainer factory builds its own arguments class from it (``TrainingArguments``,
    TRL's configs, ``Seq2SeqTrainingArguments``...) without copying fields out of another instance.

    Args:
        config: The validated config.
        run_dir: The run directory; checkpoints go to ``run_dir/checkpoints``.
        has_eval: Whether an evaluation split exists (else no eval, best-model or early stopping).
        metric: The task's default metric for selecting the best checkpoint.
        train_rows: Training rows, for the automatic logging interval.
        sampling: The batch order ``training.train_sampling_strategy: auto`` resolved to (``training/sampling.py``);
            None: the configured one, ``auto`` read as random.

    Raises:
        ConfigError: A precision this machine cannot run.
    """
    training, output = config.training, config.output
    precision = resolve_precision(training.precision)
    eval_strategy = training.eval_strategy if has_eval else "no"
    saving = output.save_checkpoints
    save_strategy = (eval_strategy if eval_strategy != "no" else "epoch") if saving else "no"
    metric_name = training.metric_for_best_model or metric.name
    greater = GREATER_IS_BETTER.get(metric_name, metric.greater_is_better)
    import torch

    return dict(
        output_dir=str(run_dir / "checkpoints"),
        num_train_epochs=training.num_train_epochs,
        max_steps=training.max_steps,
        learning_rate=training.learning_rate,
        per_device_train_batch_size=training.per_device_train_batch_size,
        per_device_eval_batch_size=training.per_device_eval_batch_size or 2 * training.per_device_train_batch_size,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        warmup_steps=training.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=training.weight_decay,
        max_grad_norm=training.max_grad_norm,
        lr_scheduler_type=training.lr_scheduler_type,
        optim=training.optim,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        seed=training.seed,
        data_seed=training.seed,
        logging_strategy="steps",
        logging_steps=auto_logging_steps(train_rows, config),
        eval_strategy=eval_strategy,
        eval_steps=training.eval_steps,
        eval_on_start=training.eval_on_start and eval_strategy != "no",
        save_strategy=save_strategy,
        save_steps=training.eval_steps if save_strategy == "steps" else 500,
        save_total_limit=training.save_total_limit,
        # Evaluating only at the end (eval_strategy "no") leaves no checkpoints to choose the best from.
        load_best_model_at_end=eval_strategy != "no" and saving,
        # --resume continues early stopping's patience count instead of starting it again.
        restore_callback_states_from_checkpoint=True,
        metric_for_best_model=metric_name if eval_strategy != "no" else None,
        greater_is_better=greater if eval_strategy != "no" else None,
        # Under FSDP the launch turns it into FSDP's activation checkpointing (launch.py): not both.
        **{_checkpointing_argument(): training.gradient_checkpointing and config.compute.strategy != "fsdp"},
        auto_find_batch_size=training.auto_find_batch_size,
        dataloader_num_workers=training.dataloader_num_workers,
        train_sampling_strategy=sampling or _configured_sampling(training.train_sampling_strategy),
        remove_unused_columns=False,  # tasks hand over exactly the model's columns (plus sample_weight)
        report_to="none",  # TensorBoard is attached as a callback writing into the run directory
        disable_tqdm=True,  # progress is shown by trainforge's own display
    )


def _checkpointing_argument() -> str:
    """The installed transformers' name for gradient checkpointing in ``TrainingArguments``.

    transformers 5.24 renamed ``gradient_checkpointing`` to ``activation_checkpointing`` and warns (FutureWarning,
    printed in the middle of every run's output) when the old name is passed; older 5.x releases know only the old.
    """
    from transformers import TrainingArguments

    fields = getattr(TrainingArguments, "__dataclass_fields__", {})
    return "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"


def _configured_sampling(strategy: str) -> str:
    return "random" if strategy == "auto" else strategy
