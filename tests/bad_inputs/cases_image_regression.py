"""Bad inputs of image_regression: targets that are not finite numbers or not one shape, images that cannot be read,
metadata that does not name the images. Each message names the file, column and rows.

``{vit}`` is the tiny ViT with its image processor (tests/conftest.py).
"""

from __future__ import annotations

from bad_inputs.cases import CliCase, _merge, csv_text, jsonl_text
from bad_inputs.cases_image_classification import png, truncated_png

IMAGES = {f"data/images/{i}.png": (lambda i=i: png("red_square", i)) for i in range(8)}


def metadata(*changes: tuple[int, dict], key: str = "file_name") -> dict:
    """``{tmp}/data/metadata.jsonl`` for the 8 images (target i / 8), with rows replaced by ``changes``."""
    records = [{key: f"images/{i}.png", "target": i / 8} for i in range(8)]
    for row, record in changes:
        records[row] = {**records[row], **record}
    return {**IMAGES, "data/metadata.jsonl": jsonl_text(records)}


def ir(**sections) -> dict:
    """A fast image_regression config on the tiny ViT and ``{tmp}/data`` (images + metadata.jsonl)."""
    base = {
        "task": "image_regression",
        "model": {"name": "{vit}"},
        "data": {"source": "{tmp}/data", "eval_fraction": 0},
        "training": {"num_train_epochs": 1, "learning_rate": 0.01, "per_device_train_batch_size": 8},
        "output": {"dir": "{tmp}/run", "report_to": ["none"], "save_checkpoints": False},
    }
    return _merge(base, sections)


# fmt: off
CLI_CASES = [
    CliCase("imgreg-non-numeric-target", "validate", ir(), metadata((2, {"target": "high"}), (5, {"target": "n/a"})),
            fragments=("{tmp}/data/metadata.jsonl: the target column must be numeric for regression",
                       "row 3: 'high'", "row 6: 'n/a'")),
    CliCase("imgreg-empty-target", "validate", ir(), metadata((1, {"target": None})),
            fragments=("{tmp}/data/metadata.jsonl: the target column is empty in 1 row(s), first: rows 2",)),
    CliCase("imgreg-infinite-target", "validate", ir(),
            {**IMAGES, "data/metadata.csv": csv_text([(f"images/{i}.png", "inf" if i == 4 else i) for i in range(8)],
                                                     ("file_name", "target"))},
            fragments=("{tmp}/data/metadata.csv: the target column must hold finite numbers", "row 5")),
    CliCase("imgreg-missing-image", "validate", ir(), {**metadata(), "data/images/6.png": None},
            fragments=("1 missing file(s): row 7: {tmp}/data/images/6.png",)),
    CliCase("imgreg-corrupt-image", "validate", ir(), {**metadata(), "data/images/0.png": truncated_png},
            fragments=("corrupt or truncated image(s): row 1: {tmp}/data/images/0.png",)),
    CliCase("imgreg-ragged-target-lists", "validate", ir(),
            metadata(*[(i, {"target": [0.1, 0.2]}) for i in range(7)], (7, {"target": [0.3]})),
            fragments=("lists of different lengths ([1, 2])", "give every image the same number of targets")),
    CliCase("imgreg-target-names-mismatch", "validate", ir(params={"target_names": ["a", "b"]}), metadata(),
            fragments=("params.target_names names 2 targets, but the data holds 1",)),
    CliCase("imgreg-metadata-without-file-name", "validate", ir(), metadata(key="path"),
            fragments=("{tmp}/data/metadata.jsonl has no column 'image' for the image column",
                       "Columns found: path, target")),
    CliCase("imgreg-class-folders-without-target", "validate", ir(),
            {f"data/cats/{i}.png": (lambda i=i: png("red_square", i)) for i in range(3)},
            fragments=("{tmp}/data has no column 'target'", "Columns found: image, label")),
]
# fmt: on
