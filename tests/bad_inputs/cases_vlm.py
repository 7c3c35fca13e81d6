"""Bad inputs of the vlm task: images (missing, corrupt, no column), answers, chat rows, models, settings.

``{vlm}`` is the tiny LLaVA (tests/tasks/_vlm_fixtures.py), ``{llama}`` the tiny text-only Llama. The data is a
folder ``{tmp}/data`` of 8 small PNGs with a ``metadata.jsonl`` (``file_name``, ``caption``), changed per case.
"""

from __future__ import annotations

import io
from functools import cache

from bad_inputs.cases import DROP, CliCase, _merge, jsonl_text

ROWS = [{"file_name": f"images/{i}.png", "caption": f"a {'red' if i % 2 else 'blue'} square"} for i in range(8)]


@cache
def png(red: int = 200) -> bytes:
    """A 16-pixel PNG (a flat colour)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (red, 40, 200 - red)).save(buffer, format="PNG")
    return buffer.getvalue()


def truncated() -> bytes:
    return png()[:60]


IMAGES = {f"data/images/{i}.png": (lambda i=i: png(40 + 20 * i)) for i in range(8)}


def data(rows: list[dict] | None = None, **files) -> dict:
    """The image folder with ``metadata.jsonl`` holding ``rows`` (default ``ROWS``); ``files`` replace members."""
    return {**IMAGES, "data/metadata.jsonl": jsonl_text(ROWS if rows is None else rows), **files}


def with_row(row: int, **values) -> list[dict]:
    """``ROWS`` with ``row`` (0-based) updated by ``values`` (a None value removes the key)."""
    rows = [dict(r) for r in ROWS]
    rows[row].update(values)
    rows[row] = {k: v for k, v in rows[row].items() if v is not None}
    return rows


def vlm(**sections) -> dict:
    """A fast vlm config on the tiny LLaVA and ``{tmp}/data`` (captions); sections merge into it."""
    base = {
        "task": "vlm",
        "model": {"name": "{vlm}"},
        "data": {"source": "{tmp}/data", "columns": {"answer": "caption"}, "eval_fraction": 0},
        "training": {"num_train_epochs": 1, "per_device_train_batch_size": 4},
        "output": {"dir": "{tmp}/run", "report_to": ["none"], "save_checkpoints": False},
    }
    return _merge(base, sections)


def chats(turns: list) -> list[dict]:
    """Rows whose ``messages`` are ``turns`` (every row the same), on the folder's images."""
    return [{"file_name": r["file_name"], "messages": turns} for r in ROWS]


CHAT = {"data": {"columns": DROP}}  # the default column names: image, messages
QUESTION = {"type": "text", "text": "what colour is it?"}

# fmt: off
CLI_CASES = [
    CliCase("vlm-missing-image-file", "validate", vlm(), data(with_row(2, file_name="images/missing.png")),
            fragments=("1 missing file(s)", "row 3:", "images/missing.png")),
    CliCase("vlm-corrupt-image", "validate", vlm(), data(**{"data/images/5.png": truncated}),
            fragments=("corrupt or truncated image(s)", "row 6:", "5.png")),
    CliCase("vlm-not-an-image", "validate", vlm(), data(**{"data/images/4.png": b"a text file named .png"}),
            fragments=("not images PIL can read", "4.png")),
    CliCase("vlm-empty-answer", "validate", vlm(), data(with_row(2, caption="  ")),
            fragments=("the answer column ('caption') is empty in 1 row(s), first: rows 3",)),
    CliCase("vlm-empty-answer-train", "train", vlm(), data(with_row(6, caption=None)),
            fragments=("the answer column ('caption') is empty", "rows 7")),
    CliCase("vlm-answer-not-text", "validate", vlm(), data(with_row(0, caption=["a", "list"])),
            fragments=("the answer column ('caption') holds values that are not text in 1 row(s)", "rows 1")),
    CliCase("vlm-no-image-column", "validate", vlm(data={"source": "{tmp}/data/metadata.jsonl"}),
            data([{"picture": r["file_name"], "caption": r["caption"]} for r in ROWS]),
            fragments=("has no column 'image' for the image column", "Columns found: picture, caption")),
    CliCase("vlm-metadata-folder-without-image-column", "validate", vlm(),
            data([{"picture": r["file_name"], "caption": r["caption"]} for r in ROWS]),
            fragments=("has no column 'image'", "picture, caption")),
    CliCase("vlm-eval-split-without-the-prompt-column", "validate",
            vlm(data={"source": "{tmp}/data/metadata.jsonl", "eval_split": "{tmp}/data/eval.jsonl"}),
            data([{**r, "prompt": "what colour?"} for r in ROWS], **{"data/eval.jsonl": jsonl_text(ROWS[:4])}),
            fragments=("eval.jsonl: its text columns (answer) differ from the training rows' (prompt, answer",)),
    CliCase("vlm-no-answer-column", "validate", vlm(data={"columns": DROP}), data(),
            fragments=("no answer column ('answer') and no messages column", "data.columns: {answer: caption}")),
    CliCase("vlm-messages-without-image-placeholder", "validate", vlm(**CHAT),
            data(chats([{"role": "user", "content": [QUESTION]}, {"role": "assistant", "content": "red"}])),
            fragments=("column 'messages', rows 1, 2, 3, 4, 5 ...", "no image placeholder")),
    CliCase("vlm-messages-two-image-placeholders", "validate", vlm(**CHAT),
            data(chats([{"role": "user", "content": [{"type": "image"}, QUESTION, {"type": "image"}]},
                        {"role": "assistant", "content": "red"}])),
            fragments=("2 image placeholders",)),
    CliCase("vlm-messages-end-with-user", "validate", vlm(**CHAT),
            data(chats([{"role": "user", "content": "what colour?"}])),
            fragments=("the last turn must be the assistant's answer",)),
    CliCase("vlm-messages-not-json", "validate", vlm(**CHAT),
            data([{**r, "messages": "user: what colour?"} for r in ROWS]),
            fragments=("not a JSON list of {role, content} turns",)),
    CliCase("vlm-image-token-in-text", "validate", vlm(), data(with_row(1, caption="<image> a red square")),
            fragments=("rows 2 hold the text '<image>', the model's image token",)),
    CliCase("vlm-text-only-model", "validate", vlm(model={"name": "{llama}"}), data(),
            fragments=("model.name", "is a llama model, not an image-text-to-text model", "llm_sft")),
    CliCase("vlm-best-metric-unknown", "validate", vlm(training={"metric_for_best_model": "accuracy"}), data(),
            fragments=("training.metric_for_best_model", "'accuracy' is not a vlm score", "rougeL")),
    CliCase("vlm-best-metric-without-generation", "validate",
            vlm(training={"metric_for_best_model": "bleu"}, params={"eval_generate_rows": 0}), data(),
            fragments=("bleu scores generated answers", "params.eval_generate_rows")),
    CliCase("vlm-empty-default-prompt", "validate", vlm(params={"prompt": ""}), data(),
            fragments=("params.prompt",)),
    CliCase("vlm-autotrain-unknown-column", "validate",
            {"task": "vlm:captioning", "base_model": "{vlm}", "project_name": "{tmp}/run", "backend": "local",
             "data": {"path": "{tmp}/data", "train_split": "train", "valid_split": None,
                      "column_mapping": {"image_column": "file_name", "caption_column": "caption"}},
             "params": {"epochs": 1}, "hub": {"push_to_hub": False}},
            data(), fragments=("data.column_mapping.caption_column", "known: image_column, text_column")),
]
# fmt: on
