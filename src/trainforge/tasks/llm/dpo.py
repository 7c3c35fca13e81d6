"""Direct Preference Optimization (DPO) of a causal LM on prompt/chosen/rejected pairs.

Example (``examples/llm_dpo/tiny_dpo.yaml``)::

    task: llm_dpo
    model: {name: path/to/model}
    data: {source: examples/llm_dpo/data/pairs.jsonl, eval_fraction: 0.2}
    training: {num_train_epochs: 3, learning_rate: 5.0e-5}
    params: {peft: true, dpo_beta: 0.1, block_size: 256}

Run it with ``trainforge train examples/llm_dpo/tiny_dpo.yaml``. The reference model is the base with the
adapter disabled under LoRA, a frozen copy of the base for full fine-tuning, or ``params.model_ref``. Evaluation
reports the reward accuracy and margins on the held-out pairs.
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


class DPOParams(PreferenceParams):
    """Parameters of ``llm_dpo``."""

    dpo_beta: float = Field(
        0.1, gt=0, description="DPO beta: how far the policy may move from the reference.", json_schema_extra=BASIC
    )
    model_ref: str | None = Field(
        None,
        description="Reference model (Hub id or folder); default: the base (adapter disabled under LoRA).",
        json_schema_extra={"tier": "advanced"},
    )


def prepare(splits, config, labels: LabelInfo, tokenizer) -> LLMPrepared:
    """Rendered prompt/chosen/rejected strings; TRL tokenizes them."""
    _preference.configure(tokenizer, config, labels)
    train, eval_set = _preference.datasets(splits)
    return LLMPrepared(train, eval_set, None, config=config, new_token_ids=added_token_ids(tokenizer, config))


def build_model(config, labels: LabelInfo):
    """The policy: the base causal LM (resized for tokens the template adds)."""
    tokenizer, _ = tokenizer_for(config, _preference.template_format(labels))
    return load_base_model(config, vocab_size=len(tokenizer))


def make_trainer(model, args, prepared: LLMPrepared, processor, compute_metrics, callbacks):
    """TRL ``DPOTrainer``; reward accuracy/margins come from its evaluation loop."""
    from trl import DPOConfig, DPOTrainer

    config = prepared.config
    params = config.params
    ref_model = None
    if params.model_ref:
        from transformers import AutoModelForCausalLM

        ref_model = AutoModelForCausalLM.from_pretrained(params.model_ref, dtype=model.dtype)
        ref_model.resize_token_embeddings(len(processor))
    dpo_args = trl_config(DPOConfig, args, beta=params.dpo_beta, max_length=params.block_size)
    trainer = trainer_class(DPOTrainer)(
        model=model,
        ref_model=ref_model,
        args=dpo_args,
        train_dataset=prepared.train,
        eval_dataset=prepared.eval,
        processing_class=processor,
        callbacks=callbacks,
        peft_config=lora_config(config, "CAUSAL_LM", prepared.new_token_ids),
    )
    trainer.run_config = config
    return trainer


SPEC = TaskSpec(
    name="llm_dpo",
    summary="Align a causal LM with preference pairs by DPO (reference = base model, or model_ref), full or LoRA.",
    params=DPOParams,
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
        aliases=("llm-dpo", "llm_dpo"),
        columns=_preference.AUTOTRAIN_COLUMNS,
        params={**AUTOTRAIN_PARAMS, "dpo_beta": "dpo_beta", "model_ref": "model_ref"},
        values=autotrain_value("dpo"),
    ),
    make_trainer=make_trainer,
    extras=(("trl", "llm"), ("peft", "llm")),
)
