r"""Scores of generated text against reference texts: ROUGE, BLEU, chrF and the generated length.

Shared by every task that generates text from an input (seq2seq; image captioning). Strings in, numbers out:
decoding token ids is the task's business. All scores are on a 0-100 scale, as papers report them.

* ROUGE-1/2/L/Lsum (Lin, 2004) with Google's ``rouge-score`` package: the mean F-measure over rows. English-only
  texts use its standard tokenizer with the Porter stemmer (the figures summarisation papers report). Its tokenizer
  keeps only ``[a-z0-9]``, which scores German umlauts, accented words and all of Chinese as missing; so when a
  reference holds a letter outside ASCII, words are read with a Unicode-aware tokenizer instead (lower-cased ``\w+``,
  no stemming). ROUGE-Lsum splits texts into sentences after ``.``, ``!``, ``?`` or a newline (the reference
  implementation used nltk's punkt, which needs a download).
* BLEU (Papineni et al., 2002) and chrF (Popović, 2015) with ``sacrebleu``'s corpus scores and default settings
  (13a tokenisation, exponential smoothing; character 6-grams, beta 2), so the numbers match sacrebleu's CLI.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
GENERATION_METRICS = (*ROUGE_TYPES, "bleu", "chrf", "gen_len")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w+", re.UNICODE)


class UnicodeWordTokenizer:
    r"""Lower-cased ``\w+`` words in any script: ROUGE's tokenizer for texts that are not plain ASCII."""

    def tokenize(self, text: str) -> list[str]:
        """The words of ``text``, lower-cased (``"Grünes Gras"`` -> ``["grünes", "gras"]``)."""
        return _WORD.findall(text.lower())


def rouge_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L/Lsum F-measures (0-100) of ``predictions`` against ``references`` (one each, same order).

    Raises:
        ValueError: The two lists differ in length.
    """
    from rouge_score import rouge_scorer

    _same_length(predictions, references)
    if not predictions:
        return dict.fromkeys(ROUGE_TYPES, 0.0)
    plain = all(text.isascii() for text in references)
    scorer = rouge_scorer.RougeScorer(
        list(ROUGE_TYPES), use_stemmer=plain, tokenizer=None if plain else UnicodeWordTokenizer()
    )
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, reference in zip(predictions, references, strict=True):
        # rougeLsum reads sentences from newlines; the others ignore them.
        scores = scorer.score(_sentences(reference), _sentences(prediction))
        for name in ROUGE_TYPES:
            totals[name] += scores[name].fmeasure
    return {name: 100.0 * total / len(predictions) for name, total in totals.items()}


def _sentences(text: str) -> str:
    """``text`` with one sentence per line (for ROUGE-Lsum)."""
    return "\n".join(part.strip() for part in _SENTENCE_END.split(text.strip()) if part.strip())


def bleu_chrf(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU and chrF (0-100) of ``predictions`` against one reference each (sacrebleu's defaults).

    Raises:
        ValueError: The two lists differ in length.
    """
    import sacrebleu

    _same_length(predictions, references)
    if not predictions:
        return {"bleu": 0.0, "chrf": 0.0}
    hypotheses, refs = list(predictions), [list(references)]
    return {
        "bleu": float(sacrebleu.corpus_bleu(hypotheses, refs).score),
        "chrf": float(sacrebleu.corpus_chrf(hypotheses, refs).score),
    }


def generation_metrics(
    predictions: Sequence[str], references: Sequence[str], generated_lengths: Sequence[int] | np.ndarray
) -> dict[str, float]:
    """Every score of this module: ``rouge1``, ``rouge2``, ``rougeL``, ``rougeLsum``, ``bleu``, ``chrf``, ``gen_len``.

    Args:
        predictions: The generated texts (n).
        references: The expected texts (n), in the same order.
        generated_lengths: Tokens generated for each row (n); ``gen_len`` is their mean.

    Raises:
        ValueError: The lists differ in length.
    """
    metrics = rouge_scores(predictions, references)
    metrics.update(bleu_chrf(predictions, references))
    metrics["gen_len"] = float(np.mean(generated_lengths)) if len(generated_lengths) else 0.0
    return metrics


def _same_length(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
