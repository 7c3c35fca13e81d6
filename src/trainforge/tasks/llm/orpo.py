"""Odds Ratio Preference Optimization (ORPO): SFT and preference alignment in one step, no reference model.

Example (``examples/llm_orpo/tiny_orpo.yaml``)::

    task: llm_orpo
    model: {name: path/to/model}
    data: {source: examples/llm_dpo/data/pairs.jsonl, eval_fraction: 0.2}
    params: {peft: true, orpo_beta: 0.1, block_size: 256}

Run it with ``trainforge train examples/llm_orpo/tiny_orpo.yaml``. The loop is TRL's
``trl.experimental.orpo.ORPOTrainer``; evaluation reports reward accuracy and margins on the held-out pairs.
"""

from __future__ import annotations

from pydantic import Field

from trainforge.tasks.llm import _inference, _preference
from trainforge.tasks.llm._shared import (
    AUTOTRAIN_PARAMS,
    BASIC,
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


class ORPOParams(PreferenceParams):
    """Parameters of ``llm_orpo``."""

    orpo_beta: float = Field(
        0.1,
        gt=0,
        description="ORPO lambda: weight of the odds-ratio term against the SFT loss.",
        json_schema_extra=BASIC,
    )


def prepare(splits, config, labels: LabelInfo, tokenizer) -> LLMPrepared:
    """Rendered prompt/chosen/rejected strings; TRL tokenizes them."""
    _preference.configure(tokenizer, config, labels)
    train, eval_set = _preference.datasets(splits)
    return LLMPrepared(train, eval_set, None, config=config, new_token_ids=added_token_ids(tokenizer, config))


def build_model(config, labels: LabelInfo):
    """The base causal LM (resized for tokens the template adds)."""
    tokenizer, _ = tokenizer_for(config, _preference.template_format(labels))
    return load_base_model(config, vocab_size=len(tokenizer))


def make_trainer(model, args, prepared: LLMPrepared, processor, compute_metrics, callbacks):
    """TRL's experimental ``ORPOTrainer``."""
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    config = prepared.config
    params = config.params
    orpo_args = trl_config(ORPOConfig, args, beta=params.orpo_beta, max_length=params.block_size)
    trainer = trainer_class(ORPOTrainer)(
        model=model,
        args=orpo_args,
        train_dataset=prepared.train,
        eval_dataset=prepared.eval,
        processing_class=processor,
        callbacks=callbacks,
        peft_config=lora_config(config, "CAUSAL_LM", prepared.new_token_ids),
    )
    trainer.run_config = config
    return trainer


SPEC = TaskSpec(
    name="llm_orpo",
    summary="Align a causal LM with preference pairs by ORPO (SFT + odds-ratio, no reference model), full or LoRA.",
    params=ORPOParams,
    columns=_preference.COLUMNS,
    analyze=_preference.analyze,
    load_processor=load_tokenizer,
    prepare=prepare,
    build_model=build_model,
    compute_metrics=no_metrics,
    best_metric=best_metric,
    predict=_inference.predict_generate,
    pipeline_tag="text-generation",
    model_card=model_card,
    example=_preference.EXAMPLE,
    training_defaults=_preference.TRAINING_DEFAULTS,
    check_config=check_config,
    autotrain=AutoTrainShape(
        aliases=("llm-orpo", "llm_orpo"),
        columns=_preference.AUTOTRAIN_COLUMNS,
        params={**AUTOTRAIN_PARAMS, "dpo_beta": "orpo_beta"},
        values=autotrain_value("orpo"),
    ),
    make_trainer=make_trainer,
    extras=(("trl", "llm"), ("peft", "llm")),
)
