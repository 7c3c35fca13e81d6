"""End to end in real headless Chromium: upload a CSV, map columns, train a tiny model, watch it, use the playground.

Needs Debian's chromium at /usr/bin/chromium (``.ci/run`` installs it) and Playwright for Python; no browser is
downloaded. Screenshots land in the test's temporary directory (the path is printed).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import make_sentiment_frame

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def server(tmp_path):
    import uvicorn

    from trainforge.app.server import AppSettings, create_app

    app = create_app(AppSettings(tmp_path / "workspace", poll_s=0.2))
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    uv.should_exit = True
    thread.join(timeout=10)


def test_train_from_the_browser(server, tiny_bert, tmp_path, monkeypatch):
    playwright_api = pytest.importorskip("playwright.sync_api")
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN", raising=False)  # the server has no Hub token: Publish says so
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))
    url, app = server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots: {shots}")
    data = tmp_path / "reviews.csv"
    make_sentiment_frame(80).to_csv(data, index=False)

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        console_errors = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        # 1. the registry's tasks are offered; pick text classification
        options = page.locator("#task option").all_inner_texts()
        assert "text_classification" in options and "text_regression" in options
        page.select_option("#task", "text_classification")
        page.wait_for_selector("[data-key='training.learning_rate']")
        # 2. a local model folder typed into the model field
        page.fill("#model-name", tiny_bert)
        # 3. upload the CSV; the preview shows its rows and the mapping is guessed
        page.set_input_files("#upload", str(data))
        page.wait_for_selector("#preview-table")
        assert page.locator("#preview-table tbody tr").count() == 10
        assert page.input_value("#map-text") == "review"
        assert page.input_value("#map-label") == "sentiment"
        # map explicitly as a user would
        page.select_option("#map-text", "review")
        page.select_option("#map-label", "sentiment")
        # 4. invalid value: Validate shows the error beside the field, by key path
        page.fill("[data-key='training.learning_rate']", "-1")
        page.click("#validate-btn")
        error = page.locator("[data-error-for='training.learning_rate']")
        error.wait_for(state="visible")
        assert "greater than 0" in error.inner_text()
        # fix it and make the run tiny
        page.fill("[data-key='training.learning_rate']", "0.005")
        page.fill("[data-key='training.num_train_epochs']", "2")
        page.fill("[data-key='training.per_device_train_batch_size']", "16")
        page.fill("[data-key='params.max_length']", "32")
        page.locator("#advanced summary").click()
        page.fill("[data-key='training.logging_steps']", "1")
        page.wait_for_function("document.querySelector('#yaml').value.includes('logging_steps: 1')")
        yaml_text = page.input_value("#yaml")
        assert "task: text_classification" in yaml_text and "review" in yaml_text
        page.click("#validate-btn")
        page.wait_for_function(
            "document.querySelector('#validate-result').textContent.includes('config OK')"
            " || document.querySelector('#form-errors').textContent"
        )
        shown = page.eval_on_selector_all(
            "[data-error-for]", "ns => ns.map(n => n.dataset.errorFor + ': ' + n.textContent)"
        )
        assert page.inner_text("#form-errors") == "", [e for e in shown if not e.endswith(": ")]
        page.screenshot(path=str(shots / "1-form.png"), full_page=True)
        # 5. start: the runs page follows the run live until it succeeds
        page.click("#start-btn")
        page.wait_for_selector("#run-detail:not(.hidden)")
        page.wait_for_selector("#run-status.succeeded", timeout=180_000)
        page.wait_for_selector("#run-metrics tr[data-metric='eval_accuracy']")
        assert float(page.locator("#loss-chart svg").get_attribute("data-points")) >= 2
        assert page.locator("#loss-chart polyline").count() == 1
        assert float(page.locator("#eval-chart svg").get_attribute("data-points")) >= 1
        assert "step" in page.inner_text("#run-progress")
        page.wait_for_function("document.querySelector('#run-card').textContent.includes('text_classification')")
        page.screenshot(path=str(shots / "2-run.png"), full_page=True)
        # 6. the playground predicts with the finished run
        page.fill("#play-review", "a brilliant and lovely film")
        page.click("#predict-btn")
        page.wait_for_selector("#predictions td[data-column='prediction']")
        assert page.inner_text("#predictions td[data-column='prediction']") in ("positive", "negative")
        page.screenshot(path=str(shots / "3-playground.png"), full_page=True)
        # 7. use it: evaluate on a labelled file (a child process) and see the confusion matrix; the serve command;
        # publishing says the server has no token (and asks for none)
        page.wait_for_selector("#use:not(.hidden) #evaluate-btn")
        page.fill("#evaluate-source", str(data))
        page.click("#evaluate-btn")
        page.wait_for_selector("#confusion-matrix td.diagonal", timeout=120_000)
        assert page.locator("#evaluation-metrics tr[data-metric='accuracy']").count() == 1
        assert page.inner_text("#serve-command").startswith("trainforge serve ")
        assert "/v1/predict" in page.inner_text("#serve-curl")
        assert "no Hub token" in page.inner_text("#publish-unavailable")
        assert page.locator("#export-onnx").count() == 1 and page.locator("input[type=password]").count() == 0
        page.screenshot(path=str(shots / "4-use.png"), full_page=True)
        # 8. re-run with edits brings the config back into the form
        page.click("#rerun-btn")
        page.wait_for_function("document.querySelector('#yaml').value.includes('logging_steps: 1')")
        assert page.input_value("#model-name") == tiny_bert
        browser.close()
    # HTTP errors the test provoked (the 422 of Validate) are logged by Chromium too; script errors must not be.
    assert not [e for e in console_errors if "Failed to load resource" not in e], console_errors
    assert not [e for e in console_errors if "404" in e], console_errors
    job = app.state.store.list()[0]
    assert job.status == "succeeded" and (job.run_dir / "metrics.json").is_file()


def test_image_run_from_the_browser(server, tiny_vit, tmp_path, monkeypatch):
    """Upload a ZIP of class folders, see thumbnails and class counts, train a tiny ViT, predict an uploaded image."""
    import zipfile

    from conftest import IMAGE_CLASSES, make_image, make_image_folder

    playwright_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("TRAINFORGE_CACHE", str(tmp_path / "image-cache"))
    url, app = server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots: {shots}")
    make_image_folder(tmp_path / "shapes", per_class=8)
    archive = tmp_path / "shapes.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted((tmp_path / "shapes").rglob("*.png")):
            bundle.write(path, f"shapes/{path.relative_to(tmp_path / 'shapes').as_posix()}")
    colour, shape = IMAGE_CLASSES["blue_disk"]
    make_image(colour, shape, 4242).save(tmp_path / "query.png")

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        console_errors = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#task", "image_classification")
        page.wait_for_selector("[data-key='training.learning_rate']")
        page.fill("#model-name", tiny_vit)
        # the ZIP: thumbnails in the preview, images per class, the image and label columns mapped
        page.set_input_files("#upload", str(archive))
        page.wait_for_selector("#preview-table img.thumb")
        assert page.locator("#preview-table img.thumb").count() == 10
        assert page.inner_text("#class-counts-label tr[data-class='red_square'] td:last-child") == "8"
        assert page.input_value("#map-image") == "image" and page.input_value("#map-label") == "label"
        page.fill("[data-key='training.learning_rate']", "0.003")
        page.fill("[data-key='training.num_train_epochs']", "2")
        page.fill("[data-key='training.per_device_train_batch_size']", "8")
        page.wait_for_function("document.querySelector('#yaml').value.includes('learning_rate: 0.003')")
        page.screenshot(path=str(shots / "1-image-form.png"), full_page=True)
        page.click("#start-btn")
        page.wait_for_selector("#run-detail:not(.hidden)")
        page.wait_for_selector("#run-status.succeeded", timeout=180_000)
        # the playground: pick an image file, predict, see the class scores
        page.wait_for_selector("#play-file-image")
        page.set_input_files("#play-file-image", str(tmp_path / "query.png"))
        page.wait_for_selector("#play-image-image:not(.hidden)")
        page.click("#predict-btn")
        page.wait_for_selector("#prediction-scores .score")
        assert page.inner_text("#predictions td[data-column='prediction']") in IMAGE_CLASSES
        assert page.locator("#prediction-scores .score").count() == 2
        page.screenshot(path=str(shots / "2-image-playground.png"), full_page=True)
        browser.close()
    assert not [e for e in console_errors if "Failed to load resource" not in e], console_errors
    job = app.state.store.list()[0]
    assert job.status == "succeeded" and job.task == "image_classification"


def test_search_trials_table_in_the_browser(server, tiny_bert, tmp_path):
    """A run with a search: section shows its trials (state, parameters, value) and links the reports."""
    import json

    from app.test_app_images import search_config

    playwright_api = pytest.importorskip("playwright.sync_api")
    url, app = server
    data = tmp_path / "reviews.csv"
    make_sentiment_frame(48).to_csv(data, index=False)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        page.click("#nav-runs")
        body = json.dumps({"config": search_config(tiny_bert, data)})
        run_id = page.evaluate(
            "(body) => fetch('/api/runs', {method: 'POST', headers: {'Content-Type': 'application/json'}, body})"
            ".then((r) => r.json()).then((j) => j.id)",
            body,
        )
        page.wait_for_selector(f"#runs-table tr[data-run='{run_id}']")
        page.click(f"#runs-table tr[data-run='{run_id}']")
        page.wait_for_selector("#trials-table tr[data-trial='0']", timeout=120_000)  # appears while the search runs
        page.wait_for_selector("#run-status.succeeded", timeout=180_000)
        page.wait_for_selector("#search-links #leaderboard-link")
        assert page.locator("#trials-table tr[data-state='complete']").count() == 2
        assert page.locator("#trials-table tr.best").count() == 1
        assert "2 of 2 trial(s) done" in page.inner_text("#search-progress")
        # One loss curve per trial (the study's log repeats each trial's steps).
        assert page.locator("#loss-chart polyline[data-series='trial 0']").count() == 1
        assert page.locator("#loss-chart polyline[data-series='trial 1']").count() == 1
        assert int(page.get_attribute("#eval-chart svg", "data-points")) >= 2  # the search metric, per trial
        href = page.get_attribute("#best-config-link", "href")
        assert "learning_rate" in page.evaluate(f"fetch({href!r}).then((r) => r.text())")
        page.screenshot(path=str(tmp_path / "search.png"), full_page=True)
        browser.close()


def test_estimate_from_the_browser(server, tiny_bert, tmp_path):
    """The form's Estimate button shows the parameter count, the memory by component and whether it fits."""
    from transformers import AutoModelForSequenceClassification

    playwright_api = pytest.importorskip("playwright.sync_api")
    url, _app = server
    data = tmp_path / "reviews.csv"
    make_sentiment_frame(40).to_csv(data, index=False)
    expected = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2).num_parameters()
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#task", "text_classification")
        page.wait_for_selector("[data-key='training.learning_rate']")
        page.fill("#model-name", tiny_bert)
        page.fill("#data-source", str(data))
        page.click("#preview-btn")
        page.wait_for_selector("#preview-table")
        page.select_option("#map-text", "review")
        page.select_option("#map-label", "sentiment")
        page.uncheck("#estimate-measure")  # counts and memory only: no training steps in this test
        page.fill("#estimate-memory-limit", "64GiB")
        page.click("#estimate-btn")
        cell = page.locator("#estimate-params tr[data-row='total_params'] td")
        cell.wait_for(timeout=120_000)
        assert cell.inner_text() == f"{expected:,}"
        assert page.locator("#estimate-memory tr[data-component='activations'] td").count() == 2
        assert page.get_attribute("#estimate-fits", "data-fits") == "true"
        assert "64.00 GiB available" in page.inner_text("#estimate-fits")
        page.screenshot(path=str(tmp_path / "estimate.png"), full_page=True)
        browser.close()
