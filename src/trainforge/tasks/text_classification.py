"""Text classification (binary, multi-class, multi-label) and text regression on any encoder.

Example (``examples/text_classification/minilm_sentiment.yaml``)::

    task: text_classification
    model: {name: sentence-transformers/all-MiniLM-L6-v2}
    data: {source: data/reviews.csv, columns: {text: review, label: sentiment}, eval_fraction: 0.1}
    training: {num_train_epochs: 3, learning_rate: 5.0e-5}
    params: {max_length: 128}

Run it with ``trainforge train examples/text_classification/minilm_sentiment.yaml``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from trainforge.data.labels import (
    Problems,
    continuous_scores,
    is_list_like,
    label_set,
    normalise_single,
    of_the_data,
    ordered_names,
    parse_labels,
    read_label_names,
    require_no_missing,
    require_text,
    rows,
)
from trainforge.errors import DataError, RunDirError
from trainforge.tasks.spec import Analysis, AutoTrainShape, Column, Metric, Prepared, RunContext, TaskParams, TaskSpec
from trainforge.training.advice import not_learned_advice

THRESHOLDS_FILE = "thresholds.json"  # multi-label decision thresholds, read by predict

# ---------------------------------------------------------------------------------------------------- params


class MultiLabelParams(TaskParams):
    """Multi-label settings shared by text and image classification (whose metrics and thresholds are here)."""

    multi_label: bool | None = Field(
        None,
        description="Several labels per row (default: on when the labels are lists or label_delimiter is set).",
        json_schema_extra={"tier": "advanced"},
    )
    label_delimiter: str | None = Field(
        None,
        description="Split string labels on this (e.g. ',') into several labels: multi-label.",
        json_schema_extra={"tier": "advanced"},
    )
    threshold: float = Field(
        0.5,
        gt=0,
        lt=1,
        description=(
            "Multi-label: probability above which a label is predicted, when threshold_tuning is none or there is "
            "no evaluation split."
        ),
        json_schema_extra={"tier": "advanced"},
    )
    threshold_tuning: Literal["global", "per_label", "none"] = Field(
        "global",
        description=(
            "Multi-label: choose the decision threshold that maximises F1 on the evaluation split (one value, or "
            "one per label). Metrics are reported at it (and at 0.5 beside), and it is stored with the model "
            "(thresholds.json) for predict."
        ),
        json_schema_extra={"tier": "advanced"},
    )

    @model_validator(mode="after")
    def _delimiter_means_multi(self) -> MultiLabelParams:
        if self.label_delimiter and self.multi_label is False:
            raise ValueError("label_delimiter splits labels into several, which needs multi_label (not false)")
        return self


class TextLengthParams(TaskParams):
    """The token limit every text task of this module takes."""

    max_length: int = Field(
        128, gt=0, description="Truncate texts to this many tokens.", json_schema_extra={"tier": "basic"}
    )


# pydantic orders inherited fields from the last base to the first: max_length, then the multi-label ones.
class TextClassificationParams(MultiLabelParams, TextLengthParams):
    """Parameters of ``text_classification``."""

    label_names: list[str] | None = Field(
        None,
        description="Names for integer labels 0..K-1 (e.g. [negative, positive]).",
        json_schema_extra={"tier": "advanced"},
    )


class TextRegressionParams(TextLengthParams):
    """Parameters of ``text_regression``."""


CLASSIFICATION_COLUMNS = (
    Column("text", "the input text"),
    Column("label", "the class: a name, an integer, or a list of names for multi-label", role="target", kind="label"),
    Column(
        "sample_weight", "optional non-negative weight of each row in the loss", False, role="weight", kind="number"
    ),
)
REGRESSION_COLUMNS = (
    Column("text", "the input text"),
    Column("target", "the numeric value to predict", role="target", kind="number"),
    Column(
        "sample_weight", "optional non-negative weight of each row in the loss", False, role="weight", kind="number"
    ),
)

# ---------------------------------------------------------------------------------------------------- analyze


def analyze_classification(ctx: RunContext, splits) -> Analysis:
    """Check texts, labels and weights, and derive the label set (before any model loads).

    Labels are the strings the user wrote (see ``read_label_names``): ``01`` stays ``01``, and ``1``/``1.0``
    are one class only in a column of plain numbers.

    Raises:
        DataError: Every problem of the rows (texts, labels, weights) of both splits in one message; or a label
            set unfit for classification (a single class, eval labels never seen in training).
    """
    config = ctx.config
    params = config.params
    problems = Problems()
    frames = _frames(splits)
    for frame, origin in frames:
        _check_common(frame, origin, config, problems)
        problems.check(require_no_missing, frame, "label", origin, config.data.columns.get("label", "label"))
    problems.raise_if_any()
    multi = params.multi_label
    if multi is None:
        multi = bool(params.label_delimiter) or splits.train["label"].map(is_list_like).any()
    for frame, origin in frames:
        try:
            if multi:
                frame["label"] = [
                    parse_labels(v, params.label_delimiter, origin, i) for i, v in frame["label"].items()
                ]
            else:
                frame["label"] = normalise_single(frame["label"], origin)
        except DataError as exc:
            problems.add(str(exc))
    problems.raise_if_any()
    column = config.data.columns.get("label", "label")
    if not multi and (scores := continuous_scores(splits.train["label"], f"the label column ({column!r})")):
        raise DataError(
            f"{splits.train_origin}: {scores}. To predict the number, use task: text_regression with "
            f"data.columns.target: {column}; for classes, map data.columns.label to a column of class names."
        )
    written = [name for frame, _ in frames for name in (label_set(frame["label"], multi) if multi else frame["label"])]
    reading = read_label_names(written, f"the label column ({config.data.columns.get('label', 'label')!r})")
    for frame, _ in frames:
        frame["label"] = (
            [sorted({reading.classes[n] for n in names}) for names in frame["label"]]
            if multi
            else frame["label"].map(reading.classes)
        )
    seen = label_set(splits.train["label"], multi)
    names = ordered_names(reading, seen, params.label_names)
    if len(names) < 2:
        raise DataError(
            f"{splits.train_origin}: the label column holds a single class ({', '.join(names)}); "
            "classification needs at least two. Check data.columns.label, or use text_regression for numbers."
        )
    for _, frame, origin in splits.present()[1:]:
        unseen = sorted(label_set(frame["label"], multi) - seen)
        if unseen:
            offending = [i for i, v in frame["label"].items() if set(v if multi else [v]) & set(unseen)]
            raise DataError(
                f"{origin}: labels {unseen} never occur in training ({splits.train_origin}), so the model "
                f"cannot predict them; first rows: {rows(offending)}. Add training examples or remove those rows."
            )
    problem = "multi_label_classification" if multi else "single_label_classification"
    return Analysis(problem, tuple(names), notes=tuple(reading.notes))


def analyze_regression(ctx: RunContext, splits) -> Analysis:
    """Check texts, weights and that every target is a finite number.

    Raises:
        DataError: Every problem of the rows (texts, targets, weights) of both splits in one message.
    """
    config = ctx.config
    problems = Problems()
    frames = _frames(splits)
    file_column = config.data.columns.get("target", "target")
    for frame, origin in frames:
        _check_common(frame, origin, config, problems)
        if not problems.check(require_no_missing, frame, "target", origin, file_column):
            continue
        numbers = pd.to_numeric(frame["target"], errors="coerce")
        bad = numbers.isna() | ~np.isfinite(numbers.astype(float))
        if bad.any():
            examples = ", ".join(f"row {i + 1}: {frame['target'][i]!r}" for i in list(frame.index[bad])[:5])
            problems.add(
                f"{origin}: the target column must be numeric for regression; non-numeric values at {examples}"
                f"{of_the_data('target', file_column)}"
            )
            continue
        frame["target"] = numbers.astype("float32")
    problems.raise_if_any()
    return Analysis("regression", ("target",))


def _frames(splits) -> list[tuple[pd.DataFrame, str]]:
    return [(frame, origin) for _, frame, origin in splits.present()]


def _check_common(frame: pd.DataFrame, origin: str, config, problems: Problems) -> None:
    """Texts and weights of one split; problems are collected, weights converted when they are all valid."""
    problems.check(require_text, frame, "text", origin, file_column=config.data.columns.get("text", "text"))
    if "sample_weight" in frame:
        weights = pd.to_numeric(frame["sample_weight"], errors="coerce")
        bad = weights.isna() | (weights < 0)
        if bad.any():
            problems.add(f"{origin}: sample_weight must be a number >= 0; bad rows: {rows(frame.index[bad])}")
        else:
            frame["sample_weight"] = weights.astype("float32")


# ---------------------------------------------------------------------------------------------------- prepare


def load_tokenizer(ctx: RunContext):
    """The base model's tokenizer; a missing pad token falls back to EOS (GPT-style models).

    Raises:
        ConfigError: The tokenizer does not fit the model (``models.config_checks.check_tokenizer_fits``).
    """
    from transformers import AutoTokenizer

    config = ctx.config
    tokenizer = AutoTokenizer.from_pretrained(
        config.model.name, revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
    )
    from trainforge.models.config_checks import check_tokenizer_fits

    check_tokenizer_fits(tokenizer, config)  # at validate too: the check phase loads the processor
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def prepare(ctx: RunContext, splits) -> Prepared:
    """Tokenise texts (no padding: the collator pads each batch to its longest) and encode labels."""
    from datasets import Dataset
    from transformers import AutoConfig, DataCollatorWithPadding

    config, labels, tokenizer = ctx.config, ctx.labels, ctx.processor
    model_config = AutoConfig.from_pretrained(
        config.model.name, revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
    )
    max_length = effective_max_length(config, model_config)

    def encode(frame: pd.DataFrame) -> Dataset:
        columns = dict(tokenizer(list(frame["text"]), truncation=True, max_length=max_length))
        columns["labels"] = encode_labels(frame, labels)
        if "sample_weight" in frame:
            columns["sample_weight"] = frame["sample_weight"].tolist()
        return Dataset.from_dict(columns)

    def encode_if(frame: pd.DataFrame | None) -> Dataset | None:
        """Evaluation rows sorted by length: each padded batch holds rows of similar length (metrics ignore order)."""
        if frame is None:
            return None
        encoded = encode(frame)
        order = np.argsort([len(ids) for ids in encoded["input_ids"]], kind="stable")
        return encoded.select(order)

    return Prepared(
        encode(splits.train), encode_if(splits.eval), DataCollatorWithPadding(tokenizer), encode_if(splits.test)
    )


def effective_max_length(config, model_config) -> int:
    """``params.max_length``, cut to the model's absolute position embeddings.

    Validate refuses a larger value the user set; only the untouched default can exceed them (tiny test models), and
    predict's ``--set params.max_length`` may: both are cut, so no input stops with a tensor-shape error.
    """
    from trainforge.models.config_checks import position_limit, relative_positions

    limit, _ = position_limit(model_config)
    if limit is None or relative_positions(model_config) is not None:  # rotary/relative positions run longer
        return config.params.max_length
    return min(config.params.max_length, limit)


def encode_labels(frame: pd.DataFrame, labels: Analysis) -> list:
    """The ``labels`` column of ``frame``'s rows (image classification's too).

    Class ids (single-label), multi-hot float rows of ``num_labels`` (multi-label), or float32 targets from the
    ``target`` column: one number per row, or a list of them (several targets).
    """
    if labels.problem_type == "regression":
        return [np.asarray(v, dtype=np.float32).tolist() for v in frame["target"]]
    index = {name: i for i, name in enumerate(labels.names)}
    if labels.problem_type == "single_label_classification":
        return [index[name] for name in frame["label"]]
    hot = np.zeros((len(frame), labels.num_labels), dtype=np.float32)
    for row, names in enumerate(frame["label"]):
        hot[row, [index[name] for name in names]] = 1.0
    return hot.tolist()


# ---------------------------------------------------------------------------------------------------- model


def build_model(ctx: RunContext):
    """A sequence-classification head on the base encoder, with the label names in its config."""
    from transformers import AutoModelForSequenceClassification

    config, labels = ctx.config, ctx.labels
    names = labels.names
    if config.task == "text_classification" and config.params.label_names:
        names = tuple(config.params.label_names[int(n)] for n in names)
    return AutoModelForSequenceClassification.from_pretrained(
        config.model.name,
        revision=config.model.revision,
        trust_remote_code=config.model.trust_remote_code,
        num_labels=labels.num_labels,
        id2label=dict(enumerate(names)),
        label2id={name: i for i, name in enumerate(names)},
        problem_type=labels.problem_type,
        ignore_mismatched_sizes=True,
    )


# ---------------------------------------------------------------------------------------------------- metrics


def compute_metrics(ctx: RunContext):
    """EvalPrediction -> metrics dict, for the problem type in ``labels``.

    Multi-label metrics are computed at the decision thresholds that predict will use (``decision_thresholds``),
    so the reported F1 is the F1 of the served model.
    """
    from trainforge.metrics.classification import sigmoid, single_label_metrics, softmax, tuned_multi_label_metrics
    from trainforge.metrics.regression import regression_metrics

    config, labels = ctx.config, ctx.labels

    def compute(prediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        truth = prediction.label_ids
        if labels.problem_type == "regression":
            return regression_metrics(truth, logits.reshape(-1))
        if labels.problem_type == "multi_label_classification":
            probabilities = sigmoid(logits)
            return tuned_multi_label_metrics(truth, probabilities, decision_thresholds(truth, probabilities, config))
        return single_label_metrics(truth, softmax(logits))

    return compute


def decision_thresholds(truth: np.ndarray, probabilities: np.ndarray, config) -> np.ndarray:
    """Per-label thresholds, shape (num_labels,): tuned on these rows (``params.threshold_tuning``) or fixed."""
    from trainforge.metrics.classification import tune_thresholds

    if config.params.threshold_tuning == "none":
        return np.full(probabilities.shape[1], config.params.threshold)
    return tune_thresholds(truth, probabilities, per_label=config.params.threshold_tuning == "per_label")


def finish(ctx: RunContext, trainer, prepared: Prepared) -> list[str]:
    """Multi-label: store the decision thresholds of the kept model (``thresholds.json``) for predict.

    They are tuned again on the kept model's evaluation predictions, which is the computation that produced the
    reported metrics, so predict reproduces them. Returns notes (a model that predicts no label for most rows).
    """
    config, labels, run_dir = ctx.config, ctx.labels, ctx.output_dir
    if labels.problem_type == "single_label_classification":
        return _baseline_notes(trainer, prepared, labels)
    if labels.problem_type != "multi_label_classification":
        return []
    from trainforge.metrics.classification import sigmoid

    thresholds = np.full(labels.num_labels, config.params.threshold)
    notes = []
    if prepared.eval is not None:
        output = trainer.predict(prepared.eval)
        logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        probabilities = sigmoid(logits)
        thresholds = decision_thresholds(output.label_ids, probabilities, config)
        empty = float((probabilities < thresholds).all(axis=1).mean()) if len(probabilities) else 0.0
        if empty > 0.5:
            notes.append(
                f"the model predicts no label for {empty:.0%} of the evaluation rows (threshold "
                f"{float(thresholds.mean()):.2f}): it has not learned the labels yet; train longer or on more data"
            )
    mode = config.params.threshold_tuning if prepared.eval is not None else "none"
    (run_dir / THRESHOLDS_FILE).write_text(
        json.dumps(
            {"mode": mode, "thresholds": dict(zip(labels.names, map(float, thresholds), strict=True))}, indent=2
        )
    )
    return notes


def _baseline_notes(trainer, prepared: Prepared, labels: Analysis) -> list[str]:
    """A note when the kept model is no more accurate than always answering the eval split's commonest class.

    Such a model finishes "done" with plausible-looking numbers; read from the logged evaluation, no extra pass.
    """
    if prepared.eval is None:
        return []
    state = trainer.state
    step = state.best_global_step or state.global_step
    logged = [e for e in state.log_history if e.get("step") == step and "eval_accuracy" in e]
    if not logged:
        return []
    counts = np.bincount(np.asarray(prepared.eval["labels"]), minlength=labels.num_labels)
    majority = counts.max() / counts.sum()
    accuracy = logged[-1]["eval_accuracy"]
    if accuracy > majority:
        return []
    said = (
        f"the model is no more accurate ({accuracy:.3f}) than always answering {labels.names[int(counts.argmax())]!r} "
        f"({majority:.3f} of the evaluation rows): it has not learned the task; "
    )
    # An even guess over k classes scores a cross-entropy of ln k; far above it, the weights were thrown off by steps
    # too large (learning_rate 5e5 for 5e-5), and "a higher learning rate" would be the wrong advice.
    loss, even = logged[-1].get("eval_loss"), math.log(max(labels.num_labels, 2))
    if isinstance(loss, int | float) and loss > DIVERGED_LOSS_RATIO * even:
        return [
            said + f"its evaluation loss ({loss:.3g}) is far above an even guess's ({even:.3g}), so "
            f"training.learning_rate ({trainer.args.learning_rate:g}) is likely too high: lower it (fine-tuning "
            "rates are about 1e-5 to 1e-3)"
        ]
    return [said + not_learned_advice(trainer)]


# Eval cross-entropy this many times an even guess's (ln k) means the steps threw the weights off, not too little
# training: a model that learned nothing scores about ln k, a confidently wrong one a few times it.
DIVERGED_LOSS_RATIO = 10


def best_metric(ctx: RunContext) -> Metric:
    """F1 (binary), macro F1 (multi-class), micro F1 (multi-label), RMSE (regression)."""
    labels = ctx.labels
    if labels.problem_type == "regression":
        return Metric("rmse", greater_is_better=False)
    if labels.problem_type == "multi_label_classification":
        return Metric("f1_micro", greater_is_better=True)
    return Metric("f1" if labels.num_labels == 2 else "f1_macro", greater_is_better=True)


# ---------------------------------------------------------------------------------------------------- predict


class TextClassificationPredictor:
    """A finished text classification or regression run, loaded once: tokenizer, model, decision thresholds.

    Thread-safe: calls share one fast tokenizer, whose truncation state is not, so batches run one call at a time.
    """

    def __init__(self, run_dir: Path, config) -> None:
        """Load the run's tokenizer and model (CPU, eval mode) and, for multi-label, its stored thresholds.

        Raises:
            OSError: The run directory holds no readable model or tokenizer.
        """
        import threading

        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.run_dir, self.config = Path(run_dir), config
        self.text_column = config.data.columns.get("text", "text")
        self.tokenizer = AutoTokenizer.from_pretrained(self.run_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(self.run_dir).eval()
        self.max_length = effective_max_length(config, self.model.config)
        if self.max_length < config.params.max_length:
            print(
                f"note: params.max_length {config.params.max_length} is beyond the model's {self.max_length} "
                f"positions: inputs are cut at {self.max_length} tokens",
                file=sys.stderr,
            )
        self.names = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.thresholds = (
            stored_thresholds(self.run_dir, self.names, config)
            if self.model.config.problem_type == "multi_label_classification"
            else None
        )
        self._lock = threading.Lock()

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add ``prediction`` (label names or a number) and per-class ``prob_<label>`` columns to ``frame``.

        Args:
            frame: n rows holding the run's text column (``data.columns.text``); other columns are kept.

        Returns:
            A copy of ``frame`` (n rows) with ``prediction`` and, for classification, one ``prob_<label>`` column
            per class (probabilities in [0, 1]; softmax for single-label, sigmoid for multi-label).

        Raises:
            DataError: The text column is missing, empty in a row, or holds values that are not text.
            RunDirError: The model outputs NaN/inf (a run whose training diverged).
        """
        import torch

        check_inputs(frame, self.config)
        texts = frame[self.text_column].tolist()
        outputs = []
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), 64):
                batch = self.tokenizer(
                    texts[start : start + 64],
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                outputs.append(self.model(**batch).logits.float().numpy())
        logits = np.concatenate(outputs) if outputs else np.zeros((0, self.model.config.num_labels))
        broken = int((~np.isfinite(logits)).any(axis=-1).sum())
        if broken:
            raise RunDirError(
                f"the model in {self.run_dir} outputs NaN/inf for {broken} of {len(logits)} input(s): its weights are "
                "broken (a training run that diverged); retrain it with a lower training.learning_rate"
            )
        return _predictions_frame(frame, logits, self.model.config, self.config, self.run_dir, self.thresholds)


def check_inputs(frame: pd.DataFrame, config) -> None:
    """Refuse, before any model loads, an input without the run's text column or with empty or non-text values.

    Raises:
        DataError: Naming the column and the first offending rows (an empty text or a JSON object would still get
            a score, so it is refused like training refuses it).
    """
    text_column = config.data.columns.get("text", "text")
    if text_column not in frame:
        found = ", ".join(map(str, frame.columns))
        raise DataError(f"the input has no column {text_column!r} (the run's text column); found: {found}")
    checked = frame if pd.api.types.is_integer_dtype(frame.index) else frame.reset_index(drop=True)
    require_text(checked, text_column, "the input")


def predict(run_dir: Path, frame: pd.DataFrame, config) -> pd.DataFrame:
    """One prediction: check the inputs, load the run (``TextClassificationPredictor``) and predict ``frame``."""
    check_inputs(frame, config)
    return TextClassificationPredictor(run_dir, config).predict(frame)


def stored_thresholds(run_dir: Path, names: list[str], config) -> np.ndarray:
    """The thresholds the run stored (``thresholds.json``), else ``params.threshold`` (runs from before they were)."""
    path = run_dir / THRESHOLDS_FILE
    if not path.is_file():
        return np.full(len(names), config.params.threshold)
    stored = json.loads(path.read_text())["thresholds"]
    return np.array([stored[name] for name in names])


def _predictions_frame(
    frame: pd.DataFrame, logits: np.ndarray, model_config, config, run_dir: Path, thresholds: np.ndarray | None = None
) -> pd.DataFrame:
    """``frame`` with the predictions of ``logits`` (n rows, num_labels); ``thresholds`` default to the stored ones."""
    from trainforge.metrics.classification import sigmoid, softmax

    out = frame.copy()
    names = [model_config.id2label[i] for i in range(model_config.num_labels)]
    if model_config.problem_type == "regression":
        out["prediction"] = logits.reshape(-1)
        return out
    if model_config.problem_type == "multi_label_classification":
        probabilities = sigmoid(logits)
        if thresholds is None:
            thresholds = stored_thresholds(run_dir, names, config)
        chosen = probabilities >= thresholds
        joiner = config.params.label_delimiter or "|"
        out["prediction"] = [joiner.join(n for n, keep in zip(names, row, strict=True) if keep) for row in chosen]
    else:
        probabilities = softmax(logits)
        out["prediction"] = [names[i] for i in probabilities.argmax(axis=-1)]
    for i, name in enumerate(names):
        out[f"prob_{name}"] = probabilities[:, i]
    return out


# ---------------------------------------------------------------------------------------------------- specs

_REFERENCE_PARAMS = {"max_seq_length": "max_length"}

SPEC = TaskSpec(
    name="text_classification",
    summary="Classify texts into classes (binary, multi-class or multi-label) by fine-tuning an encoder.",
    params=TextClassificationParams,
    columns=CLASSIFICATION_COLUMNS,
    analyze=analyze_classification,
    load_processor=load_tokenizer,
    prepare=prepare,
    build_model=build_model,
    compute_metrics=compute_metrics,
    best_metric=best_metric,
    predict=predict,
    load_predictor=TextClassificationPredictor,
    finish=finish,
    pipeline_tag="text-classification",
    lora="SEQ_CLS",  # the new classification head trains in full beside the adapter (PEFT's modules_to_save)
    reuse_logged_eval=True,
    stratify_column="label",
    example={
        "model": {"name": "sentence-transformers/all-MiniLM-L6-v2"},
        "data": {"source": "data/train.csv", "columns": {"text": "text", "label": "label"}},
    },
    autotrain=AutoTrainShape(
        aliases=(
            "text_classification",
            "text-classification",
            "text_binary_classification",
            "text-binary-classification",
        ),
        columns={"text_column": "text", "target_column": "label"},
        params=_REFERENCE_PARAMS,
    ),
    length_grouping=True,
)

# Same model, data path and trainer as classification: only the head (one output), checks and metrics differ.
REGRESSION_SPEC = dataclasses.replace(
    SPEC,
    name="text_regression",
    summary="Predict a number from a text (scores, ratings) by fine-tuning an encoder.",
    params=TextRegressionParams,
    columns=REGRESSION_COLUMNS,
    analyze=analyze_regression,
    finish=None,
    stratify_column=None,
    example={
        "model": {"name": "sentence-transformers/all-MiniLM-L6-v2"},
        "data": {"source": "data/train.csv", "columns": {"text": "text", "target": "score"}},
    },
    autotrain=AutoTrainShape(
        aliases=(
            "text_regression",
            "text-regression",
            "text_single_column_regression",
            "text-single-column-regression",
        ),
        columns={"text_column": "text", "target_column": "target"},
        params=_REFERENCE_PARAMS,
    ),
)
