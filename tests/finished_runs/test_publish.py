"""``trainforge push`` and ``hub.push``, tested against a FAKE Hub (tests/fake_hub.py), since the real one cannot be
reached here: a local HTTP server speaking the endpoints huggingface_hub uses for create_repo, repo_info,
create_branch and create_commit (preupload + ndjson commit). huggingface_hub is pointed at it through its
``constants.ENDPOINT`` (read when ``HfApi`` is built; HF_ENDPOINT itself is only read at import) with offline mode
off for these tests only.

What is checked: the repository is created private; the uploaded files are exactly the allow-list's (no
checkpoints, optimizer state, training_args.bin, events.jsonl or planted secrets); the card's front matter parses
and has model-index and a license; revision branches; the token went in the Authorization header and nowhere else
(no file of the run, no output, no event).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from _runs import text_run  # noqa: E402, F401

import trainforge  # noqa: E402
from conftest import build_tiny_bert, make_sentiment_frame  # noqa: E402
from fake_hub import PUBLIC_REGISTRY, FakeHub  # noqa: E402
from trainforge.cli.main import main  # noqa: E402
from trainforge.errors import ConfigError  # noqa: E402
from trainforge.training.hub import PublishError, select_files  # noqa: E402

TOKEN = "hf_FakeTokenForTests0123456789abcd"


@pytest.fixture()
def online(monkeypatch, tmp_path):
    """Offline mode off, the token in HF_TOKEN only (no login cache), huggingface_hub pointed at a fake Hub."""
    from huggingface_hub import constants

    with FakeHub(TOKEN) as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))
        # huggingface_hub 2.x caches the public registry it fetches in HF_HOME: not the fake's answer there.
        monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "agents.json"), raising=False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield hub


def _front_matter(card: bytes) -> dict:
    text = card.decode()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def _token_nowhere(run_dir: Path, *texts: str) -> None:
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    for text in texts:
        assert TOKEN not in text


def _api_requests(hub: FakeHub) -> list:
    return [r for r in hub.requests if r.path != PUBLIC_REGISTRY]


def _copy_with_strays(text_run: Path, tmp_path: Path) -> Path:  # noqa: F811
    """The shared run, copied, with what a push must leave behind: a checkpoint, secrets, an export, a symlink."""
    run = tmp_path / "sentiment"
    shutil.copytree(text_run, run)
    checkpoint = run / "checkpoints" / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    (checkpoint / "optimizer.pt").write_bytes(b"optimizer state")
    shutil.copy(run / "model.safetensors", checkpoint / "model.safetensors")
    (run / ".env").write_text("OPENAI_API_KEY=sk-not-a-real-key-123456\n")
    (run / "server.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (run / "training_args.bin").write_bytes(b"pickle")
    (run / "onnx").mkdir()
    (run / "onnx" / "model.onnx").write_bytes(b"onnx")
    (run / "linked.json").symlink_to(run / ".env")
    report = run / "evaluation" / "heldout"
    report.mkdir(parents=True)
    (report / "metrics.json").write_text('{"metrics": {"accuracy": 0.9}}')
    (report / "report.md").write_text("# report\n")
    (report / "predictions.jsonl").write_text('{"row": 1}\n')
    return run


def test_push_uploads_the_allow_list_privately_with_a_card(text_run, tmp_path, online, capsys):  # noqa: F811
    run = _copy_with_strays(text_run, tmp_path)
    assert main(["push", str(run), "--repo-id", "tester/sentiment", "--license", "mit"]) == 0
    out, err = capsys.readouterr()
    repo = online.repos["tester/sentiment"]
    assert repo.private
    uploaded = set(online.files("tester/sentiment"))
    assert uploaded == set(select_files(run).files)
    expected = {"README.md", "config.json", "config.resolved.yaml", "metrics.json", "model.safetensors"}
    expected |= {"tokenizer.json", "tokenizer_config.json", "evaluation/heldout/metrics.json"}
    expected |= {"evaluation/heldout/report.md"}
    assert expected <= uploaded
    assert (run / "loss_curve.svg").is_file() and "loss_curve.svg" in uploaded
    for never in ("checkpoints/", "optimizer", ".env", "server.pem", "training_args.bin", "events.jsonl", "onnx/"):
        assert not any(never in path for path in uploaded), never
    assert "linked.json" not in uploaded and "evaluation/heldout/predictions.jsonl" not in uploaded
    assert "left out: .env, checkpoints/ (2 files)" in out and "training_args.bin" in out
    # The card: front matter with model-index results, the license asked for, snippets loading the repo id.
    card = online.files("tester/sentiment")["README.md"]
    front = _front_matter(card)
    assert front["license"] == "mit" and front["pipeline_tag"] == "text-classification"
    results = front["model-index"][0]["results"]
    logged = json.loads((run / "metrics.json").read_text())
    accuracy = [m for r in results for m in r["metrics"] if m["type"] == "accuracy"]
    assert accuracy and accuracy[0]["value"] == pytest.approx(logged["eval_accuracy"])
    assert 'model="tester/sentiment"' in card.decode() and str(text_run) not in card.decode()
    assert (run / "README.md").read_bytes() != card  # the local card is left as it was
    assert online.files("tester/sentiment")["model.safetensors"] == (run / "model.safetensors").read_bytes()
    # The token went in every request's Authorization header, and nowhere else.
    api = [r for r in online.requests if r.path != PUBLIC_REGISTRY]  # the library's public registry: no token
    assert api and all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in api)
    assert all("authorization" not in r.headers for r in online.requests if r.path == PUBLIC_REGISTRY)
    assert not any(TOKEN.encode() in r.body for r in online.requests)
    _token_nowhere(run, out, err)
    paths = [r.path for r in online.requests]
    assert "/api/repos/create" in paths and any("/commit/main" in p for p in paths)


def test_push_to_a_branch_and_again(text_run, tmp_path, online, capsys):  # noqa: F811
    run = tmp_path / "run"
    shutil.copytree(text_run, run)
    result = trainforge.push(run, "tester/branched", revision="exp/lr-3e-4")
    assert result.revision == "exp/lr-3e-4" and result.private
    assert online.files("tester/branched", "main") == {}  # main untouched: the branch holds the commit
    assert "model.safetensors" in online.files("tester/branched", "exp/lr-3e-4")
    again = trainforge.push(run, "tester/branched", revision="exp/lr-3e-4")  # existing repo and branch: no error
    assert again.files == result.files and len(online.repos["tester/branched"].commits) == 2
    assert "the card states no license" in " ".join(result.notes)  # the tiny test model's card has none


def test_a_private_push_never_writes_into_a_public_repo(text_run, online, capsys):  # noqa: F811
    trainforge.push(text_run, "tester/open", private=False)
    assert not online.repos["tester/open"].private
    commits = len(online.repos["tester/open"].commits)
    assert main(["push", str(text_run), "--repo-id", "tester/open"]) == 1
    assert "already exists and is public" in capsys.readouterr().err
    assert len(online.repos["tester/open"].commits) == commits


def test_a_secret_in_a_file_stops_the_push_before_any_request(text_run, tmp_path, online, capsys):  # noqa: F811
    run = tmp_path / "run"
    shutil.copytree(text_run, run)
    (run / "evaluation" / "x").mkdir(parents=True)
    (run / "evaluation" / "x" / "report.md").write_text(f"leaked {TOKEN}\n")
    with pytest.raises(PublishError, match=r"report.md holds the value of the Hub token: nothing was uploaded"):
        trainforge.push(run, "tester/leak")
    assert _api_requests(online) == []
    assert main(["push", str(run), "--repo-id", "tester/leak"]) == 1
    assert TOKEN not in capsys.readouterr().err


def test_a_refused_token_is_named_without_printing_it(text_run, online, monkeypatch, capsys):  # noqa: F811
    wrong = "hf_WrongTokenValue987654321zyxw"
    monkeypatch.setenv("HF_TOKEN", wrong)
    assert main(["push", str(text_run), "--repo-id", "tester/denied"]) == 1
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "the token was refused: check HF_TOKEN" in err and wrong not in err
    assert _api_requests(online)[0].headers["authorization"] == f"Bearer {wrong}"


def test_push_without_token_or_with_the_hub_offline_is_refused(text_run, online, monkeypatch, capsys):  # noqa: F811
    monkeypatch.delenv("HF_TOKEN")
    assert main(["push", str(text_run), "--repo-id", "tester/x"]) == 2
    assert "HF_TOKEN: there is no Hub token to push with" in capsys.readouterr().err
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["push", str(text_run), "--repo-id", "tester/x"]) == 2
    assert "HF_HUB_OFFLINE: the Hub is switched off here" in capsys.readouterr().err
    assert _api_requests(online) == []
    with pytest.raises(ConfigError, match="--repo-id: the run names no hub.repo_id"):
        trainforge.push(text_run)
    assert main(["push", str(text_run.parent), "--repo-id", "tester/x"]) == 2  # not a run directory


def test_hub_push_at_the_end_of_training_uses_the_same_upload(tmp_path, online, capsys):
    """``hub.push: true`` with ``hub.token: ${HF_TOKEN}`` (as AutoTrain configs carry): trained, then pushed."""
    bert = build_tiny_bert(tmp_path / "bert")
    make_sentiment_frame(48).to_csv(tmp_path / "reviews.csv", index=False)
    config = {
        "task": "text_classification",
        "model": {"name": bert},
        "data": {"source": str(tmp_path / "reviews.csv"), "columns": {"text": "review", "label": "sentiment"}},
        "training": {"num_train_epochs": 1, "per_device_train_batch_size": 16},
        "params": {"max_length": 16},
        "output": {"dir": str(tmp_path / "pushed"), "report_to": ["tensorboard"]},
        "hub": {
            "push": True,
            "repo_id": "tester/trained",
            "revision": "v1",
            "license": "apache-2.0",
            "token": "${HF_TOKEN}",
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path)]) == 0
    out, err = capsys.readouterr()
    run = tmp_path / "pushed"
    files = online.files("tester/trained", "v1")
    assert online.repos["tester/trained"].private and online.files("tester/trained", "main") == {}
    assert any(p.startswith("tensorboard/") for p in files)
    assert not any(p.startswith("checkpoints/") for p in files)  # they existed while it pushed (deleted after)
    assert {"model.safetensors", "README.md", "metrics.json", "config.resolved.yaml"} <= set(files)
    assert _front_matter(files["README.md"])["license"] == "apache-2.0"
    finished = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()][-1]
    assert finished["event"] == "run_finished" and finished["hub_url"].endswith("/tester/trained")
    resolved = yaml.safe_load((run / "config.resolved.yaml").read_text())
    assert "token" not in resolved["hub"] and resolved["hub"]["revision"] == "v1"
    _token_nowhere(run, out, err)


def test_a_search_pushes_its_best_model_once(tmp_path, online):
    bert = build_tiny_bert(tmp_path / "bert")
    make_sentiment_frame(48).to_csv(tmp_path / "reviews.csv", index=False)
    config = {
        "task": "text_classification",
        "model": {"name": bert},
        "data": {"source": str(tmp_path / "reviews.csv"), "columns": {"text": "review", "label": "sentiment"}},
        "training": {"num_train_epochs": 1, "per_device_train_batch_size": 16},
        "params": {"max_length": 16},
        "output": {"dir": str(tmp_path / "study"), "report_to": ["none"]},
        "search": {"trials": 2, "space": {"training.learning_rate": {"choice": [1e-2, 1e-3]}}, "sampler": "grid"},
        "hub": {"push": True, "repo_id": "tester/searched"},
    }
    result = trainforge.train(config)
    repo = online.repos["tester/searched"]
    assert len(repo.commits) == 1 and result.hub_url.endswith("/tester/searched")  # the trials never pushed
    files = set(online.files("tester/searched"))
    assert {"model.safetensors", "README.md", "search/leaderboard.csv", "search/best_config.yaml"} <= files
    assert not any(p.startswith("search/trial-") or p.endswith("study.db") for p in files)
