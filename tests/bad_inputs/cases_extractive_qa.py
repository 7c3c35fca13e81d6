"""Bad inputs of extractive_qa: SQuAD-shaped answers that cannot be read or do not point at their text, missing or
empty columns, windows that leave no room for the context. Each names the file, column and rows."""

from __future__ import annotations

import json

from bad_inputs.cases import DROP, CliCase, _merge, jsonl_text

CONTEXT = "the film was a lovely story and the actors were witty"


def row(answers, context: str = CONTEXT, question: str = "which word is good?") -> dict:
    return {"context": context, "question": question, "answers": answers}


GOOD = row({"text": ["lovely"], "answer_start": [15]})  # CONTEXT[15:21] == "lovely"
GOOD_ROWS = [GOOD, row({"text": ["witty"], "answer_start": [48]})] * 4  # CONTEXT[48:53] == "witty"


def data(*bad: dict, at: int = 1) -> dict:
    """``{tmp}/qa.jsonl``: good rows with ``bad`` ones from data row ``at + 1`` on."""
    rows = list(GOOD_ROWS)
    rows[at:at] = list(bad)
    return {"qa.jsonl": jsonl_text(rows)}


def qa(**sections) -> dict:
    """A fast extractive_qa config on the tiny BERT and ``{tmp}/qa.jsonl``; sections merge into it."""
    base = {
        "task": "extractive_qa",
        "model": {"name": "{bert}"},
        "data": {"source": "{tmp}/qa.jsonl", "eval_fraction": 0},
        "training": {"num_train_epochs": 1, "learning_rate": 0.01, "per_device_train_batch_size": 8},
        "params": {"max_length": 32, "doc_stride": 8},
        "output": {"dir": "{tmp}/run", "report_to": ["none"], "save_checkpoints": False},
    }
    return _merge(base, sections)


def csv_answers(cell: str) -> dict:
    """``{tmp}/qa.csv`` with good rows and, at data row 2, an answers cell written as ``cell``."""
    lines = ["context,question,answers"]
    for i, r in enumerate(GOOD_ROWS):
        answers = cell if i == 1 else json.dumps(r["answers"])
        lines.append(f'{r["context"]},{r["question"]},"{answers.replace(chr(34), chr(34) * 2)}"')
    return {"qa.csv": "\n".join(lines) + "\n"}


# fmt: off
CLI_CASES = [
    CliCase("qa-answer-start-misses-its-text", "validate", qa(),
            data(row({"text": ["lovely"], "answer_start": [12]}), row({"text": ["actors"], "answer_start": [0]})),
            fragments=("{tmp}/qa.jsonl: answer_start values that do not point at their answer text in 2 row(s)",
                       "row 2: 'lovely' at 12 reads ' a lov' (it occurs at 15)", "row 3: 'actors'")),
    CliCase("qa-answer-text-not-in-context", "train", qa(), data(row({"text": ["superb"], "answer_start": [4]})),
            fragments=("row 2: 'superb' at 4 reads", "it does not occur in the context")),
    CliCase("qa-answers-not-a-dict", "validate", qa(), data(row("lovely"), row(["lovely", 15])),
            fragments=("answers that are not a {text, answer_start} object in 2 row(s)", "row 2: 'lovely'",
                       "row 3: ['lovely', 15]", "data.columns.answers")),
    CliCase("qa-answers-lists-differ-in-length", "validate", qa(),
            data(row({"text": ["lovely", "witty"], "answer_start": [15]})),
            fragments=("answers whose text and answer_start lists differ in length in 1 row(s)",
                       "row 2: 2 text(s), 1 answer_start(s)")),
    CliCase("qa-answers-missing-key", "validate", qa(), data(row({"text": ["lovely"], "start": [15]})),
            fragments=("answers without a 'text' or 'answer_start' key", "row 2: keys 'text', 'start'")),
    CliCase("qa-answer-start-not-a-number", "validate", qa(), data(row({"text": ["lovely"], "answer_start": ["15"]})),
            fragments=("answer_start values that are not whole numbers >= 0", "row 2: ['15']")),
    CliCase("qa-answer-text-not-a-string", "validate", qa(), data(row({"text": [15], "answer_start": [15]})),
            fragments=("answer texts that are not strings in 1 row(s)", "row 2: [15]")),
    CliCase("qa-empty-answer-text", "validate", qa(), data(row({"text": [""], "answer_start": [3]})),
            fragments=("empty answer texts in 1 row(s)", '{"text": [], "answer_start": []}')),
    CliCase("qa-empty-context", "validate", qa(), data(row({"text": [], "answer_start": []}, context="")),
            fragments=("{tmp}/qa.jsonl: the context column is empty in 1 row(s), first: rows 2",)),
    CliCase("qa-question-not-text", "validate", qa(),
            data(row({"text": ["lovely"], "answer_start": [15]}, question=7)),
            fragments=("the question column holds values that are not text", "rows 2")),
    CliCase("qa-missing-question-column", "validate", qa(),
            {"qa.jsonl": jsonl_text([{"context": r["context"], "answers": r["answers"]} for r in GOOD_ROWS])},
            fragments=("{tmp}/qa.jsonl has no column 'question' for the question column", "Columns found: context, "
                       "answers")),
    CliCase("qa-mapped-question-column-missing", "validate", qa(data={"columns": {"question": "query"}}), data(),
            fragments=("has no column 'query' for the question column", "data.columns.question: query")),
    CliCase("qa-csv-answers-unreadable", "validate", qa(data={"source": "{tmp}/qa.csv"}),
            csv_answers("{'text': ['lovely'], 'answer_start': [15]"),
            fragments=("{tmp}/qa.csv: answers that are not a {text, answer_start} object in 1 row(s)", "row 2:")),
    CliCase("qa-csv-python-dict-answers-read", "validate", qa(data={"source": "{tmp}/qa.csv"}),
            csv_answers("{'text': ['lovely'], 'answer_start': [15]}"), code=0, fragments=("extractive_qa",)),
    CliCase("qa-unanswerable-with-version-1-forced", "validate", qa(params={"version_2": False}),
            data(row({"text": [], "answer_start": []})),
            fragments=("1 question(s) without an answer, rows 2, but params.version_2 is false",)),
    CliCase("qa-reference-unanswerable-spelling-note", "validate", qa(),
            data(row({"text": [""], "answer_start": [-1]})),
            code=0, fragments=("1 of 9 questions have no answer: SQuAD 2.0 mode",)),
    CliCase("qa-eval-split-offsets-named", "validate",
            qa(data={"eval_split": "{tmp}/eval.jsonl", "eval_fraction": DROP}),
            {**data(), "eval.jsonl": jsonl_text([GOOD, row({"text": ["witty"], "answer_start": [47]})])},
            fragments=("{tmp}/eval.jsonl: answer_start values that do not point at their answer text",
                       "row 2: 'witty' at 47")),
    CliCase("qa-stride-not-below-length", "validate", qa(params={"max_length": 32, "doc_stride": 32}), data(),
            fragments=("params", "doc_stride (32) must be below max_length (32)")),
    CliCase("qa-question-too-long-for-windows", "validate", qa(),
            data(row({"text": ["lovely"], "answer_start": [15]}, question="good " * 30)),
            fragments=("1 question(s) leave no room for the context in a window of 32 tokens", "rows 2",
                       "Raise params.max_length, lower params.doc_stride")),
    CliCase("qa-max-length-over-positions", "validate", qa(params={"max_length": 128}), data(),
            fragments=("params.max_length: 128 tokens", "max_position_embeddings: 64")),
    CliCase("qa-autotrain-unknown-column", "validate",
            {"task": "extractive-qa", "base_model": "{bert}", "project_name": "{tmp}/run", "backend": "local",
             "data": {"path": "{tmp}/qa.jsonl", "column_mapping": {"text_column": "context", "answers_column": "a"}},
             "params": {"max_seq_length": 32, "max_doc_stride": 8}}, data(),
            fragments=("data.column_mapping.answers_column: not a column of extractive_qa; did you mean "
                       "'answer_column'?",)),
]
# fmt: on
