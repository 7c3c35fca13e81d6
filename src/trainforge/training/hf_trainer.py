"""The default trainer factory: ``transformers.Trainer`` with optional per-row loss weights."""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer
from transformers.trainer_utils import has_length

from trainforge.tasks.spec import TrainerInputs


class InOrderEvaluation:
    """Mixin for a ``Trainer``: evaluation and test batches in the split's own order, whatever the training order.

    With ``train_sampling_strategy: group_by_length`` transformers' Trainer length-groups the eval batches too,
    which shuffles the predictions' order: post-processing that maps predictions back to rows by position (QA
    windows to their examples, length-sorted eval splits, reports naming rows) would pair rows with other rows'
    predictions. Grouping pays off in training; evaluation keeps its order (one process: sequential; several: the
    Trainer's own distributed default).
    """

    args: Any

    def _get_eval_sampler(self, eval_dataset):
        if self.args.train_sampling_strategy != "group_by_length":
            return super()._get_eval_sampler(eval_dataset)
        if eval_dataset is None or not has_length(eval_dataset) or self.args.world_size > 1:
            return None
        return torch.utils.data.SequentialSampler(eval_dataset)


class ConvertedCheckpointRestore:
    """Mixin for a ``Trainer``: the best checkpoint and ``--resume`` restored through ``from_pretrained``.

    transformers 5.24 saves the models whose modules were renamed in v5 (ViT, DETR-family, LLaVA among them) under
    their original key names, and the Trainer restores a checkpoint with a plain ``load_state_dict(strict=False)``:
    every renamed key is "missing" (a warning only) and the run keeps its last weights while reporting the best
    checkpoint's scores. ``from_pretrained`` converts the keys. A LoRA run's checkpoints hold the adapter alone,
    which PEFT restores by its own names (the Trainer's path).
    """

    model: Any
    state: Any

    def _load_best_model(self) -> None:
        if _is_peft(self.model):
            return super()._load_best_model()  # type: ignore[misc]
        restore_weights(self.model, self.state.best_model_checkpoint)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None) -> None:
        target = self.model if model is None else model
        if _is_peft(target):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)  # type: ignore[misc]
        restore_weights(target, resume_from_checkpoint)


def restore_weights(model, checkpoint) -> None:
    """Load the weights saved in ``checkpoint`` (a folder) into ``model``, keys converted as ``from_pretrained`` does.

    Raises:
        RuntimeError: The checkpoint's weights do not cover the model's exactly (a corrupt or foreign checkpoint).
    """
    saved = type(model).from_pretrained(str(checkpoint), config=model.config)
    model.load_state_dict(saved.state_dict(), strict=True)


def _is_peft(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


class WeightedLossTrainer(InOrderEvaluation, Trainer):
    """A Trainer that honours a ``sample_weight`` column in the batch (the reference could not)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
        weights = inputs.pop("sample_weight", None)
        if weights is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = weighted_loss(outputs.logits, labels, weights, model.config.problem_type)
        return (loss, outputs) if return_outputs else loss


def weighted_loss(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, problem_type: str
) -> torch.Tensor:
    """Per-row loss of a classification/regression head, averaged with the rows' weights."""
    functional = torch.nn.functional
    if problem_type == "regression":
        per_row = functional.mse_loss(logits.view(-1).float(), labels.view(-1).float(), reduction="none")
    elif problem_type == "multi_label_classification":
        per_row = functional.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none").mean(
            dim=-1
        )
    else:
        per_row = functional.cross_entropy(logits.float(), labels.view(-1), reduction="none")
    weights = weights.to(per_row.dtype)
    return (per_row * weights).sum() / weights.sum().clamp_min(torch.finfo(per_row.dtype).tiny)


def make_trainer(inputs: TrainerInputs) -> WeightedLossTrainer:
    """The Trainer used by every transformers task unless its spec supplies another factory."""
    from transformers import TrainingArguments

    prepared = inputs.prepared
    return WeightedLossTrainer(
        model=inputs.model,
        args=TrainingArguments(**inputs.args),
        train_dataset=prepared.train,
        eval_dataset=prepared.eval,
        data_collator=prepared.collator,
        processing_class=inputs.ctx.processor,
        compute_metrics=inputs.compute_metrics,  # None without eval and test splits (the driver decides)
        callbacks=inputs.callbacks,
    )
