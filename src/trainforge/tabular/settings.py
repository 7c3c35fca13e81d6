"""What one tabular search does, resolved once from ``params.preset``, the ``search:`` section and the data.

Precedence: an explicit ``search.*`` / ``params.*`` value, then the preset, then the rules below.

Presets (``params.preset``; AutoGluon's ``medium_quality`` / ``best_quality`` play the same role):

    preset   trials  time (s)  folds  repeats at most  ensemble
    quick        30        60      3                1  greedy
    medium       60       300      5                2  greedy
    best        300       900      8                3  stack

Every family's library defaults come first (about a dozen trials with every family), then the portfolio's
known-good points, then TPE samples.

Repeated folds (bagging): ``repeats = budget_s x 5,000 // (rows x features x folds)``, between 1 and the preset's
cap -- a trial's cost grows with rows x features x fits, and 5,000 cells fitted per second of budget leaves a busy
2-core machine time for every family's defaults and some search. Small tables get their folds repeated with other
shuffles, which steadies the score that picks a model and adds fold models to the bagged final model; a large one
keeps one pass so that the budget buys trials instead.

Regression targets (``target_rule``): non-negative whole numbers with more than two values are counts, whose
boosters may also fit a Poisson or a Tweedie loss; non-negative values with a skew above 1 (Fisher-Pearson) may also
be learnt as ``log1p(y)`` (``TransformedTargetRegressor``) or, when not counts, with a Tweedie loss. Which one wins
is the cross-validation's call: each is a search dimension and has a default trial.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainforge.tabular import scoring


@dataclass(frozen=True)
class Preset:
    """Budget and depth of one preset."""

    trials: int
    time_limit: int
    folds: int
    max_repeats: int
    ensemble: str


PRESETS = {
    "quick": Preset(trials=30, time_limit=60, folds=3, max_repeats=1, ensemble="greedy"),
    "medium": Preset(trials=60, time_limit=300, folds=5, max_repeats=2, ensemble="greedy"),
    "best": Preset(trials=300, time_limit=900, folds=8, max_repeats=3, ensemble="stack"),
}
CELL_FITS_PER_SECOND = 5000  # the repeats rule's unit: rows x features x folds one second of budget may pay for
DEFAULT_METRIC = {"classification": "log_loss", "regression": "rmse"}
# The older params names of settings that now live in search: (params.<old> -> search.<new>).
MOVED_TO_SEARCH = {
    "num_trials": "trials",
    "time_limit": "timeout",
    "study_storage": "storage",
    "study_name": "study_name",
    "metric": "metric",
    "pruning": "pruner",
}


@dataclass(frozen=True)
class TargetRule:
    """Regression losses and target transforms worth searching for the training targets."""

    objectives: tuple[str, ...] = ("squared_error",)
    transforms: tuple[str, ...] = ("none",)
    why: str = ""


@dataclass(frozen=True)
class Settings:
    """Everything the search reads, resolved (see the module docstring)."""

    preset: str
    trials: int
    time_limit: float
    validation: str
    folds: int
    repeats: int
    holdout_fraction: float
    ensemble: str  # "greedy" | "stack" | "none"
    ensemble_size: int
    metric: str
    greater: bool
    storage: str | None
    study_name: str
    sampler: str
    pruner: str
    pruner_startup_trials: int
    space: dict[str, Any]

    def describe(self) -> str:
        """One line for the model card and the events: validation, metric and budget."""
        how = (
            f"{self.folds}-fold cross-validation" + (f" repeated {self.repeats}x" if self.repeats > 1 else "")
            if self.validation == "cv"
            else f"a {self.holdout_fraction:g} holdout"
        )
        return (
            f"{how}, metric {self.metric}, preset {self.preset}: {self.trials} trials within {self.time_limit:g}s, "
            f"ensemble {self.ensemble}"
        )


def metric_name(config) -> str:
    """The search metric: ``search.metric`` without an ``eval_`` prefix, else the sub-task's default."""
    kind = "classification" if config.task == "tabular_classification" else "regression"
    return (config.search.metric or DEFAULT_METRIC[kind]).removeprefix("eval_")


def folds(params) -> int:
    """Cross-validation folds: ``params.cv_folds``, else the preset's."""
    return params.cv_folds or PRESETS[params.preset].folds


def resolve(config, n_rows: int, n_features: int) -> Settings:
    """The search's settings for a training table of ``n_rows`` x ``n_features`` (config validated already)."""
    params, search = config.params, config.search
    preset = PRESETS[params.preset]
    time_limit = float(search.timeout or preset.time_limit)
    k = folds(params)
    if params.validation == "holdout":
        repeats = 1
    elif params.cv_repeats is not None:
        repeats = params.cv_repeats
    else:
        cells = n_rows * max(1, n_features) * k
        repeats = max(1, min(preset.max_repeats, int(CELL_FITS_PER_SECOND * time_limit // cells)))
    metric = metric_name(config)
    return Settings(
        preset=params.preset,
        trials=search.trials or preset.trials,
        time_limit=time_limit,
        validation=params.validation,
        folds=k,
        repeats=repeats,
        holdout_fraction=params.holdout_fraction,
        ensemble=params.ensemble or preset.ensemble,
        ensemble_size=params.ensemble_size,
        metric=metric,
        greater=scoring.GREATER_IS_BETTER[metric],
        storage=search.storage,
        study_name=search.study_name,
        sampler=search.sampler,
        pruner=search.pruner,
        pruner_startup_trials=search.pruner_startup_trials,
        space=dict(search.space),
    )


def target_rule(kind: str, targets: list[np.ndarray]) -> TargetRule | None:
    """Losses and transforms to search for regression ``targets`` (every target must qualify); None otherwise."""
    if kind != "regression":
        return None
    nonnegative = all(float(np.min(y)) >= 0 for y in targets)
    if not nonnegative:
        return TargetRule(why="the target has negative values: squared error only")
    counts = all(np.all(y == np.round(y)) and len(np.unique(y)) > 2 for y in targets)
    skewed = all(_skew(y) > 1.0 for y in targets)
    objectives: tuple[str, ...] = ("squared_error",)
    if counts:
        objectives = ("squared_error", "poisson", "tweedie")
    elif skewed:
        objectives = ("squared_error", "tweedie")
    transforms = ("none", "log1p") if skewed else ("none",)
    why = (
        ("non-negative whole numbers: counts, so Poisson and Tweedie losses are searched too" if counts else "")
        + ("; " if counts and skewed else "")
        + ("skewed non-negative values (skew > 1): a log1p target is searched too" if skewed else "")
    )
    return TargetRule(objectives, transforms, why or "squared error only (neither counts nor skewed)")


def _skew(y: np.ndarray) -> float:
    """Fisher-Pearson skewness ``m3 / m2^1.5`` (0 for a constant)."""
    centred = np.asarray(y, dtype=float) - float(np.mean(y))
    m2 = float(np.mean(centred**2))
    return 0.0 if m2 == 0 else float(np.mean(centred**3)) / m2**1.5


# ------------------------------------------------------------------------------------------------ config


def relocate(raw: dict, own: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Move the older ``params`` names of search settings into ``search:``, with a note each.

    ``num_trials``, ``time_limit``, ``study_storage``, ``study_name``, ``metric`` and ``pruning`` live in
    ``search:`` since it exists; conflicting values are returned as problems.

    ``pruning: false`` becomes ``search.pruner: none`` (true: ``median``). A misspelt older name (not one of the
    task's ``own`` params) is named with the ``search:`` field it meant.
    """
    import difflib

    params = raw["params"]
    problems: list[tuple[str, str]] = []
    for name in [n for n in params if isinstance(n, str) and n not in own and n not in MOVED_TO_SEARCH]:
        close = difflib.get_close_matches(name, list(MOVED_TO_SEARCH), n=1, cutoff=0.75)
        if close:
            params.pop(name)
            problems.append(
                (
                    f"params.{name}",
                    f"unknown key; did you mean search.{MOVED_TO_SEARCH[close[0]]} (params.{close[0]} is its older "
                    "name)?",
                )
            )
    if raw.get("search") is None:
        raw["search"] = {}
    search = raw["search"]
    if not isinstance(search, dict):  # the section's own error is reported; the params stay where they are
        return problems
    for old, new in MOVED_TO_SEARCH.items():
        if old not in params:
            continue
        value = params.pop(old)
        if old == "pruning" and isinstance(value, bool):
            value = "median" if value else "none"
        if new in search and search[new] != value:
            problems.append(
                (
                    f"params.{old}",
                    f"sets search.{new} too, which the config sets to {search[new]!r}: keep one "
                    f"(params.{old} is the older name)",
                )
            )
            continue
        search[new] = value
        print(f"note: params.{old} is read as search.{new}: {value!r}; write it there", file=sys.stderr)
    return problems


def check_search(config, kind: str) -> list[tuple[str, str]]:
    """What ``search:`` may say to a tabular search.

    A metric of the sub-task in its own direction, a TPE or random sampler, and ``search.space`` keys
    ``<family>.<hyper-parameter>`` of the built-in spaces, within the values the estimator accepts.
    """
    from trainforge.tabular.models import FAMILIES, families_for

    search, params = config.search, config.params
    problems: list[tuple[str, str]] = []
    metric = metric_name(config)
    allowed = scoring.CLASSIFICATION_METRICS if kind == "classification" else scoring.REGRESSION_METRICS
    if metric not in allowed:
        problems.append(
            ("search.metric", f"{search.metric!r} is not a {kind} metric; use one of {', '.join(allowed)}")
        )
    elif search.direction is not None:
        natural = "maximize" if scoring.GREATER_IS_BETTER[metric] else "minimize"
        if search.direction != natural:
            problems.append(
                ("search.direction", f"{metric} is to {natural}, not {search.direction}; remove search.direction")
            )
    if search.sampler == "grid":
        problems.append(
            ("search.sampler", "tabular searches continuous ranges of model families: use tpe (default) or random")
        )
    if params.validation == "holdout" and params.cv_repeats is not None:
        problems.append(("params.cv_repeats", "repeats are of cross-validation folds; remove it with holdout"))
    searched = families_for(kind, config.model.name, params.families, weighted=False)
    for key, dim in search.space.items():
        problems += [(f"search.space.{key}", m) for m in _space_key_problems(key, dim, kind, searched, FAMILIES)]
    return problems


def _space_key_problems(key: str, dim, kind: str, searched: list[str], families) -> list[str]:
    from trainforge.tabular.models import SPACE

    family, _, name = key.partition(".")
    if family in ("params", "training", "model", "peft", "family"):
        return [
            "tabular searches model families and their hyper-parameters itself: search.space keys are "
            "<family>.<hyper-parameter> (e.g. xgboost.max_depth: {int: [2, 8]}); set params and model.name (or "
            "params.families) to fixed values instead"
        ]
    if family not in families:
        return [f"{family!r} is no model family; keys are <family>.<hyper-parameter>, families: {', '.join(families)}"]
    if family not in searched:
        return [f"{family} is not searched in this run ({kind}; families: {', '.join(searched)})"]
    space = SPACE[family]
    if name not in space:
        return [f"{family} has no searched hyper-parameter {name!r}; searched: {', '.join(space)}"]
    built_in = space[name]
    if built_in.kind == "choice":
        if dim.choice is None or any(v not in built_in.choices for v in dim.choice):
            return [f"{key} takes choice: [...] among {list(built_in.choices)}"]
        return []
    if dim.choice is not None:
        values = list(dim.choice)
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
            return [f"{key} is a number: choice values must be numbers"]
    elif built_in.kind == "int" and dim.integer is None:
        return [f"{key} is a whole number: search it with int: [low, high] or choice: [...]"]
    elif built_in.kind == "float" and dim.integer is not None:
        return [f"{key} is a real number: search it with loguniform/uniform: [low, high] or choice: [...]"]
    else:
        values = list(dim.loguniform or dim.uniform or dim.integer)
    if built_in.kind == "int" and any(v != int(v) for v in values):
        return [f"{key} is a whole number: {values} are not"]
    low, high = built_in.valid
    outside = [v for v in values if not low <= v <= high]
    if outside:
        return [f"{outside} outside the values {family} accepts for {name} ([{low:g}, {high:g}])"]
    return []
