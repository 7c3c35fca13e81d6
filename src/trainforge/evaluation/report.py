"""The evaluation report: ``metrics.json`` (numbers and tables), ``report.md`` (for people), ``predictions.jsonl``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from trainforge.evaluation import Scored

SHOWN = 20  # rows of a table shown in report.md


def write_report(folder: Path, header: dict[str, Any], scored: Scored, training: dict[str, Any]) -> None:
    """Write the three files into ``folder`` (created; files of an earlier evaluation of that name replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    document = {**header, "metrics": scored.metrics, **scored.tables, "notes": scored.notes}
    (folder / "metrics.json").write_text(json.dumps(_finite(document), indent=2), encoding="utf-8")
    with (folder / "predictions.jsonl").open("w", encoding="utf-8") as handle:
        for record in scored.rows:
            handle.write(json.dumps(_finite(record), ensure_ascii=False) + "\n")
    (folder / "report.md").write_text(_markdown(header, scored, training), encoding="utf-8")


def _markdown(header: dict[str, Any], scored: Scored, training: dict[str, Any]) -> str:
    lines = [
        f"# Evaluation: {header['data']}",
        "",
        f"Run `{header['run']}` ({header['task']}), scored as {header['kind'].replace('_', ' ')} on "
        f"{header['rows']} rows in {header['seconds']:.1f} s, with the predictor `trainforge predict` uses.",
        "",
        "## Metrics",
        "",
        "| metric | value | at training (eval split) |",
        "|---|---|---|",
    ]
    for key, value in scored.metrics.items():
        logged = training.get(f"eval_{key}")
        lines.append(f"| {key} | {_number(value)} | {'' if logged is None else _number(logged)} |")
    lines += [f"\nNote: {note}" for note in scored.notes]
    for title, table in scored.tables.items():
        lines += ["", f"## {title[0].upper()}{title[1:]}", ""]
        if isinstance(table, dict) and "matrix" in table:
            lines += _matrix(table["labels"], table["matrix"])
        else:
            lines += _table(table)
    if header["kind"] == "generation":
        lines += ["", f"## Generations (first {min(SHOWN, len(scored.rows))} rows; all in predictions.jsonl)", ""]
        lines += _table(scored.rows[:SHOWN])
    elif header["kind"].endswith("classification"):
        wrong = [r for r in scored.rows if r.get("correct") is False][:SHOWN]
        if wrong:
            lines += ["", f"## Wrong answers (first {len(wrong)}; all rows in predictions.jsonl)", ""]
            lines += _table(wrong)
    return "\n".join(lines) + "\n"


def _table(records: list[dict[str, Any]]) -> list[str]:
    if not records:
        return ["(none)"]
    keys = list(records[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for record in records:
        out.append("| " + " | ".join(_cell(record.get(k)) for k in keys) + " |")
    return out


def _matrix(labels: list[str], matrix: list[list[int]]) -> list[str]:
    out = ["rows: true class, columns: predicted class", "", "| | " + " | ".join(map(_cell, labels)) + " |"]
    out.append("|" + "---|" * (len(labels) + 1))
    for label, row in zip(labels, matrix, strict=True):
        out.append(f"| **{_cell(label)}** | " + " | ".join(map(str, row)) + " |")
    return out


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return _number(value)
    text = str(value).replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= 160 else text[:157] + "..."


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _finite(value: Any) -> Any:
    """``value`` with NaN/inf replaced by None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
