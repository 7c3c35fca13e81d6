"""``trainforge export``: a finished run as a merged model, an ONNX graph, or (guidance for) GGUF.

What a run folder already is decides what each format means, read from the folder, never from the task's name:

- ``adapter_config.json`` at the top: the run's model is a LoRA adapter (LLM runs); ``merged`` writes the adapter
  merged into the base in ``merged/`` (``tasks.llm._models.merge_adapter``, the same code as ``peft.merge_adapter``
  at training time).
- ``config.json`` at the top: a full transformers model (a full fine-tune, or a task that merged its LoRA adapter at
  the end of training and kept it in ``adapter/``); ``merged`` has nothing to do and says so. ``onnx`` exports an
  encoder (``*ForSequenceClassification``, ``*ForTokenClassification``, ``*ForQuestionAnswering`` or a bare encoder).
- ``model.joblib``: a tabular run; the joblib file is the whole model.

GGUF needs llama.cpp's ``convert_hf_to_gguf.py``, which no well-kept package on PyPI provides (see ``GGUF_HOWTO``):
``gguf`` asks for the merged model and prints the exact conversion command instead of writing a converter.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainforge.errors import TrainforgeError

FORMATS = ("merged", "onnx", "gguf")


class ExportError(TrainforgeError):
    """A run that cannot be exported in the asked format; the message says what can be done instead."""

    exit_code = 2


@dataclass
class ExportResult:
    """What ``export`` did: the folder written (None when there was nothing to write), notes, ONNX verification."""

    format: str
    path: Path | None
    notes: list[str] = field(default_factory=list)
    verification: dict[str, Any] | None = None

    def summary(self) -> str:
        """Lines for the CLI."""
        lines = list(self.notes)
        if self.verification:
            v = self.verification
            lines.append(
                f"verified with onnxruntime on {v['rows']} rows: max abs diff {v['max_abs_diff']:.2e} "
                f"(tolerance {v['tolerance']:g}) -> {v['file']}"
            )
            if "int8" in v:
                lines.append(
                    f"int8 model: max abs diff {v['int8']['max_abs_diff']:.2e} vs PyTorch ({v['int8']['file']})"
                )
        if self.path is not None:
            lines.append(f"wrote {self.path}")
        return "\n".join(lines)


def export(
    run_dir: Path, fmt: str, quantize: str | None = None, output: Path | None = None, tolerance: float = 1e-4
) -> ExportResult:
    """Export the finished run in ``run_dir`` as ``fmt`` (``merged``, ``onnx`` or ``gguf``).

    Args:
        run_dir: A finished run directory.
        fmt: ``merged`` (LoRA adapter merged into its base), ``onnx`` (encoder models) or ``gguf``.
        quantize: ``int8`` for ONNX (dynamic quantization, written beside the float model); GGUF types are named in
            the conversion command.
        output: Folder to write (default: ``<run_dir>/onnx``); ``merged`` always writes ``<run_dir>/merged``.
        tolerance: Largest absolute difference between ONNX and PyTorch outputs accepted (float model).

    Raises:
        RunDirError: Not a finished run.
        ExportError: The run cannot be exported in ``fmt`` (naming what can be done instead), ``tolerance`` is not
            a number above 0, or the ONNX outputs differ from PyTorch's by more than ``tolerance``.
    """
    from trainforge.sdk import _finished_run_config

    run_dir = Path(run_dir)
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    config = _finished_run_config(run_dir)
    if quantize is not None and (fmt != "onnx" or quantize != "int8"):
        raise ExportError(
            f"--quantize {quantize} does not apply to {fmt}: ONNX takes int8 (dynamic quantization); GGUF types are "
            "chosen in llama.cpp's converter (--outtype q8_0, f16, ...)"
        )
    if fmt == "onnx" and not (isinstance(tolerance, int | float) and math.isfinite(tolerance) and tolerance > 0):
        # A tolerance of 0, below 0 or NaN fails every export after the slow conversion, blaming the model.
        raise ExportError(f"--tolerance {tolerance!r} is not a tolerance; give a number above 0 (the default is 1e-4)")
    if output is not None and fmt == "merged":
        raise ExportError("--output does not apply to merged: the merged model is written to <run>/merged")
    if output is not None and _holds_a_model(Path(output)):
        # The export writes its own config.json and tokenizer files: into a run or model folder they replace its own.
        raise ExportError(
            f"--output {output} holds a run or a model (config.json, config.resolved.yaml, metrics.json or "
            f"events.jsonl, and no earlier ONNX export); the export would overwrite its files. Write it elsewhere, "
            f"e.g. {run_dir / 'onnx'} (the default)"
        )
    if fmt == "merged":
        from trainforge.exporters.merged import export_merged

        return export_merged(run_dir, config)
    if fmt == "gguf":
        from trainforge.exporters.merged import gguf_guidance

        raise ExportError(gguf_guidance(run_dir, config))
    if (run_dir / "model.joblib").is_file():
        raise ExportError(
            f"{run_dir} is a {config.task} run: its model is model.joblib (scikit-learn/XGBoost/LightGBM, load it "
            "with joblib). ONNX export of tabular ensembles needs skl2onnx and onnxmltools, which trainforge does not "
            "install; convert model.joblib with them if you need ONNX"
        )
    from trainforge.exporters.onnx import export_onnx

    return export_onnx(run_dir, config, output or run_dir / "onnx", quantize, tolerance)


def capabilities(run_dir: Path) -> list[dict[str, Any]]:
    """What ``export`` would do with this run for each format, read from the folder as ``export`` reads it.

    No model loads: a format is ``available`` when ``export`` would write it; otherwise ``reason`` is the message
    ``export`` gives (for ``gguf``, the llama.cpp commands for this run). The web app offers exactly these.

    Returns:
        One dict per format in ``FORMATS``: ``format``, ``available``, ``reason`` (str or None), ``options``
        (``quantize`` values it takes), ``output`` (the folder it writes, when available).

    Raises:
        RunDirError: Not a finished run.
    """
    from trainforge.exporters.merged import _already_full, gguf_guidance
    from trainforge.sdk import _finished_run_config

    run_dir = Path(run_dir)
    config = _finished_run_config(run_dir)
    found: list[dict[str, Any]] = []
    adapter = (run_dir / "adapter_config.json").is_file()
    merged = {"format": "merged", "available": adapter, "options": [], "output": str(run_dir / "merged")}
    merged["reason"] = None if adapter else _already_full(run_dir, config)
    found.append(merged)
    onnx: dict[str, Any] = {"format": "onnx", "available": False, "options": ["int8"], "output": str(run_dir / "onnx")}
    if (run_dir / "model.joblib").is_file():
        onnx["reason"] = (
            f"{config.task} runs keep their model as model.joblib: ONNX export here is for transformers encoders"
        )
    else:
        from trainforge.exporters.onnx import _auto_class

        try:
            _auto_class(run_dir, config)
            onnx.update(available=True, reason=None)
        except ExportError as exc:
            onnx["reason"] = str(exc)
    found.append(onnx)
    found.append(
        {"format": "gguf", "available": False, "options": [], "output": None, "reason": gguf_guidance(run_dir, config)}
    )
    return found


def model_config(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``config.json`` (transformers model config) as a dict, or None when the run has none."""
    path = run_dir / "config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _holds_a_model(folder: Path) -> bool:
    """Whether ``folder`` holds a trainforge run, or a model other than an earlier ONNX export (which is replaced)."""
    if any((folder / name).exists() for name in ("config.resolved.yaml", "metrics.json", "events.jsonl")):
        return True
    return (folder / "config.json").is_file() and not (folder / "model.onnx").is_file()
