"""``trainforge export``: ONNX of an encoder verified against PyTorch, merged LLM adapters, and named refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from _runs import chat_run, tabular_run, text_run  # noqa: F401

import trainforge
from conftest import make_sentiment_frame
from trainforge.cli.main import main
from trainforge.exporters import ExportError


def test_onnx_export_of_a_classifier_matches_pytorch(text_run, tmp_path):  # noqa: F811
    import onnxruntime
    from transformers import AutoTokenizer

    before = sorted(p.name for p in text_run.iterdir())
    result = trainforge.export(text_run, "onnx", quantize="int8", output=tmp_path / "onnx")
    verification = json.loads((tmp_path / "onnx" / "verification.json").read_text())
    assert verification == result.verification and verification["rows"] == 9
    assert verification["max_abs_diff"] <= 1e-4 and verification["outputs"] == ["logits"]
    assert (tmp_path / "onnx" / "model.int8.onnx").is_file() and verification["int8"]["max_abs_diff"] < 0.5
    assert sorted(p.name for p in text_run.iterdir()) == before  # nothing written into the run
    # On rows it never saw, the ONNX model (its own tokenizer copy, plain onnxruntime) gives predict's probabilities.
    frame = make_sentiment_frame(12, seed=11)[["review"]]
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "onnx")
    encoded = tokenizer(frame["review"].tolist(), padding=True, truncation=True, max_length=16, return_tensors="np")
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {i.name: encoded[i.name] for i in session.get_inputs()})[0]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = trainforge.predict(text_run, frame)[["prob_negative", "prob_positive"]].to_numpy()
    assert np.abs(probabilities - expected).max() <= 1e-4
    assert "max abs diff" in result.summary()


def test_merged_export_of_an_llm_adapter_answers_like_the_adapter(chat_run, tmp_path):  # noqa: F811
    run = shutil.copytree(chat_run, tmp_path / "chat")
    question = [{"role": "user", "content": "what colour is the plum?"}]
    adapter_answer = trainforge.load_predictor(run).chat(question, max_new_tokens=10, temperature=0.0)
    assert main(["export", str(run), "--format", "merged"]) == 0
    assert (run / "merged" / "config.json").is_file() and (run / "merged" / "tokenizer_config.json").is_file()
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(run / "merged")  # a plain model: no peft needed
    assert trainforge.load_predictor(run).chat(question, max_new_tokens=10, temperature=0.0) == adapter_answer
    again = trainforge.export(run, "merged")
    assert again.path == run / "merged" and "already holds the merged model" in again.summary()
    with pytest.raises(ExportError, match=r"convert_hf_to_gguf.py .*/merged --outfile"):
        trainforge.export(run, "gguf")


def test_formats_that_do_not_apply_are_named(text_run, chat_run, tabular_run, capsys):  # noqa: F811
    assert "already a merged, plain model" in trainforge.export(text_run, "merged").summary()
    assert "model.joblib is the whole model" in trainforge.export(tabular_run, "merged").summary()
    with pytest.raises(ExportError, match="not a causal LM. Use --format onnx"):
        trainforge.export(text_run, "gguf")
    with pytest.raises(ExportError, match=r"no well-kept package on PyPI[\s\S]*--format merged\n[\s\S]*q8_0"):
        trainforge.export(chat_run, "gguf")
    with pytest.raises(ExportError, match="LoRA adapter of a language model"):
        trainforge.export(chat_run, "onnx")
    with pytest.raises(ExportError, match="skl2onnx"):
        trainforge.export(tabular_run, "onnx")
    assert main(["export", str(chat_run), "--format", "onnx", "--quantize", "int8"]) == 2
    assert main(["export", str(text_run), "--format", "merged", "--quantize", "int8"]) == 2
    assert "does not apply to merged" in capsys.readouterr().err
    assert not (chat_run / "merged").exists()  # refusals write nothing


@pytest.mark.parametrize("tolerance", ["0", "-1", "nan", "inf"])
def test_a_tolerance_that_no_export_can_meet_is_refused_before_converting(text_run, tmp_path, capsys, tolerance):  # noqa: F811
    # -1 / nan used to convert the model, then fail the check "differ by up to 5e-09 (tolerance nan)", blaming it.
    out = tmp_path / "onnx"
    assert main(["export", str(text_run), "--format", "onnx", "--tolerance", tolerance, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--tolerance" in err and "above 0" in err and "Traceback" not in err
    assert not out.exists()


def test_an_output_that_is_a_run_directory_is_refused(text_run, tmp_path, capsys):  # noqa: F811
    # The export writes config.json and tokenizer files beside model.onnx: into a run's folder they replace the run's.
    before = {p.name: p.read_bytes() for p in text_run.iterdir() if p.is_file()}
    assert main(["export", str(text_run), "--format", "onnx", "--output", str(text_run)]) == 2
    err = capsys.readouterr().err
    assert "holds a run or a model" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in text_run.iterdir() if p.is_file()} == before
    # A model folder without a run's files (a run downloaded from the Hub, a merged model) is refused too.
    model = tmp_path / "downloaded"
    model.mkdir()
    (model / "config.json").write_text("{}")
    assert main(["export", str(text_run), "--format", "onnx", "--output", str(model)]) == 2
    assert "holds a run or a model" in capsys.readouterr().err and (model / "config.json").read_text() == "{}"
