"""Data layer: every source format, column mapping, evaluation policies and row limits."""

from __future__ import annotations

import pandas as pd
import pytest

from trainforge.config.sections import DataSection
from trainforge.data.loading import load_splits
from trainforge.errors import DataError
from trainforge.tasks.text_classification import CLASSIFICATION_COLUMNS


@pytest.fixture()
def frame() -> pd.DataFrame:
    """40 rows, 3:1 class balance, with user column names."""
    return pd.DataFrame({"sentence": [f"text number {i}" for i in range(40)], "y": ["a", "a", "a", "b"] * 10})


def load(source, seed: int = 0, stratify: str | None = None, **data):
    data.setdefault("eval_fraction", None)
    data.setdefault("columns", {"text": "sentence", "label": "y"})
    return load_splits(DataSection(source=str(source), **data), seed, stratify, CLASSIFICATION_COLUMNS)


def assert_rows_match(loaded: pd.DataFrame, frame: pd.DataFrame) -> None:
    assert list(loaded.columns) == ["text", "label"]
    assert loaded["text"].tolist() == frame["sentence"].tolist()
    assert loaded["label"].tolist() == frame["y"].tolist()


# ------------------------------------------------------------------------------------------------ formats


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("train.csv", lambda f, p: f.to_csv(p, index=False)),
        ("train.tsv", lambda f, p: f.to_csv(p, sep="\t", index=False)),
        ("train.jsonl", lambda f, p: f.to_json(p, orient="records", lines=True)),
        ("train.json", lambda f, p: f.to_json(p, orient="records")),
        ("lines.json", lambda f, p: f.to_json(p, orient="records", lines=True)),
        ("train.parquet", lambda f, p: f.to_parquet(p, index=False)),
    ],
)
def test_each_file_format(tmp_path, frame, name, write):
    path = tmp_path / name
    write(frame, path)
    splits = load(path)
    assert_rows_match(splits.train, frame)
    assert splits.eval is None and splits.train_origin == str(path)


def test_tsv_keeps_stray_quotes(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text('sentence\ty\n"quoted start\ta\nplain\tb\n')
    assert load(path).train["text"].tolist() == ['"quoted start', "plain"]


def test_explicit_format_overrides_extension(tmp_path, frame):
    path = tmp_path / "data.dat"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="cannot tell the format of .*data.dat"):
        load(path)
    assert_rows_match(load(path, format="csv").train, frame)


def test_folder_of_split_files(tmp_path, frame):
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[:8].to_json(tmp_path / "validation.jsonl", orient="records", lines=True)
    splits = load(tmp_path, eval_split="validation")
    assert_rows_match(splits.train, frame)
    assert_rows_match(splits.eval, frame.iloc[:8])
    assert splits.eval_origin == str(tmp_path / "validation.jsonl")


def test_folder_missing_split_lists_files(tmp_path, frame):
    frame.to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(DataError, match=r"no file for split 'dev' in .*; found: train.csv"):
        load(tmp_path, eval_split="dev")


def test_folder_with_two_files_for_one_split(tmp_path, frame):
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.to_parquet(tmp_path / "train.parquet")
    with pytest.raises(DataError, match="several files for split 'train': train.csv, train.parquet"):
        load(tmp_path)


def test_eval_split_file_path_when_source_is_a_file(tmp_path, frame):
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[:5].to_csv(tmp_path / "test.csv", index=False)
    splits = load(tmp_path / "train.csv", eval_split=str(tmp_path / "test.csv"))
    assert_rows_match(splits.eval, frame.iloc[:5])
    with pytest.raises(DataError, match="eval_split must be a file path"):
        load(tmp_path / "train.csv", eval_split="validation")
    with pytest.raises(DataError, match="eval_split is the training file"):
        load(tmp_path / "train.csv", eval_split=str(tmp_path / "." / "train.csv"))


def test_save_to_disk_dataset_dict(tmp_path, frame):
    import datasets

    folder = tmp_path / "saved"
    dataset = datasets.Dataset.from_pandas(frame)
    datasets.DatasetDict({"train": dataset, "test": dataset.select(range(6))}).save_to_disk(str(folder))
    splits = load(folder, eval_split="test")
    assert_rows_match(splits.train, frame)
    assert_rows_match(splits.eval, frame.iloc[:6])
    with pytest.raises(DataError, match="split 'dev' not in .*; it has: train, test"):
        load(folder, eval_split="dev")


def test_save_to_disk_single_dataset(tmp_path, frame):
    import datasets

    folder = tmp_path / "saved"
    datasets.Dataset.from_pandas(frame).save_to_disk(str(folder))
    assert_rows_match(load(folder).train, frame)
    with pytest.raises(DataError, match="holds a single dataset"):
        load(folder, eval_split="test")


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match=r"'stanfordnlp/sst2' is not a local path.*Hub is offline"):
        load("stanfordnlp/sst2")


def test_hub_load_failure_is_a_clear_error(monkeypatch):
    import datasets
    from huggingface_hub import constants

    def unreachable(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(DataError, match="could not load Hub dataset 'org/data' split 'train': no route to host"):
        load("org/data")


def test_missing_local_file(tmp_path):
    with pytest.raises(DataError, match=r"data.source '.*missing.csv' does not exist"):
        load(tmp_path / "missing.csv")


def test_unparseable_files_name_the_file(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"not a parquet file at all")
    with pytest.raises(DataError, match=r"could not parse .*bad.parquet as PARQUET"):
        load(tmp_path / "bad.parquet")
    (tmp_path / "bad.jsonl").write_text('{"sentence": "ok", "y": "a"}\n{"sentence": "broken", y: b}\n')
    with pytest.raises(DataError, match=r"could not parse .*bad.jsonl as JSONL: line 2 is not valid JSON"):
        load(tmp_path / "bad.jsonl")
    (tmp_path / "scalar.jsonl").write_text('{"sentence": "ok", "y": "a"}\n3\n')
    with pytest.raises(DataError, match=r"scalar.jsonl as JSONL: line 2 is not a JSON object: '3'"):
        load(tmp_path / "scalar.jsonl")


def test_empty_files(tmp_path):
    (tmp_path / "header.csv").write_text("sentence,y\n")
    with pytest.raises(DataError, match=r"header.csv has no rows"):
        load(tmp_path / "header.csv")
    (tmp_path / "blank.csv").write_text("")
    with pytest.raises(DataError, match=r"blank.csv is empty"):
        load(tmp_path / "blank.csv")


# ------------------------------------------------------------------------------------------------ columns


def test_default_column_names_need_no_mapping(tmp_path):
    path = tmp_path / "train.csv"
    pd.DataFrame({"text": ["a", "b"], "label": [0, 1], "extra": [1, 2]}).to_csv(path, index=False)
    splits = load(path, columns={})
    assert list(splits.train.columns) == ["text", "label"]


def test_missing_column_lists_columns_found(tmp_path, frame):
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        load(path, columns={"text": "review", "label": "y"})
    message = str(info.value)
    assert "has no column 'review' for the text column" in message
    assert "Columns found: sentence, y" in message
    assert "Set data.columns.text: review to one of them" in message


def test_optional_column_is_kept_when_present(tmp_path, frame):
    path = tmp_path / "train.csv"
    frame.assign(w=1.0).to_csv(path, index=False)
    splits = load(path, columns={"text": "sentence", "label": "y", "sample_weight": "w"})
    assert list(splits.train.columns) == ["text", "label", "sample_weight"]


# ------------------------------------------------------------------------------------------------ eval policies


@pytest.fixture()
def csv(tmp_path, frame):
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    return path


def test_no_eval_policy_keeps_every_row_for_training(csv, frame):
    splits = load(csv, eval_fraction=0)
    assert splits.eval is None and len(splits.train) == len(frame)


def test_eval_fraction_is_seeded_and_disjoint(csv):
    first, again, other = (load(csv, seed=s, eval_fraction=0.25) for s in (1, 1, 2))
    assert len(first.eval) == 10 and len(first.train) == 30
    assert first.eval["text"].tolist() == again.eval["text"].tolist()
    assert first.eval["text"].tolist() != other.eval["text"].tolist()
    assert not set(first.eval["text"]) & set(first.train["text"])
    assert "0.25 of" in first.eval_origin and "seed 1" in first.eval_origin


def test_eval_fraction_stratified_keeps_class_proportions(csv):
    splits = load(csv, stratify="label", eval_fraction=0.2)
    assert splits.eval["label"].value_counts().to_dict() == {"a": 6, "b": 2}
    assert splits.train["label"].value_counts().to_dict() == {"a": 24, "b": 8}


def test_eval_fraction_too_small_for_any_row(csv):
    with pytest.raises(DataError, match="has no rows; raise data.eval_fraction"):
        load(csv, eval_fraction=0.001)


def test_max_train_rows_applies_before_the_hold_out(csv, frame):
    splits = load(csv, max_train_rows=20, eval_fraction=0.25)
    assert len(splits.train) == 15 and len(splits.eval) == 5
    assert set(splits.train["text"]) | set(splits.eval["text"]) == set(frame["sentence"][:20])


def test_max_eval_rows(tmp_path, frame):
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.to_csv(tmp_path / "dev.csv", index=False)
    splits = load(tmp_path, eval_split="dev", max_eval_rows=7)
    assert len(splits.eval) == 7 and len(splits.train) == 40


def test_rows_keep_their_file_index(csv):
    """Messages name rows of the user's file, so the hold-out must not renumber them."""
    splits = load(csv, seed=3, eval_fraction=0.25)
    assert sorted(splits.train.index.tolist() + splits.eval.index.tolist()) == list(range(40))
    assert all(splits.eval.loc[i, "text"] == f"text number {i}" for i in splits.eval.index)
