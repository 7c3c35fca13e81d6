"""What the web app does with a finished run besides predicting: evaluate, export, publish, each a child process.

An action is one ``trainforge evaluate|export|push`` command, run like a training run: its own process (and
process group), output captured to a log, so a crash or a slow export cannot take the server down. One action
runs per run at a time. Its record (``action.json``) and log live under ``<workspace>/jobs/<run>/actions/<id>/``;
the server watches the processes it started, and a record left ``running`` by a server that stopped is marked
failed once its process is gone.

Children get none of the server's secret-looking environment variables (TOKEN, SECRET, ...), except that ``push``
keeps ``HF_TOKEN``/``HUGGING_FACE_HUB_TOKEN``: the Hub token stays in the server's environment (or its user's
``hf auth login``) and is never received, stored or sent back by the app.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainforge._utils.secrets import SECRET_NAME

KINDS = ("evaluate", "export", "push")
HUB_TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
_LOG_TAIL = 20_000


@dataclass
class Action:
    """One action on a run: its command's arguments (no secrets), state and outcome."""

    id: str
    run_id: str
    kind: str
    args: dict[str, Any]
    status: str  # running, succeeded, failed
    started: float
    finished: float | None = None
    returncode: int | None = None
    pid: int | None = None
    error: str | None = None


class ActionRunner:
    """Starts and watches the actions of the app's runs (thread-safe; one running action per run)."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self._processes: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def folder(self, run_id: str, action_id: str) -> Path:
        """Where an action's record and log live."""
        return self.workspace / "jobs" / run_id / "actions" / action_id

    def start(self, run_id: str, kind: str, command: list[str], args: dict[str, Any]) -> Action:
        """Start ``command`` (a ``trainforge`` subcommand's arguments) as the run's action.

        Raises:
            RuntimeError: Another action of this run is still running (its kind in the message).
        """
        with self._lock:
            busy = next((a for a in self.list(run_id) if a.status == "running"), None)
            if busy is not None:
                raise RuntimeError(f"{busy.kind} is still running on this run (started {_ago(busy.started)})")
            action = Action(uuid.uuid4().hex[:12], run_id, kind, args, "running", time.time())
            folder = self.folder(run_id, action.id)
            folder.mkdir(parents=True)
            with (folder / "output.log").open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "trainforge", *command],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=child_environment(keep_hub_token=kind == "push"),
                    start_new_session=True,
                )
            action.pid = process.pid
            self._processes[action.id] = process
            self._save(action)
        return action

    def get(self, run_id: str, action_id: str) -> Action | None:
        """The action, with its state brought up to date (None when there is none)."""
        path = self.folder(run_id, action_id) / "action.json"
        if not re.fullmatch(r"[0-9a-f]{12}", action_id) or not path.is_file():
            return None
        return self._refresh(Action(**json.loads(path.read_text(encoding="utf-8"))))

    def list(self, run_id: str) -> list[Action]:
        """The run's actions, newest first."""
        folder = self.workspace / "jobs" / run_id / "actions"
        if not folder.is_dir():
            return []
        found = [self.get(run_id, p.name) for p in folder.iterdir() if p.is_dir()]
        return sorted((a for a in found if a is not None), key=lambda a: a.started, reverse=True)

    def log(self, action: Action) -> str:
        """The end of the action's output."""
        path = self.folder(action.run_id, action.id) / "output.log"
        if not path.is_file():
            return ""
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - _LOG_TAIL))
            return handle.read().decode("utf-8", errors="replace")

    def _refresh(self, action: Action) -> Action:
        if action.status != "running":
            return action
        process = self._processes.get(action.id)
        if process is not None:
            returncode = process.poll()
            if returncode is None:
                return action
            self._processes.pop(action.id, None)
        elif _alive(action.pid):
            return action  # started by another server on this workspace, still going
        else:
            returncode = None
        action.finished = time.time()
        action.returncode = returncode
        action.status = "succeeded" if returncode == 0 else "failed"
        if returncode is None:
            action.error = "the process ended while no server was watching it (the server restarted)"
        elif returncode != 0:
            action.error = _error_paragraph(self.log(action)) or f"exit code {returncode}"
        self._save(action)
        return action

    def _save(self, action: Action) -> None:
        path = self.folder(action.run_id, action.id) / "action.json"
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(asdict(action)), encoding="utf-8")
        os.replace(partial, path)


def child_environment(keep_hub_token: bool = False) -> dict[str, str]:
    """The server's environment without secret-looking variables (the Hub token kept for ``push`` only)."""
    kept = HUB_TOKEN_VARIABLES if keep_hub_token else ()
    env = {k: v for k, v in os.environ.items() if not SECRET_NAME.search(k) or k in kept}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z")


def _error_paragraph(log: str) -> str | None:
    """The CLI's ``error:`` paragraph at the end of a log, else its last lines."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    if starts:
        return "\n".join(lines[starts[-1] :]).removeprefix("error: ").strip()
    tail = [line for line in lines if line.strip()][-5:]
    return "\n".join(tail) or None


def _ago(started: float) -> str:
    return f"{time.time() - started:.0f} s ago"
