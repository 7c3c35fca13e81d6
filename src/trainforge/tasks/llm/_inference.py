"""Finished LLM runs: merging the adapter, loading the run back, batched generation, ``predict`` and ``chat``."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from trainforge.errors import DataError, RunDirError

MERGED_DIR = "merged"

# ---------------------------------------------------------------------------------------------------- saving


def finish_generation_config(model, tokenizer) -> None:
    """Generation stops at the run's EOS (the token that closes assistant turns) and pads with its pad token."""
    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(target, "generation_config", None) is not None:
        target.generation_config.eos_token_id = tokenizer.eos_token_id
        target.generation_config.pad_token_id = tokenizer.pad_token_id


def merge_adapter(model, tokenizer, config, run_dir: Path) -> Path:
    """Write the adapter merged into the base as a full model in ``run_dir/merged`` (base dtype, sharded safetensors).

    Without quantization the trained model is merged in place (no second copy). A quantized (QLoRA) base is
    reloaded unquantized on the CPU first, because merging into 4/8-bit weights would lose precision.
    """
    from peft import PeftModel

    from trainforge.tasks.llm._shared import load_base_model

    if config.params.quantization:
        base = load_base_model(config, vocab_size=len(tokenizer), quantize=False)
        model = PeftModel.from_pretrained(base, str(run_dir))
    merged = model.merge_and_unload()
    dtype = getattr(merged.config, "dtype", None)
    if dtype is not None and merged.dtype != dtype:
        merged = merged.to(dtype)  # back to the base's own dtype (training may have upcast it)
    finish_generation_config(merged, tokenizer)
    folder = run_dir / MERGED_DIR
    merged.save_pretrained(str(folder), max_shard_size="2GB")
    tokenizer.save_pretrained(str(folder))
    return folder


# ---------------------------------------------------------------------------------------------------- loading


def load_run(run_dir: Path, config, head: str = "causal_lm"):
    """``(model, tokenizer)`` of a finished run: the merged model, the full model, or base + adapter."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    run_dir = Path(run_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(run_dir))
    auto = AutoModelForCausalLM if head == "causal_lm" else AutoModelForSequenceClassification
    if (run_dir / MERGED_DIR / "config.json").is_file():
        model = auto.from_pretrained(str(run_dir / MERGED_DIR))
    elif (run_dir / "adapter_config.json").is_file():
        from peft import PeftModel

        from trainforge.tasks.llm._shared import load_base_model

        base = load_base_model(config, vocab_size=len(tokenizer), head=head, quantize=torch.cuda.is_available())
        model = PeftModel.from_pretrained(base, str(run_dir))
    elif (run_dir / "config.json").is_file():
        model = auto.from_pretrained(str(run_dir))
    else:
        raise RunDirError(f"{run_dir} holds no model (no config.json, adapter_config.json or {MERGED_DIR}/)")
    if torch.cuda.is_available():
        model = model.to("cuda")
    return model.eval(), tokenizer


def prompt_ids(tokenizer, prompt) -> list[int]:
    """Token ids of a prompt (a string or a list of turns) as the run was trained: templated when it has one."""
    if tokenizer.chat_template:
        turns = prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
        text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    if isinstance(prompt, list):
        raise DataError("this run was trained without a chat template: give plain-text prompts, not lists of turns")
    return tokenizer(str(prompt))["input_ids"]


def generate(
    model, tokenizer, prompts: list, max_new_tokens: int, temperature: float, top_p: float, batch_size: int = 8
) -> list[str]:
    """Answers to ``prompts`` (left-padded batches), each stopping at EOS, special tokens removed."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
    )
    answers = []
    for start in range(0, len(prompts), batch_size):
        batch = [prompt_ids(tokenizer, p) for p in prompts[start : start + batch_size]]
        width = max(len(ids) for ids in batch)
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=model.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=model.device)
        with torch.inference_mode():
            output = model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=pad,
                **sampling,
            )
        answers += tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
    return [answer.strip() for answer in answers]


# ---------------------------------------------------------------------------------------------------- predict


def _prompts(frame: pd.DataFrame) -> list:
    """Each row's prompt: its messages (list of turns or JSON), else its prompt, else its text."""
    from trainforge.tasks.llm._data import _missing, _parse

    columns = [c for c in ("messages", "prompt", "text") if c in frame]
    if not columns:
        raise DataError(
            f"the input needs a prompt, messages or text column; found: {', '.join(map(str, frame.columns))}"
        )
    prompts = []
    for position, (_, row) in enumerate(frame.iterrows()):
        value = next((row[c] for c in columns if not _missing(row[c])), None)
        if value is None:
            raise DataError(f"input row {position + 1} has no prompt (columns {', '.join(columns)} are all empty)")
        prompts.append(_parse(value))
    return prompts


def predict_generate(run_dir: Path, frame: pd.DataFrame, config) -> pd.DataFrame:
    """Add a ``generation`` column: the answer to each row's prompt (params max_new_tokens, temperature, top_p)."""
    params = config.params
    model, tokenizer = load_run(run_dir, config)
    out = frame.copy()
    out["generation"] = generate(
        model, tokenizer, _prompts(frame), params.max_new_tokens, params.temperature, params.top_p
    )
    return out


def predict_score(run_dir: Path, frame: pd.DataFrame, config) -> pd.DataFrame:
    """Add a ``score`` column: the reward model's scalar for prompt + completion (or text) in each row."""
    import torch

    model, tokenizer = load_run(run_dir, config, head="seq_cls")
    if "text" in frame:
        texts = frame["text"].astype(str).tolist()
    elif {"prompt", "completion"} <= set(frame.columns):
        texts = [_scored_text(tokenizer, p, c) for p, c in zip(frame["prompt"], frame["completion"], strict=True)]
    else:
        raise DataError(
            "the input needs a text column or prompt + completion columns; "
            f"found: {', '.join(map(str, frame.columns))}"
        )
    scores = []
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=config.params.block_size).to(
                model.device
            )
            scores.append(float(model(**ids).logits[0, 0]))
    out = frame.copy()
    out["score"] = scores
    return out


def _scored_text(tokenizer, prompt: str, completion: str) -> str:
    if tokenizer.chat_template:
        turns = [{"role": "user", "content": str(prompt)}, {"role": "assistant", "content": str(completion)}]
        return tokenizer.apply_chat_template(turns, tokenize=False)
    return str(prompt) + str(completion) + (tokenizer.eos_token or "")


# ---------------------------------------------------------------------------------------------------- chat


def chat(
    run_dir: Path, prompt: str | None, system: str | None, overrides: dict, stream_in=None, stream_out=None
) -> int:
    """One answer to ``prompt``, or a conversation read line by line (interactive on a terminal)."""
    stream_in = stream_in or sys.stdin
    stream_out = stream_out or sys.stdout
    config = _finished_config(Path(run_dir))
    if config.task == "llm_reward":
        raise RunDirError(
            f"{run_dir} is a reward model (it scores texts); use `trainforge predict` on prompt/completion rows"
        )
    params = config.params
    settings = {
        k: overrides.get(k) if overrides.get(k) is not None else getattr(params, k)
        for k in ("max_new_tokens", "temperature", "top_p")
    }
    model, tokenizer = load_run(Path(run_dir), config)
    history = [{"role": "system", "content": system}] if system else []

    def answer(text: str) -> str:
        turns = history + [{"role": "user", "content": text}]
        reply = generate(model, tokenizer, [turns if tokenizer.chat_template else text], **settings)[0]
        if tokenizer.chat_template:
            history.extend([{"role": "user", "content": text}, {"role": "assistant", "content": reply}])
        return reply

    if prompt is not None:
        print(answer(prompt), file=stream_out)
        return 0
    interactive = stream_in.isatty()
    if interactive:
        print(f"chatting with {run_dir} (empty line or Ctrl-D to quit)", file=sys.stderr)
    while True:
        if interactive:
            print("you> ", end="", file=sys.stderr, flush=True)
        line = stream_in.readline()
        if not line or (interactive and not line.strip()):
            return 0
        if line.strip():
            print(("bot> " if interactive else "") + answer(line.rstrip("\n")), file=stream_out, flush=True)


def _finished_config(run_dir: Path):
    from trainforge.config.loading import load_config

    if not (run_dir / "config.resolved.yaml").is_file():
        raise RunDirError(f"{run_dir} is not a trainforge run directory (no config.resolved.yaml)")
    if not (run_dir / "metrics.json").is_file():
        raise RunDirError(f"{run_dir} holds no finished run (no metrics.json): train it to the end first")
    return load_config(run_dir / "config.resolved.yaml")
