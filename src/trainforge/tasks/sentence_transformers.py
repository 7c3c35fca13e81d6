"""Sentence-transformers: embedding models fine-tuned on sentence pairs, scored or labelled pairs, triplets or QA.

Example (``examples/sentence_transformers_pair_score/minilm_similarity.yaml``)::

    task: sentence_transformers_pair_score
    model: {name: sentence-transformers/all-MiniLM-L6-v2}
    data: {source: data/pairs.csv, columns: {sentence1: s1, sentence2: s2, score: similarity}}

Five tasks share one spec (``_BASE``) and differ by their columns, loss and evaluator (``VARIANTS``)::

    suffix      columns                            loss (sentence-transformers)   evaluator: best metric
    pair        anchor, positive                   MultipleNegativesRankingLoss   retrieval: cosine_ndcg@10
    pair_class  sentence1, sentence2, label        SoftmaxLoss                    label accuracy: accuracy
    pair_score  sentence1, sentence2, score (0-1)  CoSENTLoss                     similarity: spearman_cosine
    triplet     anchor, positive, negative         MultipleNegativesRankingLoss   triplet: cosine_accuracy
    qa          query, answer                      MultipleNegativesRankingLoss   retrieval: cosine_ndcg@10

The run directory is a sentence-transformers model folder (``SentenceTransformer(run_dir)`` loads it), with the
library's own model card kept under our front matter and results.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from trainforge.data.labels import (
    Problems,
    continuous_scores,
    normalise_single,
    of_the_data,
    read_label_names,
    require_no_missing,
    require_text,
    rows,
)
from trainforge.errors import ConfigError, DataError, RunDirError
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


class SentenceTransformersParams(TaskParams):
    """Parameters of every sentence-transformers task."""

    max_length: int | None = Field(
        None,
        gt=0,
        description="Truncate texts to this many tokens (default: the model's own max_seq_length).",
        json_schema_extra={"tier": "basic"},
    )


class InBatchParams(SentenceTransformersParams):
    """Parameters of the tasks trained with in-batch negatives (pair, triplet, qa)."""

    cached_mini_batch_size: int | None = Field(
        None,
        gt=0,
        description=(
            "Use the cached loss (CachedMultipleNegativesRankingLoss, GradCache): the whole "
            "per_device_train_batch_size serves as in-batch negatives while only this many rows are in memory at "
            "once. For batches larger than memory allows (sentence-transformers: about 20% slower). Unset: the plain "
            "loss."
        ),
        json_schema_extra={"tier": "advanced"},
    )


class PairScoreParams(SentenceTransformersParams):
    """Parameters of ``sentence_transformers_pair_score``."""

    max_score: float | None = Field(
        None,
        gt=0,
        description=(
            "The scores' scale: scores are divided by it to lie in 0-1. Default: 1 when every score is within 0-1, "
            "else 5 (the STS convention, 0-5)."
        ),
        json_schema_extra={"tier": "advanced"},
    )


# ---------------------------------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """What one of the five tasks trains on and how: text columns in the loss's order, target, loss, evaluator."""

    texts: tuple[str, ...]
    target: str | None  # "score" (0-1 floats), "label" (class names) or None
    loss: str  # mnrl (in-batch negatives), softmax, cosent
    evaluator: str  # retrieval, label_accuracy, similarity, triplet
    metric: str  # best-checkpoint metric, as the evaluator names it (without the split prefix)


VARIANTS = {
    "sentence_transformers_pair": Variant(("anchor", "positive"), None, "mnrl", "retrieval", "cosine_ndcg@10"),
    "sentence_transformers_pair_class": Variant(
        ("sentence1", "sentence2"), "label", "softmax", "label_accuracy", "accuracy"
    ),
    "sentence_transformers_pair_score": Variant(
        ("sentence1", "sentence2"), "score", "cosent", "similarity", "spearman_cosine"
    ),
    "sentence_transformers_triplet": Variant(
        ("anchor", "positive", "negative"), None, "mnrl", "triplet", "cosine_accuracy"
    ),
    "sentence_transformers_qa": Variant(("query", "answer"), None, "mnrl", "retrieval", "cosine_ndcg@10"),
}


def variant_of(task: str) -> Variant:
    """The variant of a registered sentence-transformers task name."""
    return VARIANTS[task]


def _user(config, column: str) -> str:
    return config.data.columns.get(column, column)


# ---------------------------------------------------------------------------------------------------- analyze


def analyze(ctx: RunContext, splits) -> Analysis:
    """Check every split's texts and targets, before any model loads; normalise scores and read class names.

    Raises:
        DataError: Every problem of the rows (empty or non-text sentences, missing/non-numeric/out-of-range scores,
            missing labels, a triplet whose negative is its positive) in one message; then a target unfit to train
            on (one score for every row, a single class, eval/test labels never seen in training).
    """
    config, variant = ctx.config, variant_of(ctx.config.task)
    present = splits.present()
    problems = Problems()
    for _, frame, origin in present:
        for column in variant.texts:
            problems.check(require_text, frame, column, origin, _user(config, column))
        if variant.target and problems.check(
            require_no_missing, frame, variant.target, origin, _user(config, variant.target)
        ):
            if variant.target == "score":
                problems.check(_read_scores, frame, origin, _user(config, "score"))
        if "negative" in variant.texts:
            problems.check(_distinct_negatives, frame, origin, config)
    problems.raise_if_any()
    notes = _pooling_note(config)
    if variant.target == "score":
        return _scale_scores(ctx, splits, notes)
    if variant.target == "label":
        return _read_labels(ctx, splits, notes)
    return Analysis("sentence_embedding", facts={"data_format": " / ".join(variant.texts)}, notes=tuple(notes))


def _numbers(scores: pd.Series) -> pd.Series:
    return pd.to_numeric(scores, errors="coerce").astype(float)


def _read_scores(frame: pd.DataFrame, origin: str, file_column: str) -> None:
    """Refuse non-numbers, infinities and negative scores (naming the rows)."""
    numbers = _numbers(frame["score"])
    bad = numbers.isna() | ~np.isfinite(numbers) | (numbers < 0)
    if bad.any():
        cells = [(i, frame["score"][i]) for i in list(frame.index[bad])[:5]]
        shown = ", ".join(f"row {i + 1}: {v.item() if isinstance(v, np.generic) else v!r}" for i, v in cells)
        raise DataError(
            f"{origin}: the score column must hold a similarity from 0 to 1 (or 0 to 5, as STS) in every row; "
            f"{int(bad.sum())} row(s) do not ({shown}){of_the_data('score', file_column)}. Fix or drop those rows."
        )


def _distinct_negatives(frame: pd.DataFrame, origin: str, config) -> None:
    """A triplet whose negative is its positive asks the model to rank one text above itself."""
    same = frame["positive"].str.strip() == frame["negative"].str.strip()
    if same.any():
        raise DataError(
            f"{origin}: the negative is the same text as the positive in {int(same.sum())} row(s), first: "
            f"{rows(frame.index[same])} (columns {_user(config, 'positive')!r} and {_user(config, 'negative')!r}). "
            "A negative must be a text that does not match the anchor: fix or drop those rows."
        )


def _pooling_note(config) -> list[str]:
    folder = Path(config.model.name).expanduser()
    if folder.is_dir() and not (folder / "modules.json").is_file():
        return [
            f"{config.model.name} is a plain transformers model (no modules.json): sentence-transformers adds mean "
            "pooling over its token embeddings"
        ]
    return []


def _scale_scores(ctx: RunContext, splits, notes: list[str]) -> Analysis:
    """The scores' scale (``params.max_score``, else 1 or 5 as the data says), which ``prepare`` divides them by."""
    config = ctx.config
    scores = [(_numbers(frame["score"]), frame, origin) for _, frame, origin in splits.present()]
    largest = max(float(numbers.max()) for numbers, _, _ in scores)
    scale = config.params.max_score or (1.0 if largest <= 1 else 5.0)
    for numbers, frame, origin in scores:
        above = numbers > scale
        if above.any():
            raise DataError(
                f"{origin}: scores above {scale:g} in {int(above.sum())} row(s), first: {rows(frame.index[above])} "
                f"(largest {largest:g}){of_the_data('score', _user(config, 'score'))}. Scores are similarities from "
                "0 to 1 or 0 to 5; for another scale set params.max_score to its maximum."
            )
    if scores[0][0].nunique() < 2:
        raise DataError(
            f"{splits.train_origin}: every training row has the score {scores[0][0].iloc[0]:g}: "
            "there is no ranking to learn. Use pairs with different similarity scores."
        )
    if scale != 1:
        notes.append(f"scores are read on a 0-{scale:g} scale (largest {largest:g}): divided by {scale:g} to 0-1")
    facts = {"data_format": f"sentence1 / sentence2 / score (0-{scale:g})", "max_score": scale}
    return Analysis("sentence_similarity", facts=facts, notes=tuple(notes))


def _read_labels(ctx: RunContext, splits, notes: list[str]) -> Analysis:
    """Class names of the pair labels (one rule with text classification); every eval/test label seen in training.

    ``facts["classes"]`` maps each label as written to its class name, for ``prepare``.
    """
    what = f"the label column ({_user(ctx.config, 'label')!r})"
    written = [(normalise_single(frame["label"], origin), origin) for _, frame, origin in splits.present()]
    if scores := continuous_scores(written[0][0], what):
        raise DataError(
            f"{splits.train_origin}: {scores}. For similarity scores use task sentence_transformers_pair_score with "
            f"data.columns.score: {_user(ctx.config, 'label')}."
        )
    reading = read_label_names([label for labels, _ in written for label in labels], what)
    classes = [(labels.map(reading.classes), origin) for labels, origin in written]
    names = reading.ordered(set(classes[0][0]))
    if len(names) < 2:
        raise DataError(
            f"{splits.train_origin}: {what} holds a single class ({names[0]}); the classifier needs at least two "
            "(e.g. entailment, neutral, contradiction). For pairs without labels use sentence_transformers_pair."
        )
    for labels, origin in classes[1:]:
        unseen = ~labels.isin(names)
        if unseen.any():
            raise DataError(
                f"{origin}: labels {sorted(set(labels[unseen]))} never occur in training ({splits.train_origin}); "
                f"first rows: {rows(labels.index[unseen])}. Add training pairs with those labels or remove those rows."
            )
    facts = {"classes": reading.classes}
    return Analysis("single_label_classification", tuple(names), facts, notes=tuple(notes + list(reading.notes)))


def check_config(config) -> list[tuple[str, str]]:
    """In-batch negatives need two rows a batch; a cached loss needs a mini-batch smaller than the batch."""
    batch, problems = config.training.per_device_train_batch_size, []
    variant = variant_of(config.task)
    if variant.loss == "mnrl" and len(variant.texts) == 2 and batch < 2:
        problems.append(
            (
                "training.per_device_train_batch_size",
                f"{batch}: {config.task} learns from in-batch negatives (the other rows' {variant.texts[1]}s), and "
                "a batch of one has none, so the loss is 0 and nothing is learned; use 2 or more (16-128 typical)",
            )
        )
    mini = getattr(config.params, "cached_mini_batch_size", None)
    if mini is not None and mini >= batch:
        problems.append(
            (
                "params.cached_mini_batch_size",
                f"{mini} is not smaller than training.per_device_train_batch_size ({batch}): the cached loss only "
                "helps with batches larger than the mini-batch; unset it, or raise the batch size",
            )
        )
    return problems


# ---------------------------------------------------------------------------------------------------- prepare


def load_processor(ctx: RunContext) -> None:
    """None: the SentenceTransformer carries its tokenizer and saves it with the model.

    The base model's tokenizer is loaded here only to check that it fits the model (the check phase, validate
    included, calls this).

    Raises:
        ConfigError: The tokenizer does not fit the model (``models.config_checks.check_tokenizer_fits``).
    """
    from transformers import AutoTokenizer

    from trainforge.models.config_checks import check_tokenizer_fits

    config = ctx.config
    tokenizer = AutoTokenizer.from_pretrained(
        config.model.name, revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
    )
    check_tokenizer_fits(tokenizer, config)
    return None


def prepare(ctx: RunContext, splits) -> Prepared:
    """Datasets with the variant's text columns in the loss's order, then ``score`` or ``label`` (class ids).

    Scores are divided by the scale analysis chose and labels mapped by its class names (``Analysis.facts``; analysis
    leaves the splits as read). Tokenisation happens per batch in sentence-transformers' collator.
    """
    from datasets import Dataset

    variant, analysis = variant_of(ctx.config.task), ctx.labels
    index = {name: i for i, name in enumerate(analysis.names)}

    def encode(frame: pd.DataFrame | None):
        if frame is None:
            return None
        columns: dict[str, list] = {column: frame[column].tolist() for column in variant.texts}
        if variant.target == "score":
            columns["score"] = (_numbers(frame["score"]) / analysis.facts["max_score"]).tolist()
        elif variant.target == "label":
            classes = normalise_single(frame["label"], "").map(analysis.facts["classes"])
            columns["label"] = [index[name] for name in classes]
        return Dataset.from_dict(columns)

    return Prepared(encode(splits.train), encode(splits.eval), test=encode(splits.test))


# ---------------------------------------------------------------------------------------------------- model


def build_model(ctx: RunContext):
    """The base model as a SentenceTransformer (a plain encoder gets mean pooling), its length cut if asked."""
    from sentence_transformers import SentenceTransformer, SentenceTransformerModelCardData

    config = ctx.config
    card = SentenceTransformerModelCardData(
        model_id=config.hub.repo_id if config.hub.push else None,
        local_files_only=Path(config.model.name).expanduser().exists(),  # a local base: no Hub look-ups for the card
    )
    model = SentenceTransformer(
        config.model.name,
        revision=config.model.revision,
        trust_remote_code=config.model.trust_remote_code,
        model_card_data=card,
    )
    if config.params.max_length:
        model.max_seq_length = config.params.max_length  # validate refused lengths beyond the model's positions
    return model


def build_loss(ctx: RunContext, model):
    """The variant's loss (see the module table); the cached MNRL when ``params.cached_mini_batch_size`` is set."""
    from sentence_transformers.sentence_transformer import losses

    variant, params = variant_of(ctx.config.task), ctx.config.params
    if variant.loss == "cosent":
        return losses.CoSENTLoss(model)
    if variant.loss == "softmax":
        return losses.SoftmaxLoss(model, model.get_embedding_dimension(), ctx.labels.num_labels)
    if params.cached_mini_batch_size:
        return losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=params.cached_mini_batch_size)
    return losses.MultipleNegativesRankingLoss(model)


# ---------------------------------------------------------------------------------------------------- metrics


def build_evaluator(variant: Variant, loss, dataset, name: str, batch_size: int):
    """Sentence-transformers' evaluator of one split; its metrics are named ``<name>_<metric>`` (cosine scores).

    Retrieval: each distinct first text is a query whose relevant documents are its second texts, among every
    distinct second text of the split (Information Retrieval Evaluator: accuracy/precision/recall@k, MRR, NDCG, MAP).
    """
    from sentence_transformers.sentence_transformer import evaluation

    if variant.evaluator == "similarity":
        return evaluation.EmbeddingSimilarityEvaluator(
            dataset["sentence1"], dataset["sentence2"], dataset["score"], batch_size,
            similarity_fn_names=["cosine"], name=name, write_csv=False,
        )  # fmt: skip
    if variant.evaluator == "triplet":
        return evaluation.TripletEvaluator(
            dataset["anchor"], dataset["positive"], dataset["negative"], similarity_fn_names=["cosine"],
            name=name, batch_size=batch_size, write_csv=False,
        )  # fmt: skip
    if variant.evaluator == "label_accuracy":
        from sentence_transformers import InputExample
        from torch.utils.data import DataLoader

        examples = [
            InputExample(texts=[p, h], label=label)
            for p, h, label in zip(dataset["sentence1"], dataset["sentence2"], dataset["label"], strict=True)
        ]
        loader: DataLoader[Any] = DataLoader(examples, batch_size=batch_size)  # type: ignore[arg-type]
        return evaluation.LabelAccuracyEvaluator(loader, name=name, softmax_model=loss, write_csv=False)
    from sentence_transformers.util import cos_sim

    first, second = variant.texts
    corpus = {text: f"d{i}" for i, text in enumerate(dict.fromkeys(dataset[second]))}
    relevant: dict[str, set[str]] = {}
    for query, document in zip(dataset[first], dataset[second], strict=True):
        relevant.setdefault(query, set()).add(corpus[document])
    queries: dict[str, Any] = {f"q{i}": query for i, query in enumerate(relevant)}
    documents: dict[str, Any] = {doc: text for text, doc in corpus.items()}
    return evaluation.InformationRetrievalEvaluator(
        queries, documents,
        {qid: relevant[query] for qid, query in queries.items()},
        accuracy_at_k=[1, 5, 10], precision_recall_at_k=[1, 10], mrr_at_k=[10], ndcg_at_k=[10], map_at_k=[100],
        batch_size=batch_size, name=name, write_csv=False, score_functions={"cosine": cos_sim},
    )  # fmt: skip


def compute_metrics(ctx: RunContext) -> None:
    """None: metrics come from the evaluators the trainer runs (``build_evaluator``)."""
    return None


def best_metric(ctx: RunContext) -> Metric:
    """NDCG@10 (pair, qa), label accuracy (pair_class), Spearman of cosine (pair_score), triplet accuracy."""
    return Metric(variant_of(ctx.config.task).metric, greater_is_better=True)


@functools.cache
def _trainer_class():
    """SentenceTransformerTrainer whose ``evaluate`` runs an evaluator of the split it is given, and no loss pass.

    Sentence-transformers runs the one evaluator given at construction (built on the eval split) whatever dataset
    ``evaluate`` receives, so the driver's ``evaluate(prepared.test, metric_key_prefix="test")`` would report the
    eval split's scores as test scores. The trainer holds no eval dataset: the evaluators' metrics are the results,
    and a loss pass over the same rows would double the evaluation time (an in-batch loss even depends on how the
    rows are batched).
    """
    from sentence_transformers import SentenceTransformerTrainer

    class SplitEvaluatingTrainer(SentenceTransformerTrainer):
        make_evaluator = None  # (dataset, metric prefix) -> evaluator

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):  # noqa: D102
            if eval_dataset is None or self.make_evaluator is None:
                return super().evaluate(None, ignore_keys, metric_key_prefix)
            kept, self.evaluator = self.evaluator, self.make_evaluator(eval_dataset, metric_key_prefix)
            try:
                return super().evaluate(None, ignore_keys, metric_key_prefix)
            finally:
                self.evaluator = kept

    return SplitEvaluatingTrainer


def make_trainer(inputs: TrainerInputs):
    """SentenceTransformerTrainer with the variant's loss and evaluator; in-batch losses never see a duplicate.

    A text repeated in a batch would be its own row's negative; ``no_duplicates`` batching leaves it out. The eval
    split reaches the trainer only as its evaluator (see ``_trainer_class``).
    """
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.training_args import BatchSamplers

    ctx, model, prepared = inputs.ctx, inputs.model, inputs.prepared
    variant = variant_of(ctx.config.task)
    sampler = BatchSamplers.NO_DUPLICATES if variant.loss == "mnrl" else BatchSamplers.BATCH_SAMPLER
    args = SentenceTransformerTrainingArguments(**inputs.args, batch_sampler=sampler)
    loss = build_loss(ctx, model)
    make_evaluator = functools.partial(build_evaluator, variant, loss, batch_size=args.per_device_eval_batch_size)
    trainer = _trainer_class()(
        model=model,
        args=args,
        train_dataset=prepared.train,
        loss=loss,
        evaluator=None if prepared.eval is None else make_evaluator(prepared.eval, "eval"),
        callbacks=inputs.callbacks,
    )
    trainer.make_evaluator = make_evaluator
    return trainer


# ---------------------------------------------------------------------------------------------------- outputs


def finish(ctx: RunContext, trainer, prepared: Prepared) -> list[str]:
    """Show the kept checkpoint's evaluation in sentence-transformers' card, which shows each evaluator's latest.

    With the best checkpoint restored, the latest evaluation is the last step's, not the saved model's; the logged
    evaluation of the kept step replaces it (no second evaluation pass).
    """
    results, evaluator, state = trainer.model.model_card_data.eval_results_dict, trainer.evaluator, trainer.state
    shown = results.get(evaluator) if evaluator is not None else None
    if not shown or not state.best_global_step:
        return []
    for entry in reversed(state.log_history):
        if entry.get("step") == state.best_global_step and shown.keys() <= entry.keys():
            results[evaluator] = {key: entry[key] for key in shown}
            break
    return []


def model_card(run_dir: Path, config) -> str:
    """Sentence-transformers' own model card (written by the model's save), kept whole under ours."""
    card = run_dir / "README.md"
    if card.is_file():
        return card.read_text(encoding="utf-8")
    return (
        "## Use it\n\n```python\nfrom sentence_transformers import SentenceTransformer\n\n"
        f'model = SentenceTransformer("{run_dir}")\nprint(model.encode(["an example sentence"]))\n```\n'
    )


class SentenceTransformersPredictor:
    """A finished run loaded once: embeds the first input column, or scores pairs when the second is there too.

    An ``EmbeddingPredictor`` (``embed``): ``trainforge serve`` offers the run at ``/v1/embeddings``.

    Thread-safe: calls share one fast tokenizer, whose truncation state is not, so batches run one call at a time.
    """

    def __init__(self, run_dir: Path, config) -> None:
        """Load the run's SentenceTransformer.

        Raises:
            OSError: The run directory holds no readable model.
        """
        from sentence_transformers import SentenceTransformer

        self.run_dir, self.config = Path(run_dir), config
        first, second = variant_of(config.task).texts[:2]
        self.columns = (_user(config, first), _user(config, second))
        self.model = SentenceTransformer(str(self.run_dir))
        self.tokenizer = self.model.tokenizer  # serve counts the tokens of what it embeds
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text (n texts -> n lists of d floats), as ``SentenceTransformer.encode`` returns them.

        Raises:
            DataError: A text is empty or not a string.
            RunDirError: The model outputs NaN/inf.
        """
        require_text(pd.DataFrame({"text": list(texts)}), "text", "the input")
        return [row.tolist() for row in self._embed(list(texts))]

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with ``similarity`` when both text columns are present, else ``embedding`` (a list of floats).

        The similarity is the model's own function (``similarity_fn_name`` in its config: cosine, -1..1, unless the
        base model declared another), as ``SentenceTransformer.similarity_pairwise`` computes it.

        Raises:
            DataError: The first text column is missing, or a text column holds empty or non-text values.
            RunDirError: The model outputs NaN/inf (a run whose training diverged).
        """
        first, second = self.columns
        if first not in frame:
            found = ", ".join(map(str, frame.columns))
            raise DataError(
                f"the input has no column {first!r} (texts to embed; add {second!r} to score pairs); found: {found}"
            )
        checked = frame if pd.api.types.is_integer_dtype(frame.index) else frame.reset_index(drop=True)
        pair = second in frame
        for column in (first, second) if pair else (first,):
            require_text(checked, column, "the input")
        out = frame.copy()
        embedded = [self._embed(frame[column].tolist()) for column in ((first, second) if pair else (first,))]
        if pair:
            out["similarity"] = self.model.similarity_pairwise(*embedded).numpy()
        else:
            out["embedding"] = [row.tolist() for row in embedded[0]]
        return out

    def _embed(self, texts: list[str]):
        import torch

        with self._lock, torch.inference_mode():
            vectors = self.model.encode(texts, batch_size=64, convert_to_tensor=True, show_progress_bar=False)
        if len(texts) and not torch.isfinite(vectors).all():
            raise RunDirError(
                f"the model in {self.run_dir} outputs NaN/inf embeddings: its weights are broken (a training run that "
                "diverged); retrain it with a lower training.learning_rate"
            )
        return vectors.cpu()


def predict(run_dir: Path, frame: pd.DataFrame, config) -> pd.DataFrame:
    """One prediction: load the run (``SentenceTransformersPredictor``) and predict ``frame``."""
    return SentenceTransformersPredictor(run_dir, config).predict(frame)


# ---------------------------------------------------------------------------------------------------- specs


def _autotrain(suffix: str, columns: dict[str, str]) -> AutoTrainShape:
    """The reference's ``st:<suffix>`` / ``sentence-transformers:<suffix>`` configs (its params.trainer agrees)."""

    def value(name: str, given):
        if name == "trainer":
            if given != suffix:
                raise ConfigError([("params.trainer", f"{given!r} contradicts task st:{suffix}; remove it")])
            return AUTOTRAIN_DROP
        return given

    return AutoTrainShape(
        aliases=(f"st:{suffix}", f"sentence-transformers:{suffix}"),
        columns=columns,
        params={"max_seq_length": "max_length", "trainer": "trainer"},
        values=value,
    )


_MINILM = {"name": "sentence-transformers/all-MiniLM-L6-v2"}

_BASE = TaskSpec(
    name="sentence_transformers",
    summary="Fine-tune a sentence-transformers embedding model.",
    params=SentenceTransformersParams,
    columns=(),
    analyze=analyze,
    load_processor=load_processor,
    prepare=prepare,
    build_model=build_model,
    compute_metrics=compute_metrics,
    best_metric=best_metric,
    predict=predict,
    load_predictor=SentenceTransformersPredictor,
    make_trainer=make_trainer,
    finish=finish,
    pipeline_tag="sentence-similarity",
    library_name="sentence-transformers",
    model_card=model_card,
    check_config=check_config,
    reuse_logged_eval=True,  # the logged evaluation holds the evaluator's metrics: complete
    training_defaults={"learning_rate": 2e-5, "per_device_train_batch_size": 16},
    extras=(("sentence_transformers", "nlp"),),
)


def _variant(name: str, summary: str, columns: tuple[Column, ...], autotrain: dict[str, str], **fields) -> TaskSpec:
    """A task of the family: ``_BASE`` with its name, columns, example and reference shape."""
    texts = [c.name for c in columns]
    example = {"model": _MINILM, "data": {"source": "data/train.csv", "columns": {c: c for c in texts}}}
    first, second = columns[0], columns[1]
    return dataclasses.replace(
        _BASE,
        name=f"sentence_transformers_{name}",
        summary=summary,
        columns=columns,
        example=example,
        autotrain=_autotrain(name, autotrain),
        predict_inputs=(first, dataclasses.replace(second, required=False)),
        **fields,
    )


PAIR_SPEC = _variant(
    "pair",
    "Train an embedding model on (anchor, positive) pairs; the other rows' positives are the negatives.",
    (Column("anchor", "a text (a question, a sentence)"), Column("positive", "a text that matches its anchor")),
    {"sentence1_column": "anchor", "sentence2_column": "positive"},
    params=InBatchParams,
)
PAIR_CLASS_SPEC = _variant(
    "pair_class",
    "Train an embedding model on labelled sentence pairs (e.g. NLI: entailment, neutral, contradiction).",
    (
        Column("sentence1", "the first sentence (e.g. a premise)"),
        Column("sentence2", "the second sentence (e.g. a hypothesis)"),
        Column("label", "the pair's class: a name or an integer", role="target", kind="label"),
    ),
    {"sentence1_column": "sentence1", "sentence2_column": "sentence2", "target_column": "label"},
    stratify_column="label",
)
PAIR_SCORE_SPEC = _variant(
    "pair_score",
    "Train an embedding model on sentence pairs scored for similarity (0-1, or 0-5 as STS).",
    (
        Column("sentence1", "the first sentence"),
        Column("sentence2", "the second sentence"),
        Column("score", "the pair's similarity, 0-1 or 0-5", role="target", kind="number"),
    ),
    {"sentence1_column": "sentence1", "sentence2_column": "sentence2", "target_column": "score"},
    params=PairScoreParams,
)
TRIPLET_SPEC = _variant(
    "triplet",
    "Train an embedding model on (anchor, positive, negative) triplets, plus in-batch negatives.",
    (
        Column("anchor", "a text (a question, a sentence)"),
        Column("positive", "a text that matches its anchor"),
        Column("negative", "a text that does not match its anchor (a hard negative)"),
    ),
    {"sentence1_column": "anchor", "sentence2_column": "positive", "sentence3_column": "negative"},
    params=InBatchParams,
)
QA_SPEC = _variant(
    "qa",
    "Train a retrieval embedding model on (question, answer) pairs; reports retrieval metrics (NDCG, MRR).",
    (Column("query", "the question or search query"), Column("answer", "the passage that answers it")),
    {"sentence1_column": "query", "sentence2_column": "answer"},
    params=InBatchParams,
)
