"""SQuAD scoring and span post-processing for extractive question answering (numpy only; no torch).

Scores follow the official SQuAD evaluation scripts, rewritten here (``datasets.load_metric``, which the reference
used, was removed in datasets 3.0):

* v1.1: ``evaluate-v1.1.py`` (Rajpurkar et al., 2016), https://rajpurkar.github.io/SQuAD-explorer/ ;
* v2.0: ``evaluate-v2.0.py`` (Rajpurkar et al., 2018), same site: an unanswerable question's gold answer is the
  empty string, so predicting nothing scores 1 on it and any text 0; ``find_best_thresh`` picks the no-answer
  threshold that maximises the score, and the totals are broken down into ``HasAns`` and ``NoAns`` questions.

Exact match and F1 are percentages (0-100), as the official scripts and Hugging Face's ``squad`` metric report them.

Span post-processing follows Hugging Face's ``run_qa.py`` recipe (``utils_qa.postprocess_qa_predictions`` in
transformers' ``examples/pytorch/question-answering``): the ``n_best`` best start and end tokens of every window,
spans inside the context of at most ``max_answer_length`` tokens, the best over all windows of the question; the
null (no-answer) score is the lowest ``start_logit + end_logit`` at the [CLS] token over the windows.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)

# ---------------------------------------------------------------------------------------------------- scores


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and the articles a/an/the, collapse whitespace (official ``normalize_answer``)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when both normalise to the same text (official ``compute_exact``)."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 of the normalised texts (official v2.0 ``compute_f1``).

    An empty side (no answer) scores 1.0 only when the other is empty too; for two non-empty texts this equals
    v1.1's ``f1_score``.
    """
    predicted, truth = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not truth:
        return float(predicted == truth)
    same = sum((Counter(predicted) & Counter(truth)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(truth)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(prediction: str, golds: Sequence[str]) -> tuple[float, float]:
    """(exact match, F1) of ``prediction`` against its best gold answer; no gold answers means "unanswerable"."""
    golds = [g for g in golds if normalize_answer(g)] or [""]  # official v2.0: gold_answers = [''] when none
    return max(exact_match(prediction, g) for g in golds), max(f1(prediction, g) for g in golds)


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-question (exact match, F1) arrays, each of shape (n,), with values in [0, 1]."""
    pairs = np.array([best_over_golds(p, g) for p, g in zip(predictions, golds, strict=True)], dtype=float)
    pairs = pairs.reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def summarise(exact: np.ndarray, f1_scores: np.ndarray, has_answer: np.ndarray, version_2: bool) -> dict[str, float]:
    """``exact_match`` and ``f1`` in percent; v2 also ``has_ans_*`` and ``no_ans_*`` (official HasAns/NoAns).

    A breakdown over no question (an eval split without unanswerable questions) is left out, as the official
    script leaves it out.
    """
    if len(exact) == 0:
        return {}
    out = {"exact_match": 100.0 * float(exact.mean()), "f1": 100.0 * float(f1_scores.mean())}
    if version_2:
        for prefix, mask in (("has_ans", has_answer), ("no_ans", ~has_answer)):
            if mask.any():
                out[f"{prefix}_exact_match"] = 100.0 * float(exact[mask].mean())
                out[f"{prefix}_f1"] = 100.0 * float(f1_scores[mask].mean())
    return out


def tune_null_threshold(null_margin: np.ndarray, answered: np.ndarray, unanswered: np.ndarray) -> float:
    """The no-answer threshold that maximises the summed score (official v2.0 ``find_best_thresh``).

    A question gets no answer when its ``null_margin`` (null score minus best span score) exceeds the threshold.
    Starting from "no question answered", questions are answered in order of rising margin and the best total
    kept; equal margins move together. The threshold returned lies halfway between the last margin answered and the
    next (the official script returns the last margin itself; halfway generalises the same choice to new data).

    Args:
        null_margin: Shape (n,), logits.
        answered: Shape (n,), each question's score when its best span is given.
        unanswered: Shape (n,), its score when no answer is given.

    Returns:
        The threshold, in logit units.
    """
    # A question without any valid span scores the same either way: it takes no part in the choice.
    finite = np.isfinite(null_margin)
    null_margin, answered, unanswered = null_margin[finite], answered[finite], unanswered[finite]
    if len(null_margin) == 0:
        return 0.0
    order = np.argsort(null_margin, kind="stable")
    margins = null_margin[order]
    totals = np.cumsum((answered - unanswered)[order])
    group_ends = np.flatnonzero(np.r_[margins[1:] != margins[:-1], True])  # last index of each run of equal margins
    candidates = np.r_[0.0, totals[group_ends]]  # 0.0: no question answered
    best = int(np.argmax(candidates))  # the first maximum: the fewest answers among equal scores, as official
    if best == 0:
        return float(margins[0]) - 1.0
    last = group_ends[best - 1]
    if last + 1 == len(margins):
        return float(margins[last]) + 1.0
    return float(margins[last] + margins[last + 1]) / 2.0


# ---------------------------------------------------------------------------------------------------- spans


@dataclass(frozen=True)
class Answer:
    """The best span of one question over its windows, and its null (no-answer) score.

    ``start``/``end`` are character offsets into the context (``context[start:end] == text``); ``score`` is the
    span's ``start_logit + end_logit``; ``probability`` and ``null_probability`` are the softmax over the question's
    n-best spans plus, for v2, the null answer (as ``run_qa``'s n-best file reports them). ``text`` is empty and the
    offsets -1 when no window held a valid span.
    """

    text: str
    start: int
    end: int
    score: float
    null_score: float
    probability: float
    null_probability: float

    @property
    def null_margin(self) -> float:
        """Null score minus the best span's score: above the threshold, the question gets no answer."""
        return self.null_score - self.score if self.start >= 0 else float("inf")


def best_answers(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: Sequence[Sequence[Sequence[int] | None]],
    null_index: Sequence[int],
    example_index: Sequence[int],
    contexts: Sequence[str],
    n_best: int = 20,
    max_answer_length: int = 30,
    version_2: bool = False,
) -> list[Answer]:
    """The best answer of every question, from the start/end logits of its windows.

    Args:
        start_logits: Shape (windows, tokens); positions past a window's length hold padding (-100) and are
            ignored through ``offsets``.
        end_logits: Same shape.
        offsets: Per window, per token: the (start, end) character span in the context, or None for tokens that
            are not context (question, special tokens).
        null_index: Per window, the [CLS] token whose logits score "no answer".
        example_index: Per window, the question it belongs to (0..len(contexts)-1).
        contexts: Per question, its context.
        n_best: Start and end candidates per window, and spans kept for the probabilities.
        max_answer_length: Longest answer, in tokens.
        version_2: Include the null answer in the probabilities.

    Returns:
        One ``Answer`` per context, in order.
    """
    spans: list[list[tuple[float, int, int]]] = [[] for _ in contexts]
    null_scores = np.full(len(contexts), np.inf)
    for window, question in enumerate(example_index):
        starts, ends = start_logits[window], end_logits[window]
        cls = null_index[window]
        null_scores[question] = min(null_scores[question], float(starts[cls] + ends[cls]))
        spans[question] += _window_spans(starts, ends, offsets[window], n_best, max_answer_length)
    return [
        _answer(sorted(found, reverse=True)[:n_best], float(null), context, version_2)
        for found, null, context in zip(spans, null_scores, contexts, strict=True)
    ]


def _window_spans(
    starts: np.ndarray, ends: np.ndarray, offsets: Sequence[Sequence[int] | None], n_best: int, longest: int
) -> list[tuple[float, int, int]]:
    """(score, start char, end char) of the valid spans among the window's n-best start and end tokens."""
    length = len(offsets)
    context = np.array([o is not None for o in offsets], dtype=bool)
    if not context.any():
        return []
    # Only context tokens can start or end an answer: the rest are pushed below every candidate.
    masked_starts = np.where(context, starts[:length], -np.inf)
    masked_ends = np.where(context, ends[:length], -np.inf)
    k = min(n_best, int(context.sum()))
    top_starts = np.argsort(masked_starts)[::-1][:k]
    top_ends = np.argsort(masked_ends)[::-1][:k]
    width = top_ends[None, :] - top_starts[:, None]
    valid = (width >= 0) & (width < longest)
    rows, columns = np.nonzero(valid)
    found = []
    for s, e in zip(top_starts[rows], top_ends[columns], strict=True):
        start_offset, end_offset = offsets[s], offsets[e]
        if start_offset is None or end_offset is None:
            continue
        found.append((float(starts[s] + ends[e]), int(start_offset[0]), int(end_offset[1])))
    return found


def _answer(spans: list[tuple[float, int, int]], null_score: float, context: str, version_2: bool) -> Answer:
    scores = [score for score, _, _ in spans] + ([null_score] if version_2 else [])
    if not scores:
        return Answer("", -1, -1, float("-inf"), null_score, 0.0, 1.0 if version_2 else 0.0)
    weights = np.exp(np.array(scores) - max(scores))
    probabilities = weights / weights.sum()
    null_probability = float(probabilities[-1]) if version_2 else 0.0
    if not spans:
        return Answer("", -1, -1, float("-inf"), null_score, 0.0, null_probability)
    score, start, end = spans[0]
    return Answer(context[start:end], start, end, score, null_score, float(probabilities[0]), null_probability)


# ---------------------------------------------------------------------------------------------------- evaluation


def post_process(logits, windows, n_best: int, max_answer_length: int, version_2: bool):
    """(answers, contexts, gold texts), one per question, from the start/end logits of its windows.

    Args:
        logits: (start logits, end logits), each of shape (windows, tokens) or a list of per-window arrays.
        windows: The evaluated windows (a ``datasets.Dataset`` or a dict of columns): ``example_index``,
            ``offset_mapping``, ``null_index``, ``context`` and ``gold`` (the question's answer texts).
        n_best: See ``best_answers``.
        max_answer_length: See ``best_answers``.
        version_2: See ``best_answers``.
    """
    example_index = list(windows["example_index"])
    count = max(example_index) + 1 if example_index else 0
    contexts: list[str] = [""] * count
    golds: list[list[str]] = [[] for _ in range(count)]
    for example, context, gold in zip(example_index, windows["context"], windows["gold"], strict=True):
        contexts[example], golds[example] = context, list(gold)
    answers = best_answers(
        logits[0],
        logits[1],
        list(windows["offset_mapping"]),
        list(windows["null_index"]),
        example_index,
        contexts,
        n_best,
        max_answer_length,
        version_2,
    )
    return answers, contexts, golds


class SquadScorer:
    """``compute_metrics`` for windows: post-processes them into one answer per question and scores it.

    Before each evaluation the trainer sets ``windows`` (the dataset evaluated) and ``threshold`` (the null
    threshold to apply; None tunes it on these questions, as for the eval split).
    """

    def __init__(self, n_best: int, max_answer_length: int, version_2: bool, fixed_threshold: float | None) -> None:
        """Post-processing settings, the SQuAD version, and a null threshold fixed by the user (None: tuned)."""
        self.n_best, self.max_answer_length, self.version_2 = n_best, max_answer_length, version_2
        self.fixed_threshold = fixed_threshold
        self.windows = None
        self.threshold: float | None = None

    def __call__(self, prediction) -> dict[str, float]:
        """Exact match and F1 (percent); v2 also the HasAns/NoAns breakdown and ``null_threshold``, the one used."""
        answers, _, golds = post_process(
            prediction.predictions, self.windows, self.n_best, self.max_answer_length, self.version_2
        )
        has_answer = np.array([bool(g) for g in golds], dtype=bool)
        texts = [a.text for a in answers]
        if not self.version_2:
            return summarise(*squad_scores(texts, golds), has_answer, False)
        margins = np.array([a.null_margin for a in answers])
        threshold = self.threshold
        if threshold is None:
            _, answered_f1 = squad_scores(texts, golds)
            threshold = tune_null_threshold(margins, answered_f1, (~has_answer).astype(float))
        chosen = ["" if m > threshold else t for m, t in zip(margins, texts, strict=True)]
        return {**summarise(*squad_scores(chosen, golds), has_answer, True), "null_threshold": float(threshold)}
