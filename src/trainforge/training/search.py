"""Hyperparameter search for every task: an Optuna study over config keys, each trial one run of the driver's phases.

    check once -> the study's run directory -> per trial: a sampled config (validated like user input), its data
    prepared (once per distinct value of the keys that change preparation), fit with a pruning callback, finish in
    ``search/trial-NNN`` -> the best trial's model, card and config become the run's -> leaderboard, best config,
    optimisation history and parameter importances.

The study lives in ``search/study.db`` (SQLite) in the run directory, or in ``search.storage`` (any SQLAlchemy URL),
where several ``trainforge train`` processes on several machines work the same study together.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Literal

import yaml

from trainforge.config.schema import RunConfig
from trainforge.errors import RunDirError, TrainforgeError
from trainforge.training import driver
from trainforge.training.driver import Checked, RunResult
from trainforge.training.events import EventLog

SEARCH_DIR = "search"
# Keys that change what analysis and preparation produce: a trial sampling one prepares its own data (cached per
# distinct value); training.* and peft.* reuse the data prepared once for the whole study.
PREPARATION_SECTIONS = ("params.", "model.")
# A trial's events that the study's events.jsonl repeats (with ``trial``): its start, loss and evaluation curves.
FORWARDED_EVENTS = ("train_started", "step", "eval")
# What a trial folder keeps once the study is over: its record, not its weights (the best one's are the run's).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".joblib", ".pt", ".pth", ".onnx")


def run_search(config: RunConfig, resume: bool = False, listeners: tuple = ()) -> RunResult:
    """Run the study ``config.search`` describes; the best trial's model becomes the run's.

    Args:
        config: A validated config with ``search.trials > 0``.
        resume: Continue the study in this run directory (trials left running by a killed process are failed).
        listeners: Callables receiving every event of the study (trial results), as ``driver.run``'s.

    Returns:
        The run directory (holding the best trial's model) and the best trial's metrics.

    Raises:
        TrainforgeError: Bad config or data (before any trial), or no trial completed.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial's outcome is an event (and a console line)
    started = time.monotonic()
    checked = driver.check(config)
    target = _study_dir(config, resume)
    run_dir = target.path
    events = EventLog(run_dir / "events.jsonl", listeners)
    checked.ctx.run_dir, checked.ctx.events = run_dir, events
    search = config.search
    metric = search.metric or f"eval_{checked.spec.best_metric(checked.ctx).name}"
    direction: Literal["maximize", "minimize"] = search.direction or (
        "maximize" if _greater_is_better(checked, metric) else "minimize"
    )
    (run_dir / SEARCH_DIR).mkdir(exist_ok=True)
    _write_yaml(run_dir / SEARCH_DIR / "study_config.yaml", _plain(config))
    events.write(
        "run_started",
        task=config.task,
        model=config.model.name,
        output_dir=str(run_dir),
        resume=resume,
        search={"trials": search.trials, "metric": metric, "direction": direction, "space": list(search.space)},
        train_rows=len(checked.splits.train),
        eval_rows=0 if checked.splits.eval is None else len(checked.splits.eval),
        labels=list(checked.labels.names),
        notes=checked.notes,
    )
    try:
        study = _study(config, run_dir, direction, resume)
        # A trial cut short by Ctrl-C or SIGTERM is failed, not done: --resume runs it again.
        interrupted = sum(1 for t in study.trials if t.user_attrs.get("interrupted"))
        objective = _Objective(checked, run_dir, metric, events, listeners)
        done = (
            optuna.trial.TrialState.COMPLETE,
            optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.FAIL,
        )
        study.optimize(
            objective,
            timeout=search.timeout,
            callbacks=[optuna.study.MaxTrialsCallback(search.trials + interrupted, states=done)],
            catch=(TrainforgeError, RuntimeError, ValueError),  # a diverged or broken trial fails; the study goes on
        )
        result = _keep_best(study, checked, run_dir, metric, events)
        if config.hub.push:  # the trials never push (``_trial_config``); the study's best model does, once
            from trainforge.training import artifacts

            result.hub_url = artifacts.push_to_hub(run_dir, config)
        result.duration_s = time.monotonic() - started
        events.write(
            "run_finished",
            output_dir=str(run_dir),
            metrics=result.metrics,
            duration_s=result.duration_s,
            hub_url=result.hub_url,
        )
        target.commit()  # the finished search it replaced (output.overwrite) can go now
        return result
    except BaseException as exc:
        events.write(
            "run_failed",
            error=str(exc) or type(exc).__name__,
            interrupted=isinstance(exc, KeyboardInterrupt),
            traceback=traceback.format_exc(),
        )
        events.close()
        kept = target.roll_back()  # output.overwrite: the search it replaced comes back
        if kept is not None:
            print(f"note: the previous run in {run_dir} was kept; this failed search is in {kept}", file=sys.stderr)
        raise
    finally:
        events.close()


class _Objective:
    """One trial: sample, validate, prepare (cached), fit with pruning, finish in its folder; returns the metric."""

    def __init__(self, checked: Checked, run_dir: Path, metric: str, events: EventLog, listeners: tuple = ()):
        self.base, self.run_dir, self.metric, self.events = checked, run_dir, metric, events
        self.listeners = listeners  # the console shows each trial's steps as a run's
        self.prepared: dict[tuple, tuple[Checked, Any]] = {}

    def __call__(self, trial) -> float:
        import optuna

        config = self.base.ctx.config
        values = {key: _suggest(trial, key, dimension) for key, dimension in config.search.space.items()}
        trial_dir = self.run_dir / SEARCH_DIR / f"trial-{trial.number:03d}"
        trial.set_user_attr("run_dir", str(trial_dir))
        try:
            trial_config = _trial_config(config, values, trial_dir)
        except TrainforgeError as exc:  # a sampled combination the checks refuse: this trial fails, named
            trial.set_user_attr("error", str(exc))
            raise
        checked, prepared = self._data(trial_config, values)
        self.events.write("trial_started", number=trial.number, params=values)
        started = time.monotonic()
        target = driver.start(checked, resume=False, listeners=(*self.listeners, self._forward(trial.number)))
        state, value = "complete", None
        try:
            trainer, metrics = driver.fit(
                checked, prepared, resume=False, extra_callbacks=[_pruning_callback(trial, self.metric)]
            )
            result = driver.finish(checked, trainer, prepared, metrics)
            checked.ctx.events.write("run_finished", output_dir=str(trial_dir), metrics=result.metrics)
            target.commit()
            if self.metric not in result.metrics:
                raise TrainforgeError(
                    f"search.metric {self.metric!r} is not among the trial's metrics: {', '.join(result.metrics)}"
                )
            value = float(result.metrics[self.metric])
            return value
        except optuna.TrialPruned as exc:
            state = "pruned"
            checked.ctx.events.write("run_failed", error=f"pruned by the search: {exc}", interrupted=False)
            raise
        except BaseException as exc:
            state = "failed"
            stopped = isinstance(exc, KeyboardInterrupt)
            checked.ctx.events.write("run_failed", error=f"{type(exc).__name__}: {exc}", interrupted=stopped)
            trial.set_user_attr(
                "interrupted" if stopped else "error", True if stopped else f"{type(exc).__name__}: {exc}"
            )
            raise
        finally:
            if checked.ctx.events is not None:
                checked.ctx.events.close()
            shutil.rmtree(trial_dir / "checkpoints", ignore_errors=True)
            self.events.write(
                "search_trial",
                number=trial.number,
                state=state,
                metric=self.metric,
                value=value,
                params=values,
                duration_s=round(time.monotonic() - started, 2),
            )

    def _forward(self, number: int):
        """A listener copying the trial's steps and evaluations into the study's log (the app's curves read it)."""

        def forward(record: dict) -> None:
            if record["event"] in FORWARDED_EVENTS:
                self.events.copy(record, trial=number)

        return forward

    def _data(self, trial_config: RunConfig, values: dict[str, Any]) -> tuple[Checked, Any]:
        """The trial's checked context and prepared data: shared unless a sampled key changes preparation."""
        from trainforge.tasks.spec import RunContext

        key = tuple(sorted((k, repr(v)) for k, v in values.items() if k.startswith(PREPARATION_SECTIONS)))
        if key not in self.prepared:
            source = driver.check(trial_config) if key else self.base
            self.prepared[key] = (source, driver.prepare(source))
        source, prepared = self.prepared[key]
        ctx = RunContext(trial_config, source.ctx.spec, analysis=source.ctx.analysis)
        ctx._processor = source.ctx._processor  # loaded once per distinct preparation, shared by its trials
        return Checked(ctx, source.splits, list(source.notes)), prepared


def _pruning_callback(trial, metric: str):
    """A ``TrainerCallback`` reporting each evaluation's metric to the trial, raising ``TrialPruned`` when told."""
    import optuna
    from transformers import TrainerCallback

    class Pruning(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if not metrics or metric not in metrics:
                return
            trial.report(float(metrics[metric]), step=state.global_step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"{metric} {metrics[metric]:.4g} at step {state.global_step}")

    return Pruning()


def _suggest(trial, key: str, dimension) -> Any:
    if dimension.loguniform is not None:
        return trial.suggest_float(key, *dimension.loguniform, log=True)
    if dimension.uniform is not None:
        return trial.suggest_float(key, *dimension.uniform)
    if dimension.integer is not None:
        return trial.suggest_int(key, *dimension.integer)
    return trial.suggest_categorical(key, dimension.choice)


def _trial_config(config: RunConfig, values: dict[str, Any], trial_dir: Path) -> RunConfig:
    """The study's config with the sampled values, no search and the trial's folder, validated like user input."""
    from trainforge.config.loading import load_config

    raw = _plain(config)
    raw.pop("search")
    for key, value in values.items():
        section, _, name = key.partition(".")
        raw[section][name] = value
    raw["output"].update(dir=str(trial_dir), overwrite=False)
    raw["hub"]["push"] = False  # only the study's best model is published
    return load_config(raw, interpolate=False)


def _study(config: RunConfig, run_dir: Path, direction: Literal["maximize", "minimize"], resume: bool):
    import optuna

    search = config.search
    url = search.storage or f"sqlite:///{(run_dir / SEARCH_DIR / 'study.db').resolve()}"
    from trainforge._utils.studies import open_storage

    storage = open_storage(url)
    if resume:
        running = [
            t
            for t in storage.get_all_trials(storage.get_study_id_from_name(search.study_name), deepcopy=False)
            if t.state == optuna.trial.TrialState.RUNNING and _ours(t, run_dir)
        ]
        for trial in running:  # left running by a killed process of this run: they will never report
            storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
            storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            print(f"note: trial {trial.number} was interrupted; marked failed", file=sys.stderr)
    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    if search.pruner == "median":
        pruner = optuna.pruners.MedianPruner(n_startup_trials=search.pruner_startup_trials, n_warmup_steps=0)
    elif search.pruner == "successive_halving":
        pruner = optuna.pruners.SuccessiveHalvingPruner()
    study = optuna.create_study(
        storage=storage, study_name=search.study_name, direction=direction, pruner=pruner, load_if_exists=True
    )
    # Seeded, offset by the trials already in the study, so a second worker does not repeat the first one's samples.
    seed = config.training.seed + len(study.trials)
    if search.sampler == "grid":
        # One seed for every worker and resume: the grid's order must not change, or points repeat and others are
        # skipped (GridSampler hands out the points not yet taken in the study).
        space = {key: list(dimension.choice or []) for key, dimension in search.space.items()}
        study.sampler = optuna.samplers.GridSampler(space, seed=config.training.seed)
    elif search.sampler == "random":
        study.sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        study.sampler = optuna.samplers.TPESampler(seed=seed)
    return study


def _study_dir(config: RunConfig, resume: bool):
    """The ``RunDir`` of the study: new (as any run's), or the unfinished study being resumed with the same config.

    Raises:
        RunDirError: An unfinished study would be replaced without --resume (its trials would be lost), or --resume
            meets a finished study, no study, or a config that changed beyond the trial count and time limit.
    """
    from trainforge.training.artifacts import FINISHED_MARKER, RunDir, prepare_run_dir

    run_dir = Path(config.output.dir)
    recorded = run_dir / SEARCH_DIR / "study_config.yaml"
    if not resume:
        if recorded.is_file() and not (run_dir / FINISHED_MARKER).exists():
            raise RunDirError(
                f"output.dir {run_dir} holds an unfinished search: continue it with --resume, or choose another "
                "output.dir (its completed trials would be lost)"
            )
        return prepare_run_dir(config, resume=False)
    if (run_dir / FINISHED_MARKER).exists():
        raise RunDirError(f"--resume: the search in {run_dir} finished; start a new one in another output.dir")
    if not recorded.is_file():
        raise RunDirError(f"--resume: {run_dir} holds no search to resume (no {SEARCH_DIR}/study_config.yaml)")
    before, now = yaml.safe_load(recorded.read_text(encoding="utf-8")), _plain(config)
    for plain in (before, now):
        for budget in ("trials", "timeout"):  # a study may be continued with more trials or time
            plain["search"].pop(budget, None)
    changed = sorted(k for k in now if now.get(k) != before.get(k))
    if changed:
        raise RunDirError(
            f"--resume: the config differs from the study's ({', '.join(changed)} changed; "
            f"{SEARCH_DIR}/study_config.yaml holds it): resume with the same config, or start a new search in "
            "another output.dir"
        )
    return RunDir(run_dir)


def _ours(trial, run_dir: Path) -> bool:
    """Whether ``trial`` ran in this run directory (workers sharing a storage each keep their own trials)."""
    folder = trial.user_attrs.get("run_dir")
    return folder is not None and Path(folder).parent.resolve() == (run_dir / SEARCH_DIR).resolve()


def _keep_best(study, checked: Checked, run_dir: Path, metric: str, events: EventLog) -> RunResult:
    """Copy the best trial's run into the run directory; write the leaderboard, best config, plots and card."""
    import optuna

    from trainforge.training import artifacts

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    mine = [t for t in complete if _ours(t, run_dir)]
    if not mine:
        errors = [t.user_attrs.get("error") for t in study.trials if t.user_attrs.get("error")]
        raise TrainforgeError(
            f"no trial of the search completed in {run_dir}" + (f"; first error: {errors[0]}" if errors else "")
        )
    best = max(mine, key=lambda t: t.value) if study.direction.name == "MAXIMIZE" else min(mine, key=lambda t: t.value)
    best_dir = Path(best.user_attrs["run_dir"])
    if complete and best.number != study.best_trial.number:
        events.write("note", message=f"the study's best trial {study.best_trial.number} ran in another process")
    for item in best_dir.iterdir():
        if item.name in ("events.jsonl", "checkpoints"):
            continue
        destination = run_dir / item.name
        if item.is_dir():
            shutil.copytree(item, destination, dirs_exist_ok=True)
        else:
            shutil.copy2(item, destination)
    best_config = yaml.safe_load((best_dir / "config.resolved.yaml").read_text(encoding="utf-8"))
    best_config["output"]["dir"] = str(run_dir)
    _write_yaml(run_dir / "config.resolved.yaml", best_config)
    _write_yaml(run_dir / SEARCH_DIR / "best_config.yaml", best_config)
    board = _leaderboard(study, run_dir)
    metrics = json.loads((best_dir / "metrics.json").read_text(encoding="utf-8"))
    metrics.update(search_best_trial=best.number, search_trials=len(study.trials))
    artifacts.write_metrics(run_dir, metrics)
    (run_dir / "README.md").write_text(
        (best_dir / "README.md").read_text(encoding="utf-8") + _card_section(study, board, run_dir, metric),
        encoding="utf-8",
    )
    for trial_dir in (run_dir / SEARCH_DIR).glob("trial-*"):
        for weights in [p for p in trial_dir.rglob("*") if p.suffix in WEIGHT_SUFFIXES]:
            weights.unlink()  # the best trial's weights are the run's now; the others' records stay
    events.write("search_finished", best_trial=best.number, value=best.value, params=best.params)
    return RunResult(
        run_dir,
        metrics,
        checked.labels,
        len(checked.splits.train),
        0 if checked.splits.eval is None else len(checked.splits.eval),
    )


def _leaderboard(study, run_dir: Path) -> list[dict[str, Any]]:
    """``search/leaderboard.csv``: every trial, best first (complete ones), with its state, value and parameters."""
    import csv

    rows = []
    for trial in study.trials:
        state = {"FAIL": "failed"}.get(trial.state.name, trial.state.name.lower())  # complete, pruned, running
        row: dict[str, Any] = {"trial": trial.number, "state": state, "value": trial.value}
        row.update(trial.params)
        duration = trial.duration.total_seconds() if trial.duration is not None else None
        row.update(duration_s=None if duration is None else round(duration, 2), error=trial.user_attrs.get("error"))
        rows.append(row)
    maximize = study.direction.name == "MAXIMIZE"
    rows.sort(key=lambda r: (r["value"] is None, -(r["value"] or 0) if maximize else (r["value"] or 0)))
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with (run_dir / SEARCH_DIR / "leaderboard.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _card_section(study, board: list[dict[str, Any]], run_dir: Path, metric: str) -> str:
    """The model card's search section: the leaderboard's head, the history and (when measurable) importances."""
    import optuna

    from trainforge.tabular.report import importance_svg
    from trainforge.training.artifacts import loss_curve_svg

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    keys = [k for k in board[0] if k not in ("trial", "state", "value", "duration_s", "error")]
    lines = ["", "## Hyperparameter search", ""]
    lines.append(
        f"{len(study.trials)} trials ({len(complete)} complete), Optuna {type(study.sampler).__name__}, "
        f"{study.direction.name.lower()} {metric}. All trials: `{SEARCH_DIR}/leaderboard.csv`; the best config, "
        f"ready to run: `{SEARCH_DIR}/best_config.yaml`."
    )
    lines += ["", "| trial | state | " + " | ".join([metric, *keys]) + " |", "|---" * (3 + len(keys)) + "|"]
    for row in board[:10]:
        value = "" if row["value"] is None else f"{row['value']:.4f}"
        cells = [str(row.get(k, "")) for k in keys]
        lines.append(f"| {row['trial']} | {row['state']} | {value} | " + " | ".join(cells) + " |")
    if len(complete) >= 2:
        points = [(t.number, float(t.value)) for t in complete]
        (run_dir / SEARCH_DIR / "history.svg").write_text(loss_curve_svg(points), encoding="utf-8")
        lines += ["", f"![{metric} by trial]({SEARCH_DIR}/history.svg)"]
        scalar = {k for k in keys if all(isinstance(t.params.get(k), str | int | float | bool) for t in complete)}
        varied = {k for k in scalar if len({repr(t.params.get(k)) for t in complete}) > 1}
        if varied:
            import pandas as pd

            importances = optuna.importance.get_param_importances(study, params=sorted(varied))
            table = pd.DataFrame({"feature": list(importances), "importance": list(importances.values())})
            svg = importance_svg(table, title=f"parameter importance for {metric} (Optuna)")
            (run_dir / SEARCH_DIR / "importances.svg").write_text(svg, encoding="utf-8")
            lines += ["", f"![parameter importances (Optuna's default evaluator)]({SEARCH_DIR}/importances.svg)"]
    return "\n".join(lines) + "\n"


def _greater_is_better(checked: Checked, metric: str) -> bool:
    best = checked.spec.best_metric(checked.ctx)
    if metric == f"eval_{best.name}":
        return best.greater_is_better
    return not metric.endswith(("loss", "rmse", "mae", "mse", "perplexity"))


def _plain(config: RunConfig) -> dict[str, Any]:
    from trainforge.config.loading import dump_resolved

    return copy.deepcopy(dump_resolved(config))


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
