"""trainforge: train and fine-tune state-of-the-art models from one validated config.

The public SDK is re-exported lazily, so ``import trainforge`` (and the CLI's ``--help``) costs no torch import.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = [
    "RunConfig",
    "RunResult",
    "TaskSpec",
    "evaluate",
    "export",
    "list_tasks",
    "load_config",
    "load_predictor",
    "predict",
    "push",
    "train",
    "validate",
]

_EXPORTS = {
    "train": "trainforge.sdk",
    "validate": "trainforge.sdk",
    "predict": "trainforge.sdk",
    "load_predictor": "trainforge.sdk",
    "export": "trainforge.sdk",
    "evaluate": "trainforge.sdk",
    "push": "trainforge.sdk",
    "load_config": "trainforge.config.loading",
    "RunConfig": "trainforge.config.schema",
    "RunResult": "trainforge.training.driver",
    "TaskSpec": "trainforge.tasks.spec",
    "list_tasks": "trainforge.tasks",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trainforge' has no attribute {name!r}")
