"""Direct Preference Optimization (DPO) of a causal LM on prompt/chosen/rejected pairs.

Example (``examples/llm_dpo/smollm2_dpo.yaml``)::

    task: llm_dpo
    model: {name: path/to/model}
    data: {source: examples/llm_dpo/data/pairs.jsonl, eval_fraction: 0.2}
    training: {num_train_epochs: 3, learning_rate: 5.0e-5}
    peft: {enabled: true}
    params: {dpo_beta: 0.1, block_size: 256}

Run it with ``trainforge train examples/llm_dpo/smollm2_dpo.yaml``. The reference model is the base with the
adapter disabled under LoRA, a frozen copy of the base for full fine-tuning, or ``params.model_ref``. Evaluation
reports the reward accuracy and margins on the held-out pairs.
"""

from __future__ import annotations

import dataclasses

from pydantic import Field

from trainforge.config.sections import BASIC
from trainforge.tasks.llm import _preference
from trainforge.tasks.llm._params import PreferenceParams, autotrain_shape
from trainforge.tasks.llm._trainers import trl_trainer
from trainforge.tasks.spec import TrainerInputs


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


def make_trainer(inputs: TrainerInputs):
    """TRL ``DPOTrainer``; reward accuracy/margins come from its evaluation loop."""
    from trl import DPOConfig, DPOTrainer

    config, model = inputs.ctx.config, inputs.model
    params = config.params
    ref_model = None
    if params.model_ref:
        from transformers import AutoModelForCausalLM

        # The base's remote-code permission applies to the reference model too (its revision names the base's).
        ref_model = AutoModelForCausalLM.from_pretrained(
            params.model_ref, dtype=model.dtype, trust_remote_code=config.model.trust_remote_code
        )
        ref_model.resize_token_embeddings(len(inputs.ctx.processor))
    return trl_trainer(
        inputs,
        DPOTrainer,
        DPOConfig,
        beta=params.dpo_beta,
        max_length=params.block_size,
        trainer_kwargs={"ref_model": ref_model},
    )


SPEC = dataclasses.replace(
    _preference.PREFERENCE_SPEC,
    name="llm_dpo",
    summary="Align a causal LM with preference pairs by DPO (reference = base model, or model_ref), full or LoRA.",
    params=DPOParams,
    make_trainer=make_trainer,
    autotrain=autotrain_shape(
        "dpo",
        ("llm-dpo", "llm_dpo"),
        _preference.AUTOTRAIN_COLUMNS,
        {"dpo_beta": "dpo_beta", "model_ref": "model_ref"},
    ),
)
