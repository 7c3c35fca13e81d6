"""Image data in the web app: ZIP uploads of class folders and of images + metadata, thumbnails and class counts in
the preview, an image_classification run trained through the API, and the playground's image predictions (data URIs
only, size-limited)."""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from pathlib import Path

import pytest

from conftest import IMAGE_CLASSES, make_image, make_image_folder, make_redness_images

pytest.importorskip("fastapi")
pytest.importorskip("PIL")

from fastapi.testclient import TestClient  # noqa: E402

from trainforge.app.files import UploadLimits  # noqa: E402
from trainforge.app.server import AppSettings, create_app  # noqa: E402


def make_client(workspace: Path, **settings) -> TestClient:
    return TestClient(create_app(AppSettings(workspace, poll_s=0.1, **settings)), base_url="http://127.0.0.1")


def upload(client, name: str, content: bytes):
    return client.post("/api/uploads", files={"files": (name, content, "application/octet-stream")})


def wait_for(client: TestClient, run_id: str, statuses: tuple[str, ...], timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while (job := client.get(f"/api/runs/{run_id}").json())["status"] not in statuses:
        assert time.monotonic() < deadline, f"run stayed {job['status']}: {job}"
        time.sleep(0.2)
    return job


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TRAINFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "image-cache"))


def folder_zip(root: Path, prefix: str) -> bytes:
    """``root``'s files zipped under ``prefix/`` (a zipped folder, as file managers write it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                bundle.write(path, f"{prefix}/{path.relative_to(root).as_posix()}")
    return buffer.getvalue()


def data_uri(image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture()
def client(tmp_path):
    with make_client(tmp_path / "ws", limits=UploadLimits(max_bytes=2_000_000)) as c:
        yield c


def test_class_folder_zip_previews_thumbnails_and_counts(client, tmp_path):
    make_image_folder(tmp_path / "shapes", per_class=5)
    response = upload(client, "shapes.zip", folder_zip(tmp_path / "shapes", "shapes"))
    assert response.status_code == 201, response.text
    saved = response.json()[0]
    path = Path(saved["path"])
    # the zipped folder itself is the source (not one class called "shapes"), inside the upload store
    assert path.name == "shapes" and sorted(p.name for p in path.iterdir()) == sorted(IMAGE_CLASSES)
    assert path.resolve().is_relative_to((client.app.state.settings.workspace / "uploads").resolve())
    preview = client.post(
        "/api/preview", json={"source": saved["path"], "task": "image_classification", "rows": 4}
    ).json()
    assert preview["mapping"] == {"image": "image", "label": "label"}
    assert preview["total_rows"] == 10 and len(preview["rows"]) == 4
    assert preview["class_counts"] == {"label": {"blue_disk": 5, "red_square": 5}}
    thumbs = preview["thumbnails"]["image"]
    assert len(thumbs) == 4 and all(t.startswith("data:image/jpeg;base64,") for t in thumbs)
    from PIL import Image

    small = Image.open(io.BytesIO(base64.b64decode(thumbs[0].split(",", 1)[1])))
    assert small.size == (32, 32)  # never enlarged; larger images come back at most 96 pixels wide
    # the rows' classes alternate (the reader interleaves them), so the first thumbnails show every class
    assert {r["label"] for r in preview["rows"][:2]} == set(IMAGE_CLASSES)


def test_metadata_zip_for_image_regression_and_guessed_image_column(client, tmp_path):
    root = tmp_path / "counts"
    records = make_redness_images(root, rows=8)
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    saved = upload(client, "counts.zip", folder_zip(root, "counts")).json()[0]
    preview = client.post("/api/preview", json={"source": saved["path"], "task": "image_regression"}).json()
    assert preview["total_rows"] == 8 and preview["mapping"]["image"] == "image"
    assert preview["class_counts"] == {}  # a regression target has no classes
    assert all(t and t.startswith("data:image/jpeg") for t in preview["thumbnails"]["image"])
    # a table whose image column has another name: the guess finds it by its file names
    table = tmp_path / "listing.csv"
    table.write_text("picture,redness\n" + "".join(f"{root / r['file_name']},{r['redness']}\n" for r in records))
    guessed = client.post("/api/preview", json={"source": str(table), "task": "image_regression"}).json()
    assert guessed["mapping"]["image"] == "picture" and guessed["mapping"]["target"] == "redness"
    assert guessed["thumbnails"]["picture"][0].startswith("data:image/jpeg")


def test_thumbnails_only_of_files_in_the_allowed_folders(client, tmp_path):
    outside = tmp_path / "elsewhere"
    make_image_folder(outside, per_class=1)
    listing = f"image,label\n{outside / 'red_square' / '0.png'},a\n{outside / 'blue_disk' / '0.png'},b\n".encode()
    saved = upload(client, "listing.csv", listing).json()[0]
    preview = client.post("/api/preview", json={"source": saved["path"], "task": "image_classification"}).json()
    assert preview["rows"][0]["image"] == str(outside / "red_square" / "0.png")
    assert preview["thumbnails"]["image"] == [None, None]  # neither in the upload store nor beside the listing
    assert preview["class_counts"] == {"label": {"a": 1, "b": 1}}


@pytest.fixture(scope="module")
def image_run(tiny_vit, tmp_path_factory):
    """An image_classification run on an uploaded ZIP, trained through the API."""
    root = tmp_path_factory.mktemp("app-image-run")
    make_image_folder(root / "shapes", per_class=8)
    limits = UploadLimits(max_bytes=2_000_000, max_image_bytes=20_000)
    with make_client(root / "ws", limits=limits) as client:
        saved = upload(client, "shapes.zip", folder_zip(root / "shapes", "shapes")).json()[0]
        config = {
            "task": "image_classification",
            "model": {"name": tiny_vit},
            "data": {"source": saved["path"], "eval_fraction": 0.25},
            "training": {"num_train_epochs": 2, "learning_rate": 3e-3, "per_device_train_batch_size": 8},
            "output": {"report_to": ["none"], "save_checkpoints": False},
        }
        created = client.post("/api/runs", json={"config": config})
        assert created.status_code == 201, created.text
        job = wait_for(client, created.json()["id"], ("succeeded", "failed", "cancelled"))
        assert job["status"] == "succeeded", client.get(f"/api/runs/{job['id']}/logs").text
        yield client, job


def test_image_run_playground_predicts_a_data_uri(image_run):
    client, job = image_run
    (field,) = job["playground"]["inputs"]
    assert job["playground"]["kind"] == "form" and field["column"] == "image" and field["image"] is True
    colour, shape = IMAGE_CLASSES["red_square"]
    answer = client.post(
        f"/api/runs/{job['id']}/predict", json={"inputs": {"image": data_uri(make_image(colour, shape, 99))}}
    )
    assert answer.status_code == 200, answer.text
    row = answer.json()["predictions"][0]
    assert row["prediction"] in IMAGE_CLASSES
    assert abs(row["prob_red_square"] + row["prob_blue_disk"] - 1) < 1e-4


def test_image_inputs_must_be_data_uris_within_the_limit(image_run, tmp_path):
    client, job = image_run
    path = tmp_path / "x.png"
    make_image((1, 2, 3), "disk", 1).save(path)
    by_path = client.post(f"/api/runs/{job['id']}/predict", json={"inputs": {"image": str(path)}})
    assert by_path.status_code == 422 and "data:image" in by_path.text and "row 1" in by_path.text
    import numpy as np
    from PIL import Image

    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8))
    big = client.post(f"/api/runs/{job['id']}/predict", json={"inputs": {"image": data_uri(noise)}})
    assert big.status_code == 413 and "limit is 20000 bytes" in big.json()["detail"]


def test_request_bodies_beyond_the_limit_are_refused_before_parsing(tmp_path):
    with make_client(tmp_path / "ws", limits=UploadLimits(max_request_bytes=1000)) as client:
        response = client.post("/api/config/yaml", json={"config": {"task": "x" * 2000}})
        assert response.status_code == 413 and "1000 bytes" in response.json()["detail"]
        assert client.post("/api/config/yaml", json={"config": {"task": "x"}}).status_code == 200


# ------------------------------------------------------------------------------------------------ search trials


def search_config(tiny_bert: str, source: Path) -> dict:
    return {
        "task": "text_classification",
        "model": {"name": tiny_bert},
        "data": {"source": str(source), "columns": {"text": "review", "label": "sentiment"}, "eval_fraction": 0.25},
        "training": {"num_train_epochs": 1, "per_device_train_batch_size": 16, "logging_steps": 1},
        "params": {"max_length": 16},
        "search": {"trials": 2, "space": {"training.learning_rate": {"choice": [0.001, 0.005]}}, "pruner": "none"},
        "output": {"report_to": ["none"], "save_checkpoints": False},
    }


def test_search_trials_stream_and_reports(tmp_path, tiny_bert):
    from conftest import make_sentiment_frame

    data = tmp_path / "reviews.csv"
    make_sentiment_frame(48).to_csv(data, index=False)
    with make_client(tmp_path / "ws") as client:
        created = client.post("/api/runs", json={"config": search_config(tiny_bert, data)})
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        job = wait_for(client, run_id, ("succeeded", "failed", "cancelled"))
        assert job["status"] == "succeeded", client.get(f"/api/runs/{run_id}/logs").text
        with client.stream("GET", f"/api/runs/{run_id}/events") as response:
            text = "".join(response.iter_text())
        events = [json.loads(b.split("data: ", 1)[1]) for b in text.split("\n\n") if "event: event" in b]
        trials = [e for e in events if e["event"] == "search_trial"]
        assert [t["number"] for t in trials] == [0, 1] and all(t["state"] == "complete" for t in trials)
        assert sum(e["event"] == "trial_started" for e in events) == 2
        assert any(e["event"] == "search_finished" for e in events)
        board = client.get(f"/api/runs/{run_id}/search/leaderboard.csv")
        assert board.status_code == 200 and board.text.startswith("trial,state,value")
        best = client.get(f"/api/runs/{run_id}/search/best_config.yaml")
        assert best.status_code == 200 and "learning_rate" in best.text
        assert client.get(f"/api/runs/{run_id}/search/config.resolved.yaml").status_code == 404
        assert client.get(f"/api/runs/{run_id}/search/..%2Fmetrics.json").status_code == 404
