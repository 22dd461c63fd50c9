"""The README's pictures of the app: a real server, Debian's Chromium, one scripted visit each.

Teaching views: the full-sequence model writes a story in 24 steps; the visitor turns the guesses on,
rewinds to step 8 and hovers a written character. Saves the Generate tab as docs/teaching_views.png.

Driving by hand (`--drive`): the full-sequence model writes in 64 steps; the visitor holds the run,
steps it twice, marks two masks and reveals them (the strategy's own picks outlined), then clicks a
written character for its chart. Saves docs/drive_by_hand.png.

    python -m bench.app_screenshot [--out docs/teaching_views.png]     # from the repository root
    python -m bench.app_screenshot --drive [--out docs/drive_by_hand.png]
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before anything imports gradio

from bench.app_under_load import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from bench.teaching_views import _fill_number  # noqa: E402
from tests.conftest import AppServer  # noqa: E402

PROMPT = "Once upon a time, there was a little girl named Lily."


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out")
    p.add_argument("--step", type=int, default=8)
    p.add_argument("--drive", action="store_true", help="the picture of driving a run by hand")
    args = p.parse_args()
    args.out = args.out or ("docs/drive_by_hand.png" if args.drive else "docs/teaching_views.png")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = AppServer(Path(tmp) / "app.log", MICRODLLM_CHECKPOINT="checkpoints/tinystories-tiny")
        try:
            server.wait()
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1400, "height": 1450}, device_scale_factor=1)
                page.goto(server.url, wait_until="load")
                page.locator("#mdl-prompt textarea").fill(PROMPT)
                if args.drive:
                    drive(page, args.out)
                    browser.close()
                    return
                for elem_id, value in (("mdl-steps", 24), ("mdl-threshold", 1), ("mdl-polish", 0)):
                    _fill_number(page, elem_id, value)
                page.locator("#mdl-generate").click()
                page.locator("#mdl-status", has_text="Done").wait_for(timeout=120_000)
                page.locator("#mdl-ghost input[type=checkbox]").check()
                _fill_number(page, "mdl-scrub", args.step)
                page.locator("#mdl-status", has_text=f"Rewound to step {args.step}").wait_for(timeout=10_000)
                page.wait_for_timeout(500)
                page.locator("#mdl-canvas .mdl-canvas .mdl-gen").nth(6).hover()
                page.wait_for_timeout(300)
                page.screenshot(path=args.out, full_page=True, clip={"x": 0, "y": 0, "width": 1400, "height": 1450})
                browser.close()
        finally:
            server.stop()
    print(f"wrote {args.out}")


def drive(page, out: str) -> None:
    for elem_id, value in (("mdl-steps", 64), ("mdl-threshold", 1), ("mdl-polish", 0)):   # slow motion: 40 ms
        _fill_number(page, elem_id, value)
    page.locator("#mdl-generate").click()
    page.locator("#mdl-canvas .mdl-canvas .mdl-mask").first.wait_for(timeout=60_000)
    page.wait_for_timeout(300)
    page.locator("#mdl-hold").click()
    page.locator("#mdl-status", has_text="Paused").wait_for(timeout=10_000)
    for _ in range(2):
        page.locator("#mdl-next").click()
        page.wait_for_timeout(400)
    masks = page.locator("#mdl-canvas .mdl-canvas .mdl-mask[data-pos]")
    masks.nth(3).click()
    masks.nth(20).click()
    page.wait_for_function("() => document.querySelector('#mdl-marks input, #mdl-marks textarea').value.includes(',')")
    page.locator("#mdl-reveal").click()
    page.locator("#mdl-status", has_text="you revealed").wait_for(timeout=10_000)
    page.locator("#mdl-canvas .mdl-canvas [data-pos]:not(.mdl-prompt):not(.mdl-mask)").nth(1).click()
    page.locator("#mdl-trajectory svg .mdl-tpoint").first.wait_for(timeout=10_000)
    page.wait_for_timeout(500)
    page.screenshot(path=out, full_page=True)
    print(page.locator("#mdl-status").inner_text())


if __name__ == "__main__":
    main()
