"""Bad inputs of the sentence-transformers tasks (pair, pair_class, pair_score, triplet, qa): CLI validate/train."""

from __future__ import annotations

from bad_inputs.cases import DROP, CliCase, _merge, csv_text, jsonl_text

GOOD = ["a lovely witty film", "a charming moving story", "great fun plot", "superb brilliant actors"]
BAD = ["a dull tedious plot", "an awful boring film", "clumsy messy story", "bland weak actors"]


def pairs(score=lambda i: round((i % 6) * 0.9, 1), label=lambda i: ["same", "other"][i % 2], rows: int = 16) -> str:
    """``{tmp}/pairs.csv``-style text: s1, s2, s3 (a different text), score (0-4.5), label."""
    return csv_text(
        [
            (GOOD[i % 4] + f" {i}", GOOD[(i + 1) % 4] + f" {i}", BAD[i % 4] + f" {i}", score(i), label(i))
            for i in range(rows)
        ],
        header=("s1", "s2", "s3", "score", "label"),
    )


PAIRS = {"pairs.csv": pairs()}
COLUMNS = {
    "pair": {"anchor": "s1", "positive": "s2"},
    "pair_class": {"sentence1": "s1", "sentence2": "s2", "label": "label"},
    "pair_score": {"sentence1": "s1", "sentence2": "s2", "score": "score"},
    "triplet": {"anchor": "s1", "positive": "s2", "negative": "s3"},
    "qa": {"query": "s1", "answer": "s2"},
}


def st(kind: str, source: str = "{tmp}/pairs.csv", **sections) -> dict:
    """A sentence_transformers_<kind> config on the tiny BERT and ``{tmp}/pairs.csv``; sections merge into it."""
    base = {
        "task": f"sentence_transformers_{kind}",
        "model": {"name": "{bert}"},
        "data": {"source": source, "columns": COLUMNS[kind], "eval_fraction": 0},
        "training": {"num_train_epochs": 1, "per_device_train_batch_size": 8},
        "output": {"dir": "{tmp}/run", "report_to": ["none"], "save_checkpoints": False},
    }
    return _merge(base, sections)


def reference(task: str, **extra) -> dict:
    """The reference's (AutoTrain's) shape of an st:* config."""
    base = {
        "task": task,
        "base_model": "{bert}",
        "project_name": "{tmp}/run",
        "log": "none",
        "backend": "local",
        "data": {
            "path": "{tmp}/pairs.csv",
            "train_split": "train",
            "valid_split": None,
            "column_mapping": {"sentence1_column": "s1", "sentence2_column": "s2"},
        },
        "params": {"epochs": 1, "batch_size": 8},
    }
    return _merge(base, extra)


def scored(fifth) -> dict:
    """``pairs.csv`` with ``fifth`` as the fifth row's score."""
    return {"pairs.csv": pairs(score=lambda i: fifth if i == 4 else round((i % 6) * 0.9, 1))}


# fmt: off
CLI_CASES = [
    # columns and sentences, every task
    CliCase("st-pair-missing-positive-column", "validate", st("pair", data={"columns": {"positive": "s9"}}), PAIRS,
            fragments=("has no column 's9' for the positive column", "Columns found: s1, s2, s3, score, label")),
    CliCase("st-triplet-missing-negative-column", "validate",
            st("triplet", data={"columns": {"negative": DROP}}), PAIRS,
            fragments=("has no column 'negative' for the negative column", "data.columns.negative")),
    CliCase("st-pair-empty-sentence", "validate", st("pair"),
            {"pairs.csv": pairs().replace("great fun plot 2,", "   ,", 1)},
            fragments=("the anchor column is empty in 1 row(s), first: rows 3", "(column 's1' of the data)")),
    CliCase("st-qa-non-text-query", "validate",
            st("qa", source="{tmp}/pairs.jsonl", data={"columns": {"query": "q", "answer": "a"}}),
            {"pairs.jsonl": jsonl_text([{"q": "where is the film set?", "a": "in rome"}] * 3
                                       + [{"q": {"text": "who"}, "a": "a man"}, {"q": 42, "a": "x"}])},
            fragments=("the query column holds values that are not text in 2 row(s), first: rows 4, 5",
                       "a JSON object")),
    CliCase("st-pair-class-empty-label", "validate", st("pair_class"),
            {"pairs.csv": pairs(label=lambda i: "" if i == 6 else ["same", "other"][i % 2])},
            fragments=("the label column is empty in 1 row(s), first: rows 7",)),
    # scores
    CliCase("st-pair-score-non-numeric", "validate", st("pair_score"), scored("high"),
            fragments=("score column must hold a similarity from 0 to 1", "row 5: 'high'")),
    CliCase("st-pair-score-negative", "validate", st("pair_score"), scored(-1.5),
            fragments=("1 row(s) do not (row 5: -1.5)",)),
    CliCase("st-pair-score-infinite", "validate", st("pair_score"), scored("inf"),
            fragments=("row 5: inf", "Fix or drop those rows")),
    CliCase("st-pair-score-above-five", "validate", st("pair_score"), scored(7.5),
            fragments=("scores above 5 in 1 row(s), first: rows 5 (largest 7.5)", "params.max_score")),
    CliCase("st-pair-score-above-max-score", "validate", st("pair_score", params={"max_score": 1}), PAIRS,
            fragments=("scores above 1 in", "set params.max_score to its maximum")),
    CliCase("st-pair-score-constant", "validate", st("pair_score"), {"pairs.csv": pairs(score=lambda i: 3)},
            fragments=("every training row has the score 3", "no ranking to learn")),
    CliCase("st-pair-score-missing-score-column", "validate",
            st("pair_score", data={"columns": {"score": "similarity"}}), PAIRS,
            fragments=("has no column 'similarity' for the score column",)),
    CliCase("st-pair-score-max-score-zero", "validate", st("pair_score", params={"max_score": 0}), PAIRS,
            fragments=("params.max_score:", "greater than 0")),
    # labels
    CliCase("st-pair-class-single-class", "validate", st("pair_class"), {"pairs.csv": pairs(label=lambda i: "same")},
            fragments=("holds a single class (same)", "sentence_transformers_pair")),
    CliCase("st-pair-class-unknown-eval-label", "validate",
            st("pair_class", data={"eval_split": "{tmp}/eval.csv", "eval_fraction": DROP}),
            {**PAIRS, "eval.csv": pairs(label=lambda i: "maybe" if i == 2 else "same", rows=4)},
            fragments=("labels ['maybe'] never occur in training", "first rows: rows 3")),
    CliCase("st-pair-class-scores-as-labels", "validate", st("pair_class"),
            {"pairs.csv": pairs(label=lambda i: round(i * 0.37, 2))},
            fragments=("look like scores", "sentence_transformers_pair_score")),
    # triplets and in-batch negatives
    CliCase("st-triplet-negative-is-positive", "validate", st("triplet"),
            {"pairs.csv": pairs().replace("clumsy messy story 2,", "superb brilliant actors 2,", 1)},
            fragments=("the negative is the same text as the positive in 1 row(s), first: rows 3",
                       "columns 's2' and 's3'")),
    CliCase("st-pair-batch-of-one", "validate", st("pair", training={"per_device_train_batch_size": 1}), PAIRS,
            fragments=("training.per_device_train_batch_size: 1:", "in-batch negatives")),
    CliCase("st-qa-cached-mini-batch-not-smaller", "validate", st("qa", params={"cached_mini_batch_size": 8}), PAIRS,
            fragments=("params.cached_mini_batch_size: 8 is not smaller than",)),
    CliCase("st-pair-score-cached-param-not-known", "validate",
            st("pair_score", params={"cached_mini_batch_size": 4}), PAIRS,
            fragments=("params.cached_mini_batch_size",)),
    CliCase("st-pair-max-length-beyond-positions", "validate", st("pair", params={"max_length": 512}), PAIRS,
            fragments=("params.max_length",)),
    # the reference's configs
    CliCase("st-reference-trainer-contradicts-task", "validate",
            reference("st:pair", params={"trainer": "triplet", "epochs": 1}), PAIRS,
            fragments=("params.trainer: 'triplet' contradicts task st:pair",)),
    CliCase("st-reference-unknown-column-key", "validate",
            reference("st:pair", data={"column_mapping": {"sentence1_column": "s1", "sentence2_column": "s2",
                                                          "sentence3_column": "s3"}}), PAIRS,
            fragments=("sentence3_column",)),
    CliCase("st-reference-bare-st-task", "validate", reference("st"), PAIRS,
            fragments=("not supported yet", "sentence-transformers:pair_score")),
    CliCase("st-pair-score-train-fails-before-model", "train", st("pair_score"), scored("unknown"),
            fragments=("row 5: 'unknown'",)),
]
# fmt: on
