"""What ``trainforge estimate`` reports: plain dataclasses with ``to_dict()`` (JSON, the web app) and ``summary()``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

GIB = 2**30
MIB = 2**20


def human(size: float | None) -> str:
    """Bytes as ``12.3 MiB`` / ``4.56 GiB``; ``n/a`` for None."""
    if size is None:
        return "n/a"
    if abs(size) >= GIB:
        return f"{size / GIB:.2f} GiB"
    return f"{size / MIB:.1f} MiB"


@dataclass
class Memory:
    """Peak memory of one training step, in bytes, by component (see ``estimate/memory.py`` for each formula).

    ``peak`` is the sum of the components; ``activations`` is at the longest batch of the data (every sequence of
    some batch padded to the data's longest, capped by the task's length limit), ``activations_checkpointed`` the
    same with gradient checkpointing, and ``peak_checkpointed`` the peak with it. ``overhead`` is the runtime's
    own growth (allocator, Trainer, data), a constant calibrated per device kind.
    """

    weights: int
    gradients: int
    optimizer: int
    activations: int
    activations_checkpointed: int
    overhead: int
    reference_model: int = 0
    checkpointing: bool = False  # whether the config turns gradient checkpointing on (the peak uses that column)

    @property
    def peak(self) -> int:
        """Peak bytes of the step as configured."""
        return self._total(self.activations_checkpointed if self.checkpointing else self.activations)

    @property
    def peak_without_checkpointing(self) -> int:
        """Peak bytes without gradient checkpointing."""
        return self._total(self.activations)

    @property
    def peak_with_checkpointing(self) -> int:
        """Peak bytes with gradient checkpointing."""
        return self._total(self.activations_checkpointed)

    def _total(self, activations: int) -> int:
        return self.weights + self.reference_model + self.gradients + self.optimizer + activations + self.overhead

    def to_dict(self) -> dict[str, Any]:
        """Every component plus the three peaks, in bytes."""
        return {
            **asdict(self),
            "peak_bytes": self.peak,
            "peak_without_checkpointing_bytes": self.peak_without_checkpointing,
            "peak_with_checkpointing_bytes": self.peak_with_checkpointing,
        }


@dataclass
class Speed:
    """Measured throughput: real optimizer steps on a slice of the training data, on the visible device."""

    device: str
    step_s: float  # median wall seconds of the timed optimizer steps
    steps_timed: int
    steps_warm: int
    samples_per_s: float
    tokens_per_s: float | None
    steps_per_epoch: int
    epoch_s: float  # steps_per_epoch x step_s (training steps only: evaluation and saving are not included)
    measured_peak_bytes: int | None = None  # memory those steps added (CPU: RSS growth; CUDA: max allocated)

    def to_dict(self) -> dict[str, Any]:
        """All fields."""
        return asdict(self)


@dataclass
class Alternative:
    """A change of settings and its own memory estimate (the overrides reproduce it: ``trainforge train ... K=V``)."""

    name: str
    overrides: list[str]
    memory: Memory
    fits: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Name, overrides, memory, whether it fits."""
        return {
            "name": self.name,
            "overrides": self.overrides,
            "memory": self.memory.to_dict(),
            "fits": self.fits,
            "note": self.note,
        }


@dataclass
class Estimate:
    """``trainforge estimate``'s answer for one config; ``to_dict()`` is what ``--json`` prints and the app renders.

    ``applies`` is False for tasks without a pretrained network (tabular): then only ``data_bytes`` and the notes say
    anything.
    """

    task: str
    model: str
    applies: bool
    device: str
    notes: list[str] = field(default_factory=list)
    total_params: int | None = None
    trainable_params: int | None = None
    weights_dtype: str | None = None
    batch_size: int | None = None  # per device
    gradient_accumulation_steps: int | None = None
    sequence: dict[str, Any] = field(default_factory=dict)  # lengths per input stream (typical, peak, limit)
    memory: Memory | None = None
    available_bytes: int | None = None
    runtime_bytes: int = 0  # what a fresh process holds before training (imports), counted against available
    fits: bool | None = None
    largest_batch: int | None = None  # the largest per-device batch whose estimate fits
    speed: Speed | None = None
    alternatives: list[Alternative] = field(default_factory=list)
    data_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (bytes as integers; None where a figure does not apply)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("memory", "speed", "alternatives")}
        out["memory"] = None if self.memory is None else self.memory.to_dict()
        out["speed"] = None if self.speed is None else self.speed.to_dict()
        out["alternatives"] = [a.to_dict() for a in self.alternatives]
        out["summary"] = self.summary()
        return out

    def summary(self) -> str:
        """Human-readable lines for the CLI."""
        lines = [f"estimate: task {self.task}, model {self.model}, device {self.device}"]
        if not self.applies:
            lines.append(f"loaded data: {human(self.data_bytes)}")
            return "\n".join(lines + [f"note: {n}" for n in self.notes])
        share = 100 * (self.trainable_params or 0) / max(1, self.total_params or 1)
        lines.append(
            f"parameters: {self.total_params:,} total, {self.trainable_params:,} trainable ({share:.2f}%); "
            f"weights {self.weights_dtype}"
        )
        lines.append(
            f"batch: {self.batch_size} per device x {self.gradient_accumulation_steps} accumulation"
            + ("; " if self.sequence else "")
            + "; ".join(
                f"{name} tokens: typical {info['typical']}, longest {info['peak']}"
                + (f" (limit {info['limit']})" if info.get("limit") else "")
                for name, info in self.sequence.items()
            )
        )
        memory = self.memory
        if memory is not None:
            lines += [
                "peak memory (one training step):",
                f"  weights        {human(memory.weights)}",
                *([f"  reference model {human(memory.reference_model)}"] if memory.reference_model else []),
                f"  gradients      {human(memory.gradients)}",
                f"  optimizer      {human(memory.optimizer)}",
                f"  activations    {human(memory.activations)} "
                f"(with gradient checkpointing {human(memory.activations_checkpointed)})",
                f"  runtime        {human(memory.overhead)}",
                f"  total          {human(memory.peak)}"
                + (" (gradient checkpointing on)" if memory.checkpointing else "")
                + f"; with checkpointing {human(memory.peak_with_checkpointing)}, "
                f"without {human(memory.peak_without_checkpointing)}",
            ]
        if self.fits is not None:
            verdict = "fits" if self.fits else "does NOT fit"
            needed = (memory.peak if memory else 0) + self.runtime_bytes
            lines.append(
                f"{verdict}: needs {human(needed)} (incl. {human(self.runtime_bytes)} for the process itself) of "
                f"{human(self.available_bytes)} available"
            )
        if self.largest_batch is not None:
            lines.append(f"largest per-device batch that fits: {self.largest_batch}")
        if self.speed is not None:
            speed = self.speed
            tokens = f", {speed.tokens_per_s:,.0f} tokens/s" if speed.tokens_per_s else ""
            lines.append(
                f"speed (measured: {speed.steps_timed} steps after {speed.steps_warm} warm-up, {speed.device}): "
                f"{speed.step_s:.3f} s/step, {speed.samples_per_s:,.1f} samples/s{tokens}; "
                f"{speed.steps_per_epoch:,} steps/epoch -> {_duration(speed.epoch_s)} per epoch (training steps only)"
            )
            if speed.measured_peak_bytes is not None:
                lines.append(f"memory those steps added: {human(speed.measured_peak_bytes)}")
        if self.alternatives:
            lines.append("settings that fit:" if any(a.fits for a in self.alternatives) else "settings tried:")
            for alternative in self.alternatives:
                mark = "fits" if alternative.fits else "too big"
                lines.append(
                    f"  {alternative.name}: {human(alternative.memory.peak)} ({mark})  "
                    f"{' '.join(alternative.overrides)}" + (f"  [{alternative.note}]" if alternative.note else "")
                )
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"
