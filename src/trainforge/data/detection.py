"""Object-detection data: COCO JSON and per-image ``objects`` read into one frame shape, and the box checks.

Two ways to give boxes, one frame shape for the task (columns ``image``: a file path, ``objects``: a mapping
``{"bbox": [[x, y, w, h], ...], "category": [...]}``, one row per image):

* COCO JSON (``images``, ``annotations``, ``categories``; ``bbox`` = ``[x, y, width, height]`` in pixels from the
  top-left corner): ``read_coco`` turns it into that frame. ``file_name`` is looked for beside the JSON file, then
  in an ``images/`` folder beside it. Images without annotations are kept (negatives).
* Per-image rows whose ``objects`` cell holds ``{"bbox": [...], "category": [...]}`` (the reference's
  ``metadata.jsonl`` shape, Hugging Face's ``cppe-5``), also as a JSON string (a CSV cell) or a list of
  ``{"bbox", "category"}`` objects.

``check_boxes`` checks every box against its image's real size before any model loads and names the image and the
box at fault. Boxes over the image's edge by at most ``EDGE_TOLERANCE_PX`` (a rounding or 1-based-pixel
converter) are clipped, counted in a note; further out they are errors unless ``params.clip_boxes`` is on (then
clipped, with a note; a box with nothing left inside the image stays an error).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainforge.errors import DataError

EDGE_TOLERANCE_PX = 1.0  # boxes this far past an edge are clipped silently (counted in a note)
EXAMPLES = 10  # offending boxes named per kind of problem
COCO_HINT = "COCO boxes are [x, y, width, height] in pixels, x and y the top-left corner"


# ---------------------------------------------------------------------------------------------------- COCO JSON


def is_coco(path: Path) -> bool:
    """Whether ``path`` is a COCO JSON file: an object with ``images`` and ``annotations`` (read whole).

    Only files whose first non-blank character is ``{`` are parsed, so a JSON array of records costs nothing here.
    """
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"{"):
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "images" in data and "annotations" in data


def read_coco(path: Path, max_rows: int | None = None) -> pd.DataFrame:
    """One row per COCO image: ``image`` (absolute path), ``objects`` (``bbox``, ``category`` names, ``category_id``).

    Args:
        path: The COCO JSON file.
        max_rows: Keep the first N images (in the file's order), for bounded checks.

    Returns:
        The frame, indexed 0..n-1 in the order of ``images``; the boxes as written (checked by ``check_boxes``).

    Raises:
        DataError: Every structural problem in one message, naming the file and the entries: ``images``,
            ``annotations`` or ``categories`` not lists, entries without ``id``/``file_name``/``image_id``/
            ``category_id``/``bbox``, duplicate image or category ids, annotations of images or categories that
            are not declared.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"could not parse {path} as COCO JSON: {exc}") from None
    problems: list[str] = []
    images = _entries(data, "images", path, problems)
    annotations = _entries(data, "annotations", path, problems)
    categories = _entries(data, "categories", path, problems, required=False)
    names = _category_names(categories, path, problems)
    by_image: dict[Any, int] = {}
    files: list[str] = []
    for number, image in enumerate(images, start=1):
        missing = [key for key in ("id", "file_name") if key not in image]
        if missing:
            problems.append(f"images entry {number} has no {' or '.join(missing)}: {_short(image)}")
            continue
        if image["id"] in by_image:
            first = files[by_image[image["id"]]]
            problems.append(f"image id {image['id']!r} is used twice ({first} and {image['file_name']})")
            continue
        by_image[image["id"]] = len(files)
        files.append(str(image["file_name"]))
    boxes: list[list[Any]] = [[] for _ in files]
    labels: list[list[str]] = [[] for _ in files]
    ids: list[list[Any]] = [[] for _ in files]
    crowd = 0
    for number, annotation in enumerate(annotations, start=1):
        where = f"annotations entry {number}" + (f" (id {annotation['id']})" if "id" in annotation else "")
        missing = [key for key in ("image_id", "category_id", "bbox") if key not in annotation]
        if missing:
            problems.append(f"{where} has no {', '.join(missing)}: {_short(annotation)}")
            continue
        if annotation["image_id"] not in by_image:
            problems.append(f"{where} refers to image id {annotation['image_id']!r}, which images does not declare")
            continue
        if names and annotation["category_id"] not in names:
            known = ", ".join(f"{k} ({v})" for k, v in list(names.items())[:10])
            problems.append(
                f"{where}: category_id {annotation['category_id']!r} is not among the categories ({known})"
            )
            continue
        if annotation.get("iscrowd"):
            crowd += 1  # a crowd region (COCO's RLE masks over many objects) is not one box to learn
            continue
        row = by_image[annotation["image_id"]]
        category = annotation["category_id"]
        boxes[row].append(annotation["bbox"])
        labels[row].append(names.get(category, str(category)) if names else str(category))
        ids[row].append(category)
    if problems:
        shown = "\n".join(f"  - {p}" for p in problems[:EXAMPLES])
        more = f"\n  ... ({len(problems) - EXAMPLES} more)" if len(problems) > EXAMPLES else ""
        raise DataError(f"{path} is not usable COCO detection data ({len(problems)} problem(s)):\n{shown}{more}")
    if crowd:
        import sys

        print(
            f"note: {path}: {crowd} annotation(s) with iscrowd=1 left out (crowd regions are not single boxes)",
            file=sys.stderr,
        )
    rows = slice(None, max_rows)
    return pd.DataFrame(
        {
            "image": [str(image_path(path.parent, name)) for name in files][rows],
            "objects": [
                {"bbox": b, "category": c, "category_id": i} for b, c, i in zip(boxes, labels, ids, strict=True)
            ][rows],
        }
    )


def image_path(folder: Path, file_name: str) -> Path:
    """Where a COCO ``file_name`` is: beside the JSON file, else in ``images/`` beside it.

    When it is in neither, the path named in the missing-file message is the one in ``images/`` if that folder
    exists (where the other images are), else the one beside the JSON file.
    """
    direct = (folder / file_name).resolve()
    if direct.is_file():
        return direct
    nested = (folder / "images" / file_name).resolve()
    return nested if nested.is_file() or (folder / "images").is_dir() else direct


def _entries(data: Any, key: str, path: Path, problems: list[str], required: bool = True) -> list[dict]:
    if not isinstance(data, dict):
        problems.append(f"the file holds {type(data).__name__}, not a COCO object with images and annotations")
        return []
    value = data.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        problems.append(f"{key!r} must be a list, got {type(value).__name__}")
        return []
    bad = [i for i, entry in enumerate(value, start=1) if not isinstance(entry, dict)]
    if bad:
        problems.append(f"{key} entries {bad[:5]} are not JSON objects")
    return [entry for entry in value if isinstance(entry, dict)]


def _category_names(categories: list[dict], path: Path, problems: list[str]) -> dict[Any, str]:
    names: dict[Any, str] = {}
    for number, category in enumerate(categories, start=1):
        if "id" not in category or not str(category.get("name", "")).strip():
            problems.append(f"categories entry {number} needs an id and a name: {_short(category)}")
            continue
        if category["id"] in names:
            problems.append(f"category id {category['id']!r} is declared twice")
            continue
        names[category["id"]] = str(category["name"]).strip()
    twice = [name for name, n in Counter(names.values()).items() if n > 1]
    if twice:
        problems.append(f"category names {twice} are declared under several ids; give each category one id")
    return names


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 100 else text[:97] + "..."


# ---------------------------------------------------------------------------------------------------- objects


@dataclass(frozen=True)
class ImageBoxes:
    """One image's checked boxes: ``boxes`` (n, 4) ``[x, y, w, h]`` pixels inside the image, ``labels`` names."""

    image: str
    width: int
    height: int
    boxes: tuple[tuple[float, float, float, float], ...]
    labels: tuple[str, ...]
    category_ids: tuple[Any, ...] = ()


def parse_objects(value: Any) -> tuple[list[Any], list[Any], list[Any]] | str:
    """``(bboxes, categories, category_ids)`` of one ``objects`` cell, or a sentence saying why it cannot be read.

    Accepts ``{"bbox": [...], "category": [...]}`` (a mapping, or its JSON text), or a list of
    ``{"bbox": [...], "category": ...}``; numpy arrays (Parquet, ``datasets``) count as lists. Missing or empty
    means no objects (a negative image).
    """
    value = _plain(value)
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "" or value == []:
        return [], [], []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return f"is not JSON: {value[:60]!r}"
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        if not all("bbox" in v and "category" in v for v in value):
            return "is a list whose objects need both bbox and category"
        return [v["bbox"] for v in value], [v["category"] for v in value], []
    if not isinstance(value, dict):
        return f"must be {{'bbox': [[x, y, w, h], ...], 'category': [...]}}, got {_short(value)}"
    if "bbox" not in value or "category" not in value:
        found = ", ".join(map(str, value)) or "none"
        return f"needs the keys bbox and category (found: {found})"
    boxes, categories = value["bbox"], value["category"]
    if not isinstance(boxes, list) or not isinstance(categories, list):
        return "bbox and category must be lists (one entry per object)"
    if len(boxes) != len(categories):
        return f"has {len(boxes)} bbox and {len(categories)} category entries; give one category per box"
    ids = value.get("category_id") or []
    return boxes, categories, ids if len(ids) == len(boxes) else []


def _plain(value: Any) -> Any:
    """Arrays and numpy scalars as Python lists and numbers, through dicts and lists."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def category_name(value: Any, label_names: list[str] | None) -> str | None:
    """A category as a name: text as written (trimmed), an integer as ``label_names[i]`` or its digits; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        if label_names is not None:
            return label_names[value] if 0 <= value < len(label_names) else None
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def check_boxes(
    frame: pd.DataFrame,
    sizes: list[tuple[int, int]],
    origin: str,
    clip: bool,
    label_names: list[str] | None = None,
) -> tuple[list[ImageBoxes], list[str], list[str]]:
    """Check every box of one split against its image and return the checked boxes.

    Args:
        frame: Rows with ``image`` (paths) and ``objects``; messages name row ``index + 1`` and the image file.
        sizes: ``(width, height)`` in pixels of each row's image, in row order.
        origin: The split's file or folder, for messages.
        clip: ``params.clip_boxes``: clip boxes that cross an edge by more than ``EDGE_TOLERANCE_PX``.
        label_names: ``params.label_names``: names of integer categories 0..K-1.

    Returns:
        ``(images, problems, notes)``: the checked boxes per row (``[x, y, w, h]``, clipped to the image), one
        message per kind of problem (empty when the split is usable), notes (boxes clipped, images without boxes).
    """
    found: dict[str, list[str]] = {}
    images: list[ImageBoxes] = []
    clipped = slightly = negatives = 0
    for (row, path, objects), (width, height) in zip(
        zip(frame.index, frame["image"], frame["objects"], strict=True), sizes, strict=True
    ):
        where = f"row {int(row) + 1} ({Path(str(path)).name})"
        parsed = parse_objects(objects)
        if isinstance(parsed, str):
            found.setdefault("objects cells that cannot be read", []).append(f"{where}: objects {parsed}")
            continue
        raw_boxes, raw_categories, ids = parsed
        boxes, labels = [], []
        for number, (box, category) in enumerate(zip(raw_boxes, raw_categories, strict=True), start=1):
            at = f"{where} box {number}"
            name = category_name(_plain(category), label_names)
            if name is None:
                kind = "categories out of params.label_names" if label_names else "categories that are not names"
                found.setdefault(kind, []).append(f"{at}: category {_short(category)}")
                continue
            problem, fixed, how = _checked_box(box, width, height, clip)
            if problem is not None:
                found.setdefault(problem, []).append(f"{at}: {_short(_plain(box))} in a {width}x{height} image")
                continue
            assert fixed is not None
            clipped += how == "clipped"
            slightly += how == "tolerance"
            boxes.append(fixed)
            labels.append(name)
        negatives += not raw_boxes
        images.append(ImageBoxes(str(path), width, height, tuple(boxes), tuple(labels), tuple(ids)))
    problems = [_problem_message(kind, items, origin) for kind, items in found.items()]
    notes = []
    if slightly:
        notes.append(
            f"{origin}: {slightly} box(es) crossed the image's edge by at most {EDGE_TOLERANCE_PX:g} pixel and were "
            "clipped to it"
        )
    if clipped:
        notes.append(f"{origin}: {clipped} box(es) crossing the image's edge were clipped to it (params.clip_boxes)")
    if negatives:
        notes.append(f"{origin}: {negatives} image(s) have no boxes; they train as images without objects")
    return images, problems, notes


def _checked_box(
    box: Any, width: int, height: int, clip: bool
) -> tuple[str | None, tuple[float, float, float, float] | None, str]:
    """``(problem kind or None, the box inside the image, "" | "tolerance" | "clipped")``."""
    box = _plain(box)
    if (
        not isinstance(box, list)
        or len(box) != 4
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in box)
    ):
        return "boxes that are not 4 finite numbers [x, y, width, height]", None, ""
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        return "boxes without area (width or height 0 or negative)", None, ""
    x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))
    if x1 >= x2 or y1 >= y2:
        return "boxes entirely outside their image", None, ""
    over = max(-x, -y, x + w - width, y + h - height)
    how = ""
    if over > 0:
        if over > EDGE_TOLERANCE_PX and not clip:
            return "boxes beyond their image's edge", None, ""
        how = "tolerance" if over <= EDGE_TOLERANCE_PX else "clipped"
    return None, (x1, y1, x2 - x1, y2 - y1), how


_FIXES = {
    "boxes beyond their image's edge": (
        f"{COCO_HINT}; boxes written as [x_min, y_min, x_max, y_max] overflow like this. Fix the boxes, or set "
        "params.clip_boxes: true to clip them to the image"
    ),
    "boxes without area (width or height 0 or negative)": (
        f"{COCO_HINT}; remove these boxes or fix their size (a box written as [x_min, y_min, x_max, y_max] with "
        "x_max < x_min looks like this)"
    ),
    "boxes entirely outside their image": "remove these boxes or fix their coordinates",
    "boxes that are not 4 finite numbers [x, y, width, height]": "write each box as 4 numbers [x, y, width, height]",
    "objects cells that cannot be read": (
        'write each image\'s objects as {"bbox": [[x, y, w, h], ...], "category": [...]} (one category per box)'
    ),
    "categories that are not names": "give each box a category: a name, or an integer with params.label_names",
    "categories out of params.label_names": "params.label_names names categories 0..K-1; add the missing names",
}


def _problem_message(kind: str, items: list[str], origin: str) -> str:
    shown = "; ".join(items[:EXAMPLES]) + (f"; ... ({len(items) - EXAMPLES} more)" if len(items) > EXAMPLES else "")
    return f"{origin}: {len(items)} {kind}: {shown}. {_FIXES[kind]}."


def box_areas(images: list[ImageBoxes]) -> np.ndarray:
    """Areas in pixels of every box of ``images`` (for the size notes)."""
    return np.array([w * h for image in images for _, _, w, h in image.boxes], dtype=float)


def coco_frame(path: Path, columns, mapping: dict[str, str]) -> pd.DataFrame:
    """``read_coco`` with its columns named as the task's image and boxes columns are mapped (``data.columns``)."""
    names = {"image": "image", "objects": "objects"}
    for column in columns or ():
        if column.kind == "image":
            names["image"] = mapping.get(column.name, column.source_default)
        elif column.kind == "boxes":
            names["objects"] = mapping.get(column.name, column.source_default)
    return read_coco(path).rename(columns=names)
