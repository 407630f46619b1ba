"""A real Chromium (Debian's) driven by Playwright, against the real hub of the integration fixtures. Every browser
context a test opens feeds the secret scan (`record_browser_answers`), which ends the layer."""

import os
import shutil

import pytest

from tests.conftest import ARTIFACTS, ROOT
from tests.support.secretscan import record_browser_answers

CHROMIUM = os.environ.get("ODH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]
SCREENSHOTS = os.path.join(ARTIFACTS, "screenshots")
DOC_IMAGES = os.path.join(ROOT, "docs", "images")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    record_browser_answers(context)  # every answer the browser receives joins the layer's secret scan
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.js_errors = errors
    yield page
    context.close()


@pytest.fixture
def shot():
    os.makedirs(SCREENSHOTS, exist_ok=True)

    def _shot(page, name):
        """A screenshot in test-artifacts/screenshots; the guides' images (docs/images/NAME.png) are always
        the latest run's, so a screenshot the docs use is written there too."""
        path = os.path.join(SCREENSHOTS, f"{name}.png")
        page.screenshot(path=path, full_page=False)
        doc_image = os.path.join(DOC_IMAGES, f"{name}.png")
        if os.path.exists(doc_image):
            shutil.copyfile(path, doc_image)
        return path

    return _shot
