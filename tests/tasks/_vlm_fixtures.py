"""The tiny random LLaVA and the coloured-shape caption/VQA data of the vlm tests (built by examples/make_vlm_data.py).

The model is the example's: a 2-layer CLIP vision tower on 32-pixel images and a 2-layer, 32-wide Llama, seeded,
with a byte-level BPE tokenizer trained on the shapes' texts, a ChatML template and a CLIP image processor.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("make_vlm_data", ROOT / "examples" / "make_vlm_data.py")
assert _spec is not None and _spec.loader is not None
make_vlm_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_vlm_data)

build_tiny_llava = make_vlm_data.build_tiny_llava
write_split = make_vlm_data.write_split
draw = make_vlm_data.draw
TEMPLATE = make_vlm_data.TEMPLATE


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory) -> str:
    """The tiny LLaVA (``build_tiny_llava``), saved with its processor."""
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="session")
def shapes(tmp_path_factory) -> Path:
    """``train/`` (48 rows), ``validation/`` (16) and ``test/`` (8) folders of shape images with metadata.jsonl."""
    root = tmp_path_factory.mktemp("shapes")
    write_split(root / "train", 48, seed=1)
    write_split(root / "validation", 16, seed=2)
    write_split(root / "test", 8, seed=3)
    return root


def chat_rows(folder: Path) -> list[dict]:
    """The split's rows as chats: the question in a user turn (structured parts, one image part), the answer last."""
    records = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    return [
        {
            "file_name": r["file_name"],
            "messages": [
                {"role": "system", "content": "answer in one word."},
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": r["question"]}]},
                {"role": "assistant", "content": r["answer"]},
            ],
        }
        for r in records
    ]
