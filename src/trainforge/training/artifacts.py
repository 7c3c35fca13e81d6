"""The run directory: its preparation, final files (metrics, model card, loss curve) and Hub upload."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from trainforge.config.schema import RunConfig
from trainforge.errors import RunDirError
from trainforge.training.events import read_events

FINISHED_MARKER = "metrics.json"


def prepare_run_dir(config: RunConfig, resume: bool) -> Path:
    """Create the run directory, refusing to mix a new run into a finished or unrelated one.

    Raises:
        RunDirError: The directory holds a finished run (and ``output.overwrite`` is off), or ``resume``
            was asked for but there is no checkpoint to resume from.
    """
    run_dir = Path(config.output.dir)
    if resume:
        if last_checkpoint(run_dir) is None:
            raise RunDirError(
                f"--resume: no checkpoint in {run_dir / 'checkpoints'} to resume from; drop --resume to start fresh"
            )
        return run_dir
    if run_dir.exists() and any(run_dir.iterdir()):
        if not (run_dir / "events.jsonl").exists():
            # output.overwrite deletes the folder: never one that trainforge did not write (data, a home folder...).
            raise RunDirError(
                f"output.dir {run_dir} is not empty and holds no trainforge run (no events.jsonl); "
                "choose a new or empty folder"
            )
        if not config.output.overwrite:
            raise RunDirError(
                f"output.dir {run_dir} already holds a run. Choose another output.dir, resume it with --resume, "
                "or replace it with output.overwrite=true"
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest ``checkpoint-<step>`` folder under ``run_dir/checkpoints``, if any."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return None
    found = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-")[-1]), default=None)


def write_metrics(run_dir: Path, metrics: dict) -> None:
    """Write ``metrics.json`` (final evaluation, plus training summary)."""
    (run_dir / FINISHED_MARKER).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")


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

    ``task_section`` (markdown from the task's spec) replaces the default transformers pipeline usage block.
    """
    steps = [
        (e["step"], e["loss"])
        for e in read_events(run_dir / "events.jsonl")
        if e["event"] == "step" and isinstance(e.get("loss"), float | int)
    ]
    curve = ""
    if len(steps) >= 2:
        (run_dir / "loss_curve.svg").write_text(loss_curve_svg(steps), encoding="utf-8")
        curve = "\n## Training loss\n\n![training loss](loss_curve.svg)\n"
    base_is_local = Path(config.model.name).exists()
    front = {
        "library_name": library_name,
        "pipeline_tag": pipeline_tag,
        "tags": ["trainforge", config.task],
        # Only a Hub model id is a base model the Hub can link (tabular model families are not).
        **({"base_model": config.model.name} if library_name == "transformers" and not base_is_local else {}),
        **({"datasets": [config.data.source]} if not Path(config.data.source).exists() else {}),
    }
    rows = "\n".join(
        f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in sorted(metrics.items())
    )
    table = (
        f"| metric | value |\n|---|---|\n{rows}"
        if metrics
        else "No evaluation split was used, so there are no evaluation metrics."
    )
    label_line = f"Labels: {', '.join(labels.names)}.\n" if labels.problem_type.endswith("_classification") else ""
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
{yaml.safe_dump(front, sort_keys=False).strip()}
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
    """Upload the run directory (without checkpoints) to ``hub.repo_id``; returns the repository URL.

    The token comes from ``hub.token`` or the environment and is never written to disk.
    """
    from huggingface_hub import HfApi

    token = config.hub.token.get_secret_value() if config.hub.token else None
    api = HfApi(token=token)
    repo = api.create_repo(config.hub.repo_id, private=config.hub.private, exist_ok=True)
    api.upload_folder(
        folder_path=str(run_dir), repo_id=config.hub.repo_id, ignore_patterns=["checkpoints/*", "tensorboard/*"]
    )
    return str(repo)
