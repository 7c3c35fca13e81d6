"""The training batches' order: ``training.train_sampling_strategy: auto`` picks length grouping when the data says so.

Padding is wasted compute: a random batch of short sentences is padded to its longest one. Grouping rows of similar
length (transformers' ``LengthGroupedSampler``: shuffle, cut into mega-batches of 50 batches, sort each by length)
removes most of it. It also makes batches less random, which hurts when length carries the label (short rows of one
class, long of another: grouped batches become single-class) or when there are too few mega-batches to shuffle.
``auto`` measures both on the encoded training split, before any model loads, and says what it chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# transformers' LengthGroupedSampler groups 50 batches at a time (fewer on small data, which is then barely shuffled).
MEGA_BATCH_MULTIPLE = 50
MIN_MEGA_BATCHES = 4  # fewer: batch order is close to sorted, and epochs repeat the same batches
MIN_PADDING_SAVED = 0.2  # below this the speed-up does not pay for the less random batches
MAX_LENGTH_LABEL_ASSOCIATION = 0.05  # correlation ratio (eta squared) of length on class; or squared Spearman rho


@dataclass(frozen=True)
class SamplingChoice:
    """What ``auto`` chose and why (one sentence for the run's notes)."""

    strategy: str  # "random" or "group_by_length"
    reason: str
    # Said to the user: a grouped run, or one that would have been grouped but for the label. Small or uniform data
    # trains in random order as any Trainer does, and a note about it would be noise on every run.
    notable: bool = False


def choose_sampling(train: Any, batch_size: int, seed: int) -> SamplingChoice:
    """Pick ``group_by_length`` or ``random`` for an encoded training split.

    Groups by length when all hold: rows carry ``input_ids``; there are at least ``MIN_MEGA_BATCHES`` mega-batches
    of 50 batches; grouping saves at least ``MIN_PADDING_SAVED`` of the padded tokens (simulated with the same
    mega-batch rule as transformers, same seed); and a row's length tells little about its label (see
    ``length_label_association``).

    Args:
        train: The encoded training split (a ``datasets.Dataset`` or a list of dicts).
        batch_size: Rows per optimizer step on one device (micro-batch x gradient accumulation).
        seed: The run's seed (the simulation's shuffle).
    """
    columns = getattr(train, "column_names", None) or (list(train[0]) if len(train) else [])
    if "input_ids" not in columns:
        return SamplingChoice("random", "random batch order: the rows carry no token ids to group by length")
    lengths = np.array([len(ids) for ids in train["input_ids"]])
    needed = MIN_MEGA_BATCHES * MEGA_BATCH_MULTIPLE * batch_size
    if len(lengths) < needed:
        return SamplingChoice(
            "random",
            f"random batch order: {len(lengths)} training rows are too few to shuffle length-grouped batches "
            f"(grouping needs {needed} at batch {batch_size})",
        )
    saved = 1 - padded_tokens(lengths, batch_size, seed, grouped=True) / padded_tokens(
        lengths, batch_size, seed, grouped=False
    )
    if saved < MIN_PADDING_SAVED:
        return SamplingChoice(
            "random", f"random batch order: grouping rows by length would save only {saved:.0%} of padded tokens"
        )
    labels = train["labels"] if "labels" in columns else None
    association = length_label_association(lengths, labels)
    if association is not None and association > MAX_LENGTH_LABEL_ASSOCIATION:
        return SamplingChoice(
            "random",
            f"random batch order: row length follows the label (association {association:.2f}), so length-grouped "
            "batches would skew by label",
            notable=True,
        )
    return SamplingChoice(
        "group_by_length",
        f"length-grouped batches: {saved:.0%} fewer padded tokens than random batches "
        "(training.train_sampling_strategy: random to turn off)",
        notable=True,
    )


def padded_tokens(lengths: np.ndarray, batch_size: int, seed: int, grouped: bool) -> int:
    """Tokens one epoch computes once each batch is padded to its longest row (shape: lengths is ``(rows,)``).

    ``grouped`` follows transformers' ``get_length_grouped_indices``: a random permutation cut into mega-batches of
    ``min(50, rows // (4 * batch_size))`` batches, each sorted by length.
    """
    order = np.random.default_rng(seed).permutation(len(lengths))
    if grouped:
        multiple = max(1, min(MEGA_BATCH_MULTIPLE, len(lengths) // (4 * batch_size)))
        mega = multiple * batch_size
        order = np.concatenate([chunk[np.argsort(-lengths[chunk], kind="stable")] for chunk in _chunks(order, mega)])
    return int(sum(lengths[batch].max() * len(batch) for batch in _chunks(order, batch_size)))


def length_label_association(lengths: np.ndarray, labels: Any) -> float | None:
    """How much a row's length tells about its label, in [0, 1]; None when labels are not one value per row.

    Class labels (integers): the correlation ratio eta^2 = between-class variance of length / total variance
    (Pearson 1905). Numeric targets (floats): the squared Spearman rank correlation. Rows whose label is a list
    (token tags, multi-label vectors, generated text) are not judged: one row has no single label.
    """
    if labels is None or len(labels) != len(lengths):
        return None
    values = np.asarray(labels, dtype=object)
    if any(isinstance(v, (list, tuple, np.ndarray)) for v in values[:100]):
        return None
    numeric = np.asarray(labels, dtype=float)
    if np.var(lengths) == 0:
        return 0.0
    if np.all(numeric == np.round(numeric)):
        mean = lengths.mean()
        between = sum((lengths[numeric == c].mean() - mean) ** 2 * (numeric == c).sum() for c in np.unique(numeric))
        return float(between / (np.var(lengths) * len(lengths)))
    from scipy.stats import spearmanr

    rho = spearmanr(lengths, numeric).statistic
    return float(rho**2) if np.isfinite(rho) else 0.0


def _chunks(array: np.ndarray, size: int) -> list[np.ndarray]:
    return [array[i : i + size] for i in range(0, len(array), size)]
