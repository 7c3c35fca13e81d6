"""Bad inputs of image_classification: broken, empty, missing and stray files, labels a classifier cannot learn
from, split layouts that do not match. Each message names the file (or folder) and the fix.

``{vit}`` is the tiny ViT with its image processor (tests/conftest.py). Images are 32x32 PNGs written by the case.
"""

from __future__ import annotations

import io
from functools import cache

from bad_inputs.cases import CliCase, _merge, csv_text, zip_of

CLASSES = {"red_square": ((210, 40, 40), "square"), "blue_disk": ((40, 60, 210), "disk")}


@cache
def png(name: str = "red_square", seed: int = 0) -> bytes:
    """A 32x32 PNG of class ``name`` (the tests' shapes and colours)."""
    from conftest import make_image

    colour, shape = CLASSES[name]
    buffer = io.BytesIO()
    make_image(colour, shape, seed).save(buffer, format="PNG")
    return buffer.getvalue()


def truncated_png() -> bytes:
    data = png("blue_disk", 99)
    return data[: len(data) // 2]


def folder(split: str = "train", per_class: int = 6, classes=tuple(CLASSES)) -> dict:
    """``{tmp}/data/<split>/<class>/<i>.png`` files."""
    return {
        f"data/{split}/{name}/{i}.png": (lambda name=name, i=i: png(name, i))
        for name in classes
        for i in range(per_class)
    }


def ic(**sections) -> dict:
    """A fast image_classification config on the tiny ViT and ``{tmp}/data``; sections merge into it."""
    base = {
        "task": "image_classification",
        "model": {"name": "{vit}"},
        "data": {"source": "{tmp}/data", "eval_fraction": 0},
        "training": {"num_train_epochs": 1, "learning_rate": 0.01, "per_device_train_batch_size": 8},
        "output": {"dir": "{tmp}/run", "report_to": ["none"], "save_checkpoints": False},
    }
    return _merge(base, sections)


LISTED = csv_text([(f"pics/{i}.png", "red_square" if i % 2 else "blue_disk") for i in range(12)], ("path", "label"))
PICS = {f"pics/{i}.png": (lambda i=i: png("red_square" if i % 2 else "blue_disk", i)) for i in range(12)}
CSV_DATA = {"data": {"source": "{tmp}/labels.csv", "columns": {"image": "path"}}}
EVAL = {"data": {"eval_split": "validation", "eval_fraction": None}}

# fmt: off
CLI_CASES = [
    CliCase("img-corrupt-image", "validate", ic(), {**folder(), "data/train/blue_disk/cut.png": truncated_png},
            fragments=("{tmp}/data/train: images that cannot be used", "1 corrupt or truncated image(s)",
                       "{tmp}/data/train/blue_disk/cut.png", "Fix or remove those files")),
    CliCase("img-zero-byte-file", "validate", ic(), {**folder(), "data/train/red_square/empty.png": b""},
            fragments=("empty (zero-byte) file(s)", "{tmp}/data/train/red_square/empty.png")),
    CliCase("img-text-file-named-jpg", "validate", ic(), {**folder(), "data/train/red_square/notes.jpg": b"hello"},
            fragments=("not images PIL can read", "{tmp}/data/train/red_square/notes.jpg")),
    CliCase("img-missing-file-in-csv", "validate", ic(**CSV_DATA),
            {**PICS, "pics/3.png": None, "labels.csv": LISTED},
            fragments=("{tmp}/labels.csv: images (column 'path') that cannot be used", "1 missing file(s)",
                       "row 4: {tmp}/pics/3.png")),
    CliCase("img-single-class", "validate", ic(), folder(classes=("red_square",)),
            fragments=("every image has the class 'red_square'", "at least two classes")),
    CliCase("img-too-few-per-class", "validate", ic(),
            {**folder(), "data/train/green/0.png": lambda: png("red_square", 50), "data/train/green/1.png": png},
            fragments=("too few training images for class(es) 'green': 2", "params.min_images_per_class")),
    CliCase("img-class-missing-from-eval-split", "validate", ic(**EVAL),
            {**folder(), **folder("validation", 2, ("blue_disk",))},
            fragments=("{tmp}/data/validation: no images of class(es) ['red_square']",
                       "{tmp}/data/validation/red_square/")),
    CliCase("img-eval-class-unseen-in-training", "validate", ic(**EVAL),
            {**folder(), **folder("validation", 2), "data/validation/green/0.png": lambda: png("blue_disk", 7)},
            fragments=("classes ['green'] never occur in training", "{tmp}/data/validation/green/0.png")),
    CliCase("img-loose-images-without-labels", "validate", ic(),
            {f"data/train/{i}.png": (lambda i=i: png("red_square", i)) for i in range(6)},
            fragments=("{tmp}/data/train holds 6 images but no labels", "one sub-folder per class", "metadata.jsonl")),
    CliCase("img-no-images-at-all", "validate", ic(), {"data/train/a/readme.txt": "x", "data/train/b/notes.md": "y"},
            fragments=("{tmp}/data/train holds no images",)),
    CliCase("img-zip-slip", "validate", ic(data={"source": "{tmp}/data.zip"}),
            {"data.zip": lambda: zip_of({"train/red_square/0.png": png(), "../../escape.png": png()})},
            fragments=("{tmp}/data.zip: member '../../escape.png' points outside the archive",)),
    CliCase("img-missing-split-folder", "validate", ic(**EVAL), folder(),
            fragments=("no eval split 'validation' in {tmp}/data", "found: train")),
    CliCase("img-csv-without-image-column", "validate", ic(data={"source": "{tmp}/labels.csv"}),
            {**PICS, "labels.csv": LISTED},
            fragments=("{tmp}/labels.csv has no column 'image' for the image column", "Columns found: path, label")),
]
# fmt: on
