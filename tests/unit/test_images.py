"""Image sources and checks (data/images.py): every layout reads to the same rows; bad files are named."""

from __future__ import annotations

import base64
import io
import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from conftest import IMAGE_CLASSES, make_image, make_image_folder, make_redness_images
from trainforge.config.sections import DataSection
from trainforge.data.images import check_images, extract_zip, open_rgb
from trainforge.data.loading import load_sample, load_splits
from trainforge.errors import DataError
from trainforge.tasks.spec import Column

COLUMNS = (Column("image", "the image", kind="image"), Column("label", "the class", role="target", kind="label"))
TARGETS = (Column("image", "the image", kind="image"), Column("redness", "a number", role="target", kind="number"))


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINFORGE_CACHE", str(tmp_path / "cache"))


def load(source, task_columns=COLUMNS, **data):
    return load_splits(DataSection(source=str(source), **data), 0, "label", task_columns)


def labels_by_file(frame: pd.DataFrame) -> dict[str, str]:
    return {
        Path(p).parent.name + "/" + Path(p).name: label
        for p, label in zip(frame["image"], frame["label"], strict=True)
    }


def test_class_folders_with_split_subfolders(tmp_path, capsys):
    make_image_folder(tmp_path / "data" / "train", per_class=5)
    make_image_folder(tmp_path / "data" / "validation", per_class=2, seed=1)
    splits = load(tmp_path / "data", eval_split="validation")
    assert len(splits.train) == 10 and len(splits.eval) == 4
    assert set(splits.train["label"]) == set(IMAGE_CLASSES)
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in splits.train["image"])
    assert list(splits.train["label"][:2]) == sorted(IMAGE_CLASSES)  # interleaved: a head holds every class
    assert splits.eval_origin == str(tmp_path / "data" / "validation")
    # Without eval_split the validation folder is named in a note, and a hold-out is used.
    splits = load(tmp_path / "data", eval_fraction=0.2)
    assert len(splits.train) + len(splits.eval) == 10
    assert "data.eval_split: validation" in capsys.readouterr().err


def test_source_without_split_folder_is_the_training_data(tmp_path, capsys):
    root = make_image_folder(tmp_path / "flowers", per_class=4)
    (root / "README.txt").write_text("about")
    (root / "red_square" / "notes.md").write_text("x")
    splits = load(root, eval_fraction=0)
    assert len(splits.train) == 8
    assert "2 file(s) that are not images are skipped" in capsys.readouterr().err


def test_zip_is_extracted_into_the_cache_once(tmp_path):
    root = make_image_folder(tmp_path / "pets" / "train", per_class=3)
    archive = Path(shutil.make_archive(str(tmp_path / "pets"), "zip", tmp_path, "pets"))
    shutil.rmtree(root.parent)
    splits = load(archive, eval_fraction=0)
    assert len(splits.train) == 6 and str(tmp_path / "cache" / "zips") in splits.train_origin
    assert not (tmp_path / "pets").exists()  # nothing written beside the user's file
    assert extract_zip(archive) == Path(splits.train_origin).parent  # same folder the second time


@pytest.mark.parametrize("member", ["../evil.png", "/abs/evil.png", "a/../../evil.png"])
def test_zip_slip_is_refused(tmp_path, member):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("train/a/1.png", b"x")
        bundle.writestr(member, b"x")
    with pytest.raises(DataError, match="points outside the archive"):
        load(archive)
    assert not (tmp_path / "evil.png").exists()


def test_csv_of_relative_paths(tmp_path):
    make_image_folder(tmp_path / "pics", per_class=4)
    rows = [{"path": f"pics/{c}/{i}.png", "kind": c} for c in IMAGE_CLASSES for i in range(4)]
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    assert "has no column 'image'" in str(load_error(tmp_path / "labels.csv"))  # default names: image, label
    data = {"columns": {"image": "path", "label": "kind"}, "eval_fraction": 0}
    splits = load(tmp_path / "labels.csv", **data)
    assert labels_by_file(splits.train)["red_square/0.png"] == "red_square"
    assert all(Path(p).is_file() for p in splits.train["image"])


def load_error(source) -> DataError:
    try:
        load(source, eval_fraction=0)
    except DataError as exc:
        return exc
    raise AssertionError("no error")


def test_metadata_jsonl_beside_images_with_several_targets(tmp_path):
    records = make_redness_images(tmp_path / "train", rows=6)
    (tmp_path / "train" / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    splits = load_splits(DataSection(source=str(tmp_path), eval_fraction=0), 0, None, TARGETS)
    assert list(splits.train.columns) == ["image", "redness"]
    assert splits.train["redness"].tolist() == pytest.approx([r["redness"] for r in records])
    assert Path(splits.train["image"][0]) == (tmp_path / "train" / "images" / "0.png").resolve()


def test_datasets_folder_with_image_and_classlabel(tmp_path):
    import datasets

    make_image_folder(tmp_path / "pics", per_class=3)
    paths = sorted((tmp_path / "pics").rglob("*.png"))
    names = sorted(IMAGE_CLASSES)
    features = datasets.Features({"img": datasets.Image(), "labels": datasets.ClassLabel(names=names)})
    dataset = datasets.Dataset.from_dict(
        {"img": [str(p) for p in paths], "labels": [names.index(p.parent.name) for p in paths]}, features=features
    )
    dataset = dataset.cast_column("img", datasets.Image())  # embed bytes on save
    datasets.DatasetDict({"train": dataset}).save_to_disk(str(tmp_path / "saved"))
    shutil.rmtree(tmp_path / "pics")  # the saved dataset holds the bytes
    data = {"columns": {"image": "img", "label": "labels"}, "eval_fraction": 0}
    splits = load(tmp_path / "saved", **data)
    assert sorted(set(splits.train["label"])) == names
    assert all(Path(p).is_file() and str(tmp_path / "cache") in p for p in splits.train["image"])
    check_images(splits.train, "image", splits.train_origin)


def test_checks_name_every_bad_file(tmp_path):
    root = make_image_folder(tmp_path / "train", per_class=3)
    (root / "red_square" / "empty.png").write_bytes(b"")
    (root / "red_square" / "text.jpg").write_text("not an image")
    good = (root / "blue_disk" / "0.png").read_bytes()
    (root / "blue_disk" / "cut.png").write_bytes(good[: len(good) // 2])
    frame = load(root, eval_fraction=0).train
    frame.loc[len(frame)] = [str(root / "gone.png"), "red_square"]
    with pytest.raises(DataError) as caught:
        check_images(frame, "image", "train")
    message = str(caught.value)
    for fragment in (
        "empty (zero-byte)",
        "empty.png",
        "not images PIL can read",
        "text.jpg",
        "corrupt or truncated",
        "cut.png",
        "missing file",
        "gone.png",
    ):
        assert fragment in message, fragment


def test_mixed_modes_are_converted_with_a_note(tmp_path):
    root = make_image_folder(tmp_path / "train", per_class=2)
    make_image((200, 0, 0), "square", 1, mode="L").save(root / "red_square" / "grey.png")
    make_image((200, 0, 0), "square", 2, mode="RGBA").save(root / "red_square" / "alpha.png")
    make_image((200, 0, 0), "square", 3, mode="CMYK").save(root / "red_square" / "print.jpg")
    frame = load(root, eval_fraction=0).train
    facts = check_images(frame, "image", "train")
    joined = " ".join(facts.notes)
    assert "greyscale" in joined and "RGBA" in joined and "CMYK" in joined
    for name in ("grey.png", "alpha.png", "print.jpg"):
        assert open_rgb(str(root / "red_square" / name)).mode == "RGB"


def test_open_rgb_accepts_paths_data_uris_and_bytes(tmp_path):
    image = make_image((10, 200, 10), "disk", 0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert open_rgb(uri).size == open_rgb(buffer.getvalue()).size == (32, 32)
    with pytest.raises(DataError, match="image file not found"):
        open_rgb(str(tmp_path / "nope.png"))


def test_preview_reads_an_image_folder_without_the_task(tmp_path):
    make_image_folder(tmp_path / "data" / "train", per_class=3)
    frame, origin, total = load_sample(DataSection(source=str(tmp_path / "data"), eval_fraction=None), 4)
    assert list(frame.columns) == ["image", "label"] and len(frame) == 4 and origin.endswith("train")


def test_open_rgb_turns_camera_photos_upright(tmp_path):
    image = make_image((10, 200, 10), "disk", 0).resize((40, 20))
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    image.save(tmp_path / "phone.jpg", exif=exif.tobytes())
    assert open_rgb(str(tmp_path / "phone.jpg")).size == (20, 40)
    image.save(tmp_path / "plain.jpg")
    assert open_rgb(str(tmp_path / "plain.jpg")).size == (40, 20)
