"""Every shipped example config validates against the schema (torchtune test_configs, litgpt test_config_hub)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trainforge.config.loading import load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_validates(path, monkeypatch):
    # Examples name installed models through environment variables (e.g. ${MINILM_PATH}).
    for name in re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", path.read_text(encoding="utf-8")):
        monkeypatch.setenv(name, f"/models/{name.lower()}")
    monkeypatch.chdir(ROOT)
    config = load_config(path)
    assert config.task == path.parent.name
    header = path.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("#"), "each example opens with a comment header giving the command"
    assert "trainforge train" in path.read_text(encoding="utf-8")


def test_examples_exist():
    assert len(EXAMPLES) >= 2
