"""vlm end to end on a tiny random LLaVA: captions, VQA with LoRA, chat rows, the reference's config, COCO captions.

Every run checks a finite falling loss and changed weights, and the run folder loads with plain transformers
(``AutoModelForImageTextToText`` + ``AutoProcessor``) and generates; predict and ``chat --image`` answer.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import _vlm_fixtures as fx
import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file

import trainforge
from conftest import SHARED_DATA
from trainforge.cli.main import main
from trainforge.training.events import read_events

COCO = SHARED_DATA / "captions_coco"
tiny_vlm, shapes = fx.tiny_vlm, fx.shapes  # the session fixtures (tests/tasks/_vlm_fixtures.py), seen by pytest here


def config(model: str, source: Path, out: Path, **sections) -> dict:
    """A fast config: 2 epochs of batch 8 at a high learning rate, a loss every step, 4 generated answers."""
    base = {
        "task": "vlm",
        "model": {"name": model},
        "data": {"source": str(source), "eval_split": "validation"},
        "training": {
            "num_train_epochs": 2,
            "learning_rate": 1e-2,
            "per_device_train_batch_size": 8,
            "logging_steps": 1,
            "warmup_ratio": 0.0,
        },
        "params": {"eval_generate_rows": 4, "max_new_tokens": 6},
        "output": {"dir": str(out), "report_to": ["none"], "save_checkpoints": False},
    }
    for section, values in sections.items():
        base[section] = {**base.get(section, {}), **values}
    return base


def losses(run_dir: Path) -> tuple[list[float], list[float]]:
    """The training losses logged at each step and the evaluation losses, in order."""
    events = read_events(run_dir / "events.jsonl")
    steps = [e["loss"] for e in events if e["event"] == "step"]
    evals = [e["metrics"]["loss"] for e in events if e["event"] == "eval"]  # a KeyError: an eval without its loss
    return steps, evals


def assert_learns(run_dir: Path) -> None:
    steps, evals = losses(run_dir)
    assert len(steps) >= 6 and all(math.isfinite(x) for x in steps)
    assert np.mean(steps[-3:]) < np.mean(steps[:3]) - 0.1, f"loss did not fall: {steps}"
    assert len(evals) >= 2 and evals[-1] < evals[0], f"eval loss did not fall: {evals}"


def changed(base: str, run_dir: Path) -> tuple[set[str], set[str]]:
    """(names of tensors that changed, names that did not) between the base model and the run's."""
    before, after = load_file(str(Path(base) / "model.safetensors")), load_file(str(run_dir / "model.safetensors"))
    assert set(before) == set(after), "the saved model's tensors differ from the base's"
    moved = {k for k in before if not np.array_equal(before[k], after[k])}
    return moved, set(before) - moved


def generate_plain(run_dir: Path, image_path: Path, prompt: str) -> str:
    """Load the run with plain transformers (no trainforge) and answer one image, greedily."""
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(run_dir).eval()
    processor = AutoProcessor.from_pretrained(run_dir)
    turns = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(turns, add_generation_prompt=True)
    inputs = processor(images=[Image.open(image_path).convert("RGB")], text=[text], return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    return processor.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


# ------------------------------------------------------------------------------------------------ labels


def test_labels_cover_the_answer_tokens_only(tiny_vlm, shapes):
    from transformers import AutoProcessor

    from trainforge.data import vision_text as vt

    processor = AutoProcessor.from_pretrained(tiny_vlm)
    image = str(shapes / "train" / "images" / "0.png")
    short = [{"role": "user", "content": "Describe the image."}]
    chat = [
        {"role": "system", "content": "answer in one word."},
        {"role": "user", "content": [{"type": "text", "text": "what shape is it?"}, {"type": "image"}]},
    ]
    rows = [
        {"image": image, "prompt": vt.as_json(prompt), "completion": vt.as_json([{"role": "assistant", "content": a}])}
        for prompt, a in ((short, "a red disk"), (chat, "disk"))
    ]
    batch = vt.VisionTextCollator(processor)(rows)
    tokenizer, image_id = processor.tokenizer, tokenizer_id(processor, "<image>")
    for row, answer in enumerate(["a red disk", "disk"]):
        ids, labels = batch["input_ids"][row], batch["labels"][row]
        trained = ids[labels != -100]
        assert tokenizer.decode(trained) == f"{answer}<|im_end|>\n"  # the answer and the turn's end, nothing else
        assert (labels[ids == image_id] == -100).all() and int((ids == image_id).sum()) == 16
        assert (labels[batch["attention_mask"][row] == 0] == -100).all()  # no loss on padding
        assert (labels[labels != -100] == ids[labels != -100]).all()
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    # The image sits where the chat row's part put it (after the question), before the first user text otherwise.
    text = tokenizer.decode(batch["input_ids"][1][batch["attention_mask"][1] == 1])
    assert text.index("what shape is it?") < text.index("<image>")


def tokenizer_id(processor, token: str) -> int:
    return processor.tokenizer.convert_tokens_to_ids(token)


# ------------------------------------------------------------------------------------------------ captioning


@pytest.fixture(scope="module")
def caption_run(tiny_vlm, shapes, tmp_path_factory):
    """Full fine-tuning on captions (no prompt column: params.prompt), with a test split."""
    out = tmp_path_factory.mktemp("caption-run") / "run"
    data = {"columns": {"answer": "caption"}, "test_split": "test"}
    return trainforge.train(config(tiny_vlm, shapes, out, data=data))


def test_captioning_learns_and_freezes_the_vision_tower(caption_run, tiny_vlm):
    run_dir = caption_run.output_dir
    assert_learns(run_dir)
    moved, kept = changed(tiny_vlm, run_dir)
    assert kept and all("vision_tower" in k for k in kept), f"frozen weights outside the vision tower: {kept}"
    assert {k for k in moved if "vision_tower" in k} == set(), "the frozen vision tower changed"
    assert any("language_model" in k for k in moved) and any("multi_modal_projector" in k for k in moved)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for prefix in ("eval", "test"):
        assert {f"{prefix}_{k}" for k in ("loss", "rougeL", "bleu", "chrf", "gen_len")} <= set(metrics)
    notes = read_events(run_dir / "events.jsonl")[0]["notes"]
    assert any("⟦a " in n and "<image>×16Describe the image." in n for n in notes), notes


def test_caption_run_reloads_with_plain_transformers_and_predicts(caption_run, shapes, tmp_path, capsys):
    run_dir = caption_run.output_dir
    image = shapes / "validation" / "images" / "0.png"
    answer = generate_plain(run_dir, image, "Describe the image.")
    assert isinstance(answer, str)
    frame = trainforge.predict(run_dir, _table(tmp_path, [image, image]))
    assert list(frame["generation"]) == [frame["generation"][0]] * 2  # greedy: the same image, the same answer
    assert frame["generation"][0] == answer.strip()
    capsys.readouterr()
    assert main(["chat", str(run_dir), "--image", str(image), "--prompt", "Describe the image."]) == 0
    assert capsys.readouterr().out.strip() == answer.strip()


def _table(folder: Path, images: list[Path]) -> Path:
    path = folder / "inputs.csv"
    path.write_text("image\n" + "".join(f"{p}\n" for p in images), encoding="utf-8")
    return path


def test_chat_image_refused_for_a_run_that_reads_no_images(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = {"task": "llm_sft", "model": {"name": "x"}, "data": {"source": "x.jsonl"}}
    (run_dir / "config.resolved.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (run_dir / "metrics.json").write_text("{}", encoding="utf-8")
    assert main(["chat", str(run_dir), "--image", "x.png", "--prompt", "hi"]) == 2
    assert "llm_sft run, which reads no images" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ VQA, LoRA


def test_vqa_lora_merges_into_a_plain_model(tiny_vlm, shapes, tmp_path):
    data = {"columns": {"prompt": "question"}}
    run_dir = trainforge.train(
        config(tiny_vlm, shapes, tmp_path / "run", data=data, peft={"enabled": True, "r": 8, "alpha": 16})
    ).output_dir
    assert_learns(run_dir)
    adapter = load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))
    assert adapter and not any("vision_tower" in k for k in adapter), "LoRA adapted the frozen vision tower"
    moved, _ = changed(tiny_vlm, run_dir)
    assert moved and all("language_model" in k or "multi_modal_projector" in k for k in moved), moved
    image = shapes / "validation" / "images" / "1.png"
    assert isinstance(generate_plain(run_dir, image, "what colour is the shape?"), str)


# ------------------------------------------------------------------------------------------------ Idefics3


def test_idefics3_captions_train_and_reload(shapes, tmp_path):
    """The same code on another architecture (SmolVLM's): its processor adds image-boundary tokens and a pixel mask."""
    model = fx.build_tiny_idefics3(tmp_path / "idefics3")
    cfg = config(model, shapes, tmp_path / "run", data={"columns": {"answer": "caption"}})
    run_dir = trainforge.train(cfg).output_dir
    assert_learns(run_dir)
    moved, kept = changed(model, run_dir)
    assert kept and all("vision_model" in k for k in kept) and not any("vision_model" in k for k in moved)
    notes = read_events(run_dir / "events.jsonl")[0]["notes"]
    assert any("<fake_token_around_image><global-img><image>×4<fake_token_around_image>" in n for n in notes)
    assert isinstance(generate_plain(run_dir, shapes / "validation" / "images" / "0.png", "Describe the image."), str)


# ------------------------------------------------------------------------------------------------ chat rows


def test_chat_rows_train_the_vision_tower_when_asked(tiny_vlm, shapes, tmp_path):
    source = tmp_path / "data"
    source.mkdir()
    for split in ("train", "validation"):
        rows = fx.chat_rows(shapes / split)
        for row in rows:
            row["file_name"] = str(shapes / split / row["file_name"])
        (source / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = config(tiny_vlm, source, tmp_path / "run", params={"train_vision_tower": True, "eval_generate_rows": 0})
    result = trainforge.train(cfg)
    assert_learns(result.output_dir)
    moved, _ = changed(tiny_vlm, result.output_dir)
    assert any("vision_tower" in k for k in moved)
    assert "eval_rougeL" not in result.metrics and "eval_loss" in result.metrics
    assert "data format: messages" in read_events(result.output_dir / "events.jsonl")[0]["notes"]


# ------------------------------------------------------------------------------------------------ the reference


REFERENCE_VQA = """\
task: vlm:vqa
base_model: {model}
project_name: {out}
log: tensorboard
backend: local

data:
  path: {data}
  train_split: train
  valid_split: validation
  column_mapping:
    image_column: image
    text_column: answer
    prompt_text_column: question

params:
  epochs: 3
  batch_size: 2
  lr: 2e-5
  optimizer: adamw_torch
  scheduler: linear
  gradient_accumulation: 4
  mixed_precision: fp16
  peft: true
  quantization: int4

hub:
  username: ${{HF_USERNAME}}
  token: ${{HF_TOKEN}}
  push_to_hub: false
"""


def test_reference_vqa_config_trains_unchanged(tiny_vlm, shapes, tmp_path, monkeypatch, capsys):
    # The reference's configs/vlm/paligemma_vqa.yml but for the model, the data location and push_to_hub: false.
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "paligemma_vqa.yml"
    path.write_text(REFERENCE_VQA.format(model=tiny_vlm, out="vqa-run", data=shapes), encoding="utf-8")
    assert main(["train", str(path)]) == 0
    err = capsys.readouterr().err
    assert "as an AutoTrain config for task vlm" in err
    run_dir = tmp_path / "vqa-run"
    resolved = yaml.safe_load((run_dir / "config.resolved.yaml").read_text())
    assert resolved["data"]["columns"] == {"image": "image", "answer": "answer", "prompt": "question"}
    assert resolved["peft"]["enabled"] and resolved["training"]["gradient_accumulation_steps"] == 4
    assert (run_dir / "adapter").is_dir() and (run_dir / "tensorboard").is_dir()
    steps, evals = losses(run_dir)
    assert len(evals) == 3 and all(math.isfinite(x) for x in steps + evals)


# ------------------------------------------------------------------------------------------------ real captions


@pytest.mark.skipif(not COCO.is_dir(), reason="../shared/data/captions_coco is not here")
def test_coco_captions_eval_loss_falls(tmp_path):
    records = [json.loads(line) for line in (COCO / "metadata.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"][:64]
    test = [r for r in records if r["split"] == "test"][:16]
    for name, rows in (("train", train), ("validation", test)):
        lines = [{"image": str(COCO / r["file_name"]), "caption": r["caption"]} for r in rows]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    model = fx.build_tiny_llava(tmp_path / "model", [r["caption"] for r in train], vocab_size=600)
    cfg = config(model, tmp_path, tmp_path / "run", data={"columns": {"answer": "caption"}})
    cfg["training"].update(num_train_epochs=3, learning_rate=5e-3)
    result = trainforge.train(cfg)
    steps, evals = losses(result.output_dir)
    assert all(math.isfinite(x) for x in steps) and evals[-1] < evals[0] - 0.3, evals
    assert 0 <= result.metrics["eval_rougeL"] <= 100


# ------------------------------------------------------------------------------------------------ checkpoints


def test_resume_restores_the_checkpoint_weights(tiny_vlm, shapes, tmp_path, monkeypatch, capsys):
    """transformers 5.24 saves LLaVA under its v4 key names; the plain Trainer would resume from the base weights."""
    from trainforge.training.callbacks import EventsCallback

    training = {"max_steps": 6, "eval_strategy": "steps", "eval_steps": 2, "early_stopping_patience": None}
    cfg = config(tiny_vlm, shapes, tmp_path / "run", data={"columns": {"answer": "caption"}}, training=training)
    cfg["output"]["save_checkpoints"] = True
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")

    def crash(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise RuntimeError("simulated crash at step 3")

    monkeypatch.setattr(EventsCallback, "on_step_end", crash, raising=False)
    assert main(["train", str(path)]) == 1
    monkeypatch.undo()
    assert main(["train", str(path), "--resume"]) == 0, capsys.readouterr().err
    events = read_events(tmp_path / "run" / "events.jsonl")
    steps = [(e["step"], e["loss"]) for e in events if e["event"] == "step"]
    first, resumed = steps[0][1], [loss for step, loss in steps if step == 3][-1]
    # Restored from checkpoint-2, step 3 continues the descent; from the base weights it would start near step 1.
    assert resumed < first - 0.3, steps


def test_evaluate_scores_the_generated_captions(caption_run, shapes):
    evaluation = trainforge.evaluate(caption_run.output_dir, str(shapes), split="validation")
    assert evaluation.kind == "generation" and evaluation.rows == 16
    assert {"exact_match", "bleu", "chrf"} <= set(evaluation.metrics)
