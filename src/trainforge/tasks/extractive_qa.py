"""Extractive question answering (SQuAD 1.1 and 2.0): find the answer to a question as a span of its context.

Example (``examples/extractive_qa/minilm_squad_style.yaml``)::

    task: extractive_qa
    model: {name: sentence-transformers/all-MiniLM-L6-v2}
    data: {source: data/qa, eval_split: valid}        # context, question, answers {text: [...], answer_start: [...]}
    params: {max_length: 256, doc_stride: 128}

Run it with ``trainforge train examples/extractive_qa/minilm_squad_style.yaml``.

Long contexts are cut into overlapping windows (``max_length`` tokens, ``doc_stride`` shared); each question's answer
is the best span over its windows (Hugging Face's ``run_qa.py`` recipe, ``metrics/squad.py``). With unanswerable
questions (SQuAD 2.0) the model also learns to point at [CLS], and the threshold on "null score minus best span score"
is tuned on the evaluation split, stored in ``question_answering.json`` and used by predict and the test split.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pandas as pd
from pydantic import Field, model_validator

from trainforge.data.answers import read_answers
from trainforge.data.labels import Problems, require_text, rows
from trainforge.data.qa_windows import check_question_room, encode_windows
from trainforge.errors import ConfigError, DataError
from trainforge.tasks.spec import (
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

SETTINGS_FILE = "question_answering.json"  # version_2 and the null threshold, read by predict

# ---------------------------------------------------------------------------------------------------- params


class ExtractiveQAParams(TaskParams):
    """Parameters of ``extractive_qa``."""

    max_length: int = Field(
        384,
        gt=8,
        description="Tokens per window (question + a part of the context); longer contexts get several windows.",
        json_schema_extra={"tier": "basic"},
    )
    doc_stride: int = Field(
        128,
        ge=0,
        description="Context tokens shared by consecutive windows of a long context, so no answer is cut in two.",
        json_schema_extra={"tier": "basic"},
    )
    max_answer_length: int = Field(
        30, gt=0, description="Longest answer, in tokens.", json_schema_extra={"tier": "advanced"}
    )
    n_best: int = Field(
        20,
        gt=0,
        description="Start and end candidates per window when choosing the answer span.",
        json_schema_extra={"tier": "advanced"},
    )
    version_2: bool | None = Field(
        None,
        description=(
            "Questions may have no answer (SQuAD 2.0). Default: on when some rows have no answer (empty lists, or "
            'text [""] with answer_start [-1]).'
        ),
        json_schema_extra={"tier": "advanced"},
    )
    null_threshold: float | None = Field(
        None,
        description=(
            "SQuAD 2.0: give no answer when the null score beats the best span's by more than this (logits). "
            "Default: tuned on the evaluation split for F1, stored with the model for predict (0 without one)."
        ),
        json_schema_extra={"tier": "advanced"},
    )

    @model_validator(mode="after")
    def _stride_below_length(self) -> ExtractiveQAParams:
        if self.doc_stride >= self.max_length:
            raise ValueError(
                f"doc_stride ({self.doc_stride}) must be below max_length ({self.max_length}): it is the overlap of "
                "two windows of max_length tokens (the reference's defaults 128/128 never ran); e.g. doc_stride: "
                f"{self.max_length // 4}"
            )
        return self


COLUMNS = (
    Column("context", "the passage that holds the answer"),
    Column("question", "the question"),
    Column(
        "answers",
        'the answer as {"text": [...], "answer_start": [...]} (character offsets into the context; empty lists '
        "for an unanswerable question)",
        role="target",
        kind="answers",
    ),
)

# ---------------------------------------------------------------------------------------------------- analyze


def analyze(ctx: RunContext, splits) -> Analysis:
    """Check contexts, questions and answers of every split, and that each question leaves room for context.

    Every ``answer_start`` must point at its answer text (the rows that do not are named with where the text does
    occur). The splits are only read; ``prepare`` reads the answers again into ``{"text": [...], "answer_start":
    [...]}``.

    Raises:
        DataError: Every problem of every split in one message.
        ConfigError: The model's tokenizer has no character offsets (not a "fast" tokenizer).
    """
    config, params = ctx.config, ctx.config.params
    columns = config.data.columns
    problems = Problems()
    present = splits.present()
    for _, frame, origin in present:
        problems.check(require_text, frame, "context", origin, columns.get("context", "context"))
        problems.check(require_text, frame, "question", origin, columns.get("question", "question"))
    problems.raise_if_any()
    answers = {}
    for name, frame, origin in present:
        answers[name], messages = read_answers(frame, origin, columns.get("answers", "answers"))
        for message in messages:
            problems.add(message)
    problems.raise_if_any()
    empty = {name: frame.index[answers[name].map(lambda a: not a["text"])] for name, frame, _ in present}
    version_2 = params.version_2 if params.version_2 is not None else any(len(e) for e in empty.values())
    notes = []
    for name, frame, origin in present:
        if len(empty[name]) and not version_2:
            problems.add(
                f"{origin}: {len(empty[name])} question(s) without an answer, {rows(empty[name])}, but "
                "params.version_2 is false: give them their answers, or set params.version_2: true (SQuAD 2.0)"
            )
        elif len(empty[name]) and params.version_2 is None:
            notes.append(f"{origin}: {len(empty[name])} of {len(frame)} questions have no answer: SQuAD 2.0 mode")
        check = (ctx.processor, frame["question"], origin, window_length(config), params.doc_stride)
        problems.check(check_question_room, *check, columns.get("question", "question"))
    problems.raise_if_any()
    unanswerable = {name: len(e) for name, e in empty.items()}
    shape = "SQuAD 2.0 (a question may have no answer)" if version_2 else "SQuAD 1.1 (every question has an answer)"
    facts = {"version_2": bool(version_2), "unanswerable": unanswerable, "data_format": shape}
    return Analysis("extractive_question_answering", (), facts, tuple(notes))


# ---------------------------------------------------------------------------------------------------- prepare


def load_tokenizer(ctx: RunContext):
    """The base model's tokenizer; it must give character offsets (a "fast" tokenizer) to map answers to tokens.

    Raises:
        ConfigError: The tokenizer has no offsets.
    """
    from transformers import AutoTokenizer

    config = ctx.config
    tokenizer = AutoTokenizer.from_pretrained(
        config.model.name, revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
    )
    if not tokenizer.is_fast:
        raise ConfigError(
            [("model.name", f"{config.model.name}'s tokenizer gives no character offsets (not a fast tokenizer)")]
        )
    return tokenizer


def window_length(config, model_config=None) -> int:
    """``params.max_length``, cut to the model's absolute position embeddings (read from its config when not given)."""
    from transformers import AutoConfig

    from trainforge.tasks.text_classification import effective_max_length

    if model_config is None:
        model = config.model
        model_config = AutoConfig.from_pretrained(
            model.name, revision=model.revision, trust_remote_code=model.trust_remote_code
        )
    return effective_max_length(config, model_config)


def prepare(ctx: RunContext, splits) -> Prepared:
    """Windows of every split: labelled for training, with what post-processing needs for eval and test."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding

    config, tokenizer = ctx.config, ctx.processor
    max_length, stride = window_length(config), config.params.doc_stride

    def encode(frame: pd.DataFrame | None, evaluation: bool) -> Dataset | None:
        if frame is None:
            return None
        answers, _ = read_answers(frame, "", "answers")  # checked by analyze: every cell reads
        frame = frame.assign(answers=answers)
        return Dataset.from_dict(encode_windows(tokenizer, frame, max_length, stride, evaluation))

    return Prepared(
        encode(splits.train, False),
        encode(splits.eval, True),
        DataCollatorWithPadding(tokenizer),
        test=encode(splits.test, True),
    )


def build_model(ctx: RunContext):
    """A span-prediction head (start and end logits per token) on the base encoder."""
    from transformers import AutoModelForQuestionAnswering

    config = ctx.config
    return AutoModelForQuestionAnswering.from_pretrained(
        config.model.name, revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
    )


# ---------------------------------------------------------------------------------------------------- metrics


def compute_metrics(ctx: RunContext):
    """The run's ``SquadScorer`` (the trainer hands it the windows being evaluated)."""
    from trainforge.metrics.squad import SquadScorer

    params = ctx.config.params
    version_2 = bool(ctx.labels.facts.get("version_2"))
    return SquadScorer(params.n_best, params.max_answer_length, version_2, params.null_threshold)


def best_metric(ctx: RunContext) -> Metric:
    """F1 (SQuAD's token-overlap F1, with the tuned null threshold for 2.0)."""
    return Metric("f1", greater_is_better=True)


# ---------------------------------------------------------------------------------------------------- trainer


def make_trainer(inputs: TrainerInputs):
    """A ``transformers.Trainer`` whose evaluation post-processes windows into answers (``QuestionAnsweringTrainer``).

    Windows carry columns the model does not read (offsets, contexts, gold answers): the Trainer drops them from
    the batches (``remove_unused_columns``) and the scorer reads them from the dataset.
    """
    from transformers import Trainer, TrainingArguments

    from trainforge.metrics.squad import SquadScorer
    from trainforge.training.hf_trainer import InOrderEvaluation

    class QuestionAnsweringTrainer(InOrderEvaluation, Trainer):
        """Hands the scorer the windows it evaluates; the eval split tunes the null threshold, others reuse it."""

        def __init__(self, *args, scorer: SquadScorer, **kwargs) -> None:
            super().__init__(*args, compute_metrics=scorer, **kwargs)
            self.scorer = scorer

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):  # noqa: D102
            dataset = self.eval_dataset if eval_dataset is None else eval_dataset
            if isinstance(dataset, dict):  # Trainer.evaluate calls back here for each dataset
                return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
            self.scorer.windows = dataset
            self.scorer.threshold = self.scorer.fixed_threshold
            if dataset is not self.eval_dataset and self.scorer.threshold is None:  # test split, or any other data
                self.scorer.threshold = kept_threshold(self)
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    prepared, ctx = inputs.prepared, inputs.ctx
    scorer = inputs.compute_metrics if isinstance(inputs.compute_metrics, SquadScorer) else compute_metrics(ctx)
    return QuestionAnsweringTrainer(
        model=inputs.model,
        args=TrainingArguments(**{**inputs.args, "remove_unused_columns": True}),
        train_dataset=prepared.train,
        eval_dataset=prepared.eval,
        data_collator=prepared.collator,
        processing_class=ctx.processor,
        callbacks=inputs.callbacks,
        scorer=scorer,
    )


def kept_threshold(trainer) -> float:
    """The null threshold tuned on the eval split for the kept weights (logged with their evaluation), else 0.

    0 is ``run_qa``'s default ``null_score_diff_threshold``: no answer when the null score beats the best span's.
    """
    state, args = trainer.state, trainer.args
    step = state.best_global_step if args.load_best_model_at_end and state.best_global_step else state.global_step
    for entry in reversed(state.log_history):
        if entry.get("step") == step and "eval_null_threshold" in entry:
            return float(entry["eval_null_threshold"])
    return 0.0


def finish(ctx: RunContext, trainer, prepared: Prepared) -> list[str]:
    """Store what predict needs beyond the weights (``question_answering.json``): SQuAD version, null threshold.

    The threshold is the one tuned on the eval split with the kept weights (read from their logged evaluation, or
    evaluated now when none was logged), or ``params.null_threshold``.
    """
    params, version_2 = ctx.config.params, bool(ctx.labels.facts.get("version_2"))
    notes, threshold, source = [], 0.0, "not used (SQuAD 1.1: every question has an answer)"
    if version_2 and params.null_threshold is not None:
        threshold, source = params.null_threshold, "params.null_threshold"
    elif version_2 and prepared.eval is not None:
        if not any("eval_null_threshold" in e for e in trainer.state.log_history):
            trainer.evaluate()  # eval_strategy "no": the kept weights were never evaluated
        threshold, source = kept_threshold(trainer), "tuned on the evaluation split for F1"
    elif version_2:
        source = "0 (no evaluation split to tune it on)"
        notes.append(
            "no evaluation split to tune the no-answer threshold on: predict gives no answer when the null score "
            "beats the best span's (threshold 0); set data.eval_split or params.null_threshold"
        )
    settings = {"version_2": version_2, "null_threshold": threshold, "null_threshold_source": source}
    (ctx.output_dir / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return notes


# ---------------------------------------------------------------------------------------------------- predict


class QuestionAnsweringPredictor:
    """A finished run loaded once: tokenizer, model, SQuAD version and null threshold. Thread-safe (one lock)."""

    def __init__(self, run_dir: Path, config) -> None:
        """Load the run's tokenizer and model (CPU, eval mode) and its ``question_answering.json``.

        Raises:
            OSError: The run directory holds no readable model or tokenizer.
        """
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        self.run_dir, self.config = Path(run_dir), config
        self.tokenizer = AutoTokenizer.from_pretrained(self.run_dir)
        self.model = AutoModelForQuestionAnswering.from_pretrained(self.run_dir).eval()
        self.max_length = window_length(config, self.model.config)
        path = self.run_dir / SETTINGS_FILE
        settings = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        self.version_2 = bool(settings.get("version_2", False))
        self.threshold = float(settings.get("null_threshold", 0.0))
        self._lock = threading.Lock()

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add ``answer``, ``answer_start``/``answer_end`` (character offsets, ``<NA>`` for no answer) and ``score``.

        ``score`` is the answer's probability among the question's n-best spans (and the null answer for SQuAD 2.0);
        for no answer it is the null answer's probability.

        Raises:
            DataError: A context or question column is missing, empty in a row, not text, or a question is too long.
        """
        import torch

        from trainforge.metrics.squad import post_process

        inputs = check_inputs(frame, self.config)
        params = self.config.params
        check_question_room(
            self.tokenizer,
            inputs["question"],
            "the input",
            self.max_length,
            params.doc_stride,
            question_column(self.config),
        )
        windows = encode_windows(self.tokenizer, inputs, self.max_length, params.doc_stride, evaluation=True)
        starts, ends = [], []
        with self._lock, torch.inference_mode():
            for first in range(0, len(windows["input_ids"]), 32):
                batch = {k: windows[k][first : first + 32] for k in self.tokenizer.model_input_names if k in windows}
                outputs = self.model(**self.tokenizer.pad(batch, return_tensors="pt"))
                starts += list(outputs.start_logits.float().numpy())
                ends += list(outputs.end_logits.float().numpy())
        answers, _, _ = post_process((starts, ends), windows, params.n_best, params.max_answer_length, self.version_2)
        out = frame.copy()
        empty = [a.start < 0 or (self.version_2 and a.null_margin > self.threshold) for a in answers]
        out["answer"] = ["" if e else a.text for a, e in zip(answers, empty, strict=True)]
        out["answer_start"] = pd.array([pd.NA if e else a.start for a, e in zip(answers, empty, strict=True)], "Int64")
        out["answer_end"] = pd.array([pd.NA if e else a.end for a, e in zip(answers, empty, strict=True)], "Int64")
        out["score"] = [a.null_probability if e else a.probability for a, e in zip(answers, empty, strict=True)]
        return out


def check_inputs(frame: pd.DataFrame, config) -> pd.DataFrame:
    """The input with the run's context and question columns under those names, checked as training checks them.

    Raises:
        DataError: A column is missing, a row empty or not text, or a question too long for the run's windows.
    """
    names = {"context": config.data.columns.get("context", "context"), "question": question_column(config)}
    missing = [f"{user!r} (the run's {role} column)" for role, user in names.items() if user not in frame]
    if missing:
        found = ", ".join(map(str, frame.columns))
        raise DataError(f"the input has no column {' or '.join(missing)}; found: {found}")
    checked = frame if pd.api.types.is_integer_dtype(frame.index) else frame.reset_index(drop=True)
    renamed = pd.DataFrame({role: checked[user] for role, user in names.items()}, index=checked.index)
    problems = Problems()
    for role, user in names.items():
        problems.check(require_text, renamed, role, "the input", user)
    problems.raise_if_any()
    return renamed


def question_column(config) -> str:
    """The user's name of the question column."""
    return config.data.columns.get("question", "question")


def predict(run_dir: Path, frame: pd.DataFrame, config) -> pd.DataFrame:
    """One prediction: check the inputs, load the run (``QuestionAnsweringPredictor``) and answer ``frame``."""
    check_inputs(frame, config)
    return QuestionAnsweringPredictor(run_dir, config).predict(frame)


def model_card(run_dir: Path, config) -> str:
    """The "Use it" section: plain transformers (the ``question-answering`` pipeline is gone from transformers 5)."""
    return f"""## Use it

```python
import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{run_dir}")
model = AutoModelForQuestionAnswering.from_pretrained("{run_dir}").eval()
question, context = "Who wrote it?", "It was written by Ada in 1843."
inputs = tokenizer(question, context, return_offsets_mapping=True, truncation="only_second", return_tensors="pt")
offsets = inputs.pop("offset_mapping")[0]
with torch.no_grad():
    out = model(**inputs)
start, end = int(out.start_logits.argmax()), int(out.end_logits.argmax())
print(context[offsets[start][0] : offsets[end][1]])
```

`trainforge predict {run_dir} --input questions.csv --output answers.csv` also splits long contexts into windows,
picks the best span over them (n-best, maximum answer length) and, for SQuAD 2.0, applies the stored no-answer
threshold (`{SETTINGS_FILE}`).
"""


# ---------------------------------------------------------------------------------------------------- spec

SPEC = TaskSpec(
    name="extractive_qa",
    summary="Answer questions with a span of their context (SQuAD 1.1, and 2.0 with unanswerable questions).",
    params=ExtractiveQAParams,
    columns=COLUMNS,
    analyze=analyze,
    load_processor=load_tokenizer,
    prepare=prepare,
    build_model=build_model,
    compute_metrics=compute_metrics,
    best_metric=best_metric,
    predict=predict,
    load_predictor=QuestionAnsweringPredictor,
    make_trainer=make_trainer,
    finish=finish,
    model_card=model_card,
    pipeline_tag="question-answering",
    lora="QUESTION_ANS",  # the new span head trains in full beside the adapter (PEFT's modules_to_save)
    reuse_logged_eval=True,  # the scorer runs inside Trainer.evaluate: the logged evaluation is complete
    example={
        "model": {"name": "sentence-transformers/all-MiniLM-L6-v2"},
        "data": {
            "source": "data/qa",
            "eval_split": "valid",
            "columns": {"context": "context", "question": "question", "answers": "answers"},
        },
    },
    autotrain=AutoTrainShape(
        aliases=(
            "extractive_question_answering",
            "extractive-qa",
            "ext_qa",
            "ext-qa",
            "extractive-question-answering",
        ),
        columns={"text_column": "context", "question_column": "question", "answer_column": "answers"},
        params={"max_seq_length": "max_length", "max_doc_stride": "doc_stride"},
    ),
    length_grouping=True,
)
