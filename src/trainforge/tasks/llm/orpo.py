"""Odds Ratio Preference Optimization (ORPO): SFT and preference alignment in one step, no reference model.

Example (``examples/llm_orpo/smollm2_orpo.yaml``)::

    task: llm_orpo
    model: {name: path/to/model}
    data: {source: examples/llm_dpo/data/pairs.jsonl, eval_fraction: 0.2}
    peft: {enabled: true}
    params: {orpo_beta: 0.1, block_size: 256}

Run it with ``trainforge train examples/llm_orpo/smollm2_orpo.yaml``. The loop is TRL's
``trl.experimental.orpo.ORPOTrainer``; evaluation reports reward accuracy and margins on the held-out pairs.
"""

from __future__ import annotations

import dataclasses

from pydantic import Field

from trainforge.config.sections import BASIC
from trainforge.tasks.llm import _preference
from trainforge.tasks.llm._params import PreferenceParams, autotrain_shape
from trainforge.tasks.llm._trainers import trl_trainer
from trainforge.tasks.spec import TrainerInputs


class ORPOParams(PreferenceParams):
    """Parameters of ``llm_orpo``."""

    orpo_beta: float = Field(
        0.1,
        gt=0,
        description="ORPO lambda: weight of the odds-ratio term against the SFT loss.",
        json_schema_extra=BASIC,
    )


def make_trainer(inputs: TrainerInputs):
    """TRL's experimental ``ORPOTrainer``."""
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    params = inputs.ctx.config.params
    return trl_trainer(inputs, ORPOTrainer, ORPOConfig, beta=params.orpo_beta, max_length=params.block_size)


SPEC = dataclasses.replace(
    _preference.PREFERENCE_SPEC,
    name="llm_orpo",
    summary="Align a causal LM with preference pairs by ORPO (SFT + odds-ratio, no reference model), full or LoRA.",
    params=ORPOParams,
    make_trainer=make_trainer,
    autotrain=autotrain_shape(
        "orpo", ("llm-orpo", "llm_orpo"), _preference.AUTOTRAIN_COLUMNS, {"dpo_beta": "orpo_beta"}
    ),
)
