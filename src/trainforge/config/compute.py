"""Checks of the ``compute:`` section that need the whole config (and the task), not this machine.

What only this machine can answer (is deepspeed importable, does the accelerate config file exist, is submitit
installed) is checked by ``training.launch.check_compute_environment`` in the check phase, so that
``--print-launch`` can still render a launch for another machine.
"""

from __future__ import annotations

from typing import Any

FSDP_KEYS = (
    "fsdp_version",
    "fsdp_sharding",
    "fsdp_offload_params",
    "fsdp_auto_wrap",
    "fsdp_layer_class",
    "fsdp_min_num_params",
)
DEEPSPEED_KEYS = ("deepspeed_stage", "deepspeed_offload_optimizer", "deepspeed_offload_params", "deepspeed_nvme_path")
SLURM_PREFIX = "slurm_"


def compute_problems(config: Any) -> list[tuple[str, str]]:
    """Every inconsistency of ``config.compute`` as ``(dotted key, message with the fix)``.

    Args:
        config: A ``RunConfig`` whose sections are validated.
    """
    compute = config.compute
    problems: list[tuple[str, str]] = []
    changed = _changed(compute)
    if compute.machine_rank >= compute.num_machines:
        problems.append(
            (
                "compute.machine_rank",
                f"{compute.machine_rank} is not a machine of num_machines {compute.num_machines} (ranks 0 to "
                f"{compute.num_machines - 1}); give each machine its own rank below num_machines",
            )
        )
    problems += _launcher_problems(compute, changed)
    problems += _strategy_problems(config, changed)
    # A task that trains in one process (TaskSpec.distributed) is refused more keys by its fields_applying("compute").
    if config.search.trials and compute.world_size > 1:
        problems.append(
            (
                "compute.num_processes" if compute.num_processes > 1 else "compute.num_machines",
                "a search trains each trial in one process; to search on several machines run workers on one study "
                "(compute.launcher: slurm with compute.slurm_workers, or several `trainforge train` sharing "
                "search.storage) and leave compute.num_processes and num_machines at 1",
            )
        )
    return problems


def _launcher_problems(compute: Any, changed: set[str]) -> list[tuple[str, str]]:
    problems = []
    if compute.launcher == "slurm":
        for key in ("machine_rank", "main_process_ip"):
            if key in changed:
                problems.append(
                    (
                        f"compute.{key}",
                        "SLURM gives each node its rank and the first node's address: remove it "
                        "(num_machines sets the number of nodes)",
                    )
                )
        return problems
    if compute.num_machines > 1 and not compute.main_process_ip:
        problems.append(
            (
                "compute.main_process_ip",
                f"num_machines {compute.num_machines} needs the address of the machine of rank 0, reachable from "
                "every machine: e.g. compute.main_process_ip=10.0.0.1 on every machine",
            )
        )
    for key in sorted(k for k in changed if k.startswith(SLURM_PREFIX)):
        problems.append((f"compute.{key}", "applies to compute.launcher: slurm; set the launcher or remove it"))
    return problems


def _strategy_problems(config: Any, changed: set[str]) -> list[tuple[str, str]]:
    compute = config.compute
    problems = []
    for keys, strategy in ((FSDP_KEYS, "fsdp"), (DEEPSPEED_KEYS, "deepspeed")):
        if compute.strategy == strategy:
            continue
        for key in keys:
            if key in changed:
                problems.append(
                    (
                        f"compute.{key}",
                        f"applies to compute.strategy: {strategy} (it is {compute.strategy}); "
                        f"set the strategy or remove it",
                    )
                )
    if compute.accelerate_config and "strategy" in changed:
        problems.append(
            (
                "compute.strategy",
                "compute.accelerate_config already chooses the strategy (its distributed_type): remove one of them",
            )
        )
    if (
        compute.strategy == "fsdp"
        and compute.fsdp_version == 2
        and compute.fsdp_sharding in ("hybrid_shard", "no_shard")
    ):
        problems.append(
            (
                "compute.fsdp_sharding",
                f"{compute.fsdp_sharding} needs compute.fsdp_version: 1 (FSDP2 shards fully, or keeps parameters "
                "gathered after forward with shard_grad_op)",
            )
        )
    if compute.strategy == "deepspeed":
        offload = (compute.deepspeed_offload_optimizer, compute.deepspeed_offload_params)
        if "nvme" in offload and not compute.deepspeed_nvme_path:
            problems.append(("compute.deepspeed_nvme_path", "nvme offload needs the folder on the NVMe disk"))
        if compute.deepspeed_offload_params != "none" and compute.deepspeed_stage != 3:
            problems.append(
                (
                    "compute.deepspeed_offload_params",
                    f"parameters are offloaded only by ZeRO stage 3 (deepspeed_stage is {compute.deepspeed_stage})",
                )
            )
    if config.peft.quantization and compute.strategy != "ddp":
        problems.append(
            (
                "compute.strategy",
                f"QLoRA (peft.quantization) trains with strategy ddp; {compute.strategy} would need a quantized "
                "storage dtype set up for sharding: use ddp, or LoRA without quantization",
            )
        )
    return problems


def _changed(compute: Any) -> set[str]:
    """Keys set to something other than their default (a default written out in a file is not a choice)."""
    default = type(compute)()
    return {name for name in type(compute).model_fields if getattr(compute, name) != getattr(default, name)}
