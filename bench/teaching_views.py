"""What the teaching views cost a visitor: a real `python app.py` server and Debian's Chromium.

1. First state in the browser with the model's guesses on: click Generate, then a MutationObserver
   waits for the canvas to show masks: the first click after the server started, and the median of
   several more, each on a fresh page.
2. A 256-step run of the full-sequence model with every view on (guesses shown, no early reveals,
   so all 256 steps): the page's size (its HTML, characters) and the JavaScript heap before and
   after, and the heatmap's size.
3. Rewinding: the time from moving the rewind slider to the canvas showing that step (median).
4. The run's states as the server keeps them for the session (rewind, branch, export): their
   pickled size and the memory they hold (tracemalloc), for the same 256-step run.

    python -m bench.teaching_views [--json docs/teaching_views.json]      # from the repository root
    python -m bench.teaching_views --first-state-only                     # part 1 alone

Wall times depend on the machine. Never a test assertion.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import tempfile
import tracemalloc
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before anything imports gradio

from bench.app_under_load import CHROMIUM, CHROMIUM_ARGS, FIRST_STATE_JS, PROMPTS  # noqa: E402
from tests.conftest import AppServer  # noqa: E402

FULL = "checkpoints/tinystories-tiny"
STEPS = 256

PAGE_SIZE_JS = """() => (window.gc && window.gc(), {html: document.documentElement.outerHTML.length,
  heap: performance.memory ? performance.memory.usedJSHeapSize : null,
  heatmap: (document.querySelector('#mdl-heatmap') || {innerHTML: ''}).innerHTML.length})"""

# Move the rewind slider (its number box) and resolve with the milliseconds until the status says so.
REWIND_JS = """(step) => new Promise((resolve) => {
  const status = document.querySelector('#mdl-status');
  const box = document.querySelector('#mdl-scrub input[type=number]');
  const t0 = performance.now();
  const obs = new MutationObserver(() => {
    if (status.innerText.includes('Rewound to step ' + step + ' ')) { obs.disconnect(); resolve(performance.now() - t0); }
  });
  obs.observe(status, {childList: true, subtree: true, characterData: true});
  box.value = String(step);
  box.dispatchEvent(new Event('input', {bubbles: true}));
  box.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
  box.dispatchEvent(new Event('change', {bubbles: true}));
})"""


def _fill_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def first_state(browser, url: str, clicks: int) -> list[float]:
    """Seconds from the click to the first frame, for the first click after the server started and
    `clicks` more (each on a fresh page)."""
    times = []
    for _ in range(clicks + 1):
        page = browser.new_page()
        page.goto(url, wait_until="load")
        page.locator("#mdl-prompt textarea").fill(PROMPTS[0])
        page.locator("#mdl-ghost input[type=checkbox]").check()
        page.wait_for_timeout(500)
        times.append(page.evaluate(FIRST_STATE_JS) / 1000)
        page.locator("#mdl-status", has_text="Done").wait_for(timeout=120_000)
        page.close()
    return times


def long_run(browser, url: str, rewinds: int) -> dict:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url, wait_until="load")
    page.locator("#mdl-prompt textarea").fill(PROMPTS[0])
    page.locator("#mdl-ghost input[type=checkbox]").check()
    for elem_id, value in (("mdl-steps", STEPS), ("mdl-threshold", 1), ("mdl-polish", 0)):
        _fill_number(page, elem_id, value)
    page.wait_for_timeout(500)
    before = page.evaluate(PAGE_SIZE_JS)
    page.locator("#mdl-generate").click()
    page.locator("#mdl-status", has_text="Done").wait_for(timeout=300_000)
    page.wait_for_timeout(500)
    after = page.evaluate(PAGE_SIZE_JS)
    status = page.locator("#mdl-status").inner_text()
    times = [page.evaluate(REWIND_JS, step) / 1000 for step in range(10, 10 + 20 * rewinds, 20)]
    page.close()
    return {"status": status, "page_before": before, "page_after": after, "rewind_s": times,
            "rewind_median_s": statistics.median(times)}


def server_side_states() -> dict:
    """The same run in this process: what the session keeps (DenoiseStates) and what it weighs."""
    import torch

    from microdllm.checkpoint import load_checkpoint
    from microdllm.sampling import defaults_for, denoise

    torch.set_num_threads(1)
    ck = load_checkpoint(FULL)
    cfg = defaults_for(ck.model.config).replace(steps=STEPS, threshold=None, polish=0)
    tracemalloc.start()
    states = list(denoise(ck.model, ck.tokenizer, PROMPTS[0], cfg, schedule=ck.schedule, ngram=ck.ngram))
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"states": len(states), "pickled_bytes": len(pickle.dumps(states)), "traced_bytes": held,
            "candidates": sum(len(s.candidates) for s in states)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clicks", type=int, default=5)
    p.add_argument("--rewinds", type=int, default=5)
    p.add_argument("--first-state-only", action="store_true", help="part 1 alone (a minute, not ten)")
    p.add_argument("--json")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    result = {} if args.first_state_only else {"server_side": server_side_states()}
    with tempfile.TemporaryDirectory() as tmp:
        server = AppServer(Path(tmp) / "app.log", MICRODLLM_THREADS="")
        full = None if args.first_state_only else AppServer(Path(tmp) / "full.log", MICRODLLM_THREADS="",
                                                            MICRODLLM_CHECKPOINT=FULL)
        try:
            server.wait()
            if full:
                full.wait()
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + ["--js-flags=--expose-gc"],
                                             headless=True)   # gc(): the heap measured without garbage
                try:
                    first = first_state(browser, server.url, args.clicks)
                    result.update(first_state_browser_s=first[1:], first_state_browser_median_s=statistics.median(first[1:]),
                                  first_click_after_start_s=first[0])
                    if not args.first_state_only:
                        result["run_256_steps"] = long_run(browser, full.url, args.rewinds)
                finally:
                    browser.close()
        finally:
            server.stop()
            if full:
                full.stop()
    result["cpus"] = os.cpu_count()
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
