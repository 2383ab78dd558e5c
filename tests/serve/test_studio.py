"""The studio page in a real browser (Debian's headless Chromium driven by Playwright): it loads without console
errors, shows an image run's samples, streams a text run's completion and downloads a table run's CSV.
Screenshots go to test-artifacts/studio/ (not committed)."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "studio"


@pytest.fixture(scope="module")
def page(live_server):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "the studio tests need Debian's chromium package (make test installs it: apt-get install chromium)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        opened = browser.new_page()
        opened.console_errors = []
        opened.on("console", lambda message: message.type == "error" and opened.console_errors.append(message.text))
        opened.on("pageerror", lambda error: opened.console_errors.append(str(error)))
        yield opened
        browser.close()


def _open_run(page, live_server, name):
    page.goto(f"{live_server}/?run={name}")
    page.wait_for_selector("#panel h2")
    assert page.inner_text("#panel h2").startswith(name)


def test_an_image_run_shows_samples(page, live_server):
    _open_run(page, live_server, "digits")
    page.select_option("#label", "3")
    page.click("#sample")
    page.wait_for_function("document.querySelector('#grid').naturalWidth > 0")
    page.click("#interpolate")
    page.wait_for_function("document.querySelector('#frame').naturalWidth > 0")
    page.screenshot(path=ARTIFACTS / "image.png")
    assert page.console_errors == [] and page.is_hidden("#error")


def test_a_text_run_streams_its_completion(page, live_server):
    _open_run(page, live_server, "shakespeare")
    page.fill("#prompt", "ROMEO:")
    page.fill("#max_tokens", "40")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#completion').textContent.length > 'ROMEO:'.length + 20")
    page.screenshot(path=ARTIFACTS / "text.png")
    assert page.inner_text("#completion").startswith("ROMEO:") and page.console_errors == []


def test_a_table_run_previews_rows_and_downloads_a_csv(page, live_server, served):
    _open_run(page, live_server, "penguins")
    page.click("#sample")
    page.wait_for_selector("#rows table")
    with page.expect_download() as download:
        page.click("#download")
    rows = pd.read_csv(io.StringIO(Path(download.value.path()).read_text()))
    assert list(rows.columns) == list(pd.read_csv(served / "penguins" / "samples" / "final.csv").columns)
    assert len(rows) == 100
    page.screenshot(path=ARTIFACTS / "table.png")
    assert page.console_errors == []


def test_api_errors_are_shown_as_messages(page, live_server):
    _open_run(page, live_server, "digits")
    page.fill("#n", "100000")
    page.click("#sample")
    page.wait_for_selector("#error:not([hidden])")
    assert "at most 1024 samples a request" in page.inner_text("#error")
