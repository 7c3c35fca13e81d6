"""The contract every task fulfils: a frozen ``TaskSpec`` of plain functions, read by the one driver.

A task module defines its Params model and functions top to bottom and ends with ``SPEC = TaskSpec(...)``.
Heavy libraries (torch, transformers) are imported inside those functions so that listing tasks stays instant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import pandas as pd

    from trainforge.config.schema import RunConfig
    from trainforge.data.loading import Splits


class TaskParams(BaseModel):
    """Base for every task's ``params:`` model: closed, finite numbers only, and immutable."""

    # allow_inf_nan=False: a `.inf`/`.nan` (valid YAML floats) in any float param is a config error, not a NaN run.
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=(), allow_inf_nan=False)


@dataclass(frozen=True)
class Column:
    """A logical column the task reads; ``default`` is the user column name assumed when unmapped."""

    name: str
    help: str
    required: bool = True
    default: str | None = None
    rest: bool = False  # stands for every user column no other logical column takes, kept under its own name

    @property
    def source_default(self) -> str:
        """User column read when ``data.columns`` does not map this one."""
        return self.default or self.name


@dataclass(frozen=True)
class LabelInfo:
    """What the model predicts.

    Class names (classification), target names (regression), or for generative tasks (causal_lm, preference) the
    detected data format; ``notes`` are findings about the data that ``validate`` shows.
    """

    problem_type: Literal[
        "single_label_classification", "multi_label_classification", "regression", "causal_lm", "preference"
    ]
    names: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def num_labels(self) -> int:
        """Output units of the model head."""
        return len(self.names)


@dataclass
class Prepared:
    """Model-ready data produced by a task's ``prepare``."""

    train: Any
    eval: Any | None
    collator: Any | None = None


class TrainerLike(Protocol):
    """What the driver needs from a trainer; ``transformers.Trainer`` already satisfies it."""

    def train(self, resume_from_checkpoint: Any = None) -> Any: ...  # noqa: D102
    def evaluate(self) -> dict[str, float]: ...  # noqa: D102
    def save_model(self, output_dir: str | None = None) -> None: ...  # noqa: D102


@dataclass(frozen=True)
class Metric:
    """The metric that selects the best checkpoint, and its direction."""

    name: str
    greater_is_better: bool


AUTOTRAIN_DROP = object()  # returned by AutoTrainShape.values: the reference param is covered elsewhere (noted)


@dataclass(frozen=True)
class AutoTrainShape:
    """How the reference's YAML maps onto this task (see ``config/autotrain.py``)."""

    aliases: tuple[str, ...]
    columns: dict[str, str] = field(default_factory=dict)  # reference column_mapping key -> our logical column
    params: dict[str, str] = field(default_factory=dict)  # reference param -> our params.<name>
    values: Callable[[str, Any], Any] | None = None  # (reference param, value) -> our value; may return DROP
    selector: Callable[[dict], bool] | None = None  # for aliases shared by several specs: does this raw config pick us


@dataclass(frozen=True)
class TaskSpec:
    """Everything the driver, CLI, docs and UI need to know about one task."""

    name: str
    summary: str
    params: type[TaskParams]
    columns: tuple[Column, ...]
    analyze: Callable[[Splits, RunConfig], LabelInfo]
    load_processor: Callable[[RunConfig], Any]
    prepare: Callable[[Splits, RunConfig, LabelInfo, Any], Prepared]
    build_model: Callable[[RunConfig, LabelInfo], Any]
    compute_metrics: Callable[[LabelInfo, RunConfig], Callable[[Any], dict[str, float]] | None]
    best_metric: Callable[[LabelInfo], Metric]
    predict: Callable[[Path, pd.DataFrame, RunConfig], pd.DataFrame]
    pipeline_tag: str
    example: dict[str, Any] = field(default_factory=dict)  # model/data/params shown by `trainforge init`
    stratify_column: str | Callable[[RunConfig], str | None] | None = None  # a callable picks it from the config
    training_defaults: dict[str, Any] = field(default_factory=dict)
    check_config: Callable[[RunConfig], list[tuple[str, str]]] | None = None
    autotrain: AutoTrainShape | None = None
    make_trainer: Callable[..., TrainerLike] | None = None  # None: transformers.Trainer (training/hf_trainer.py)
    extras: tuple[tuple[str, str], ...] = ()  # (importable module, pip extra) checked before any data loads
    # Tasks trained without transformers (tabular): (config, prepared, labels, run_dir, events) -> TrainerLike. The
    # driver then skips the pretrained-model check, precision, build_model, TrainingArguments and HF callbacks.
    native_trainer: Callable[..., TrainerLike] | None = None
    default_model: str | None = None  # model.name when the config has no model section
    model_card: Callable[[Path, RunConfig], str] | None = None  # task section of README.md (replaces the usage block)
    library_name: str = "transformers"  # model card front matter
    # After training, with the kept model: store what predict needs beyond the weights (decision thresholds tuned on
    # the eval split); (config, labels, trainer, prepared, run_dir) -> notes for the user.
    finish: Callable[..., list[str]] | None = None
    # Shared sections the task reads only in part: section -> the fields it uses. A field it ignores, set to anything
    # but its default, is a config error naming the task (a silently ignored learning rate is a wrong result).
    # Sections not listed apply whole.
    applies: dict[str, frozenset[str]] = field(default_factory=dict)
    applies_why: str = ""  # why the others do not apply, for that message
