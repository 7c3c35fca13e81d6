"""Target and sample-weight checks for tabular tasks: each failure names the column, the rows and the fix."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

from trainforge.data.labels import Problems, is_missing, read_label_names, written_label
from trainforge.errors import DataError
from trainforge.tabular.features import rows_text


def check_targets_present(frame: pd.DataFrame, targets: list[str], origin: str, config) -> None:
    """Every target column exists (and is not a mapped id/weight column) and has a value in every row.

    Raises:
        DataError: Naming every target that is absent or has empty rows (with the rows), in one message.
    """
    problems = Problems()
    mapped = set(config.data.columns.values())
    for target in targets:
        if target not in frame.columns or target in mapped:
            found = ", ".join(c for c in map(str, frame.columns) if c not in ("id", "sample_weight"))
            problems.add(
                f"{origin} has no target column {target!r}; columns found: {found}. Set params.target_columns."
            )
            continue
        missing = frame[target].isna() | frame[target].map(is_missing)  # blank text is no label either
        if missing.all():
            problems.add(f"{origin}: target {target!r} is empty in every row; check params.target_columns")
        elif missing.any():
            problems.add(
                f"{origin}: target {target!r} is missing in {int(missing.sum())} row(s), first: "
                f"{rows_text(frame.index[missing])}. Fill or drop those rows."
            )
    problems.raise_if_any()


def check_weights(frame: pd.DataFrame, origin: str) -> None:
    """``sample_weight`` (when present) holds numbers >= 0, not all zero; converted to float in place."""
    if "sample_weight" not in frame:
        return
    weights = pd.to_numeric(frame["sample_weight"], errors="coerce")
    bad = weights.isna() | (weights < 0)
    if bad.any():
        raise DataError(f"{origin}: sample_weight must be a number >= 0; bad {rows_text(frame.index[bad])}")
    if weights.sum() <= 0:
        raise DataError(f"{origin}: every sample_weight is 0, so no row counts; give rows a positive weight")
    frame["sample_weight"] = weights.astype(float)


def numeric_target(frame: pd.DataFrame, target: str, origin: str) -> pd.Series:
    """A regression target as finite floats, or an error naming the rows that are not numbers."""
    numbers = pd.to_numeric(frame[target], errors="coerce")
    bad = numbers.isna() | ~np.isfinite(numbers.astype(float))
    if bad.any():
        examples = ", ".join(f"row {int(i) + 1}: {frame[target][i]!r}" for i in list(frame.index[bad])[:5])
        raise DataError(f"{origin}: target {target!r} must be numeric for regression; non-numbers at {examples}")
    return numbers.astype(float)


def read_classes(splits, target: str) -> tuple[str, ...]:
    """Class labels of ``target`` read by the rule every task shares (``read_label_names``), in place.

    Labels are the values the user wrote: a column of plain numbers without leading zeros stays numbers (one
    class per number, so ``1`` and ``1.0`` are one), codes such as ``01`` stay text, surrounding spaces are
    trimmed. Booleans stay booleans.

    Returns:
        The notes of the reading (merged spellings, labels that differ only by case).
    """
    frames = [frame for _, frame, _ in splits.present()]
    if all(pd.api.types.is_bool_dtype(frame[target]) for frame in frames):
        return ()
    written = [frame[target].map(written_label) for frame in frames]
    reading = read_label_names([label for labels in written for label in labels], f"target {target!r}")
    whole = reading.numeric and all(Decimal(n) == Decimal(n).to_integral_value() for n in reading.classes.values())
    for frame, labels in zip(frames, written, strict=True):
        names = labels.map(reading.classes)
        if not reading.numeric:
            frame[target] = names.astype(object)
        else:
            # One type for the whole column: LabelEncoder and predictions then give 1, not a mix of 1 and 1.0.
            frame[target] = names.map(int if whole else float)
    return reading.notes


def check_classes(splits, target: str, params, origin: str) -> list[str]:
    """Class labels fit for validation (enough rows per class, none unseen in eval or test); returns the names.

    Raises:
        DataError: Many distinct fractional numbers (a regression target), classes too small for the folds,
            or eval classes that never occur in training.
    """
    values = splits.train[target]
    counts = values.value_counts()
    if pd.api.types.is_float_dtype(values) and (values != values.round()).any() and len(counts) > 0.5 * len(values):
        raise DataError(
            f"{origin}: target {target!r} holds {len(counts)} distinct fractional numbers: use tabular_regression"
        )
    from trainforge.tabular.settings import folds

    need = folds(params) if params.validation == "cv" else 2
    rare = counts[counts < need]
    if len(rare):
        how = f"the cross-validation has {need} folds" if params.validation == "cv" else "the holdout needs 2"
        shown = ", ".join(f"{k!r}: {v} row(s)" for k, v in rare.head(5).items())
        raise DataError(
            f"{origin}: target {target!r} has classes with too few rows for validation ({shown}); {how}, so every "
            "class needs at least that many. Add rows, lower params.cv_folds, or drop those classes."
        )
    for _, frame, origin in splits.present()[1:]:
        unseen = sorted(set(frame[target]) - set(counts.index), key=str)
        if unseen:
            raise DataError(f"{origin}: target {target!r} has classes {unseen} that never occur in training rows")
    return [str(c) for c in sorted(counts.index)]


def config_problems(config, kind: str) -> list[tuple[str, str]]:
    """Model family fits the sub-task; feature columns are not mapped (they are every other column)."""
    from trainforge.tabular.models import FAMILIES, MODEL_CHOICES

    problems = []
    name = config.model.name
    if name not in MODEL_CHOICES:
        problems.append(("model.name", f"{name!r} is not a tabular model; use auto or one of {', '.join(FAMILIES)}"))
    elif name != "auto" and kind not in FAMILIES[name].kinds:
        problems.append(
            (
                "model.name",
                f"{name} does not do {kind}; use auto or one of "
                f"{', '.join(n for n, f in FAMILIES.items() if kind in f.kinds)}",
            )
        )
    wrong = [f for f in config.params.families or [] if f == "auto" or kind not in FAMILIES[f].kinds]
    if wrong:
        problems.append(("params.families", f"{wrong} cannot do {kind}"))
    if "features" in config.data.columns:
        problems.append(
            (
                "data.columns.features",
                "features are every other column; choose them with params.ignore_columns instead",
            )
        )
    overlap = set(config.params.target_columns) & set(config.params.ignore_columns)
    if overlap:
        problems.append(("params.ignore_columns", f"lists the target column(s) {sorted(overlap)}"))
    return problems
