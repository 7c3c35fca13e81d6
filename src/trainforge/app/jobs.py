"""The web app's job store and queue: SQLite under the workspace, one ``trainforge train`` process per run.

Each run is a separate process in its own session (process group), so a crashing run cannot take the server
down and Cancel can kill the whole group. The queue starts jobs in creation order while fewer than
``max_concurrent`` run. A run keeps going when the server stops; on restart, a job recorded as running is
adopted again while its process lives, and once that process is gone its outcome is read from the run's
``events.jsonl`` (``run_finished`` / ``run_failed``) or, with no final event, marked failed with the reason.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trainforge.training.events import read_events

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    pid INTEGER,
    returncode INTEGER,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
)
"""


@dataclass
class Job:
    """One row of the job table, with the paths derived from the workspace."""

    id: str
    name: str
    task: str
    status: str
    config: dict[str, Any]
    created: float
    started: float | None
    finished: float | None
    pid: int | None
    returncode: int | None
    error: str | None
    cancel_requested: bool
    run_dir: Path
    job_dir: Path

    @property
    def log_path(self) -> Path:
        """Captured stdout and stderr of the training process."""
        return self.job_dir / "train.log"

    @property
    def config_path(self) -> Path:
        """The YAML the training process reads."""
        return self.job_dir / "config.yaml"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view for the REST API."""
        return {
            "id": self.id,
            "name": self.name,
            "task": self.task,
            "status": self.status,
            "config": self.config,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "pid": self.pid,
            "returncode": self.returncode,
            "error": self.error,
            "cancel_requested": self.cancel_requested,
            "run_dir": str(self.run_dir),
        }


class JobStore:
    """Jobs in ``<workspace>/jobs.db``; run directories in ``runs/<id>``, config and log in ``jobs/<id>``."""

    def __init__(self, workspace: Path):
        self.workspace = workspace
        self.db_path = workspace / "jobs.db"
        (workspace / "runs").mkdir(parents=True, exist_ok=True)
        (workspace / "jobs").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection committed on success and always closed (sqlite3's own context manager never closes)."""
        db = sqlite3.connect(self.db_path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def run_dir(self, job_id: str) -> Path:
        """Where the job's run directory lives (``output.dir`` is set to it)."""
        return self.workspace / "runs" / job_id

    def create(self, config: dict[str, Any], name: str | None = None) -> Job:
        """Queue a job for an already validated config; ``output.dir`` is pointed into the workspace."""
        job_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        config = {**config, "output": {**(config.get("output") or {}), "dir": str(self.run_dir(job_id))}}
        job_dir = self.workspace / "jobs" / job_id
        job_dir.mkdir(parents=True)
        (job_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        name = name or f"{config['task']} {time.strftime('%H:%M:%S')}"
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT INTO jobs (id, name, task, status, config, created) VALUES (?, ?, ?, 'queued', ?, ?)",
                (job_id, name, config["task"], json.dumps(config), time.time()),
            )
        return self.require(job_id)

    @contextmanager
    def claim_lock(self) -> Iterator[None]:
        """An exclusive lock on the workspace's queue, shared by every server process using this workspace."""
        with (self.workspace / "jobs.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def get(self, job_id: str) -> Job | None:
        """The job, or None."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else self._job(row)

    def require(self, job_id: str) -> Job:
        """The job; raises ``KeyError`` when there is none (jobs are never deleted: one seen once stays)."""
        job = self.get(job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    def list(self, status: str | None = None) -> list[Job]:
        """Jobs, newest first (optionally only those with ``status``)."""
        query = "SELECT * FROM jobs"
        args: tuple[str, ...] = ()
        if status:
            query, args = query + " WHERE status = ?", (status,)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY created DESC", args).fetchall()
        return [self._job(r) for r in rows]

    def update(self, job_id: str, **fields: Any) -> None:
        """Set columns of one job."""
        if "cancel_requested" in fields:
            fields["cancel_requested"] = int(fields["cancel_requested"])
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._lock, self._connect() as db:
            db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*fields.values(), job_id))

    def _job(self, row: sqlite3.Row) -> Job:
        data = dict(row)
        data["config"] = json.loads(data["config"])
        data["cancel_requested"] = bool(data["cancel_requested"])
        return Job(**data, run_dir=self.run_dir(data["id"]), job_dir=self.workspace / "jobs" / data["id"])


class JobRunner:
    """Starts queued jobs, watches running ones and records how each ended; one background thread."""

    def __init__(self, store: JobStore, max_concurrent: int = 1, poll_s: float = 0.5, kill_after_s: float = 10.0):
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.store = store
        self.max_concurrent = max_concurrent
        self.poll_s = poll_s
        self.kill_after_s = kill_after_s
        self._processes: dict[str, subprocess.Popen] = {}
        self._term_sent: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick_lock = threading.Lock()

    def start(self) -> None:
        """Recover jobs left running by a previous server, then watch the queue in a daemon thread."""
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="trainforge-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching. Running training processes keep going; the next server adopts them."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.poll_s)

    def recover(self) -> None:
        """Jobs recorded as running whose process is gone get their final state (see module docstring)."""
        for job in self.store.list("running"):
            if job.id not in self._processes and not _alive(job.pid, job.config_path):
                self._finish_orphan(job)

    def tick(self) -> None:
        """One pass: reap finished processes, escalate slow cancels, start queued jobs if there is room."""
        with self._tick_lock:
            for job_id, process in list(self._processes.items()):
                returncode = process.poll()
                if returncode is not None:
                    del self._processes[job_id]
                    self._term_sent.pop(job_id, None)
                    self._finish(self.store.require(job_id), returncode)
            running = self.store.list("running")
            for job in running:
                if job.id not in self._processes and not _alive(job.pid, job.config_path):
                    self._finish_orphan(job)
                elif job.cancel_requested:
                    self._signal(job)
            # Claim and start under the workspace lock: two servers on one workspace never start a job twice, and
            # status and pid are written together, so the other server never sees a running job without its pid.
            with self.store.claim_lock():
                running = self.store.list("running")
                queued = sorted(self.store.list("queued"), key=lambda j: j.created)
                for job in queued[: max(0, self.max_concurrent - len(running))]:
                    self._launch(job)

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once, or ask a running one's process group to stop (SIGTERM, then SIGKILL)."""
        self.store.require(job_id)
        with self._tick_lock:
            job = self.store.require(job_id)
            if job.status == "queued":
                self.store.update(
                    job_id, status="cancelled", finished=time.time(), error="cancelled before it started"
                )
            elif job.status == "running":
                self.store.update(job_id, cancel_requested=True)
                self._signal(self.store.require(job_id))
        return self.store.require(job_id)

    def _launch(self, job: Job) -> None:
        job.job_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # --no-env: a config that came over the network never reads the server's environment (the Hub token is
        # read from HF_TOKEN by the push itself, never written into the config).
        command = [sys.executable, "-m", "trainforge", "train", str(job.config_path), "--no-env"]
        with job.log_path.open("ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        self._processes[job.id] = process
        self.store.update(job.id, status="running", started=time.time(), pid=process.pid)

    def _signal(self, job: Job) -> None:
        """SIGTERM the job's process group once; SIGKILL it if it is still there ``kill_after_s`` later."""
        if job.pid is None:
            return
        now = time.monotonic()
        first = self._term_sent.get(job.id)
        if first is None:
            self._term_sent[job.id] = now
            sig = signal.SIGTERM
        elif now - first > self.kill_after_s:
            sig = signal.SIGKILL
        else:
            return
        try:
            os.killpg(job.pid, sig)
        except ProcessLookupError:
            return  # already gone: the next tick records the outcome

    def _finish(self, job: Job, returncode: int) -> None:
        if job.cancel_requested and returncode != 0:
            status, error = "cancelled", "cancelled while running"
        elif returncode == 0:
            status, error = "succeeded", None
        else:
            status = "failed"
            error = _failure_reason(job) or (
                f"the training process was killed by signal {-returncode}"
                if returncode < 0
                else f"exit code {returncode}"
            )
        self.store.update(job.id, status=status, returncode=returncode, error=error, finished=time.time())

    def _finish_orphan(self, job: Job) -> None:
        """A running job whose process is gone and is not our child: the run's events tell how it ended."""
        events = read_events(job.run_dir / "events.jsonl")
        kinds = [e["event"] for e in events]
        if "run_finished" in kinds:
            status, error = "succeeded", None
        elif job.cancel_requested:
            status, error = "cancelled", "cancelled while running"
        else:
            status = "failed"
            reason = _failure_reason(job, log_tail=False)  # progress lines are no reason: the process was killed
            error = reason or (
                f"the training process (pid {job.pid}) ended while the server was not watching it and recorded no "
                "final event (killed, or the machine restarted)"
            )
        self.store.update(job.id, status=status, error=error, finished=time.time())


def _alive(pid: int | None, config_path: Path) -> bool:
    """Whether ``pid`` is still the training process of this job (not a recycled pid)."""
    if pid is None:
        return False
    if Path("/proc/self").exists():  # Linux: check the command line too, so a recycled pid does not count
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return False
        zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"
        return not zombie and str(config_path).encode() in args
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _failure_reason(job: Job, log_tail: bool = True) -> str | None:
    """The error of a ``run_failed`` event, else the CLI's ``error:`` paragraph from the log, else its last lines."""
    failed = [e for e in read_events(job.run_dir / "events.jsonl") if e["event"] == "run_failed"]
    if failed:
        return str(failed[-1].get("error"))
    if not job.log_path.exists():
        return None
    lines = job.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("error: "):
            return "\n".join(lines[i:]).removeprefix("error: ").strip()
    if not log_tail:
        return None
    tail = [line for line in lines if line.strip()][-5:]
    return "\n".join(tail) or None
