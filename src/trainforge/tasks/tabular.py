"""Tabular classification (binary, multi-class, multi-label) and regression (one or several targets).

Example (``examples/tabular_classification/churn.yaml``)::

    task: tabular_classification
    model: {name: auto}                      # or one family: lightgbm, xgboost, random_forest, ...
    data: {source: data/churn.csv, columns: {id: customer_id}, eval_fraction: 0.2}
    params: {target_columns: [churned], num_trials: 30, time_limit: 120}

Run it with ``trainforge train examples/tabular_classification/churn.yaml``.

Every column that is not a target, the id or the sample weight is a feature; types are inferred (numbers,
categories, booleans, dates expanded to parts) unless listed. An Optuna study searches model families and their
hyper-parameters with k-fold validation, then greedy ensemble selection weights the best trials. The run
directory holds ``model.joblib``: one scikit-learn object whose ``predict``/``predict_proba`` take raw rows and
return the original labels, loadable with joblib alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from trainforge.config.choices import CategoricalImputer, NumericalImputer, NumericScaler, TabularModel
from trainforge.config.sections import ADVANCED, BASIC
from trainforge.errors import DataError
from trainforge.tasks.spec import (
    AUTOTRAIN_DROP,
    Analysis,
    AutoTrainShape,
    Column,
    Metric,
    Prepared,
    RunContext,
    TaskParams,
    TaskSpec,
    TrainerInputs,
)

# ---------------------------------------------------------------------------------------------------- params


class TabularParams(TaskParams):
    """Parameters shared by ``tabular_classification`` and ``tabular_regression``."""

    target_columns: list[str] = Field(
        ["target"],
        min_length=1,
        description="Column(s) to predict; several make a multi-label / multi-target task.",
        json_schema_extra=BASIC,
    )
    categorical_columns: list[str] | None = Field(
        None, description="Columns to treat as categories (default: inferred).", json_schema_extra=ADVANCED
    )
    numerical_columns: list[str] | None = Field(
        None, description="Columns to treat as numbers (default: inferred).", json_schema_extra=ADVANCED
    )
    ignore_columns: list[str] = Field(
        [], description="Columns that are not features (besides id, targets, weight).", json_schema_extra=ADVANCED
    )
    families: list[TabularModel] | None = Field(
        None,
        description="With model.name auto: search only these families (default: every family of the sub-task).",
        json_schema_extra=ADVANCED,
    )
    preset: Literal["quick", "medium", "best"] = Field(
        "medium",
        description=(
            "Budget and depth: quick (30 trials, 60 s, 3 folds), medium (60, 300 s, 5 folds, folds repeated up to 2x "
            "on small tables), best (300, 900 s, 8 folds, up to 3x, stacking). search.trials / search.timeout and "
            "the params below override it."
        ),
        json_schema_extra=BASIC,
    )
    validation: str = Field(
        "cv",
        pattern="^(cv|holdout)$",
        description="cv: k-fold cross-validation; holdout: one split.",
        json_schema_extra=ADVANCED,
    )
    cv_folds: int | None = Field(
        None,
        ge=2,
        le=20,
        description="Folds of the cross-validation (default: the preset's).",
        json_schema_extra=ADVANCED,
    )
    cv_repeats: int | None = Field(
        None,
        ge=1,
        le=10,
        description=(
            "Passes of the cross-validation with other shuffles (default: as many as rows x folds allow within the "
            "budget, up to the preset's cap); every fold model joins the final bag."
        ),
        json_schema_extra=ADVANCED,
    )
    holdout_fraction: float = Field(
        0.2, gt=0, lt=1, description="Validation share with validation: holdout.", json_schema_extra=ADVANCED
    )
    ensemble: Literal["greedy", "stack", "none"] | None = Field(
        None,
        description=(
            "greedy: weighted average of the best trials (Caruana); stack: also a linear model over the best trials' "
            "out-of-fold predictions; none: the best trial. The final model is whichever scores best in validation "
            "(default: the preset's)."
        ),
        json_schema_extra=BASIC,
    )
    ensemble_size: int = Field(
        25, ge=1, description="Greedy selection rounds (with replacement).", json_schema_extra=ADVANCED
    )
    numerical_imputer: NumericalImputer = Field(
        "median", description="Fills missing numbers (models that need it).", json_schema_extra=ADVANCED
    )
    categorical_imputer: CategoricalImputer = Field(
        "constant",
        description="constant: missing is its own category; most_frequent: the commonest value.",
        json_schema_extra=ADVANCED,
    )
    numeric_scaler: NumericScaler = Field(
        "standard", description="Scaling for linear, SVM and k-NN models.", json_schema_extra=ADVANCED
    )
    n_jobs: int = Field(
        1,
        description="Threads per model fit (-1: all cores; 1 is fastest on small tables and busy machines).",
        json_schema_extra=ADVANCED,
    )

    @field_validator("target_columns", mode="before")
    @classmethod
    def _one_target_as_list(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("ensemble", mode="before")
    @classmethod
    def _ensemble_switch(cls, value):
        """The earlier on/off switch: true is the greedy ensemble, false the best trial alone."""
        return {True: "greedy", False: "none"}.get(value, value) if isinstance(value, bool) else value


COLUMNS = (
    Column("id", "optional row identifier, excluded from the features", required=False, role="id", kind="category"),
    Column(
        "sample_weight",
        "optional non-negative weight of each row in fitting and metrics",
        required=False,
        role="weight",
        kind="number",
    ),
    Column(
        "features",
        "every other column (except params.target_columns / ignore_columns): the model's inputs",
        required=False,
        role="features",
        kind="table",
    ),
)


def check_config(config) -> list[tuple[str, str]]:
    """Model family fits the sub-task; features are not mapped; ``search:`` fits a tabular search (``checks.py``)."""
    from trainforge.tabular.checks import config_problems
    from trainforge.tabular.settings import check_search

    return config_problems(config, _kind(config)) + check_search(config, _kind(config))


def _kind(config) -> str:
    return "classification" if config.task == "tabular_classification" else "regression"


def _stratify(config) -> str | None:
    targets = config.params.target_columns
    return targets[0] if config.task == "tabular_classification" and len(targets) == 1 else None


# ---------------------------------------------------------------------------------------------------- analyze


def analyze(ctx: RunContext, splits) -> Analysis:
    """Check targets, weights and features before any model: every problem names its column, rows and fix.

    Missing-value markers (``?``, ``NA``, ``-``, ...) in a column of numbers are read as missing, with a note;
    class labels are read by the rule text classification uses (``read_label_names``), with its notes.

    Raises:
        DataError: Every problem of the targets, weights and feature columns of both splits in one message; then
            class or leakage problems that need clean targets to be seen.
    """
    from trainforge.data.labels import Problems
    from trainforge.tabular import checks, features

    config = ctx.config
    params, kind = config.params, _kind(config)
    frames = [(frame, origin) for _, frame, origin in splits.present()]
    problems = Problems()
    present = True
    checked = _target_frames(splits, config)
    for frame, origin in checked:
        present &= problems.check(checks.check_targets_present, frame, params.target_columns, origin, config)
    for frame, origin in frames:
        problems.check(checks.check_weights, frame, origin)
    train = splits.train
    reserved = _reserved(config)
    candidates = [
        c
        for c in train.columns
        if c not in reserved and c not in params.ignore_columns and c not in (params.categorical_columns or [])
    ]
    notes = features.read_missing_markers(frames, candidates)
    plan = None
    try:
        plan = features.plan_columns(train, params, reserved, splits.train_origin)
    except DataError as exc:
        problems.add(str(exc))
    if present:  # the values of the targets are worth reading only where every target has one in every row
        notes += _read_targets(splits, frames, checked, params.target_columns, kind, problems)
    problems.raise_if_any()
    if plan is None:  # plan_columns failed, and its problem was raised just above
        raise AssertionError("the column plan is missing although no problem was found")
    names: list[str] = []
    if kind == "classification":
        for target in params.target_columns:
            names = checks.check_classes(splits, target, params, origin=splits.train_origin)
    features.check_leakage(train, plan, params.target_columns, splits.train_origin)
    for _, frame, origin in splits.present()[1:]:
        features.check_eval_columns(frame, plan, origin)
    notes += [f"column {c!r} left out: {why}" for c, why in plan.dropped.items()]
    targets = tuple(params.target_columns)
    if kind == "regression":
        return Analysis("regression", targets, notes=tuple(notes))
    if len(targets) > 1:
        return Analysis("multi_label_classification", targets, notes=tuple(notes))
    return Analysis("single_label_classification", tuple(names), notes=tuple(notes))


def _target_frames(splits, config) -> list[tuple[pd.DataFrame, str]]:
    """The rows whose targets are checked, each with its origin.

    A hold-out (``data.eval_fraction``) is rows of the training file: they are checked with the file's other rows,
    so each problem is reported once, by the file's row numbers, rather than once per split.
    """
    test = [] if splits.test is None else [(splits.test, splits.test_origin)]
    if splits.eval is None:
        return [(splits.train, splits.train_origin)] + test
    if config.data.eval_split is None:  # held out by load_splits: indexes are the rows as loaded, never repeated
        return [(pd.concat([splits.train, splits.eval]).sort_index(), splits.train_origin)] + test
    return [(splits.train, splits.train_origin), (splits.eval, splits.eval_origin)] + test


def _read_targets(splits, frames, checked, targets: list[str], kind: str, problems) -> list[str]:
    """Regression targets as finite numbers, class labels by the shared rule; problems are collected. Returns notes.

    ``checked`` are the rows whose problems are reported (``_target_frames``), ``frames`` the splits converted.
    """
    from trainforge.data.labels import finite_numbers
    from trainforge.tabular import checks

    notes: list[str] = []
    for target in targets:
        if kind == "regression":
            what = f"target {target!r}"
            if all([problems.check(finite_numbers, frame[target], what, origin) for frame, origin in checked]):
                for frame, origin in frames:
                    frame[target] = finite_numbers(frame[target], what, origin)
        else:
            notes.extend(checks.read_classes(splits, target))
        values = splits.train[target]
        if values.nunique() < 2:
            problems.add(
                f"{splits.train_origin}: target {target!r} has the same value ({values.iloc[0]!r}) in every row, so "
                "there is nothing to learn; check params.target_columns"
            )
    return notes


def _reserved(config) -> set[str]:
    return {*config.params.target_columns, "id", "sample_weight"}


# ---------------------------------------------------------------------------------------------------- prepare


def load_processor(ctx: RunContext) -> None:
    """Tabular models carry their preprocessing inside the pipeline: no separate processor."""
    return None


def prepare(ctx: RunContext, splits) -> Prepared:
    """Encode targets and collect features: ``Prepared(train=Problem, eval/test=(X, Y, weight) or None)``."""
    config = ctx.config
    from sklearn.preprocessing import LabelEncoder

    from trainforge.tabular import features
    from trainforge.tabular.search import Problem

    params, kind = config.params, _kind(config)
    plan = features.plan_columns(splits.train, params, _reserved(config), splits.train_origin)
    fitted = [LabelEncoder().fit(splits.train[t]) for t in params.target_columns] if kind == "classification" else []
    encoders = fitted if kind == "classification" else [None] * len(params.target_columns)

    def encode(frame: pd.DataFrame) -> list[np.ndarray]:
        if kind == "regression":
            return [frame[t].to_numpy(dtype=float) for t in params.target_columns]
        return [enc.transform(frame[t]) for enc, t in zip(fitted, params.target_columns, strict=True)]

    def weight(frame: pd.DataFrame) -> np.ndarray | None:
        return frame["sample_weight"].to_numpy(dtype=float) if "sample_weight" in frame else None

    train = splits.train.reset_index(drop=True)
    problem = Problem(
        kind, list(params.target_columns), encoders, plan, train[list(plan.features)], encode(train), weight(train)
    )

    def rows(frame: pd.DataFrame | None) -> tuple | None:
        if frame is None:
            return None
        frame = frame.reset_index(drop=True)
        return frame[list(plan.features)], encode(frame), weight(frame)

    return Prepared(problem, rows(splits.eval), test=rows(splits.test))


# ---------------------------------------------------------------------------------------------------- trainer


def make_trainer(inputs: TrainerInputs):
    """The trainer the driver runs for tabular tasks: ``tabular/trainer.py`` (no model, no training arguments)."""
    from trainforge.tabular.trainer import TabularTrainer

    ctx = inputs.ctx
    return TabularTrainer(ctx.config, inputs.prepared, ctx.labels, ctx.output_dir, ctx.events)


def best_metric(ctx: RunContext) -> Metric:
    """Log loss (classification) or RMSE (regression): the defaults of ``params.metric``."""
    return Metric("rmse" if ctx.labels.problem_type == "regression" else "log_loss", greater_is_better=False)


def compute_metrics(ctx: RunContext):
    """Tabular metrics are computed by the trainer's ``evaluate`` (see ``tabular/scoring.py``)."""
    from trainforge.tabular.scoring import report

    return report


# ---------------------------------------------------------------------------------------------------- predict


class TabularPredictor:
    """A finished tabular run, loaded once: ``model.joblib`` (one estimator per target) and its feature columns."""

    def __init__(self, run_dir: Path, config) -> None:
        """Load ``run_dir/model.joblib``.

        Raises:
            OSError: The file is missing or unreadable.
        """
        import threading

        import joblib

        self.config = config
        self.model = joblib.load(Path(run_dir) / "model.joblib")
        self.voters = self.model.estimators_ if hasattr(self.model, "estimator") else [self.model]
        self.features = [str(c) for c in self.voters[0].feature_names_in_]
        self.numeric = _numeric_columns(self.voters[0])
        self._lock = threading.Lock()  # boosters' predict is not documented as thread-safe

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add ``prediction`` (one target) or ``prediction_<target>`` columns, and ``prob_...`` for classification.

        Args:
            frame: n rows holding every feature column the model was trained on (others are kept, unread).

        Returns:
            A copy of ``frame`` (n rows) with the predictions (original labels or numbers) and, for classification,
            one probability column per class and target.

        Raises:
            DataError: A feature column is missing, or a numeric one holds text that is no missing-value marker.
        """
        from trainforge.tabular.features import check_numbers

        absent = [c for c in self.features if c not in frame.columns]
        if absent:
            raise DataError(
                f"the input lacks the feature columns {absent} the model was trained on; "
                f"found: {', '.join(map(str, frame.columns))}"
            )
        # Missing-value markers are the model's to read; any other text in a numeric column is named here.
        checked = frame if pd.api.types.is_integer_dtype(frame.index) else frame.reset_index(drop=True)
        check_numbers(checked, self.numeric, "the input")
        out = frame.copy()
        targets = self.config.params.target_columns
        with self._lock:
            for target, voter in zip(targets, self.voters, strict=True):
                name = "prediction" if len(targets) == 1 else f"prediction_{target}"
                out[name] = voter.predict(frame)
                if self.config.task == "tabular_classification":
                    probabilities = voter.predict_proba(frame)
                    prefix = "prob_" if len(targets) == 1 else f"prob_{target}_"
                    for i, label in enumerate(voter.classes_):
                        out[f"{prefix}{label}"] = probabilities[:, i]
        return out


def predict(run_dir: Path, frame: pd.DataFrame, config) -> pd.DataFrame:
    """One prediction: load the run (``TabularPredictor``) and predict ``frame``."""
    return TabularPredictor(run_dir, config).predict(frame)


def _numeric_columns(voter) -> list[str]:
    """The columns the fitted preprocessing reads as numbers (every member shares one column plan)."""
    from trainforge.tabular.ensemble import first_pipeline

    pipeline = first_pipeline(voter)
    prepare = None if pipeline is None else pipeline.named_steps.get("prepare")
    if prepare is None:  # not a trainforge pipeline (a bare estimator): no column plan to read
        return []
    return [str(c) for name, _, columns in prepare.transformers_ if name == "num" for c in columns]


def model_card(run_dir: Path, config) -> str:
    """The card's task section: leaderboard, importance plot and joblib usage."""
    from trainforge.tabular.report import card_section

    return card_section(run_dir, config)


# ---------------------------------------------------------------------------------------------------- specs


def _relocate(raw: dict) -> list[tuple[str, str]]:
    """``params.num_trials`` and the other older names of search settings, moved into ``search:`` with a note."""
    from trainforge.tabular.settings import relocate

    return relocate(raw, TabularParams.model_fields)


def _reference_value(name: str, value):
    """The reference's ``params.task`` chose the sub-task, which the spec already is."""
    if name == "task":
        return AUTOTRAIN_DROP
    if name == "categorical_imputer" and value is None:
        return "constant"
    return value


def _reference_shape(kind: str) -> AutoTrainShape:
    return AutoTrainShape(
        aliases=("tabular", f"tabular_{kind}", f"tabular-{kind}"),
        columns={"id_column": "id", "target_columns": "params.target_columns"},
        params={
            "task": "task",
            "num_trials": "num_trials",
            "time_limit": "time_limit",
            "categorical_imputer": "categorical_imputer",
            "numerical_imputer": "numerical_imputer",
            "numeric_scaler": "numeric_scaler",
            "categorical_columns": "categorical_columns",
            "numerical_columns": "numerical_columns",
        },
        values=_reference_value,
        selector=lambda raw: (raw.get("params") or {}).get("task", "classification") == kind,
    )


_COMMON: dict[str, Any] = dict(
    columns=COLUMNS,
    analyze=analyze,
    load_processor=load_processor,
    prepare=prepare,
    build_model=lambda ctx: None,
    compute_metrics=compute_metrics,
    best_metric=best_metric,
    predict=predict,
    load_predictor=TabularPredictor,
    check_config=check_config,
    stratify_column=_stratify,
    make_trainer=make_trainer,
    pretrained_model=False,
    distributed=False,  # its model families train in this process (n_jobs threads), not under a Trainer
    processor="none",
    playground="table",
    model_card=model_card,
    library_name="sklearn",
    default_model="auto",
    extras=(("xgboost", "tabular"), ("lightgbm", "tabular"), ("optuna", "tabular"), ("joblib", "tabular")),
    # The search sets each model family's own hyperparameters; of training: only the seed is shared.
    applies={"training": frozenset({"seed"}), "model": frozenset({"name"})},
    applies_why=(
        "it searches scikit-learn, XGBoost and LightGBM models, no neural network: set its budget with params.preset "
        "and search:"
    ),
    own_search=True,
    relocate_params=_relocate,
)

SPEC = TaskSpec(
    name="tabular_classification",
    summary="Predict classes from table columns (binary, multi-class, multi-label): searched and ensembled models.",
    params=TabularParams,
    pipeline_tag="tabular-classification",
    example={"model": {"name": "auto"}, "data": {"source": "data/train.csv"}, "params": {"target_columns": ["label"]}},
    autotrain=_reference_shape("classification"),
    **_COMMON,
)

REGRESSION_SPEC = TaskSpec(
    name="tabular_regression",
    summary="Predict one or several numbers from table columns: searched and ensembled models.",
    params=TabularParams,
    pipeline_tag="tabular-regression",
    example={
        "model": {"name": "auto"},
        "data": {"source": "data/train.csv"},
        "params": {"target_columns": ["target"]},
    },
    autotrain=_reference_shape("regression"),
    **_COMMON,
)
