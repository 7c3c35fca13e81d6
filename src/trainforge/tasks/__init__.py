"""The task registry: one explicit list, resolved lazily so that importing it costs nothing."""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainforge.tasks.spec import TaskSpec

# Every task, once: "module:attribute". Adding a task adds one line here.
REGISTRY: tuple[str, ...] = (
    "trainforge.tasks.text_classification:SPEC",
    "trainforge.tasks.text_classification:REGRESSION_SPEC",
    "trainforge.tasks.token_classification:SPEC",
    "trainforge.tasks.tabular:SPEC",
    "trainforge.tasks.tabular:REGRESSION_SPEC",
    "trainforge.tasks.extractive_qa:SPEC",
    "trainforge.tasks.llm.sft:SPEC",
    "trainforge.tasks.llm.generic:SPEC",
    "trainforge.tasks.llm.dpo:SPEC",
    "trainforge.tasks.llm.orpo:SPEC",
    "trainforge.tasks.llm.reward:SPEC",
    "trainforge.tasks.seq2seq:SPEC",
    "trainforge.tasks.sentence_transformers:PAIR_SPEC",
    "trainforge.tasks.sentence_transformers:PAIR_CLASS_SPEC",
    "trainforge.tasks.sentence_transformers:PAIR_SCORE_SPEC",
    "trainforge.tasks.sentence_transformers:TRIPLET_SPEC",
    "trainforge.tasks.sentence_transformers:QA_SPEC",
    "trainforge.tasks.image_classification:SPEC",
    "trainforge.tasks.image_classification:REGRESSION_SPEC",
    "trainforge.tasks.object_detection:SPEC",
    "trainforge.tasks.vlm:SPEC",
)


@cache
def _specs() -> dict[str, TaskSpec]:
    specs = {}
    for entry in REGISTRY:
        module, attribute = entry.split(":")
        spec = getattr(importlib.import_module(module), attribute)
        specs[spec.name] = spec
    return specs


def task_names() -> list[str]:
    """Names of every registered task, in registry order."""
    return list(_specs())


def get_task(name: str) -> TaskSpec:
    """The spec registered under ``name`` (a ``KeyError`` names the known tasks)."""
    specs = _specs()
    if name not in specs:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(specs)}")
    return specs[name]


def list_tasks() -> list[TaskSpec]:
    """Every registered spec, in registry order."""
    return list(_specs().values())
