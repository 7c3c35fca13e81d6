"""Reward modelling: a 1-output scoring head on a causal LM, trained on preference pairs (chosen > rejected).

Example (``examples/llm_reward/smollm2_reward.yaml``)::

    task: llm_reward
    model: {name: path/to/model}
    data: {source: examples/llm_dpo/data/pairs.jsonl, eval_fraction: 0.2}
    peft: {enabled: true}
    params: {block_size: 256}

Run it with ``trainforge train examples/llm_reward/smollm2_reward.yaml``; evaluation reports pairwise accuracy
(share of held-out pairs scored chosen > rejected) and the mean margin. ``trainforge predict`` adds a score column.
"""

from __future__ import annotations

import dataclasses

from trainforge.tasks.llm import _inference, _preference
from trainforge.tasks.llm._models import load_base_model
from trainforge.tasks.llm._params import PreferenceParams, autotrain_shape
from trainforge.tasks.llm._trainers import LLMPrepared, encoded_prepared, trl_trainer
from trainforge.tasks.spec import Column, RunContext, TrainerInputs


class RewardParams(PreferenceParams):
    """Parameters of ``llm_reward``."""


def prepare(ctx: RunContext, splits) -> LLMPrepared:
    """Token ids of prompt+chosen and prompt+rejected (rendered by ``analyze``), cut at block_size."""
    from datasets import Dataset

    tokenizer, size = ctx.processor, ctx.config.params.block_size

    def make(frame):
        chosen = tokenizer([p + c for p, c in zip(frame["prompt"], frame["chosen"], strict=True)])["input_ids"]
        rejected = tokenizer([p + r for p, r in zip(frame["prompt"], frame["rejected"], strict=True)])["input_ids"]
        return Dataset.from_dict(
            {"chosen_ids": [c[:size] for c in chosen], "rejected_ids": [r[:size] for r in rejected]}
        )

    return encoded_prepared(ctx, make)


def build_model(ctx: RunContext):
    """The base with a fresh 1-output sequence-classification head (the reward)."""
    model = load_base_model(ctx.config, vocab_size=len(ctx.processor), head="seq_cls")
    model.config.pad_token_id = ctx.processor.pad_token_id
    return model


def make_trainer(inputs: TrainerInputs):
    """TRL ``RewardTrainer``; eval accuracy is the share of pairs scored chosen > rejected."""
    from trl import RewardConfig, RewardTrainer

    # max_length None: the pairs were already fitted to block_size.
    return trl_trainer(inputs, RewardTrainer, RewardConfig, max_length=None)


SPEC = dataclasses.replace(
    _preference.PREFERENCE_SPEC,
    name="llm_reward",
    summary="Train a reward model (1-output scoring head) on preference pairs; reports pairwise accuracy.",
    params=RewardParams,
    prepare=prepare,
    build_model=build_model,
    make_trainer=make_trainer,
    predict=_inference.predict_score,
    pipeline_tag="text-classification",
    lora="SEQ_CLS",  # a scoring head: PEFT trains and saves it with the adapter
    # Trained on pairs; a finished reward model scores one prompt + completion (or a text).
    playground="form",
    predict_inputs=(
        Column("prompt", "the prompt"),
        Column("completion", "the answer to score"),
    ),
    autotrain=autotrain_shape("reward", ("llm-reward", "llm_reward"), _preference.AUTOTRAIN_COLUMNS),
)
