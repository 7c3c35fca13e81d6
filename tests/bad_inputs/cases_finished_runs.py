"""Bad inputs of the commands that use a finished run: evaluate, export, serve (never one that starts a server).

``{run}`` is the shared finished text-classification run (columns review, sentiment); a refusal writes nothing
into it, which the suite checks after every case.
"""

from __future__ import annotations

from bad_inputs.cases import TRAIN_CSV, CliCase, csv_text

EVAL = ("--data", "{tmp}/eval.csv")
NOT_A_RUN = {"notrun/x.txt": "x"}

# fmt: off
CLI_CASES = [
    # evaluate
    CliCase("evaluate-not-a-run-dir", "evaluate", None, {"eval.csv": TRAIN_CSV, **NOT_A_RUN},
            args=("{tmp}/notrun", *EVAL), fragments=("{tmp}/notrun is not a trainforge run directory",)),
    CliCase("evaluate-data-missing", "evaluate", None, {}, args=("{run}", *EVAL),
            fragments=("--data '{tmp}/eval.csv' does not exist",)),
    CliCase("evaluate-data-empty-file", "evaluate", None, {"eval.csv": ""}, args=("{run}", *EVAL),
            fragments=("eval.csv is empty",)),
    CliCase("evaluate-no-label-column", "evaluate", None, {"eval.csv": "review\ngood fun\n"}, args=("{run}", *EVAL),
            fragments=("has no column 'sentiment' for the label column", "Pass --columns label=COLUMN")),
    CliCase("evaluate-label-the-model-lacks", "evaluate", None,
            {"eval.csv": csv_text([("good fun", "positive"), ("so-so", "neutral")])}, args=("{run}", *EVAL),
            fragments=("labels ['neutral'] are not classes of this model (negative, positive), first at rows 2",)),
    CliCase("evaluate-empty-label", "evaluate", None, {"eval.csv": 'review,sentiment\ngood fun,positive\nbad,""\n'},
            args=("{run}", *EVAL), fragments=("target column 'sentiment' is empty in rows 2", "fill in those")),
    CliCase("evaluate-columns-not-pairs", "evaluate", None, {"eval.csv": TRAIN_CSV},
            args=("{run}", *EVAL, "--columns", "review"), fragments=("'review' is not logical=column",)),
    CliCase("evaluate-columns-unknown-logical", "evaluate", None, {"eval.csv": TRAIN_CSV},
            args=("{run}", *EVAL, "--columns", "txt=review"),
            fragments=("--columns names ['txt'], which text_classification does not read",)),
    CliCase("evaluate-split-of-a-file", "evaluate", None, {"eval.csv": TRAIN_CSV},
            args=("{run}", *EVAL, "--split", "test"), fragments=("--split test names a split of a folder",)),
    CliCase("evaluate-missing-split-of-a-folder", "evaluate", None, {"folder/train.csv": TRAIN_CSV},
            args=("{run}", "--data", "{tmp}/folder", "--split", "test"),
            fragments=("no file for split 'test' in {tmp}/folder", "found: train.csv")),
    CliCase("evaluate-max-rows-zero", "evaluate", None, {"eval.csv": TRAIN_CSV},
            args=("{run}", *EVAL, "--max-rows", "0"), fragments=("--max-rows: must be at least 1",)),
    # export
    CliCase("export-not-a-run-dir", "export", None, NOT_A_RUN, args=("{tmp}/notrun", "--format", "onnx"),
            fragments=("{tmp}/notrun is not a trainforge run directory",)),
    CliCase("export-gguf-of-an-encoder", "export", None, args=("{run}", "--format", "gguf"),
            fragments=("not a causal LM. Use --format onnx",)),
    CliCase("export-quantize-merged", "export", None, args=("{run}", "--format", "merged", "--quantize", "int8"),
            fragments=("--quantize int8 does not apply to merged",)),
    CliCase("export-quantize-onnx-int4", "export", None, args=("{run}", "--format", "onnx", "--quantize", "int4"),
            fragments=("--quantize int4 does not apply to onnx",)),
    CliCase("export-output-of-merged", "export", None, args=("{run}", "--format", "merged", "--output", "{tmp}/m"),
            fragments=("--output does not apply to merged",)),
    CliCase("export-merged-of-a-full-model", "export", None, args=("{run}", "--format", "merged"), code=0,
            fragments=("holds a full fine-tuned model (no LoRA adapter): it is already a merged, plain model",)),
    # serve (each refused before a server starts)
    CliCase("serve-folder-without-runs", "serve", None, NOT_A_RUN, args=("{tmp}/notrun",),
            fragments=("{tmp}/notrun holds no finished run",)),
    CliCase("serve-missing-folder", "serve", None, args=("{tmp}/gone",),
            fragments=("{tmp}/gone does not exist or is not a folder",)),
    CliCase("serve-short-token", "serve", None, args=("{run}", "--host", "0.0.0.0"),
            env={"TRAINFORGE_APP_TOKEN": "short"},
            fragments=("TRAINFORGE_APP_TOKEN: TRAINFORGE_APP_TOKEN must be at least 16 characters long",)),
    CliCase("serve-max-loaded-zero", "serve", None, args=("{run}", "--max-loaded", "0"),
            fragments=("--max-loaded: must be at least 1",)),
]
# fmt: on
