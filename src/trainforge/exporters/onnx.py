"""ONNX export of encoder runs through ``torch.onnx`` (TorchScript exporter), verified with onnxruntime.

optimum's exporter is not used: optimum-onnx 0.1.0 requires ``transformers<4.58`` (its published metadata), and
trainforge runs on transformers 5. The dynamo exporter (``torch.onnx.export``'s default) needs onnxscript, which is
not a dependency; the TorchScript exporter traces the model on a padded example batch (so the attention-mask path is
in the graph), with batch and sequence axes dynamic.

The export folder holds ``model.onnx``, the tokenizer and ``config.json`` (label names), and ``verification.json``:
the largest absolute difference between onnxruntime's and PyTorch's outputs on the rows tried.
"""

from __future__ import annotations

import inspect
import json
import logging
import warnings
from pathlib import Path
from typing import Any

from trainforge.exporters import ExportError, ExportResult, model_config

# Heads by the suffix of the model's architecture name -> the transformers auto class that loads them.
HEADS = {
    "ForSequenceClassification": "AutoModelForSequenceClassification",
    "ForTokenClassification": "AutoModelForTokenClassification",
    "ForQuestionAnswering": "AutoModelForQuestionAnswering",
}
# Verification inputs: lengths from one word to past most max_length settings, in padded and unpadded batches.
SAMPLE_TEXTS = (
    "good",
    "The film was a delight from start to finish.",
    "Awful plot, wooden acting and a soundtrack that never stops.",
    "It is fine, I suppose.",
    "Where is the station?",
    " ".join(["a long review that keeps going"] * 40),
    "Le service était lent mais le repas excellent.",
    "12345 !!! ???",
    "",
)
OPSET = 17  # LayerNormalization is a single operator from opset 17


def export_onnx(run_dir: Path, config, output: Path, quantize: str | None, tolerance: float) -> ExportResult:
    """Export the run's encoder to ``output/model.onnx`` and verify it (see the module docstring).

    Raises:
        ExportError: The run holds no encoder model (an LLM adapter, a decoder, an encoder-decoder), or the ONNX
            outputs differ from PyTorch's by more than ``tolerance`` (``verification.json`` is written either way).
    """
    import torch
    import transformers
    from transformers import AutoTokenizer

    auto_name = _auto_class(run_dir, config)
    model = getattr(transformers, auto_name).from_pretrained(str(run_dir), attn_implementation="eager").float().eval()
    tokenizer = AutoTokenizer.from_pretrained(str(run_dir))
    max_length = _max_length(config, model.config)
    accepted = set(inspect.signature(model.forward).parameters)

    def encode(texts) -> dict[str, Any]:
        batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return {name: tensor for name, tensor in batch.items() if name in accepted}

    example = encode(SAMPLE_TEXTS[1:3])  # two lengths: padded, so the mask is traced as data, not skipped
    inputs = list(example)
    outputs, sequence_outputs = _outputs(model, example, encode(SAMPLE_TEXTS[:1]))
    output.mkdir(parents=True, exist_ok=True)
    path = output / "model.onnx"
    dynamic = {name: {0: "batch", 1: "sequence"} for name in inputs}
    dynamic.update(
        {name: {0: "batch", 1: "sequence"} if name in sequence_outputs else {0: "batch"} for name in outputs}
    )
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer warnings on branches that depend on shapes only
        torch.onnx.export(
            _traceable(model, inputs, outputs).eval(),  # eval: export restores the wrapper's mode onto the model
            tuple(example[name] for name in inputs),
            str(path),
            dynamo=False,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            do_constant_folding=True,
        )
    tokenizer.save_pretrained(str(output))
    model.config.save_pretrained(str(output))
    batches = [SAMPLE_TEXTS[:1], SAMPLE_TEXTS[1:6], SAMPLE_TEXTS[6:]]
    verification = {
        "file": str(output / "verification.json"),
        "onnx": str(path),
        "rows": sum(map(len, batches)),
        "tolerance": tolerance,
        "opset": OPSET,
        "outputs": outputs,
        **_compare(path, model, [encode(b) for b in batches]),
    }
    notes = [f"exported {run_dir} ({auto_name}, inputs {', '.join(inputs)}) to ONNX opset {OPSET}"]
    if (run_dir / "modules.json").is_file():
        notes.append("the graph is the transformer only: pooling and normalisation (modules.json) are applied after")
    if quantize == "int8":
        verification["int8"] = _quantized(path, model, [encode(b) for b in batches])
    Path(verification["file"]).write_text(json.dumps(verification, indent=2), encoding="utf-8")
    if not verification["max_abs_diff"] <= tolerance:
        raise ExportError(
            f"the ONNX model's outputs differ from PyTorch's by up to {verification['max_abs_diff']:.3g} (tolerance "
            f"{tolerance:g}) on the {verification['rows']} rows tried: do not use {path}. Details in "
            f"{verification['file']}"
        )
    return ExportResult("onnx", output, notes, verification)


def _auto_class(run_dir: Path, config) -> str:
    """The transformers auto class of the run's encoder; ``ExportError`` naming what to do for anything else."""
    settings = model_config(run_dir)
    if settings is None:
        if (run_dir / "adapter_config.json").is_file():
            raise ExportError(
                f"{run_dir} holds a LoRA adapter of a language model ({config.task}): ONNX export is for encoder "
                "models; use --format merged for a plain transformers model, or --format gguf for llama.cpp"
            )
        raise ExportError(f"{run_dir} holds no transformers model (no config.json) to export to ONNX")
    architectures = settings.get("architectures") or []
    name = architectures[0] if architectures else ""
    decoder = settings.get("is_encoder_decoder") or settings.get("is_decoder") or name.endswith(("LMHeadModel", "LM"))
    if decoder:
        raise ExportError(
            f"{run_dir} holds a {name or settings.get('model_type')} model: ONNX export here is for encoder models "
            "(classification, token classification, question answering, embeddings); generative models export as "
            "--format merged or gguf"
        )
    for suffix, auto in HEADS.items():
        if name.endswith(suffix):
            return auto
    if name.endswith("Model") or not name:
        return "AutoModel"  # a bare encoder (a sentence-transformers run's transformer)
    raise ExportError(f"{run_dir} holds a {name} model, whose head ONNX export does not handle")


def _max_length(config, model_config) -> int:
    """Truncation length: the run's ``params.max_length`` when it has one, within the model's positions and 512."""
    limits = [512, getattr(config.params, "max_length", None), getattr(model_config, "max_position_embeddings", None)]
    return min(int(limit) for limit in limits if limit)


def _outputs(model, example: dict, other: dict) -> tuple[list[str], set[str]]:
    """The model's tensor outputs, and those with a sequence axis (their second dimension follows the input's)."""
    import torch

    with torch.inference_mode():
        first, second = model(**example), model(**other)
    names = [name for name, value in first.items() if isinstance(value, torch.Tensor)]
    sequence = {name for name in names if first[name].ndim > 1 and first[name].shape[1] != second[name].shape[1]}
    return names, sequence


def _traceable(model, inputs: list[str], outputs: list[str]):
    """``model`` taking ``inputs`` positionally and returning the ``outputs`` as a tuple (torch imported here)."""
    import torch

    class Outputs(torch.nn.Module):
        """The model with positional inputs and a tuple of named outputs: what the TorchScript exporter traces."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args):
            result = self.model(**dict(zip(inputs, args, strict=True)))
            return tuple(result[name] for name in outputs)

    return Outputs()


def _compare(path: Path, model, batches: list[dict]) -> dict[str, Any]:
    """Run the ONNX file with onnxruntime on ``batches`` and compare every output with PyTorch's."""
    import numpy as np
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    worst = 0.0
    for batch in batches:
        got = session.run(None, {name: tensor.numpy() for name, tensor in batch.items()})
        with torch.inference_mode():
            expected = model(**batch)
        for name, value in zip(names, got, strict=True):
            worst = max(worst, float(np.abs(value - expected[name].float().numpy()).max()))
    return {"max_abs_diff": worst, "onnxruntime": onnxruntime.__version__, "torch": torch.__version__}


def _quantized(path: Path, model, batches: list[dict]) -> dict[str, Any]:
    """``model.int8.onnx``: onnxruntime's dynamic int8 quantization of the weights, compared with PyTorch."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = path.with_name("model.int8.onnx")
    root = logging.getLogger()
    quiet = _Without("pre-processing before quantization")  # onnxruntime's advice for static quantization only
    root.addFilter(quiet)
    try:
        quantize_dynamic(str(path), str(target), weight_type=QuantType.QInt8)
    finally:
        root.removeFilter(quiet)
    return {"file": str(target), **_compare(target, model, batches)}


class _Without(logging.Filter):
    """Drops log records whose message contains ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        return self.text not in record.getMessage()
