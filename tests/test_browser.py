"""End to end in a real browser: Debian's Chromium (never a downloaded one) driven by Playwright.

Types a prompt, clicks Generate, watches the animation run to the end, checks the final text and
the colours, and saves test-artifacts/browser.png.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import CHROMIUM, CHROMIUM_ARGS

from microdllm.sampling import DEFAULT

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PROMPT = "One day, Tom and his dog went to the park."

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
    assert page.locator("#mdl-chart svg polyline:not(.mdl-entropy)").count() == 1   # masks left (and the entropy)


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


def _choose_model(page, label: str, note: str) -> None:
    """Pick a bundled model in the selector (by words of its label) and wait for its line under it."""
    page.locator("#mdl-model input").click()
    page.get_by_role("option", name=re.compile(label)).click()
    page.locator("#mdl-model-note", has_text=note).wait_for(timeout=30_000)


def _set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_the_teaching_views_in_the_browser(page):
    """Generate; hover a character and read its candidates; rewind to step 1 and see masks and ghost
    guesses; branch and see the run finish with the prompt intact; read the Forward tab's predictions."""
    page.get_by_role("tab", name="Generate").click()
    page.locator("#mdl-prompt textarea").fill(PROMPT)
    _set_number(page, "mdl-threshold", 1)    # no early reveals: step 1 writes one character of its block,
    final_box = page.locator("#mdl-final textarea")    # and the model has a guess under the other
    page.locator("#mdl-generate").click()
    page.wait_for_function("el => el.value.length > 0", arg=final_box.element_handle(), timeout=90_000)
    first_final = final_box.input_value()
    assert page.locator("#mdl-heatmap svg rect").count() > len(first_final) - len(PROMPT)

    # Alternatives: hover a written character, its top candidates appear
    char = page.locator("#mdl-canvas .mdl-canvas .mdl-gen").nth(12)
    char.hover()
    popup = char.locator(".mdl-cands")
    popup.wait_for(state="visible", timeout=5_000)
    assert re.match(r"^\S+ (\d+%|<1%|>99%)( · \S+ (\d+%|<1%|>99%)){4}$", popup.inner_text()), popup.inner_text()
    page.locator("#mdl-canvas").screenshot(path=str(ARTIFACTS / "browser-candidates.png"))

    # The heatmap names the character and step of a cell
    cell = page.locator("#mdl-heatmap svg rect", has=page.locator("title", has_text="revealed at step")).first
    assert re.match(r"^'.+' revealed at step \d+ \(position \d+\)$", cell.locator("title").text_content())

    # Rewind to step 1 with the model's guesses on: masks, and faint guesses under some of them
    page.locator("#mdl-ghost input[type=checkbox]").check()
    _set_number(page, "mdl-scrub", 1)
    page.locator("#mdl-status", has_text="Rewound to step 1").wait_for(timeout=10_000)
    assert page.locator("#mdl-canvas .mdl-canvas .mdl-mask").count() > 0
    ghosts = page.locator("#mdl-canvas .mdl-canvas .mdl-ghost")
    ghosts.first.wait_for(timeout=10_000)
    assert ghosts.count() > 0
    ghost_colour = ghosts.first.evaluate("el => getComputedStyle(el).fontStyle")
    assert ghost_colour == "italic"                               # guesses look unlike committed text
    page.screenshot(path=str(ARTIFACTS / "browser-rewind.png"), full_page=True)

    # Branch from step 1 with another temperature and seed: streams to the end, prompt intact
    _set_number(page, "mdl-temperature", 0.8)
    page.locator("#mdl-branch").click()
    page.locator("#mdl-status", has_text="Done").wait_for(timeout=90_000)
    page.wait_for_function("el => el.value.length > 0", arg=final_box.element_handle(), timeout=30_000)
    branched = final_box.input_value()
    assert branched.startswith(PROMPT) and len(branched) == len(first_final)
    page.screenshot(path=str(ARTIFACTS / "browser-branch.png"), full_page=True)
    _set_number(page, "mdl-temperature", 0)
    _set_number(page, "mdl-threshold", DEFAULT.threshold)

    # Replay from the start: the slider moves back to the end. The status said Done before the replay
    # began: wait for a replayed step first, so that the replay is over when the next test starts (its
    # frames would write over that test's status)
    page.locator("#mdl-play").click()
    page.locator("#mdl-status", has_text="Rewound to step").wait_for(timeout=30_000)
    page.locator("#mdl-status", has_text="Done").wait_for(timeout=60_000)

    # The Forward tab: the model's predictions for the masked characters
    page.get_by_role("tab", name="Forward process").click()
    pred = page.locator("#mdl-fwd-pred")
    pred.wait_for(timeout=10_000)
    text = pred.inner_text()
    assert "%" in text and "objective" in text.lower(), text
    page.screenshot(path=str(ARTIFACTS / "browser-forward-predictions.png"), full_page=True)
    page.get_by_role("tab", name="Generate").click()


def _status(page) -> str:
    return page.locator("#mdl-status").inner_text()


def _step(page) -> int:
    return int(re.search(r"step (\d+)", _status(page)).group(1))


def test_the_class_drives_the_run(page):
    """Issue #22 in the browser: hold mid-run and step three times by hand (the keyboard's → once), reveal
    two chosen masks and continue, edit a character and continue, one position's chart, projector mode.
    With the model that denoises blocks of 2 (the default drafts and checks: nothing to reveal by hand)."""
    page.get_by_role("tab", name="Generate").click()
    _choose_model(page, "blocks of 2", "Writes blocks of 2")
    page.locator("#mdl-prompt textarea").fill(PROMPT)
    _set_number(page, "mdl-threshold", 1)
    _set_number(page, "mdl-polish", 0)
    # slow motion at 150 ms a step (the default is 40): Hold lands mid-run even when a busy host answers
    # the click late (at 40 ms the run could end first, and the status never said Paused)
    if not page.locator("#mdl-delay").is_visible():
        page.get_by_role("button", name="Advanced").first.click()
    _set_number(page, "mdl-delay", 150)
    page.locator("#mdl-generate").click()
    # this run's own frames (the canvas of the test before may still show masks): then Hold lands mid-run
    page.wait_for_function("() => /^Step \\d+ of/.test(document.querySelector('#mdl-status').innerText.trim())",
                           timeout=30_000)
    page.locator("#mdl-hold").click()
    page.locator("#mdl-status", has_text="Paused").wait_for(timeout=30_000)   # the frame in progress, on a busy host
    step, nfe = _step(page), int(re.search(r"(\d+) model evaluation", _status(page)).group(1))
    for k in range(1, 4):                          # Next step, Next step, then the → key
        if k < 3:
            page.locator("#mdl-next").click()
        else:
            page.locator("body").click(position={"x": 5, "y": 5})
            page.keyboard.press("ArrowRight")
        page.locator("#mdl-status", has_text=f"at step {step + k} of").wait_for(timeout=10_000)
        now = int(re.search(r"(\d+) model evaluation", _status(page)).group(1))
        assert now - nfe <= 1, _status(page)       # one evaluation a step at most
        nfe = now
    page.screenshot(path=str(ARTIFACTS / "drive-1-stepped.png"), full_page=True)
    _set_number(page, "mdl-delay", 0)              # the rest of the test continues runs to their end

    # Reveal two chosen masks (the first two of the block being written), then continue. This model
    # writes blocks of 2 from position 0: step on until a block is still wholly masked.
    masks = page.locator("#mdl-canvas .mdl-canvas .mdl-mask[data-pos]")
    for _ in range(4):
        if int(masks.nth(0).get_attribute("data-pos")) % 2 == 0:
            break
        step = _step(page)
        page.locator("#mdl-next").click()
        page.locator("#mdl-status", has_text=f"at step {step + 1} of").wait_for(timeout=10_000)
    masks.nth(0).click()
    masks.nth(1).click()
    assert page.locator("#mdl-canvas .mdl-marked").count() == 2
    page.wait_for_function("() => document.querySelector('#mdl-marks input, #mdl-marks textarea').value.includes(',')")
    page.locator("#mdl-reveal").click()
    page.wait_for_function("() => /you revealed|⚠️/.test(document.querySelector('#mdl-status').innerText)",
                           timeout=10_000)
    assert "you revealed" in _status(page), _status(page)
    assert page.locator("#mdl-canvas .mdl-suggested").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "drive-2-revealed.png"), full_page=True)
    page.locator("#mdl-continue").click()
    page.locator("#mdl-status", has_text="Done").wait_for(timeout=60_000)

    # Edit: rewind to step 4, change a written character there, continue; compare with the original
    _set_number(page, "mdl-scrub", 4)
    page.locator("#mdl-status", has_text="Rewound to step 4").wait_for(timeout=10_000)
    written = page.locator("#mdl-canvas .mdl-canvas [data-pos]:not(.mdl-prompt):not(.mdl-mask)").last
    pos = int(written.get_attribute("data-pos"))
    written.click()
    page.wait_for_function(f"() => document.querySelector('#mdl-pos input').value == '{pos}'")
    page.locator("#mdl-char input, #mdl-char textarea").first.fill("Z")
    page.locator("#mdl-edit").click()
    page.locator("#mdl-status", has_text="Paused").wait_for(timeout=10_000)
    page.locator("#mdl-continue").click()
    page.locator("#mdl-status", has_text="Done").wait_for(timeout=60_000)
    final = page.locator("#mdl-final textarea").input_value()
    assert final[pos] == "Z", (pos, final)
    page.locator("#mdl-diff").click()
    page.locator("#mdl-diff-view .mdl-differ").first.wait_for(timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "drive-3-edited.png"), full_page=True)

    # One position's chart: click a written character
    page.locator("#mdl-canvas .mdl-canvas [data-pos]:not(.mdl-prompt)").nth(3).click()
    page.locator("#mdl-trajectory svg .mdl-tpoint").first.wait_for(timeout=10_000)
    assert "changed" in page.locator("#mdl-trajectory").inner_text()
    page.locator("#mdl-trajectory").screenshot(path=str(ARTIFACTS / "drive-4-trajectory.png"))

    # Projector mode: large type across the width
    small = page.locator("#mdl-canvas .mdl-canvas").evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    page.locator("#mdl-projector input[type=checkbox]").check()
    page.wait_for_function("() => document.querySelector('#mdl-gen-row').classList.contains('mdl-projector')")
    big = page.locator("#mdl-canvas .mdl-canvas").evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    assert big > 1.5 * small
    page.screenshot(path=str(ARTIFACTS / "drive-5-projector.png"), full_page=True)
    page.locator("#mdl-projector input[type=checkbox]").uncheck()
    _set_number(page, "mdl-threshold", DEFAULT.threshold)
    _set_number(page, "mdl-polish", DEFAULT.polish)
    _set_number(page, "mdl-delay", 40)
