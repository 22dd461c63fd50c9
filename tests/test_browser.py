"""End to end in a real browser: Debian's Chromium (never a downloaded one) driven by Playwright.

Types a prompt, clicks Generate, watches the animation run to the end, checks the final text and
the colours, and saves test-artifacts/browser.png.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from microdllm.sampling import DEFAULT

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PROMPT = "One day, Tom and his dog went to the park."
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not CHROMIUM.exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def page(start_server):
    server = start_server()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(server.url, wait_until="domcontentloaded")
            yield page
        finally:
            browser.close()


def test_generate_in_the_browser(page):
    prompt_box = page.locator("#mdl-prompt textarea")
    prompt_box.wait_for(timeout=30_000)
    prompt_box.fill(PROMPT)
    page.locator("#mdl-generate").click()

    # The animation: masked characters are on the canvas while it runs...
    page.locator("#mdl-canvas .mdl-canvas .mdl-mask").first.wait_for(timeout=30_000)
    seen_status = page.locator("#mdl-status").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#mdl-canvas").screenshot(path=str(ARTIFACTS / "browser-running.png"))
    # ...and when it is done the final text box is filled in.
    final_box = page.locator("#mdl-final textarea")
    page.wait_for_function("el => el.value.length > 0", arg=final_box.element_handle(), timeout=90_000)
    final = final_box.input_value()
    status = page.locator("#mdl-status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "browser.png"), full_page=True)

    assert re.search(r"Step \d+ of \d+", seen_status) or "Done" in seen_status
    assert "Done" in status
    assert final.startswith(PROMPT)
    assert len(final) > len(PROMPT)
    assert page.locator("#mdl-canvas .mdl-canvas .mdl-mask").count() == 0  # no masks left
    # The prompt is drawn in Okabe-Ito blue (the app's CSS is served), the chart is drawn.
    colour = page.locator("#mdl-canvas .mdl-canvas .mdl-prompt").first.evaluate("el => getComputedStyle(el).color")
    assert colour == "rgb(0, 114, 178)"
    assert page.locator("#mdl-chart svg polyline").count() == 1


def test_stop_cancels_a_running_generation(page):
    page.locator("#mdl-prompt textarea").fill("Lily had a big red ball.")
    steps = page.locator("#mdl-steps input[type=number]")
    steps.fill("250")       # a long run (250 steps at 40 ms each), so Stop lands while it is running
    steps.press("Enter")
    threshold = page.locator("#mdl-threshold input[type=number]")
    threshold.fill("1")     # no early reveals: a confident model would otherwise finish in a few steps
    threshold.press("Enter")
    page.locator("#mdl-generate").click()
    page.locator("#mdl-canvas .mdl-canvas .mdl-mask").first.wait_for(timeout=30_000)
    page.locator("#mdl-stop").click()
    page.wait_for_function("() => document.querySelector('#mdl-status').innerText.includes('Stopped')",
                           timeout=10_000)
    page.wait_for_timeout(1000)  # nothing more arrives: the run was cancelled, not just hidden
    status = page.locator("#mdl-status").inner_text()
    assert page.locator("#mdl-final textarea").input_value() == "", status
    assert page.locator("#mdl-canvas .mdl-canvas .mdl-mask").count() > 0, status
    assert "Stopped" in status
    steps.fill(str(DEFAULT.steps))   # back to the defaults for the tests that follow
    steps.press("Enter")
    threshold.fill(str(DEFAULT.threshold))
    threshold.press("Enter")


def test_forward_process_and_model_tabs(page):
    page.get_by_role("tab", name="Forward process").click()
    curves = page.locator(".mdl-schedule svg polyline")
    curves.first.wait_for(timeout=10_000)
    assert curves.count() == 3
    page.screenshot(path=str(ARTIFACTS / "browser-forward.png"), full_page=True)
    page.get_by_role("tab", name="Model").click()
    card = page.locator("#mdl-card")
    card.wait_for(timeout=10_000)
    assert "bundled" in card.inner_text() and "Parameters" in card.inner_text()
    page.screenshot(path=str(ARTIFACTS / "browser-model.png"), full_page=True)


def test_compare_tab_writes_with_both_models(page):
    page.get_by_role("tab", name="Compare").click()
    page.locator("#mdl-cmp-prompt textarea").fill("Tom saw a dog.")
    page.locator("#mdl-cmp-go").click()
    for side in ("#mdl-cmp-diff-status", "#mdl-cmp-ar-status"):
        page.locator(side, has_text="done").wait_for(timeout=90_000)
    ar_status = page.locator("#mdl-cmp-ar-status").inner_text()
    assert "model evaluations" in ar_status
    page.screenshot(path=str(ARTIFACTS / "browser-compare.png"), full_page=True)
