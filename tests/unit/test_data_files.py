"""Data files as people really have them: Excel delimiters and encodings, BOMs, messy headers, JSON shapes, and
texts that are not text. Every case writes its own file and checks the outcome and the message naming the cause."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import make_sentiment_frame
from trainforge.cli.main import main
from trainforge.data.labels import require_text
from trainforge.data.loading import read_table
from trainforge.errors import DataError

ROWS = [("lovely witty film", "positive"), ("dull tedious plot", "negative"), ("a charming café scene", "positive")]


def write_delimited(path: Path, sep: str, encoding: str = "utf-8", header=("review", "sentiment")) -> Path:
    lines = [sep.join(header)] + [sep.join(row) for row in ROWS]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def assert_rows(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == ["review", "sentiment"]
    assert frame["review"].tolist() == [text for text, _ in ROWS]
    assert frame["sentiment"].tolist() == [label for _, label in ROWS]


def validate(capsys, tmp_path: Path, config: dict) -> tuple[int, str]:
    """``trainforge validate`` in-process; returns (exit code, stderr)."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.fixture()
def config(tiny_bert, tmp_path) -> dict:
    return {
        "task": "text_classification",
        "model": {"name": tiny_bert},
        "data": {
            "source": str(tmp_path / "train.jsonl"),
            "columns": {"text": "review", "label": "sentiment"},
            "eval_fraction": 0,
        },
        "output": {"dir": str(tmp_path / "run")},
    }


# ------------------------------------------------------------------------------------------------ delimiters


@pytest.mark.parametrize(("sep", "name"), [(";", "semicolons"), ("\t", "tabs"), ("|", "pipes")])
def test_csv_delimiter_is_sniffed_with_a_note(tmp_path, capsys, sep, name):
    path = write_delimited(tmp_path / "train.csv", sep)
    assert_rows(read_table(path))
    assert f"{path} is separated by {name}, not commas" in capsys.readouterr().err


def test_excel_sep_line_names_the_delimiter(tmp_path, capsys):
    path = tmp_path / "train.csv"
    path.write_bytes(b"sep=;\r\n" + write_delimited(tmp_path / "plain.csv", ";").read_bytes())
    assert_rows(read_table(path))
    assert_rows(read_table(path, max_rows=3))
    assert "separated by semicolons, not commas, as its first line 'sep=;' says" in capsys.readouterr().err


def test_comma_file_with_semicolons_in_texts_stays_comma(tmp_path, capsys):
    path = tmp_path / "train.csv"
    path.write_text("review,sentiment\nwitty; lovely; moving,positive\ndull; tedious,negative\n")
    assert read_table(path)["review"].tolist() == ["witty; lovely; moving", "dull; tedious"]
    assert "separated by" not in capsys.readouterr().err


def test_tsv_holding_commas_is_read_as_comma_separated(tmp_path, capsys):
    path = write_delimited(tmp_path / "train.tsv", ",")
    assert_rows(read_table(path))
    assert f"{path} is separated by commas, not tabs" in capsys.readouterr().err


def test_single_column_csv_is_one_column(tmp_path):
    path = tmp_path / "inputs.csv"
    path.write_text('review\n"witty, lovely"\nplain\n')
    assert read_table(path)["review"].tolist() == ["witty, lovely", "plain"]


def test_ragged_rows_name_the_delimiter_and_line(tmp_path):
    path = write_delimited(tmp_path / "train.csv", ";")
    path.write_text(path.read_text() + "too;many;fields\n")
    with pytest.raises(DataError, match=r"separated by semicolons.*line 5") as caught:
        read_table(path)
    assert str(path) in str(caught.value)


def test_sniffing_reads_a_head_and_max_rows_streams(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w") as handle:
        handle.write("review;sentiment\n")
        handle.writelines(f"text number {i};{'ab'[i % 2]}\n" for i in range(50_000))
    frame = read_table(path, max_rows=3)
    assert frame["review"].tolist() == ["text number 0", "text number 1", "text number 2"]
    assert len(read_table(path)) == 50_000


# ------------------------------------------------------------------------------------------------ encodings


@pytest.mark.parametrize("name", ["train.csv", "train.tsv", "train.jsonl", "train.json", "array.json"])
def test_utf8_bom_is_stripped(tmp_path, name):
    frame = pd.DataFrame(ROWS, columns=["review", "sentiment"])
    path = tmp_path / name
    if name.endswith("sv"):
        frame.to_csv(path, sep="\t" if name.endswith("tsv") else ",", index=False, encoding="utf-8-sig")
    else:
        text = frame.to_json(orient="records", lines=name != "array.json", force_ascii=False)
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert_rows(read_table(path))


def test_utf16_with_bom_is_read(tmp_path):
    path = write_delimited(tmp_path / "train.tsv", "\t", encoding="utf-16")
    assert_rows(read_table(path))


def test_cp1252_export_is_read_with_a_note(tmp_path, capsys):
    path = write_delimited(tmp_path / "train.csv", ";", encoding="cp1252")
    assert_rows(read_table(path))
    err = capsys.readouterr().err
    assert f"{path} is not UTF-8 (byte 0xe9 on line 4)" in err
    assert "Windows-1252" in err and "CSV UTF-8" in err


def test_latin1_byte_after_the_sniffed_head_falls_back(tmp_path, capsys):
    path = tmp_path / "train.csv"
    rows = [f"plain ascii text {i},positive" for i in range(5000)]
    path.write_bytes(
        ("review,sentiment\n" + "\n".join(rows) + "\n").encode() + "naïve film,negative\n".encode("latin-1")
    )
    frame = read_table(path)
    assert frame["review"].iloc[-1] == "naïve film"
    assert "byte 0xef on line 5002" in capsys.readouterr().err


def test_neither_utf8_nor_cp1252_is_an_error_with_the_fix(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"review,sentiment\nbad \x81 byte,positive\n")
    with pytest.raises(DataError, match=r"is not UTF-8 text \(byte 0x81 on line 2\), nor Windows-1252") as caught:
        read_table(path)
    assert "re-save it as UTF-8" in str(caught.value) and str(path) in str(caught.value)


def test_utf16_without_bom_is_an_error(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes("review,sentiment\nfine,positive\n".encode("utf-16-le"))
    with pytest.raises(DataError, match="NUL bytes, so it is UTF-16 text without a byte-order mark"):
        read_table(path)


def test_cp1252_file_trains_through_validate(capsys, tmp_path, config):
    frame = make_sentiment_frame(40)
    frame.loc[0, "review"] += " café"
    path = tmp_path / "train.csv"
    frame.to_csv(path, sep=";", index=False, encoding="cp1252")
    config["data"]["source"] = str(path)
    code, err = validate(capsys, tmp_path, config)
    assert code == 0, err
    assert "is not UTF-8" in err and "is separated by semicolons" in err


# ------------------------------------------------------------------------------------------------ headers


def test_header_spaces_are_trimmed_with_a_note(tmp_path, capsys):
    path = write_delimited(tmp_path / "train.csv", ",", header=(" review", "sentiment "))
    assert_rows(read_table(path))
    assert "trimmed spaces around column names (' review' -> 'review', 'sentiment ' -> 'sentiment')" in (
        capsys.readouterr().err
    )


def test_mapping_written_with_the_untrimmed_name_still_applies(capsys, tmp_path, config):
    path = tmp_path / "train.csv"
    make_sentiment_frame(40).to_csv(path, index=False, header=[" review ", "sentiment", "score"])
    config["data"].update(source=str(path), columns={"text": " review ", "label": "sentiment"})
    code, err = validate(capsys, tmp_path, config)
    assert code == 0, err
    assert "trimmed spaces around column names (' review ' -> 'review')" in err


def test_json_keys_with_spaces_are_trimmed(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"review ": text, " sentiment": label}) + "\n" for text, label in ROWS))
    assert_rows(read_table(path))


@pytest.mark.parametrize(
    ("name", "header", "listing"),
    [
        ("train.csv", "text,label,text", "'text' (columns 1 and 3)"),
        ("train.tsv", "text\tlabel\ttext", "'text' (columns 1 and 3)"),
        ("train.csv", "text,label, text ,label", "'text' (columns 1 and 3); 'label' (columns 2 and 4)"),
        ("train.csv", "a;b;a;a", "'a' (columns 1, 3 and 4)"),
    ],
)
def test_duplicate_header_names_are_refused(tmp_path, name, header, listing):
    path = tmp_path / name
    sep = ";" if ";" in header else "\t" if "\t" in header else ","
    path.write_text(header + "\n" + sep.join(["x"] * (header.count(sep) + 1)) + "\n")
    with pytest.raises(DataError, match="the header names a column more than once") as caught:
        read_table(path)
    assert f"{path}: " in str(caught.value) and listing in str(caught.value)


def test_duplicate_parquet_columns_are_refused(tmp_path):
    path = tmp_path / "train.parquet"
    pq.write_table(
        pa.table([pa.array(["a"]), pa.array(["b"]), pa.array(["c"])], names=["text", "label", "text"]), path
    )
    with pytest.raises(DataError, match=r"'text' \(columns 1 and 3\)"):
        read_table(path)


def test_blank_header_cells_are_not_duplicates(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("review,sentiment,,\nfine,positive,,\n")
    assert list(read_table(path).columns)[:2] == ["review", "sentiment"]


def test_duplicate_header_fails_validate(capsys, tmp_path, config):
    path = tmp_path / "train.csv"
    frame = make_sentiment_frame(40)
    frame.insert(0, "draft", [f"draft {i}" for i in range(40)])
    frame[["draft", "sentiment", "review"]].to_csv(path, index=False, header=["text", "label", "text"])
    config["data"].update(source=str(path), columns={})
    code, err = validate(capsys, tmp_path, config)
    assert code == 2
    assert f"{path}: the header names a column more than once: 'text' (columns 1 and 3)" in err


def test_duplicate_header_fails_the_app_preview(tmp_path):
    from trainforge.app.files import preview

    path = tmp_path / "train.csv"
    path.write_text("text,label,text\ndraft,positive,lovely film\n")
    with pytest.raises(DataError, match=r"'text' \(columns 1 and 3\)"):
        preview(str(path), None)


# ------------------------------------------------------------------------------------------------ JSON shapes


@pytest.mark.parametrize("name", ["train.json", "train.jsonl"])
@pytest.mark.parametrize("lines", [True, False])
def test_json_array_or_lines_with_leading_whitespace(tmp_path, name, lines):
    frame = pd.DataFrame(ROWS, columns=["review", "sentiment"])
    path = tmp_path / name
    path.write_text("\n  \n " + frame.to_json(orient="records", lines=lines, force_ascii=False) + "\n\n")
    assert_rows(read_table(path))
    assert_rows(pd.concat([read_table(path, max_rows=2), read_table(path, max_rows=3).iloc[2:]]))


def test_jsonl_max_rows_skips_blank_lines(tmp_path):
    path = tmp_path / "train.jsonl"
    records = [json.dumps({"review": text, "sentiment": label}) for text, label in ROWS]
    path.write_text("\n\n" + "\n\n".join(records) + "\n")
    assert read_table(path, max_rows=2)["review"].tolist() == ["lovely witty film", "dull tedious plot"]


def test_whitespace_only_json_is_empty(tmp_path):
    path = tmp_path / "train.json"
    path.write_text("\ufeff \n\n")
    with pytest.raises(DataError, match=f"{path} is empty"):
        read_table(path)


def test_bad_json_line_is_named_after_a_bom(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"review": "fine", "sentiment": "positive"}\n{"review": oops}\n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        read_table(path)


# ------------------------------------------------------------------------------------------------ non-text


def write_jsonl(path: Path, texts: list) -> Path:
    frame = make_sentiment_frame(len(texts))
    path.write_text(
        "".join(
            json.dumps({"review": t, "sentiment": s}) + "\n" for t, s in zip(texts, frame["sentiment"], strict=True)
        )
    )
    return path


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({"title": "x", "body": "lovely film"}, "a JSON object: {'title': 'x', 'body': 'lovely film'}"),
        (["lovely", "film"], "a list: ['lovely', 'film']"),
        (42, "a number: 42"),
        (True, "a boolean: True"),
    ],
)
def test_non_string_text_fails_validate(capsys, tmp_path, config, value, kind):
    texts = list(make_sentiment_frame(40)["review"])
    texts[2] = value
    write_jsonl(tmp_path / "train.jsonl", texts)
    code, err = validate(capsys, tmp_path, config)
    assert code == 2
    assert "the text column holds values that are not text in 1 row(s), first: rows 3" in err
    assert "data.columns.text names the column of texts" in err  # training maps the data's columns
    assert f"(row 3 holds {kind})" in err and "column 'review' of the data" in err
    assert str(tmp_path / "train.jsonl") in err


def test_nested_json_texts_everywhere_fail_validate(capsys, tmp_path, config):
    texts = [{"title": "x", "body": t} for t in make_sentiment_frame(40)["review"]]
    write_jsonl(tmp_path / "train.jsonl", texts)
    code, err = validate(capsys, tmp_path, config)
    assert code == 2 and "not text in 40 row(s), first: rows 1, 2, 3, 4, 5 ..." in err


def test_empty_and_non_string_texts_in_one_message(capsys, tmp_path, config):
    texts = list(make_sentiment_frame(40)["review"])
    texts[4], texts[6], texts[9] = "  ", None, {"a": 1}
    write_jsonl(tmp_path / "train.jsonl", texts)
    code, err = validate(capsys, tmp_path, config)
    assert code == 2
    assert "the text column is empty in 2 row(s), first: rows 5, 7; and" in err
    assert "not text in 1 row(s), first: rows 10" in err


def test_numeric_text_column_fails_validate(capsys, tmp_path, config):
    path = tmp_path / "train.csv"
    frame = make_sentiment_frame(40).assign(review=range(40))
    frame.to_csv(path, index=False)
    config["data"]["source"] = str(path)
    code, err = validate(capsys, tmp_path, config)
    assert code == 2 and "not text in 40 row(s)" in err and "(row 1 holds a number: 0)" in err


def test_require_text_accepts_strings_and_names_rows_by_index():
    frame = pd.DataFrame({"text": ["fine", "", pd.NA, 3.5]}, index=[10, 11, 12, 13], dtype=object)
    with pytest.raises(DataError, match=r"the input: the text column is empty in 2 row\(s\), first: rows 12, 13"):
        require_text(frame, "text", "the input")
    require_text(frame.iloc[:1], "text", "the input")
