"""Token classification (named entities, or any per-word tags) on any encoder with a fast tokenizer.

Example (``examples/token_classification/minilm_ner.yaml``)::

    task: token_classification
    model: {name: sentence-transformers/all-MiniLM-L6-v2}
    data: {source: data/ner, train_split: train, eval_split: valid}    # train.conll, valid.conll
    params: {max_length: 128}

A row is a sentence: its words and one tag per word. Only a word's first sub-token carries its tag in the loss and
the metrics (the reference tagged every sub-token, which counts long words several times and splits entities).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from trainforge.data.labels import rows
from trainforge.data.word_lists import name_tags, read_sentences, shown, tag_order, words_and_spans
from trainforge.errors import ConfigError, DataError, RunDirError
from trainforge.metrics import tagging
from trainforge.tasks.spec import Analysis, AutoTrainShape, Column, Metric, Prepared, RunContext, TaskParams, TaskSpec
from trainforge.tasks.text_classification import effective_max_length

IGNORED = -100  # label of special tokens and of every sub-token after a word's first: left out of loss and metrics

# ---------------------------------------------------------------------------------------------------- params


class TokenClassificationParams(TaskParams):
    """Parameters of ``token_classification``."""

    max_length: int = Field(
        128,
        gt=0,
        description="Truncate sentences to this many sub-word tokens (words past it are neither trained nor scored).",
        json_schema_extra={"tier": "basic"},
    )
    label_names: list[str] | None = Field(
        None,
        description="Names of integer tag ids 0..K-1 (e.g. [O, B-PER, I-PER, B-LOC, I-LOC]), when the tags are ids.",
        json_schema_extra={"tier": "advanced"},
    )
    aggregation_strategy: Literal["first", "average", "max"] = Field(
        "first",
        description=(
            "predict: a word's tag is its first sub-token's (as trained), or the best tag of the average of its "
            "sub-tokens' probabilities, or the tag of its most confident sub-token."
        ),
        json_schema_extra={"tier": "advanced"},
    )


COLUMNS = (
    Column(
        "tokens",
        "the words of one sentence: a list of strings (JSONL/Parquet list, ['EU', 'rejects'] in a CSV cell, CoNLL)",
        kind="tokens",
    ),
    Column(
        "tags",
        "one tag per word (a list as long as tokens): names such as B-PER, I-PER, O, or ids with params.label_names",
        role="target",
        kind="tags",
    ),
)
PREDICT_INPUTS = (Column("tokens", "a text (split into words and punctuation) or a list of words", kind="tokens"),)

# ---------------------------------------------------------------------------------------------------- analyze


def analyze(ctx: RunContext, splits) -> Analysis:
    """Check every split's word and tag lists, read the tag names and derive the tag set (no model loads).

    The tag set is the union over all splits (a tag only in the eval or test split is named in a note: the model
    cannot learn it). Integer tags are ids named by ``params.label_names``. The splits are only read: their
    sentences as clean lists (``tokens``: strings, ``tags``: names) go to ``prepare`` in ``facts["encoded"]``.

    Raises:
        DataError: Every problem of every split in one message (cells that are not lists, empty lists, empty
            words, missing tags, tag lists of another length than their words); integer tags without
            ``params.label_names``; a single tag in training; prefixed and plain tags mixed.
    """
    label_names = ctx.config.params.label_names
    sentences = read_sentences(splits.present(), ctx.config.data.columns)
    ids = name_tags(sentences, label_names)
    train_origin, train = sentences[0][2], sentences[0][1]
    seen = {tag for tags in train["tags"] for tag in tags}
    if len(seen) < 2:
        raise DataError(
            f"{train_origin}: every word of the training split has the tag {''.join(seen)!r}: there is nothing to "
            "learn. Check data.columns.tags, or add sentences with entities."
        )
    every = {tag for _, frame, _ in sentences for tags in frame["tags"] for tag in tags}
    names = list(label_names) if ids and label_names else sorted(every, key=tag_order)
    notes = [
        f"{origin}: tags {sorted(only)} never occur in training ({train_origin}): the model cannot learn them, so "
        "their entities count as missed"
        for _, frame, origin in sentences[1:]
        if (only := {tag for tags in frame["tags"] for tag in tags} - seen)
    ]
    facts = {"scheme": tagging.tag_scheme(names), "encoded": {split: frame for split, frame, _ in sentences}}
    return Analysis("token_classification", tuple(names), facts=facts, notes=tuple(notes))


# ---------------------------------------------------------------------------------------------------- prepare


def load_tokenizer(ctx: RunContext):
    """The base model's fast tokenizer; byte-level BPE (GPT-2, RoBERTa) with a prefix space, as words need.

    Raises:
        ConfigError: The model has no fast tokenizer (``word_ids`` align sub-tokens with words only there), or the
            tokenizer does not fit the model (``models.config_checks.check_tokenizer_fits``).
    """
    from tokenizers import pre_tokenizers
    from transformers import AutoTokenizer

    from trainforge.models.config_checks import check_tokenizer_fits

    model = ctx.config.model
    options = {"revision": model.revision, "trust_remote_code": model.trust_remote_code}
    tokenizer = AutoTokenizer.from_pretrained(model.name, **options)
    if not tokenizer.is_fast:
        raise ConfigError(
            [("model.name", f"{model.name} has no fast tokenizer (tokenizer.json): token_classification needs one")]
        )
    pre_tokenizer = tokenizer.backend_tokenizer.pre_tokenizer
    if isinstance(pre_tokenizer, pre_tokenizers.ByteLevel) and not pre_tokenizer.add_prefix_space:
        # Byte-level BPE marks a word start with a space: words given one by one must get it, as in running text.
        tokenizer = AutoTokenizer.from_pretrained(model.name, add_prefix_space=True, **options)
        tokenizer.backend_tokenizer.pre_tokenizer.add_prefix_space = True  # generic tokenizers ignore the argument
    check_tokenizer_fits(tokenizer, ctx.config)  # at validate too: the check phase loads the processor
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def prepare(ctx: RunContext, splits) -> Prepared:
    """Tokenise each split's words (analysis' ``facts["encoded"]``) and tag each word's first sub-token; unpadded."""
    from datasets import Dataset
    from transformers import AutoConfig, DataCollatorForTokenClassification

    config, tokenizer, model = ctx.config, ctx.processor, ctx.config.model
    options = {"revision": model.revision, "trust_remote_code": model.trust_remote_code}
    max_length = effective_max_length(config, AutoConfig.from_pretrained(model.name, **options))
    index = {name: i for i, name in enumerate(ctx.labels.names)}

    def encode(split: str, origin: str | None) -> Dataset | None:
        frame = ctx.labels.facts["encoded"].get(split)
        if frame is None:
            return None
        words = [list(row) for row in frame["tokens"]]
        encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
        ids = [[index[tag] for tag in row] for row in frame["tags"]]
        labels = [first_subtoken_labels(encoded.word_ids(i), row) for i, row in enumerate(ids)]
        _note_truncation(ctx, [i for i, e in enumerate(encoded.encodings) if e.overflowing], frame, origin, max_length)
        dataset = Dataset.from_dict({**encoded, "labels": labels})
        # Evaluation sentences sorted by length: each padded batch holds sentences of similar length (same metrics).
        return dataset if split == "train" else dataset.select(np.argsort([len(x) for x in labels], kind="stable"))

    return Prepared(
        encode("train", splits.train_origin),
        encode("eval", splits.eval_origin),
        DataCollatorForTokenClassification(tokenizer),
        test=encode("test", splits.test_origin),
    )


def first_subtoken_labels(word_ids: list[int | None], tags: list[int]) -> list[int]:
    """The tag id of each word on its first sub-token; ``IGNORED`` on special tokens and later sub-tokens."""
    labels, previous = [], None
    for word in word_ids:
        labels.append(IGNORED if word is None or word == previous else tags[word])
        previous = word
    return labels


def _note_truncation(ctx: RunContext, cut: list[int], frame: pd.DataFrame, origin, max_length: int) -> None:
    """A note naming the sentences (positions ``cut``) that lost words to ``max_length``: not trained or scored."""
    if cut:
        note = (
            f"{origin}: {len(cut)} sentence(s) are longer than params.max_length ({max_length} tokens), first: "
            f"{rows(frame.index[cut])}; their last words are neither trained nor scored. Raise params.max_length "
            "to keep them."
        )
        print(f"note: {note}", file=sys.stderr)
        if ctx.events is not None:
            ctx.events.write("note", message=note)


# ---------------------------------------------------------------------------------------------------- model


def build_model(ctx: RunContext):
    """A token-classification head on the base encoder, with the tag names in its config."""
    from transformers import AutoModelForTokenClassification

    config, names = ctx.config, ctx.labels.names
    return AutoModelForTokenClassification.from_pretrained(
        config.model.name,
        revision=config.model.revision,
        trust_remote_code=config.model.trust_remote_code,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={name: i for i, name in enumerate(names)},
        ignore_mismatched_sizes=True,
    )


# ---------------------------------------------------------------------------------------------------- metrics


def compute_metrics(ctx: RunContext):
    """EvalPrediction -> seqeval scores (``tagging_metrics``) over the words' first sub-tokens."""
    names, scheme = ctx.labels.names, ctx.labels.facts["scheme"]

    def compute(prediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        predicted = np.asarray(logits).argmax(axis=-1)
        truth, predicted = tagging.labelled_tags(prediction.label_ids, predicted, names, IGNORED)
        return tagging.tagging_metrics(truth, predicted, scheme)

    return compute


def best_metric(ctx: RunContext) -> Metric:
    """Entity F1 (seqeval's default, conlleval-compatible mode)."""
    return Metric("f1", greater_is_better=True)


def finish(ctx: RunContext, trainer, prepared: Prepared) -> list[str]:
    """A note when the kept model finds no entity of the evaluation split (F1 0), read from the logged evaluation."""
    step = trainer.state.best_global_step or trainer.state.global_step
    logged = [e["eval_f1"] for e in trainer.state.log_history if e.get("step") == step and "eval_f1" in e]
    if prepared.eval is None or not logged or logged[-1] > 0:
        return []
    return [
        "the model finds none of the evaluation split's entities (F1 0): train longer, with a higher "
        "training.learning_rate, or on more data"
    ]


# ---------------------------------------------------------------------------------------------------- predict


class TokenClassificationPredictor:
    """A finished run loaded once: tokenizer, model, tag scheme. Thread-safe (one batch at a time)."""

    def __init__(self, run_dir: Path, config) -> None:
        """Load the run's tokenizer and model (CPU, eval mode).

        Raises:
            OSError: The run directory holds no readable model or tokenizer.
        """
        import threading

        from transformers import AutoModelForTokenClassification, AutoTokenizer

        self.run_dir, self.config = Path(run_dir), config
        self.tokenizer = AutoTokenizer.from_pretrained(self.run_dir)
        self.model = AutoModelForTokenClassification.from_pretrained(self.run_dir).eval()
        self.max_length = effective_max_length(config, self.model.config)
        self.names = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.scheme = tagging.tag_scheme(self.names)
        self._lock = threading.Lock()

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add ``words``, ``predicted_tags``, ``entities`` and ``highlighted`` columns to ``frame``.

        Args:
            frame: n rows holding the run's tokens column: a text (split into words and punctuation) or a list of
                words (then the text is the words joined by single spaces).

        Returns:
            A copy of ``frame`` with, per row, the words, their predicted tags, the entities (dicts with ``text``,
            ``type``, ``start`` and ``end`` character offsets into the text, end exclusive, and ``score``: the mean
            probability of the entity's word tags) and the text with each entity marked ``[text](TYPE)``.

        Raises:
            DataError: The tokens column is missing, or a row holds no words.
            RunDirError: The model outputs NaN/inf (a run whose training diverged).
        """
        inputs = check_inputs(frame, self.config)
        tags, scores = self._word_tags([words for words, _, _ in inputs])
        out = frame.copy()
        out["words"] = [words for words, _, _ in inputs]
        out["predicted_tags"] = tags
        found = [
            tagging.entity_spans(text, spans, row_tags, row_scores, self.scheme)
            for (_, spans, text), row_tags, row_scores in zip(inputs, tags, scores, strict=True)
        ]
        out["entities"] = found
        out["highlighted"] = [tagging.highlight(text, row) for (_, _, text), row in zip(inputs, found, strict=True)]
        return out

    def _word_tags(self, sentences: list[list[str]]) -> tuple[list[list[str]], list[list[float]]]:
        """Each word's tag and its probability, from its sub-tokens (``params.aggregation_strategy``)."""
        import torch

        word_probs: list[list[list[np.ndarray]]] = [[[] for _ in words] for words in sentences]
        with self._lock, torch.inference_mode():
            for start in range(0, len(sentences), 32):
                batch = self.tokenizer(
                    sentences[start : start + 32],
                    is_split_into_words=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_overflowing_tokens=True,  # a long sentence runs as several windows: every word is tagged
                    padding=True,
                    return_tensors="pt",
                )
                owners = batch.pop("overflow_to_sample_mapping").tolist()
                logits = self.model(**batch).logits.float().numpy()
                if not np.isfinite(logits).all():
                    raise RunDirError(
                        f"the model in {self.run_dir} outputs NaN/inf: its weights are broken (a training run that "
                        "diverged); retrain it with a lower training.learning_rate"
                    )
                probabilities = np.exp(logits - logits.max(-1, keepdims=True))
                probabilities /= probabilities.sum(-1, keepdims=True)
                for window, owner in enumerate(owners):
                    for position, word in enumerate(batch.word_ids(window)):
                        if word is not None:
                            word_probs[start + owner][word].append(probabilities[window, position])
        tags, scores = [], []
        for sentence in word_probs:
            chosen = [
                tagging.word_probabilities(pieces, self.config.params.aggregation_strategy) for pieces in sentence
            ]
            tags.append([self.names[int(p.argmax())] if p is not None else tagging.OUTSIDE for p in chosen])
            scores.append([float(p.max()) if p is not None else 0.0 for p in chosen])
        return tags, scores


def check_inputs(frame: pd.DataFrame, config) -> list[tuple[list[str], list[tuple[int, int]], str]]:
    """Each row's words, their character spans in its text, and the text (a list of words is joined by spaces).

    Raises:
        DataError: The run's tokens column is missing, or rows hold no words (naming them), before any model loads.
    """
    column = config.data.columns.get("tokens", "tokens")
    if column not in frame:
        found = ", ".join(map(str, frame.columns))
        raise DataError(f"the input has no column {column!r} (the run's tokens column); found: {found}")
    out = [words_and_spans(value) for value in frame[column]]
    bad = [i for i, row in enumerate(out) if row is None]
    if bad:
        raise DataError(
            f"the input's {column} column holds no words in {rows(bad)} (row {bad[0] + 1} holds "
            f"{shown(frame[column].iloc[bad[0]])}): give a text or a list of words in every row"
        )
    return [row for row in out if row is not None]


def predict(run_dir: Path, frame: pd.DataFrame, config) -> pd.DataFrame:
    """One prediction: check the inputs, load the run (``TokenClassificationPredictor``) and predict ``frame``."""
    check_inputs(frame, config)
    return TokenClassificationPredictor(run_dir, config).predict(frame)


# ---------------------------------------------------------------------------------------------------- spec

SPEC = TaskSpec(
    name="token_classification",
    summary="Tag every word of a sentence (named entities, or any per-word tags) by fine-tuning an encoder.",
    params=TokenClassificationParams,
    columns=COLUMNS,
    analyze=analyze,
    load_processor=load_tokenizer,
    prepare=prepare,
    build_model=build_model,
    compute_metrics=compute_metrics,
    best_metric=best_metric,
    predict=predict,
    load_predictor=TokenClassificationPredictor,
    finish=finish,
    pipeline_tag="token-classification",
    lora="TOKEN_CLS",  # the new tagging head trains in full beside the adapter (PEFT's modules_to_save)
    reuse_logged_eval=True,
    predict_inputs=PREDICT_INPUTS,
    extras=(("seqeval", "nlp"),),
    example={
        "model": {"name": "sentence-transformers/all-MiniLM-L6-v2"},
        "data": {"source": "data/train.conll", "columns": {"tokens": "tokens", "tags": "tags"}},
    },
    autotrain=AutoTrainShape(
        aliases=("token_classification", "token-classification"),
        columns={"tokens_column": "tokens", "tags_column": "tags"},
        params={"max_seq_length": "max_length"},
    ),
    length_grouping=True,
)
