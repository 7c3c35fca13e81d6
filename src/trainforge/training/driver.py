"""THE driver: the same steps for every task, from a validated config to a finished run directory.

1. resolve the task spec and check its extras;  2. load splits and check them (no model yet);
3. prepare the run directory and event log;      4. tokenise / prepare data;
5. build the model;                              6. build TrainingArguments;
7. train and evaluate through the task's trainer; 8. save model, metrics, card; push when asked.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from trainforge.config.loading import write_resolved
from trainforge.config.schema import RunConfig
from trainforge.data.loading import Splits, load_splits
from trainforge.errors import ConfigError, TrainforgeError
from trainforge.models.config_checks import check_against_model_config
from trainforge.tasks import get_task
from trainforge.tasks.spec import LabelInfo, TaskSpec


@dataclass
class RunResult:
    """What a finished run left behind."""

    output_dir: Path
    metrics: dict[str, float]
    labels: LabelInfo
    train_rows: int
    eval_rows: int
    duration_s: float = 0.0
    hub_url: str | None = None


@dataclass
class Checked:
    """A config whose data passed every check: what ``validate`` reports and ``train`` continues from."""

    spec: TaskSpec
    splits: Splits
    labels: LabelInfo
    notes: list[str] = field(default_factory=list)


def check(config: RunConfig, sample_rows: int | None = None) -> Checked:
    """Run every check that needs no model: extras, model source, data, columns and labels.

    ``sample_rows`` checks only the first N rows of each file (the web app's bound on memory); a note says so.

    Raises:
        TrainforgeError: With a message naming the key, file, column or rows at fault.
    """
    spec = get_task(config.task)
    check_extras(spec)
    model_notes: list[str] = []
    if spec.native_trainer is None:  # native (tabular) tasks load no pretrained model and use no torch precision
        check_model_source(config)
        model_notes = check_against_model_config(config, spec)  # its config.json only: no weights load
        from trainforge.training.arguments import resolve_precision

        resolve_precision(config.training.precision)
    from trainforge.training.artifacts import check_hub_token, check_output_dir

    check_output_dir(config)
    check_hub_token(config)
    stratify = spec.stratify_column(config) if callable(spec.stratify_column) else spec.stratify_column
    splits = load_splits(config.data, config.training.seed, stratify, spec.columns, sample_rows)
    labels = spec.analyze(splits, config)
    notes = list(labels.notes) + model_notes
    read = len(splits.train) + (0 if splits.eval is None else len(splits.eval))
    if sample_rows is not None and read >= sample_rows:
        notes.append(
            f"checked the first {sample_rows:,} rows of each data file (a sample, to keep the server's memory "
            "bounded); training checks every row before it starts"
        )
    if splits.eval is None:
        notes.append("no evaluation split: no eval metrics, best-checkpoint selection or early stopping")
    return Checked(spec, splits, labels, notes)


def run(config: RunConfig, resume: bool = False, listeners: tuple = ()) -> RunResult:
    """Train one run end to end.

    Args:
        config: The validated config.
        resume: Continue from the last checkpoint in the run directory.
        listeners: Callables receiving every event (e.g. the console display).

    Returns:
        The run's output directory and final metrics.

    Raises:
        TrainforgeError: Bad config/data/run directory, before anything trains.
        Exception: Any training failure, after a ``run_failed`` event was recorded.
    """
    from trainforge.training.artifacts import data_fingerprint, library_versions, prepare_run_dir, resume_differences
    from trainforge.training.events import EventLog

    started = time.monotonic()
    checked = check(config)
    target = prepare_run_dir(config, resume)
    run_dir = target.path
    fingerprint = data_fingerprint(config)
    if resume:
        for note in resume_differences(config, run_dir, fingerprint):
            print(f"note: {note}", file=sys.stderr)
            checked.notes.append(note)
    events = EventLog(run_dir / "events.jsonl", listeners)
    try:
        write_resolved(config, run_dir / "config.resolved.yaml")
        splits, labels = checked.splits, checked.labels
        events.write(
            "run_started",
            task=config.task,
            model=config.model.name,
            output_dir=str(run_dir),
            resume=resume,
            train_rows=len(splits.train),
            eval_rows=0 if splits.eval is None else len(splits.eval),
            train_origin=splits.train_origin,
            eval_origin=splits.eval_origin,
            labels=list(labels.names),
            notes=checked.notes,
            data_fingerprint=fingerprint,
            versions=library_versions(),
        )
        result = _train(config, checked, run_dir, events, resume)
        result.duration_s = time.monotonic() - started
        events.write(
            "run_finished",
            output_dir=str(run_dir),
            metrics=result.metrics,
            duration_s=result.duration_s,
            hub_url=result.hub_url,
        )
        target.commit()
        if not config.output.keep_checkpoints and (run_dir / "checkpoints").is_dir():
            # The final model is in the run directory; checkpoints only served --resume, which a finished run refuses.
            shutil.rmtree(run_dir / "checkpoints")
        return result
    except BaseException as exc:
        message = str(exc) if isinstance(exc, TrainforgeError) else f"{type(exc).__name__}: {exc}"
        interrupted = isinstance(exc, KeyboardInterrupt)  # Ctrl-C, or SIGTERM (the CLI turns it into one)
        if interrupted:
            message = "interrupted (Ctrl-C or SIGTERM); continue with --resume"
        events.write(
            "run_failed",
            error=message or type(exc).__name__,
            interrupted=interrupted,
            traceback=traceback.format_exc(),
        )
        events.close()
        kept = target.roll_back()
        if kept is not None:
            print(f"note: the previous run in {run_dir} was kept; this failed attempt is in {kept}", file=sys.stderr)
        raise
    finally:
        events.close()


def _train(config: RunConfig, checked: Checked, run_dir: Path, events, resume: bool) -> RunResult:
    from trainforge.training import artifacts

    spec, splits, labels = checked.spec, checked.splits, checked.labels
    if spec.native_trainer is None:
        trainer, prepared, processor = _hf_trainer(config, checked, run_dir, events)
        has_eval = prepared.eval is not None
    else:
        processor = spec.load_processor(config)
        prepared = spec.prepare(splits, config, labels, processor)
        has_eval = prepared.eval is not None
        trainer = spec.native_trainer(config, prepared, labels, run_dir, events)

    checkpoint = None
    if resume:
        skipped: list[str] = []
        checkpoint = artifacts.last_checkpoint(run_dir, skipped)
        for note in skipped:
            print(f"note: {note}", file=sys.stderr)
            events.write("note", message=note)
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    # Training summaries (train_loss, a search's validation score) are kept; speeds stay in events.jsonl.
    # Hugging Face's names (as trainer.evaluate() and all_results.json): train_*, eval_*; seconds for runtimes.
    metrics = {"train_runtime": output.metrics["train_runtime"]}
    metrics.update({k: v for k, v in output.metrics.items() if k.startswith("train_") and not _is_speed(k)})
    if checkpoint is not None and "train_loss" in metrics:
        # The Trainer averages only the steps it ran in this process; the run's loss covers every step.
        metrics["train_loss"] = _logged_train_loss(trainer, metrics["train_loss"])
    kept = _kept_checkpoint(trainer)
    if kept is not None:
        events.write("best_checkpoint", **kept)
        metrics["best_global_step"] = kept["step"]
    if spec.finish is not None:
        for note in spec.finish(config, labels, trainer, prepared, run_dir):
            print(f"note: {note}", file=sys.stderr)
            events.write("note", message=note)
    if has_eval:
        # Task trainers (TRL) may add metrics in evaluate(); only the plain Trainer's log is complete.
        final = (_recorded_eval(trainer) if spec.make_trainer is None and spec.native_trainer is None else None) or (
            trainer.evaluate()
        )
        # Throughput numbers describe this machine, not the model: they stay in events.jsonl only.
        metrics.update({k: v for k, v in final.items() if k.startswith("eval_") and not _is_speed(k)})
    trainer.save_model(str(run_dir))
    if processor is not None:
        processor.save_pretrained(str(run_dir))
    artifacts.write_metrics(run_dir, metrics)
    card = spec.model_card(run_dir, config) if spec.model_card is not None else None
    artifacts.write_model_card(run_dir, config, spec.pipeline_tag, labels, metrics, spec.library_name, card)
    hub_url = artifacts.push_to_hub(run_dir, config) if config.hub.push else None
    eval_rows = 0 if splits.eval is None else len(splits.eval)
    return RunResult(run_dir, metrics, labels, len(splits.train), eval_rows, hub_url=hub_url)


def _kept_checkpoint(trainer) -> dict | None:
    """Which checkpoint's weights the run keeps (restored as the best), with its metric and eval loss."""
    state, args = getattr(trainer, "state", None), getattr(trainer, "args", None)
    if (
        state is None
        or args is None
        or not getattr(args, "load_best_model_at_end", False)
        or not state.best_global_step
    ):
        return None
    logged = next(
        (e for e in reversed(state.log_history) if e.get("step") == state.best_global_step and "eval_loss" in e), {}
    )
    return {
        "step": state.best_global_step,
        "metric": args.metric_for_best_model,
        "value": state.best_metric,
        "eval_loss": logged.get("eval_loss"),
        "last_step": state.global_step,
    }


def _logged_train_loss(trainer, fallback: float) -> float:
    """Mean training loss over every step of the run, from the logged losses (restored with the checkpoint).

    Each logged ``loss`` is the mean over the steps since the previous log, so weighting it by that step count
    gives the mean over all steps, as an uninterrupted run reports it.
    """
    history = getattr(getattr(trainer, "state", None), "log_history", None) or []
    total, previous, weighted = 0, 0, 0.0
    for entry in history:
        if "loss" in entry and "step" in entry:
            steps = entry["step"] - previous
            weighted += entry["loss"] * steps
            total += steps
            previous = entry["step"]
    return weighted / total if total else fallback


def _recorded_eval(trainer) -> dict | None:
    """The evaluation already logged for the weights the trainer now holds, if any.

    With the best checkpoint restored (or the last step evaluated), re-running the evaluation would only repeat
    a logged result: on SST-2 with MiniLM on CPU that second pass was a quarter of trainforge's overhead.
    """
    state, args = getattr(trainer, "state", None), getattr(trainer, "args", None)
    if state is None or args is None or not getattr(state, "log_history", None):
        return None
    step = state.best_global_step if args.load_best_model_at_end and state.best_global_step else state.global_step
    for entry in reversed(state.log_history):
        if entry.get("step") == step and any(key.startswith("eval_") and key != "eval_runtime" for key in entry):
            return entry
    return None


def _hf_trainer(config: RunConfig, checked: Checked, run_dir: Path, events):
    """The transformers path: seeded model, TrainingArguments, callbacks and the task's Trainer."""
    from transformers import set_seed
    from transformers.integrations import TensorBoardCallback
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging

    from trainforge.training.arguments import to_training_arguments
    from trainforge.training.callbacks import EarlyStoppingEvents, EventsCallback, NonFiniteLossGuard, TieBreakOnLoss

    spec, splits, labels = checked.spec, checked.splits, checked.labels
    hf_logging.disable_progress_bar()  # shard-writing bars would break the one-line live display
    set_seed(config.training.seed)  # before the model exists: the new head's initialisation is seeded too
    processor = spec.load_processor(config)
    prepared = spec.prepare(splits, config, labels, processor)
    model = spec.build_model(config, labels)
    if getattr(model.config, "pad_token_id", 0) is None and getattr(processor, "pad_token_id", None) is not None:
        model.config.pad_token_id = processor.pad_token_id
    has_eval = prepared.eval is not None
    args = to_training_arguments(config, run_dir, has_eval, spec.best_metric(labels), len(prepared.train))
    # The guard comes first: a NaN loss fails the run before it reaches the events and the display.
    callbacks = [NonFiniteLossGuard(), TieBreakOnLoss(), EventsCallback(events)]
    if "tensorboard" in config.output.report_to:
        from torch.utils.tensorboard import SummaryWriter

        callbacks.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(run_dir / "tensorboard"))))
    if has_eval and config.training.eval_strategy != "no" and config.training.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        stopper = EarlyStoppingCallback(
            config.training.early_stopping_patience, config.training.early_stopping_threshold
        )
        callbacks += [stopper, EarlyStoppingEvents(events, config.training.early_stopping_patience)]
    if spec.make_trainer is not None:
        make_trainer = spec.make_trainer
    else:
        from trainforge.training.hf_trainer import make_trainer
    trainer = make_trainer(
        model, args, prepared, processor, spec.compute_metrics(labels, config) if has_eval else None, callbacks
    )
    trainer.remove_callback(PrinterCallback)  # our events drive the display; the Trainer's own print is noise
    return trainer, prepared, processor


def _is_speed(key: str) -> bool:
    return key.endswith(("_runtime", "_per_second"))


def check_weight_files(folder: Path, key: str) -> None:
    """Every ``*.safetensors`` file in ``folder`` must have a readable header (read without loading the weights).

    Raises:
        ConfigError: Naming ``key`` and the unreadable file (a truncated download, or not a safetensors file).
    """
    from safetensors import SafetensorError, safe_open

    for weights in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="np"):
                pass
        except (SafetensorError, OSError) as exc:
            raise ConfigError(
                [(key, f"{weights} is not a readable safetensors file ({exc}); re-download or re-save the model")]
            ) from None


def check_extras(spec: TaskSpec) -> None:
    """Fail with an install hint when a task's optional dependency is missing."""
    missing = [(module, extra) for module, extra in spec.extras if importlib.util.find_spec(module) is None]
    if missing:
        extras = sorted({extra for _, extra in missing})
        raise TrainforgeError(
            f"task {spec.name} needs {', '.join(m for m, _ in missing)}: pip install 'trainforge[{','.join(extras)}]'"
        )


def check_model_source(config: RunConfig) -> None:
    """The base model must be a local folder/file, or a Hub id that is reachable or already cached."""
    name = config.model.name
    path = Path(name).expanduser()
    if path.exists():
        if path.is_dir() and not (path / "config.json").exists() and not any(path.glob("*.gguf")):
            raise ConfigError([("model.name", f"{path} is a folder without config.json: not a saved model")])
        if path.is_dir():
            check_weight_files(path, "model.name")
        return
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ConfigError([("model.name", f"{name!r} is neither an existing local path nor a Hub id (org/name)")])
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError as exc:
        reason = str(exc).split(".")[0]
        raise ConfigError(
            [("model.name", f"{name!r} is neither an existing local path nor a valid Hub id (org/name): {reason}")]
        ) from None

    if constants.HF_HUB_OFFLINE and not isinstance(
        try_to_load_from_cache(name, "config.json", revision=config.model.revision), str
    ):
        raise ConfigError(
            [
                (
                    "model.name",
                    f"{name!r} is not a local folder and not in the Hub cache, "
                    "and the Hub is offline (HF_HUB_OFFLINE=1)",
                )
            ]
        )
