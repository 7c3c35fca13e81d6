"""THE driver: the same phases for every task, from a validated config to a finished run directory.

    check  -> every check that needs no model weights (config against the data and the model's config.json)
    start  -> the run directory, resolved config, event log and ``run_started``
    prepare -> the task's data preparation (its processor loaded once, in the run context)
    fit    -> model, training arguments, callbacks, the task's trainer, ``train()``
    finish -> the task's finish step, final metrics, model, card, Hub push

``run`` calls them in order and records failures; search and launch wrap the same phases. Each task's functions
receive the run's ``RunContext`` (tasks/spec.py), so the driver holds no task-specific branch.

Several processes (``compute:``; training/launch.py starts them) run the same phases: the main process prepares the
run directory and writes every event and artifact, the others wait for it where they would race (run directory,
data preparation) and take part in every Trainer call (training, evaluation, saving are collective).
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainforge.config.loading import write_resolved
from trainforge.config.schema import RunConfig
from trainforge.data.loading import Splits, load_splits
from trainforge.errors import TrainforgeError
from trainforge.models.config_checks import check_against_model_config
from trainforge.models.source import check_model_source, check_tokenizer_files, check_weight_files
from trainforge.tasks import get_task
from trainforge.tasks.spec import Analysis, Prepared, RunContext, TaskSpec, TrainerInputs

__all__ = ["Checked", "RunResult", "check", "check_model_source", "check_weight_files", "run"]


@dataclass
class RunResult:
    """What a finished run left behind."""

    output_dir: Path
    metrics: dict[str, float]
    labels: Analysis
    train_rows: int
    eval_rows: int
    duration_s: float = 0.0
    hub_url: str | None = None
    job_ids: tuple[str, ...] = ()  # SLURM jobs a submission started (compute.launcher: slurm)


@dataclass
class Checked:
    """A config whose data passed every check: what ``validate`` reports and ``train`` continues from."""

    ctx: RunContext
    splits: Splits
    notes: list[str] = field(default_factory=list)

    @property
    def spec(self) -> TaskSpec:
        """The task's spec."""
        return self.ctx.spec

    @property
    def labels(self) -> Analysis:
        """What the task's analysis found."""
        return self.ctx.labels


def check(config: RunConfig, sample_rows: int | None = None) -> Checked:
    """Run every check that needs no model weights: extras, model source and config, data, columns and labels.

    Args:
        config: The validated config.
        sample_rows: Check only the first N rows of each file (the web app's bound on memory); a note says so.

    Returns:
        The run context (with the analysis), the loaded splits and the notes for the user.

    Raises:
        TrainforgeError: With a message naming the key, file, column or rows at fault.
    """
    from trainforge.training.advice import learning_rate_notes
    from trainforge.training.artifacts import check_hub_token, check_output_dir

    spec = get_task(config.task)
    check_extras(spec)
    ctx = RunContext(config, spec)
    if spec.pretrained_model:  # tabular loads no pretrained model and uses no torch precision
        check_model_source(config)
        if spec.processor == "tokenizer":
            check_tokenizer_files(config)
        ctx.notes += check_against_model_config(config, spec)  # its config.json only: no weights load
        ctx.notes += learning_rate_notes(config.training.learning_rate)
        from trainforge.training.arguments import resolve_precision

        resolve_precision(config.training.precision)
    check_output_dir(config)
    check_hub_token(config)
    from trainforge.training.launch import check_compute_environment

    check_compute_environment(config)
    stratify = spec.stratify_column(config) if callable(spec.stratify_column) else spec.stratify_column
    splits = load_splits(config.data, config.training.seed, stratify, spec.columns, sample_rows)
    ctx.analysis = spec.analyze(ctx, splits)
    if spec.processor != "none":
        ctx.processor  # noqa: B018 -- loaded (and checked against the model) now, so validate fails where training would
    notes = list(ctx.analysis.notes) + ctx.notes
    read = len(splits.train) + (0 if splits.eval is None else len(splits.eval))
    if sample_rows is not None and read >= sample_rows:
        notes.append(
            f"checked the first {sample_rows:,} rows of each data file (a sample, to keep the server's memory "
            "bounded); training checks every row before it starts"
        )
    if splits.eval is None:
        notes.append("no evaluation split: no eval metrics, best-checkpoint selection or early stopping")
    return Checked(ctx, splits, notes)


def run(config: RunConfig, resume: bool = False, listeners: tuple = (), command: list[str] | None = None) -> RunResult:
    """Train one run end to end: check, start, prepare, fit, finish.

    With ``compute:`` asking for several processes, machines or a cluster, this process launches them instead
    (``launch.launch_run``) and returns the result they wrote.

    Args:
        config: The validated config.
        resume: Continue from the last checkpoint in the run directory.
        listeners: Callables receiving every event (e.g. the console display).
        command: The ``trainforge`` arguments that reproduce this run, for launched processes (the CLI's own);
            None writes the resolved config for them.

    Returns:
        The run's output directory and final metrics.

    Raises:
        TrainforgeError: Bad config/data/run directory, before anything trains.
        Exception: Any training failure, after a ``run_failed`` event was recorded.
    """
    from trainforge.training.distributed import Ranks
    from trainforge.training.launch import launch_run, wants_launch

    if wants_launch(config):
        return launch_run(config, resume, command)
    if config.search.trials and not get_task(config.task).own_search:
        from trainforge.training.search import run_search

        return run_search(config, resume, listeners)
    started = time.monotonic()
    ranks = Ranks()
    with ranks.main_first():  # Hub downloads and tokenizer files: fetched once, the others read them
        checked = check(config)
    checked.ctx.is_main_process = ranks.is_main
    target = start(checked, resume, listeners, ranks)
    run_dir, events = target.path, checked.ctx.events
    try:
        with ranks.main_first():  # a cached preparation (datasets cache files) is computed once
            prepared = prepare(checked)
        trainer, metrics = fit(checked, prepared, resume)
        result = finish(checked, trainer, prepared, metrics)
        result.duration_s = time.monotonic() - started
        events.write(
            "run_finished",
            output_dir=str(run_dir),
            metrics=result.metrics,
            duration_s=result.duration_s,
            hub_url=result.hub_url,
        )
        target.commit()
        if ranks.is_main and not config.output.keep_checkpoints and (run_dir / "checkpoints").is_dir():
            # The final model is in the run directory; checkpoints only served --resume, which a finished run refuses.
            shutil.rmtree(run_dir / "checkpoints")
        return result
    except BaseException as exc:
        message = str(exc) if isinstance(exc, TrainforgeError) else f"{type(exc).__name__}: {exc}"
        interrupted = isinstance(exc, KeyboardInterrupt)  # Ctrl-C, or SIGTERM (the CLI turns it into one)
        if interrupted:
            from trainforge.training.artifacts import last_checkpoint

            resumable = last_checkpoint(run_dir) is not None
            message = "interrupted (Ctrl-C or SIGTERM); " + (
                "continue with --resume" if resumable else "no checkpoint was saved yet: run the same command again"
            )
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


def start(checked: Checked, resume: bool, listeners: tuple = (), ranks: Any = None):
    """Prepare the run directory (see ``artifacts.prepare_run_dir``), write the resolved config, open the events.

    Only the main process does; the others wait for it (``ranks``) and get a silent event log.

    Returns:
        The ``RunDir`` (commit it when the run succeeded, roll it back when it failed); ``checked.ctx`` then holds
        ``run_dir`` and ``events``.

    Raises:
        RunDirError: The directory holds a run that would be lost or mixed, or --resume cannot continue it.
    """
    from trainforge.training.artifacts import RunDir
    from trainforge.training.distributed import SilentEventLog

    ctx, config = checked.ctx, checked.ctx.config
    if not ctx.is_main_process:
        ranks.barrier()  # the main process has prepared the run directory
        ctx.run_dir, ctx.events = Path(config.output.dir), SilentEventLog()
        return RunDir(ctx.run_dir)
    target = _started(checked, resume, listeners)
    if ranks is not None:
        ranks.barrier()
    return target


def _started(checked: Checked, resume: bool, listeners: tuple):
    """The main process's part of ``start``."""
    from trainforge.training.artifacts import data_fingerprint, library_versions, prepare_run_dir, resume_differences
    from trainforge.training.events import EventLog

    ctx, splits, config = checked.ctx, checked.splits, checked.ctx.config
    target = prepare_run_dir(config, resume)
    run_dir = target.path
    fingerprint = data_fingerprint(config)
    if resume:
        for note in resume_differences(config, run_dir, fingerprint):
            print(f"note: {note}", file=sys.stderr)
            checked.notes.append(note)
    ctx.run_dir, ctx.events = run_dir, EventLog(run_dir / "events.jsonl", listeners)
    write_resolved(config, run_dir / "config.resolved.yaml")
    ctx.events.write(
        "run_started",
        task=config.task,
        model=config.model.name,
        output_dir=str(run_dir),
        resume=resume,
        train_rows=len(splits.train),
        eval_rows=0 if splits.eval is None else len(splits.eval),
        test_rows=0 if splits.test is None else len(splits.test),
        train_origin=splits.train_origin,
        eval_origin=splits.eval_origin,
        test_origin=splits.test_origin,
        labels=list(ctx.labels.names),
        notes=checked.notes,
        data_fingerprint=fingerprint,
        versions=library_versions(),
    )
    return target


def prepare(checked: Checked) -> Prepared:
    """The task's model-ready data, seeded; the processor is loaded here once (or was, by the analysis).

    Raises:
        RuntimeError: A task's prepare left out the test split it was given (a contract fault, not a user error).
    """
    if checked.spec.pretrained_model:
        from transformers import set_seed
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # shard-writing bars would break the one-line live display
        set_seed(checked.ctx.config.training.seed)  # before the model exists: a new head's init is seeded too
    prepared = checked.spec.prepare(checked.ctx, checked.splits)
    if checked.splits.test is not None and prepared.test is None:
        raise RuntimeError(f"task {checked.spec.name}: prepare did not encode the test split (Prepared.test)")
    return prepared


def fit(
    checked: Checked, prepared: Prepared, resume: bool, extra_callbacks: list[Any] | None = None
) -> tuple[Any, dict[str, float]]:
    """Build the model and the task's trainer, train (from the last complete checkpoint on resume).

    ``extra_callbacks`` join the driver's own (a search's pruning callback).

    Returns:
        The trainer (holding the kept model) and the training summary metrics (``train_*``).
    """
    from trainforge.training.arguments import training_arguments
    from trainforge.training.artifacts import last_checkpoint

    ctx = checked.ctx
    spec, config, run_dir, events = ctx.spec, ctx.config, ctx.output_dir, ctx.events
    model = spec.build_model(ctx)
    if config.peft.enabled and spec.lora is not None and not spec.lora_by_trainer:
        from trainforge.models.peft import apply_lora

        model = apply_lora(ctx, model, spec.lora)  # only the adapter and the task's new head train
    processor = ctx.processor if spec.pretrained_model else None
    if model is not None and getattr(model.config, "pad_token_id", 0) is None:
        pad_token_id = getattr(processor, "pad_token_id", None)
        if pad_token_id is not None:
            model.config.pad_token_id = pad_token_id
    has_eval = prepared.eval is not None
    args, callbacks = {}, []  # a task without a pretrained model (tabular) runs its own search: no Trainer settings
    if spec.pretrained_model:
        sampling = _sampling(ctx, prepared)
        args = training_arguments(config, run_dir, has_eval, spec.best_metric(ctx), len(prepared.train), sampling)
        callbacks = _callbacks(ctx, has_eval) + list(extra_callbacks or [])
    if spec.make_trainer is not None:
        make_trainer = spec.make_trainer
    else:
        from trainforge.training.hf_trainer import make_trainer
    # The test split is scored with the same metrics as eval, with or without an eval split.
    compute_metrics = spec.compute_metrics(ctx) if has_eval or prepared.test is not None else None
    trainer = make_trainer(TrainerInputs(ctx, model, prepared, args, callbacks, compute_metrics))
    if spec.pretrained_model:
        from transformers import Trainer
        from transformers.trainer_callback import PrinterCallback

        if not isinstance(trainer, Trainer):
            raise TypeError(f"task {spec.name}: its trainer factory made a {type(trainer).__name__}, not a Trainer")
        trainer.remove_callback(PrinterCallback)  # our events drive the display; the Trainer's own print is noise
        if getattr(trainer, "model_accepts_loss_kwargs", False) and not _loss_counts_items(trainer.model):
            # transformers takes a forward(**kwargs) for a loss divided by its num_items_in_batch, multiplies it by the
            # process count and skips the division over accumulated batches; a head that computes a plain mean
            # (BertForSequenceClassification) then trains on N x its loss with N processes: told it does not.
            trainer.model_accepts_loss_kwargs = False
    checkpoint = None
    if resume:
        skipped: list[str] = []
        checkpoint = last_checkpoint(run_dir, skipped)
        for note in skipped:
            print(f"note: {note}", file=sys.stderr)
            events.write("note", message=note)
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    # Hugging Face's names (as trainer.evaluate() and all_results.json): train_*, eval_*; seconds for runtimes.
    metrics = {"train_runtime": output.metrics["train_runtime"]}
    metrics.update({k: v for k, v in output.metrics.items() if k.startswith("train_") and not _is_speed(k)})
    if checkpoint is not None and "train_loss" in metrics:
        # The Trainer averages only the steps it ran in this process; the run's loss covers every step.
        metrics["train_loss"] = _logged_train_loss(trainer, metrics["train_loss"])
    return trainer, metrics


def _sampling(ctx: RunContext, prepared: Prepared) -> str | None:
    """The batch order ``training.train_sampling_strategy: auto`` resolves to for this data (a note says why)."""
    training = ctx.config.training
    if training.train_sampling_strategy != "auto" or not ctx.spec.length_grouping:
        return None
    from trainforge.training.sampling import choose_sampling

    choice = choose_sampling(
        prepared.train, training.per_device_train_batch_size * training.gradient_accumulation_steps, training.seed
    )
    if choice.notable and ctx.is_main_process:
        print(f"note: {choice.reason}", file=sys.stderr)
        ctx.events.write("note", message=choice.reason)
    return choice.strategy


def finish(checked: Checked, trainer: Any, prepared: Prepared, metrics: dict[str, float]) -> RunResult:
    """The task's finish step, final metrics (the logged evaluation of the kept model when complete), model, card."""
    ctx = checked.ctx
    kept = _kept_checkpoint(trainer)
    if kept is not None:
        ctx.events.write("best_checkpoint", **kept)
        metrics["best_global_step"] = kept["step"]
    with _writes_aside(ctx) as written:  # the other processes compute with the main one but keep nothing
        return _finish(checked, trainer, prepared, metrics, written)


def _finish(checked: Checked, trainer: Any, prepared: Prepared, metrics: dict[str, float], written: Path) -> RunResult:
    """``finish`` from the task's finish step on; ``written`` is where this process writes (see ``_writes_aside``)."""
    from trainforge.training import artifacts

    ctx, splits = checked.ctx, checked.splits
    spec, config, run_dir, events = ctx.spec, ctx.config, written, ctx.events
    main = ctx.is_main_process
    if spec.finish is not None:
        for note in spec.finish(ctx, trainer, prepared):
            if main:
                print(f"note: {note}", file=sys.stderr)
            events.write("note", message=note)
    if prepared.eval is not None:
        final = (_recorded_eval(trainer) if spec.reuse_logged_eval else None) or trainer.evaluate()
        # Throughput numbers describe this machine, not the model: they stay in events.jsonl only.
        metrics.update({k: v for k, v in final.items() if k.startswith("eval_") and not _is_speed(k)})
    if prepared.test is not None:
        # Scored once, with the kept model, after every choice the eval split drove (best checkpoint, thresholds).
        if spec.pretrained_model:
            from transformers import EarlyStoppingCallback

            trainer.remove_callback(EarlyStoppingCallback)  # it would look for eval_* among test_* metrics
        scored = trainer.evaluate(eval_dataset=prepared.test, metric_key_prefix="test")
        test = {k: v for k, v in scored.items() if k.startswith("test_") and not _is_speed(k)}
        metrics.update(test)
        events.write("test", metrics=test)
    if config.peft.enabled and not spec.lora_by_trainer:
        from trainforge.models.peft import merge_for_saving

        merge_for_saving(trainer, written)  # the run's model loads with plain transformers; adapter/ beside it
    trainer.save_model(str(written))  # every process: FSDP and DeepSpeed gather the weights for the main one
    eval_rows = 0 if splits.eval is None else len(splits.eval)
    if not main:
        return RunResult(Path(config.output.dir), metrics, ctx.labels, len(splits.train), eval_rows)
    if spec.pretrained_model and ctx.processor is not None:
        ctx.processor.save_pretrained(str(run_dir))
    artifacts.write_metrics(run_dir, metrics)
    card = spec.model_card(run_dir, config) if spec.model_card is not None else None
    artifacts.write_model_card(run_dir, config, spec.pipeline_tag, ctx.labels, metrics, spec.library_name, card)
    hub_url = artifacts.push_to_hub(run_dir, config) if config.hub.push else None
    return RunResult(run_dir, metrics, ctx.labels, len(splits.train), eval_rows, hub_url=hub_url)


@contextlib.contextmanager
def _writes_aside(ctx: RunContext) -> Iterator[Path]:
    """Where this process writes the run's final files: the run directory (main process), else a scratch folder.

    A task's finish step and a trainer's save may write files themselves (thresholds, a merged adapter); in the
    other processes they compute the same values with the main one (their evaluation is collective) and their files
    land in a folder deleted afterwards, so the run directory has one writer.
    """
    if ctx.is_main_process:
        yield ctx.output_dir
        return
    run_dir = ctx.output_dir
    with tempfile.TemporaryDirectory(prefix="trainforge-rank-") as scratch:
        ctx.run_dir = Path(scratch)
        try:
            yield ctx.run_dir
        finally:
            ctx.run_dir = run_dir


def _callbacks(ctx: RunContext, has_eval: bool) -> list[Any]:
    """Divergence guard, tie-break, events, TensorBoard and early stopping, for every Trainer-based task."""
    from transformers.integrations import TensorBoardCallback

    from trainforge.training.callbacks import EarlyStoppingEvents, EventsCallback, NonFiniteLossGuard, TieBreakOnLoss

    config = ctx.config
    # The guard comes first: a NaN loss fails the run before it reaches the events and the display.
    callbacks: list[Any] = [NonFiniteLossGuard(), TieBreakOnLoss(), EventsCallback(ctx.events)]
    if "tensorboard" in config.output.report_to:
        from torch.utils.tensorboard import SummaryWriter

        if ctx.is_main_process:  # one event file, written by the process that writes the run
            callbacks.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(ctx.output_dir / "tensorboard"))))
    if has_eval and config.training.eval_strategy != "no" and config.training.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        stopper = EarlyStoppingCallback(
            config.training.early_stopping_patience, config.training.early_stopping_threshold
        )
        callbacks += [stopper, EarlyStoppingEvents(ctx.events, config.training.early_stopping_patience)]
    return callbacks


def _loss_counts_items(model: Any) -> bool:
    """Whether the model's loss divides by the Trainer's ``num_items_in_batch`` (transformers' ``loss_function``).

    Read from the source of its class's ``forward`` (of the base model under PEFT); unreadable source keeps the
    Trainer's own answer.
    """
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        source = inspect.getsource(type(base).forward)
    except (OSError, TypeError, AttributeError):
        return True
    return "loss_function" in source or "num_items_in_batch" in source


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
    logged: dict[str, Any] = next(
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


def _is_speed(key: str) -> bool:
    return key.endswith(("_runtime", "_per_second"))


def check_extras(spec: TaskSpec) -> None:
    """Fail with an install hint when a task's optional dependency is missing."""
    missing = [(module, extra) for module, extra in spec.extras if importlib.util.find_spec(module) is None]
    if missing:
        extras = sorted({extra for _, extra in missing})
        raise TrainforgeError(
            f"task {spec.name} needs {', '.join(m for m, _ in missing)}: pip install 'trainforge[{','.join(extras)}]'"
        )
