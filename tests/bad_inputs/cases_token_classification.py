"""Bad inputs of token_classification: word and tag lists that cannot be read or do not match, CoNLL files with
malformed lines, tags that cannot be named. Each names the file, column and rows (or the line)."""

from __future__ import annotations

from bad_inputs.cases import CliCase, _merge, jsonl_text

GOOD = [
    {"tokens": ["the", "greatson", "film"], "tags": ["O", "B-PER", "O"]},
    {"tokens": ["a", "dullton", "story"], "tags": ["O", "B-LOC", "O"]},
] * 4


def data(*bad: dict, at: int = 1) -> dict:
    """``{tmp}/ner.jsonl``: good rows with ``bad`` ones from data row ``at + 1`` on."""
    rows = list(GOOD)
    rows[at:at] = list(bad)
    return {"ner.jsonl": jsonl_text(rows)}


def tok(**sections) -> dict:
    """A fast token_classification config on the tiny BERT and ``{tmp}/ner.jsonl``; sections merge into it."""
    base = {
        "task": "token_classification",
        "model": {"name": "{bert}"},
        "data": {"source": "{tmp}/ner.jsonl", "eval_fraction": 0},
        "training": {"num_train_epochs": 1, "learning_rate": 0.01, "per_device_train_batch_size": 8},
        "params": {"max_length": 16},
        "output": {"dir": "{tmp}/run", "report_to": ["none"], "save_checkpoints": False},
    }
    return _merge(base, sections)


CONLL = "EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\n\n"
CSV_SENTENCES = "tokens,tags\n" + "".join(
    f'"{t}","{g}"\n'
    for t, g in [
        ("['the', 'greatson']", "['O', 'B-PER']"),
        ("the film was good", "['O', 'O', 'O', 'O']"),
        ("['a', 'dullton']", "['O', 'B-LOC']"),
    ]
)

# fmt: off
CLI_CASES = [
    CliCase("tok-tags-tokens-length-mismatch", "validate", tok(),
            data({"tokens": ["a", "b", "c"], "tags": ["O", "O"]}, {"tokens": ["x"], "tags": ["O", "B-PER"]}),
            fragments=("{tmp}/ner.jsonl: 2 row(s) hold a different number of tags than words",
                       "row 2: 3 words, 2 tags", "row 3: 1 words, 2 tags")),
    CliCase("tok-empty-token-lists", "validate", tok(), data({"tokens": [], "tags": []}),
            fragments=("the tokens column holds an empty list in rows 2", "the tags column holds an empty list")),
    CliCase("tok-non-list-cells-csv", "validate", tok(data={"source": "{tmp}/ner.csv"}), {"ner.csv": CSV_SENTENCES},
            fragments=("{tmp}/ner.csv: the tokens column must hold a list in every row; 1 row(s) do not",
                       "row 2 holds a str: 'the film was good'", "['EU', 'rejects', 'German']")),
    CliCase("tok-non-list-cells-jsonl", "validate", tok(), data({"tokens": "the film", "tags": 3}),
            fragments=("the tokens column must hold a list", "the tags column must hold a list",
                       "row 2 holds a number: 3")),
    CliCase("tok-unknown-format", "validate", tok(data={"source": "{tmp}/ner.iob"}), {"ner.iob": CONLL},
            fragments=("cannot tell the format of {tmp}/ner.iob", ".conll, .txt", "data.format")),
    CliCase("tok-unknown-format-name", "validate", tok(data={"format": "iob"}), data(),
            fragments=("data.format:", "'conll'")),
    CliCase("tok-missing-tags-column", "validate", tok(data={"columns": {"tags": "ner_tags"}}), data(),
            fragments=("{tmp}/ner.jsonl has no column 'ner_tags' for the tags column", "Columns found: tokens, tags")),
    CliCase("tok-missing-tokens-column", "validate", tok(),
            {"ner.jsonl": jsonl_text([{"words": ["a"], "tags": ["O"]}])},
            fragments=("has no column 'tokens' for the tokens column", "Columns found: words, tags")),
    CliCase("tok-empty-word-and-bad-tag", "validate", tok(),
            data({"tokens": ["a", " "], "tags": ["O", "O"]}, {"tokens": ["a"], "tags": [{"tag": "O"}]}),
            fragments=("every item of a tokens list must be a non-empty string (a word); rows 2 hold others",
                       "every item of a tags list must be a tag name or an integer id; rows 3",
                       "a JSON object")),
    CliCase("tok-conll-line-without-tag", "validate", tok(data={"source": "{tmp}/ner.conll"}),
            {"ner.conll": CONLL + "Blackburn\n"},
            fragments=("{tmp}/ner.conll: line 7 ('Blackburn') holds one field", "a word and its tag")),
    CliCase("tok-conll-ragged-columns", "validate", tok(data={"source": "{tmp}/ner.txt"}),
            {"ner.txt": "EU NNP B-ORG\nrejects VBZ O\nGerman B-MISC\n"},
            fragments=("{tmp}/ner.txt: line 3 ('German B-MISC') holds 2 fields, but line 1 holds 3",)),
    CliCase("tok-conll-not-utf8", "validate", tok(data={"source": "{tmp}/ner.conll"}),
            {"ner.conll": b"EU B-ORG\nM\xfcller B-PER\n"},
            fragments=("{tmp}/ner.conll: line 2 is not UTF-8 text (byte 0xfc)",)),
    CliCase("tok-integer-tags-without-names", "validate", tok(),
            {"ner.jsonl": jsonl_text([{"tokens": ["a", "b"], "tags": [0, 3]}] * 4)},
            fragments=("the tags are integer ids (row 1: [0, 3])", "params.label_names")),
    CliCase("tok-tag-id-out-of-range", "validate", tok(params={"label_names": ["O", "B-PER"]}),
            {"ner.jsonl": jsonl_text([{"tokens": ["a", "b"], "tags": [0, 1]}, {"tokens": ["c"], "tags": [5]}])},
            fragments=("row 2 holds tag ids [5], but params.label_names names 2 tags (ids 0..1)",)),
    CliCase("tok-names-and-ids-mixed", "validate", tok(), data({"tokens": ["a", "b"], "tags": ["O", 2]}),
            fragments=("the tags mix names and integer ids (ids in rows 2",)),
    CliCase("tok-prefixed-and-plain-tags", "validate", tok(), data({"tokens": ["a", "b"], "tags": ["PER", "O"]}),
            fragments=("the tags mix prefixed tags (B-LOC, B-PER) with tags without a B-/I-/E-/S- prefix (PER)",)),
    CliCase("tok-only-outside-tags", "validate", tok(),
            {"ner.jsonl": jsonl_text([{"tokens": ["a", "b"], "tags": ["O", "O"]}] * 4)},
            fragments=("every word of the training split has the tag 'O': there is nothing to learn",)),
]
# fmt: on
