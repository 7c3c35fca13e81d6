"""Bad inputs thrown at every surface, one table (``cases.py``): the CLI's validate / train / predict in-process and
the web app's API through TestClient.

Every case asserts its exit code (HTTP status), fragments of the message naming the key / file / column / row, that
no traceback is shown, and that nothing made earlier was damaged: the one finished run the CLI cases share (as
``output.dir`` without overwrite, for ``--resume`` and predict), the app's earlier upload and its succeeded run stay
byte-identical after every case; cases that overwrite or write into a run work on their own copy of it (``intact``).
Known product faults are strict xfails naming the fault; they never excuse damage to the shared run or upload.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml

from bad_inputs.cases import APP_CASES, CLI_CASES, AppCase, CliCase
from conftest import make_sentiment_frame
from trainforge.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from _detection_fixtures import tiny_detr  # noqa: E402, F401
from _llm_fixtures import tiny_llama  # noqa: E402, F401
from _vlm_fixtures import tiny_vlm  # noqa: E402, F401

LOOPBACK = "http://127.0.0.1"
RUN_COMMANDS = ("predict", "evaluate", "export", "serve")  # commands whose arguments start with a run directory
# The tiny models a case's config may name by placeholder ({llama}), and the session fixture that builds each.
MODEL_FIXTURES = {
    "llama": "tiny_llama",
    "t5": "tiny_t5",
    "bart": "tiny_bart",
    "vit": "tiny_vit",
    "vlm": "tiny_vlm",
    "detr": "tiny_detr",
}

# A task family adds its cases in its own module, tests/bad_inputs/cases_<family>.py (CLI_CASES, optional APP_CASES),
# built with the helpers of cases.py; they join the one table here.
for _module in sorted(Path(__file__).parent.glob("cases_*.py")):
    _family = importlib.import_module(f"bad_inputs.{_module.stem}")
    CLI_CASES = CLI_CASES + list(getattr(_family, "CLI_CASES", []))
    APP_CASES = APP_CASES + list(getattr(_family, "APP_CASES", []))


# ------------------------------------------------------------------------------------------------ helpers


def fill(value, ctx: dict[str, str]):
    """``value`` with every ``{name}`` placeholder of ``ctx`` replaced, through dicts, lists and tuples."""
    if isinstance(value, str):
        for name, text in ctx.items():
            value = value.replace("{" + name + "}", text)
        return value
    if isinstance(value, dict):
        return {fill(k, ctx): fill(v, ctx) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(fill(v, ctx) for v in value)
    return value


def write_files(files: dict, folder: Path, ctx: dict[str, str]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:  # removes a file of a copied folder (copies are made before files are written)
            path.unlink(missing_ok=True)
            continue
        if callable(content):
            content = content()
        if isinstance(content, str):
            path.write_text(fill(content, ctx), encoding="utf-8")
        else:
            path.write_bytes(content)


def fingerprint(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


class CaseMismatch(AssertionError):
    """The outcome differs from the case's expectation (code, status, fragments, traceback).

    Known product faults are strict xfails on this exception only: damage to the shared run or the app's upload and
    run is a plain assertion and fails the test even for an xfail case.
    """


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CaseMismatch(message)


def found(fragment, text: str, ctx: dict[str, str]) -> bool:
    """``fragment`` (or, for a tuple, any one of its wordings) occurs in ``text``."""
    wordings = fragment if isinstance(fragment, tuple) else (fragment,)
    return any(fill(w, ctx) in text for w in wordings)


def marked(cases):
    return [
        pytest.param(
            c, id=c.id, marks=pytest.mark.xfail(strict=True, raises=CaseMismatch, reason=c.xfail) if c.xfail else ()
        )
        for c in cases
    ]


def test_case_ids_are_unique_and_enough():
    cases = CLI_CASES + APP_CASES
    assert len({c.id for c in cases}) == len(cases)
    assert len([c for c in cases if not c.xfail]) >= 80  # known faults (strict xfails) do not count


# ------------------------------------------------------------------------------------------------ the CLI


@pytest.fixture(scope="module")
def finished_run(tiny_bert, tmp_path_factory):
    """One tiny finished text-classification run (1 epoch) and the hash of every file in it."""
    import trainforge

    folder = tmp_path_factory.mktemp("finished")
    make_sentiment_frame(48).to_csv(folder / "reviews.csv", index=False)
    config = {
        "task": "text_classification",
        "model": {"name": tiny_bert},
        "data": {"source": str(folder / "reviews.csv"), "columns": {"text": "review", "label": "sentiment"}},
        "training": {"num_train_epochs": 1, "learning_rate": 1e-2, "per_device_train_batch_size": 16},
        "params": {"max_length": 16},
        "output": {"dir": str(folder / "run"), "report_to": ["none"], "save_checkpoints": False},
    }
    run_dir = trainforge.train(config).output_dir
    return Path(run_dir), fingerprint(Path(run_dir))


@pytest.mark.parametrize("case", marked(CLI_CASES))
def test_cli(case: CliCase, request, capsys, monkeypatch, tmp_path, tiny_bert, finished_run):
    run_dir, before = finished_run
    ctx = {"tmp": str(tmp_path), "bert": tiny_bert, "run": str(run_dir)}
    for placeholder, fixture in MODEL_FIXTURES.items():  # built only when a case names it
        if "{" + placeholder + "}" in repr(case.config):
            ctx[placeholder] = request.getfixturevalue(fixture)
    for name, source in case.copy.items():
        shutil.copytree(fill(source, ctx), tmp_path / name)
    for name, value in case.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    write_files(case.files, tmp_path, ctx)
    args = list(fill(case.args, ctx))
    if case.command in RUN_COMMANDS:
        argv = [case.command, *args]
    else:
        config_path = tmp_path / "config.yaml"
        if isinstance(case.config, dict):
            config_path.write_text(yaml.safe_dump(fill(case.config, ctx), sort_keys=False), encoding="utf-8")
        elif isinstance(case.config, str):
            config_path.write_text(fill(case.config, ctx), encoding="utf-8")
        elif isinstance(case.config, bytes):
            config_path.write_bytes(case.config)
        argv = [case.command, str(config_path), *args]

    code = main(argv)
    out, err = capsys.readouterr()
    # The shared finished run is never changed, whatever the outcome: checked first, and never excused by an xfail.
    assert fingerprint(run_dir) == before, "the finished run every case shares was changed"

    shown = f"exit {code}\n--- stdout\n{out}\n--- stderr\n{err}"
    for name in case.intact:  # the case's own earlier run (a copy): part of what the case expects
        same = fingerprint(tmp_path / name) == fingerprint(Path(fill(case.copy[name], ctx)))
        expect(same, f"{name} was changed\n{shown}")
    if case.command == "train" and code:
        expect(not (tmp_path / "run" / "model.safetensors").exists(), f"a failed run left a model\n{shown}")
    codes = case.code if isinstance(case.code, tuple) else (case.code,)
    expect(code in codes, shown)
    text = out + err if 0 in codes else err
    for fragment in case.fragments:
        expect(found(fragment, text, ctx), f"{fragment!r} missing\n{shown}")
    expect("Traceback" not in out + err, shown)


# ------------------------------------------------------------------------------------------------ the app


@pytest.fixture(scope="module")
def app(tiny_bert, finished_run, tmp_path_factory):
    """The app on a fresh workspace holding one earlier upload and one succeeded text-classification run."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from trainforge.app.jobs import JobStore
    from trainforge.app.server import AppSettings, create_app

    run_dir, _ = finished_run
    workspace = tmp_path_factory.mktemp("app") / "ws"
    store = JobStore(workspace)
    config = yaml.safe_load((run_dir / "config.resolved.yaml").read_text(encoding="utf-8"))
    job = store.create(config, "finished")
    if job.run_dir.exists():
        shutil.rmtree(job.run_dir)
    shutil.copytree(run_dir, job.run_dir)
    store.update(job.id, status="succeeded", started=time.time(), finished=time.time(), returncode=0)
    app = create_app(AppSettings(workspace, poll_s=0.1))
    # A server error must come back as the 500 a user sees, not as an exception inside the test.
    with TestClient(app, base_url=LOOPBACK, raise_server_exceptions=False) as client:
        data = make_sentiment_frame(20).to_csv(index=False).encode()
        saved = client.post("/api/uploads", files={"files": ("reviews.csv", data, "text/csv")})
        assert saved.status_code == 201, saved.text
        upload = Path(saved.json()[0]["path"])
        kept = {"upload": fingerprint(upload.parent), "run": fingerprint(job.run_dir)}
        yield client, {"run_id": job.id, "upload": str(upload)}, upload, job.run_dir, kept


@pytest.mark.parametrize("case", marked(APP_CASES))
def test_app(case: AppCase, app, monkeypatch, tmp_path, tiny_bert):
    client, ids, upload, app_run, kept = app
    ctx = {"tmp": str(tmp_path), "bert": tiny_bert, **ids}
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    write_files(case.files, tmp_path, ctx)
    uploads_before = sorted(upload.parents[1].iterdir())
    runs_before = client.get("/api/runs").json()
    path = fill(case.path, ctx)
    if case.upload is not None:
        name, content = case.upload
        body = content() if callable(content) else content
        response = client.post(path, files={"files": (name, body, "application/octet-stream")})
    elif case.method == "get":
        response = client.get(path)
    elif isinstance(case.json, str):
        content = fill(case.json, ctx).encode()
        response = client.post(path, content=content, headers={"content-type": "application/json"})
    else:
        response = client.post(path, json=fill(case.json, ctx) if case.json is not None else None)

    # Nothing made earlier is damaged and nothing refused is kept, whatever the outcome (never excused by an xfail).
    assert sorted(upload.parents[1].iterdir()) == uploads_before, "a refused request left something in uploads/"
    assert fingerprint(upload.parent) == kept["upload"], "the earlier upload was changed"
    assert fingerprint(app_run) == kept["run"], "the succeeded run was changed"
    assert client.get("/api/runs").json() == runs_before, "a refused request changed the runs"

    shown = f"HTTP {response.status_code}\n{response.text[:3000]}"
    expect(response.status_code == case.status, shown)
    for fragment in case.fragments:
        expect(found(fragment, response.text, ctx), f"{fragment!r} missing\n{shown}")
    for secret in case.absent:
        expect(secret not in response.text, f"{secret!r} echoed\n{shown}")
    expect("Traceback" not in response.text, shown)
