"""The page of `quaterion serve` in a real browser: Playwright drives Debian's chromium against
`quaterion serve` (a subprocess on 127.0.0.1) on the demo's servable and store.

Skips, saying why, when Playwright or chromium is missing (`scripts/test.sh` installs chromium
with apt when it can). Set QUATERION_SCREENSHOT=path.png to keep the screenshot.
"""

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from support import free_port

from quaterion.cli import main
from quaterion.demo import DEMO_CATEGORIES, MIN_PER_CATEGORY

CHROMIUM = os.environ.get("QUATERION_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
QUERY = "a sweet dish served at the end of a meal"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory):
    """A tiny `quaterion demo` run: servable and store (with the frozen baseline)."""
    pytest.importorskip("qdrant_edge")
    output = tmp_path_factory.mktemp("demo")
    samples = str(2 * MIN_PER_CATEGORY * len(DEMO_CATEGORIES))
    assert main(["demo", "--output", str(output), "--samples", samples, "--epochs", "1"]) == 0
    return output


@contextmanager
def serving(servable: Path, store: Path):
    """Base URL of `quaterion serve` (a subprocess) on `servable` and `store`."""
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    port = free_port()
    command = [sys.executable, "-m", "quaterion.cli", "serve", str(servable)]
    command += ["--store", str(store), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"quaterion serve exited: {server.stdout.read().decode()}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "quaterion serve did not answer /health"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def served(demo_output):
    """Base URL of `quaterion serve` running on the demo's servable and store."""
    with serving(demo_output / "servable", demo_output / "qdrant") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"no chromium at {CHROMIUM}: install it with `apt-get install -y chromium`")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_page_searches_compares_maps_and_lists_confusions(browser, served, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 1400})
    outside = []
    page.on(
        "request",
        lambda request: None if request.url.startswith(served) else outside.append(request.url),
    )
    page.goto(served + "/")
    health = page.wait_for_selector("#health:has-text('points')")
    points = int(health.inner_text().split(" points")[0].split()[-1])
    page.wait_for_function(f"document.querySelectorAll('#map circle').length === {points}")
    assert page.locator("#legend li").count() == len(DEMO_CATEGORIES)

    page.fill("#query", QUERY)
    page.fill("#limit", "5")
    page.click("button[type=submit]")
    page.wait_for_selector("#results .column ol.hits li")
    columns = page.locator("#results .column")
    assert columns.count() == 2  # trained model and frozen baseline, side by side
    assert columns.nth(0).locator("h3").inner_text() == "trained model"
    assert columns.nth(1).locator("h3").inner_text() == "frozen encoder (baseline)"
    for column in range(2):
        hits = columns.nth(column).locator("li")
        assert hits.count() == 5
        scores = [float(hits.nth(i).locator(".score").inner_text()) for i in range(5)]
        assert scores == sorted(scores, reverse=True)
        assert hits.nth(0).locator(".group").inner_text() in DEMO_CATEGORIES
        assert hits.nth(0).locator(".object").inner_text().strip()
    top = columns.nth(0).locator("li").nth(0).locator(".group").inner_text()
    assert top == "noun.food"  # a dessert query finds food

    # a result picked as the query: the search runs with its stored vectors
    picked = columns.nth(0).locator("li").nth(2).locator(".object")
    text = picked.inner_text().strip()
    picked.click()
    page.wait_for_selector("#query-shown:not([hidden])")
    assert text in page.inner_text("#query-shown")
    page.wait_for_function(
        "document.querySelector('#results .column li .object')?.innerText.trim() === " + repr(text)
    )
    first_hit = page.locator("#results .column").nth(0).locator("li").nth(0)
    assert float(first_hit.locator(".score").inner_text()) == pytest.approx(1, abs=2e-3)

    page.hover("#map circle >> nth=0")
    tooltip = page.wait_for_selector("#tooltip:not([hidden])")
    assert tooltip.inner_text().strip()

    rows = page.locator("#confusions tbody tr")
    assert rows.count() > 0
    first = rows.nth(0).locator("td")
    assert first.nth(2).inner_text() != first.nth(4).inner_text()  # groups differ
    assert "nearest neighbour in another group" in page.inner_text("#confusion-summary")

    page.fill("#query", "   ")
    page.click("button[type=submit]")
    page.wait_for_selector("#search-error:has-text('empty')")

    shot = Path(os.environ.get("QUATERION_SCREENSHOT", tmp_path / "serve.png"))
    page.fill("#query", QUERY)
    page.click("button[type=submit]")
    page.wait_for_selector("#search-error:text-is('')", state="attached")
    page.wait_for_selector("#query-shown", state="hidden")  # a typed query is in the box
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert outside == []  # nothing fetched from outside the service


@pytest.fixture(scope="module")
def image_store(tmp_path_factory):
    """An image servable (frozen EfficientNet-Lite0 and a seeded linear head) and a store of
    48 Fashion-MNIST images it indexed with their classes, written through the Python API."""
    pytest.importorskip("qdrant_edge")
    import torch

    from quaterion.data import fashion_mnist_groups
    from quaterion.serving.baseline import encode_with_baseline
    from quaterion.serving.indexing import index_objects
    from quaterion.serving.payloads import object_payload
    from quaterion_models import SimilarityModel
    from quaterion_models.encoders.extras import EfficientNetLite0Encoder
    from quaterion_models.heads import LinearHead

    try:
        samples = fashion_mnist_groups("train", limit=48)
        encoder = EfficientNetLite0Encoder(image_size=32)
    except (FileNotFoundError, ImportError, OSError) as exc:
        pytest.skip(f"Fashion-MNIST or EfficientNet-Lite0 is not installed: {exc}")
    torch.manual_seed(0)
    model = SimilarityModel(encoder, LinearHead(encoder.embedding_size, 16))
    root = tmp_path_factory.mktemp("images")
    model.save(root / "servable")
    images, labels = [s.obj for s in samples], [s.group for s in samples]
    frozen, trained = encode_with_baseline(model, images, batch_size=16)
    payloads = [
        {"label": g, **object_payload(image)} for image, g in zip(images, labels, strict=True)
    ]
    index_objects(
        str(root / "store"), str(root / "servable"), images, labels, payloads, trained, frozen
    )
    return root


def test_an_image_store_shows_images_and_searches_with_a_picked_image(browser, image_store):
    with serving(image_store / "servable", image_store / "store") as url:
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.goto(url + "/")
        page.wait_for_function("document.querySelectorAll('#map circle').length === 48")
        page.hover("#map circle >> nth=3")
        image = page.wait_for_selector("#tooltip:not([hidden]) img")
        assert image.get_attribute("src").startswith("data:image/png;base64,")
        assert page.locator("#confusions tbody tr img").count() > 0  # objects as images
        page.fill("#limit", "4")
        page.click("#map circle >> nth=3")  # the point as the query
        page.wait_for_selector("#query-shown:not([hidden]) img")
        page.wait_for_selector("#results .column ol.hits li img")
        columns = page.locator("#results .column")
        assert columns.count() == 2
        for column in range(2):
            hits = columns.nth(column).locator("li")
            assert hits.count() == 4 and hits.locator("img").count() == 4
        query_src = page.get_attribute("#query-shown img", "src")
        assert columns.nth(0).locator("li img").nth(0).get_attribute("src") == query_src
        assert page.inner_text("#search-error") == ""


def test_a_store_of_pairs_shows_a_map_and_no_confusions(browser, demo_output, tmp_path):
    rows = [f'"query {i}","answer number {i}",{i % 2}' for i in range(12)]
    (tmp_path / "pairs.csv").write_text("obj_a,obj_b,score\n" + "\n".join(rows) + "\n")
    servable, store = demo_output / "servable", tmp_path / "store"
    assert main(["index", str(servable), str(tmp_path / "pairs.csv"), "--store", str(store)]) == 0
    with serving(servable, store) as url:
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.goto(url + "/")
        page.wait_for_function("document.querySelectorAll('#map circle').length === 12")
        page.wait_for_selector("#confusion-section", state="hidden")
        assert page.locator("#legend li").count() == 0
        assert "pairs" in page.inner_text("#map-title")
        page.fill("#query", "answer number 3")
        page.click("button[type=submit]")
        page.wait_for_selector("#results .column ol.hits li")
        first = page.locator("#results .column").nth(0).locator("li").nth(0)
        assert first.locator(".object").inner_text() == "answer number 3"
        assert first.locator(".group").count() == 0  # a pair score is no group
