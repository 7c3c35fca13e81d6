"""Sequence lengths of the run's own data: the task's ``prepare`` on a sample, token lengths read from its output.

Batches are padded to their longest sequence (every task's collator pads dynamically), so the step that peaks is the
one holding the data's longest sequence, capped by the task's limit (``params.max_length``/``block_size``, a
sentence-transformer's ``max_seq_length``): memory is estimated at that length, and the typical padded length (the
mean over random batches of the longest in each) describes an ordinary step.

What a step feeds the model is read from the prepared dataset's columns, not from the task's name:
``chosen_ids``/``rejected_ids`` (one batch of both: 2 rows per example), ``prompt``/``chosen``/``rejected`` texts
(TRL tokenizes prompt + completion; 2 rows), ``input_ids`` (with ``labels`` lists on an encoder-decoder: the decoder's
length), or the text columns a sentence-transformer encodes one pass each.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field
from typing import Any

from trainforge.estimate.memory import Pass

SAMPLE_ROWS = 2000  # rows tokenized to read the lengths (all rows of smaller data)
_PREFERENCE = ("prompt", "chosen", "rejected")


@dataclass(frozen=True)
class Stream:
    """One forward pass per micro-batch: its name, rows per example, per-example lengths per stack side."""

    name: str
    rows: int
    lengths: dict[str, list[int]]


@dataclass
class Workload:
    """The streams of a step, the length cap, and how many prepared examples the full training split makes."""

    streams: list[Stream]
    limit: int | None
    examples: int  # prepared training examples (QA windows, packed blocks...) in the whole training split
    tokens_per_example: float  # non-padding tokens one example feeds the model (all streams)
    sample: Any = None  # the prepared sample (a datasets.Dataset), for the measured steps
    prepared: Any = None  # the Prepared holding it (collator, new token ids)
    notes: list[str] = field(default_factory=list)
    images: dict[str, Any] | None = None  # a collated batch holding pixel_values (``estimate/trace.py`` reads it)

    def passes(self, batch: int, peak: bool, group_by_length: bool = False, seed: int = 0) -> list[Pass]:
        """The forward passes of one micro-batch at the peak (longest) or typical padded lengths."""
        out = []
        for stream in self.streams:
            lengths = {
                side: (max(values) if peak else typical_length(values, batch * stream.rows, group_by_length, seed))
                for side, values in stream.lengths.items()
            }
            out.append(Pass(stream.rows, {k: max(1, v) for k, v in lengths.items()}))
        return out

    def describe(self, batch: int, group_by_length: bool = False) -> dict[str, dict[str, Any]]:
        """Per stream and side: typical padded and longest lengths (what the report shows)."""
        described = {}
        for stream in self.streams:
            for side, values in stream.lengths.items():
                name = stream.name if side == "single" else f"{stream.name} {side}"
                described[name] = {
                    "typical": typical_length(values, batch * stream.rows, group_by_length),
                    "peak": max(values),
                    "mean": round(sum(values) / len(values), 1),
                    "limit": self.limit,
                }
        return described


def typical_length(lengths: list[int], batch: int, group_by_length: bool = False, seed: int = 0) -> int:
    """Mean padded length of a batch: the mean over random batches of their longest (the mean length when grouped)."""
    if not lengths:
        return 1
    if group_by_length or batch <= 1:
        return max(1, round(sum(lengths) / len(lengths)))
    rng = random.Random(seed)
    draws = [max(rng.choices(lengths, k=batch)) for _ in range(200)]
    return max(1, round(sum(draws) / len(draws)))


def workload(checked: Any, model: Any, sample_rows: int = SAMPLE_ROWS) -> Workload:
    """Prepare a sample of the training split with the task's own ``prepare`` and read what a step feeds the model.

    Args:
        checked: The driver's ``Checked`` (config, analysis, processor, splits).
        model: The run's model (meta device): a sentence-transformer's ``max_seq_length`` caps its texts.
        sample_rows: Rows of the training split to prepare (a seeded random sample when there are more).

    Raises:
        ValueError: The prepared data holds nothing this module recognises as model inputs (a task with a new
            input layout: add it here).
    """
    ctx, splits = checked.ctx, checked.splits
    seed = ctx.config.training.seed
    train = splits.train
    rows = len(train)
    if rows > sample_rows:
        train = train.sample(n=sample_rows, random_state=seed)
    sample_splits = dataclasses.replace(splits, train=train, eval=None, eval_origin=None, test=None, test_origin=None)
    from trainforge.training.driver import prepare

    prepared = prepare(dataclasses.replace(checked, splits=sample_splits))
    dataset = prepared.train
    made = len(dataset)
    if "encoded" in ctx.labels.facts:  # LLM tasks prepare every row their analysis encoded, whatever frame they get
        examples = made
    else:  # one row may make several examples (QA windows): scale the sample's count to the whole split
        examples = math.ceil(rows * made / max(1, len(train)))
    if made > sample_rows:
        dataset = dataset.shuffle(seed=seed).select(range(sample_rows))
    limit = _limit(ctx.config, model)
    # A sentence-transformer carries its own tokenizer (its task loads no processor).
    tokenizer = ctx.processor if ctx.processor is not None else getattr(model, "tokenizer", None)
    images = _image_batch(dataset, prepared.collator)
    streams = _streams(dataset, tokenizer, model, limit, prepared.collator, images is not None)
    notes = []
    if rows > sample_rows:
        notes.append(f"sequence lengths from a random sample of {sample_rows:,} of {rows:,} training rows")
    counted = min(len(dataset), max((len(v) for s in streams for v in s.lengths.values()), default=1))
    tokens = sum(sum(sum(v) for v in s.lengths.values()) * s.rows for s in streams) / max(1, counted)
    prepared = dataclasses.replace(prepared, train=dataset, eval=None, test=None)
    if images is not None:
        shape = "x".join(str(n) for n in images["pixel_values"].shape[1:])
        notes.append(f"images: {shape} pixel values per example")
    return Workload(streams, limit, max(1, examples), tokens, dataset, prepared, notes, images)


def _limit(config: Any, model: Any) -> int | None:
    from trainforge.models.config_checks import LENGTH_FIELDS

    for name in LENGTH_FIELDS:
        value = getattr(config.params, name, None)
        if isinstance(value, int):
            return value
    value = getattr(model, "max_seq_length", None)
    return int(value) if isinstance(value, int) else None


def _image_batch(dataset: Any, collator: Any, size: int = 4) -> dict[str, Any] | None:
    """A collated batch of a few examples when the task's batches hold images (``pixel_values``), else None.

    Rows that are not token ids yet (image paths, a vision-language model's prompts) are collated by the task's own
    collator, which opens and encodes them per batch.
    """
    if collator is None or "input_ids" in dataset.column_names:
        return None
    batch = collator([dataset[i] for i in range(min(size, len(dataset)))])
    return dict(batch) if "pixel_values" in batch else None


def _streams(
    dataset: Any, tokenizer: Any, model: Any, limit: int | None, collator: Any = None, images: bool = False
) -> list[Stream]:
    columns = list(dataset.column_names)
    if "chosen_ids" in columns and "rejected_ids" in columns:
        pairs = zip(dataset["chosen_ids"], dataset["rejected_ids"], strict=True)
        return [Stream("pair", 2, {"single": [max(len(c), len(r)) for c, r in pairs]})]
    if all(name in columns for name in _PREFERENCE):
        return [Stream("pair", 2, {"single": _preference_lengths(dataset, tokenizer, limit)})]
    if "input_ids" in columns:
        inputs = [len(ids) for ids in dataset["input_ids"]]
        encoder_decoder = bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))
        if encoder_decoder and "labels" in columns:
            return [Stream("text", 1, {"encoder": inputs, "decoder": [len(ids) for ids in dataset["labels"]]})]
        return [Stream("text", 1, {"single": inputs})]
    if images:  # image batches (their text, for a vision-language model, comes from the collator)
        return _collated_text(dataset, collator)
    texts = [name for name in columns if isinstance(dataset[0].get(name), str)]
    if texts and tokenizer is not None:
        return [Stream(name, 1, {"single": _text_lengths(dataset[name], tokenizer, limit)}) for name in texts]
    if collator is not None:
        return _collated_text(dataset, collator)
    raise ValueError(f"no model inputs recognised among the prepared columns {columns}")


def _collated_text(dataset: Any, collator: Any, rows: int = 64) -> list[Stream]:
    """Token lengths of examples a collator encodes (a vision-language model's prompts), one example at a time."""
    lengths = []
    for index in range(min(rows, len(dataset))):
        batch = collator([dataset[index]])
        if "input_ids" not in batch:
            return []
        mask = batch.get("attention_mask")
        lengths.append(int(mask.sum()) if mask is not None else int(batch["input_ids"].shape[-1]))
    return [Stream("text", 1, {"single": lengths})] if lengths else []


def _text_lengths(texts: list[str], tokenizer: Any, limit: int | None) -> list[int]:
    """Tokens per text with the run's tokenizer (special tokens included), capped at ``limit``."""
    ids = tokenizer(list(texts), truncation=limit is not None, max_length=limit)["input_ids"]
    return [max(1, len(row)) for row in ids]


def _preference_lengths(dataset: Any, tokenizer: Any, limit: int | None) -> list[int]:
    """Prompt + the longer completion, as TRL tokenizes them (prompt and completion apart), capped at ``limit``."""
    prompt = tokenizer(list(dataset["prompt"]), add_special_tokens=False)["input_ids"]
    chosen = tokenizer(list(dataset["chosen"]), add_special_tokens=False)["input_ids"]
    rejected = tokenizer(list(dataset["rejected"]), add_special_tokens=False)["input_ids"]
    lengths = [len(p) + max(len(c), len(r)) for p, c, r in zip(prompt, chosen, rejected, strict=True)]
    return [min(n, limit) if limit else n for n in lengths]
