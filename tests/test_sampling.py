"""``training.train_sampling_strategy: auto``: length grouping only where it saves padding and cannot skew batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from datasets import Dataset

from trainforge.cli.main import main
from trainforge.training.events import read_events
from trainforge.training.sampling import choose_sampling, length_label_association, padded_tokens


def encoded(lengths, labels=None) -> Dataset:
    columns = {"input_ids": [[1] * int(n) for n in lengths]}
    if labels is not None:
        columns["labels"] = list(labels)
    return Dataset.from_dict(columns)


def skewed_lengths(rows: int, seed: int = 0) -> np.ndarray:
    """Sentence-like lengths: mostly short, a long tail (as SST-2's phrases)."""
    return np.clip(np.random.default_rng(seed).lognormal(2.3, 0.7, rows).astype(int) + 2, 2, 64)


def test_groups_varied_lengths_that_say_nothing_about_the_label():
    lengths = skewed_lengths(2000)
    labels = np.random.default_rng(1).integers(0, 2, len(lengths))
    choice = choose_sampling(encoded(lengths, labels), batch_size=8, seed=42)
    assert choice.strategy == "group_by_length"
    assert "fewer padded tokens" in choice.reason


def test_keeps_random_order_when_length_follows_the_label():
    lengths = skewed_lengths(2000)
    labels = (lengths > np.median(lengths)).astype(int)  # long rows are one class: grouped batches are single-class
    choice = choose_sampling(encoded(lengths, labels), batch_size=8, seed=42)
    assert choice.strategy == "random"
    assert "follows the label" in choice.reason


def test_keeps_random_order_on_small_data_or_equal_lengths_or_no_token_ids():
    assert choose_sampling(encoded(skewed_lengths(1000)), batch_size=8, seed=0).strategy == "random"  # < 4 x 50 x 8
    assert "too few" in choose_sampling(encoded(skewed_lengths(1000)), batch_size=8, seed=0).reason
    same = choose_sampling(encoded([20] * 4000), batch_size=8, seed=0)
    assert same.strategy == "random" and "save only 0%" in same.reason
    texts = Dataset.from_dict({"anchor": ["a"] * 4000, "positive": ["b"] * 4000})
    assert "no token ids" in choose_sampling(texts, batch_size=8, seed=0).reason


def test_association_measures():
    lengths = np.arange(100) % 10 + 1
    assert length_label_association(lengths, lengths % 2) == pytest.approx(0.0303, abs=1e-3)  # odd/even: weak
    assert length_label_association(lengths, (lengths > 5).astype(int)) > 0.7
    assert length_label_association(lengths, lengths * 0.37) == pytest.approx(1.0)  # numeric target = length
    assert length_label_association(lengths, [[0, 1]] * 100) is None  # token tags: no single label per row


def test_padding_model_matches_transformers_sampler():
    """Our simulation of padded tokens agrees with transformers' own length-grouped order (different RNG: ~2%)."""
    from transformers.trainer_pt_utils import get_length_grouped_indices

    lengths = skewed_lengths(4000)
    order = get_length_grouped_indices(lengths.tolist(), 8, generator=torch.Generator().manual_seed(0))
    theirs = sum(lengths[order[i : i + 8]].max() * len(order[i : i + 8]) for i in range(0, len(order), 8))
    ours = padded_tokens(lengths, 8, seed=0, grouped=True)
    assert ours == pytest.approx(theirs, rel=0.03)
    assert padded_tokens(lengths, 8, seed=0, grouped=False) > 1.5 * ours


def test_auto_groups_a_text_run_and_says_so(tiny_bert, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    words = ["good", "bad", "film", "plot", "the", "was", "very", "quite"]
    texts = [" ".join(rng.choice(words, int(n))) for n in skewed_lengths(500)]
    pd.DataFrame({"text": texts, "label": rng.integers(0, 2, len(texts))}).to_csv(tmp_path / "d.csv", index=False)
    config = {
        "task": "text_classification",
        "model": {"name": tiny_bert},
        "data": {"source": str(tmp_path / "d.csv"), "eval_fraction": 0.1},
        "training": {"max_steps": 3, "per_device_train_batch_size": 2},
        "params": {"max_length": 64},
        "output": {"dir": str(tmp_path / "run"), "report_to": ["none"], "save_checkpoints": False},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import transformers.trainer

    built = []
    original = transformers.trainer.LengthGroupedSampler

    def recording(*args, **kwargs):
        built.append(kwargs.get("dataset"))
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.trainer, "LengthGroupedSampler", recording)
    assert main(["train", str(tmp_path / "c.yaml")]) == 0
    notes = [e["message"] for e in read_events(tmp_path / "run" / "events.jsonl") if e["event"] == "note"]
    assert any(n.startswith("length-grouped batches") for n in notes), notes
    assert [len(rows) for rows in built] == [450]  # training rows sampled by length; eval (50) kept in order

    config["training"]["train_sampling_strategy"] = "random"
    config["output"]["dir"] = str(tmp_path / "run2")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "c.yaml")]) == 0
    assert len(built) == 1  # an explicit choice is kept, with no note
    notes = [e["message"] for e in read_events(tmp_path / "run2" / "events.jsonl") if e["event"] == "note"]
    assert not any("batch" in n for n in notes), notes


def test_evaluation_keeps_the_split_order_when_training_groups_by_length(tiny_bert, tmp_path):
    """transformers length-groups eval batches too; ours keep row order (QA windows, sorted eval rely on it)."""
    from transformers import AutoModelForSequenceClassification, TrainingArguments

    from trainforge.training.hf_trainer import WeightedLossTrainer

    args = TrainingArguments(str(tmp_path), train_sampling_strategy="group_by_length", use_cpu=True, report_to="none")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    rows = encoded(skewed_lengths(300), [0] * 300)
    trainer = WeightedLossTrainer(model=model, args=args, train_dataset=rows, eval_dataset=rows)
    assert list(trainer._get_eval_sampler(rows)) == list(range(300))
    assert list(trainer._get_train_sampler(rows)) != list(range(300))  # training still groups
