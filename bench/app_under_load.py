"""The app under load, as a visitor sees it: a real `python app.py` server, real clients.

1. Time from clicking Generate to the first streamed state drawn in a real browser (Debian's
   Chromium via Playwright), measured inside the page: click, then a MutationObserver waits for
   the canvas to show masks. Median of several clicks (each on a fresh page).
2. One client generating a story at the app's default settings (gradio_client, the Python
   client of the same queue the browser uses), then 4 at once: each client's wall time from
   submit to the final state, as a ratio to the single-client time.
3. The server's resident memory (all its processes), sampled every 0.1 s; the peak.

    python -m bench.app_under_load [--json docs/serving.json]     # from the repository root

Wall times depend on the machine; the ratios are the result. Never a test assertion.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before anything imports gradio

from gradio_client import Client  # noqa: E402

from tests.conftest import AppServer  # noqa: E402  (the same server launcher the tests use)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROMPTS = ["Once upon a time, there was a little girl named Lily.", "One day, a boy named Tom went to the park.",
           "Sara and Ben were playing in the garden.", "Tim had a new toy car."]

# Click Generate and resolve with the milliseconds until the canvas shows the first state (masks).
FIRST_STATE_JS = """
() => new Promise((resolve) => {
  const canvas = document.querySelector('#mdl-canvas');
  const t0 = performance.now();
  const seen = () => canvas.querySelector('.mdl-canvas .mdl-mask');
  const obs = new MutationObserver(() => { if (seen()) { obs.disconnect(); resolve(performance.now() - t0); } });
  obs.observe(canvas, {childList: true, subtree: true, characterData: true});
  document.querySelector('#mdl-generate').click();
})
"""


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo += [int(c) for c in children]
        except (OSError, ValueError):
            continue
    return total


class PeakMemory:
    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def browser_first_state(url: str, clicks: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for _ in range(clicks + 1):                      # the first click is a warm-up
                page = browser.new_page()
                page.goto(url, wait_until="load")
                page.locator("#mdl-prompt textarea").fill(PROMPTS[0])
                page.wait_for_timeout(500)                  # let the page settle (fonts, the model card)
                times.append(page.evaluate(FIRST_STATE_JS) / 1000)
                page.wait_for_function("() => document.querySelector('#mdl-status').innerText.includes('Done')",
                                       timeout=120_000)
                page.close()
        finally:
            browser.close()
    return times[1:]


def one_story(url: str, prompt: str) -> float:
    client = Client(url, verbose=False)
    t0 = time.perf_counter()
    *_, status, final = client.predict(prompt=prompt, api_name="/generate")
    if not final.startswith(prompt):
        raise RuntimeError(f"unexpected result: {status!r}")
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--clicks", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = AppServer(Path(tmp) / "app.log", MICRODLLM_THREADS="")   # the app's own thread default
        try:
            startup = server.wait()
            with PeakMemory(server.proc.pid) as mem:
                first = browser_first_state(server.url, args.clicks) if Path(CHROMIUM).exists() else []
                one_story(server.url, PROMPTS[0])                  # warm-up
                single = statistics.median(one_story(server.url, PROMPTS[0]) for _ in range(args.repeats))
                with ThreadPoolExecutor(args.clients) as pool:
                    concurrent = list(pool.map(lambda i: one_story(server.url, PROMPTS[i % len(PROMPTS)]),
                                               range(args.clients)))
            idle_rss = rss_bytes(server.proc.pid)
        finally:
            server.stop()
    result = {"startup_s": startup, "first_state_browser_s": first,
              "first_state_browser_median_s": statistics.median(first) if first else None,
              "single_client_s": single, "concurrent_clients": args.clients, "concurrent_s": concurrent,
              "worst_ratio": max(concurrent) / single, "peak_rss_mb": mem.peak / 2**20,
              "rss_after_mb": idle_rss / 2**20, "cpus": os.cpu_count()}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
