"""Run the reference's (AutoTrain Advanced's) 36 example configs through trainforge, as its users would.

What it checks (issue 9, "AutoTrain configs: really unchanged"):

* The 26 configs of tasks trainforge implements (``configs/text_classification``, ``configs/text_regression``,
  ``configs/llm_finetuning``, ``configs/seq2seq``, ``configs/image_classification``, ``configs/image_scoring``,
  ``configs/vlm``, ``configs/object_detection``) train to a model with ``trainforge train <config>`` and nothing
  changed but three values: ``base_model`` (a tiny local model built here), ``data.path`` (a small local dataset
  generated here in the reference's layout, ``<path>/<train_split>.csv|.jsonl`` and ``<valid_split>`` when one is
  named, with the columns the config's ``column_mapping`` names, shaped like the Hub dataset the config names; image
  data as class folders, images with ``metadata.jsonl`` (detection: ``objects`` with ``bbox`` and ``category``), or a
  ``save_to_disk`` folder with an ``Image`` column (cppe-5's ``objects`` for detection)) and
  ``hub.push_to_hub: false``.
  Every other line stays byte-for-byte as the reference wrote it, ``token: ${HF_TOKEN}`` and
  ``username: ${HF_USERNAME}`` included, and both variables are unset. No dotted overrides are given.
* One of them with ``push_to_hub: true`` left as written and no token: ``trainforge train`` exits 2 naming
  ``hub.token`` before anything loads (no run directory is created).
* The 10 configs of tasks trainforge does not implement yet: ``trainforge validate`` exits 2 with a message saying
  the task is not supported yet and listing the supported tasks, both for the file exactly as written (it pushes to
  the Hub and its variables are unset) and with ``push_to_hub: false``.

The reference configs are read from its git repository with ``git show`` (never copied into this repository).
Everything is written under ``--workdir`` (emptied first when this script made it): ``models/`` (tiny BERT, T5 and
Llama with a ChatML template), ``data/``, ``configs/`` (the edited YAML files) and ``runs/`` (one working
directory per config, holding the run folder named by the config's ``project_name``). Runs use a private
``HF_HOME`` under the workdir, so a token saved on this machine by ``hf auth login`` cannot stand in for the unset
``HF_TOKEN``.

Run (about 3 minutes on two CPU cores; ``--only TEXT`` keeps the configs whose path holds TEXT)::

    HF_HUB_OFFLINE=1 python scripts/reference_configs.py --reference PATH/TO/autotrain-advanced --workdir /tmp/refcfg

It prints one row per check (config, task, result, seconds) and exits 1 if any expectation fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

IMPLEMENTED_FOLDERS = (
    "text_classification",
    "text_regression",
    "llm_finetuning",
    "seq2seq",
    "image_classification",
    "image_scoring",
    "vlm",
    "object_detection",
)
MARKER = ".reference_configs"
# The config whose push_to_hub: true is kept to check the missing-token error.
HUB_TOKEN_CONFIG = "configs/text_classification/local_dataset.yml"
TRAIN_TIMEOUT_S = 600
TAIL_LINES = 12

POSITIVE = ["good", "great", "fun", "lovely", "brilliant", "superb", "charming", "moving", "witty", "delightful"]
NEGATIVE = ["bad", "awful", "dull", "boring", "terrible", "weak", "clumsy", "tedious", "bland", "messy"]
NEUTRAL = ["the", "film", "movie", "plot", "actors", "story", "was", "is", "quite", "really", "a", "very"]
FRUITS = {"apple": "red", "banana": "yellow", "lime": "green", "plum": "purple", "orange": "orange", "kiwi": "brown"}

# Rows generated per split: enough for the reference's 20 % hold-out and a few optimizer steps, small enough that
# each run takes seconds with the tiny models.
TEXT_ROWS = {"train": 32, "valid": 16}
LLM_ROWS = {"train": 24, "valid": 8}


# ---------------------------------------------------------------------------------------------------- tiny models


def build_models(workdir: Path) -> dict[str, str]:
    """The tiny BERT, Llama (ChatML template) and T5 the project's tests build, from the same builders, by family.

    512 positions for the BERT: the reference's text configs set ``max_seq_length: 512`` (T5's are relative).
    """
    tests = Path(__file__).resolve().parents[1] / "tests"
    sys.path[:0] = [str(tests), str(tests / "tasks")]
    from _detection_fixtures import build_tiny_detector
    from _llm_fixtures import build_tiny_llama
    from _vlm_fixtures import build_tiny_llava

    from conftest import build_tiny_bert, build_tiny_convnext, build_tiny_seq2seq, build_tiny_vit

    return {
        "text": build_tiny_bert(workdir / "models" / "tiny-bert", max_positions=512),
        "llm": build_tiny_llama(workdir / "models" / "tiny-llama", with_template=True),
        "seq2seq": build_tiny_seq2seq(workdir / "models" / "tiny-t5", "t5"),
        "image": build_tiny_vit(workdir / "models" / "tiny-vit"),
        "image-cnn": build_tiny_convnext(workdir / "models" / "tiny-convnext"),  # for microsoft/resnet-50
        "vlm": build_tiny_llava(workdir / "models" / "tiny-llava"),  # for PaliGemma: a tiny LLaVA with a template
        "detection": build_tiny_detector(workdir / "models" / "tiny-detr"),  # for facebook/detr-resnet-50
    }


# ---------------------------------------------------------------------------------------------------- data


def sentiment_rows(rows: int, seed: int) -> list[tuple[str, int]]:
    """(text, 0/1): 1 when the review holds positive words; learnable in a few steps."""
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        k = i % 2
        words = rng.sample(NEUTRAL, 4) + rng.sample([NEGATIVE, POSITIVE][k], 2)
        rng.shuffle(words)
        out.append((" ".join(words), k))
    return out


def conversations(rows: int, seed: int) -> list[list[dict]]:
    """User asks a fruit's colour, the assistant answers; some open with a system turn, some have two exchanges."""
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        turns = []
        if rng.random() < 0.3:
            turns.append({"role": "system", "content": "answer briefly."})
        for _ in range(2 if rng.random() < 0.3 else 1):
            fruit = rng.choice(list(FRUITS))
            turns.append({"role": "user", "content": f"what colour is the {fruit}?"})
            turns.append({"role": "assistant", "content": f"the {fruit} is {FRUITS[fruit]}."})
        out.append(turns)
    return out


def text_classification_rows(config: dict, rows: int, seed: int) -> list[dict]:
    """Rows of the config's text and target columns: 0/1 like a Hub ClassLabel, or label names for local data."""
    columns = config["data"]["column_mapping"]
    hub = not is_local_placeholder(config["data"]["path"])
    names = ["negative", "positive"]
    return [
        {columns["text_column"]: text, columns["target_column"]: label if hub else names[label]}
        for text, label in sentiment_rows(rows, seed)
    ]


def text_regression_rows(config: dict, rows: int, seed: int) -> list[dict]:
    """Rows of the config's text and target columns: 0/1 like sms_spam's label, or a score for local data."""
    columns = config["data"]["column_mapping"]
    hub = not is_local_placeholder(config["data"]["path"])
    rng = random.Random(seed + 100)
    return [
        {columns["text_column"]: text, columns["target_column"]: label if hub else round(label * 4 + rng.random(), 3)}
        for text, label in sentiment_rows(rows, seed)
    ]


def seq2seq_rows(config: dict, rows: int, seed: int) -> list[dict]:
    """Rows of the config's text and target columns: the tests' toy English -> "German" word pairs."""
    from conftest import make_translation_frame

    columns = config["data"]["column_mapping"]
    frame = make_translation_frame(rows, seed)
    return [
        {columns["text_column"]: source, columns["target_column"]: target}
        for source, target in zip(frame["source"], frame["target"], strict=True)
    ]


def sft_rows(config: dict, rows: int, seed: int) -> list[dict]:
    """SFT rows: message lists (HuggingFaceH4/no_robots' shape) or '### Human: ...### Assistant: ...' (guanaco's)."""
    column = config["data"]["column_mapping"]["text_column"]
    out = []
    for i, turns in enumerate(conversations(rows, seed)):
        if column == "messages":
            prompt = next(t["content"] for t in turns if t["role"] == "user")
            out.append({"prompt": prompt, "prompt_id": f"{seed}-{i}", column: turns, "category": "Open QA"})
        else:
            text = "".join(
                f"### {'Human' if t['role'] == 'user' else 'Assistant'}: {t['content']}"
                for t in turns
                if t["role"] != "system"
            )
            out.append({column: text})
    return out


def preference_rows(config: dict, rows: int, seed: int) -> list[dict]:
    """Preference rows shaped like the reference's datasets: a prompt string, chosen/rejected whole conversations.

    As in argilla/distilabel-capybara-dpo-7k-binarized and mlabonne/orpo-dpo-mix-40k, chosen and rejected repeat
    the prompt's turns (some conversations have two exchanges, some a system turn) and differ in the last answer.
    """
    columns = config["data"]["column_mapping"]
    rng = random.Random(seed + 7)
    out = []
    for turns in conversations(rows, seed):
        chosen = turns
        fruit = chosen[-2]["content"].removeprefix("what colour is the ").removesuffix("?")
        wrong = rng.choice([c for c in FRUITS.values() if c != FRUITS[fruit]])
        rejected = chosen[:-1] + [{"role": "assistant", "content": f"the {fruit} is {wrong}."}]
        first_user = next(t["content"] for t in chosen if t["role"] == "user")
        out.append(
            {
                "source": "generated",
                columns.get("prompt_text_column", "prompt"): first_user,
                columns["text_column"]: chosen,
                columns["rejected_text_column"]: rejected,
                "chosen_rating": 5,
                "rejected_rating": 1,
            }
        )
    return out


GENERATORS = {
    "text_classification": (text_classification_rows, "csv", TEXT_ROWS),
    "text_regression": (text_regression_rows, "csv", TEXT_ROWS),
    "seq2seq": (seq2seq_rows, "csv", TEXT_ROWS),
    "llm-sft": (sft_rows, "jsonl", LLM_ROWS),
    "llm-dpo": (preference_rows, "jsonl", LLM_ROWS),
    "llm-orpo": (preference_rows, "jsonl", LLM_ROWS),
}


IMAGE_ROWS = {"train": 24, "valid": 12}


def write_image_dataset(config: dict, folder: Path) -> None:
    """Image data in the layout the config's task and ``data.path`` imply, with its ``column_mapping``'s columns.

    Local classification (``data/``): ``<train_split>/<class>/*.png``. Local scoring: ``<split>/`` images with a
    ``metadata.jsonl`` of ``file_name`` and the target. A Hub id: a ``datasets`` folder (``save_to_disk``) shaped
    like that dataset: cats_vs_dogs' ``image`` + ``labels`` ClassLabel (cat/dog, also the scoring configs' target),
    img-quality's ``image`` + float ``target``.
    """
    import datasets

    from conftest import IMAGE_CLASSES, make_image, make_redness_images

    data, columns = config["data"], config["data"]["column_mapping"]
    splits = [data.get("train_split") or "train"] + ([data["valid_split"]] if data.get("valid_split") else [])
    local = is_local_placeholder(data["path"])
    if local and config["task"] == "image_classification":
        for seed, split in enumerate(splits):
            for k, (name, (colour, shape)) in enumerate(IMAGE_CLASSES.items()):
                (folder / split / name).mkdir(parents=True, exist_ok=True)
                for i in range(IMAGE_ROWS["train" if seed == 0 else "valid"] // 2):
                    make_image(colour, shape, seed * 1000 + k * 100 + i).save(folder / split / name / f"{i}.png")
        return
    if local:
        for seed, split in enumerate(splits):
            records = make_redness_images(folder / split, IMAGE_ROWS["train" if seed == 0 else "valid"], seed)
            rows = [{"file_name": r["file_name"], columns["target_column"]: r["redness"]} for r in records]
            (folder / split / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return
    scratch = folder.parent / f"{folder.name}-images"
    records = make_redness_images(scratch, IMAGE_ROWS["train"], seed=0)
    images = [str(scratch / r["file_name"]) for r in records]
    if columns["target_column"] == "labels":  # cats_vs_dogs
        target = datasets.ClassLabel(names=["cat", "dog"])
        values = [int(r["redness"] > 0.5) for r in records]
    else:
        target, values = datasets.Value("float32"), [r["redness"] for r in records]
    features = datasets.Features({columns["image_column"]: datasets.Image(), columns["target_column"]: target})
    dataset = datasets.Dataset.from_dict(
        {columns["image_column"]: images, columns["target_column"]: values}, features=features
    )
    datasets.DatasetDict({splits[0]: dataset}).save_to_disk(str(folder))


DETECTION_ROWS = {"train": 8, "valid": 4}  # one optimizer step per epoch: the configs run 100 epochs
CPPE5 = ["coverall", "face_shield", "gloves", "goggles", "mask"]  # cppe-5's category ClassLabel names


def write_detection_dataset(config: dict, folder: Path) -> None:
    """Shape images with boxes, in the layout the object-detection config's ``data.path`` implies.

    Local (``data/``): ``<split>/`` images with a ``metadata.jsonl`` of ``file_name`` and the objects column
    (``{"bbox": [[x, y, w, h], ...], "category": [names]}``). A Hub id (cppe-5): a ``datasets`` folder shaped like
    cppe-5: ``image_id``, ``image``, ``width``, ``height`` and ``objects`` (``id``, ``area``, ``bbox``, ``category``
    a ``ClassLabel`` of its five names), the shapes' two categories standing for two of them.
    """
    import datasets
    from _detection_fixtures import NAMES, make_shapes

    data, columns = config["data"], config["data"]["column_mapping"]
    splits = [data.get("train_split") or "train"] + ([data["valid_split"]] if data.get("valid_split") else [])
    objects = columns.get("objects_column", "objects")
    built = {}
    for seed, split in enumerate(splits):
        rows = DETECTION_ROWS["train" if seed == 0 else "valid"]
        scratch = folder / split if is_local_placeholder(data["path"]) else folder.parent / f"{folder.name}-{split}"
        path = make_shapes(scratch, rows, seed=seed, layout="metadata")
        records = [json.loads(line) for line in path.read_text().splitlines()]
        if is_local_placeholder(data["path"]):
            lines = [{"file_name": r["file_name"], objects: r["objects"]} for r in records]
            path.write_text("".join(json.dumps(line) + "\n" for line in lines))
            continue
        boxes = [r["objects"] for r in records]
        features = datasets.Features(
            {
                "image_id": datasets.Value("int64"),
                columns.get("image_column", "image"): datasets.Image(),
                "width": datasets.Value("int32"),
                "height": datasets.Value("int32"),
                objects: datasets.Sequence(
                    {
                        "id": datasets.Value("int64"),
                        "area": datasets.Value("int64"),
                        "bbox": datasets.Sequence(datasets.Value("float32"), length=4),
                        "category": datasets.ClassLabel(names=CPPE5),
                    }
                ),
            }
        )
        table = {
            "image_id": list(range(len(records))),
            columns.get("image_column", "image"): [str(scratch / r["file_name"]) for r in records],
            "width": [64] * len(records),
            "height": [48] * len(records),
            objects: [
                {
                    "id": list(range(len(b["bbox"]))),
                    "area": [int(w * h) for _, _, w, h in b["bbox"]],
                    "bbox": b["bbox"],
                    "category": [NAMES.index(c) * 2 for c in b["category"]],  # coverall, gloves
                }
                for b in boxes
            ],
        }
        built[split] = datasets.Dataset.from_dict(table, features=features)
    if built:
        datasets.DatasetDict(built).save_to_disk(str(folder))


VLM_ROWS = {"train": 24, "valid": 8}


def write_vlm_dataset(config: dict, folder: Path) -> None:
    """A ``datasets`` folder (``save_to_disk``) shaped like the config's Hub dataset, in its train and valid splits.

    VQAv2's ``image`` (an ``Image`` column), ``question`` and ``multiple_choice_answer``, as its ``column_mapping``
    names them: coloured shapes, questions about their colour or shape and the one-word answers.
    """
    import datasets
    from _vlm_fixtures import make_vlm_data

    data, columns = config["data"], config["data"]["column_mapping"]
    splits = [data.get("train_split") or "train"] + ([data["valid_split"]] if data.get("valid_split") else [])
    scratch = folder.parent / f"{folder.name}-images"
    parts = {}
    for seed, split in enumerate(splits):
        records = make_vlm_data.write_split(scratch / split, VLM_ROWS["train" if seed == 0 else "valid"], seed)
        values = {
            columns["image_column"]: [str(scratch / split / r["file_name"]) for r in records],
            columns["prompt_text_column"]: [r["question"] for r in records],
            columns["text_column"]: [r["answer"] for r in records],
        }
        features = datasets.Features({name: datasets.Value("string") for name in values})
        features[columns["image_column"]] = datasets.Image()
        parts[split] = datasets.Dataset.from_dict(values, features=features)
    datasets.DatasetDict(parts).save_to_disk(str(folder))


def is_local_placeholder(path: str) -> bool:
    """Whether the reference's data.path is a local folder placeholder (``data/``) rather than a Hub dataset id."""
    return path.rstrip("/") in ("data", ".") or path.startswith(("./", "/"))


def write_dataset(config: dict, folder: Path) -> None:
    """Write ``<folder>/<train_split>.<ext>`` (and ``<valid_split>``) with rows shaped for the config's task."""
    import csv

    make, ext, sizes = GENERATORS[config["task"]]
    data = config["data"]
    splits = [(data.get("train_split") or "train", sizes["train"], 0)]
    if data.get("valid_split"):
        splits.append((data["valid_split"], sizes["valid"], 1))
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows, seed in splits:
        records = make(config, rows, seed)
        path = folder / f"{split}.{ext}"
        with path.open("w", encoding="utf-8", newline="") as handle:
            if ext == "csv":
                writer = csv.DictWriter(handle, fieldnames=list(records[0]))
                writer.writeheader()
                writer.writerows(records)
            else:
                handle.writelines(json.dumps(r) + "\n" for r in records)


# ---------------------------------------------------------------------------------------------------- config text


def git_show(reference: Path, path: str) -> str:
    """A file of the reference's HEAD, read from its (bare) git repository."""
    return subprocess.run(
        ["git", "-C", str(reference), "show", f"HEAD:{path}"], check=True, capture_output=True, text=True
    ).stdout


def list_configs(reference: Path) -> list[str]:
    """The reference's ``configs/**.yml`` paths at HEAD, sorted."""
    out = subprocess.run(
        ["git", "-C", str(reference), "ls-tree", "-r", "--name-only", "HEAD", "configs"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sorted(p for p in out.splitlines() if p.endswith((".yml", ".yaml")))


def _scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain when it reads back as the same string, else double-quoted."""
    return value if yaml.safe_load(f"k: {value}") == {"k": value} else json.dumps(value)


def _replace_value(lines: list[str], section: str | None, key: str, value: str) -> None:
    """Replace the value of ``key`` (top level, or inside the top-level ``section``) in place, keeping any comment."""
    inside = section is None
    for i, line in enumerate(lines):
        if section is not None and re.match(r"\S", line):
            inside = line.split("#", 1)[0].rstrip() == f"{section}:"
            continue
        if not inside:
            continue
        pattern = rf"^({key}:)" if section is None else rf"^(\s+{key}:)"
        match = re.match(pattern + r"([ \t]*)([^#\n]*?)([ \t]+#.*)?$", line.rstrip("\n"))
        if match:
            ending = line[len(line.rstrip("\n")) :]
            lines[i] = f"{match.group(1)} {value}{match.group(4) or ''}{ending}"
            return
    raise ValueError(f"no {key!r} {'at top level' if section is None else f'in {section}:'}")


def edit_config(text: str, model: str | None, data_path: str | None, push_to_hub: bool | None) -> str:
    """The reference's YAML text with only these values replaced (None keeps one); every other byte is kept.

    Raises:
        AssertionError: If the edit changed anything but the three values (checked by parsing both texts).
    """
    lines = text.splitlines(keepends=True)
    expected = yaml.safe_load(text)
    if model is not None:
        _replace_value(lines, None, "base_model", _scalar(model))
        expected["base_model"] = model
    if data_path is not None:
        _replace_value(lines, "data", "path", _scalar(data_path))
        expected["data"]["path"] = data_path
    if push_to_hub is not None:
        _replace_value(lines, "hub", "push_to_hub", "true" if push_to_hub else "false")
        expected["hub"]["push_to_hub"] = push_to_hub
    edited = "".join(lines)
    assert yaml.safe_load(edited) == expected, "the edit changed more than base_model, data.path and push_to_hub"
    changed = sum(a != b for a, b in zip(text.splitlines(), edited.splitlines(), strict=True))
    assert changed <= 3, f"{changed} lines changed"
    return edited


# ---------------------------------------------------------------------------------------------------- checks


@dataclass
class Check:
    """One expectation and how it went."""

    config: str
    task: str
    kind: str  # train | hub-token | unsupported | unsupported-no-push
    ok: bool = False
    result: str = ""
    seconds: float = 0.0
    details: list[str] = field(default_factory=list)


def trainforge_command() -> list[str]:
    """The trainforge CLI of this interpreter's environment."""
    script = Path(sys.executable).with_name("trainforge")
    return [str(script)] if script.exists() else [sys.executable, "-m", "trainforge"]


def run_env(workdir: Path) -> dict[str, str]:
    """The environment of every run: offline, HF_TOKEN/HF_USERNAME unset, no saved login, one thread per op."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_USERNAME", "HUGGING_FACE_HUB_TOKEN")}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(workdir / "hf-home"),
        TOKENIZERS_PARALLELISM="false",
    )
    env.setdefault("OMP_NUM_THREADS", "1")  # tiny models: one thread is as fast, and kinder to shared CPUs
    return env


def tail(text: str, lines: int = TAIL_LINES) -> list[str]:
    """The last non-empty lines of ``text``."""
    return [line for line in text.splitlines() if line.strip()][-lines:]


def has_model(run_dir: Path) -> bool:
    """A finished run with weights (a full model or a LoRA adapter) in the run folder itself."""
    return (run_dir / "metrics.json").exists() and any(run_dir.glob("*.safetensors"))


def check_train(check: Check, config_path: Path, cwd: Path, run_dir: Path, env: dict) -> None:
    """``trainforge train <config>``: exit 0 and a model in the run folder."""
    cwd.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [*trainforge_command(), "train", str(config_path)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=TRAIN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        check.seconds = time.monotonic() - started
        check.result = f"timeout after {TRAIN_TIMEOUT_S}s"
        check.details = tail(exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or "")
        return
    check.seconds = time.monotonic() - started
    (cwd / "stdout.log").write_text(proc.stdout, encoding="utf-8")
    (cwd / "stderr.log").write_text(proc.stderr, encoding="utf-8")
    model = has_model(run_dir)
    check.ok = proc.returncode == 0 and model and "Traceback" not in proc.stderr
    check.result = f"exit {proc.returncode}, model {'yes' if model else 'no'}"
    if not check.ok:
        check.details = tail(proc.stderr)


def check_hub_token(check: Check, config_path: Path, cwd: Path, run_dir: Path, env: dict) -> None:
    """``push_to_hub: true`` without a token: exit 2 naming hub.token, and no run folder (nothing loaded)."""
    cwd.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    proc = subprocess.run(
        [*trainforge_command(), "train", str(config_path)], cwd=cwd, env=env, capture_output=True, text=True
    )
    check.seconds = time.monotonic() - started
    output = proc.stdout + proc.stderr
    problems = []
    if proc.returncode != 2:
        problems.append(f"exit {proc.returncode}, expected 2")
    if "hub.token" not in output:
        problems.append("hub.token not named")
    if run_dir.exists():
        problems.append(f"{run_dir.name}/ was created")
    if "Traceback" in output:
        problems.append("traceback")
    check.ok = not problems
    check.result = f"exit {proc.returncode}, names hub.token" if check.ok else "; ".join(problems)
    if not check.ok:
        check.details = tail(output)


def check_unsupported(check: Check, config_path: Path, cwd: Path, env: dict, task: str) -> None:
    """``trainforge validate``: exit 2, the task named as not supported yet, the supported tasks listed."""
    cwd.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    proc = subprocess.run(
        [*trainforge_command(), "validate", str(config_path)], cwd=cwd, env=env, capture_output=True, text=True
    )
    check.seconds = time.monotonic() - started
    output = proc.stdout + proc.stderr
    problems = []
    if proc.returncode != 2:
        problems.append(f"exit {proc.returncode}, expected 2")
    if "not supported" not in output:
        problems.append("no 'not supported'")
    elif task not in output:
        problems.append("task not named")
    if "supported tasks:" not in output:
        problems.append("supported tasks not listed")
    if "Traceback" in output:
        problems.append("traceback")
    check.ok = not problems
    check.result = f"exit {proc.returncode}, not supported yet" if check.ok else "; ".join(problems)
    if not check.ok:
        check.details = tail(output)


# ---------------------------------------------------------------------------------------------------- main


def prepare_workdir(workdir: Path) -> None:
    """Empty ``workdir`` when this script made it; refuse a non-empty folder it did not make."""
    if workdir.exists() and any(workdir.iterdir()):
        if not (workdir / MARKER).exists():
            sys.exit(f"error: {workdir} is not empty and was not made by this script; choose another --workdir")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("made by scripts/reference_configs.py; emptied on each run\n", encoding="utf-8")


def slug(path: str) -> str:
    """``configs/llm_finetuning/qwen.yml`` -> ``llm_finetuning__qwen``."""
    return "__".join(Path(path).with_suffix("").parts[1:])


def main(argv: list[str] | None = None) -> int:
    """Run every check, print the table, return 1 if any expectation failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, type=Path, help="the reference's git repository (bare is fine)")
    parser.add_argument("--workdir", required=True, type=Path, help="scratch folder (emptied if this script made it)")
    parser.add_argument("--only", help="run only configs whose path contains this text")
    args = parser.parse_args(argv)

    total_started = time.monotonic()
    workdir = args.workdir.resolve()
    prepare_workdir(workdir)
    env = run_env(workdir)
    os.environ.update({k: env[k] for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TOKENIZERS_PARALLELISM")})
    started = time.monotonic()
    models = build_models(workdir)
    print(f"built tiny models in {time.monotonic() - started:.1f}s", file=sys.stderr)

    checks: list[Check] = []
    for path in list_configs(args.reference):
        if args.only and args.only not in path:
            continue
        text = git_show(args.reference, path)
        config = yaml.safe_load(text)
        task = str(config.get("task"))
        name = slug(path)
        cwd = workdir / "runs" / name
        folder = Path(path).parts[1]
        if folder not in IMPLEMENTED_FOLDERS:
            for kind, push in (("unsupported", None), ("unsupported-no-push", False)):
                check = Check(path, task, kind)
                edited = text if push is None else edit_config(text, None, None, push)
                config_path = workdir / "configs" / f"{name}.{kind}.yml"
                config_path.parent.mkdir(parents=True, exist_ok=True)
                config_path.write_text(edited, encoding="utf-8")
                check_unsupported(check, config_path, cwd / kind, env, task)
                checks.append(check)
                print_progress(check)
            continue
        family = "llm" if task.startswith("llm") else task if task == "seq2seq" else "text"
        if task.startswith("image"):
            family = "image-cnn" if "resnet" in str(config["base_model"]) else "image"
        if task.startswith("vlm"):
            family = "vlm"
        if folder == "object_detection":
            family = "detection"
        model = models[family]
        data_folder = workdir / "data" / name
        if folder == "object_detection":
            write_detection_dataset(config, data_folder)
        elif task.startswith("image"):
            write_image_dataset(config, data_folder)
        elif task.startswith("vlm"):
            write_vlm_dataset(config, data_folder)
        else:
            write_dataset(config, data_folder)
        run_dir = cwd / str(config["project_name"])
        config_path = workdir / "configs" / f"{name}.yml"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(edit_config(text, model, str(data_folder), False), encoding="utf-8")
        check = Check(path, task, "train")
        check_train(check, config_path, cwd, run_dir, env)
        checks.append(check)
        print_progress(check)
        if path == HUB_TOKEN_CONFIG:
            hub_path = workdir / "configs" / f"{name}.push.yml"
            hub_path.write_text(edit_config(text, model, str(data_folder), None), encoding="utf-8")
            assert config["hub"]["push_to_hub"] is True, f"{path} no longer pushes; pick another HUB_TOKEN_CONFIG"
            check = Check(path, task, "hub-token")
            check_hub_token(check, hub_path, cwd / "push", cwd / "push" / str(config["project_name"]), env)
            checks.append(check)
            print_progress(check)

    print_table(checks)
    failed = [c for c in checks if not c.ok]
    for check in failed:
        print(f"\nFAILED {check.config} ({check.kind}): {check.result}")
        for line in check.details:
            print(f"    {line}")
    print(
        f"\n{len(checks) - len(failed)} of {len(checks)} checks passed; "
        f"total {time.monotonic() - total_started:.0f}s; work files in {workdir}"
    )
    return 1 if failed else 0


def print_progress(check: Check) -> None:
    """One line on stderr per finished check, so a long run shows where it is."""
    status = "ok" if check.ok else "FAIL"
    print(f"[{status}] {check.config} ({check.kind}) {check.result} {check.seconds:.1f}s", file=sys.stderr, flush=True)


def print_table(checks: list[Check]) -> None:
    """The results as an aligned text table."""
    rows = [("config", "task", "check", "result", "seconds")]
    rows += [
        (
            c.config.removeprefix("configs/"),
            c.task,
            c.kind,
            ("ok: " if c.ok else "FAIL: ") + c.result,
            f"{c.seconds:.1f}",
        )
        for c in checks
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        cells = zip(row, widths, strict=True)
        print("  ".join(cell.rjust(w) if j == 4 else cell.ljust(w) for j, (cell, w) in enumerate(cells)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    sys.exit(main())
