"""Merged models (a LoRA adapter folded into its base) and the way to GGUF from one.

Merging reuses ``tasks.llm._models.merge_adapter`` (what ``peft.merge_adapter: true`` runs at the end of training),
so a run merged later holds exactly what it would have held.
"""

from __future__ import annotations

import json
from pathlib import Path

from trainforge.exporters import ExportError, ExportResult, model_config
from trainforge.models.peft import ADAPTER_DIR

# Why trainforge does not convert to GGUF itself (checked on PyPI with `pip download --no-deps`, see docs/export.md).
GGUF_WHY = (
    "GGUF conversion needs llama.cpp's convert_hf_to_gguf.py, which no well-kept package on PyPI provides: the "
    "`gguf` package (installed with the llm extra) only reads and writes GGUF files, llama-cpp-python ships the "
    "script only inside its source archive (not as a module or command), and `convert-hf-to-gguf` (0.1.0, 0.1.1) is "
    "an unofficial repackaging that installs its own copy of the `gguf` module over the official one"
)


def export_merged(run_dir: Path, config) -> ExportResult:
    """Write ``run_dir/merged`` for a run whose model is a LoRA adapter; for any other run, say what it holds.

    Raises:
        ExportError: The base model named in the run's config cannot be loaded (moved, or not in the Hub cache).
    """
    if not (run_dir / "adapter_config.json").is_file():
        return ExportResult("merged", None, [_already_full(run_dir, config)])
    merged = run_dir / "merged"
    if (merged / "config.json").is_file():
        return ExportResult(
            "merged", merged, [f"{run_dir} already holds the merged model (merged/, written in training)"]
        )
    from peft import PeftModel
    from transformers import AutoTokenizer

    from trainforge.tasks.llm._models import load_base_model, merge_adapter

    task_type = json.loads((run_dir / "adapter_config.json").read_text(encoding="utf-8")).get("task_type")
    head = "seq_cls" if task_type == "SEQ_CLS" else "causal_lm"  # a reward model's scoring head
    tokenizer = AutoTokenizer.from_pretrained(str(run_dir))
    # Merged on the CPU from an unquantized base (merging into 4/8-bit weights would lose precision): the config
    # passed on says so, so merge_adapter merges this model instead of loading the base a second time.
    unquantized = config.model_copy(update={"peft": config.peft.model_copy(update={"quantization": None})})
    try:
        base = load_base_model(unquantized, vocab_size=len(tokenizer), head=head, quantize=False)
    except OSError as exc:
        raise ExportError(
            f"the run's base model {config.model.name!r} cannot be loaded to merge the adapter into: {exc}. "
            "Put it back where the run found it (or in the Hugging Face cache) and export again"
        ) from None
    folder = merge_adapter(PeftModel.from_pretrained(base, str(run_dir)), tokenizer, unquantized, run_dir)
    return ExportResult("merged", folder, [f"merged the LoRA adapter of {run_dir} into {config.model.name}"])


def _already_full(run_dir: Path, config) -> str:
    """What a run without a top-level adapter already holds, for ``--format merged``."""
    if (run_dir / "model.joblib").is_file():
        return f"{run_dir} is a {config.task} run: model.joblib is the whole model, there is no adapter to merge"
    if (run_dir / ADAPTER_DIR / "adapter_config.json").is_file():
        return (
            f"{run_dir} already holds the merged model: the LoRA adapter was merged into the base at the end of "
            f"training (the run folder loads with plain transformers); the adapter itself is in {ADAPTER_DIR}/"
        )
    return f"{run_dir} holds a full fine-tuned model (no LoRA adapter): it is already a merged, plain model"


def gguf_guidance(run_dir: Path, config) -> str:
    """Why GGUF is not written here and the exact commands that write it for this run (an error message)."""
    causal = _causal_lm_type(run_dir)
    if causal is None:
        return (
            f"GGUF is llama.cpp's format for language models; {run_dir} is a {config.task} run, not a causal LM. "
            "Use --format onnx for encoder models"
        )
    merged = run_dir / "merged"
    if (run_dir / "adapter_config.json").is_file() and not (merged / "config.json").is_file():
        first = f"  trainforge export {run_dir} --format merged\n"
        source = merged
    else:
        first, source = "", merged if (merged / "config.json").is_file() else run_dir
    family = f"model type {causal!r}" if causal else "model type not recorded in the run folder"
    return (
        f"{GGUF_WHY}. Convert the merged model ({family}; convert_hf_to_gguf.py --print-supported-models lists what "
        "llama.cpp converts) with llama.cpp itself, in a separate virtual environment (its requirements pin their own "
        "torch):\n"
        f"{first}"
        "  git clone --depth 1 https://github.com/ggml-org/llama.cpp\n"
        "  pip install -r llama.cpp/requirements/requirements-convert_hf_to_gguf.txt\n"
        f"  python llama.cpp/convert_hf_to_gguf.py {source} --outfile {run_dir}/model-q8_0.gguf --outtype q8_0\n"
        "(--outtype f16, bf16 or f32 keep more precision; llama.cpp's llama-quantize makes Q4_K_M and other types)"
    )


def _causal_lm_type(run_dir: Path) -> str | None:
    """The model type of a causal-LM run (merged, full or adapter), or None for any other model."""
    for folder in (run_dir / "merged", run_dir):
        config = model_config(folder)
        if config is not None:
            architectures = config.get("architectures") or []
            return str(config.get("model_type", "")) if any(a.endswith("ForCausalLM") for a in architectures) else None
    adapter = run_dir / "adapter_config.json"
    if not adapter.is_file():
        return None
    settings = json.loads(adapter.read_text(encoding="utf-8"))
    if settings.get("task_type") != "CAUSAL_LM":
        return None
    name = settings.get("base_model_name_or_path")
    base = model_config(Path(name).expanduser()) if name and Path(name).expanduser().is_dir() else None
    return str(base.get("model_type", "")) if base else ""  # a Hub base: its type is known once merged
