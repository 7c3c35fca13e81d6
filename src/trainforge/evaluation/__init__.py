"""``trainforge evaluate``: a finished run scored on any labelled data, through the predictor ``predict`` uses.

What is scored follows the run, never a list of task names: the pipeline tag and the problem type of its model
(``config.json``) choose classification (accuracy, F1, per-class table, confusion matrix), multi-label
classification, regression (RMSE, MAE, R², worst rows) or text generation (each generated answer beside its
reference, BLEU/chrF and ROUGE when sacrebleu and rouge-score are installed). Any other run is refused with exit
code 2. The data is read as training reads it (files, folders, saved datasets, Hub ids) with the run's column
mapping, which ``columns`` overrides.

The report goes beside the run: ``<run>/evaluation/<name>/metrics.json``, ``report.md`` and ``predictions.jsonl``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from trainforge.errors import DataError, TrainforgeError

GENERATION_TAGS = ("text-generation", "text2text-generation", "summarization", "translation", "image-text-to-text")
# One label (or number) per row: the tags whose runs predict a class or a value for each row as a whole (not
# token-classification, whose labels are per token).
ROW_TAGS = (
    "text-classification",
    "tabular-classification",
    "tabular-regression",
    "image-classification",
    "audio-classification",
)
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")


class EvaluateError(TrainforgeError):
    """A run or data evaluate cannot score; the message says why and what to use instead."""

    exit_code = 2


@dataclass
class Scored:
    """What a scorer found: metrics, tables for the report, one record per row, notes."""

    metrics: dict[str, float]
    rows: list[dict[str, Any]]
    tables: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Evaluation:
    """A finished evaluation: where its report is and what it measured."""

    name: str
    folder: Path
    kind: str
    rows: int
    metrics: dict[str, float]
    notes: list[str]

    def summary(self) -> str:
        """Lines for the CLI: the metrics and where the report is."""
        numbers = [(k, v) for k, v in self.metrics.items() if isinstance(v, float)]
        shown = ", ".join(f"{k} {v:.4f}" for k, v in numbers[:10]) + (" ..." if len(numbers) > 10 else "")
        lines = [*self.notes, f"{self.kind} on {self.rows} rows: {shown}", f"wrote {self.folder}/report.md"]
        return "\n".join(lines)


def evaluate(
    run_dir: Path,
    data: str,
    split: str | None = None,
    columns: dict[str, str] | None = None,
    name: str | None = None,
    max_rows: int | None = None,
    overrides=(),
) -> Evaluation:
    """Score the finished run in ``run_dir`` on the labelled rows of ``data`` and write the report beside it.

    Args:
        run_dir: A finished run directory.
        data: A file, a folder of split files, a saved dataset or a Hub dataset id.
        split: The split to read from a folder, saved dataset or Hub dataset (default: its ``train`` split).
        columns: Logical column -> the data's column, over the run's ``data.columns``.
        name: The report's folder name (default: from ``data`` and ``split``).
        max_rows: Score only the first N rows (text generation is slow).
        overrides: ``dotted.key=value`` for the predictor (``params.max_new_tokens=64``).

    Raises:
        RunDirError: Not a finished run.
        EvaluateError: The run is of a kind evaluate does not score, or the data has no references to score with.
        DataError: The data cannot be read, lacks a column, or holds labels the model cannot predict.
    """
    from trainforge.evaluation import scoring
    from trainforge.evaluation.report import write_report
    from trainforge.sdk import _finished_run_config, _load_predictor
    from trainforge.tasks import get_task

    run_dir = Path(run_dir)
    config = _finished_run_config(run_dir, overrides)
    spec = get_task(config.task)
    kind = evaluation_kind(run_dir, config, spec)
    mapping = _mapping(config, spec, columns or {})
    frame, origin = read_rows(data, split, spec, config, mapping, max_rows)
    predictor = _load_predictor(run_dir, config)
    started = time.perf_counter()
    scored = scoring.score(kind, frame, origin, predictor, spec, config, mapping)
    seconds = time.perf_counter() - started
    folder = run_dir / "evaluation" / (name or _default_name(data, split))
    header = {
        "run": str(run_dir),
        "task": config.task,
        "kind": kind,
        "data": origin,
        "rows": len(frame),
        "seconds": round(seconds, 3),
    }
    write_report(folder, header, scored, _training_metrics(run_dir))
    return Evaluation(folder.name, folder, kind, len(frame), scored.metrics, scored.notes)


def evaluation_kind(run_dir: Path, config, spec) -> str:
    """``generation``, ``single_label_classification``, ``multi_label_classification`` or ``regression``.

    Read from the spec's pipeline tag and the model's ``config.json`` problem type (tabular runs: their tag).

    Raises:
        EvaluateError: Any other run (naming its task and tag), or one whose targets are not labels or numbers.
    """
    tag = spec.pipeline_tag
    if tag in GENERATION_TAGS:
        return "generation"
    model = run_dir / "config.json"
    problem = json.loads(model.read_text(encoding="utf-8")).get("problem_type") if model.is_file() else None
    if problem is None:
        problem = "regression" if tag.endswith("-regression") else "single_label_classification"
    kinds = {c.kind for c in spec.columns if c.role == "target"}
    if tag in ROW_TAGS and problem in PROBLEM_TYPES and kinds <= {"label", "category", "number"}:
        return problem
    raise EvaluateError(
        f"evaluate scores classification, regression and text-generation runs; {run_dir} is a {config.task} run "
        f"({tag}), which it does not score yet. Its training metrics are in {run_dir}/metrics.json; "
        f"`trainforge predict {run_dir}` gives its predictions on any rows"
    )


def read_rows(
    data: str, split: str | None, spec, config, mapping: dict[str, str], max_rows: int | None
) -> tuple[pd.DataFrame, str]:
    """The rows of ``data`` under the task's logical column names (as training reads them), and their origin.

    Raises:
        DataError: The source or split is missing or unreadable, or a required column is absent (naming the
            ``--columns`` setting that fixes it).
    """
    from trainforge.config.sections import DataSection
    from trainforge.data.loading import load_splits

    if split is not None and Path(data).expanduser().is_file():
        raise DataError(f"--split {split} names a split of a folder, saved dataset or Hub dataset; {data} is one file")
    section = DataSection(
        source=data,
        train_split=split or "train",
        eval_fraction=None,
        columns=mapping,
        max_train_rows=max_rows,
        hub_config=config.data.hub_config,
    )
    stratify = spec.stratify_column(config) if callable(spec.stratify_column) else spec.stratify_column
    try:  # stratify: the label column is read as text, so that codes such as "01" keep their spelling
        splits = load_splits(section, config.training.seed, stratify=stratify, columns=spec.columns)
    except DataError as exc:  # the loader names config keys; evaluate's user set options
        message = re.sub(r"Set data\.columns\.(\w+)(: \S+)?", r"Pass --columns \1=COLUMN", str(exc))
        raise DataError(message.replace("data.source", "--data").replace("data.train_split", "--split")) from None
    return splits.train, splits.train_origin


def _mapping(config, spec, columns: dict[str, str]) -> dict[str, str]:
    """The run's ``data.columns`` with ``columns`` over it; unknown logical names are refused by name."""
    known = {c.name for c in spec.columns if not c.rest}
    unknown = sorted(set(columns) - known)
    if unknown:
        raise DataError(f"--columns names {unknown}, which {spec.name} does not read; its columns: {sorted(known)}")
    return {**config.data.columns, **columns}


def _default_name(data: str, split: str | None) -> str:
    path = Path(data)
    stem = path.stem if path.suffix else path.name or data
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem + (f"-{split}" if split else "")).strip("._") or "evaluation"


def _training_metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
