"""The bad-input table: one entry per case, written by the tests into a fresh folder and run through the CLI or
the web app's API.

Placeholders in configs, arguments, file contents, request bodies and fragments are filled in by the test:
``{tmp}`` the case's own folder, ``{bert}`` / ``{llama}`` the tiny models, ``{run}`` the one finished run every
CLI case shares (never to be changed), ``{upload}`` the file uploaded to the app before its cases and
``{run_id}`` the app's succeeded text-classification run.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

Content = str | bytes | Callable[[], bytes]
Fragment = str | tuple[str, ...]  # a tuple: any one of these wordings
DROP = object()  # a section value that removes the key from the base config

# ------------------------------------------------------------------------------------------------ the case types


@dataclass(frozen=True)
class CliCase:
    """``trainforge <command> ...`` in-process: exit code, stderr fragments, no traceback."""

    id: str
    command: str  # validate | train (a config) | predict | evaluate | export | serve (a run directory first)
    config: dict | str | bytes | None = None  # dict: written as YAML; str, bytes: written as-is (broken on purpose)
    files: dict[str, Content] = field(default_factory=dict)  # written under {tmp}
    args: tuple[str, ...] = ()  # overrides (validate, train), or the run dir and options of the run commands
    code: int | tuple[int, ...] = 2  # several: any of them (two acceptable fixes of a known fault)
    fragments: tuple[Fragment, ...] = ()  # each must appear in stderr (stdout too for exit-0 notes)
    env: dict[str, str | None] = field(default_factory=dict)  # None unsets the variable
    copy: dict[str, str] = field(default_factory=dict)  # folder under {tmp} <- a folder (placeholder), before files
    intact: tuple[str, ...] = ()  # copied folders (earlier runs) that must be byte-identical afterwards
    xfail: str = ""  # a product fault found by this suite: strict xfail with the reason


@dataclass(frozen=True)
class AppCase:
    """One request to the web app's API: status, body fragments, no traceback."""

    id: str
    method: str  # get | post
    path: str
    json: dict | str | None = None  # str: sent as-is with a JSON content type (Infinity is not JSON)
    upload: tuple[str, Content] | None = None  # (file name, content) posted to /api/uploads
    files: dict[str, Content] = field(default_factory=dict)  # written under {tmp} before the request
    status: int = 422
    fragments: tuple[Fragment, ...] = ()
    absent: tuple[str, ...] = ()  # must not appear in the body (secrets)
    env: dict[str, str] = field(default_factory=dict)  # the server's environment during the request
    xfail: str = ""


# ------------------------------------------------------------------------------------------------ data builders


def csv_text(rows: list[tuple], header: tuple = ("review", "sentiment")) -> str:
    """CSV text without quoting (the cells here hold no commas)."""
    return "\n".join(",".join(str(c) for c in row) for row in [header, *rows]) + "\n"


def jsonl_text(rows: list) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


GOOD_WORDS = ["lovely witty film", "a charming moving story", "great fun plot", "superb brilliant actors"]
BAD_WORDS = ["dull tedious plot", "an awful boring film", "clumsy messy story", "bland weak actors"]
REVIEWS = [
    (GOOD_WORDS[i % 4] + f" {i}", "positive") if i % 2 == 0 else (BAD_WORDS[i % 4] + f" {i}", "negative")
    for i in range(16)
]
TRAIN_CSV = csv_text(REVIEWS)
SCORES_CSV = csv_text([(text, round(0.05 + i * 0.06, 3)) for i, (text, _) in enumerate(REVIEWS)])
CHATS = [
    {"messages": [{"role": "user", "content": f"what colour is fruit {i}?"}, {"role": "assistant", "content": "red."}]}
    for i in range(8)
]
PAIRS = [{"prompt": f"colour of fruit {i}?", "chosen": "red.", "rejected": "blue."} for i in range(8)]
TABLE_ROWS = [(i, round(i * 1.5, 1), "ab"[i % 2], "yes" if i % 3 else "no") for i in range(30)]
TABLE_CSV = csv_text(TABLE_ROWS, header=("id", "x", "colour", "target"))


def parquet_with_duplicate_columns() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays(
        [pa.array([t for t, _ in REVIEWS]), pa.array([s for _, s in REVIEWS]), pa.array(["x"] * 16)],
        names=["review", "sentiment", "review"],
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, content in members.items():
            bundle.writestr(name, content)
    return buffer.getvalue()


def lying_zip() -> bytes:
    """Every header claims 10 bytes of uncompressed data; the member holds much more."""
    raw = bytearray(zip_of({"data/train.csv": TRAIN_CSV.encode() * 20}))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(signature)
        raw[at + offset : at + offset + 4] = (10).to_bytes(4, "little")
    return bytes(raw)


def corrupt_zip() -> bytes:
    """Deflate data overwritten just after the local header."""
    raw = bytearray(zip_of({"data/train.csv": TRAIN_CSV.encode() * 20}))
    start = raw.find(b"PK\x03\x04") + 30 + len("data/train.csv")
    raw[start : start + 8] = b"\xff" * 8
    return bytes(raw)


def symlink_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("ok.csv", "a\n1\n")
        info = zipfile.ZipInfo("passwd")
        info.external_attr = 0o120777 << 16
        bundle.writestr(info, "/etc/passwd")
    return buffer.getvalue()


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)

# ------------------------------------------------------------------------------------------------ config builders


def _merge(base: dict, sections: dict) -> dict:
    out = dict(base)
    for key, value in sections.items():
        if value is DROP:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def tc(**sections) -> dict:
    """A fast text-classification config on the tiny BERT and ``{tmp}/train.csv``; sections merge into it."""
    base = {
        "task": "text_classification",
        "model": {"name": "{bert}"},
        "data": {"source": "{tmp}/train.csv", "columns": {"text": "review", "label": "sentiment"}, "eval_fraction": 0},
        "training": {"num_train_epochs": 1, "learning_rate": 0.01, "per_device_train_batch_size": 8},
        "params": {"max_length": 16},
        "output": {"dir": "{tmp}/run", "report_to": ["none"], "save_checkpoints": False},
    }
    return _merge(base, sections)


def tr(**sections) -> dict:
    """text_regression on ``{tmp}/train.csv`` (review, score)."""
    columns = {"text": "review", "target": "score", "label": DROP}
    return tc(task="text_regression", data={"columns": columns}, **sections)


def tab(**sections) -> dict:
    """tabular_classification on ``{tmp}/table.csv``."""
    base = {
        "task": "tabular_classification",
        "model": {"name": "auto"},
        "data": {"source": "{tmp}/table.csv", "eval_fraction": 0.2},
        "params": {"target_columns": ["target"]},
        "search": {"trials": 1, "timeout": 30},
        "output": {"dir": "{tmp}/run", "report_to": ["none"]},
    }
    return _merge(base, sections)


def llm(task: str, source: str = "{tmp}/data.jsonl", **sections) -> dict:
    """An LLM task on the tiny Llama (ChatML template)."""
    base = {
        "task": task,
        "model": {"name": "{llama}"},
        "data": {"source": source, "eval_fraction": 0},
        "training": {"num_train_epochs": 1, "learning_rate": 0.005, "per_device_train_batch_size": 4},
        "params": {"block_size": 64},
        "output": {"dir": "{tmp}/run", "report_to": ["none"], "save_checkpoints": False},
    }
    return _merge(base, sections)


def autotrain(**extra) -> dict:
    """A text-classification config in the reference's (AutoTrain's) shape."""
    base = {
        "task": "text-classification",
        "base_model": "{bert}",
        "project_name": "{tmp}/run",
        "log": "none",
        "backend": "local",
        "data": {
            "path": "{tmp}/train.csv",
            "train_split": "train",
            "valid_split": None,
            "column_mapping": {"text_column": "review", "target_column": "sentiment"},
        },
        "params": {"max_seq_length": 16, "epochs": 1, "batch_size": 8, "lr": 0.01},
        "hub": {"username": "me", "token": None, "push_to_hub": False},
    }
    return _merge(base, extra)


def yaml_of(config: dict, tail: str = "") -> str:
    """The config as YAML text plus raw lines (for what safe_dump cannot write: .inf, duplicates)."""
    import yaml

    return yaml.safe_dump(config, sort_keys=False) + tail


TRAIN = {"train.csv": TRAIN_CSV}
LONG_CSV = csv_text([(" ".join([t] * 25), s) for t, s in REVIEWS])  # about 100 tokens a row
NOT_SAFETENSORS = b"these bytes are not a safetensors file"
DIVERGING = {"learning_rate": 1e30, "logging_steps": 1}  # 16 rows, batch 8: NaN loss at step 3

# ------------------------------------------------------------------------------------------------ known faults

CHATS_FILE = {"data.jsonl": jsonl_text(CHATS)}


def relabelled(labels: list[str]) -> dict:
    """``train.csv`` with the reviews labelled by ``labels`` in turn."""
    return {"train.csv": csv_text([(t, labels[i % len(labels)]) for i, (t, _) in enumerate(REVIEWS)])}


def scored(fifth: str) -> dict:
    """``train.csv`` with a numeric score per review, ``fifth`` written as the fifth row's score."""
    return {
        "train.csv": csv_text(
            [(t, fifth if i == 4 else i * 0.5) for i, (t, _) in enumerate(REVIEWS)], header=("review", "score")
        )
    }


def dup_header_csv() -> str:
    return csv_text([(t, s, t) for t, s in REVIEWS], header=("review", "sentiment", "review"))


# The tables keep one case per entry, a few lines each.
# fmt: off

# ------------------------------------------------------------------------------------------------ CLI: config

CONFIG_CASES = [
    CliCase("config-unknown-top-key", "validate", tc(trainig={"seed": 1}), TRAIN,
            fragments=("trainig: unknown key; did you mean 'training'?",)),
    CliCase("config-unknown-training-key", "validate", tc(training={"learning_rat": 0.1}), TRAIN,
            fragments=("training.learning_rat: unknown key; did you mean 'learning_rate'?",)),
    CliCase("config-unknown-data-key", "validate", tc(data={"eval_fractoin": 0.2}), TRAIN,
            fragments=("data.eval_fractoin: unknown key; did you mean 'eval_fraction'?",)),
    CliCase("config-unknown-param", "validate", tc(params={"max_lenght": 32}), TRAIN,
            fragments=("params.max_lenght: unknown key; did you mean 'max_length'?",)),
    CliCase("config-unknown-output-key", "validate", tc(output={"overwite": True}), TRAIN,
            fragments=("output.overwite: unknown key; did you mean 'overwrite'?",)),
    CliCase("config-several-problems-at-once", "validate",
            tc(training={"learning_rat": 0.1, "seed": -1}, params={"max_lenght": 8}), TRAIN,
            fragments=("3 problems", "training.learning_rat", "training.seed", "params.max_lenght")),
    CliCase("config-wrong-type-lr", "validate", tc(training={"learning_rate": "fast"}), TRAIN,
            fragments=("training.learning_rate:", "'fast'")),
    CliCase("config-wrong-type-epochs", "validate", tc(training={"num_train_epochs": [1, 2]}), TRAIN,
            fragments=("training.num_train_epochs:", "[1, 2]")),
    CliCase("config-zero-batch-size", "validate", tc(training={"per_device_train_batch_size": 0}), TRAIN,
            fragments=("training.per_device_train_batch_size:", "greater than 0")),
    CliCase("config-bad-precision", "validate", tc(training={"precision": "fp8"}), TRAIN,
            fragments=("training.precision:", "'fp8'")),
    CliCase("config-columns-not-mapping", "validate", tc(data={"columns": "review"}), TRAIN,
            fragments=("data.columns:", "must be a mapping of keys to values, not text", "{KEY: VALUE, ...}")),
    CliCase("config-model-not-mapping", "validate", tc(model=42), TRAIN,
            fragments=("  - model:", "not a number: write it as model: {name: ...}")),
    CliCase("config-eval-fraction-above-one", "validate", tc(data={"eval_fraction": 1.5}), TRAIN,
            fragments=("data.eval_fraction:", "1.5")),
    CliCase("config-nonfinite-lr", "validate", yaml_of(tc(training=DROP), "training: {learning_rate: .inf}\n"),
            TRAIN, fragments=("training.learning_rate: Input should be a finite number (got inf)",)),
    CliCase("config-nonfinite-epochs", "validate",
            yaml_of(tc(training=DROP), "training: {num_train_epochs: .nan}\n"), TRAIN,
            fragments=("training.num_train_epochs:", "finite number (got nan)")),
    CliCase("config-nonfinite-weight-decay", "validate",
            yaml_of(tc(training=DROP), "training: {weight_decay: -.inf}\n"), TRAIN,
            fragments=("training.weight_decay:", "finite number (got -inf)")),
    CliCase("config-nonfinite-warmup", "validate", yaml_of(tc(training=DROP), "training: {warmup_ratio: .NaN}\n"),
            TRAIN, fragments=("training.warmup_ratio:", "finite number")),
    CliCase("config-nonfinite-eval-fraction", "validate",
            yaml_of(tc(data=DROP), "data: {source: '{tmp}/train.csv', columns: {text: review, label: sentiment}, "
                    "eval_fraction: .nan}\n"), TRAIN, fragments=("data.eval_fraction:", "finite number")),
    CliCase("config-nonfinite-override", "validate", tc(), TRAIN, args=("training.max_grad_norm=.inf",),
            fragments=("training.max_grad_norm:", "finite number")),
    CliCase("config-nonfinite-lr-train", "train", yaml_of(tc(training=DROP), "training: {learning_rate: .inf}\n"),
            TRAIN, fragments=("training.learning_rate:", "finite number")),
    CliCase("config-negative-seed", "validate", tc(training={"seed": -1}), TRAIN,
            fragments=("training.seed:", "greater than or equal to 0")),
    CliCase("config-seed-too-large", "validate", tc(training={"seed": 2**32}), TRAIN,
            fragments=("training.seed:", "4294967296")),
    CliCase("config-duplicate-key", "validate",
            yaml_of(tc(training=DROP), "training:\n  learning_rate: 0.01\n  learning_rate: 0.1\n"), TRAIN,
            fragments=("duplicate key 'learning_rate' at lines 18 and 19", "config.yaml")),
    CliCase("config-duplicate-section", "validate",
            yaml_of(tc(training=DROP), "training: {seed: 1}\ntraining: {seed: 2}\n"), TRAIN,
            fragments=("duplicate key 'training' at lines 17 and 18",)),
    CliCase("config-alias-bomb", "validate", ALIAS_BOMB, fragments=("config.yaml", "through aliases")),
    CliCase("config-invalid-yaml", "validate", "task: text_classification\nmodel: {name: [unclosed\n",
            fragments=("config.yaml", "not valid YAML at line 3")),
    CliCase("config-tab-indent", "validate", "task: text_classification\nmodel:\n\tname: x\n",
            fragments=("not valid YAML at line 3", "'\\t'")),
    CliCase("config-empty-file", "validate", "", fragments=("config.yaml", "the file is empty")),
    CliCase("config-top-level-list", "validate", "- task: text_classification\n",
            fragments=("config.yaml", "top level must be a mapping")),
    CliCase("config-top-level-scalar", "validate", "text_classification\n",
            fragments=("top level must be a mapping",)),
    CliCase("config-missing-file", "validate", None, fragments=("config file not found", "config.yaml")),
    CliCase("config-path-is-folder", "validate", None, {"config.yaml/run.yaml": "task: text_classification\n"},
            fragments=("{tmp}/config.yaml is a folder, not a config file", "it holds run.yaml")),
    CliCase("config-python-tag", "validate", "task: text_classification\nx: !!python/object/apply:os.system [id]\n",
            fragments=("not valid YAML at line 2", "python/object/apply:os.system")),
    CliCase("config-not-utf8", "validate", b"\xff\xfe\x00\x01task: x\n", fragments=("config.yaml", "not UTF-8 text")),
    CliCase("config-eval-split-and-fraction", "validate",
            tc(data={"eval_split": "{tmp}/eval.csv", "eval_fraction": 0.2}), {**TRAIN, "eval.csv": TRAIN_CSV},
            fragments=("data: set either eval_split or eval_fraction, not both",)),
    CliCase("config-unknown-task", "validate", tc(task="sentiment_analysis"), TRAIN,
            fragments=("task: unknown task 'sentiment_analysis'", "text_classification")),
    CliCase("config-misspelled-task", "validate", tc(task="text_clasification"), TRAIN,
            fragments=("task: unknown task 'text_clasification'; did you mean 'text_classification'?",)),
    CliCase("config-missing-task", "validate", tc(task=DROP), TRAIN, fragments=("task: required",)),
    CliCase("config-missing-model-name", "validate", tc(model={"name": DROP}), TRAIN,
            fragments=("model.name: required",)),
    CliCase("config-model-folder-missing", "validate", tc(model={"name": "{tmp}/no-such-model"}), TRAIN,
            fragments=("model.name:", "no-such-model")),
    CliCase("config-merge-adapter-without-peft", "validate", llm("llm_sft", peft={"merge_adapter": True}),
            CHATS_FILE, fragments=("peft", "merge_adapter needs peft")),
    # Every task the reference registers is read now (the "not supported yet" message is unit-tested with a stand-in).
    CliCase("config-autotrain-misspelled-vlm-task", "validate", autotrain(task="vlm:captionning"), TRAIN,
            fragments=("did you mean 'vlm:captioning'?",)),
    CliCase("config-autotrain-misspelled-task", "validate", autotrain(task="text-clasification"), TRAIN,
            fragments=("task: unknown task 'text-clasification'; did you mean 'text-classification'?",)),
    CliCase("config-autotrain-unknown-top-key", "validate", autotrain(hubb={"push_to_hub": False}), TRAIN,
            fragments=("hubb: unknown key; did you mean 'hub'?",)),
    CliCase("config-autotrain-unknown-param", "validate", autotrain(params={"lrr": 0.1}), TRAIN,
            fragments=("params.lrr:", "did you mean 'lr'?")),
    CliCase("config-autotrain-unknown-override", "validate", autotrain(), TRAIN, args=("training.max_step=1",),
            fragments=("training.max_step: unknown key; did you mean 'max_steps'?",)),
    CliCase("config-autotrain-unknown-reference-override", "validate", autotrain(), TRAIN, args=("params.epoch=1",),
            fragments=("params.epoch", "did you mean 'epochs'?")),
    CliCase("config-autotrain-push-without-token", "validate",
            autotrain(hub={"push_to_hub": True, "token": "${HF_TOKEN}"}), TRAIN, env={"HF_TOKEN": None},
            fragments=("hub.token: ${HF_TOKEN} is not set, and the run pushes to the Hub",)),
    CliCase("config-autotrain-token-unset-unused-note", "validate", autotrain(hub={"token": "${HF_TOKEN}"}), TRAIN,
            env={"HF_TOKEN": None}, code=0,
            fragments=("note: hub.token (${HF_TOKEN}) unset; not needed because the run does not push to the Hub",)),
    CliCase("config-autotrain-legacy-param-note", "validate", autotrain(params={"evaluation_strategy": "no"}),
            TRAIN, code=0,
            fragments=("note: params.evaluation_strategy is the reference's older name of eval_strategy",)),
    CliCase("config-override-unknown-key", "validate", tc(), TRAIN, args=("trainig.max_steps=1",),
            fragments=("trainig: unknown key; did you mean 'training'?",)),
    CliCase("config-override-bad-value", "validate", tc(), TRAIN, args=("training.num_train_epochs=many",),
            fragments=("training.num_train_epochs:", "'many'")),
    CliCase("config-override-without-equals", "validate", tc(), TRAIN, args=("training.max_steps",),
            fragments=("training.max_steps: override 'training.max_steps' must look like section.key=value",)),
    CliCase("config-override-into-scalar", "validate", tc(), TRAIN, args=("task.name=x",),
            fragments=("task.name: cannot set a key below 'task'",)),
    CliCase("config-env-unset-model", "validate", tc(model={"name": "${TRAINFORGE_BI_UNSET}"}), TRAIN,
            env={"TRAINFORGE_BI_UNSET": None},
            fragments=("model.name: environment variable TRAINFORGE_BI_UNSET is not set",)),
    CliCase("config-env-unset-override", "validate", tc(), TRAIN, args=("data.source=${TRAINFORGE_BI_UNSET}",),
            env={"TRAINFORGE_BI_UNSET": None},
            fragments=("data.source: environment variable TRAINFORGE_BI_UNSET is not set",)),
    CliCase("config-env-unset-unused-hub-token-note", "validate", tc(hub={"token": "${TRAINFORGE_BI_UNSET}"}),
            TRAIN, env={"TRAINFORGE_BI_UNSET": None}, code=0,
            fragments=("note: hub.token (${TRAINFORGE_BI_UNSET}) unset; not needed",)),
    CliCase("config-hub-push-without-repo", "validate", tc(hub={"push": True}), TRAIN,
            fragments=("hub: push: true needs repo_id",)),
    CliCase("config-output-dir-is-file", "validate", tc(output={"dir": "{tmp}/taken.txt"}),
            {**TRAIN, "taken.txt": "not a folder\n"}, fragments=("output.dir:", "taken.txt is a file, not a folder")),
    CliCase("config-output-dir-is-finished-run", "train", tc(output={"dir": "{run}"}), TRAIN,
            fragments=("output.dir {run} already holds a run", "output.overwrite=true")),
    CliCase("config-resume-finished-run", "train", tc(output={"dir": "{run}"}), TRAIN, args=("--resume",),
            fragments=("--resume: the run in {run} finished",)),
    CliCase("config-model-name-not-a-repo-id", "validate", tc(model={"name": "my model"}), TRAIN,
            fragments=("model.name:", "'my model'")),
    CliCase("train-corrupt-safetensors", "train", tc(model={"name": "{tmp}/model"}),
            {**TRAIN, "model/model.safetensors": NOT_SAFETENSORS}, copy={"model": "{bert}"},
            fragments=("model.safetensors",)),
    CliCase("train-overwrite-with-corrupt-model-keeps-run", "train",
            tc(model={"name": "{tmp}/model"}, output={"dir": "{tmp}/oldrun", "overwrite": True}),
            {**TRAIN, "model/model.safetensors": NOT_SAFETENSORS}, copy={"model": "{bert}", "oldrun": "{run}"},
            intact=("oldrun",), fragments=("model.name:", "model.safetensors is not a readable safetensors file")),
    CliCase("train-overwrite-diverging-keeps-run", "train",
            tc(training=DIVERGING | {"max_steps": 4}, output={"dir": "{tmp}/oldrun", "overwrite": True}), TRAIN,
            copy={"oldrun": "{run}"}, intact=("oldrun",), code=1,
            fragments=("training diverged", "training.learning_rate", "{tmp}/oldrun was kept")),
    CliCase("train-diverges-in-the-last-step", "train", tc(training=DIVERGING | {"max_steps": 2}), TRAIN, code=1,
            fragments=("training diverged",)),
    CliCase("config-report-to-unknown", "validate", tc(output={"report_to": ["wandbb"]}), TRAIN,
            fragments=("output.report_to", "'wandbb'")),
    CliCase("config-negative-max-train-rows", "validate", tc(data={"max_train_rows": -3}), TRAIN,
            fragments=("data.max_train_rows:", "(got -3)")),
    CliCase("config-max-length-zero", "validate", tc(params={"max_length": 0}), TRAIN,
            fragments=("params.max_length:", "greater than 0")),
    CliCase("config-max-length-over-positions", "validate", tc(params={"max_length": 512}), TRAIN,
            fragments=("params.max_length: 512 tokens", "max_position_embeddings: 64")),
    CliCase("train-default-max-length-over-positions", "train",
            tc(params=DROP, training={"max_steps": 1}), {"train.csv": LONG_CSV}, code=(0, 2),
            fragments=("params.max_length",)),
    CliCase("config-lora-unknown-module", "validate",
            llm("llm_sft", peft={"enabled": True, "target_modules": ["q_proj", "attn_qkv"]}), CHATS_FILE,
            fragments=("peft.target_modules: 'attn_qkv' names no module of the model", "q_proj")),
    CliCase("config-lora-lm-head", "validate", llm("llm_sft", peft={"enabled": True, "target_modules": ["lm_head"]}),
            CHATS_FILE, fragments=("peft.target_modules: 'lm_head' is the model's output layer",)),
]

# ------------------------------------------------------------------------------------------------ CLI: data files

DATA_CASES = [
    CliCase("data-missing-file", "validate", tc(data={"source": "{tmp}/nope.csv"}),
            fragments=("data.source '{tmp}/nope.csv' does not exist",)),
    CliCase("data-every-row-one-field-too-many", "validate", tc(),
            {"train.csv": "review,sentiment\n" + "".join(f"witty, moving film {i},positive\n" for i in range(8))},
            fragments=("train.csv: rows hold more fields than its header's 2 (first: rows 1, 2",)),
    CliCase("config-model-without-tokenizer", "validate", tc(model={"name": "{tmp}/model"}),
            {**TRAIN, "model/tokenizer.json": None, "model/tokenizer_config.json": None},
            copy={"model": "{bert}"}, fragments=("model.name:", "holds no tokenizer")),
    CliCase("data-empty-file", "validate", tc(), {"train.csv": ""},
            fragments=("train.csv is empty: it has no header and no rows",)),
    CliCase("data-header-only", "validate", tc(), {"train.csv": "review,sentiment\n"},
            fragments=("train.csv has no rows",)),
    CliCase("data-blank-lines-only", "validate", tc(data={"source": "{tmp}/train.jsonl"}),
            {"train.jsonl": "\n\n\n"}, fragments=("train.jsonl is empty: it holds no records",)),
    CliCase("data-duplicate-header", "validate", tc(), {"train.csv": dup_header_csv()},
            fragments=("train.csv: the header names a column more than once: 'review' (columns 1 and 3)",)),
    CliCase("data-ragged-rows", "validate", tc(), {"train.csv": TRAIN_CSV + "one,two,three\n"},
            fragments=("train.csv as CSV separated by commas", "line 18")),
    CliCase("data-bad-json-line", "validate", tc(data={"source": "{tmp}/train.jsonl"}),
            {"train.jsonl": jsonl_text([{"review": t, "sentiment": s} for t, s in REVIEWS[:4]]) + '{"review": "x",\n'},
            fragments=("train.jsonl as JSONL: line 5 is not valid JSON",)),
    CliCase("data-jsonl-non-object-line", "validate", tc(data={"source": "{tmp}/train.jsonl"}),
            {"train.jsonl": jsonl_text([{"review": t, "sentiment": s} for t, s in REVIEWS[:4]] + [[1, 2]])},
            fragments=("train.jsonl as JSONL: line 5 is not a JSON object: '[1, 2]' is a list",)),
    CliCase("data-json-array-non-object", "validate", tc(data={"source": "{tmp}/train.json"}),
            {"train.json": json.dumps([{"review": t, "sentiment": s} for t, s in REVIEWS[:6]] + [3])},
            fragments=("train.json as JSON: element 7 of the array (counting from 1) is not a JSON object: 3 is a "
                       "number",)),
    CliCase("data-json-scalar", "validate", tc(data={"source": "{tmp}/train.json"}),
            {"train.json": '"just a string"\n'},
            fragments=('train.json holds a single JSON value, a string ("just a string"), not a table of records',)),
    CliCase("data-not-utf8", "validate", tc(), {"train.csv": TRAIN_CSV.encode() + b"caf\x81 \x8d\x90,positive\n"},
            fragments=("train.csv is not UTF-8 text (byte 0x81 on line 18), nor Windows-1252",)),
    CliCase("data-unsupported-extension", "validate", tc(data={"source": "{tmp}/train.xlsx"}),
            {"train.xlsx": b"PK\x03\x04 not really"}, fragments=("cannot tell the format of {tmp}/train.xlsx",)),
    CliCase("data-missing-text-column", "validate", tc(data={"columns": {"text": "body"}}), TRAIN,
            fragments=("train.csv has no column 'body' for the text column", "Columns found: review, sentiment")),
    CliCase("data-missing-label-column", "validate", tc(data={"columns": {"label": "verdict"}}), TRAIN,
            fragments=("train.csv has no column 'verdict' for the label column",)),
    CliCase("data-unknown-logical-column", "validate", tc(data={"columns": {"txt": "review"}}), TRAIN,
            fragments=("data.columns.txt: not a column of task text_classification; did you mean 'text'?",)),
    CliCase("data-text-json-objects", "validate", tc(data={"source": "{tmp}/train.jsonl"}),
            {"train.jsonl": jsonl_text([{"review": {"title": t}, "sentiment": s} for t, s in REVIEWS])},
            fragments=("train.jsonl: the text column holds values that are not text", "row 1 holds a JSON object",
                       "column 'review'")),
    CliCase("data-text-numbers", "validate", tc(data={"source": "{tmp}/train.jsonl"}),
            {"train.jsonl": jsonl_text([{"review": i * 1.5, "sentiment": s} for i, (_, s) in enumerate(REVIEWS)])},
            fragments=("not text in 16 row(s)", "holds a number", "column 'review'")),
    CliCase("data-text-empty-strings", "validate", tc(),
            {"train.csv": csv_text([("" if i in (3, 7) else t, s) for i, (t, s) in enumerate(REVIEWS)])},
            fragments=("train.csv: the text column is empty in 2 row(s), first: rows 4, 8", "column 'review'")),
    CliCase("data-several-problems-one-message", "validate", tc(),
            {"train.csv": csv_text([("" if i == 4 else t, "" if i == 8 else s) for i, (t, s) in enumerate(REVIEWS)])},
            fragments=("text column is empty in 1 row(s), first: rows 5", "label column is empty in 1 row(s), first: "
                       "rows 9")),
    CliCase("data-parquet-duplicate-columns", "validate", tc(data={"source": "{tmp}/train.parquet"}),
            {"train.parquet": parquet_with_duplicate_columns},
            fragments=("train.parquet: the header names a column more than once: 'review'",)),
    CliCase("data-folder-without-split", "validate", tc(data={"source": "{tmp}/folder"}),
            {"folder/valid.csv": TRAIN_CSV},
            fragments=("no file for split 'train' in {tmp}/folder", "found: valid.csv")),
    CliCase("data-folder-two-train-files", "validate", tc(data={"source": "{tmp}/folder"}),
            {"folder/train.csv": TRAIN_CSV, "folder/train.jsonl": jsonl_text([{"review": t, "sentiment": s}
                                                                            for t, s in REVIEWS])},
            fragments=("{tmp}/folder holds several files for split 'train': train.csv, train.jsonl",)),
    CliCase("data-eval-fraction-leaves-no-rows", "validate", tc(data={"eval_fraction": 0.01}), TRAIN,
            fragments=("0.01 of {tmp}/train.csv (seed 42) has no rows",)),
    CliCase("data-source-is-empty-folder", "validate", tc(data={"source": "{tmp}/folder"}),
            {"folder/README.txt": "nothing here\n"}, fragments=("no file for split 'train' in {tmp}/folder",)),
    CliCase("data-eval-split-is-train-file", "validate", tc(data={"eval_split": "{tmp}/train.csv"}), TRAIN,
            fragments=("data.eval_split is the training file {tmp}/train.csv",)),
    CliCase("data-eval-split-missing-file", "validate", tc(data={"eval_split": "{tmp}/eval.csv"}), TRAIN,
            fragments=("data.eval_split '{tmp}/eval.csv' does not exist",)),
    CliCase("data-eval-split-missing-column", "validate", tc(data={"eval_split": "{tmp}/eval.csv"}),
            {**TRAIN, "eval.csv": csv_text(REVIEWS[:4], header=("review", "verdict"))},
            fragments=("eval.csv has no column 'sentiment' for the label column",)),
    CliCase("data-same-column-twice", "validate", tc(data={"columns": {"text": "review", "label": "review"}}), TRAIN,
            fragments=("data.columns: text and label both map to 'review'",)),
    CliCase("data-semicolons-note", "validate", tc(), {"train.csv": TRAIN_CSV.replace(",", ";")}, code=0,
            fragments=("train.csv is separated by semicolons, not commas",)),
    CliCase("data-cp1252-note", "validate", tc(),
            {"train.csv": (TRAIN_CSV + "caf\xe9 cr\xe8me,positive\n").encode("cp1252")}, code=0,
            fragments=("train.csv is not UTF-8 (byte 0xe9 on line 18); reading it as Windows-1252",)),
    CliCase("data-header-spaces-note", "validate", tc(),
            {"train.csv": TRAIN_CSV.replace("review,sentiment", " review , sentiment ")}, code=0,
            fragments=("train.csv: trimmed spaces around column names (' review ' -> 'review'",)),
]

# ------------------------------------------------------------------------------------------------ CLI: labels

LABEL_CASES = [
    CliCase("labels-single-class", "validate", tc(), {"train.csv": csv_text([(t, "positive") for t, _ in REVIEWS])},
            fragments=("train.csv: the label column holds a single class (positive)",)),
    CliCase("labels-class-only-in-eval", "validate", tc(data={"eval_split": "{tmp}/eval.csv"}),
            {**TRAIN, "eval.csv": csv_text([("so-so film", "neutral"), ("great fun", "positive")])},
            fragments=("eval.csv: labels ['neutral'] never occur in training", "rows 1")),
    CliCase("labels-continuous-scores", "validate", tc(data={"columns": {"label": "score"}}),
            {"train.csv": SCORES_CSV.replace("sentiment", "score")},
            fragments=("the label column ('score') holds 16 different numbers", "text_regression")),
    CliCase("labels-continuous-scores-with-eval", "validate",
            tc(data={"columns": {"label": "score"}, "eval_fraction": 0.25}),
            {"train.csv": SCORES_CSV.replace("sentiment", "score")}, fragments=("'score'", "regression")),
    CliCase("labels-some-empty", "validate", tc(),
            {"train.csv": csv_text([(t, "" if i == 5 else s) for i, (t, s) in enumerate(REVIEWS)])},
            fragments=("train.csv: the label column is empty in 1 row(s), first: rows 6",)),
    CliCase("labels-all-empty", "validate", tc(), {"train.csv": csv_text([(t, "") for t, _ in REVIEWS])},
            fragments=("train.csv: the label column is empty in 16 row(s)",)),
    CliCase("labels-regression-nan-target", "validate", tr(),
            {"train.csv": csv_text([(t, "" if i == 4 else i * 0.5) for i, (t, _) in enumerate(REVIEWS)],
                                   header=("review", "score"))},
            fragments=("train.csv: the target column is empty in 1 row(s), first: rows 5",)),
    CliCase("labels-regression-nan-literal", "validate", tr(), scored("NaN"),
            fragments=("train.csv: the target column is empty in 1 row(s), first: rows 5",)),
    CliCase("labels-regression-infinite-target", "validate", tr(), scored("-Infinity"),
            fragments=("train.csv: the target column", "row 5", "inf")),
    CliCase("labels-regression-text-target", "validate", tr(),
            {"train.csv": csv_text([(t, "high" if i == 2 else i * 0.5) for i, (t, _) in enumerate(REVIEWS)],
                                   header=("review", "score"))},
            fragments=("train.csv: the target column must be numeric", "row 3: 'high'")),
    CliCase("labels-number-spellings-note", "validate", tc(),
            relabelled(["1", "1.0", "2", "2.0"]),
            code=0, fragments=("2 label(s): 1, 2", "note: the label column ('sentiment')", "'1', '1.0' -> '1'")),
    CliCase("labels-zero-padded-codes", "validate", tc(),
            relabelled(["01", "02", "10"]),
            code=0, fragments=("3 label(s): 01, 02, 10",)),
    CliCase("labels-case-variants-note", "validate", tc(),
            relabelled(["Billing", "billing", "refund"]),
            code=0, fragments=("note: the label column ('sentiment'): labels 'Billing' and 'billing' differ only",)),
]

# ------------------------------------------------------------------------------------------------ CLI: predict

OUT = ("--output", "{tmp}/out.csv")
INPUTS = ("--input", "{tmp}/inputs.csv")
PREDICT_CASES = [
    CliCase("predict-not-a-run-dir", "predict", None, {"inputs.csv": "review\ngood\n", "notrun/x.txt": "x"},
            args=("{tmp}/notrun", *INPUTS, *OUT),
            fragments=("{tmp}/notrun is not a trainforge run directory (no config.resolved.yaml)",)),
    CliCase("predict-run-dir-missing", "predict", None, {"inputs.csv": "review\ngood\n"},
            args=("{tmp}/gone", *INPUTS, *OUT), fragments=("{tmp}/gone",)),
    CliCase("predict-unfinished-run", "predict", None,
            {"inputs.csv": "review\ngood\n", "half/config.resolved.yaml": "task: text_classification\n",
             "half/events.jsonl": '{"event": "run_started"}\n'},
            args=("{tmp}/half", *INPUTS, *OUT), fragments=("{tmp}/half holds no finished run (no metrics.json)",)),
    CliCase("predict-corrupt-model", "predict", None, {"inputs.csv": "review\ngood\n",
                                                       "badrun/model.safetensors": b"not a safetensors file"},
            copy={"badrun": "{run}"}, args=("{tmp}/badrun", *INPUTS, *OUT),
            fragments=("model.safetensors is not a readable safetensors file",)),
    CliCase("predict-run-dir-is-file", "predict", None, {"inputs.csv": "review\ngood\n"},
            args=("{tmp}/inputs.csv", *INPUTS, *OUT),
            fragments=("{tmp}/inputs.csv is not a trainforge run directory",)),
    CliCase("predict-input-missing", "predict", None, {}, args=("{run}", *INPUTS, *OUT),
            fragments=("data file not found: {tmp}/inputs.csv",)),
    CliCase("predict-input-empty-file", "predict", None, {"inputs.csv": ""}, args=("{run}", *INPUTS, *OUT),
            fragments=("inputs.csv is empty",)),
    CliCase("predict-input-header-only", "predict", None, {"inputs.csv": "review\n"}, args=("{run}", *INPUTS, *OUT),
            code=0, fragments=("wrote 0 predictions to {tmp}/out.csv",)),
    CliCase("predict-input-unsupported-extension", "predict", None, {"inputs.txt": "review\ngood\n"},
            args=("{run}", "--input", "{tmp}/inputs.txt", *OUT),
            fragments=("cannot tell the format of {tmp}/inputs.txt from its extension (.txt)",
                       "a file ending in one of .csv, .tsv, .jsonl, .json, .parquet")),
    CliCase("predict-missing-input-column", "predict", None, {"inputs.csv": "text\ngood fun\n"},
            args=("{run}", *INPUTS, *OUT), fragments=("no column 'review' (the run's text column); found: text",)),
    CliCase("predict-empty-texts", "predict", None, {"inputs.csv": 'review\ngood fun\n""\n'},
            args=("{run}", *INPUTS, *OUT), fragments=("the review column is empty in 1 row(s), first: rows 2",)),
    CliCase("predict-non-string-texts", "predict", None,
            {"inputs.jsonl": jsonl_text([{"review": "good"}, {"review": {"a": 1}}, {"review": 3}])},
            args=("{run}", "--input", "{tmp}/inputs.jsonl", *OUT),
            fragments=("the review column holds values that are not text in 2 row(s), first: rows 2, 3",)),
    CliCase("predict-bad-output-extension", "predict", None, {"inputs.csv": "review\ngood fun\n"},
            args=("{run}", *INPUTS, "--output", "{tmp}/out.xlsx"), fragments=("cannot write {tmp}/out.xlsx",)),
    CliCase("predict-input-duplicate-header", "predict", None, {"inputs.csv": "review,review\ngood,bad\n"},
            args=("{run}", *INPUTS, *OUT), fragments=("inputs.csv: the header names a column more than once",)),
    CliCase("predict-unknown-set-key", "predict", None, {"inputs.csv": "review\ngood fun\n"},
            args=("{run}", *INPUTS, *OUT, "--set", "params.max_lenght=8"),
            fragments=("params.max_lenght: unknown key; did you mean 'max_length'?",)),
    CliCase("predict-set-nonfinite", "predict", None, {"inputs.csv": "review\ngood fun\n"},
            args=("{run}", *INPUTS, *OUT, "--set", "params.max_length=.inf"),
            fragments=("params.max_length: Input should be a finite number",)),
    CliCase("predict-set-max-length-over-positions", "predict", None,
            {"inputs.csv": "review\n" + " ".join(["good fun film"] * 60) + "\n"},
            args=("{run}", *INPUTS, *OUT, "--set", "params.max_length=512"),
            code=0, fragments=("params.max_length 512 is beyond the model's 64 positions",)),
    CliCase("predict-output-over-run-file", "predict", None, {"inputs.csv": "review\ngood fun\n"},
            copy={"oldrun": "{run}"}, intact=("oldrun",),
            args=("{tmp}/oldrun", *INPUTS, "--output", "{tmp}/oldrun/metrics.json"),
            fragments=("metrics.json is inside the run directory",)),
    CliCase("predict-input-not-utf8", "predict", None, {"inputs.csv": b"review\ncaf\x81 \x8d\x90\n"},
            args=("{run}", *INPUTS, *OUT), fragments=("inputs.csv is not UTF-8 text (byte 0x81 on line 2)",)),
]

# ------------------------------------------------------------------------------------------------ CLI: tabular


def table(rows, header=("id", "x", "colour", "target")) -> dict:
    return {"table.csv": csv_text(rows, header=header)}


TABULAR_CASES = [
    CliCase("tabular-target-missing", "validate", tab(params={"target_columns": ["label"]}), table(TABLE_ROWS),
            fragments=("table.csv has no target column 'label'; columns found: x, colour, target",)),
    CliCase("tabular-id-like-column", "validate", tab(),
            table([(f"r{i:03d}", x, c, t) for i, x, c, t in TABLE_ROWS], header=("row_key", "x", "colour", "target")),
            fragments=("table.csv: column 'row_key'", "looks like a row id")),
    CliCase("tabular-target-copy", "validate", tab(),
            table([(i, x, t, t) for i, x, _, t in TABLE_ROWS], header=("id", "x", "answer", "target")),
            fragments=("table.csv: feature column 'answer' is a copy of the target 'target'",)),
    CliCase("tabular-single-class", "validate", tab(), table([(i, x, c, "yes") for i, x, c, _ in TABLE_ROWS]),
            fragments=("table.csv: target 'target' has the same value ('yes') in every row",)),
    CliCase("tabular-empty-targets", "validate", tab(),  # row 28 is in the 0.2 held out: reported once, with the file
            table([(i, x, c, "" if i % 4 == 3 else t) for i, x, c, t in TABLE_ROWS]),
            fragments=("table.csv: target 'target' is missing in 7 row(s), first: rows 4, 8, 12, 16, 20 ...",)),
    CliCase("tabular-regression-text-target", "validate", tab(task="tabular_regression", params={"metric": DROP}),
            table([(i, x, c, "high" if i == 3 else x * 2) for i, x, c, _ in TABLE_ROWS]),
            fragments=("table.csv: target 'target' must be numeric for regression", "row 4: 'high'")),
    CliCase("tabular-no-target-columns", "validate", tab(params={"target_columns": []}), table(TABLE_ROWS),
            fragments=("params.target_columns:", "at least 1 item")),
    CliCase("tabular-unknown-family", "validate", tab(params={"families": ["xgboostt"]}), table(TABLE_ROWS),
            fragments=("params.families.0:", "'xgboostt'")),
    CliCase("tabular-text-param", "validate", tab(params={"max_length": 32}), table(TABLE_ROWS),
            fragments=("params.max_length: unknown key",)),
    CliCase("tabular-numeric-placeholder-note", "validate", tab(),
            table([(i, "?" if i in (4, 9) else x, c, t) for i, x, c, t in TABLE_ROWS]), code=0,
            fragments=("table.csv: column 'x' holds numbers and 2 missing-value marker(s) ('?') at rows 5, 10",)),
    CliCase("tabular-training-field-ignored", "validate", tab(training={"learning_rate": 0.1}), table(TABLE_ROWS),
            fragments=("training.learning_rate: does not apply to task tabular_classification", "params.preset")),
]

# ------------------------------------------------------------------------------------------------ CLI: LLM data

LLM_CASES = [
    CliCase("llm-messages-not-list", "validate", llm("llm_sft"),
            {"data.jsonl": jsonl_text([{"messages": "hello there"}] * 8)},
            fragments=("data.jsonl: row 1, column 'messages': a string that is not a JSON list of turns",)),
    CliCase("llm-roles-wrong", "validate", llm("llm_sft"),
            {"data.jsonl": jsonl_text([{"messages": [{"role": "human", "content": "hi"},
                                                     {"role": "bot", "content": "hello"}]}] * 8)},
            fragments=("data.jsonl: row 1, column 'messages': unknown role 'human'",)),
    CliCase("llm-turn-without-content", "validate", llm("llm_sft"),
            {"data.jsonl": jsonl_text(CHATS[:7] + [{"messages": [{"role": "user"}]}])},
            fragments=("data.jsonl: row 8, column 'messages'", "must be a mapping with 'role' and 'content'")),
    CliCase("llm-no-assistant-turn", "validate", llm("llm_sft"),
            {"data.jsonl": jsonl_text([{"messages": [{"role": "user", "content": "hi"}]}] * 8)},
            fragments=("data.jsonl: row 1, column 'messages': the conversation has no assistant turn",)),
    CliCase("llm-sft-missing-text-column", "validate", llm("llm_sft", data={"columns": {"text": "conversation"}}),
            CHATS_FILE, fragments=("data.jsonl has no column 'conversation' for the text column",)),
    CliCase("llm-preference-all-identical", "validate", llm("llm_dpo"),
            {"data.jsonl": jsonl_text([{**p, "rejected": p["chosen"]} for p in PAIRS])},
            fragments=("data.jsonl: chosen and rejected are the same in every pair (8 rows)",)),
    CliCase("llm-preference-some-identical-note", "validate", llm("llm_orpo"),
            {"data.jsonl": jsonl_text([{**p, "rejected": p["chosen"]} if i == 2 else p for i, p in enumerate(PAIRS)])},
            code=0, fragments=("data.jsonl: 1 of 8 pairs have chosen == rejected (rows 3)",)),
    CliCase("llm-preference-missing-chosen", "validate", llm("llm_dpo"),
            {"data.jsonl": jsonl_text([{"prompt": p["prompt"], "rejected": p["rejected"]} for p in PAIRS])},
            fragments=("data.jsonl has no column 'chosen' for the chosen column", "Columns found: prompt, rejected")),
    CliCase("llm-reward-empty-chosen", "validate", llm("llm_reward"),
            {"data.jsonl": jsonl_text([{**p, "chosen": ""} if i == 3 else p for i, p in enumerate(PAIRS)])},
            fragments=("data.jsonl: column 'chosen' is empty in 1 row(s), first row 4",)),
    CliCase("llm-generic-non-text", "validate", llm("llm_generic"),
            {"data.jsonl": jsonl_text([{"text": "some text"}] * 7 + [{"text": {"a": 1}}])},
            fragments=("data.jsonl: row 8, column 'text': plain-text rows must be strings",)),
]

CLI_CASES = CONFIG_CASES + DATA_CASES + LABEL_CASES + PREDICT_CASES + TABULAR_CASES + LLM_CASES

# ------------------------------------------------------------------------------------------------ app API


def app_tc(**sections) -> dict:
    """The app's text-classification config (no output.dir: the app chooses it)."""
    return tc(output={"dir": DROP}, **sections)


def key(name: str) -> str:
    """The JSON of a 422 problem's key path."""
    return f'"key":"{name}"'


VALIDATE = "/api/config/validate"
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
SECRET = "s3cret-value-0123456789"
APP_CASES = [
    AppCase("app-validate-unknown-key", "post", VALIDATE, {"config": app_tc(training={"learning_rat": 0.1})},
            files=TRAIN, fragments=(key("training.learning_rat"), "did you mean 'learning_rate'?")),
    AppCase("app-validate-wrong-type", "post", VALIDATE, {"config": app_tc(training={"num_train_epochs": "three"})},
            files=TRAIN, fragments=(key("training.num_train_epochs"), "'three'")),
    AppCase("app-validate-negative-seed", "post", VALIDATE, {"config": app_tc(training={"seed": -5})},
            files=TRAIN, fragments=(key("training.seed"), "(got -5)")),
    AppCase("app-validate-several-problems", "post", VALIDATE,
            {"config": app_tc(training={"seed": -5, "learning_rat": 1}, params={"max_lenght": 8})}, files=TRAIN,
            fragments=(key("training.seed"), key("training.learning_rat"), key("params.max_lenght"))),
    AppCase("app-validate-unknown-task", "post", VALIDATE, {"config": app_tc(task="text_clasification")},
            files=TRAIN, fragments=(key("task"), "did you mean 'text_classification'?")),
    AppCase("app-validate-autotrain-unknown-key", "post", VALIDATE,
            {"config": autotrain(project_name=DROP, hubb={"push_to_hub": False})}, files=TRAIN,
            fragments=(key("hubb"), "did you mean 'hub'?")),
    AppCase("app-validate-empty-config", "post", VALIDATE, {"config": {}},
            fragments=(key("task"), key("model"), key("data"))),
    AppCase("app-validate-nonfinite-lr", "post", VALIDATE,
            '{"config": {"task": "text_classification", "model": {"name": "{bert}"}, "data": {"source": '
            '"{tmp}/train.csv", "columns": {"text": "review", "label": "sentiment"}}, "training": {"learning_rate": '
            "Infinity}}}", files=TRAIN, fragments=(key("training.learning_rate"), "finite number")),
    AppCase("app-validate-not-a-mapping", "post", VALIDATE, {"config": "task: text_classification"},
            fragments=('"config"', "valid dictionary")),
    AppCase("app-validate-missing-data", "post", VALIDATE, {"config": app_tc(data={"source": "{tmp}/nope.csv"})},
            fragments=(key("data"), "{tmp}/nope.csv' does not exist")),
    AppCase("app-validate-duplicate-header", "post", VALIDATE, {"config": app_tc()},
            files={"train.csv": dup_header_csv()},
            fragments=("train.csv: the header names a column more than once: 'review'",)),
    AppCase("app-validate-empty-labels", "post", VALIDATE, {"config": app_tc()},
            files={"train.csv": csv_text([(t, "" if i == 2 else s) for i, (t, s) in enumerate(REVIEWS)])},
            fragments=("train.csv: the label column is empty in 1 row(s), first: rows 3",)),
    AppCase("app-validate-max-length-over-positions", "post", VALIDATE, {"config": app_tc(params={"max_length": 512})},
            files=TRAIN, fragments=(key("params.max_length"), "64")),
    AppCase("app-validate-hub-token-literal", "post", VALIDATE,
            {"config": app_tc(hub={"token": "hf_literalTokenValue0123456789"})}, files=TRAIN,
            fragments=(key("hub.token"), "never stores tokens"), absent=("hf_literalTokenValue0123456789",)),
    AppCase("app-validate-trust-remote-code", "post", VALIDATE,
            {"config": app_tc(model={"trust_remote_code": True})}, files=TRAIN,
            fragments=(key("model.trust_remote_code"), "--allow-remote-code")),
    AppCase("app-validate-proc-environ", "post", VALIDATE, {"config": app_tc(data={"source": "/proc/self/environ"})},
            fragments=(key("data.source"), "/proc/self/environ is not a data file this app reads")),
    AppCase("app-validate-proc-eval-split", "post", VALIDATE,
            {"config": app_tc(data={"eval_split": "/proc/self/environ", "eval_fraction": DROP})}, files=TRAIN,
            fragments=(key("data.eval_split"), "/proc/self/environ")),
    AppCase("app-validate-env-not-read", "post", VALIDATE,
            {"config": app_tc(data={"source": "${TRAINFORGE_BI_SECRET}/train.csv"})},
            env={"TRAINFORGE_BI_SECRET": SECRET}, fragments=("${TRAINFORGE_BI_SECRET}/train.csv",), absent=(SECRET,)),
    AppCase("app-validate-env-in-model-name", "post", VALIDATE,
            {"config": app_tc(model={"name": "${TRAINFORGE_BI_SECRET}"})}, files=TRAIN,
            env={"TRAINFORGE_BI_SECRET": SECRET}, fragments=(key("model.name"),), absent=(SECRET,)),
    AppCase("app-runs-create-bad-config", "post", "/api/runs", {"config": app_tc(training={"learning_rate": "fast"})},
            files=TRAIN, fragments=(key("training.learning_rate"), "'fast'")),
    AppCase("app-runs-create-bad-data", "post", "/api/runs", {"config": app_tc()},
            files={"train.csv": csv_text([(t, "positive") for t, _ in REVIEWS])},
            fragments=("train.csv: the label column holds a single class (positive)",)),
    AppCase("app-runs-create-name-too-long", "post", "/api/runs", {"config": app_tc(), "name": "x" * 201},
            files=TRAIN, fragments=('"name"', "at most 200 characters")),
    AppCase("app-runs-create-remote-code", "post", "/api/runs", {"config": app_tc(model={"trust_remote_code": True})},
            files=TRAIN, fragments=(key("model.trust_remote_code"),)),
    AppCase("app-preview-missing-file", "post", "/api/preview", {"source": "{tmp}/nope.csv"},
            fragments=(key("data.source"), "{tmp}/nope.csv' does not exist")),
    AppCase("app-preview-proc-environ", "post", "/api/preview", {"source": "/proc/self/environ"},
            fragments=(key("data.source"), "is not a data file this app reads")),
    AppCase("app-preview-unknown-task", "post", "/api/preview", {"source": "{upload}", "task": "nope"},
            status=404, fragments=("unknown task 'nope'",)),
    AppCase("app-preview-ragged", "post", "/api/preview", {"source": "{tmp}/train.csv"},
            files={"train.csv": TRAIN_CSV + "a,b,c,d\n"}, fragments=(key("data.source"), "line 18")),
    AppCase("app-preview-duplicate-header", "post", "/api/preview", {"source": "{tmp}/train.csv"},
            files={"train.csv": dup_header_csv()}, fragments=(key("data.source"), "'review' (columns 1 and 3)")),
    AppCase("app-preview-parquet-duplicate-columns", "post", "/api/preview", {"source": "{tmp}/train.parquet"},
            files={"train.parquet": parquet_with_duplicate_columns},
            fragments=(key("data.source"), "train.parquet: the header names a column more than once")),
    AppCase("app-preview-json-array-non-object", "post", "/api/preview", {"source": "{tmp}/train.json"},
            files={"train.json": json.dumps([{"review": "good", "sentiment": "positive"}, 3])},
            fragments=(key("data.source"), "train.json as JSON: element 2 of the array (counting from 1)")),
    AppCase("app-preview-folder-without-split", "post", "/api/preview", {"source": "{tmp}/folder"},
            files={"folder/valid.csv": TRAIN_CSV}, fragments=(key("data.source"), "no file for split 'train'")),
    AppCase("app-preview-dev-zero", "post", "/api/preview", {"source": "/dev/zero"},
            fragments=(key("data.source"), "/dev/zero is not a data file this app reads")),
    AppCase("app-preview-not-utf8", "post", "/api/preview", {"source": "{tmp}/train.csv"},
            files={"train.csv": TRAIN_CSV.encode() + b"caf\x81 \x8d\x90,positive\n"},
            fragments=(key("data.source"), "not UTF-8 text")),
    AppCase("app-preview-too-many-rows", "post", "/api/preview", {"source": "{upload}", "rows": 100000},
            fragments=('"rows"', "less than or equal to 200")),
    AppCase("app-upload-wrong-type", "post", "/api/uploads", upload=("tool.exe", b"MZ\x90\x00"), status=415,
            fragments=("tool.exe: unsupported file type",)),
    AppCase("app-upload-binary-csv", "post", "/api/uploads", upload=("reviews.csv", b"\x00\x01\x02"), status=415,
            fragments=("reviews.csv is not a text file",)),
    AppCase("app-upload-fake-parquet", "post", "/api/uploads", upload=("t.parquet", b"a,b\n1,2\n"), status=415,
            fragments=("t.parquet is not a Parquet file",)),
    AppCase("app-upload-empty", "post", "/api/uploads", upload=("reviews.csv", b""), status=400,
            fragments=("reviews.csv is empty",)),
    AppCase("app-upload-not-a-zip", "post", "/api/uploads", upload=("fake.zip", b"not a zip"), status=415,
            fragments=("fake.zip is not a ZIP archive",)),
    AppCase("app-upload-corrupt-zip", "post", "/api/uploads", upload=("corrupt.zip", corrupt_zip), status=400,
            fragments=("corrupt.zip is not a readable ZIP archive",)),
    AppCase("app-upload-lying-size-zip", "post", "/api/uploads", upload=("lying.zip", lying_zip), status=400,
            fragments=("lying.zip is not a readable ZIP archive",)),
    AppCase("app-upload-zip-slip", "post", "/api/uploads",
            upload=("slip.zip", lambda: zip_of({"../../evil.csv": b"a\n1\n"})), status=400,
            fragments=("archive member '../../evil.csv' points outside the archive",)),
    AppCase("app-upload-zip-absolute", "post", "/api/uploads",
            upload=("abs.zip", lambda: zip_of({"/tmp/evil.csv": b"a\n1\n"})), status=400,
            fragments=("'/tmp/evil.csv' points outside the archive",)),
    AppCase("app-upload-zip-symlink", "post", "/api/uploads", upload=("link.zip", symlink_zip), status=400,
            fragments=("archive member 'passwd' is a symbolic link",)),
    AppCase("app-upload-no-files", "post", "/api/uploads", fragments=('"files"', "Field required")),
    AppCase("app-upload-bad-name", "post", "/api/uploads", upload=("..", b"a\n1\n"), status=400,
            fragments=("unusable file name '..'",)),
    AppCase("app-predict-unknown-run", "post", "/api/runs/nope/predict", {"inputs": {"review": "good"}},
            status=404, fragments=("no run 'nope'",)),
    AppCase("app-predict-missing-column", "post", "/api/runs/{run_id}/predict", {"inputs": {"text": "good"}},
            status=400, fragments=("no column 'review' (the run's text column); found: text",)),
    AppCase("app-predict-empty-text", "post", "/api/runs/{run_id}/predict", {"rows": [{"review": ""}]},
            status=400, fragments=("the review column is empty in 1 row(s), first: rows 1",)),
    AppCase("app-predict-non-string-text", "post", "/api/runs/{run_id}/predict",
            {"rows": [{"review": "good"}, {"review": 3}]}, status=400,
            fragments=("the review column holds values that are not text", "rows 2")),
    AppCase("app-predict-ragged-csv", "post", "/api/runs/{run_id}/predict", {"csv": "review\ngood\na,b,c\n"},
            fragments=(key("csv"), "line 3")),
    AppCase("app-predict-no-inputs", "post", "/api/runs/{run_id}/predict", {},
            fragments=(key("inputs"), "give inputs (one row), rows or csv")),
    AppCase("app-chat-non-llm-run", "post", "/api/runs/{run_id}/chat", CHAT, status=409,
            fragments=("is a text_classification run, not a text-generation run",)),
    AppCase("app-chat-unknown-run", "post", "/api/runs/nope/chat", CHAT, status=404, fragments=("no run 'nope'",)),
    AppCase("app-chat-bad-role", "post", "/api/runs/{run_id}/chat",
            {"messages": [{"role": "human", "content": "hi"}]}, fragments=('"role"', '"input":"human"')),
    AppCase("app-cancel-finished-run", "post", "/api/runs/{run_id}/cancel", status=409,
            fragments=("already ended (succeeded)",)),
    AppCase("app-logs-unknown-run", "get", "/api/runs/nope/logs", status=404, fragments=("no run 'nope'",)),
    AppCase("app-card-unknown-run", "get", "/api/runs/nope/card", status=404, fragments=("no run 'nope'",)),
    AppCase("app-events-unknown-run", "get", "/api/runs/nope/events", status=404, fragments=("no run 'nope'",)),
    AppCase("app-download-unknown-run", "get", "/api/runs/nope/download", status=404, fragments=("no run 'nope'",)),
    AppCase("app-parse-duplicate-key", "post", "/api/config/parse",
            {"yaml": "task: x\ntraining: {seed: 1}\nmodel: m\ntraining: {}\n"},
            fragments=("duplicate key 'training' at lines 2 and 4",)),
    AppCase("app-parse-alias-bomb", "post", "/api/config/parse", {"yaml": ALIAS_BOMB}, fragments=("through aliases",)),
    AppCase("app-parse-invalid-yaml", "post", "/api/config/parse", {"yaml": "task: [unclosed\n"},
            fragments=("not valid YAML at line 2",)),
    AppCase("app-parse-python-tag", "post", "/api/config/parse", {"yaml": "a: !!python/object/apply:os.system [id]\n"},
            fragments=("not valid YAML at line 1", "python/object/apply:os.system")),
    AppCase("app-parse-not-mapping", "post", "/api/config/parse", {"yaml": "- a list\n"},
            fragments=("the YAML must be a mapping",)),
    AppCase("app-schema-unknown-task", "get", "/api/tasks/text_clasification/schema", status=404,
            fragments=("unknown task 'text_clasification'",)),
]
# fmt: on
