"""The spec every LLM task starts from: each task module replaces only what differs (``dataclasses.replace``).

Tokenizer loading, model building, metrics, prediction, model card, checks and extras are the same for all five
methods; a new method (KTO, SimPO) is one module: its params, analysis/preparation if its data differ, and its TRL
trainer through ``trl_trainer``.
"""

from __future__ import annotations

from trainforge.tasks.llm import _inference
from trainforge.tasks.llm._models import build_causal_lm
from trainforge.tasks.llm._params import LLMParams, check_config
from trainforge.tasks.llm._tokenizer import load_processor
from trainforge.tasks.llm._trainers import best_metric, model_card, no_metrics
from trainforge.tasks.spec import TaskSpec


def _unset(*args, **kwargs):
    raise RuntimeError("LLM_SPEC is a base: a task module replaces analyze, prepare and make_trainer")


LLM_SPEC = TaskSpec(
    name="llm_base",
    summary="(base of the LLM tasks; not registered)",
    params=LLMParams,
    columns=(),
    analyze=_unset,
    load_processor=load_processor,
    prepare=_unset,
    build_model=build_causal_lm,
    compute_metrics=no_metrics,
    best_metric=best_metric,
    predict=_inference.predict_generate,
    pipeline_tag="text-generation",
    playground="chat",
    model_card=model_card,
    check_config=check_config,
    make_trainer=_unset,
    extras=(("trl", "llm"), ("peft", "llm")),
    lora="CAUSAL_LM",
    lora_by_trainer=True,  # TRL's trainers take the LoRA config; the run keeps the adapter (merged/ on request)
)
