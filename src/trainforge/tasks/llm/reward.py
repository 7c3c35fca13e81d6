"""Reward modelling: a 1-output scoring head on a causal LM, trained on preference pairs (chosen > rejected).

Example (``examples/llm_reward/tiny_reward.yaml``)::

    task: llm_reward
    model: {name: path/to/model}
    data: {source: examples/llm_dpo/data/pairs.jsonl, eval_fraction: 0.2}
    params: {peft: true, block_size: 256}

Run it with ``trainforge train examples/llm_reward/tiny_reward.yaml``; evaluation reports pairwise accuracy
(share of held-out pairs scored chosen > rejected) and the mean margin. ``trainforge predict`` adds a score column.
"""

from __future__ import annotations

from trainforge.tasks.llm import _inference, _preference
from trainforge.tasks.llm._shared import (
    AUTOTRAIN_PARAMS,
    LLMPrepared,
    PreferenceParams,
    added_token_ids,
    autotrain_value,
    best_metric,
    check_config,
    load_base_model,
    load_tokenizer,
    lora_config,
    model_card,
    no_metrics,
    tokenizer_for,
    trainer_class,
    trl_config,
)
from trainforge.tasks.spec import AutoTrainShape, LabelInfo, TaskSpec


class RewardParams(PreferenceParams):
    """Parameters of ``llm_reward``."""


def prepare(splits, config, labels: LabelInfo, tokenizer) -> LLMPrepared:
    """Token ids of prompt+chosen and prompt+rejected, cut at block_size (counted by ``analyze``)."""
    from datasets import Dataset

    _preference.configure(tokenizer, config, labels)
    size = config.params.block_size

    def make(frame):
        chosen = tokenizer([p + c for p, c in zip(frame["prompt"], frame["chosen"], strict=True)])["input_ids"]
        rejected = tokenizer([p + r for p, r in zip(frame["prompt"], frame["rejected"], strict=True)])["input_ids"]
        return Dataset.from_dict(
            {"chosen_ids": [c[:size] for c in chosen], "rejected_ids": [r[:size] for r in rejected]}
        )

    eval_set = make(splits.eval) if splits.eval is not None else None
    return LLMPrepared(
        make(splits.train), eval_set, None, config=config, new_token_ids=added_token_ids(tokenizer, config)
    )


def build_model(config, labels: LabelInfo):
    """The base with a fresh 1-output sequence-classification head (the reward)."""
    tokenizer, _ = tokenizer_for(config, _preference.template_format(labels))
    model = load_base_model(config, vocab_size=len(tokenizer), head="seq_cls")
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def make_trainer(model, args, prepared: LLMPrepared, processor, compute_metrics, callbacks):
    """TRL ``RewardTrainer``; eval accuracy is the share of pairs scored chosen > rejected."""
    from trl import RewardConfig, RewardTrainer

    config = prepared.config
    reward_args = trl_config(RewardConfig, args, max_length=None)  # pairs were already fitted to block_size
    trainer = trainer_class(RewardTrainer)(
        model=model,
        args=reward_args,
        train_dataset=prepared.train,
        eval_dataset=prepared.eval,
        processing_class=processor,
        callbacks=callbacks,
        peft_config=lora_config(config, "SEQ_CLS", prepared.new_token_ids),
    )
    trainer.run_config = config
    return trainer


SPEC = TaskSpec(
    name="llm_reward",
    summary="Train a reward model (1-output scoring head) on preference pairs; reports pairwise accuracy.",
    params=RewardParams,
    columns=_preference.COLUMNS,
    analyze=_preference.analyze,
    load_processor=load_tokenizer,
    prepare=prepare,
    build_model=build_model,
    compute_metrics=no_metrics,
    best_metric=best_metric,
    predict=_inference.predict_score,
    pipeline_tag="text-classification",
    model_card=model_card,
    example=_preference.EXAMPLE,
    training_defaults=_preference.TRAINING_DEFAULTS,
    check_config=check_config,
    autotrain=AutoTrainShape(
        aliases=("llm-reward", "llm_reward"),
        columns=_preference.AUTOTRAIN_COLUMNS,
        params=AUTOTRAIN_PARAMS,
        values=autotrain_value("reward"),
    ),
    make_trainer=make_trainer,
    extras=(("trl", "llm"), ("peft", "llm")),
)
