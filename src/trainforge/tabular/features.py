"""Feature columns: type inference, the checks that run before any model, and per-family preprocessing.

Preprocessing is built only from scikit-learn classes and picklable pandas/stdlib callables (``functools.partial``
of pandas methods, ``operator.attrgetter``), so a fitted pipeline needs no trainforge code to load or predict.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from trainforge.data.labels import Problems
from trainforge.errors import DataError

DATETIME_PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "hour")
_MIN_ROWS_FOR_ID_CHECK = 20

# Cells that mean "no value" in a column of numbers, in any case: the OpenML/UCI '?', spreadsheets' '-' and
# '#N/A', and the words people type. pandas reads some of them as missing in a CSV, but not '?', '-' or
# 'missing', and none of them in JSON.
MISSING_MARKERS = ("", "?", "-", "na", "n/a", "#n/a", "null", "none", "nan", "missing")
# A plain string (no trainforge object) so that the fitted pipeline applies it at predict without trainforge.
MISSING_PATTERN = r"(?i)^\s*(?:" + "|".join(re.escape(marker) for marker in MISSING_MARKERS) + r")\s*$"
_MISSING = re.compile(MISSING_PATTERN)


@dataclass(frozen=True)
class ColumnPlan:
    """Which user columns feed the model, and how; ``dropped`` maps a column to why it is left out."""

    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    datetime: tuple[str, ...]
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> tuple[str, ...]:
        """Every column the model reads, in a stable order."""
        return self.numerical + self.categorical + self.datetime


def rows_text(index) -> str:
    """``rows 3, 7, 9 ...`` (1-based positions as in the user's file, data rows only)."""
    rows = [int(i) + 1 for i in list(index)[:5]]
    return "rows " + ", ".join(map(str, rows)) + (" ..." if len(index) > 5 else "")


def plan_columns(frame: pd.DataFrame, params, reserved: set[str], origin: str) -> ColumnPlan:
    """Type every feature column of the training frame and check it.

    Args:
        frame: Training rows (logical id/sample_weight columns plus the user's other columns).
        params: The task's params (explicit column lists, ignore list).
        reserved: Columns that are not features (targets, id, sample_weight).
        origin: File or split name for messages.

    Raises:
        DataError: A listed column is absent, a column is empty in every row, or looks like a row id (every such
            problem in one message).
    """
    problems = Problems()
    explicit_num, explicit_cat = list(params.numerical_columns or []), list(params.categorical_columns or [])
    for key, names in (
        ("numerical_columns", explicit_num),
        ("categorical_columns", explicit_cat),
        ("ignore_columns", params.ignore_columns),
    ):
        absent = [n for n in names if n not in frame.columns]
        if absent:
            problems.add(
                f"params.{key} lists {absent}, which {origin} does not have; "
                f"columns found: {', '.join(map(str, frame.columns))}"
            )
    both = sorted(set(explicit_num) & set(explicit_cat))
    if both:
        problems.add(
            f"params.numerical_columns and params.categorical_columns both list {both}; keep each in one list"
        )
    problems.raise_if_any()
    numerical, categorical, dates, dropped = [], [], [], {}
    candidates = [c for c in frame.columns if c not in reserved and c not in params.ignore_columns]
    for column in candidates:
        values = frame[column]
        if values.isna().all():
            problems.add(
                f"{origin}: column {column!r} is empty in every row, so it carries no information. "
                f"Drop it from the file or add it to params.ignore_columns."
            )
        elif column in explicit_num:
            if (
                not pd.api.types.is_numeric_dtype(values)
                and pd.to_numeric(values, errors="coerce").notna().sum() < values.notna().sum()
            ):
                bad = values.index[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
                problems.add(
                    f"{origin}: params.numerical_columns lists {column!r}, "
                    f"but it holds non-numbers at {rows_text(bad)}"
                )
            numerical.append(column)
        elif column in explicit_cat:
            categorical.append(column)
        elif values.nunique(dropna=True) <= 1:
            dropped[column] = "the same value in every row"
        elif (
            pd.api.types.is_datetime64_any_dtype(values)
            or (values.dtype.kind in "OUT" or pd.api.types.is_string_dtype(values))
            and _looks_like_dates(values)
        ):
            dates.append(column)
        elif not pd.api.types.is_numeric_dtype(values) and _looks_like_free_text(values):
            dropped[column] = "free text with mostly unique values (list it in params.categorical_columns to use it)"
        elif _is_id_like(values):
            problems.add(
                f"{origin}: column {column!r} holds a different value in each of its {len(values)} rows, so it looks "
                "like a row id: a model can memorise rows through it (target leakage) and it cannot generalise. Set "
                f"data.columns.id: {column} to exclude it, add it to params.ignore_columns, or list it in "
                "params.categorical_columns / params.numerical_columns to keep it as a feature."
            )
        elif pd.api.types.is_bool_dtype(values):
            categorical.append(column)
        elif pd.api.types.is_numeric_dtype(values):
            numerical.append(column)
        else:
            categorical.append(column)
    problems.raise_if_any()
    if not numerical + categorical + dates:
        raise DataError(
            f"{origin}: no feature columns left after excluding targets, id, sample_weight and ignored columns "
            f"(left out: {dropped or 'none'}); the file needs at least one input column."
        )
    return ColumnPlan(tuple(numerical), tuple(categorical), tuple(dates), dropped)


def read_missing_markers(frames: list[tuple[pd.DataFrame, str]], columns: list[str]) -> list[str]:
    """Read missing-value markers (``?``, ``NA``, ``-``, ...) as missing in columns that otherwise hold numbers.

    A column is converted (in every frame, in place) when, train and eval together, its cells are numbers or
    markers and at least one is a marker; otherwise a ``?`` would make it a column of categories and its numbers
    would lose their order. The fitted pipeline reads the same markers as missing at predict
    (``build_preprocessor``).

    Args:
        frames: ``(rows, origin)`` of each split.
        columns: The candidate feature columns (not targets, id, weight, ignored or listed as categorical).

    Returns:
        One note per column and split that held markers, naming the column, the markers, the count and rows.
    """
    notes = []
    for column in columns:
        held = [(frame, origin) for frame, origin in frames if column in frame.columns]
        if all(pd.api.types.is_numeric_dtype(frame[column]) for frame, _ in held):
            continue
        markers = [frame[column].map(_is_marker) for frame, _ in held]
        if not any(mask.any() for mask in markers):
            continue
        rest = [frame[column][~mask].dropna() for (frame, _), mask in zip(held, markers, strict=True)]
        if not any(len(values) for values in rest) or not all(_all_numbers(values) for values in rest):
            continue
        for (frame, origin), mask in zip(held, markers, strict=True):
            if mask.any():
                found = ", ".join(repr(m) for m in dict.fromkeys(frame[column][mask].map(str.strip)))
                notes.append(
                    f"{origin}: column {column!r} holds numbers and {int(mask.sum())} missing-value marker(s) "
                    f"({found}) at {rows_text(frame.index[mask])}: read as missing values, and read so at predict too"
                )
            frame[column] = pd.to_numeric(frame[column].mask(mask), errors="raise")
    return notes


def _is_marker(value) -> bool:
    return isinstance(value, str) and _MISSING.match(value) is not None


def _all_numbers(values: pd.Series) -> bool:
    """Every value is a number or text pandas reads as one (booleans are not numbers here)."""
    if values.map(lambda v: isinstance(v, bool | np.bool_)).any():
        return False
    return bool(pd.to_numeric(values, errors="coerce").notna().all())


def check_numbers(frame: pd.DataFrame, columns: list[str], origin: str) -> None:
    """Numeric feature columns of rows to predict hold numbers or missing-value markers.

    The model reads markers as missing; any other text would stop it with no column named, so it is refused here.

    Raises:
        DataError: Naming every column that holds text, its rows and first value.
    """
    problems = Problems()
    for column in columns:
        if column not in frame.columns or pd.api.types.is_numeric_dtype(frame[column]):
            continue
        values = frame[column]
        present = values.dropna()
        present = present[~present.map(_is_marker)]
        bad = present.index[pd.to_numeric(present, errors="coerce").isna()]
        if len(bad):
            problems.add(
                f"{origin}: column {column!r} holds numbers for the model, but {len(bad)} row(s) hold other "
                f"text, first: {rows_text(bad)} (row {int(bad[0]) + 1}: {present[bad[0]]!r}). Write numbers, or "
                f"leave the cell empty (or one of {', '.join(repr(m) for m in MISSING_MARKERS if m)}) for a missing "
                "value."
            )
    problems.raise_if_any()


def _is_id_like(values: pd.Series) -> bool:
    """Every row distinct, and either text or whole numbers (continuous floats are naturally distinct)."""
    present = values.dropna()
    if len(present) < _MIN_ROWS_FOR_ID_CHECK or present.nunique() != len(values):
        return False
    if pd.api.types.is_float_dtype(present):
        return bool((present == np.round(present)).all())
    return pd.api.types.is_integer_dtype(present) or not pd.api.types.is_numeric_dtype(present)


def _looks_like_dates(values: pd.Series) -> bool:
    sample = values.dropna().astype(str).head(200)
    if sample.empty or not sample.str.contains(r"\d{1,4}[-/:.]\d{1,2}", regex=True).all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.9)


def _looks_like_free_text(values: pd.Series) -> bool:
    present = values.dropna().astype(str)
    return present.nunique() > 0.5 * len(present) and present.str.split().str.len().mean() >= 3


def check_leakage(frame: pd.DataFrame, plan: ColumnPlan, targets: list[str], origin: str) -> None:
    """A feature that is a copy of a target makes every score meaningless: refuse it."""
    for target in targets:
        truth = frame[target].astype(str)
        for column in plan.features:
            if frame[column].astype(str).equals(truth):
                raise DataError(
                    f"{origin}: feature column {column!r} is a copy of the target {target!r} (target leakage). "
                    f"Add {column!r} to params.ignore_columns."
                )


def check_eval_columns(frame: pd.DataFrame, plan: ColumnPlan, origin: str) -> None:
    """The evaluation rows must carry every feature the model was planned on."""
    absent = [c for c in plan.features if c not in frame.columns]
    if absent:
        raise DataError(
            f"{origin} lacks the feature columns {absent} that the training rows have; add them or ignore them"
        )


# ---------------------------------------------------------------------------------------------------- preprocessing


def build_preprocessor(plan: ColumnPlan, style: str, params, n_rows: int):
    """A ``ColumnTransformer`` for one model family.

    Args:
        plan: The typed columns.
        style: ``nan_trees`` (xgboost, lightgbm: missing values kept, ordinal categories), ``native`` (histogram
            gradient boosting: ordinal categories marked categorical), ``trees`` (imputed, ordinal) or ``linear``
            (imputed, scaled, one-hot).
        params: The task's params (imputers, scaler).
        n_rows: Training rows (caps the one-hot width for rare categories).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    numeric_steps = (
        [] if style in ("nan_trees", "native") else [("impute", SimpleImputer(strategy=params.numerical_imputer))]
    )
    if style == "linear":
        numeric_steps.append(("scale", _scaler(params.numeric_scaler)))
    parts = []
    if plan.numerical:
        parts.append(("num", Pipeline(_as_numbers() + numeric_steps), list(plan.numerical)))
    if plan.categorical:
        parts.append(("cat", _categorical(style, params, n_rows), list(plan.categorical)))
    if plan.datetime:
        parts.append(("date", _datetime(numeric_steps), list(plan.datetime)))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def _as_numbers() -> list[tuple[str, object]]:
    """Steps that read missing-value markers as missing, then text cells as numbers.

    Rows read from a CSV at predict may hold ``?`` or ``12.5`` as text. The steps are built from pandas callables
    only, so that ``model.joblib`` applies them without trainforge; a cell that is neither stops ``pd.to_numeric``
    (trainforge's predict names it first, see ``check_numbers``).
    """
    from sklearn.preprocessing import FunctionTransformer

    return [
        (
            "markers",
            FunctionTransformer(partial(pd.DataFrame.replace, to_replace=MISSING_PATTERN, value=np.nan, regex=True)),
        ),
        ("numbers", FunctionTransformer(partial(pd.DataFrame.apply, func=pd.to_numeric))),
    ]


def categorical_mask(plan: ColumnPlan) -> list[bool]:
    """Which transformed columns are categorical, in ``build_preprocessor`` output order (``native`` style)."""
    return (
        [False] * len(plan.numerical)
        + [True] * len(plan.categorical)
        + [False] * (len(DATETIME_PARTS) * len(plan.datetime))
    )


def _scaler(name: str):
    from sklearn import preprocessing

    return {
        "standard": preprocessing.StandardScaler(),
        "minmax": preprocessing.MinMaxScaler(),
        "robust": preprocessing.RobustScaler(),
        "maxabs": preprocessing.MaxAbsScaler(),
        "normal": preprocessing.QuantileTransformer(output_distribution="normal", n_quantiles=100),
    }[name]


def _categorical(style: str, params, n_rows: int):
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder

    # Values become text so that 1, 1.0 and "1" are one category at fit and predict time alike.
    as_text = FunctionTransformer(partial(pd.DataFrame.map, func=str, na_action="ignore"))
    fill = "__missing__"
    impute = SimpleImputer(strategy=params.categorical_imputer, fill_value=fill, missing_values=np.nan)
    if style == "linear":
        encode = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=max(2, n_rows // 200),
            max_categories=30,
            sparse_output=False,
        )
    else:
        # Unknown categories at predict time become missing, which every tree family handles; the cap keeps
        # histogram gradient boosting within its 255-bin limit for native categorical splits.
        encode = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            max_categories=250 if style == "native" else None,
        )
    return Pipeline([("text", as_text), ("impute", impute), ("encode", encode)])


def _datetime(numeric_steps: list):
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import FunctionTransformer

    parse = FunctionTransformer(
        partial(pd.DataFrame.apply, func=partial(pd.to_datetime, errors="coerce", format="mixed"))
    )
    parts = FeatureUnion(
        [
            (part, FunctionTransformer(partial(pd.DataFrame.apply, func=operator.attrgetter(f"dt.{part}"))))
            for part in DATETIME_PARTS
        ]
    )
    steps = [("parse", parse), ("parts", parts), ("float", FunctionTransformer(partial(np.asarray, dtype=float)))]
    return Pipeline(steps + [(name, _clone(step)) for name, step in numeric_steps])


def _clone(estimator):
    from sklearn.base import clone

    return clone(estimator)
