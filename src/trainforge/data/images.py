"""Image data: where images come from, checked file by file before any model loads, and opened one at a time.

Image data reaches tasks as pandas frames whose image column holds one absolute file path per row (labels, targets
and any other columns beside it), so the frame stays small and decoding stays lazy: tasks open an image only when a
batch needs it (``open_rgb``). Sources (``read_image_splits``; ``data.source`` and the split names as for text):

* a folder with one sub-folder per class (``cats/1.jpg``, ``dogs/7.png``): columns image + label (the folder name);
* a folder of images with ``metadata.jsonl`` or ``metadata.csv`` beside them (the Hugging Face imagefolder
  convention): its ``file_name`` column (paths relative to the folder) becomes the image column, the other columns
  are kept (labels, one or more targets, ...);
* either of these per split: ``<source>/<train_split>/`` (and ``<eval_split>/``, ``<test_split>/`` when set); a
  source without a ``<train_split>`` sub-folder is the training data as a whole. A split is used only when named:
  a ``validation``/``valid``/``val``/``test`` folder that ``data.eval_split`` does not name is reported in a note;
* a CSV/JSONL/Parquet file of image paths (relative to that file, or absolute) and labels/targets, or a folder
  holding ``<split>.csv`` files of that shape; ``file_name`` stands for the image column when there is none;
* a ZIP of any folder above: extracted once into the cache (``cache_dir() / "zips" / <sha256 of the ZIP>``), never
  beside the user's file; members outside the archive (``..``, absolute paths, links) are refused;
* a ``datasets`` folder saved with ``save_to_disk`` or a Hub dataset id: ``Image`` columns are written to the cache
  as files named by the SHA-256 of their bytes (each image once, whatever the run), ``ClassLabel`` ids become names.

``check_images`` opens every image (PIL ``verify`` and a decode) and names each missing, empty, unreadable or
truncated file in one message; images that are not RGB (greyscale, RGBA, CMYK, palette) are converted with a note.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import stat
import sys
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import pandas as pd

from trainforge.errors import DataError

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from trainforge.config.sections import DataSection

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
METADATA_FILES = ("metadata.jsonl", "metadata.csv")
# Folder names that usually hold another split: named in a note when data.eval_split / test_split does not use them.
OTHER_SPLIT_NAMES = ("validation", "valid", "val", "dev", "eval", "test")
IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})  # OS clutter: skipped without a note
MODE_NAMES = {"L": "greyscale", "LA": "greyscale with alpha", "RGBA": "RGBA", "CMYK": "CMYK", "P": "palette"}
MAX_ZIP_BYTES = 20 << 30  # what an archive may expand to (a zip bomb stops here)
MAX_ZIP_RATIO = 1000  # uncompressed / compressed size of one member
EXIF_ORIENTATION = 0x0112  # the EXIF tag that says how a camera photo is turned


# ---------------------------------------------------------------------------------------------------- columns


def image_column_names(columns, mapping: dict[str, str]) -> list[str]:
    """The user's names of a task's image columns (``Column.kind == "image"``); empty for other tasks."""
    return [mapping.get(c.name, c.source_default) for c in columns or () if getattr(c, "kind", None) == "image"]


def _label_column_name(columns, mapping: dict[str, str]) -> str:
    """The user's name of the class column a class-folder source fills (the task's ``label``-kind target)."""
    for column in columns or ():
        if column.role == "target" and column.kind == "label":
            return mapping.get(column.name, column.source_default)
    return "label"


# ---------------------------------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """Where extracted ZIPs and images decoded from ``datasets`` live: ``$TRAINFORGE_CACHE`` or the user cache.

    Default ``$XDG_CACHE_HOME/trainforge`` (``~/.cache/trainforge``). Entries are named by content hashes, so they
    can be deleted at any time (they are rebuilt on the next run).
    """
    if os.environ.get("TRAINFORGE_CACHE"):
        return Path(os.environ["TRAINFORGE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "trainforge"


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def extract_zip(archive: Path) -> Path:
    """Extract ``archive`` into the cache once (keyed by its SHA-256) and return the folder it holds.

    A ZIP whose members all sit in one top-level folder (a zipped folder) returns that folder. The extraction goes
    to a temporary sibling first and is renamed when complete, so an interrupted run never leaves half a dataset.

    Raises:
        DataError: Not a readable ZIP, a member outside the archive (absolute, ``..``, a drive letter), a symbolic
            link, a size beyond ``MAX_ZIP_BYTES`` or a compression ratio beyond ``MAX_ZIP_RATIO`` (zip bomb), or
            data that does not match its header.
    """
    target = cache_dir() / "zips" / file_sha256(archive)
    if not target.is_dir():
        partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
        try:
            _extract_checked(archive, partial)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
            _remove_tree(partial)
            raise DataError(f"{archive} is not a readable ZIP archive: {exc}") from None
        except DataError:
            _remove_tree(partial)
            raise
        if target.is_dir():  # another process finished first: keep its copy
            _remove_tree(partial)
        else:
            partial.rename(target)
    entries = [p for p in target.iterdir() if not _ignored(p)]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else target


def _extract_checked(archive: Path, destination: Path) -> None:
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.infolist()
        total = 0
        for info in members:
            member = PurePosixPath(info.filename.replace("\\", "/"))
            if member.is_absolute() or ".." in member.parts or re.match(r"^[A-Za-z]:", info.filename):
                raise DataError(f"{archive}: member {info.filename!r} points outside the archive; it is not extracted")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DataError(f"{archive}: member {info.filename!r} is a symbolic link; links are not extracted")
            total += info.file_size
            if total > MAX_ZIP_BYTES or (info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO):
                raise DataError(
                    f"{archive}: member {info.filename!r} expands beyond what the archive can hold (zip bomb?)"
                )
        destination.mkdir(parents=True)
        root = destination.resolve()
        for info in members:
            path = (destination / info.filename.replace("\\", "/")).resolve()
            if not path.is_relative_to(root):
                raise DataError(f"{archive}: member {info.filename!r} points outside the archive; it is not extracted")
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(info) as source, path.open("wb") as out:
                written = 0
                while chunk := source.read(1 << 20):
                    written += len(chunk)
                    if written > info.file_size:
                        raise DataError(f"{archive}: member {info.filename!r} is larger than its header says")
                    out.write(chunk)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _ignored(path: Path) -> bool:
    return path.name.startswith(".") or path.name in IGNORED_NAMES


# ---------------------------------------------------------------------------------------------------- sources


@dataclass
class ImageSplit:
    """One split's rows and where they came from (for messages)."""

    frame: pd.DataFrame
    origin: str


def is_image_source(data: DataSection) -> bool:
    """Whether ``data.source`` is image data whatever the task: a ZIP, or a folder of images / class folders.

    Lets readers that do not know the task (the web app's preview) show image rows instead of failing on a folder
    without ``<split>.csv`` files.
    """
    path = Path(os.path.expanduser(data.source))
    if path.is_file():
        return path.suffix.lower() == ".zip"
    if not path.is_dir() or data.format in ("disk", "hub") or (path / "state.json").exists():
        return False
    if (path / "dataset_dict.json").exists():
        return False
    split = path / data.train_split
    folder = split if split.is_dir() else path
    return _looks_like_image_folder(folder)


def _looks_like_image_folder(folder: Path) -> bool:
    if any((folder / name).is_file() for name in METADATA_FILES):
        return True
    for child in folder.iterdir():
        if child.is_dir() and not _ignored(child) and _has_image(child):
            return True
    return False


def _has_image(folder: Path) -> bool:
    """Whether any image lies beneath ``folder`` (stops at the first one found)."""
    for _, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in IGNORED_NAMES]
        if any(Path(f).suffix.lower() in IMAGE_EXTENSIONS for f in files):
            return True
    return False


def read_image_splits(
    data: DataSection, columns, max_rows: int | None = None, text_column: str | None = None
) -> tuple[pd.DataFrame, str, pd.DataFrame | None, str]:
    """The training rows and their origin, the evaluation rows (or None) and theirs ("" when none).

    Args:
        data: The data section (source, split names, format, column mapping).
        columns: The task's logical columns: the image column(s) (``kind="image"``) are resolved to absolute paths,
            the class column is the one a class-folder source fills.
        max_rows: Read at most this many rows per split (class folders are interleaved so a head holds every
            class).
        text_column: A CSV column read as text (class labels keep their spelling: ``01`` stays ``01``).

    Raises:
        DataError: A missing source or split (naming what exists), an unreadable table or ZIP, a folder with no
            images or without labels.
    """
    reader = _SourceReader(data, columns, max_rows, text_column)
    train = reader.split(data.train_split, role="train")
    evaluation = reader.split(data.eval_split, role="eval") if data.eval_split else None
    reader.note_unused_splits()
    if evaluation is None:
        return train.frame, train.origin, None, ""
    return train.frame, train.origin, evaluation.frame, evaluation.origin


def read_image_test(
    data: DataSection, columns, max_rows: int | None = None, text_column: str | None = None
) -> tuple[pd.DataFrame, str]:
    """The rows of ``data.test_split`` and their origin, read as ``read_image_splits`` reads the others."""
    assert data.test_split is not None
    test = _SourceReader(data, columns, max_rows, text_column).split(data.test_split, role="test")
    return test.frame, test.origin


@dataclass
class _SourceReader:
    """Reads the splits of one ``data`` section; the source (a ZIP extracted, a dataset loaded) is resolved once."""

    data: DataSection
    columns: Any
    max_rows: int | None
    text_column: str | None
    _dataset: Any = None
    used: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.image_names = image_column_names(self.columns, self.data.columns) or ["image"]
        self.label_name = _label_column_name(self.columns, self.data.columns)
        path = Path(os.path.expanduser(self.data.source))
        self.source = path
        if self.data.format == "hub" or (not path.exists() and _looks_like_hub_id(self.data.source)):
            self.kind = "hub"
        elif not path.exists():
            raise DataError(f"data.source {self.data.source!r} does not exist (looked for {path.resolve()})")
        elif path.is_file() and path.suffix.lower() == ".zip":
            self.kind, self.source = "folder", extract_zip(path)
            print(f"note: {path} extracted into {self.source}", file=sys.stderr)
        elif path.is_file():
            self.kind = "file"
        elif self.data.format == "disk" or (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            self.kind = "disk"
        else:
            self.kind = "folder"

    # -- one split

    def split(self, name: str, role: str) -> ImageSplit:
        """The rows of split ``name`` (a folder, a table, a dataset split, or a file path for a file source)."""
        self.used.add(name)
        if self.kind in ("hub", "disk"):
            return self._dataset_split(name, role)
        if self.kind == "file":
            return self._file_split(name, role)
        folder = self.source / name
        if folder.is_dir():
            return self._folder(folder)
        tables = [folder.with_suffix(ext) for ext in (".csv", ".jsonl", ".json", ".tsv", ".parquet")]
        found = [t for t in tables if t.is_file()]
        if len(found) == 1:
            return self._table(found[0])
        if len(found) > 1:
            raise DataError(
                f"{self.source} holds several files for split {name!r}: {', '.join(p.name for p in found)}"
            )
        if role == "train" and name == self.data.train_split and _looks_like_image_folder(self.source):
            return self._folder(self.source)  # no split sub-folder: the source as a whole is the training data
        present = sorted(p.name for p in self.source.iterdir() if not _ignored(p)) or ["nothing"]
        raise DataError(
            f"no {role} split {name!r} in {self.source}: expected a folder {name}/ (one sub-folder per class, or "
            f"images with metadata.jsonl) or a file {name}.csv/.jsonl of image paths; found: {', '.join(present[:12])}"
        )

    def _file_split(self, name: str, role: str) -> ImageSplit:
        if role == "train":
            return self._table(self.source)
        path = Path(os.path.expanduser(name))
        if not path.exists():
            raise DataError(
                f"data.{role}_split {name!r} does not exist (looked for {path.resolve()}): with a file as source, "
                f"{role}_split is the path of another file (or folder) of images"
            )
        if path.resolve() == self.source.resolve():
            raise DataError(f"data.{role}_split is the training file {path}; use other images")
        if path.is_dir():
            return self._folder(path)
        if path.suffix.lower() == ".zip":
            return self._folder(extract_zip(path))
        return self._table(path)

    def _table(self, path: Path) -> ImageSplit:
        from trainforge.data.detection import coco_frame, is_coco
        from trainforge.data.loading import read_table

        if is_coco(path):  # COCO detection JSON (data/detection.py): one row per image, its boxes in one cell
            return ImageSplit(self._head(coco_frame(path, self.columns, self.data.columns)), str(path))
        frame = read_table(path, self.data.format if self.data.format != "disk" else "auto", None, self.text_column)
        frame = self._with_image_column(frame, path)
        for name in self.image_names:
            if name in frame:
                frame[name] = [_absolute(v, path.parent) for v in frame[name]]
        return ImageSplit(self._head(frame), str(path))

    def _with_image_column(self, frame: pd.DataFrame, path: Path) -> pd.DataFrame:
        """``file_name`` (the imagefolder convention) stands for the first image column when that one is absent."""
        first = self.image_names[0]
        if first not in frame and "file_name" in frame:
            frame = frame.rename(columns={"file_name": first})
        return frame

    def _folder(self, folder: Path) -> ImageSplit:
        metadata = [folder / name for name in METADATA_FILES if (folder / name).is_file()]
        if len(metadata) > 1:
            raise DataError(f"{folder} holds both metadata.jsonl and metadata.csv; keep one")
        if metadata:
            split = self._table(metadata[0])
            column = self.image_names[0]
            listed = {Path(p).resolve() for p in split.frame.get(column, ()) if isinstance(p, str)}
            unlisted = [p for p in _images_under(folder) if p.resolve() not in listed]
            if unlisted and column in split.frame and self.max_rows is None:
                print(
                    f"note: {folder}: {len(unlisted)} image(s) not listed in {metadata[0].name} are not used "
                    f"(e.g. {unlisted[0].relative_to(folder)})",
                    file=sys.stderr,
                )
            return split
        return ImageSplit(self._head(self._class_folders(folder)), str(folder))

    def _class_folders(self, folder: Path) -> pd.DataFrame:
        """Rows (image path, class) of a folder holding one sub-folder per class; stray files are noted."""
        classes = sorted(p for p in folder.iterdir() if p.is_dir() and not _ignored(p))
        loose = [p for p in folder.iterdir() if p.is_file() and not _ignored(p)]
        per_class = {c.name: sorted(_images_under(c)) for c in classes}
        per_class = {name: paths for name, paths in per_class.items() if paths}
        if not per_class:
            images = [p for p in loose if p.suffix.lower() in IMAGE_EXTENSIONS]
            why = (
                f"{len(images)} images but no labels: put them in one sub-folder per class, or add metadata.jsonl "
                "(file_name plus label/target columns)"
                if images
                else "no images (.jpg, .jpeg, .png, .bmp, .gif, .webp, .tif)"
            )
            raise DataError(f"{folder} holds {why}")
        stray = [p for c in classes for p in _files_under(c) if p.suffix.lower() not in IMAGE_EXTENSIONS]
        stray += loose
        if stray:
            shown = ", ".join(str(p.relative_to(folder)) for p in stray[:3])
            print(f"note: {folder}: {len(stray)} file(s) that are not images are skipped ({shown})", file=sys.stderr)
        # Interleaved by class, so that the first rows (data.max_train_rows, a checked sample) hold every class.
        rows = sorted(((i, name, p) for name, paths in per_class.items() for i, p in enumerate(paths)))
        return pd.DataFrame(
            {self.image_names[0]: [str(p.resolve()) for _, _, p in rows], self.label_name: [n for _, n, _ in rows]}
        )

    def _head(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame if self.max_rows is None else frame.iloc[: self.max_rows]

    # -- datasets

    def _dataset_split(self, name: str, role: str) -> ImageSplit:
        import datasets

        if self.kind == "hub":
            from huggingface_hub import constants

            if constants.HF_HUB_OFFLINE:
                raise DataError(
                    f"data.source {self.data.source!r} is not a local path, so it would be a Hub dataset, but the Hub "
                    "is offline (HF_HUB_OFFLINE=1). Point data.source at a local folder, ZIP or file, or go online."
                )
            try:
                dataset = datasets.load_dataset(self.data.source, name=self.data.hub_config, split=name)
            except (datasets.exceptions.DatasetNotFoundError, FileNotFoundError, ConnectionError, ValueError) as exc:
                raise DataError(f"could not load Hub dataset {self.data.source!r} split {name!r}: {exc}") from None
            origin = f"{self.data.source}[{name}]"
        else:
            if self._dataset is None:
                self._dataset = datasets.load_from_disk(str(self.source))
            loaded = self._dataset
            if isinstance(loaded, datasets.Dataset):
                if role != "train":
                    raise DataError(
                        f"{self.source} holds a single dataset, so data.{role}_split {name!r} cannot be found"
                    )
                dataset, origin = loaded, str(self.source)
            elif name not in loaded:
                raise DataError(f"split {name!r} not in {self.source}; it has: {', '.join(loaded.keys())}")
            else:
                dataset, origin = loaded[name], f"{self.source}[{name}]"
        if self.max_rows is not None:
            dataset = dataset.select(range(min(self.max_rows, len(dataset))))
        labels = None if self.columns is None else _label_kind_names(self.columns, self.data.columns)
        return ImageSplit(dataset_to_frame(dataset, origin, labels), origin)

    def note_unused_splits(self) -> None:
        """A note naming split folders that exist but are not used (the evaluation policy stays explicit)."""
        if self.kind != "folder" or not (self.source / self.data.train_split).is_dir():
            return
        unused = [
            n
            for n in OTHER_SPLIT_NAMES
            if (self.source / n).is_dir() and n not in self.used and n != self.data.test_split
        ]
        if unused and self.data.eval_split is None:
            print(
                f"note: {self.source} has a {unused[0]}/ folder that is not used: set data.eval_split: {unused[0]} to "
                "evaluate on it (now "
                + ("a hold-out of the training images" if self.data.eval_fraction else "no evaluation")
                + ")",
                file=sys.stderr,
            )


def _looks_like_hub_id(source: str) -> bool:
    parts = source.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not source.startswith((".", "~")) and not Path(source).suffix


def _images_under(folder: Path) -> Iterable[Path]:
    return (p for p in _files_under(folder) if p.suffix.lower() in IMAGE_EXTENSIONS)


def _files_under(folder: Path) -> list[Path]:
    """Files beneath ``folder`` (any depth), hidden files and OS clutter left out, sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in IGNORED_NAMES)
        found += [Path(root) / f for f in sorted(files) if not f.startswith(".") and f not in IGNORED_NAMES]
    return found


def _absolute(value: Any, base: Path) -> Any:
    """A relative path string resolved against ``base`` (the table's folder); other values are left to the checks."""
    if not isinstance(value, str) or not value.strip():
        return value
    path = Path(os.path.expanduser(value.strip()))
    return str(path if path.is_absolute() else (base / path).resolve())


def _label_kind_names(columns, mapping: dict[str, str]) -> set[str]:
    """The user's names of a task's columns whose ``ClassLabel`` ids are read as names (classes, detection objects)."""
    return {mapping.get(c.name, c.source_default) for c in columns if getattr(c, "kind", None) in ("label", "boxes")}


def dataset_to_frame(dataset: Any, origin: str, label_columns: set[str] | None = None) -> pd.DataFrame:
    """A ``datasets.Dataset`` as a frame: ``Image`` columns as cached file paths, ``ClassLabel`` ids as names.

    Images stored as bytes are written once to ``cache_dir() / "images"`` under the SHA-256 of their bytes; images
    stored as paths keep their path. ``ClassLabel`` columns (lists of them for multi-label) become names when they
    are in ``label_columns`` (None: all of them); others keep their ids (a regression target stays a number).
    """
    import datasets

    features = dataset.features
    images = [name for name, feature in features.items() if isinstance(feature, datasets.Image)]
    if images:
        for name in images:
            dataset = dataset.cast_column(name, datasets.Image(decode=False))
    frame = dataset.to_pandas()
    for name in images:
        frame[name] = [_cached_image(cell, origin, row) for row, cell in enumerate(frame[name])]
    for name, feature in features.items():
        if label_columns is not None and name not in label_columns:
            continue
        if isinstance(feature, datasets.ClassLabel):
            frame[name] = [feature.int2str(int(v)) if v is not None and v >= 0 else None for v in frame[name]]
        elif isinstance(feature, datasets.Sequence | datasets.List) and isinstance(
            getattr(feature, "feature", None), datasets.ClassLabel
        ):
            inner = feature.feature
            frame[name] = [[inner.int2str(int(v)) for v in values] for values in frame[name]]
        elif isinstance(feature, dict):  # a list of records (cppe-5's objects: bbox, category ClassLabel, ...)
            named = {
                k: f.feature
                for k, f in feature.items()
                if isinstance(getattr(f, "feature", None), datasets.ClassLabel)
            }
            frame[name] = [
                {k: [named[k].int2str(int(v)) for v in values] if k in named else values for k, values in cell.items()}
                if isinstance(cell, dict)
                else cell
                for cell in frame[name]
            ]
    return frame


def _cached_image(cell: Any, origin: str, row: int) -> Any:
    """The file of one ``Image`` cell (``{"bytes", "path"}``): its bytes written to the cache, or its path."""
    if not isinstance(cell, dict):
        return cell
    data, path = cell.get("bytes"), cell.get("path")
    if data is None:
        return path
    digest = hashlib.sha256(data).hexdigest()
    suffix = Path(path).suffix.lower() if path and Path(path).suffix.lower() in IMAGE_EXTENSIONS else ".img"
    target = cache_dir() / "images" / digest[:2] / f"{digest}{suffix}"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}")
        partial.write_bytes(data)
        partial.replace(target)
    return str(target)


# ---------------------------------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class ImageFacts:
    """What ``check_images`` found: image sizes (width, height) per row, and notes for the user."""

    sizes: list[tuple[int, int]]
    notes: list[str]


def check_images(frame: pd.DataFrame, column: str, origin: str, file_column: str | None = None) -> ImageFacts:
    """Open every image of ``frame[column]`` (paths) and fail naming each file that cannot be used.

    Each image is checked with PIL's ``verify`` (structure) and a decode (JPEGs at reduced scale: the whole
    compressed stream is still read, so a truncated file fails), in a few threads (PIL releases the GIL).

    Args:
        frame: One split's rows; messages name ``index + 1`` (1-based data rows) and the file.
        column: The image column (absolute paths, as the readers give them).
        origin: The split's file or folder, for messages.
        file_column: The user's name of the column, when it differs.

    Returns:
        The sizes (for facts), and notes: images converted to RGB (by mode, with an example file).

    Raises:
        DataError: Every missing, empty, unreadable or truncated image and every cell that is not a path, in one
            message (first ten of each kind, with counts).
    """
    values = list(frame[column])
    index = list(frame.index)
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 2)) as pool:
        results = list(pool.map(_inspect, values))
    problems: dict[str, list[str]] = {}
    modes: dict[str, list[str]] = {}
    sizes = []
    for row, value, (problem, mode, size) in zip(index, values, results, strict=True):
        if problem is not None:
            problems.setdefault(problem, []).append(
                f"row {int(row) + 1}: {value}" if isinstance(value, str) else f"row {int(row) + 1}: {value!r}"
            )
            continue
        sizes.append(size)
        if mode != "RGB":
            modes.setdefault(mode, []).append(str(value))
    if problems:
        named = f" (column {file_column!r})" if file_column and file_column != column else ""
        parts = [
            f"{len(items)} {kind}: "
            + "; ".join(items[:10])
            + (f"; ... ({len(items) - 10} more)" if len(items) > 10 else "")
            for kind, items in problems.items()
        ]
        raise DataError(
            f"{origin}: images{named} that cannot be used — "
            + " | ".join(parts)
            + ". Fix or remove those files (or their rows), then run again."
        )
    notes = [
        f"{origin}: {len(paths)} {MODE_NAMES.get(mode, mode)} image(s) are converted to RGB (e.g. {paths[0]})"
        for mode, paths in sorted(modes.items())
    ]
    return ImageFacts(sizes, notes)


def _inspect(value: Any) -> tuple[str | None, str, tuple[int, int]]:
    """(problem kind or None, mode, (width, height)) of one image cell."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(value, str) or not value.strip():
        return ("cells that are not an image path", "", (0, 0))
    path = Path(value)
    if not path.is_file():
        return ("missing file(s)", "", (0, 0))
    if path.stat().st_size == 0:
        return ("empty (zero-byte) file(s)", "", (0, 0))
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            mode, size = image.mode, image.size
            if image.format == "JPEG":
                image.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
            image.load()
    except UnidentifiedImageError:
        return ("file(s) that are not images PIL can read", "", (0, 0))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, zlib.error):
        # OSError: truncated or corrupt data; SyntaxError/ValueError: PIL's verify on a broken header.
        return ("corrupt or truncated image(s)", "", (0, 0))
    return (None, mode, size)


def class_counts(labels: pd.Series) -> Counter:
    """Images per class of one split (a list cell counts once for each of its classes)."""
    counts: Counter = Counter()
    for value in labels:
        counts.update(value if isinstance(value, list | tuple) else [value])
    return counts


# ---------------------------------------------------------------------------------------------------- opening


def open_rgb(value: Any) -> PILImage.Image:
    """One image as an RGB ``PIL.Image``, decoded now, EXIF orientation applied (as transformers' pipelines do).

    Args:
        value: A file path, a ``data:image/...;base64,...`` URI, raw bytes, a ``PIL.Image`` or a ``datasets``
            image cell (``{"bytes": ..., "path": ...}``).

    Raises:
        DataError: The value is none of these, or is not a readable image (naming the path where there is one).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(value, Image.Image):
        image = value
    else:
        source, shown = _image_source(value)
        try:
            with Image.open(source) as opened:
                opened.load()  # decoded: the pixels outlive the file handle
                image = opened
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, zlib.error) as exc:
            raise DataError(f"{shown} is not a readable image: {exc}") from None
    # Copies only where something changes: each copy of a large photo is a fresh allocation (page faults) per batch.
    if image.getexif().get(EXIF_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "P") and (image.mode != "P" or "transparency" in image.info):
        # Transparent pixels over white, not black (a logo on a transparent background stays readable).
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _image_source(value: Any) -> tuple[Any, str]:
    """What ``PIL.Image.open`` reads for ``value``, and how a message names it."""
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            return io.BytesIO(value["bytes"]), f"the image bytes of {value.get('path') or 'a dataset row'}"
        value = value.get("path")
    if isinstance(value, bytes | bytearray):
        return io.BytesIO(value), "the image bytes"
    if isinstance(value, str) and value.startswith("data:"):
        head, _, payload = value.partition(",")
        if ";base64" not in head:
            raise DataError(f"the data URI {head[:40]!r} is not base64: send data:image/png;base64,<bytes>")
        try:
            return io.BytesIO(base64.b64decode(payload, validate=True)), "the data URI image"
        except ValueError:
            raise DataError("the data URI holds invalid base64") from None
    if isinstance(value, str) and value.strip():
        path = Path(os.path.expanduser(value.strip()))
        if not path.is_file():
            raise DataError(f"image file not found: {path}")
        return path, str(path)
    raise DataError(f"{value!r} is not an image: give a file path, a data:image/...;base64 URI or image bytes")
