"""Shared fixtures: offline environment, tiny models (BERT, T5, BART) with tokenizers trained on the fly, and data."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import pandas as pd
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# The models here are tiny: one thread is as fast alone and 5-10x faster when other jobs share the CPUs.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Extracted ZIPs and images decoded from datasets go to a cache (data/images.py): the session's own, not ~/.cache.
os.environ.setdefault("TRAINFORGE_CACHE", tempfile.mkdtemp(prefix="trainforge-cache-"))

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
    import torch

    # Seeded, without touching the session's random state: the weights must not depend on which tests ran before
    # (an unseeded init made borderline 'loss falls' checks pass alone and fail in the full suite).
    with torch.random.fork_rng():
        torch.manual_seed(0)
        BertModel(config).save_pretrained(folder)
    return str(folder)


# A toy language: each English word has one "German" word, in the same order. A tiny encoder-decoder learns it.
LEXICON = {
    "the": "die",
    "red": "rote",
    "blue": "blaue",
    "green": "grüne",
    "small": "kleine",
    "big": "große",
    "cat": "katze",
    "dog": "hund",
    "bird": "vogel",
    "runs": "läuft",
    "sleeps": "schläft",
    "sings": "singt",
}


def make_translation_frame(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    """``source`` (English words) -> ``target`` (their LEXICON words, same order): learnable in a few steps."""
    rng = random.Random(seed)
    adjectives, nouns, verbs = ["red", "blue", "green", "small", "big"], ["cat", "dog", "bird"], ["runs", "sleeps"]
    records = []
    for _ in range(rows):
        words = ["the", rng.choice(adjectives), rng.choice(nouns), rng.choice(verbs + ["sings"])]
        records.append({"source": " ".join(words), "target": " ".join(LEXICON[w] for w in words)})
    return pd.DataFrame(records)


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> str:
    """A 2-layer, 32-wide T5 (relative positions) with a BPE tokenizer trained on the toy lexicon, saved to disk."""
    return build_tiny_seq2seq(tmp_path_factory.mktemp("tiny-t5"), "t5")


@pytest.fixture(scope="session")
def tiny_bart(tmp_path_factory) -> str:
    """A 2-layer, 32-wide BART (64 absolute positions) with the same tokenizer, saved to disk."""
    return build_tiny_seq2seq(tmp_path_factory.mktemp("tiny-bart"), "bart")


def build_tiny_seq2seq(folder: Path, arch: str = "t5", max_positions: int = 64) -> str:
    """Build a tiny random encoder-decoder (``t5`` or ``bart``) and its tokenizer into ``folder``; returns it.

    The tokenizer (SentencePiece-style BPE: words keep their leading space, so decoding restores the text) appends
    ``</s>`` to every text, as T5's and BART's do. Ids: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2 (no BOS token).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import (
        BartConfig,
        BartForConditionalGeneration,
        PreTrainedTokenizerFast,
        T5Config,
        T5ForConditionalGeneration,
    )

    folder.mkdir(parents=True, exist_ok=True)
    frame = make_translation_frame(300, seed=1)
    corpus = [" ".join(list(LEXICON) + list(LEXICON.values()))] * 10 + list(frame["source"]) + list(frame["target"])
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    specials = ["<pad>", "</s>", "<unk>"]
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=160, special_tokens=specials))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(folder)
    common = {"vocab_size": len(fast), "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0}
    if arch == "t5":
        config = T5Config(d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2, **common)
        model = T5ForConditionalGeneration(config)
    else:
        config = BartConfig(
            d_model=32,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            max_position_embeddings=max_positions,
            bos_token_id=None,
            forced_eos_token_id=1,
            **{**common, "decoder_start_token_id": 1},  # BART starts decoding from </s>
        )
        model = BartForConditionalGeneration(config)
    model.save_pretrained(folder)
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


# ------------------------------------------------------------------------------------------------ vision

# Class -> (colour, shape): a tiny model tells them apart in a few steps, with or without augmentation.
IMAGE_CLASSES = {"red_square": ((210, 40, 40), "square"), "blue_disk": ((40, 60, 210), "disk")}


def make_image(colour: tuple[int, int, int], shape: str, seed: int, size: int = 32, mode: str = "RGB"):
    """A ``size``-pixel image: a ``shape`` of ``colour`` on a noisy grey background (seeded)."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    pixels = rng.integers(90, 150, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    low, high = int(rng.integers(3, 8)), int(rng.integers(size - 8, size - 3))
    box = (low, low, high, high)
    if shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.ellipse(box, fill=colour)
    return image.convert(mode) if mode != "RGB" else image


def make_image_folder(root: Path, per_class: int = 12, seed: int = 0, ext: str = "png") -> Path:
    """``root/<class>/<i>.<ext>`` for every class of ``IMAGE_CLASSES``; returns ``root``."""
    for k, (name, (colour, shape)) in enumerate(IMAGE_CLASSES.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            make_image(colour, shape, seed * 10_000 + k * 1000 + i).save(folder / f"{i}.{ext}")
    return root


def make_redness_images(root: Path, rows: int = 40, seed: int = 0) -> list[dict]:
    """Images whose ``redness`` (0..1, the target) sets the red/blue mix of the shape; returns metadata records.

    Written as ``root/images/<i>.png``; the records hold ``file_name`` (relative to ``root``), ``redness`` and
    ``blueness`` (1 - redness), the metadata.jsonl shape.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(rows):
        t = float(rng.uniform(0, 1))
        colour = (int(40 + 180 * t), 40, int(40 + 180 * (1 - t)))
        make_image(colour, "square", seed * 10_000 + i).save(root / "images" / f"{i}.png")
        records.append({"file_name": f"images/{i}.png", "redness": round(t, 4), "blueness": round(1 - t, 4)})
    return records


def build_tiny_vit(folder: Path) -> str:
    """A 2-layer, 32-wide ViT for 32x32 images (8x8 patches) and its image processor, saved to ``folder`` (seeded)."""
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder.mkdir(parents=True, exist_ok=True)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        ViTModel(config, add_pooling_layer=False).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


def build_tiny_convnext(folder: Path) -> str:
    """A 2-stage ConvNeXt (16/32 channels) and its image processor (32-pixel shortest edge), saved (seeded)."""
    import torch
    from transformers import ConvNextConfig, ConvNextImageProcessor, ConvNextModel

    folder.mkdir(parents=True, exist_ok=True)
    config = ConvNextConfig(num_stages=2, hidden_sizes=[16, 32], depths=[1, 1], patch_size=4)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        ConvNextModel(config).save_pretrained(folder)
    ConvNextImageProcessor(size={"shortest_edge": 32}).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory) -> str:
    """The tiny ViT (``build_tiny_vit``)."""
    return build_tiny_vit(tmp_path_factory.mktemp("tiny-vit"))


@pytest.fixture(scope="session")
def tiny_convnext(tmp_path_factory) -> str:
    """The tiny ConvNeXt (``build_tiny_convnext``)."""
    return build_tiny_convnext(tmp_path_factory.mktemp("tiny-convnext"))
