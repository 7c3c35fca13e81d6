"""The run directory: its preparation, final files (metrics, model card, loss curve) and Hub upload."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from trainforge.config.schema import RunConfig
from trainforge.errors import ConfigError, RunDirError
from trainforge.training.events import read_events

FINISHED_MARKER = "metrics.json"


@dataclass
class RunDir:
    """The run directory being written, and the finished run it replaces (kept aside until this one succeeds)."""

    path: Path
    replaced: Path | None = None

    def commit(self) -> None:
        """The new run succeeded: the run it replaces can go."""
        if self.replaced is not None:
            shutil.rmtree(self.replaced)
            self.replaced = None

    def roll_back(self) -> Path | None:
        """The new run failed: put the replaced run back; returns where the failed attempt's files were kept."""
        if self.replaced is None:
            return None
        failed = _free_sibling(self.path, "failed")
        self.path.rename(failed)
        self.replaced.rename(self.path)
        self.replaced = None
        return failed


def check_output_dir(config: RunConfig) -> None:
    """``output.dir`` must be a folder (or not exist yet) under a folder this process can write.

    Raises:
        ConfigError: Naming ``output.dir``: a file is in the way, or the nearest existing parent is not writable.
    """
    run_dir = Path(config.output.dir).expanduser()
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError([("output.dir", f"{run_dir} is a file, not a folder; choose a folder for the run")])
    existing = next((p for p in (run_dir, *run_dir.absolute().parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError([("output.dir", f"{existing} is a file, so {run_dir} cannot be created below it")])
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError([("output.dir", f"{existing} is not writable by this user; choose another output.dir")])


def check_hub_token(config: RunConfig) -> None:
    """A run that pushes needs a Hub token (``HF_TOKEN`` or a saved login) and a reachable Hub before it trains.

    Raises:
        ConfigError: Naming ``hub.push``: how to provide a token, or that ``HF_HUB_OFFLINE`` switched the Hub off.
    """
    from trainforge.training.hub import check_hub

    check_hub(config)


def prepare_run_dir(config: RunConfig, resume: bool, dry_run: bool = False) -> RunDir:
    """Create the run directory, refusing to mix a new run into a finished or unrelated one.

    With ``output.overwrite`` a finished run is moved aside, not deleted: ``RunDir.commit`` deletes it once the new
    run has succeeded and ``RunDir.roll_back`` restores it when the new run fails (a kill leaves it beside the run
    directory as ``<name>.replaced-<time>``). ``dry_run`` only raises what preparing would (a launcher checks before
    it starts the processes, whose main one prepares the directory).

    Raises:
        RunDirError: The directory holds a run (and ``output.overwrite`` is off), ``resume`` was asked for a
            finished run or one with no complete checkpoint, or the directory is not trainforge's.
    """
    run_dir = Path(config.output.dir)
    if resume:
        if (run_dir / FINISHED_MARKER).exists():
            raise RunDirError(
                f"--resume: the run in {run_dir} finished; resuming would train it again from a checkpoint. To train "
                f"further, start a new run from its model: model.name={run_dir} output.dir=<a new folder>"
            )
        if last_checkpoint(run_dir) is None:
            raise RunDirError(
                f"--resume: no checkpoint in {run_dir / 'checkpoints'} to resume from; drop --resume to start fresh"
            )
        return RunDir(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        from trainforge.training.slurm import submitted_here

        submission = submitted_here(read_events(run_dir / "events.jsonl"))
        if submission is not None:
            # A SLURM task of ours: the submission prepared this directory (and moved a replaced run aside).
            return RunDir(run_dir, Path(submission["replaced"]) if submission.get("replaced") else None)
        if not (run_dir / "events.jsonl").exists():
            # output.overwrite replaces the folder: never one that trainforge did not write (data, a home folder...).
            raise RunDirError(
                f"output.dir {run_dir} is not empty and holds no trainforge run (no events.jsonl); "
                "choose a new or empty folder"
            )
        finished = (run_dir / FINISHED_MARKER).exists()
        events = read_events(run_dir / "events.jsonl")
        failed = bool(events) and events[-1]["event"] == "run_failed"  # not one still running in another process
        if not finished and failed and last_checkpoint(run_dir) is None:
            # A run that failed before its first checkpoint holds nothing to resume or keep: start again in place.
            if dry_run:
                return RunDir(run_dir)
            print(f"note: replacing the failed run in {run_dir} (it left no model and no checkpoint)", file=sys.stderr)
            shutil.rmtree(run_dir)
        elif not config.output.overwrite:
            raise RunDirError(
                f"output.dir {run_dir} already holds a run. Choose another output.dir, resume it with --resume, "
                "or replace it with output.overwrite=true"
            )
        elif dry_run:
            return RunDir(run_dir)
        else:
            replaced = _free_sibling(run_dir, "replaced")
            run_dir.rename(replaced)
            run_dir.mkdir(parents=True)
            return RunDir(run_dir, replaced)
    if not dry_run:
        run_dir.mkdir(parents=True, exist_ok=True)
    return RunDir(run_dir)


def _free_sibling(run_dir: Path, kind: str) -> Path:
    """``<run_dir>.<kind>-<time>``, a name beside the run directory that is not taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = run_dir.with_name(f"{run_dir.name}.{kind}-{stamp}")
    counter = 1
    while candidate.exists():
        counter += 1
        candidate = run_dir.with_name(f"{run_dir.name}.{kind}-{stamp}-{counter}")
    return candidate


def last_checkpoint(run_dir: Path, notes: list[str] | None = None) -> Path | None:
    """The newest *complete* ``checkpoint-<step>`` folder under ``run_dir/checkpoints``, if any.

    The Trainer writes ``trainer_state.json`` last, so a checkpoint without it (or without weights) was torn by a
    kill during its save; it is skipped, and named in ``notes`` when a list is given.
    """
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return None
    found = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    for checkpoint in sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        if _complete(checkpoint):
            return checkpoint
        if notes is not None:
            notes.append(f"skipped {checkpoint.name}: incomplete (the process stopped while saving it)")
    return None


def _complete(checkpoint: Path) -> bool:
    if (checkpoint / "trial.joblib").is_file():  # a tabular search trial, written in one call
        return True
    weights = [*checkpoint.glob("*.safetensors"), *checkpoint.glob("*.bin")]
    return (checkpoint / "trainer_state.json").is_file() and bool(weights)


# Keys whose change alters which rows are trained on or which model is trained: resuming across one would mix runs.
_RESUME_FIXED = ("task", "model", "data", "params", "training.seed", "peft")
# Task params that set a budget or how a finished model is used, not what it learns: they may change on resume
# (like training.max_steps), e.g. a tabular search continued with more trials.
_RESUME_FREE = frozenset(
    f"params.{name}"
    for name in ("num_trials", "time_limit", "n_jobs", "threshold", "max_new_tokens", "temperature", "top_p")
)


def resume_differences(config: RunConfig, run_dir: Path, fingerprint: dict[str, str]) -> list[str]:
    """Compare a resumed config with the run's ``config.resolved.yaml`` and recorded data fingerprint.

    Returns:
        Notes naming differences that do not change the data or the model (e.g. more epochs).

    Raises:
        RunDirError: Naming every difference that changes the data or the model (keys, or data files whose content
            changed since the run started).
    """
    from trainforge.config.loading import dump_resolved
    from trainforge.training.events import read_events

    recorded_path = run_dir / "config.resolved.yaml"
    if not recorded_path.is_file():
        return []
    recorded = _flatten(yaml.safe_load(recorded_path.read_text(encoding="utf-8")) or {})
    current = _flatten(dump_resolved(config))
    ignored = ("output.overwrite",)
    changed = sorted(
        k for k in recorded.keys() | current.keys() if recorded.get(k) != current.get(k) and k not in ignored
    )
    fixed = [k for k in changed if k.startswith(_RESUME_FIXED) and k not in _RESUME_FREE]
    started = [e for e in read_events(run_dir / "events.jsonl") if e["event"] == "run_started"]
    before = started[0].get("data_fingerprint") if started else None
    if before:
        fixed += [
            f"{path} (its content changed)"
            for path, digest in fingerprint.items()
            if before.get(path, digest) != digest
        ]
    if fixed:
        shown = "; ".join(
            f"{k}: {recorded.get(k)!r} -> {current.get(k)!r}" if k in recorded or k in current else k for k in fixed
        )
        raise RunDirError(
            f"--resume: the config or data differs from the run in {run_dir} in what it trains on or what it trains "
            f"({shown}). Resume with the recorded config ({recorded_path}), or start a new run"
        )
    return [f"resumed with {k} changed: {recorded.get(k)!r} -> {current.get(k)!r}" for k in changed]


def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, object] = {}
    for key, child in value.items():
        flat.update(_flatten(child, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def data_fingerprint(config: RunConfig) -> dict[str, str]:
    """SHA-256 of every local data file the config reads (a folder: its data files), by path.

    Streams each file (about 1 s per GB); Hub datasets have no local file and are left out.
    """
    import hashlib

    source = Path(config.data.source).expanduser()
    files = (
        [source]
        if source.is_file()
        else sorted(p for p in source.rglob("*") if p.is_file())
        if source.is_dir()
        else []
    )
    if config.data.eval_split and Path(config.data.eval_split).is_file():
        files.append(Path(config.data.eval_split))
    digests = {}
    for path in files[:1000]:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        digests[str(path)] = digest.hexdigest()
    return digests


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide what a run computes (recorded in the ``run_started`` event)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("trainforge", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "scikit-learn"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def write_metrics(run_dir: Path, metrics: dict) -> None:
    """Write ``metrics.json`` (final evaluation, plus training summary) atomically.

    It is the finished marker and the web app reads it while a run is polled: a reader must never see it half
    written (a torn file failed the app's run view with a JSON error), so it is written aside and renamed.
    """
    partial = run_dir / f".{FINISHED_MARKER}.partial"
    partial.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, run_dir / FINISHED_MARKER)


def write_model_card(
    run_dir: Path,
    config: RunConfig,
    pipeline_tag: str,
    labels,
    metrics: dict,
    library_name: str = "transformers",
    task_section: str | None = None,
) -> None:
    """Write ``README.md`` (Hub model card: YAML front matter, metrics, loss curve, usage) and the curve SVG.

    ``task_section`` (markdown from the task's spec) replaces the default transformers pipeline usage block. It may
    open with YAML front matter (a library's own card, e.g. sentence-transformers'): its keys join the card's front
    matter, ours winning on shared keys and tags joined, so that the library's metadata is kept, not replaced.
    """
    task_front, task_section = split_front_matter(task_section)
    if task_section and _has_title(task_section):
        # A library's whole card (sentence-transformers'): one title per card; its title becomes a section of ours.
        task_section = demote_headings(task_section)
    steps = [
        (e["step"], e["loss"])
        for e in read_events(run_dir / "events.jsonl")
        if e["event"] == "step" and isinstance(e.get("loss"), float | int)
    ]
    curve = ""
    if len(steps) >= 2:
        (run_dir / "loss_curve.svg").write_text(loss_curve_svg(steps), encoding="utf-8")
        curve = "\n## Training loss\n\n![training loss](loss_curve.svg)\n"
    front = card_metadata(run_dir, config, pipeline_tag, metrics, library_name, task_front)
    # Evaluation numbers by their metric name (the section says they are evaluation results); train_* as named.
    rows = "\n".join(
        f"| {k.removeprefix('eval_')} | {v:.4f} |" if isinstance(v, float) else f"| {k.removeprefix('eval_')} | {v} |"
        for k, v in sorted(metrics.items())
    )
    table = (
        f"| metric | value |\n|---|---|\n{rows}"
        if metrics
        else "No evaluation split was used, so there are no evaluation metrics."
    )
    label_line = f"Labels: {', '.join(labels.names)}.\n" if labels.problem_type.endswith("_classification") else ""
    kept = [e for e in read_events(run_dir / "events.jsonl") if e["event"] == "best_checkpoint"]
    if kept:
        k = kept[-1]
        loss = f", evaluation loss {k['eval_loss']:.4f}" if isinstance(k.get("eval_loss"), float) else ""
        label_line += (
            f"The weights are those of step {k['step']} of {k['last_step']}, the best by {k['metric']} "
            f"({k['value']:.4f}{loss}; ties go to the lower loss, then the later step).\n"
        )
    usage = f"""## Use it

```python
from transformers import pipeline

classifier = pipeline("{pipeline_tag}", model="{run_dir}")
print(classifier("an example input"))
```
"""
    tool = "[trainforge](https://pypi.org/project/trainforge/)"
    origin = (
        f"Fine-tuned with {tool} for **{config.task}** from `{config.model.name}`."
        if library_name == "transformers"
        else f"Trained with {tool} for **{config.task}** (model: `{config.model.name}`)."
    )
    card = f"""---
{front.strip()}
---

# {run_dir.name}

{origin}
{label_line}
## Evaluation

{table}
{curve}
{task_section or usage}
Reproduce with `trainforge train {run_dir}/config.resolved.yaml`.
"""
    (run_dir / "README.md").write_text(card, encoding="utf-8")


def card_metadata(
    run_dir: Path, config: RunConfig, pipeline_tag: str, metrics: dict, library_name: str, extra: dict | None = None
) -> str:
    """The model card's YAML front matter, built with ``huggingface_hub``'s card tools (``model-index`` included).

    Every ``eval_*`` number becomes an ``EvalResult`` (metric name without the prefix) on the evaluation data, so the
    Hub shows the scores; runtimes and counters are left out. ``extra`` (a library's own front matter) fills the keys
    ours leaves unset; its tags come first in the joined list.
    """
    from huggingface_hub import EvalResult, ModelCardData

    source = config.data.source
    on_hub = not Path(source).exists()
    dataset = source if on_hub else Path(source).name
    split = config.data.eval_split or (
        f"{config.data.eval_fraction:g} hold-out" if config.data.eval_fraction else None
    )
    results = [
        EvalResult(
            task_type=pipeline_tag,
            dataset_type=dataset,
            dataset_name=dataset,
            dataset_split=split,
            metric_type=name.removeprefix("eval_"),
            metric_value=float(value),
        )
        for name, value in sorted(metrics.items())
        if name.startswith("eval_") and isinstance(value, int | float) and not _is_counter(name)
    ]
    base_is_local = Path(config.model.name).exists()
    from trainforge.training.hub import base_model_license

    data = ModelCardData(
        library_name=library_name,
        pipeline_tag=pipeline_tag,
        tags=["trainforge", config.task],
        # Only a Hub model id is a base model the Hub can link (tabular model families are not).
        base_model=config.model.name if library_name == "transformers" and not base_is_local else None,
        datasets=[source] if on_hub else None,
        model_name=run_dir.name,
        eval_results=results or None,
        license=config.hub.license or base_model_license(config.model.name),
    )
    if extra:
        ours = {key: value for key, value in data.to_dict().items() if value is not None}
        tags = list(dict.fromkeys([*(extra.get("tags") or []), *ours.get("tags", [])]))
        data = ModelCardData(**{**extra, **ours, "tags": tags})
    return data.to_yaml()


_HEADING = re.compile(r"#{1,5}(\s|$)")  # an ATX heading that can go one level deeper (6 is markdown's deepest)


def _has_title(markdown: str) -> bool:
    return any(line.startswith("# ") and not code for line, code in _marked_lines(markdown))


def _marked_lines(markdown: str) -> Iterator[tuple[str, bool]]:
    """Each line of ``markdown`` with whether it is code (a fence line, ``` or ~~~, or inside a fenced block)."""
    fence = None
    for line in markdown.splitlines():
        marker = line.lstrip()[:3]
        if marker in ("```", "~~~") and fence in (None, marker):
            fence = None if fence else marker
            yield line, True
        else:
            yield line, fence is not None


def demote_headings(markdown: str) -> str:
    """Every markdown heading one level deeper (``#`` -> ``##``, at most ``######``), except in fenced code.

    Nests a library's own model card under our title: the card keeps one title, and the library's sections (it has
    an "Evaluation" too) sit one level below its own title, now a section of ours. ``#hashtag`` lines are text.
    """
    lines = ["#" + line if _HEADING.match(line) and not code else line for line, code in _marked_lines(markdown)]
    return "\n".join(lines) + ("\n" if markdown.endswith("\n") else "")


def split_front_matter(markdown: str | None) -> tuple[dict, str | None]:
    """``(front matter, body)`` of a markdown text that may open with a ``---`` YAML block (``{}`` when none)."""
    if not markdown or not markdown.startswith("---\n"):
        return {}, markdown
    end = markdown.find("\n---\n", 3)
    if end < 0:
        return {}, markdown
    front = yaml.safe_load(markdown[4:end]) or {}
    return (front, markdown[end + 5 :].lstrip("\n")) if isinstance(front, dict) else ({}, markdown)


def _is_counter(name: str) -> bool:
    return name.endswith(("_runtime", "_per_second", "_samples", "_steps"))


def loss_curve_svg(points: list[tuple[int, float]], width: int = 480, height: int = 200) -> str:
    """A dependency-free SVG line chart of (step, loss)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    pad = 30

    def scale(x: float, y: float) -> str:
        sx = pad + (x - x0) / ((x1 - x0) or 1) * (width - 2 * pad)
        sy = height - pad - (y - y0) / ((y1 - y0) or 1) * (height - 2 * pad)
        return f"{sx:.1f},{sy:.1f}"

    path = " ".join(scale(x, y) for x, y in points)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{path}"/>'
        f'<text x="{pad}" y="15">loss {y1:.3f} → {ys[-1]:.3f}</text>'
        f'<text x="{width - pad}" y="{height - 8}" text-anchor="end">step {x1}</text></svg>'
    )


def push_to_hub(run_dir: Path, config: RunConfig) -> str:
    """``hub.push``: upload the finished run to ``hub.repo_id`` through ``trainforge push``'s code; returns its URL.

    See ``trainforge.training.hub.push_run`` (allow-listed files, private by default, ``hub.revision`` branch,
    token from the environment or the login cache only).
    """
    from trainforge.training.hub import PublishError, push_run, resolve_token

    repo_id = config.hub.repo_id
    if not repo_id:  # HubSection requires it when push is on; a config built otherwise gets the same message
        raise ConfigError([("hub.repo_id", "push: true needs repo_id (e.g. your-name/my-model)")])
    try:
        result = push_run(
            run_dir,
            repo_id,
            revision=config.hub.revision,
            private=config.hub.private,
            license=config.hub.license,
            token=resolve_token(config),
        )
    except PublishError as exc:  # the model is trained and saved: say how to publish it without training again
        message = f"{exc}. The trained model is in {run_dir}: publish it with `trainforge push {run_dir}`"
        raise PublishError(message) from None
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return result.url
