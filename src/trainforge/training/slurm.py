"""``compute.launcher: slurm``: the same config submitted to a SLURM cluster through submitit.

    trainforge train cfg.yaml (on the login node)
      -> check; the run directory prepared here, a ``job_submitted`` event in its events.jsonl
      -> one job of ``num_machines`` nodes (one task per node), or, with a ``search:``, an array of
         ``slurm_workers`` tasks that work one Optuna study together
      -> each task runs the same ``trainforge train`` on its node, told its node rank and the first node's
         address; that command launches the node's processes through launch.py like on any machine
      -> submitit's logs and pickles, and each task's state, in <run>/slurm/

``TRAINFORGE_SLURM_CLUSTER=local`` (or ``debug``) runs the job with submitit's local (in-process) executor instead:
the same task on this machine, for a dry run of a submission without a cluster (and for the tests).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainforge.config.schema import RunConfig
from trainforge.errors import TrainforgeError
from trainforge.training.launch import MACHINE_RANK_ENV, MAIN_IP_ENV

SLURM_DIR = "slurm"  # in the run directory: submitit's folder (scripts, logs, pickles) and our state files
SUBMISSION_ENV = "TRAINFORGE_SUBMISSION"  # the token of the submission a node's `trainforge train` belongs to
CLUSTER_ENV = "TRAINFORGE_SLURM_CLUSTER"  # slurm (default), local or debug: submitit's executor that runs the job


def _cluster() -> str:
    return os.environ.get(CLUSTER_ENV, "slurm")


def slurm_problems(config: RunConfig, submitting: bool) -> list[tuple[str, str]]:
    """What this machine lacks to submit the job: submitit, sbatch (or a local executor that can run it)."""
    import importlib.util

    if not submitting:
        return []
    if config.compute.slurm_workers > 1 and not config.search.trials:
        # Checked at submission only: a search's trials are validated without their search: section.
        return [
            (
                "compute.slurm_workers",
                "array workers share a search's trials; without search.trials there is one run: remove it, or use "
                "compute.num_machines for one run on several nodes",
            )
        ]
    if importlib.util.find_spec("submitit") is None:
        return [("compute.launcher", "slurm needs submitit: pip install 'trainforge[slurm]'")]
    cluster = _cluster()
    if cluster not in ("slurm", "local", "debug"):
        return [(CLUSTER_ENV, f"{cluster!r} is not an executor; use slurm, local or debug")]
    if cluster == "slurm" and shutil.which("sbatch") is None:
        return [
            (
                "compute.launcher",
                "slurm: sbatch is not on this machine's PATH; run trainforge train on the cluster's login node "
                f"(or set {CLUSTER_ENV}=local to run the job here)",
            )
        ]
    if cluster != "slurm" and config.compute.num_machines > 1:
        return [("compute.num_machines", f"submitit's {cluster} executor runs one node; use num_machines 1")]
    return []


def sbatch_parameters(config: RunConfig) -> dict[str, Any]:
    """The ``SlurmExecutor`` parameters (sbatch's names) of this run: one task per node."""
    compute = config.compute
    parameters: dict[str, Any] = {
        "job_name": compute.slurm_job_name,
        "time": compute.slurm_time_min,
        "nodes": compute.num_machines,
        "ntasks_per_node": 1,  # the task starts the node's processes (accelerate launch)
        "stderr_to_stdout": True,  # one log per task: the run's console output in order
    }
    optional = {
        "partition": compute.slurm_partition,
        "account": compute.slurm_account,
        "qos": compute.slurm_qos,
        "constraint": compute.slurm_constraint,
        "cpus_per_task": compute.slurm_cpus_per_task,
        "gpus_per_node": compute.slurm_gpus_per_node or None,
        "mem": _memory(compute.slurm_mem_gb),
        "setup": list(compute.slurm_setup) or None,
        "additional_parameters": dict(compute.slurm_additional) or None,
    }
    parameters.update({key: value for key, value in optional.items() if value is not None})
    return parameters


def _memory(gigabytes: float | None) -> str | None:
    if gigabytes is None:
        return None
    return f"{int(gigabytes)}GB" if gigabytes == int(gigabytes) else f"{int(gigabytes * 1024)}MB"


def _workers(config: RunConfig) -> int:
    return config.compute.slurm_workers if config.search.trials else 1


def _worker_overrides(config: RunConfig, run_dir: Path) -> list[list[str]]:
    """Per array task, the overrides that make it a worker of the run's study (one task: none).

    Worker 0 is the run itself; the others train in ``search/workers/worker-<i>`` of the run directory, and all
    share the study's storage (``search.storage``, or the run's ``search/study.db``).
    """
    workers = _workers(config)
    if workers == 1:
        return [[]]
    storage = config.search.storage or f"sqlite:///{(run_dir / 'search' / 'study.db').resolve()}"
    overrides = []
    for worker in range(workers):
        own = [f"search.storage={storage}"]
        if worker:
            own.append(f"output.dir={run_dir / 'search' / 'workers' / f'worker-{worker}'}")
        overrides.append(own)
    return overrides


@dataclass
class NodeTask:
    """What each SLURM task runs (pickled by submitit): ``trainforge train`` on its node, its state in ``slurm/``."""

    command: list[str]
    cwd: str
    token: str
    folder: str
    extra: list[list[str]] = field(default_factory=lambda: [[]])

    def __call__(self, worker: int = 0) -> int:
        """Run this node's ``trainforge train`` (it launches the node's processes); raise when it fails.

        Raises:
            RuntimeError: The command failed: submitit records the job as failed, with this message.
        """
        import submitit

        job = submitit.JobEnvironment()
        env = {
            **os.environ,
            MACHINE_RANK_ENV: str(job.node),
            MAIN_IP_ENV: str(job.hostnames[0]),
            SUBMISSION_ENV: self.token,
        }
        command = [sys.executable, "-m", "trainforge", *self.command, *self.extra[worker]]
        state = Path(self.folder) / "state" / f"{job.job_id}.{job.global_rank}.json"
        record = {"job_id": job.job_id, "task": job.global_rank, "node": job.node, "host": job.hostname}
        record.update(worker=worker, command=shlex.join(command), state="running", started=time.time())
        _write_json(state, record)
        returncode = subprocess.call(command, cwd=self.cwd, env=env)
        record.update(state="completed" if returncode == 0 else "failed", returncode=returncode, ended=time.time())
        _write_json(state, record)
        if returncode:
            raise RuntimeError(f"trainforge train exited with code {returncode} on {job.hostname} (task {state.stem})")
        return returncode


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _executor(config: RunConfig, folder: Path):
    """The submitit executor for this run (``TRAINFORGE_SLURM_CLUSTER`` picks local or debug instead of SLURM)."""
    import submitit

    cluster, compute = _cluster(), config.compute
    if cluster == "debug":
        return submitit.DebugExecutor(folder)
    if cluster == "local":
        local = submitit.LocalExecutor(folder)
        local.update_parameters(timeout_min=compute.slurm_time_min, nodes=1, tasks_per_node=1)
        return local
    slurm = submitit.SlurmExecutor(folder)
    slurm.update_parameters(**sbatch_parameters(config))
    if compute.slurm_workers > 1:
        slurm.update_parameters(array_parallelism=compute.slurm_workers)
    return slurm


def submit(checked: Any, command: list[str], resume: bool):
    """Prepare the run directory, submit the job (or array), record it; wait for it with ``compute.slurm_wait``.

    Returns:
        The ``RunResult``: its ``job_ids``, and metrics read from the run directory when the job was waited for.

    Raises:
        RunDirError: As a local run's (the directory holds a run that would be lost).
        TrainforgeError: The submission failed, or (waiting) the job failed.
    """
    from trainforge.training.driver import RunResult
    from trainforge.training.events import EventLog

    config = checked.ctx.config
    target = _prepare(config, resume)
    run_dir = target.path
    folder = (run_dir / SLURM_DIR).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    workers = _worker_overrides(config, run_dir)
    task = NodeTask(command, os.getcwd(), token, str(folder), workers)
    events = EventLog(run_dir / "events.jsonl")
    replaced = str(target.replaced) if target.replaced is not None else None
    submitted = events.write(
        "job_submitted",
        token=token,
        launcher=_cluster(),
        nodes=config.compute.num_machines,
        processes_per_node=config.compute.num_processes,
        workers=len(workers),
        folder=str(folder),
        command=shlex.join(["trainforge", *command]),
        replaced=replaced,
    )
    try:
        executor = _executor(config, folder)
        jobs = executor.map_array(task, list(range(len(workers)))) if len(workers) > 1 else [executor.submit(task)]
    except Exception as exc:  # noqa: BLE001 - sbatch's refusal (FailedSubmissionError, OSError): recorded, then raised
        events.write("run_failed", error=f"submission failed: {exc}", interrupted=False)
        events.close()
        raise TrainforgeError(f"compute.launcher slurm: the submission failed: {exc}") from None
    finally:
        events.close()
    job_ids = tuple(str(job.job_id) for job in jobs)
    record = {**submitted, "job_ids": list(job_ids), "cluster": _cluster(), "state": "submitted"}
    _write_json(folder / "submission.json", record)
    print(
        f"submitted {len(jobs)} SLURM job(s) {', '.join(job_ids)}: logs in {folder}; "
        f"follow the run in {run_dir / 'events.jsonl'}",
        file=sys.stderr,
    )
    splits = checked.splits
    eval_rows = 0 if splits.eval is None else len(splits.eval)
    if not config.compute.slurm_wait:
        return RunResult(run_dir, {}, checked.labels, len(splits.train), eval_rows, job_ids=job_ids)
    failures = _wait(jobs)
    record.update(state="failed" if failures else "completed", failures=failures, ended=time.time())
    _write_json(folder / "submission.json", record)
    if failures:
        raise TrainforgeError(f"SLURM job failed: {failures[0]} (logs in {folder})")
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return RunResult(run_dir, metrics, checked.labels, len(splits.train), eval_rows, job_ids=job_ids)


def _wait(jobs: list) -> list[str]:
    """Wait for every job; the messages of those that failed."""
    from submitit.core.utils import FailedJobError, UncompletedJobError

    failures = []
    for job in jobs:
        try:
            job.result()
        except (FailedJobError, UncompletedJobError, RuntimeError) as exc:
            failures.append(f"job {job.job_id}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}")
    return failures


def _prepare(config: RunConfig, resume: bool):
    """The run directory, prepared as the run (or search) itself would: refusals happen here, at submission."""
    if config.search.trials:
        from trainforge.training.search import _study_dir

        return _study_dir(config, resume)
    from trainforge.training.artifacts import prepare_run_dir

    return prepare_run_dir(config, resume)


def submitted_here(events: list[dict]) -> dict | None:
    """The ``job_submitted`` event of the submission this process belongs to, when the run has no other event yet.

    A node's ``trainforge train`` starts in the run directory its submission prepared (holding only that event and
    submitit's ``slurm/`` folder); any other content is another run's.
    """
    token = os.environ.get(SUBMISSION_ENV)
    if not token or not events or any(e.get("event") != "job_submitted" for e in events):
        return None
    return events[-1] if events[-1].get("token") == token else None


def render_submission(config: RunConfig, command: list[str]) -> str:
    """The sbatch script submitit submits for this run, and the command each node's task runs."""
    from submitit.slurm.slurm import _make_sbatch_string

    from trainforge.training.launch import accelerate_arguments

    compute = config.compute
    run_dir = Path(config.output.dir)
    folder = (run_dir / SLURM_DIR).resolve()
    workers = _worker_overrides(config, run_dir)
    parameters = sbatch_parameters(config)
    if len(workers) > 1:
        parameters.update(map_count=len(workers), array_parallelism=compute.slurm_workers)
    shape = (
        f"an array of {len(workers)} search workers on one study"
        if len(workers) > 1
        else f"{compute.num_machines} node(s) x {compute.num_processes} process(es)"
    )
    python = shlex.quote(sys.executable)
    script = _make_sbatch_string(
        command=f"{python} -u -m submitit.core._submit {shlex.quote(str(folder))}", folder=folder, **parameters
    )
    lines = [
        f"# SLURM through submitit: {shape}; submitit writes this script to {folder}/<job id>_submission.sh and "
        "runs sbatch on it.",
        f"# Each task runs, in {os.getcwd()} (its node rank and the first node's address from SLURM):",
    ]
    for worker, extra in enumerate(workers):
        prefix = f"#   worker {worker}: " if len(workers) > 1 else "#   "
        lines.append(prefix + shlex.join(["trainforge", *command, *extra]))
    if compute.world_size > 1 or compute.strategy != "ddp" or compute.accelerate_config:
        environment = {MACHINE_RANK_ENV: "0", MAIN_IP_ENV: "<first node>"}
        saved = {key: os.environ.get(key) for key in environment}
        os.environ.update(environment)
        try:
            launched = shlex.join(["accelerate", "launch", *accelerate_arguments(config, command)])
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        note = "; training.precision auto is resolved on the node" if config.training.precision == "auto" else ""
        lines.append(f"# which launches on node 0 (the others with their own --machine_rank{note}):")
        lines.append("#   " + launched)
    return "\n".join(lines) + "\n" + script
