"""A tiny Llama-shaped causal LM with a byte-level BPE tokenizer trained on the fly, and generated LLM data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
FRUITS = {"apple": "red", "banana": "yellow", "lime": "green", "plum": "purple", "orange": "orange", "kiwi": "brown"}


def conversations(rows: int, seed: int = 0) -> list[list[dict]]:
    """User asks a fruit's colour; the assistant answers it: learnable in a few steps."""
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        fruit = rng.choice(list(FRUITS))
        turns = [
            {"role": "user", "content": f"what colour is the {fruit}?"},
            {"role": "assistant", "content": f"the {fruit} is {FRUITS[fruit]}."},
        ]
        if rng.random() < 0.3:
            turns.insert(0, {"role": "system", "content": "answer briefly."})
        out.append(turns)
    return out


def preference_rows(rows: int, seed: int = 0) -> list[dict]:
    """Chosen = the right colour, rejected = a wrong one."""
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        fruit = rng.choice(list(FRUITS))
        wrong = rng.choice([c for c in FRUITS.values() if c != FRUITS[fruit]])
        out.append(
            {
                "prompt": f"what colour is the {fruit}?",
                "chosen": f"the {fruit} is {FRUITS[fruit]}.",
                "rejected": f"the {fruit} is {wrong}.",
            }
        )
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def build_tiny_llama(folder: Path, with_template: bool = True) -> str:
    """Build the tiny Llama into ``folder`` (also used by scripts/reference_configs.py); returns the folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = [t["content"] for conv in conversations(300) for t in conv] + ["what colour is the"] * 20
    corpus += [" ".join(FRUITS) + " " + " ".join(FRUITS.values()) + " answer briefly assistant user system"] * 20
    specials = ["<|endoftext|>", "<pad>"] + (["<|im_start|>", "<|im_end|>"] if with_template else [])
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>" if with_template else "<|endoftext|>",
        pad_token="<pad>",
        bos_token="<|endoftext|>",
    )
    if with_template:
        fast.chat_template = CHATML
    fast.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=fast.bos_token_id,
    )
    import torch

    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> str:
    """Tiny Llama whose tokenizer has a ChatML template (EOS = <|im_end|>)."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), with_template=True)


@pytest.fixture(scope="session")
def tiny_llama_plain(tmp_path_factory) -> str:
    """The same shape with a template-less tokenizer (EOS = <|endoftext|>)."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-plain"), with_template=False)


PEFT_KEYS = {"peft": "enabled", "lora_r": "r", "target_modules": "target_modules", "merge_adapter": "merge_adapter"}


def llm_config(task: str, model: str, source: Path, out: Path, **params) -> dict:
    """A fast config: 2 epochs, eval split, small blocks, no checkpoints; LoRA keywords go to the ``peft:`` section."""
    peft = dict(params.pop("peft")) if isinstance(params.get("peft"), dict) else {}
    peft.update({PEFT_KEYS[k]: params.pop(k) for k in list(params) if k in PEFT_KEYS})
    return {
        "peft": peft,
        "task": task,
        "model": {"name": model},
        "data": {"source": str(source), "eval_fraction": 0.2},
        "training": {
            "num_train_epochs": 2,
            "learning_rate": 5e-3,
            "per_device_train_batch_size": 8,
            "logging_steps": 1,
            "eval_strategy": "epoch",
            "warmup_ratio": 0.0,
        },
        "params": {"block_size": 64, **params},
        "output": {"dir": str(out), "report_to": ["none"], "save_checkpoints": False},
    }
