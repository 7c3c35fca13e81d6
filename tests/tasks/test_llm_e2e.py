"""End to end on a tiny Llama: every LLM task trains with an eval split, saves, reloads and generates/scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _llm_fixtures import conversations, llm_config, preference_rows, tiny_llama, write_jsonl  # noqa: F401

import trainforge
from trainforge.cli.main import main


def _losses(run_dir: Path) -> list[float]:
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return [e["loss"] for e in events if e["event"] == "step" and "loss" in e]


def _assert_learned(run_dir: Path, metrics: dict) -> None:
    losses = _losses(run_dir)
    assert len(losses) >= 4 and all(map(lambda v: v == v and abs(v) < 1e4, losses))
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2, losses
    assert (run_dir / "metrics.json").is_file() and (run_dir / "config.resolved.yaml").is_file()
    assert (run_dir / "README.md").is_file() and (run_dir / "tokenizer_config.json").is_file()
    assert all(v == v for v in metrics.values() if isinstance(v, float))


def _adapter_changed(run_dir: Path) -> None:
    from safetensors.torch import load_file

    weights = load_file(str(run_dir / "adapter_model.safetensors"))
    lora_b = [t for name, t in weights.items() if "lora_B" in name]
    assert lora_b and any(float(t.abs().sum()) > 0 for t in lora_b)  # LoRA B starts at zero: non-zero means trained


def test_sft_lora_merge_reload_chat_predict(tiny_llama, tmp_path, capsys):  # noqa: F811
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = write_jsonl(tmp_path / "chat.jsonl", [{"messages": c} for c in conversations(48)])
    config = llm_config("llm_sft", tiny_llama, data, tmp_path / "run", peft=True, merge_adapter=True)
    result = trainforge.train(config)
    run_dir = result.output_dir
    _assert_learned(run_dir, result.metrics)
    assert result.metrics["eval_perplexity"] > 1 and "eval_loss" in result.metrics
    _adapter_changed(run_dir)
    card = (run_dir / "README.md").read_text()
    assert "LoRA adapter" in card and "PeftModel.from_pretrained" in card and f"{run_dir}/merged" in card
    assert "Labels:" not in card and "base_model" not in card.split("---")[1]  # the base is a local folder
    # The merged model loads in plain transformers and generates exactly what base + adapter generates.
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "merged")
    merged = AutoModelForCausalLM.from_pretrained(run_dir / "merged").eval()
    from trainforge.config.loading import load_config
    from trainforge.tasks.llm._inference import generate, load_run

    run_config = load_config(run_dir / "config.resolved.yaml")
    (run_dir / "merged").rename(run_dir / "merged_aside")
    adapter_model, _ = load_run(run_dir, run_config)
    (run_dir / "merged_aside").rename(run_dir / "merged")
    prompt = [{"role": "user", "content": "what colour is the lime?"}]
    with torch.inference_mode():
        a = generate(merged, tokenizer, [prompt], 12, 0.0, 1.0)
        b = generate(adapter_model, tokenizer, [prompt], 12, 0.0, 1.0)
    assert a == b
    assert merged.generation_config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    # chat one-shot and predict through the CLI
    assert main(["chat", str(run_dir), "--prompt", "what colour is the plum?", "--max-new-tokens", "8"]) == 0
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "what colour is the kiwi?"}, {"prompt": "hi"}])
    out = tmp_path / "out.jsonl"
    assert (
        main(
            [
                "predict",
                str(run_dir),
                "--input",
                str(prompts),
                "--output",
                str(out),
                "--set",
                "params.max_new_tokens=5",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(isinstance(r["generation"], str) for r in rows)


def test_sft_full_finetune_prompt_completion(tiny_llama, tmp_path):  # noqa: F811
    from transformers import AutoModelForCausalLM

    rows = [{"prompt": c[-2]["content"], "completion": c[-1]["content"]} for c in conversations(40)]
    data = write_jsonl(tmp_path / "pc.jsonl", rows)
    config = llm_config("llm_sft", tiny_llama, data, tmp_path / "run", packing=True)
    result = trainforge.train(config)
    _assert_learned(result.output_dir, result.metrics)
    before = AutoModelForCausalLM.from_pretrained(tiny_llama)
    after = AutoModelForCausalLM.from_pretrained(result.output_dir)
    assert any((p1 - p2).abs().sum() > 0 for p1, p2 in zip(before.parameters(), after.parameters(), strict=True))


def test_generic_blocks(tiny_llama, tmp_path):  # noqa: F811
    rows = [{"text": " ".join(t["content"] for t in c)} for c in conversations(60)]
    data = write_jsonl(tmp_path / "corpus.jsonl", rows)
    result = trainforge.train(llm_config("llm_generic", tiny_llama, data, tmp_path / "run", peft=True, block_size=32))
    _assert_learned(result.output_dir, result.metrics)
    _adapter_changed(result.output_dir)
    assert result.metrics["eval_perplexity"] > 1


@pytest.mark.parametrize("task", ["llm_dpo", "llm_orpo"])
def test_preference_alignment(task, tiny_llama, tmp_path):  # noqa: F811
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows(48))
    config = llm_config(task, tiny_llama, data, tmp_path / "run", peft=True)
    result = trainforge.train(config)
    _assert_learned(result.output_dir, result.metrics)
    _adapter_changed(result.output_dir)
    assert 0.0 <= result.metrics["eval_rewards/accuracies"] <= 1.0 and "eval_rewards/margins" in result.metrics
    frame = trainforge.sdk.predict(
        result.output_dir, write_jsonl(tmp_path / "p.jsonl", [{"prompt": "what colour is the apple?"}])
    )
    assert isinstance(frame["generation"][0], str)


def test_reward_model(tiny_llama, tmp_path):  # noqa: F811
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows(48))
    result = trainforge.train(llm_config("llm_reward", tiny_llama, data, tmp_path / "run", peft=True))
    _assert_learned(result.output_dir, result.metrics)
    assert 0.0 <= result.metrics["eval_accuracy"] <= 1.0 and "eval_margin" in result.metrics
    rows = [{"prompt": "what colour is the apple?", "completion": "the apple is red."}]
    frame = trainforge.sdk.predict(result.output_dir, write_jsonl(tmp_path / "s.jsonl", rows))
    assert isinstance(frame["score"][0], float)
