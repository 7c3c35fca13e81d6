"""Shared fixtures: offline environment, a tiny BERT-like model with a tokenizer trained on the fly, and data."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pandas as pd
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# The models here are tiny: one thread is as fast alone and 5-10x faster when other jobs share the CPUs.
os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

POSITIVE = ["good", "great", "fun", "lovely", "brilliant", "superb", "charming", "moving", "witty", "delightful"]
NEGATIVE = ["bad", "awful", "dull", "boring", "terrible", "weak", "clumsy", "tedious", "bland", "messy"]
NEUTRAL = ["the", "film", "movie", "plot", "actors", "story", "was", "is", "quite", "really", "a", "very"]


def make_sentiment_frame(rows: int = 120, seed: int = 0, classes: int = 2) -> pd.DataFrame:
    """Texts whose label is decided by their sentiment words: learnable in a few steps."""
    rng = random.Random(seed)
    groups = [POSITIVE, NEGATIVE, ["average", "okay", "fine", "middling", "so-so"]][:classes]
    names = ["positive", "negative", "neutral"][:classes]
    records = []
    for i in range(rows):
        k = i % classes
        words = rng.sample(NEUTRAL, 4) + rng.sample(groups[k], 2)
        rng.shuffle(words)
        records.append(
            {"review": " ".join(words), "sentiment": names[k], "score": float(k) * 2.0 + rng.random() * 0.1}
        )
    return pd.DataFrame(records)


def count_loads(monkeypatch, cls) -> list:
    """Record every ``cls.from_pretrained`` call (a model or tokenizer load) while the test runs."""
    calls = []
    original = cls.from_pretrained.__func__

    def counted(klass, *args, **kwargs):
        calls.append(args[:1])
        return original(klass, *args, **kwargs)

    monkeypatch.setattr(cls, "from_pretrained", classmethod(counted))
    return calls


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """A 2-layer, 32-wide BERT with a WordPiece tokenizer trained on the fixture vocabulary, saved to disk."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def build_tiny_bert(folder: Path, max_positions: int = 64) -> str:
    """Build the tiny BERT into ``folder`` (also used by scripts/reference_configs.py); returns the folder."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    corpus = [" ".join(POSITIVE + NEGATIVE + NEUTRAL + ["average", "okay", "fine", "middling", "so-so"])] * 10
    corpus += list(make_sentiment_frame(200, seed=1, classes=3)["review"])
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    fast.save_pretrained(folder)
    config = BertConfig(
        vocab_size=fast.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        pad_token_id=fast.pad_token_id,
    )
    BertModel(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture()
def sentiment_csv(tmp_path) -> Path:
    """A 120-row binary sentiment CSV with columns review, sentiment, score."""
    path = tmp_path / "reviews.csv"
    make_sentiment_frame(120).to_csv(path, index=False)
    return path


@pytest.fixture()
def base_config(tiny_bert, sentiment_csv, tmp_path) -> dict:
    """A fast text-classification config on the tiny model and the sentiment CSV."""
    return {
        "task": "text_classification",
        "model": {"name": tiny_bert},
        "data": {
            "source": str(sentiment_csv),
            "columns": {"text": "review", "label": "sentiment"},
            "eval_fraction": 0.25,
        },
        "training": {
            "num_train_epochs": 3,
            "learning_rate": 5e-3,
            "per_device_train_batch_size": 16,
            "logging_steps": 1,
        },
        "params": {"max_length": 32},
        "output": {"dir": str(tmp_path / "run"), "report_to": ["tensorboard"]},
    }
