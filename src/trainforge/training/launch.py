"""One launch for every task: ``trainforge train`` re-launched through accelerate's launcher, or sent to SLURM.

    trainforge train cfg.yaml compute.num_processes=2
      -> check (config and data, once, before any process starts)
      -> accelerate launch --multi_gpu --num_processes 2 ... -m trainforge train cfg.yaml compute.num_processes=2
         (accelerate's own ``launch_command``, in this process: it owns the environment of the workers)
      -> each worker runs the driver's phases; the main process writes the run (training/distributed.py)

The workers see ``WORLD_SIZE``/``LOCAL_RANK`` (set by the launcher), so they train instead of launching again;
a ``trainforge train`` started by the user's own ``accelerate launch``, ``torchrun`` or ``srun`` does the same.
``compute.launcher: slurm`` submits the same command to SLURM (training/slurm.py), where each node's task
launches its processes through this same function.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from trainforge.config.schema import RunConfig
from trainforge.errors import ConfigError, TrainforgeError

# Set by the SLURM task (training/slurm.py) for the `trainforge train` it starts on each node.
MACHINE_RANK_ENV = "TRAINFORGE_MACHINE_RANK"
MAIN_IP_ENV = "TRAINFORGE_MAIN_PROCESS_IP"
LAUNCHED_ENV = "TRAINFORGE_LAUNCHED"  # set for the processes launch() starts: the launching process reports the result
MULTI_MACHINE_PORT = 29500  # accelerate's and torchrun's default; every machine must use the same one
FSDP_WRAP = {"transformer_layer": "TRANSFORMER_BASED_WRAP", "size": "SIZE_BASED_WRAP"}


class LaunchFailedError(TrainforgeError):
    """A launched training process failed; its own message (and the run's events) say why."""


def inside_launch() -> bool:
    """Whether this process is one of a launched group (the launcher set ``LOCAL_RANK``/``WORLD_SIZE``)."""
    return "LOCAL_RANK" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def reports_result() -> bool:
    """Whether this process prints the run's outcome: not a launched worker (its launcher does), not a rank > 0."""
    if not inside_launch():
        return True
    return LAUNCHED_ENV not in os.environ and os.environ.get("RANK", "0") == "0"


def in_slurm_task() -> bool:
    """Whether this ``trainforge train`` is the one a SLURM task of ours started on its node."""
    return MACHINE_RANK_ENV in os.environ


def wants_launch(config: RunConfig) -> bool:
    """Whether ``trainforge train`` must start other processes (or a SLURM job) instead of training itself."""
    if inside_launch():
        return False
    compute = config.compute
    if compute.launcher == "slurm" and not in_slurm_task():
        return True
    return compute.world_size > 1 or compute.strategy != "ddp" or compute.accelerate_config is not None


def train_command(
    config_path: str, overrides: list[str] | tuple[str, ...] = (), resume: bool = False, no_env: bool = False
) -> list[str]:
    """The ``trainforge`` arguments that run this config again in another process (``train CONFIG ...``)."""
    return ["train", config_path, *overrides, *(["--resume"] if resume else []), *(["--no-env"] if no_env else [])]


def accelerate_arguments(config: RunConfig, command: list[str], machine_rank: int | None = None) -> list[str]:
    """The arguments of ``accelerate launch`` that start this run's processes on one machine.

    Args:
        config: The validated config.
        command: The ``trainforge`` arguments each process runs (``train_command``).
        machine_rank: Which machine this launch is for (default: ``compute.machine_rank``, or the SLURM node's).

    Returns:
        ``[--multi_gpu|--use_fsdp|--use_deepspeed|--config_file, ...options, -m, trainforge, *command]``.
    """
    compute = config.compute
    rank = _machine_rank(config) if machine_rank is None else machine_rank
    args: list[str] = []
    if compute.accelerate_config:
        args += ["--config_file", compute.accelerate_config, *_overrides_of_file(config)]
    else:
        args += _strategy_arguments(config)
        args += ["--num_processes", str(compute.world_size), "--num_machines", str(compute.num_machines)]
    machines = _machines(config)
    if machines > 1:
        port = compute.main_process_port or MULTI_MACHINE_PORT
        args += [
            "--machine_rank",
            str(rank),
            "--main_process_ip",
            str(_main_ip(config)),
            "--main_process_port",
            str(port),
        ]
    elif not compute.accelerate_config or compute.main_process_port:
        # 0: accelerate picks a free port when it starts the processes (two runs on one machine do not collide).
        args += ["--main_process_port", str(compute.main_process_port or 0)]
    args += ["--mixed_precision", _mixed_precision(config), "--dynamo_backend", "no"]
    return [*args, "-m", "trainforge", *command]


def _strategy_arguments(config: RunConfig) -> list[str]:
    """The ``accelerate launch`` flags for ``compute.strategy`` and its options."""
    compute, training = config.compute, config.training
    if compute.strategy == "ddp":
        return ["--multi_gpu"]  # accelerate's torchrun launcher; CPU-only processes use gloo
    if compute.strategy == "fsdp":
        sharding = compute.fsdp_sharding
        reshard = sharding.upper() if compute.fsdp_version == 1 else str(sharding == "full_shard").lower()
        args = [
            "--use_fsdp",
            "--fsdp_version",
            str(compute.fsdp_version),
            "--fsdp_reshard_after_forward",
            reshard,
            "--fsdp_offload_params",
            str(compute.fsdp_offload_params).lower(),
            "--fsdp_auto_wrap_policy",
            FSDP_WRAP[compute.fsdp_auto_wrap],
        ]
        if compute.fsdp_auto_wrap == "size":
            args += ["--fsdp_min_num_params", str(compute.fsdp_min_num_params)]
        elif compute.fsdp_layer_class:
            args += ["--fsdp_transformer_layer_cls_to_wrap", compute.fsdp_layer_class]
        # The run directory holds a plain model (one file set, loadable without trainforge): full state dicts.
        args += ["--fsdp_state_dict_type", "FULL_STATE_DICT"]
        # training.gradient_checkpointing becomes FSDP's activation checkpointing (the Trainer's own would repeat
        # the all-gathers); training_arguments turns the Trainer's off under FSDP.
        args += ["--fsdp_activation_checkpointing", str(training.gradient_checkpointing).lower()]
        return args
    args = [
        "--use_deepspeed",
        "--zero_stage",
        str(compute.deepspeed_stage),
        "--offload_optimizer_device",
        compute.deepspeed_offload_optimizer,
        "--offload_param_device",
        compute.deepspeed_offload_params,
        "--gradient_accumulation_steps",
        str(training.gradient_accumulation_steps),
        "--gradient_clipping",
        str(training.max_grad_norm),
    ]
    if compute.deepspeed_nvme_path:
        args += ["--offload_optimizer_nvme_path", compute.deepspeed_nvme_path]
        args += ["--offload_param_nvme_path", compute.deepspeed_nvme_path]
    if compute.deepspeed_stage == 3:
        # Gathered 16-bit weights on save: the run directory holds a model plain transformers loads.
        args += ["--zero3_init_flag", "true", "--zero3_save_16bit_model", "true"]
    return args


def _overrides_of_file(config: RunConfig) -> list[str]:
    """The compute keys set explicitly, which override the user's accelerate config file."""
    from trainforge.config.compute import _changed

    compute, changed = config.compute, _changed(config.compute)
    if not changed & {"num_processes", "num_machines"}:
        return []
    machines = _machines(config)
    per_machine = compute.num_processes if "num_processes" in changed else _file(config).num_processes // machines
    return ["--num_processes", str(per_machine * machines), "--num_machines", str(machines)]


def _file(config: RunConfig) -> Any:
    """The user's accelerate config (``compute.accelerate_config``), read by accelerate itself.

    Raises:
        ConfigError: The file is missing or accelerate cannot read it.
    """
    from accelerate.commands.config.config_args import load_config_from_file

    path = config.compute.accelerate_config
    if not path or not Path(path).is_file():
        raise ConfigError([("compute.accelerate_config", f"{path} is not a file; write one with `accelerate config`")])
    try:
        return load_config_from_file(path)
    except (TypeError, ValueError, KeyError, OSError) as exc:  # accelerate's dataclass rejects unknown/missing keys
        raise ConfigError(
            [
                (
                    "compute.accelerate_config",
                    f"{path} is not an accelerate config ({exc}); make one with accelerate config",
                )
            ]
        ) from None


def _machines(config: RunConfig) -> int:
    compute = config.compute
    if compute.accelerate_config and compute.num_machines == 1:
        return int(_file(config).num_machines or 1)
    return compute.num_machines


def _machine_rank(config: RunConfig) -> int:
    if in_slurm_task():
        return int(os.environ[MACHINE_RANK_ENV])
    return config.compute.machine_rank


def _main_ip(config: RunConfig) -> str | None:
    if in_slurm_task():
        return os.environ.get(MAIN_IP_ENV)
    if config.compute.main_process_ip is None and config.compute.accelerate_config:
        return _file(config).main_process_ip
    return config.compute.main_process_ip


def _mixed_precision(config: RunConfig) -> str:
    """The ``--mixed_precision`` of ``training.precision`` (the Trainer's own setting comes from the same key)."""
    precision: str = config.training.precision
    if precision == "auto":
        from trainforge.training.arguments import resolve_precision

        precision = resolve_precision("auto")  # resolved where the processes run: the launching machine
    return {"fp32": "no"}.get(precision, precision)


def check_compute_environment(config: RunConfig) -> None:
    """What only this machine can say about ``compute:``: deepspeed installed, GPUs, accelerate file, submitit, sbatch.

    Raises:
        ConfigError: Naming the key and the fix (an install command, a smaller process count).
    """
    import importlib.util

    compute = config.compute
    problems: list[tuple[str, str]] = []
    submitting = compute.launcher == "slurm" and not in_slurm_task() and not inside_launch()
    if compute.launcher == "slurm" and not inside_launch():
        from trainforge.training.slurm import slurm_problems

        problems += slurm_problems(config, submitting)
    if compute.accelerate_config:
        _file(config)  # raises naming the key
    if not submitting:  # on the machine that trains: its packages and devices
        problems += _device_problems(config, importlib.util.find_spec("deepspeed") is not None)
    if problems:
        raise ConfigError(problems)


def _device_problems(config: RunConfig, deepspeed_installed: bool) -> list[tuple[str, str]]:
    import torch

    compute = config.compute
    if compute.strategy == "deepspeed" and not deepspeed_installed:
        return [
            (
                "compute.strategy",
                "deepspeed is not installed: pip install deepspeed (on the GPU machines; it builds CUDA ops), "
                "or use strategy fsdp, which needs nothing more",
            )
        ]
    cuda = torch.cuda.is_available()
    if compute.strategy == "deepspeed" and not cuda:
        return [("compute.strategy", "deepspeed trains on CUDA GPUs and none is visible; use ddp or fsdp on CPU")]
    if inside_launch():
        return []  # the launching process checked the counts; a user's own launcher decides them
    if cuda and compute.num_processes > torch.cuda.device_count():
        return [
            (
                "compute.num_processes",
                f"{compute.num_processes} processes but this machine has {torch.cuda.device_count()} GPU(s): one "
                "process per GPU",
            )
        ]
    cores = os.cpu_count() or 1
    if not cuda and compute.num_processes > cores:
        return [
            (
                "compute.num_processes",
                f"{compute.num_processes} CPU processes but this machine has {cores} core(s): at most one per core",
            )
        ]
    return []


def launch(config: RunConfig, command: list[str]) -> None:
    """Start the run's processes on this machine with accelerate's ``launch_command`` and wait for them.

    accelerate parses the same arguments ``render`` prints and sets up every worker's environment (ranks,
    rendezvous, FSDP/DeepSpeed variables); it starts them with torch's elastic launcher, which stops the others
    when one fails.

    Raises:
        LaunchFailedError: A process failed (its traceback was printed by that process).
    """
    from accelerate.commands.launch import launch_command, launch_command_parser

    arguments = launch_command_parser().parse_args(accelerate_arguments(config, command))
    os.environ[LAUNCHED_ENV] = "1"  # accelerate copies this environment into every worker's
    try:
        launch_command(arguments)
    except Exception as exc:  # noqa: BLE001 - torch's ChildFailedError, subprocess.CalledProcessError: reported once
        if type(exc).__name__ == "SignalException":  # SIGTERM/SIGINT to the launcher: the workers stopped too
            raise KeyboardInterrupt from None
        if type(exc).__name__ not in ("ChildFailedError", "CalledProcessError"):
            raise
        raise LaunchFailedError(
            f"a training process failed ({type(exc).__name__}); its error is printed above and, once the run had "
            f"started, recorded in {Path(config.output.dir) / 'events.jsonl'}"
        ) from None
    finally:
        os.environ.pop(LAUNCHED_ENV, None)


def launch_run(config: RunConfig, resume: bool = False, command: list[str] | None = None):
    """Check the config and data here, then run the processes (or submit the SLURM job) and collect the result.

    Args:
        config: The validated config.
        resume: Continue from the run's last checkpoint (passed on to every process).
        command: The ``trainforge`` arguments that reproduce this run (the CLI's own); None (the SDK) writes the
            resolved config to a temporary file the processes read.

    Returns:
        The ``RunResult`` read back from the run directory (for a SLURM submission that does not wait, its job ids
        and no metrics).
    """
    from trainforge.training.driver import RunResult, check

    started = time.monotonic()
    checked = check(config)  # a bad config or data fails here, once, before any process or job starts
    with tempfile.TemporaryDirectory(prefix="trainforge-launch-") as scratch:
        if command is None:
            command = _resolved_command(config, resume, Path(scratch))
        if config.compute.launcher == "slurm" and not in_slurm_task():
            from trainforge.training.slurm import submit

            return submit(checked, command, resume)
        if not config.search.trials:
            from trainforge.training.artifacts import prepare_run_dir

            prepare_run_dir(config, resume, dry_run=True)  # a run directory in the way fails here, not in N processes
        launch(config, command)
    run_dir = Path(config.output.dir)
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    splits = checked.splits
    eval_rows = 0 if splits.eval is None else len(splits.eval)
    return RunResult(
        run_dir, metrics, checked.labels, len(splits.train), eval_rows, duration_s=time.monotonic() - started
    )


def _resolved_command(config: RunConfig, resume: bool, folder: Path) -> list[str]:
    from trainforge.config.loading import write_resolved

    path = folder / "config.yaml"
    write_resolved(config, path)
    return train_command(str(path), resume=resume, no_env=True)


def render(config: RunConfig, command: list[str]) -> str:
    """What ``trainforge train ... --print-launch`` prints: the exact commands (and SLURM submission) of this run."""
    compute = config.compute
    if compute.launcher == "slurm" and not in_slurm_task():
        from trainforge.training.slurm import render_submission

        return render_submission(config, command)
    own = shlex.join(["trainforge", *command])
    if not wants_launch(config):
        return f"# one process on this machine: no launcher\n{own}\n"
    machines = _machines(config)
    lines = []
    if machines == 1:
        count = f"{compute.world_size} process(es)"
        if compute.accelerate_config:
            count = f"the processes of {compute.accelerate_config} ({_file(config).num_processes} there)"
        lines += [f"# {count} on this machine, through accelerate's launcher:"]
        lines += [shlex.join(["accelerate", "launch", *accelerate_arguments(config, command)])]
    else:
        lines += [
            f"# {machines} machines x {compute.num_processes} process(es); the machine of rank 0 "
            f"({_main_ip(config)}) writes the run. On each machine run its own command (same config, data and "
            "output.dir on a shared filesystem):"
        ]
        for rank in range(machines):
            mine = [*command, f"compute.machine_rank={rank}"] if rank != compute.machine_rank else command
            lines += ["", f"# machine {rank}:", shlex.join(["trainforge", *mine]), "# which runs:"]
            lines += [shlex.join(["accelerate", "launch", *accelerate_arguments(config, mine, machine_rank=rank)])]
    return "\n".join(lines) + "\n"


def print_launch(config: RunConfig, command: list[str]) -> None:
    """Print ``render`` to stdout."""
    sys.stdout.write(render(config, command))
