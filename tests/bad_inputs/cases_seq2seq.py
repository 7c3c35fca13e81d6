"""Bad inputs of the seq2seq task: texts, columns, lengths beyond the model's positions, models, generation metrics.

``{t5}`` is the tiny T5 (relative positions), ``{bart}`` the tiny BART with 64 absolute positions (tests/conftest.py).
"""

from __future__ import annotations

from bad_inputs.cases import DROP, CliCase, _merge, csv_text, jsonl_text

PAIRS = [(f"the red cat runs {i}", f"die rote katze läuft {i}") for i in range(16)]
PAIRS_CSV = csv_text(PAIRS, header=("en", "de"))
DATA = {"train.csv": PAIRS_CSV}


def s2s(**sections) -> dict:
    """A fast seq2seq config on the tiny T5 and ``{tmp}/train.csv`` (en -> de); sections merge into it."""
    base = {
        "task": "seq2seq",
        "model": {"name": "{t5}"},
        "data": {"source": "{tmp}/train.csv", "columns": {"text": "en", "target": "de"}, "eval_fraction": 0},
        "training": {"num_train_epochs": 1, "learning_rate": 0.01, "per_device_train_batch_size": 8},
        "params": {"max_length": 16, "max_target_length": 16},
        "output": {"dir": "{tmp}/run", "report_to": ["none"], "save_checkpoints": False},
    }
    return _merge(base, sections)


def with_row(row: int, source, target) -> dict:
    """``train.jsonl``: the pairs with ``row`` (0-based) replaced by these JSON values."""
    records = [{"en": s, "de": t} for s, t in PAIRS]
    records[row] = {"en": source, "de": target}
    return {"train.jsonl": jsonl_text(records)}


JSONL = {"data": {"source": "{tmp}/train.jsonl"}}
EMPTY_TARGET = {"train.csv": csv_text([*PAIRS[:2], ("the dog sleeps", ""), *PAIRS[3:]], header=("en", "de"))}

# fmt: off
CLI_CASES = [
    CliCase("seq2seq-empty-target", "validate", s2s(), EMPTY_TARGET,
            fragments=("the target column is empty in 1 row(s), first: rows 3", "(column 'de' of the data)")),
    CliCase("seq2seq-empty-target-train", "train", s2s(), EMPTY_TARGET,
            fragments=("the target column is empty", "rows 3")),
    CliCase("seq2seq-missing-target-column", "validate", s2s(data={"columns": {"target": "german"}}), DATA,
            fragments=("german", "en, de")),
    CliCase("seq2seq-source-json-object", "validate", s2s(**JSONL), with_row(4, {"text": "the cat"}, "die katze"),
            fragments=("the text column holds values that are not text in 1 row(s), first: rows 5",
                       "a JSON object")),
    CliCase("seq2seq-target-boolean", "validate", s2s(**JSONL), with_row(1, "the cat", True),
            fragments=("the target column holds values that are not text", "a boolean")),
    CliCase("seq2seq-empty-source-and-target-listed-together", "validate", s2s(**JSONL), with_row(0, None, None),
            fragments=("2 problems", "the text column is empty", "the target column is empty")),
    CliCase("seq2seq-target-length-beyond-positions", "validate",
            s2s(model={"name": "{bart}"}, params={"max_target_length": 100}), DATA,
            fragments=("params.max_target_length: 100 tokens", "absolute position embeddings for 64 tokens",
                       "set params.max_target_length to 64 or less")),
    CliCase("seq2seq-new-tokens-beyond-positions", "validate",
            s2s(model={"name": "{bart}"}, params={"max_new_tokens": 500}), DATA,
            fragments=("params.max_new_tokens: 500 tokens", "64")),
    CliCase("seq2seq-source-length-beyond-positions", "validate",
            s2s(model={"name": "{bart}"}, params={"max_length": 65}), DATA,
            fragments=("params.max_length", "Set params.max_length to 64 or less")),
    CliCase("seq2seq-encoder-only-model", "validate", s2s(model={"name": "{bert}"}), DATA,
            fragments=("model.name", "is a bert model, not an encoder-decoder", "llm_sft")),
    CliCase("seq2seq-best-metric-needs-generation", "validate",
            s2s(training={"metric_for_best_model": "bleu"}, params={"predict_with_generate": False}), DATA,
            fragments=("training.metric_for_best_model", "set params.predict_with_generate: true")),
    CliCase("seq2seq-best-metric-unknown", "validate", s2s(training={"metric_for_best_model": "accuracy"}), DATA,
            fragments=("'accuracy' is not a seq2seq score", "rougeL", "chrf")),
    CliCase("seq2seq-lora-unknown-module", "validate", s2s(peft={"enabled": True, "target_modules": ["query"]}), DATA,
            fragments=("peft.target_modules", "'query' names no module of the model", "T5ForConditionalGeneration")),
    CliCase("seq2seq-zero-beams", "validate", s2s(params={"num_beams": 0}), DATA,
            fragments=("params.num_beams", "greater than or equal to 1")),
    CliCase("seq2seq-autotrain-misspelt-param", "validate",
            {"task": "seq2seq", "base_model": "{t5}", "project_name": "{tmp}/run", "backend": "local",
             "data": {"path": "{tmp}/train.csv", "train_split": "train", "valid_split": None,
                      "column_mapping": {"text_column": "en", "target_column": "de"}},
             "params": {"max_target_lenght": 16, "epochs": 1}, "hub": {"push_to_hub": False}},
            DATA, fragments=("params.max_target_lenght", "did you mean 'max_target_length'?")),
    CliCase("seq2seq-label-column-of-another-task", "validate",
            s2s(data={"columns": {"label": "de", "target": DROP}}), DATA,
            fragments=("data.columns.label: not a column of task seq2seq",)),
]
# fmt: on
