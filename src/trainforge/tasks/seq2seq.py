"""Sequence to sequence: generate a target text from a source text with any encoder-decoder (T5, BART, Marian...).

Example (``examples/seq2seq/t5_dates.yaml``)::

    task: seq2seq
    model: {name: google/flan-t5-small}
    data: {source: examples/seq2seq/data, train_split: train, eval_split: valid, columns: {text: text, target: target}}
    params: {task_prefix: "normalize date: ", max_length: 32, max_target_length: 16}

Run it with ``trainforge train examples/seq2seq/t5_dates.yaml``. Evaluation generates (``predict_with_generate``) and
scores the texts with ROUGE, BLEU and chrF (``trainforge.metrics.generation``); predict generates too.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from trainforge.config.sections import ADVANCED, BASIC
from trainforge.data.labels import Problems, require_text, written_label
from trainforge.errors import ConfigError, DataError, RunDirError
from trainforge.metrics.generation import GENERATION_METRICS, bleu_chrf
from trainforge.tasks.spec import Analysis, AutoTrainShape, Column, Metric, Prepared, RunContext, TaskParams, TaskSpec
from trainforge.tasks.text_classification import load_tokenizer
from trainforge.training.advice import not_learned_advice

# ---------------------------------------------------------------------------------------------------- params


class Seq2SeqParams(TaskParams):
    """Parameters of ``seq2seq``."""

    max_length: int = Field(
        128,
        gt=0,
        description="Truncate source texts (task prefix included) to this many tokens.",
        json_schema_extra=BASIC,
    )
    max_target_length: int = Field(
        128, gt=0, description="Truncate target texts to this many tokens for training.", json_schema_extra=BASIC
    )
    task_prefix: str = Field(
        "",
        description=(
            "Text put before every source in training, evaluation and predict (T5 style, e.g. "
            "'translate English to German: ' or 'summarize: ')."
        ),
        json_schema_extra=BASIC,
    )
    predict_with_generate: bool = Field(
        True,
        description=(
            "Evaluate by generating texts and scoring them (ROUGE-1/2/L/Lsum, BLEU, chrF, generated length); "
            "false: evaluation loss only (much faster)."
        ),
        json_schema_extra=ADVANCED,
    )
    num_beams: int = Field(
        1,
        ge=1,
        description="Beam size when generating, in evaluation and predict (1: greedy).",
        json_schema_extra=BASIC,
    )
    max_new_tokens: int | None = Field(
        None,
        gt=0,
        description="Most tokens generated per text, in evaluation and predict (default: max_target_length).",
        json_schema_extra=ADVANCED,
    )


COLUMNS = (
    Column("text", "the source text"),
    Column("target", "the text to generate from it", role="target", kind="text"),
)
# Generation is what evaluation costs: past this many eval rows, a note says how to make it cheaper.
LARGE_EVAL_ROWS = 2000

# ---------------------------------------------------------------------------------------------------- analyze


def analyze(ctx: RunContext, splits) -> Analysis:
    """Check every split's texts and the model's config; measure truncation and the copy-the-source baseline.

    Cells holding numbers are read as text (``7``); empty cells, JSON objects, lists and booleans are refused.

    Raises:
        DataError: Every empty or non-text source/target cell of every split, in one message.
        ConfigError: The model is not an encoder-decoder or has no ``decoder_start_token_id``; a length the user set
            beyond the model's absolute position embeddings.
    """
    config = ctx.config
    problems = Problems()
    for _, frame, origin in splits.present():
        texts = pd.DataFrame({column: _texts(frame, column) for column in ("text", "target")}, index=frame.index)
        for column in texts:
            problems.check(require_text, texts, column, origin, config.data.columns.get(column, column))
    problems.raise_if_any()
    model_config = _model_config(config)
    limits = token_limits(config.params, model_config, strict=True)
    notes = []
    if limits["target"] < config.params.max_target_length:  # the untouched default (strict refused a set value)
        notes.append(f"params.max_target_length is beyond the model's positions: cut to {limits['target']} tokens")
    notes += _truncation_notes(ctx, splits, limits)
    prefix = f", task prefix {config.params.task_prefix!r}" if config.params.task_prefix else ""
    shape = f"text -> target, at most {limits['source']} / {limits['target']} tokens{prefix}"
    facts: dict = {"data_format": shape, "token_limits": limits}
    if splits.eval is not None:
        # The score of answering every row with its own source: a trained model must beat it (see finish).
        facts["copy_source"] = bleu_chrf(list(_texts(splits.eval, "text")), list(_texts(splits.eval, "target")))
        if config.params.predict_with_generate and len(splits.eval) > LARGE_EVAL_ROWS:
            notes.append(
                f"each evaluation generates a text for all {len(splits.eval):,} evaluation rows; to make it cheaper, "
                "set data.max_eval_rows, or params.predict_with_generate: false (loss only)"
            )
    return Analysis("seq2seq", facts=facts, notes=tuple(notes))


def _texts(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column's cells as the model reads them: numbers as text, everything else as it is (the frame unchanged)."""
    return frame[column].map(_number_as_text)


def _number_as_text(value):
    """A number as the text it was written (``7``, ``2.5``); anything else unchanged (bools are refused later)."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_):
        return value if pd.isna(value) else written_label(value)
    return value


def _model_config(config):
    """The base model's config (no weights), refused when it cannot generate from a source.

    Raises:
        ConfigError: Not an encoder-decoder, or no ``decoder_start_token_id`` (training shifts targets right with it).
    """
    from transformers import AutoConfig

    try:
        model_config = AutoConfig.from_pretrained(
            config.model.name, revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
        )
    # OSError: a missing or corrupt config.json; ValueError: an unknown model_type, or remote code not trusted.
    except (OSError, ValueError) as exc:
        raise ConfigError([("model.name", f"cannot read the model's config: {exc}")]) from exc
    name, kind = config.model.name, model_config.model_type
    problem = None
    if not getattr(model_config, "is_encoder_decoder", False):
        problem = (
            f"{name} is a {kind} model, not an encoder-decoder: seq2seq needs one such as google/flan-t5-small, "
            "facebook/bart-base or Helsinki-NLP/opus-mt-en-de (for a decoder-only model, use llm_sft)"
        )
    elif getattr(model_config, "decoder_start_token_id", None) is None:
        problem = (
            f"the config.json of {name} ({kind}) has no decoder_start_token_id, the token every target starts "
            "from: add it (T5: the pad token id, 0; BART: the </s> id, 2)"
        )
    if problem:
        raise ConfigError([("model.name", problem)])
    return model_config


def token_limits(params, model_config, strict: bool = False) -> dict[str, int]:
    """Token budgets ``source``, ``target`` and ``new`` (generated), cut to the model's absolute positions.

    Encoder and decoder share ``max_position_embeddings`` (BART, Marian); relative positions (T5) have no limit.
    A default beyond the limit is cut (tiny test models); with ``strict``, a value the user set is an error.

    Raises:
        ConfigError: ``strict`` and ``params.max_target_length`` or ``params.max_new_tokens`` set beyond the limit
            (``params.max_length`` is checked by validate's generic length check).
    """
    from trainforge.models.config_checks import position_limit, relative_positions

    wanted = {
        "source": ("max_length", params.max_length),
        "target": ("max_target_length", params.max_target_length),
        "new": ("max_new_tokens", params.max_new_tokens or params.max_target_length),
    }
    limit, source = position_limit(model_config)
    if limit is None or relative_positions(model_config) is not None:
        return {key: value for key, (_, value) in wanted.items()}
    set_by_user = [
        (name, value)
        for name, value in wanted.values()
        if name != "max_length" and value > limit and getattr(params, name) != type(params).model_fields[name].default
    ]
    problems = [
        (
            f"params.{name}",
            f"{value} tokens, but the model ({model_config.model_type}) has absolute position embeddings for {limit} "
            f"tokens ({source}): set params.{name} to {limit} or less",
        )
        for name, value in set_by_user
    ]
    if strict and problems:
        raise ConfigError(problems)
    return {key: min(value, limit) for key, (_, value) in wanted.items()}


def _truncation_notes(ctx: RunContext, splits, limits: dict[str, int]) -> list[str]:
    """Notes naming how many training sources/targets are longer than their token budget (they are cut)."""
    tokenizer, params = ctx.processor, ctx.config.params
    notes = []
    frame = splits.train
    for column, key, name in (("text", "source", "max_length"), ("target", "target", "max_target_length")):
        texts = _sources(frame, params.task_prefix) if column == "text" else list(_texts(frame, column))
        lengths = np.array([len(ids) for ids in tokenizer(texts)["input_ids"]])
        over = int((lengths > limits[key]).sum())
        if over:
            notes.append(
                f"{over} of {len(frame)} training {'sources' if column == 'text' else 'targets'} are longer than "
                f"{limits[key]} tokens (params.{name}) and are cut (longest: {int(lengths.max())} tokens)"
            )
    return notes


def _sources(frame: pd.DataFrame, prefix: str) -> list[str]:
    return [prefix + text for text in _texts(frame, "text")]


# ---------------------------------------------------------------------------------------------------- prepare


def prepare(ctx: RunContext, splits) -> Prepared:
    """Tokenise sources (with the task prefix) and targets; the collator pads each batch, labels with -100."""
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq

    tokenizer, params, limits = ctx.processor, ctx.config.params, ctx.labels.facts["token_limits"]

    def encode(frame: pd.DataFrame | None) -> Dataset | None:
        if frame is None:
            return None
        columns = dict(tokenizer(_sources(frame, params.task_prefix), truncation=True, max_length=limits["source"]))
        targets = tokenizer(text_target=list(_texts(frame, "target")), truncation=True, max_length=limits["target"])
        columns["labels"] = targets["input_ids"]
        return Dataset.from_dict(columns)

    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)
    return Prepared(encode(splits.train), encode(splits.eval), collator, test=encode(splits.test))


# ---------------------------------------------------------------------------------------------------- model


def build_model(ctx: RunContext):
    """The encoder-decoder with its generation settings (beams, new tokens) saved in its generation config.

    So plain ``model.generate(**inputs)`` on the saved run generates as evaluation did.
    """
    from transformers import AutoModelForSeq2SeqLM

    config = ctx.config
    model = AutoModelForSeq2SeqLM.from_pretrained(
        config.model.name, revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
    )
    # As max_length (the decoder's start token + the new tokens), not max_new_tokens: the Seq2SeqTrainer fills in a
    # default max_length after its first generation, and generate() then warns about both at every batch.
    model.generation_config.max_new_tokens = None
    model.generation_config.max_length = ctx.labels.facts["token_limits"]["new"] + 1
    model.generation_config.num_beams = config.params.num_beams
    return model


def make_trainer(inputs):
    """A ``Seq2SeqTrainer`` whose evaluation generates (``params.predict_with_generate``) with the model's settings."""
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

    from trainforge.training.hf_trainer import InOrderEvaluation

    class TiedSeq2SeqTrainer(InOrderEvaluation, Seq2SeqTrainer):
        """Restoring the best checkpoint names no "missing keys" for embeddings tied to the shared one (T5, BART).

        Checkpoints store a tied matrix once; transformers 5.24's Trainer warns about the others although loading
        the shared one restores them all.
        """

        def _issue_warnings_after_load(self, load_result):
            tied = set(getattr(self.model, "all_tied_weights_keys", None) or ())
            missing = [key for key in load_result.missing_keys if key not in tied]
            super()._issue_warnings_after_load(load_result._replace(missing_keys=missing))

    params, prepared = inputs.ctx.config.params, inputs.prepared
    args = Seq2SeqTrainingArguments(
        **inputs.args, predict_with_generate=params.predict_with_generate, generation_num_beams=params.num_beams
    )
    return TiedSeq2SeqTrainer(
        model=inputs.model,
        args=args,
        train_dataset=prepared.train,
        eval_dataset=prepared.eval,
        data_collator=prepared.collator,
        processing_class=inputs.ctx.processor,
        compute_metrics=inputs.compute_metrics,  # None without eval and test splits (the driver decides)
        callbacks=inputs.callbacks,
    )


# ---------------------------------------------------------------------------------------------------- metrics


def compute_metrics(ctx: RunContext):
    """Generated ids -> ROUGE-1/2/L/Lsum, BLEU, chrF, gen_len (``metrics.generation``); None without generation.

    References are the targets as the model trains on them (decoded labels, cut at ``max_target_length``).
    ``gen_len`` counts the tokens generated per row, the decoder's start token left out and EOS included.
    """
    if not ctx.config.params.predict_with_generate:
        return None
    from trainforge.metrics.generation import generation_metrics

    tokenizer = ctx.processor

    def compute(prediction) -> dict[str, float]:
        pad = tokenizer.pad_token_id
        generated = np.asarray(
            prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        )
        generated = np.where(generated < 0, pad, generated)  # -100: the Trainer's padding between batches
        labels = np.where(prediction.label_ids < 0, pad, prediction.label_ids)
        texts = [t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True)]
        references = [t.strip() for t in tokenizer.batch_decode(labels, skip_special_tokens=True)]
        lengths = (generated[:, 1:] != pad).sum(axis=1)
        return generation_metrics(texts, references, lengths)

    return compute


def best_metric(ctx: RunContext) -> Metric:
    """The chrF score when evaluation generates (robust in any language and script), else the evaluation loss."""
    if ctx.config.params.predict_with_generate:
        return Metric("chrf", greater_is_better=True)
    return Metric("loss", greater_is_better=False)


def check_config(config) -> list[tuple[str, str]]:
    """``training.metric_for_best_model`` must be a score this run reports (and not the generated length)."""
    name = config.training.metric_for_best_model
    if name is None or name == "loss":
        return []
    scores = [m for m in GENERATION_METRICS if m != "gen_len"]
    if name not in scores:
        return [
            (
                "training.metric_for_best_model",
                f"{name!r} is not a seq2seq score; use loss or one of {', '.join(scores)}",
            )
        ]
    if not config.params.predict_with_generate:
        return [
            (
                "training.metric_for_best_model",
                f"{name} needs generated texts: set params.predict_with_generate: true, or use loss",
            )
        ]
    return []


def finish(ctx: RunContext, trainer, prepared: Prepared) -> list[str]:
    """A note when the kept model scores no better chrF than copying each source (read from the logged evaluation)."""
    baseline = ctx.labels.facts.get("copy_source")
    if baseline is None or not ctx.config.params.predict_with_generate:
        return []
    state = trainer.state
    step = state.best_global_step or state.global_step
    logged = [e for e in state.log_history if e.get("step") == step and "eval_chrf" in e]
    if not logged or logged[-1]["eval_chrf"] > baseline["chrf"]:
        return []
    return [
        f"the model's chrF ({logged[-1]['eval_chrf']:.1f}) is no better than copying each source text "
        f"({baseline['chrf']:.1f}) on the evaluation rows: it has not learned the task; {not_learned_advice(trainer)}"
    ]


# ---------------------------------------------------------------------------------------------------- predict


class Seq2SeqPredictor:
    """A finished seq2seq run, loaded once: tokenizer and model (on the GPU when there is one).

    Thread-safe: the shared fast tokenizer and ``generate`` run one call at a time.
    """

    def __init__(self, run_dir: Path, config) -> None:
        """Load the run's tokenizer and model; refuse weights that are not finite.

        Raises:
            OSError: The run directory holds no readable model or tokenizer.
            RunDirError: The weights hold NaN/inf (a run that diverged).
        """
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.run_dir, self.config = Path(run_dir), config
        self.tokenizer = AutoTokenizer.from_pretrained(self.run_dir)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(self.run_dir).eval()
        if any(not torch.isfinite(p).all() for p in self.model.parameters()):
            raise RunDirError(
                f"the model in {self.run_dir} holds NaN/inf weights (a training run that diverged); retrain it with "
                "a lower training.learning_rate"
            )
        if torch.cuda.is_available():
            self.model = self.model.to("cuda")
        self.limits = token_limits(config.params, self.model.config)
        if self.limits["source"] < config.params.max_length:
            print(
                f"note: params.max_length {config.params.max_length} is beyond the model's positions: inputs are "
                f"cut at {self.limits['source']} tokens",
                file=sys.stderr,
            )
        self._lock = threading.Lock()

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add a ``prediction`` column: the text generated from each row's source (task prefix added).

        Args:
            frame: n rows holding the run's text column (``data.columns.text``); other columns are kept.

        Returns:
            A copy of ``frame`` (n rows) with ``prediction`` (str, special tokens removed), generated with
            ``params.num_beams`` beams and at most ``params.max_new_tokens`` tokens.

        Raises:
            DataError: The text column is missing, or empty or not text in some row.
        """
        import torch

        texts = check_inputs(frame, self.config)
        params, outputs = self.config.params, []
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), 32):
                batch = self.tokenizer(
                    [params.task_prefix + t for t in texts[start : start + 32]],
                    truncation=True,
                    max_length=self.limits["source"],
                    padding=True,
                    return_tensors="pt",
                ).to(self.model.device)
                ids = self.model.generate(**batch, max_length=self.limits["new"] + 1, num_beams=params.num_beams)
                outputs += [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        out = frame.copy()
        out["prediction"] = outputs
        return out


def check_inputs(frame: pd.DataFrame, config) -> list[str]:
    """The source texts of ``frame`` (numbers read as text), or an error before any model loads.

    Raises:
        DataError: No column named like the run's text column, or empty or non-text cells (naming the rows).
    """
    column = config.data.columns.get("text", "text")
    if column not in frame:
        raise DataError(
            f"the input has no column {column!r} (the run's source text column); found: "
            f"{', '.join(map(str, frame.columns))}"
        )
    checked = pd.DataFrame({column: frame[column].map(_number_as_text).to_numpy()})
    require_text(checked, column, "the input")
    return list(checked[column])


def predict(run_dir: Path, frame: pd.DataFrame, config) -> pd.DataFrame:
    """One prediction: check the inputs, load the run (``Seq2SeqPredictor``) and generate for ``frame``."""
    check_inputs(frame, config)
    return Seq2SeqPredictor(run_dir, config).predict(frame)


def model_card(run_dir: Path, config) -> str:
    """The model card's usage section: plain transformers ``generate`` (transformers 5 has no text2text pipeline)."""
    prefix, params = config.params.task_prefix, config.params
    return f"""## Use it

```python
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{run_dir}")
model = AutoModelForSeq2SeqLM.from_pretrained("{run_dir}")
texts = [{(prefix + "an example input")!r}]
inputs = tokenizer(texts, return_tensors="pt", truncation=True, max_length={params.max_length})
print(tokenizer.batch_decode(model.generate(**inputs), skip_special_tokens=True))
```

`generate` uses the saved generation config: {params.num_beams} beam(s), at most
{params.max_new_tokens or params.max_target_length} new tokens. Sources were prefixed with {prefix!r}.
"""


# ---------------------------------------------------------------------------------------------------- spec

SPEC = TaskSpec(
    name="seq2seq",
    summary=(
        "Generate a target text from a source text (translation, summarisation, rewriting) by fine-tuning an "
        "encoder-decoder (T5, BART, Marian...)."
    ),
    params=Seq2SeqParams,
    columns=COLUMNS,
    analyze=analyze,
    load_processor=load_tokenizer,
    prepare=prepare,
    build_model=build_model,
    compute_metrics=compute_metrics,
    best_metric=best_metric,
    predict=predict,
    load_predictor=Seq2SeqPredictor,
    make_trainer=make_trainer,
    finish=finish,
    check_config=check_config,
    model_card=model_card,
    pipeline_tag="text2text-generation",
    lora="SEQ_2_SEQ_LM",  # the driver wraps the model and saves the merged one (adapter in adapter/)
    reuse_logged_eval=True,
    default_model="google/flan-t5-base",
    extras=(("sacrebleu", "nlp"), ("rouge_score", "nlp")),
    example={
        "model": {"name": "google/flan-t5-small"},
        "data": {"source": "data/train.csv", "columns": {"text": "source", "target": "target"}},
        "params": {"task_prefix": "translate English to German: "},
    },
    autotrain=AutoTrainShape(
        aliases=("seq2seq",),
        columns={"text_column": "text", "target_column": "target"},
        params={"max_seq_length": "max_length", "max_target_length": "max_target_length"},
    ),
    length_grouping=True,
)
