"""Entity-level metrics and entity decoding for per-word tags (seqeval), shared by metrics and predict.

Tag schemes: prefixed tags (``B-``/``I-`` as in IOB1 and IOB2, plus ``E-``/``S-`` for IOBES) and plain tags without a
prefix (``PER``, ``LOC``, ``O``: the IO scheme), whose runs of one type are read as one entity. ``O`` is outside
every entity. Metrics and predict decode entities with one function, so predict returns the entities the metrics
counted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from trainforge.errors import DataError

OUTSIDE = "O"
_PREFIXED = re.compile(r"[BIES]-.+")


def tag_scheme(names: Sequence[str]) -> str:
    """``IOB2`` (B-/I- prefixes: IOB1 data reads the same), ``IOBES`` (E-/S- too) or ``IO`` (no prefixes).

    Raises:
        DataError: Some tags carry a B-/I-/E-/S- prefix and others (besides ``O``) do not.
    """
    tagged = [name for name in names if name != OUTSIDE]
    prefixed = [name for name in tagged if _PREFIXED.fullmatch(name)]
    if prefixed and len(prefixed) < len(tagged):
        plain = sorted(set(tagged) - set(prefixed))
        raise DataError(
            f"the tags mix prefixed tags ({', '.join(sorted(prefixed)[:4])}) with tags without a B-/I-/E-/S- prefix "
            f"({', '.join(plain[:6])}): write every entity tag as B-TYPE/I-TYPE (IOB2), add E-/S- for IOBES, or "
            "use plain type names without prefixes throughout; O marks words outside any entity"
        )
    if not prefixed:
        return "IO"
    return "IOBES" if any(name[0] in "ES" for name in prefixed) else "IOB2"


def entity_tags(tags: Sequence[str], scheme: str) -> list[str]:
    """``tags`` as seqeval reads them: plain (IO) tags become IOB2, a run of one type one entity."""
    if scheme != "IO":
        return list(tags)
    out, previous = [], OUTSIDE
    for tag in tags:
        out.append(OUTSIDE if tag == OUTSIDE else f"{'I' if tag == previous else 'B'}-{tag}")
        previous = tag
    return out


def entities(tags: Sequence[str], scheme: str) -> list[tuple[str, int, int]]:
    """``(type, first word, last word)`` of every entity in one sentence's tags (conlleval's reading)."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [(kind, start, end) for kind, start, end in get_entities(entity_tags(tags, scheme))]


def labelled_tags(labels: np.ndarray, predicted: np.ndarray, names: Sequence[str], ignored: int) -> tuple[list, list]:
    """True and predicted tag names at the labelled positions (words' first sub-tokens), sentence by sentence.

    ``labels`` and ``predicted`` are tag ids of shape (sentences, tokens); positions where ``labels`` is ``ignored``
    (special tokens, later sub-tokens, padding) are left out.
    """
    keep = labels != ignored
    return (
        [[names[i] for i in row[mask]] for row, mask in zip(labels, keep, strict=True)],
        [[names[i] for i in row[mask]] for row, mask in zip(predicted, keep, strict=True)],
    )


def tagging_metrics(truth: list[list[str]], predicted: list[list[str]], scheme: str) -> dict[str, float]:
    """Scores (seqeval) of predicted tags against the true ones, sentence by sentence (same lengths).

    ``precision``, ``recall`` and ``f1`` count whole entities (micro average over types) in seqeval's default mode,
    which is conlleval's: an ``I-`` tag after ``O`` starts an entity. ``*_strict`` are seqeval's strict mode for the
    data's scheme (IOB2 or IOBES: an entity must start with ``B-``/``S-`` and be well formed). ``accuracy`` is the
    share of words whose tag is right. Per entity type: ``f1_<type>``, ``precision_<type>``, ``recall_<type>``
    (default mode), type names reduced to letters, digits and ``_``. Scores with nothing to count are 0.
    """
    from seqeval.metrics import accuracy_score, classification_report
    from seqeval.scheme import IOB2, IOBES

    truth = [entity_tags(tags, scheme) for tags in truth]
    predicted = [entity_tags(tags, scheme) for tags in predicted]
    out = {"accuracy": float(accuracy_score(truth, predicted)) if truth else 0.0}
    report: dict = {}
    strict: dict = {}
    if any(tag != OUTSIDE for sentence in truth + predicted for tag in sentence):  # seqeval averages no entity as NaN
        report = classification_report(truth, predicted, output_dict=True, zero_division=0)
        strict_scheme = IOBES if scheme == "IOBES" else IOB2
        strict = classification_report(
            truth, predicted, output_dict=True, zero_division=0, mode="strict", scheme=strict_scheme
        )
    for name in ("precision", "recall", "f1"):
        key = "f1-score" if name == "f1" else name
        out[name] = float(report.get("micro avg", {}).get(key, 0.0))
        out[f"{name}_strict"] = float(strict.get("micro avg", {}).get(key, 0.0))
    for kind, scores in report.items():
        if kind.endswith(" avg"):
            continue
        label = re.sub(r"\W", "_", kind)
        for name, key in (("f1", "f1-score"), ("precision", "precision"), ("recall", "recall")):
            out[f"{name}_{label}"] = float(scores[key])
    return out


def word_probabilities(pieces: Sequence[np.ndarray], strategy: str) -> np.ndarray | None:
    """One word's tag probabilities from its sub-tokens' (each shape (num_tags,)); None for a word without any.

    ``first``: the first sub-token's (the one trained); ``average``: their mean; ``max``: the most confident one's.
    """
    if not pieces:
        return None
    if strategy == "average":
        return np.mean(pieces, axis=0)
    if strategy == "max":
        return max(pieces, key=lambda p: float(p.max()))
    return pieces[0]


def entity_spans(
    text: str, spans: Sequence[tuple[int, int]], tags: Sequence[str], scores: Sequence[float], scheme: str
) -> list[dict]:
    """The entities of one sentence, from its words' ``tags`` and their character ``spans`` in ``text``.

    Each is a dict: ``text``, ``type``, ``start`` and ``end`` (character offsets into ``text``, end exclusive) and
    ``score`` (the mean probability of the entity's word tags, ``scores``).
    """
    return [
        {
            "text": text[spans[first][0] : spans[last][1]],
            "type": kind,
            "start": spans[first][0],
            "end": spans[last][1],
            "score": sum(scores[first : last + 1]) / (last - first + 1),
        }
        for kind, first, last in entities(tags, scheme)
    ]


def highlight(text: str, found: Sequence[dict]) -> str:
    """``text`` with each entity of ``found`` (``entity_spans``) written ``[text](TYPE)``."""
    parts, at = [], 0
    for entity in found:
        parts += [text[at : entity["start"]], f"[{entity['text']}]({entity['type']})"]
        at = entity["end"]
    return "".join([*parts, text[at:]])
