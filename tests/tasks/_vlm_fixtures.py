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


# Idefics3's chat shape ("User: ...<end_of_utterance>"), its image placeholder expanded by its processor.
IDEFICS3_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | capitalize }}:{% if message['content'] is string %}"
    "{{ ' ' + message['content'] }}{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "{{ '<image>' }}{% elif part['type'] == 'text' %}{{ ' ' + part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def build_tiny_idefics3(folder: Path) -> str:
    """A tiny random Idefics3 (SmolVLM's architecture): 32-pixel images in 8-pixel patches, pixel shuffle by 2
    (4 image tokens), a 2-layer Llama; its processor without image splitting. Saved to ``folder`` (seeded)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3Processor,
        Idefics3VisionConfig,
        LlamaConfig,
        PreTrainedTokenizerFast,
    )
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<pad>", "<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    learner = trainers.BpeTrainer(
        vocab_size=320, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(make_vlm_data.corpus(), learner)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<end_of_utterance>", pad_token="<pad>"
    )
    images = Idefics3ImageProcessorPil(
        size={"longest_edge": 32}, max_image_size={"longest_edge": 32}, do_image_splitting=False
    )
    Idefics3Processor(images, tokenizer, image_seq_len=4, chat_template=IDEFICS3_TEMPLATE).save_pretrained(folder)
    vision = Idefics3VisionConfig(
        image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = Idefics3Config(
        vision_config=vision.to_dict(),
        text_config=text.to_dict(),
        scale_factor=2,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        Idefics3ForConditionalGeneration(config).save_pretrained(folder)
    return str(folder)


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
