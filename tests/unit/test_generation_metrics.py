"""Generation scores (metrics/generation.py) against hand-computed values and the libraries' own scorers."""

from __future__ import annotations

import pytest

from trainforge.metrics.generation import bleu_chrf, generation_metrics, rouge_scores


def test_identical_texts_score_100():
    texts = ["the cat sat on the mat.", "a dog ran in the park. it was happy."]
    scores = generation_metrics(texts, texts, [7, 11])
    for name in ("rouge1", "rouge2", "rougeL", "rougeLsum", "bleu", "chrf"):
        assert scores[name] == pytest.approx(100.0), name
    assert scores["gen_len"] == 9.0


def test_rouge_by_hand():
    # Unigrams: 2 of 3 predicted words match 2 of 4 reference words: P 2/3, R 1/2, F 4/7.
    scores = rouge_scores(["the cat sat"], ["the cat lay down"])
    assert scores["rouge1"] == pytest.approx(100 * 4 / 7)
    # Bigrams: "the cat" matches 1 of 2 predicted, 1 of 3 reference: F = 2 * (1/2 * 1/3) / (1/2 + 1/3) = 0.4.
    assert scores["rouge2"] == pytest.approx(40.0)


def test_rouge_lsum_reads_sentences():
    prediction, reference = "the cat sat. the dog ran.", "the dog ran. the cat sat."
    scores = rouge_scores([prediction], [reference])
    assert scores["rougeLsum"] == pytest.approx(100.0)  # sentence by sentence, order does not matter
    assert scores["rougeL"] < 100.0  # one longest common subsequence over the whole text


def test_rouge_stems_english_words():
    assert rouge_scores(["the cats running"], ["the cat runs"])["rouge1"] == pytest.approx(100.0)


def test_rouge_reads_words_outside_ascii():
    # rouge-score's own tokenizer keeps [a-z0-9] only: "grüne" would become "gr ne" and match "grüner" partly.
    scores = rouge_scores(["die grüne katze"], ["die grüner katze"])
    assert scores["rouge1"] == pytest.approx(100 * 2 / 3)
    chinese = rouge_scores(["猫 在 睡觉"], ["猫 在 睡觉"])
    assert chinese["rouge1"] == pytest.approx(100.0)  # the standard tokenizer scores every CJK text 0


def test_bleu_and_chrf_match_sacrebleu():
    import sacrebleu

    predictions = ["a man rides a horse on the beach", "two dogs play in the snow"]
    references = ["a man is riding a horse on the beach", "two dogs are playing in snow"]
    scores = bleu_chrf(predictions, references)
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(predictions, [references]).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(predictions, [references]).score)
    assert 0 < scores["bleu"] < 100 and 0 < scores["chrf"] < 100


def test_empty_and_mismatched_inputs():
    assert generation_metrics([], [], []) == {
        "rouge1": 0.0,
        "rouge2": 0.0,
        "rougeL": 0.0,
        "rougeLsum": 0.0,
        "bleu": 0.0,
        "chrf": 0.0,
        "gen_len": 0.0,
    }
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        generation_metrics(["a", "b"], ["a"], [1, 1])
    assert generation_metrics([""], ["a cat"], [1])["bleu"] == 0.0  # an empty generation scores 0, no error
