"""The Python SDK: the same code path as the CLI and the web UI.

>>> import trainforge
>>> result = trainforge.train("sst2.yaml", ["training.num_train_epochs=1"])
>>> result.output_dir, result.metrics["eval_accuracy"]
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from trainforge.config.loading import load_config
from trainforge.config.schema import RunConfig
from trainforge.errors import ConfigError, DataError, RunDirError

if TYPE_CHECKING:
    from trainforge.estimate import Estimate
    from trainforge.evaluation import Evaluation
    from trainforge.exporters import ExportResult
    from trainforge.tasks.spec import Predictor
    from trainforge.training.hub import PushResult


@dataclass
class ValidationReport:
    """What ``validate`` found: the task, the splits and the label set."""

    config: RunConfig
    train_rows: int
    eval_rows: int
    train_origin: str
    eval_origin: str | None
    labels: tuple[str, ...]
    problem_type: str
    notes: list[str]
    facts: dict = field(default_factory=dict)  # what the analysis derived (e.g. an LLM's data format)

    def summary(self) -> str:
        """Human-readable lines for the CLI."""
        lines = [
            f"config OK: task {self.config.task}, model {self.config.model.name}",
            f"train: {self.train_rows} rows from {self.train_origin}",
            f"eval:  {self.eval_rows} rows from {self.eval_origin}" if self.eval_origin else "eval:  none",
            f"{self.problem_type}: {len(self.labels)} label(s): {', '.join(self.labels[:20])}"
            if self.labels
            else f"{self.problem_type}: data format {self.facts.get('data_format', 'n/a')}",
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    def to_dict(self) -> dict:
        """JSON-ready view (what ``trainforge validate --json`` prints and the web app returns)."""
        return {
            "checked_data": True,
            "train_rows": self.train_rows,
            "eval_rows": self.eval_rows,
            "labels": list(self.labels),
            "problem_type": self.problem_type,
            "facts": self.facts,
            "notes": self.notes,
            "summary": self.summary(),
        }


def validate(
    config: RunConfig | dict | str | os.PathLike,
    overrides=(),
    interpolate: bool = True,
    sample_rows: int | None = None,
) -> ValidationReport:
    """Validate the config and check the data against the task, without loading a model.

    Args:
        config: The config (object, dict, or YAML path).
        overrides: ``dotted.key=value`` strings applied before validation.
        interpolate: Read ``${VAR}`` from the environment (off for configs from the network).
        sample_rows: Check only the first N rows of each data file (streamed; the web app's bound on memory).
            The counts then describe the sample, and a note says so. None checks everything, as training does.

    Raises:
        ConfigError, DataError: Naming every problem found.
    """
    from trainforge.training.driver import check

    config = load_config(config, overrides, interpolate=interpolate)
    checked = check(config, sample_rows=sample_rows)
    splits = checked.splits
    return ValidationReport(
        config,
        len(splits.train),
        0 if splits.eval is None else len(splits.eval),
        splits.train_origin,
        splits.eval_origin,
        checked.labels.names,
        checked.labels.problem_type,
        checked.notes,
        {k: v for k, v in checked.labels.facts.items() if _reportable(v)},
    )


def estimate(
    config: RunConfig | dict | str | os.PathLike,
    overrides=(),
    interpolate: bool = True,
    measure: bool = True,
    memory_limit: int | str | None = None,
) -> Estimate:
    """Estimate a run before training it: parameters, peak memory by component, measured speed, and whether it fits.

    Runs the same checks as ``validate`` first; counts parameters on a weightless (meta-device) model with the
    ``peft:`` section applied; estimates memory from the data's own sequence lengths; measures the speed with a few
    real optimizer steps on a slice of the data (``measure=False`` skips them). When the run does not fit, the
    result lists settings that would (gradient checkpointing, LoRA, QLoRA, a smaller micro-batch with more
    accumulation), each with its own estimate. See docs/estimate.md.

    Args:
        config: The config (object, dict, or YAML path).
        overrides: ``dotted.key=value`` strings applied before validation.
        interpolate: Read ``${VAR}`` from the environment (off for configs from the network).
        measure: Run the timed optimizer steps (skipped anyway when the run would not fit this machine).
        memory_limit: Plan for this much memory instead of what is available now: bytes or a size (``"16GiB"``).

    Returns:
        An ``Estimate`` (a dataclass; ``to_dict()`` is what ``trainforge estimate --json`` prints).

    Raises:
        ConfigError, DataError: As ``validate`` raises them; ConfigError for a memory limit that is not a size.
    """
    from trainforge.estimate.hardware import parse_size
    from trainforge.estimate.plan import estimate as estimate_run

    config = load_config(config, overrides, interpolate=interpolate)
    limit = parse_size(memory_limit) if isinstance(memory_limit, str) else memory_limit
    return estimate_run(config, measure=measure, memory_limit=limit)


def _reportable(value) -> bool:
    """A fact the report can show and ``validate --json`` can write (not the rows an analysis encoded)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return True
    if isinstance(value, list | tuple):
        return all(_reportable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _reportable(v) for k, v in value.items())
    return False


def train(
    config: RunConfig | dict | str | os.PathLike,
    overrides=(),
    resume: bool = False,
    progress: bool = False,
    interpolate: bool = True,
):
    """Train a model from a config (object, dict, or YAML path) and return the ``RunResult``.

    Args:
        config: The config; AutoTrain-shaped dicts and files are translated.
        overrides: ``dotted.key=value`` strings applied before validation.
        resume: Continue from the run directory's last checkpoint.
        progress: Show live progress on stderr.
        interpolate: Read ``${VAR}`` from the environment (off for configs from the network).
    """
    # First: a bad config fails before any heavy import.
    config = load_config(config, overrides, interpolate=interpolate)
    from trainforge.training.display import ConsoleDisplay
    from trainforge.training.driver import run

    return run(config, resume=resume, listeners=(ConsoleDisplay(),) if progress else ())


def load_predictor(run_dir: str | os.PathLike, overrides=()) -> Predictor:
    """Load a finished run once, for many predictions: ``load_predictor(run).predict(frame)``.

    The task's ``load_predictor`` reads the model, tokenizer and whatever else prediction needs (multi-label
    thresholds) from the run directory; the returned object's ``predict(frame)`` adds the task's output columns, and
    a text-generation run's also answers ``chat(messages)``. Run directories written by earlier versions load too.
    Loading is serialised process-wide (see ``_LOAD_LOCK``); predicting is not.

    Args:
        run_dir: A finished run directory (``config.resolved.yaml``, ``metrics.json`` and the model).
        overrides: ``dotted.key=value`` strings adjusting the run's resolved config for this predictor only
            (``params.max_new_tokens=64``, ``params.max_length=256``).

    Returns:
        The task's ``Predictor`` (``trainforge.tasks.spec.Predictor``; ``ChatPredictor`` for text generation).

    Raises:
        RunDirError: Not a run directory, an unfinished run, or a model that cannot be read.
        ConfigError: An override names an unknown key or an invalid value.
    """
    run_dir = Path(run_dir)
    return _load_predictor(run_dir, _finished_run_config(run_dir, overrides))


def predict(
    run_dir: str | os.PathLike,
    inputs: pd.DataFrame | str | os.PathLike,
    output: str | os.PathLike | None = None,
    overrides=(),
) -> pd.DataFrame:
    """Predict with a finished run on a DataFrame or a file; optionally write the result (format by extension).

    ``overrides`` (``params.temperature=0.7``) adjust the run's resolved config for this prediction only. To predict
    many times, load the run once with ``load_predictor`` instead: this loads it on every call.

    Raises:
        RunDirError: As ``load_predictor``; or ``output`` inside the run directory (it is never written into).
        DataError: The inputs cannot be read, or lack what the model reads.
    """
    from trainforge.data.loading import read_table

    run_dir = Path(run_dir)
    config = _finished_run_config(run_dir, overrides)  # a bad run directory is named before the inputs are read
    if output is not None and Path(output).resolve().is_relative_to(run_dir.resolve()):
        raise RunDirError(f"--output {output} is inside the run directory {run_dir}: write predictions elsewhere")
    source = None if isinstance(inputs, pd.DataFrame) else inputs
    if source is not None:
        # Predict has no data.format: an unknown extension is answered with the extensions it reads.
        from trainforge.data.loading import txt_format_of, txt_read_as
        from trainforge.tasks import get_task

        with txt_read_as(txt_format_of(get_task(config.task).columns)):
            inputs = read_table(Path(source), format_key=None)
    frame = inputs
    predictor = _load_predictor(run_dir, config)
    try:
        result = predictor.predict(frame)
    except DataError as exc:
        if source is None:
            raise
        # Predictors check "the input" they are given; from a file, the message names the file too.
        raise DataError(f"{source}: {exc}") from None
    if output is not None:
        write_table(result, Path(output))
    return result


def export(
    run_dir: str | os.PathLike,
    format: str,
    quantize: str | None = None,
    output: str | os.PathLike | None = None,
    tolerance: float = 1e-4,
) -> ExportResult:
    """Export a finished run: ``merged`` (a LoRA adapter folded into its base), ``onnx`` (encoders) or ``gguf``.

    ONNX is verified with onnxruntime against PyTorch (``verification.json`` beside the model); ``gguf`` raises an
    ``ExportError`` giving the llama.cpp commands for this run (no well-kept converter is on PyPI). See
    ``trainforge.exporters.export`` and docs/export.md.

    Raises:
        RunDirError: Not a finished run.
        ExportError: The run cannot be exported as ``format`` (the message says what to do instead).
    """
    from trainforge.exporters import export as export_run

    return export_run(Path(run_dir), format, quantize, None if output is None else Path(output), tolerance)


def evaluate(
    run_dir: str | os.PathLike,
    data: str | os.PathLike,
    split: str | None = None,
    columns: dict[str, str] | None = None,
    name: str | None = None,
    max_rows: int | None = None,
    overrides=(),
) -> Evaluation:
    """Score a finished run on labelled data with its task's metrics, through the predictor ``predict`` uses.

    Classification, regression and text generation (by the run's pipeline tag and problem type); the report
    (``metrics.json``, ``report.md``, ``predictions.jsonl``) goes to ``<run>/evaluation/<name>/``. See
    ``trainforge.evaluation.evaluate`` and docs/evaluate.md.

    Raises:
        RunDirError: Not a finished run.
        EvaluateError: A run evaluate does not score, or data without references.
        DataError: Unreadable data, a missing column, or labels the model has no class for.
    """
    from trainforge.evaluation import evaluate as evaluate_run

    return evaluate_run(Path(run_dir), str(data), split, columns, name, max_rows, overrides)


def push(
    run_dir: str | os.PathLike,
    repo_id: str | None = None,
    revision: str | None = None,
    private: bool = True,
    license: str | None = None,
) -> PushResult:
    """Publish a finished run to the Hugging Face Hub: what ``hub.push: true`` does at the end of training.

    Uploads an allow-list of the run's files (model, tokenizer/processor, card, metrics, loss curve, TensorBoard
    logs, evaluation reports; never checkpoints, optimizer state or stray files) in one commit. The token comes
    from ``HF_TOKEN`` or ``hf auth login`` only; it is never written or printed. See docs/publish.md.

    Args:
        run_dir: A finished run directory.
        repo_id: Target repository (default: the run's ``hub.repo_id``).
        revision: Branch, created when missing (default: the run's ``hub.revision``, else ``main``).
        private: Create the repository private (the default; ``hub.private`` applies to ``hub.push`` only). A
            private push never writes into an existing public repository.
        license: License id for the card when it states none (default: ``hub.license``, then the base model's).

    Raises:
        RunDirError: Not a finished run.
        ConfigError: No repository id, no token, the Hub switched off (``HF_HUB_OFFLINE``), or a bad id/branch.
        PublishError: A secret in a file to upload, a public repository for a private push, or the Hub refused.
    """
    from trainforge.training.hub import _finished_config, push_run

    run_dir = Path(run_dir)
    hub = _finished_config(run_dir).get("hub") or {}
    repo_id = repo_id or hub.get("repo_id")
    if not repo_id:
        raise ConfigError([("--repo-id", "the run names no hub.repo_id: give one (e.g. your-name/my-model)")])
    return push_run(
        run_dir,
        repo_id,
        revision=revision or hub.get("revision"),
        private=private,
        license=license or hub.get("license"),
    )


# transformers (and each of its model packages) replaces its own sys.modules entry with a lazy module at the end of
# its first import. A thread that imports it while another thread is still doing so waits, then gets the module
# object it looked up before waiting: the plain, half-built one, on which `from transformers import AutoModel...`
# fails ("cannot import name"). Loads, which do those first imports, therefore run one at a time in this process.
_LOAD_LOCK = threading.RLock()


def _load_predictor(run_dir: Path, config: RunConfig) -> Predictor:
    """The task's predictor for a checked run directory, loaded under ``_LOAD_LOCK``."""
    from trainforge.tasks import get_task

    load = get_task(config.task).load_predictor
    if load is None:  # TaskSpec.__post_init__ derives one from predict: never None on a built spec
        raise RuntimeError(f"task {config.task} has no predictor loader")
    with _LOAD_LOCK:
        return load(run_dir, config)


def _finished_run_config(run_dir: Path, overrides=()) -> RunConfig:
    """The resolved config of a finished run whose weights are readable, with ``overrides`` applied.

    Raises:
        RunDirError: No ``config.resolved.yaml``, no ``metrics.json``, or unreadable weights.
    """
    from trainforge.training.driver import check_weight_files

    resolved = run_dir / "config.resolved.yaml"
    if not resolved.is_file():
        raise RunDirError(f"{run_dir} is not a trainforge run directory (no config.resolved.yaml)")
    if not (run_dir / "metrics.json").is_file():
        raise RunDirError(f"{run_dir} holds no finished run (no metrics.json): train it to the end first")
    # A resolved config holds values, never ${VAR} references to read: one left there came from a config that was
    # not interpolated on purpose (the web app's), and reading the environment now would leak it.
    config = load_config(resolved, list(overrides), interpolate=False)
    try:
        check_weight_files(run_dir, "run_dir")
    except ConfigError as exc:
        raise RunDirError(f"the run's model cannot be read: {exc.problems[0][1]}") from None
    return config


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as csv, tsv, jsonl, json or parquet, by the file extension."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix in (".jsonl", ".json"):
        frame.to_json(path, orient="records", lines=suffix == ".jsonl", force_ascii=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        raise DataError(f"cannot write {path}: use a .csv, .tsv, .jsonl, .json or .parquet file name")
