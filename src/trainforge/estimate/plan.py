"""``estimate``: the run's checks, counts, memory, measured speed, fit, and the settings that would fit.

Order: the driver's check phase (exactly what ``validate`` runs; a bad config or data fails here with its message),
the model without weights (``estimate/model.py``), the data's lengths (``estimate/lengths.py``), the memory formula
(``estimate/memory.py``), then -- only when the estimate fits this machine -- real optimizer steps for the speed
(``estimate/measure.py``). When the configured run does not fit, each change that would (gradient checkpointing,
LoRA, QLoRA, a smaller micro-batch with more accumulation keeping the global batch) is estimated on its own.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from trainforge.estimate import memory as mem
from trainforge.estimate.hardware import Device, check_memory_limit, process_bytes, visible_device
from trainforge.estimate.layers import architecture
from trainforge.estimate.lengths import Workload, workload
from trainforge.estimate.model import base_model, counts, with_lora
from trainforge.estimate.result import Alternative, Estimate, Memory, Speed, human

# Tasks whose trainer also holds a frozen reference model when no adapter is trained (TRL's DPOTrainer copies the
# policy; with LoRA the reference is the base with the adapter disabled, no second copy).
REFERENCE_MODEL_TASKS = ("llm_dpo",)
MAX_BATCH = 65536


@dataclasses.dataclass
class _Setting:
    """One variant of the run's settings and its model (meta device) for the memory formula."""

    config: Any
    model: Any
    overrides: list[str]


def estimate(config: Any, measure: bool = True, memory_limit: int | None = None) -> Estimate:
    """Estimate a validated config (``sdk.estimate`` loads and validates it first).

    Args:
        config: The ``RunConfig``.
        measure: Run real optimizer steps to measure the speed (skipped when the run would not fit).
        memory_limit: Bytes to plan for instead of the memory available now (e.g. another machine's).

    Raises:
        ConfigError, DataError: From the check phase, as ``validate`` raises them; ConfigError for a memory limit
            below one byte.
    """
    from trainforge.training.driver import check

    if memory_limit is not None:  # refused before the data checks, which can take a while
        check_memory_limit(memory_limit)
    checked = check(config)
    ctx, spec = checked.ctx, checked.spec
    runtime = process_bytes(cuda=_cuda())
    device = visible_device(memory_limit)
    if not spec.pretrained_model:
        return _data_only(checked, device)
    base = base_model(ctx)
    model = with_lora(ctx, base)
    work = workload(checked, model)
    setting = _Setting(config, model, [])
    numbers = counts(model)
    result = Estimate(
        task=config.task,
        model=config.model.name,
        applies=True,
        device=device.name,
        notes=list(checked.notes) + work.notes,
        total_params=numbers.total,
        trainable_params=numbers.trainable,
        weights_dtype=_dtype_name(model, config),
        batch_size=config.training.per_device_train_batch_size,
        gradient_accumulation_steps=config.training.gradient_accumulation_steps,
        sequence=work.describe(config.training.per_device_train_batch_size, _grouped(config)),
        available_bytes=device.available,
        runtime_bytes=runtime,
    )
    result.notes += list(architecture(model).notes) if work.images is None else []
    if work.images is not None and _traced_per_example(model, work) is None:
        result.notes.append(
            "the image model's forward pass does not run on the meta device, so its activations are not in the "
            "memory figures; the measured steps report what training added"
        )
    result.memory = _memory(ctx, setting, base, work, device, config.training.per_device_train_batch_size)
    result.fits = runtime + result.memory.peak <= device.available
    untraced = work.images is not None and _traced_per_example(model, work) is None
    result.largest_batch = None if untraced else _largest_batch(ctx, setting, base, work, device, runtime)
    result.notes += _batch_notes(config, result, device)
    if measure:
        _measure(checked, work, device, result, runtime)
    if not result.fits:
        result.alternatives = _alternatives(ctx, base, model, work, device, runtime)
        if not any(a.fits for a in result.alternatives):
            result.notes.append("no single change or combination tried fits: a machine with more memory is needed")
    return result


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _grouped(config: Any) -> bool:
    return config.training.train_sampling_strategy == "group_by_length"


def _dtype_name(model: Any, config: Any) -> str:
    """The weights' storage: the base's dtype, or NF4/int8 for QLoRA."""
    quantization = config.peft.quantization if config.peft.enabled else None
    if quantization:
        return "nf4 (4-bit)" if quantization == "int4" else "int8"
    frozen = [p for p in model.parameters() if not p.requires_grad]
    dtype = (frozen or list(model.parameters()))[0].dtype
    return str(dtype).replace("torch.", "")


# ---------------------------------------------------------------------------------------------------- memory


def _memory(ctx: Any, setting: _Setting, base: Any, work: Workload, device: Device, batch: int) -> Memory:
    """The formula's breakdown for ``setting`` at a per-device ``batch`` (``estimate/memory.py``)."""
    from trainforge.training.arguments import resolve_precision

    config, model = setting.config, setting.model
    quantization = config.peft.quantization if config.peft.enabled else None
    resolved = resolve_precision(config.training.precision)
    # An LLM's LoRA base loads in the half precision it trains in (tasks/llm/_models.torch_dtype).
    half_base = ctx.spec.lora_by_trainer and config.peft.enabled and resolved in ("bf16", "fp16")
    weights, gradients = mem.parameter_bytes(model, quantization, 2 if half_base else None)
    optimizer = mem.optimizer_bytes(model, config.training.optim)
    reference = 0
    if ctx.spec.name in REFERENCE_MODEL_TASKS and (not config.peft.enabled or config.params.model_ref):
        reference = mem.parameter_bytes(base, None)[0]
    arch = architecture(model)
    precision = mem.precision_of(resolved, device.cuda)
    attention = getattr(_model_config(model), "_attn_implementation", None) or "eager"
    head = _lm_head(ctx.spec)
    mini = getattr(config.params, "cached_mini_batch_size", None)
    forward_batch = min(batch, mini) if mini else batch  # GradCache: activations of one mini-batch at a time
    passes = work.passes(forward_batch, peak=True)
    activations = mem.activation_bytes(arch, passes, forward_batch, precision, attention, head, checkpointing=False)
    checkpointed = mem.activation_bytes(arch, passes, forward_batch, precision, attention, head, checkpointing=True)
    per_image = _traced_per_example(model, work)
    if per_image:  # image models: the meta-device trace (estimate/trace.py); checkpointing is not modelled there
        activations += int(per_image * forward_batch)
        checkpointed += int(per_image * forward_batch)
    checkpointing = config.training.gradient_checkpointing
    if _world(config) > 1 and config.compute.strategy == "ddp":
        gradients *= 2  # DDP's reducer keeps the gradients in buckets beside the parameters' .grad (a copy)
    return mem.total_memory(
        weights, gradients, optimizer, activations, checkpointed, device.cuda, checkpointing, reference
    )


_TRACES: dict[tuple[int, int], float | None] = {}


def _traced_per_example(model: Any, work: Workload) -> float | None:
    """Leaf-output bytes per image example (``estimate/trace.py``), traced once per model and batch."""
    if work.images is None:
        return None
    key = (id(model), id(work.images))
    if key not in _TRACES:
        from trainforge.estimate.trace import leaf_output_bytes

        traced = leaf_output_bytes(model, work.images)
        examples = len(work.images["pixel_values"])
        _TRACES.clear()  # one run's model at a time
        _TRACES[key] = None if traced is None else traced / examples
    return _TRACES[key]


def _lm_head(spec: Any) -> str | None:
    """How the task's trainer turns hidden states into the loss: TRL's fused head, transformers' logits, or neither.

    The TRL trainers that compute log-probabilities from the output layer's weight (``_FUSED_OUTPUT_TRAINERS``, the
    same list that keeps LoRA off that layer) use the fused head; other generative tasks compute full logits.
    """
    from trainforge.models.config_checks import _FUSED_OUTPUT_TRAINERS

    if spec.name in _FUSED_OUTPUT_TRAINERS:
        return "trl"
    if spec.pipeline_tag in ("text-generation", "text2text-generation"):
        return "hf"
    return None


def _model_config(model: Any) -> Any:
    config = getattr(model, "config", None)
    if config is not None:
        return config
    return next((m.config for m in model.modules() if hasattr(getattr(m, "config", None), "to_dict")), None)


def _largest_batch(ctx: Any, setting: _Setting, base: Any, work: Workload, device: Device, runtime: int) -> int | None:
    """The largest per-device batch whose estimate fits (None when even 1 does not), by doubling then bisection."""

    def fits(batch: int) -> bool:
        return runtime + _memory(ctx, setting, base, work, device, batch).peak <= device.available

    if not fits(1):
        return None
    low = 1
    while low < MAX_BATCH and fits(low * 2):
        low *= 2
    high = min(low * 2, MAX_BATCH + 1)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def _world(config: Any) -> int:
    """Training processes in all (``compute.num_processes`` x ``compute.num_machines``)."""
    return config.compute.num_processes * config.compute.num_machines


def _batch_notes(config: Any, result: Estimate, device: Device) -> list[str]:
    notes = []
    world = _world(config)
    if world > 1:
        notes.append(
            f"{world} training processes: memory is per process (DDP's gradient buckets included); steps per epoch "
            "divide among them, and the step time was measured in one process"
            + (
                f"; {config.compute.strategy} sharding is not modelled: the figures are for unsharded training, an "
                "upper bound"
                if config.compute.strategy != "ddp"
                else ""
            )
        )
    if config.training.auto_find_batch_size:
        found = result.largest_batch
        notes.append(
            "training.auto_find_batch_size is on: transformers retries the step with the batch x0.9 after an "
            "out-of-memory error"
            + (
                " (CUDA raises one; on CPU the kernel's OOM killer ends the process instead, so plan by this estimate)"
                if not device.cuda
                else ""
            )
            + (f"; by this estimate the largest batch that fits is {found}" if found else "")
        )
    if device.limited:
        notes.append(f"planned for a memory limit of {human(device.available)} (--memory-limit), not this machine's")
    return notes


# ---------------------------------------------------------------------------------------------------- speed


def _measure(checked: Any, work: Workload, device: Device, result: Estimate, runtime: int) -> None:
    from trainforge.estimate.measure import WARM_STEPS, measure_steps, median

    memory = result.memory
    assert memory is not None
    real = visible_device(None)
    if not result.fits or runtime + memory.peak > real.available:
        limit = device.available if not result.fits else real.available
        result.notes.append(f"speed not measured: by this estimate the run does not fit in {human(limit)}")
        return
    measured = measure_steps(checked, work.prepared)
    config = checked.ctx.config
    step = median(measured.step_seconds)
    per_process = config.training.per_device_train_batch_size * config.training.gradient_accumulation_steps
    steps_per_epoch = math.ceil(work.examples / (per_process * _world(config)))
    samples = per_process / step if step else 0.0  # one process measured; several each take their share
    result.speed = Speed(
        device=real.name,
        step_s=step,
        steps_timed=len(measured.step_seconds),
        steps_warm=WARM_STEPS,
        samples_per_s=samples,
        tokens_per_s=samples * work.tokens_per_example if work.tokens_per_example else None,
        steps_per_epoch=steps_per_epoch,
        epoch_s=steps_per_epoch * step,
        measured_peak_bytes=measured.peak_bytes,
    )
    if config.training.max_steps > 0:
        result.notes.append(
            f"training.max_steps {config.training.max_steps}: the run stops after "
            f"{config.training.max_steps * step / 60:.1f} min of training steps"
        )


# ---------------------------------------------------------------------------------------------------- alternatives


def _alternatives(
    ctx: Any, base: Any, run_model: Any, work: Workload, device: Device, runtime: int
) -> list[Alternative]:
    """Each change that could make the run fit, estimated alone; then combinations if no single change fits."""
    config, spec = ctx.config, ctx.spec
    training = config.training
    changes: list[tuple[str, dict[str, Any], str]] = []
    if not training.gradient_checkpointing:
        changes.append(("gradient checkpointing", {"gradient_checkpointing": True}, ""))
    if spec.lora is not None and not config.peft.enabled:
        changes.append(("LoRA", {"peft.enabled": True}, ""))
    peft_fields = spec.fields_applying("peft")
    if (
        spec.lora is not None
        and (peft_fields is None or "quantization" in peft_fields)
        and not config.peft.quantization
    ):
        changes.append(
            ("QLoRA (4-bit base)", {"peft.enabled": True, "peft.quantization": "int4"}, _qlora_note(device))
        )
    out = [
        _alternative(ctx, base, run_model, work, device, runtime, name, change, note) for name, change, note in changes
    ]
    out.append(_smaller_batch(ctx, base, run_model, work, device, runtime, {}, "smaller micro-batch"))
    if any(a.fits for a in out):
        return out
    # Nothing alone fits: stack the changes (checkpointing, LoRA, QLoRA), each stack also with a smaller batch.
    stacked: dict[str, Any] = {}
    names: list[str] = []
    for index, (name, change, note) in enumerate(changes):
        stacked.update(change)
        names.append(name)
        if index:
            combined = _alternative(
                ctx, base, run_model, work, device, runtime, " + ".join(names), dict(stacked), note
            )
            out.append(combined)
            if combined.fits:
                return out
        label = " + ".join(names) + " + smaller micro-batch"
        smaller = _smaller_batch(ctx, base, run_model, work, device, runtime, dict(stacked), label)
        out.append(smaller)
        if smaller.fits:
            return out
    return out


def _qlora_note(device: Device) -> str:
    return "" if device.cuda else "QLoRA needs a CUDA GPU and bitsandbytes: not on this machine"


def _variant(ctx: Any, base: Any, run_model: Any, change: dict[str, Any]) -> tuple[_Setting, Any]:
    """The config with ``change`` applied (``section.field`` or a training field) and its model."""
    config = ctx.config
    training = {k: v for k, v in change.items() if "." not in k}
    peft = {k.split(".", 1)[1]: v for k, v in change.items() if k.startswith("peft.")}
    updated = config.model_copy(
        update={
            "training": config.training.model_copy(update=training),
            "peft": config.peft.model_copy(update=peft),
        }
    )
    variant_ctx = dataclasses.replace(ctx, config=updated)
    model = with_lora(variant_ctx, base) if peft else run_model
    overrides = [f"{k if '.' in k else 'training.' + k}={_yaml(v)}" for k, v in change.items()]
    return _Setting(updated, model, overrides), variant_ctx


def _yaml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _alternative(
    ctx: Any,
    base: Any,
    run_model: Any,
    work: Workload,
    device: Device,
    runtime: int,
    name: str,
    change: dict[str, Any],
    note: str,
) -> Alternative:
    setting, variant_ctx = _variant(ctx, base, run_model, change)
    batch = setting.config.training.per_device_train_batch_size
    memory = _memory(variant_ctx, setting, base, work, device, batch)
    fits = runtime + memory.peak <= device.available and not note
    return Alternative(name, setting.overrides, memory, fits, note)


def _smaller_batch(
    ctx: Any,
    base: Any,
    run_model: Any,
    work: Workload,
    device: Device,
    runtime: int,
    change: dict[str, Any],
    name: str,
) -> Alternative:
    """The largest micro-batch dividing the global batch that fits, with the accumulation that keeps it."""
    training = ctx.config.training
    global_batch = training.per_device_train_batch_size * training.gradient_accumulation_steps
    setting, variant_ctx = _variant(ctx, base, run_model, change)
    note = _qlora_note(device) if change.get("peft.quantization") else ""
    candidates = [b for b in range(training.per_device_train_batch_size - 1, 0, -1) if global_batch % b == 0]
    chosen, memory = 1, None
    for batch in candidates:
        memory = _memory(variant_ctx, setting, base, work, device, batch)
        chosen = batch
        if runtime + memory.peak <= device.available:
            break
    if memory is None:  # the batch is already 1
        memory = _memory(variant_ctx, setting, base, work, device, 1)
    accumulation = global_batch // chosen
    overrides = setting.overrides + [
        f"training.per_device_train_batch_size={chosen}",
        f"training.gradient_accumulation_steps={accumulation}",
    ]
    fits = runtime + memory.peak <= device.available and not note
    return Alternative(name, overrides, memory, fits, note or f"global batch kept at {global_batch}")


# ---------------------------------------------------------------------------------------------------- tabular


def _data_only(checked: Any, device: Device) -> Estimate:
    """Tabular tasks: no network to estimate; the loaded data's size and why the rest does not apply."""
    frames = [frame for _, frame, _ in checked.splits.present()]
    data = int(sum(frame.memory_usage(deep=True).sum() for frame in frames))
    config = checked.ctx.config
    return Estimate(
        task=config.task,
        model=config.model.name,
        applies=False,
        device=device.name,
        available_bytes=device.available,
        data_bytes=data,
        notes=list(checked.notes)
        + [
            "does not apply: tabular models (gradient-boosted trees, scikit-learn estimators) have no parameters, "
            "gradients or activations to estimate; their memory is bound by the data (a few copies of the loaded "
            "table while features are encoded and folds are cut) and the search's time by params.time_limit and "
            "params.num_trials"
        ],
    )
