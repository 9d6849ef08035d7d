"""The page of `quaterion serve` in a real browser: Playwright drives Debian's chromium against
`quaterion serve` (a subprocess on 127.0.0.1) on the demo's servable and store.

Skips, saying why, when Playwright or chromium is missing (`scripts/test.sh` installs chromium
with apt when it can). Set QUATERION_SCREENSHOT=path.png to keep the screenshot.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory):
    """A tiny `quaterion demo` run: servable and store (with the frozen baseline)."""
    pytest.importorskip("qdrant_edge")
    output = tmp_path_factory.mktemp("demo")
    samples = str(2 * MIN_PER_CATEGORY * len(DEMO_CATEGORIES))
    assert main(["demo", "--output", str(output), "--samples", samples, "--epochs", "1"]) == 0
    return output


@pytest.fixture(scope="module")
def served(demo_output):
    """Base URL of `quaterion serve` running on the demo's servable and store."""
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    port = free_port()
    command = [sys.executable, "-m", "quaterion.cli", "serve", str(demo_output / "servable")]
    command += ["--store", str(demo_output / "qdrant"), "--port", str(port)]
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
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert outside == []  # nothing fetched from outside the service
