"""The type checker over src/: mypy with pyproject.toml's [tool.mypy] settings reports no error (issue 8)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_reports_no_error_in_src():
    # pyproject.toml's [tool.mypy] holds the settings (plugins, which libraries are followed); the cache dir keeps
    # later runs to seconds (a first run reads the libraries' own annotations).
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "src/trainforge"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"mypy found errors (exit {result.returncode}):\n{result.stdout}{result.stderr}"
