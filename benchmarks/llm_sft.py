"""SFT throughput: trainforge ``llm_sft`` vs a plain TRL ``SFTTrainer`` script configured as the reference does it.

The reference (AutoTrain ``llm-sft``) renders chats to text, packs by concatenate-and-cut (TRL ``wrapped``) with
gradient checkpointing on, and trains LoRA r16 on all linear layers. trainforge runs its defaults for the same
model, data, LoRA and sequence length: best-fit padding-free packing, checkpointing off, assistant-only loss.
Each variant runs in its own process (clean peak memory); real (non-padding) tokens are counted at the model's input.

    python benchmarks/llm_sft.py                                   # CPU: a small random Llama built on the fly
    python benchmarks/llm_sft.py --model /path/or/hub-id --seq-len 2048 --batch-size 2 --steps 10   # GPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "llm_sft" / "data" / "chat.jsonl"


def small_model(folder: Path, hidden: int = 256, layers: int = 4, vocab: int = 0) -> str:
    """A random Llama (default 4 layers, 256 wide) with ChatML special tokens and a byte-level BPE tokenizer.

    ``vocab`` > tokenizer size pads the embedding/LM-head rows, to cost what a real 128k vocabulary costs.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = [t["content"] for row in _chats() for t in row["messages"]]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=2000, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    fast.save_pretrained(folder)
    heads = max(4, hidden // 64)
    config = LlamaConfig(
        vocab_size=max(len(fast), vocab),
        hidden_size=hidden,
        intermediate_size=int(hidden * 2.6875) // 16 * 16,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 4) if hidden > 256 else heads,
        max_position_embeddings=4096,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    if hidden >= 1024:  # a GPU-sized model: store bf16 weights (both variants train in bf16 on CUDA)
        import torch

        model = model.to(torch.bfloat16)
    model.save_pretrained(folder)
    return str(folder)


def _chats() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]


class TokenCounter:
    """Forward pre-hook counting real tokens: attention-mask ones, or every id when padding-free."""

    def __init__(self):
        self.tokens = 0
        self.enabled = True

    def __call__(self, module, args, kwargs):
        if not (self.enabled and module.training):
            return
        mask = kwargs.get("attention_mask")
        ids = kwargs.get("input_ids")
        self.tokens += int(mask.sum()) if mask is not None else int(ids.numel())


def _peak_gib() -> float:
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def run_reference(args, data_file: Path) -> dict:
    """The reference's SFT setup in plain TRL."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    texts = [tokenizer.apply_chat_template(r["messages"], tokenize=False) for r in _read(data_file)]
    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16 if cuda else torch.float32)
    config = SFTConfig(
        output_dir=tempfile.mkdtemp(),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        learning_rate=2e-4,
        max_length=args.seq_len,
        packing=True,
        packing_strategy="wrapped",
        gradient_checkpointing=True,
        bf16=cuda,
        use_cpu=not cuda,
        report_to="none",
        save_strategy="no",
        logging_steps=1000,
        disable_tqdm=True,
    )
    peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_dict({"text": texts}),
        processing_class=tokenizer,
        peft_config=peft,
    )
    return _timed(trainer)


def run_trainforge(args, data_file: Path) -> dict:
    """trainforge's llm_sft with its defaults for the same model, data, LoRA and length."""
    import trainforge.sdk
    from trainforge.tasks.llm import sft

    captured = {}
    original = sft.make_trainer

    def make_trainer(*a, **k):
        captured["trainer"] = trainer = original(*a, **k)
        captured["counter"] = _attach(trainer)
        trainer.train = _timing(trainer.train, captured)
        return trainer

    object.__setattr__(sft.SPEC, "make_trainer", make_trainer)  # frozen spec: wrap its factory for this process only
    config = {
        "task": "llm_sft",
        "model": {"name": args.model},
        "data": {"source": str(data_file), "eval_fraction": 0},
        "training": {
            "max_steps": args.steps,
            "per_device_train_batch_size": args.batch_size,
            "gradient_accumulation_steps": args.grad_accum,
            "learning_rate": 2e-4,
            "logging_steps": 1000,
            "early_stopping_patience": None,
        },
        "params": {"peft": True, "block_size": args.seq_len, "packing": True, **_overrides(args.tf_param)},
        "output": {"dir": tempfile.mkdtemp() + "/run", "report_to": ["none"], "save_checkpoints": False},
    }
    trainforge.sdk.train(config)
    return captured["result"]


def _overrides(pairs: list[str]) -> dict:
    """``--tf-param key=value`` (value parsed as YAML) for trainforge's params."""
    import yaml

    return {k: yaml.safe_load(v) for k, _, v in (p.partition("=") for p in pairs)}


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _attach(trainer) -> TokenCounter:
    counter = TokenCounter()
    trainer.model.register_forward_pre_hook(counter, with_kwargs=True)
    return counter


def _timing(train, captured):
    def timed(*a, **k):
        start = time.perf_counter()
        output = train(*a, **k)
        seconds = time.perf_counter() - start
        tokens = captured["counter"].tokens
        captured["result"] = {
            "tokens": tokens,
            "seconds": seconds,
            "tokens_per_s": tokens / seconds,
            "peak_gib": _peak_gib(),
        }
        return output

    return timed


def _timed(trainer) -> dict:
    counter = _attach(trainer)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return {
        "tokens": counter.tokens,
        "seconds": seconds,
        "tokens_per_s": counter.tokens / seconds,
        "peak_gib": _peak_gib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Hub id or folder (default: a small random Llama built on the fly)")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--hidden-size", type=int, default=256, help="width of the model built on the fly")
    parser.add_argument("--layers", type=int, default=4, help="layers of the model built on the fly")
    parser.add_argument("--vocab-size", type=int, default=0, help="pad the built model's vocabulary to this size")
    parser.add_argument("--repeat-data", type=int, default=8, help="repeat the 200 example chats this many times")
    parser.add_argument("--tf-param", action="append", default=[], help="extra trainforge param, key=value")
    parser.add_argument("--variant", choices=["trainforge", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--data-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.variant:
        run = run_trainforge if args.variant == "trainforge" else run_reference
        print("RESULT " + json.dumps(run(args, Path(args.data_file))))
        return
    work = Path(tempfile.mkdtemp())
    if not args.model:
        args.model = small_model(work / "model", args.hidden_size, args.layers, args.vocab_size)
    data_file = work / "chat.jsonl"
    data_file.write_text("".join(json.dumps(r) + "\n" for r in _chats() * args.repeat_data), encoding="utf-8")
    results = {}
    for variant in ("reference", "trainforge"):
        command = [
            sys.executable,
            __file__,
            "--variant",
            variant,
            "--data-file",
            str(data_file),
            "--model",
            args.model,
            "--seq-len",
            str(args.seq_len),
            "--batch-size",
            str(args.batch_size),
            "--grad-accum",
            str(args.grad_accum),
            "--steps",
            str(args.steps),
            *[a for p in args.tf_param for a in ("--tf-param", p)],
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results[variant] = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
        r = results[variant]
        print(
            f"{variant:11} {r['tokens_per_s']:10.0f} real tokens/s  peak {r['peak_gib']:.2f} GiB  "
            f"({r['tokens']} tokens, {r['seconds']:.1f}s)"
        )
    ratio = results["trainforge"]["tokens_per_s"] / results["reference"]["tokens_per_s"]
    print(f"ratio trainforge / reference: {ratio:.2f}x tokens/s")


if __name__ == "__main__":
    main()
