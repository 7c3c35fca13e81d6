"""Predictions compared with labels: classification, regression and text generation.

The predictor is the run's own (``trainforge predict``'s): it receives the rows under the run's column names and
returns its usual columns (``prediction``, ``prob_<class>``, ``generation``). Classification metrics come from the
same function as training (``metrics.classification``), on the predictor's probabilities, so scoring a run's own
evaluation rows reproduces its ``eval_*`` metrics.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from trainforge.data.labels import is_missing, is_plain_number, label_text, parse_labels, rows
from trainforge.errors import DataError
from trainforge.evaluation import EvaluateError, Scored
from trainforge.evaluation.report import SHOWN


def score(
    kind: str, frame: pd.DataFrame, origin: str, predictor, spec, config, written: dict[str, str] | None = None
) -> Scored:
    """Predict ``frame`` (logical columns, targets included) and compare with its targets.

    ``written`` maps logical column names to the data's own (``data.columns`` + ``--columns``), for messages.
    """
    if kind == "generation":
        return _generation(frame, origin, predictor, spec, config)
    targets = target_columns(spec, config)
    absent = [t for t in targets if t not in frame]
    if absent:
        raise DataError(f"{origin} has no target column {absent}: evaluate compares predictions with it")
    for target in targets:
        missing = frame[target].map(is_missing)
        if missing.any():
            column = (written or {}).get(target, target)
            raise DataError(
                f"{origin}: the target column {column!r} is empty in {rows(frame.index[missing])}; fill in those "
                "rows or leave them out (evaluate compares each prediction with its target)"
            )
    inputs = predictor_frame(frame, spec, config, targets)
    result = predictor.predict(inputs)
    scorer = _regression if kind == "regression" else _multi_label if kind.startswith("multi") else _classification
    parts = [scorer(frame[t], result, _prefixes(t, len(targets)), config, origin) for t in targets]
    described = [
        {"row": int(i) + 1, "input": _described(row)}
        if isinstance(i, int | np.integer)
        else {"input": _described(row)}
        for i, row in zip(frame.index, inputs.to_dict(orient="records"), strict=True)
    ]
    if len(parts) == 1:
        parts[0].rows = [{**d, **r} for d, r in zip(described, parts[0].rows, strict=True)]
        return parts[0]
    merged = Scored({}, described)
    for target, part in zip(targets, parts, strict=True):
        merged.metrics.update({f"{target}/{k}": v for k, v in part.metrics.items()})
        merged.tables.update({f"{target}: {k}": v for k, v in part.tables.items()})
        for record, row in zip(merged.rows, part.rows, strict=True):
            record.update({f"{target}/{k}": v for k, v in row.items()})
        merged.notes += part.notes
    return merged


def _described(row: dict[str, Any]) -> str:
    """A row's inputs as one text: the value of a single input, else ``column=value`` pairs."""
    if len(row) == 1:
        return str(next(iter(row.values())))
    return "; ".join(f"{k}={v}" for k, v in row.items())


def target_columns(spec, config) -> list[str]:
    """The logical target columns (role ``target``), else the ``params.target_columns`` of a table task."""
    named = [c.name for c in spec.columns if c.role == "target"]
    return named or [str(t) for t in getattr(config.params, "target_columns", None) or []]


def predictor_frame(frame: pd.DataFrame, spec, config, drop: list[str]) -> pd.DataFrame:
    """``frame`` without targets and weights, its logical columns under the run's own names (what predict reads)."""
    weights = [c.name for c in spec.columns if c.role == "weight"]
    out = frame.drop(columns=[c for c in [*drop, *weights] if c in frame])
    names = {c.name: config.data.columns.get(c.name, c.source_default) for c in spec.columns if not c.rest}
    return out.rename(columns={k: v for k, v in names.items() if k in out})


def _prefixes(target: str, count: int) -> tuple[str, str]:
    """The predictor's prediction column and probability prefix for ``target`` (one target: plain names)."""
    return ("prediction", "prob_") if count == 1 else (f"prediction_{target}", f"prob_{target}_")


# ---------------------------------------------------------------------------------------------------- classification


def _classification(truth: pd.Series, result: pd.DataFrame, prefixes, config, origin: str) -> Scored:
    """Accuracy, F1/precision/recall (and ROC AUC for two classes), per-class table and confusion matrix."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    from trainforge.metrics.classification import single_label_metrics

    column, prefix = prefixes
    probability_columns = [c for c in result.columns if str(c).startswith(prefix)]
    names = [str(c)[len(prefix) :] for c in probability_columns]
    predicted = result[column].map(label_text)
    if not names:  # a predictor without probabilities: its answers are the scores
        names = sorted(set(predicted) | set(truth.map(label_text)))
    truth_ids = class_ids(truth, names, getattr(config.params, "label_names", None), origin)
    if probability_columns:
        probabilities = result[probability_columns].to_numpy(dtype=float)
    else:
        probabilities = np.eye(len(names))[[names.index(p) for p in predicted]]
    metrics = single_label_metrics(truth_ids, probabilities)
    if not probability_columns:
        metrics.pop("roc_auc", None)  # undefined without scores
    chosen = probabilities.argmax(axis=1)
    every = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(truth_ids, chosen, labels=every, zero_division=0)
    per_class = [
        {"class": n, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for n, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
    ]
    matrix = confusion_matrix(truth_ids, chosen, labels=every).tolist()
    records = [
        {"truth": names[t], "prediction": names[c], "confidence": float(probabilities[i, c]), "correct": bool(t == c)}
        for i, (t, c) in enumerate(zip(truth_ids, chosen, strict=True))
    ]
    tables = {"per class": per_class, "confusion matrix": {"labels": names, "matrix": matrix}}
    return Scored(metrics, records, tables)


def class_ids(truth: pd.Series, names: list[str], label_names: list[str] | None, origin: str) -> np.ndarray:
    """Each label's index in ``names``: as written, as the same number (``1.0`` is ``1``), or by ``label_names``.

    Raises:
        DataError: Labels the model has no class for (naming them, their first rows and the model's classes).
    """
    index = {name: i for i, name in enumerate(names)}
    numbers = {Decimal(n): i for n, i in index.items() if is_plain_number(n)}
    ids, unknown = [], []
    for row, value in truth.items():
        text = label_text(value)
        found = index.get(text)
        if found is None and is_plain_number(text):
            found = numbers.get(Decimal(text))
        if found is None and label_names and text.isdigit() and int(text) < len(label_names):
            found = index.get(label_names[int(text)])
        if found is None:
            unknown.append((row, text))
        ids.append(-1 if found is None else found)
    if unknown:
        labels = sorted({text for _, text in unknown})
        raise DataError(
            f"{origin}: labels {labels[:10]} are not classes of this model ({', '.join(names[:20])}), first at "
            f"{rows([row for row, _ in unknown])}: it cannot predict them; remove those rows or map them to its "
            "classes"
        )
    return np.asarray(ids)


def _multi_label(truth: pd.Series, result: pd.DataFrame, prefixes, config, origin: str) -> Scored:
    """Subset accuracy, F1 (micro/macro/weighted), Hamming loss and a per-label table, at the served thresholds."""
    from sklearn.metrics import precision_recall_fscore_support

    from trainforge.metrics.classification import multi_label_metrics

    column, prefix = prefixes
    names = [str(c)[len(prefix) :] for c in result.columns if str(c).startswith(prefix)]
    delimiter = getattr(config.params, "label_delimiter", None)
    joiner = delimiter or "|"
    truth_sets = [parse_labels(v, delimiter, origin, i) for i, v in enumerate(truth)]
    unknown = sorted({n for labels in truth_sets for n in labels} - set(names))
    if unknown:
        raise DataError(f"{origin}: labels {unknown[:10]} are not classes of this model ({', '.join(names[:20])})")
    predicted_sets = [[p for p in str(v).split(joiner) if p] if not is_missing(v) else [] for v in result[column]]
    hot_truth = np.array([[n in labels for n in names] for labels in truth_sets], dtype=float)
    hot_predicted = np.array([[n in labels for n in names] for labels in predicted_sets], dtype=float)
    metrics = multi_label_metrics(hot_truth, hot_predicted, 0.5)  # the served decisions, already thresholded
    precision, recall, f1, support = precision_recall_fscore_support(hot_truth, hot_predicted, zero_division=0)
    per_class = [
        {"class": n, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for n, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
    ]
    records = [
        {"truth": joiner.join(t), "prediction": joiner.join(p), "correct": sorted(t) == sorted(p)}
        for t, p in zip(truth_sets, predicted_sets, strict=True)
    ]
    return Scored(metrics, records, {"per label": per_class})


# ---------------------------------------------------------------------------------------------------- regression


def _regression(truth: pd.Series, result: pd.DataFrame, prefixes, config, origin: str) -> Scored:
    """MSE, MAE, RMSE, R², explained variance, and the rows with the largest errors."""
    from trainforge.metrics.regression import regression_metrics

    numbers = pd.to_numeric(truth, errors="coerce")
    bad = numbers.isna() | ~np.isfinite(numbers.astype(float))
    if bad.any():
        raise DataError(f"{origin}: the target must be a number; not one at {rows(truth.index[bad])}")
    predicted = result[prefixes[0]].to_numpy(dtype=float)
    metrics = regression_metrics(numbers.to_numpy(dtype=float), predicted)
    errors = predicted - numbers.to_numpy(dtype=float)
    records = [
        {"truth": float(t), "prediction": float(p), "error": float(e)}
        for t, p, e in zip(numbers, predicted, errors, strict=True)
    ]
    worst = [{"row": int(i) + 1, **records[i]} for i in np.argsort(-np.abs(errors))[:SHOWN]]
    return Scored(metrics, records, {"largest errors": worst})


# ---------------------------------------------------------------------------------------------------- generation


def _generation(frame: pd.DataFrame, origin: str, predictor, spec, config) -> Scored:
    """Each row's generated answer beside its reference; exact match, BLEU, chrF and ROUGE over all rows."""
    inputs, references, shown = generation_inputs(frame, origin, predictor, spec, config)
    result = predictor.predict(inputs)
    added = [c for c in result.columns if c not in inputs.columns]
    generated = [str(v) for v in result["generation" if "generation" in added else added[0]]]
    metrics, per_row, notes = generation_metrics(generated, references)
    records = [
        {"row": int(i) + 1 if isinstance(i, int | np.integer) else str(i), "prompt": p, "reference": r, "generated": g}
        | row
        for i, p, r, g, row in zip(frame.index, shown, references, generated, per_row, strict=True)
    ]
    return Scored(metrics, records, notes=notes)


def generation_inputs(frame: pd.DataFrame, origin: str, predictor, spec, config) -> tuple[pd.DataFrame, list, list]:
    """``(predictor input frame, references, prompts as shown)`` for each row.

    A text-generation run reads its training shapes: conversations (the last assistant turn is the reference, the
    turns before it the prompt), prompt + completion, alpaca rows, and preference pairs (chosen is the reference).
    Any other generation task's target text column is the reference.

    Raises:
        EvaluateError: Rows with no reference (plain-text LM rows).
    """
    if spec.pipeline_tag != "text-generation":
        targets = [c.name for c in spec.columns if c.role == "target" and c.kind == "text" and c.name in frame]
        if not targets:
            raise EvaluateError(f"{origin} has no reference column for {spec.name}: map its target with --columns")
        inputs = predictor_frame(frame, spec, config, targets)
        return inputs, [str(v) for v in frame[targets[0]]], [str(r.to_dict()) for _, r in inputs.iterrows()]
    from trainforge.tasks.llm._data import detect_sft_format, normalize_preference, normalize_sft

    if "chosen" in frame:
        pairs = normalize_preference(frame, origin).frame
        prompts, references = list(pairs["prompt"]), [_answer(v) for v in pairs["chosen"]]
    else:
        form = detect_sft_format(frame, origin)
        if form == "text":
            raise EvaluateError(
                f"{origin} holds plain text rows: there is no reference answer to compare generations with. Give "
                "conversations (messages: the last assistant turn is the reference) or prompt + completion rows"
            )
        rows_ = normalize_sft(frame, form, origin)
        if form == "messages":
            cuts = [max(i for i, t in enumerate(turns) if t["role"] == "assistant") for turns in rows_["messages"]]
            prompts = [turns[:cut] for turns, cut in zip(rows_["messages"], cuts, strict=True)]
            references = [turns[cut]["content"] for turns, cut in zip(rows_["messages"], cuts, strict=True)]
        else:
            prompts, references = list(rows_["prompt"]), [str(v) for v in rows_["completion"]]
    conversation = getattr(predictor, "conversation_prompt", None)
    if conversation is not None:  # a run without a chat template answers the last user turn alone
        prompts = [conversation(p) if isinstance(p, list) else p for p in prompts]
    column = "messages" if prompts and isinstance(prompts[0], list) else "prompt"
    shown = [p[-1]["content"] if isinstance(p, list) else str(p) for p in prompts]
    return pd.DataFrame({column: prompts}), references, shown


def _answer(value) -> str:
    """A preference answer as text: a string, or the assistant turns of a conversation joined."""
    if isinstance(value, list):
        return "\n".join(t["content"] for t in value if t.get("role") == "assistant")
    return str(value)


def generation_metrics(generated: list[str], references: list[str]) -> tuple[dict[str, float], list[dict], list[str]]:
    """Corpus metrics, per-row scores and notes: exact match always; BLEU/chrF (sacrebleu), ROUGE (rouge-score).

    BLEU and chrF are sacrebleu's corpus scores (0-100); ROUGE-1/2/L are mean F-measures (0-1) with stemming.
    """
    metrics: dict[str, float] = {
        "exact_match": float(np.mean([g.strip() == r.strip() for g, r in zip(generated, references, strict=True)]))
    }
    per_row: list[dict[str, Any]] = [{} for _ in generated]
    notes = []
    try:
        import sacrebleu
    except ImportError:
        notes.append("sacrebleu is not installed (pip install 'trainforge[nlp]'): no BLEU/chrF")
    else:
        metrics["bleu"] = float(sacrebleu.corpus_bleu(generated, [references]).score)
        metrics["chrf"] = float(sacrebleu.corpus_chrf(generated, [references]).score)
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        notes.append("rouge-score is not installed (pip install 'trainforge[nlp]'): no ROUGE")
    else:
        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
        scores = [scorer.score(r, g) for g, r in zip(generated, references, strict=True)]
        for key in ("rouge1", "rouge2", "rougeL"):
            metrics[key] = float(np.mean([s[key].fmeasure for s in scores])) if scores else 0.0
        for row, s in zip(per_row, scores, strict=True):
            row["rougeL"] = float(s["rougeL"].fmeasure)
    return metrics, per_row, notes
