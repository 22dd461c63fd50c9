"""How the queue treats visitors, against a real server: two runs at once, a bounded queue that says when
it is full (to an API client at once, in words in the browser), and a slot freed by a stopped run or a
closed tab within seconds.
"""
from __future__ import annotations

import time

import pytest
from helpers import CHROMIUM, CHROMIUM_ARGS, wait_for

LONG_RUN = dict(prompt="Once upon a time", gen_len=120, steps=64, threshold=1, delay_ms=1000, api_name="/generate")
SHORT_RUN = dict(prompt="Once upon a time", gen_len=12, steps=4, delay_ms=0, api_name="/generate")


def visitor(server, **job):
    """A job from a visitor of its own (a session of its own: a cancel stops only that session's runs)."""
    from gradio_client import Client

    return Client(server.url, verbose=False).submit(**job)


@pytest.fixture(scope="module")
def small_queue_server(start_server):
    """Two runs at once (as always) and room for one more in the queue."""
    return start_server(MICRODLLM_QUEUE_SIZE="1")


def test_a_full_queue_refuses_at_once_and_a_stopped_run_frees_its_slot(small_queue_server):
    from gradio_client.utils import QueueError

    running = [visitor(small_queue_server, **LONG_RUN) for _ in range(2)]
    for job in running:
        wait_for(lambda job=job: len(job.outputs()) > 0, 60, "a run starts")
    waiting = visitor(small_queue_server, **LONG_RUN)       # the queue's one place
    time.sleep(1.0)
    assert not waiting.outputs()
    started = time.monotonic()
    refused = visitor(small_queue_server, **LONG_RUN)
    with pytest.raises(QueueError, match="Queue is full"):
        refused.result(timeout=15)
    assert time.monotonic() - started < 5

    waiting.cancel()                                # leaves the queue
    fresh = visitor(small_queue_server, **SHORT_RUN)
    time.sleep(2.0)
    assert not fresh.outputs(), "both slots should be taken by the two long runs"
    stopped = time.monotonic()
    for job in running:                             # Stop: what the Stop button does
        job.cancel()
    wait_for(lambda: fresh.done(), 30, "a new run after the others were stopped")
    took = time.monotonic() - stopped
    assert fresh.result()[4].startswith("**Done.**")
    assert took < 10, f"the new run waited {took:.1f} s for a slot"
    print(f"new run done {took:.1f} s after the runs were stopped")


def start_long_run_in(page, url):
    """Open the app, set slow motion to 1 s per step and no early reveals, click Generate, wait for a frame."""
    from playwright.sync_api import expect

    page.goto(url, wait_until="domcontentloaded")
    page.locator("#mdl-prompt textarea").wait_for(timeout=30_000)
    page.get_by_text("Advanced", exact=True).click()
    for label, value in (("Slow motion: pause per step (ms)", "1000"), ("Reveal early above confidence", "1")):
        box = page.get_by_label(f"number input for {label}")
        box.fill(value)
        box.press("Enter")
        # The slider itself moved: the app's state holds the value (a run at full speed ends in seconds).
        expect(page.get_by_label(f"range slider for {label}")).to_have_value(value, timeout=10_000)
    page.locator("#mdl-generate").click()
    page.locator("#mdl-status").get_by_text("Step ").first.wait_for(timeout=30_000)


def running_step(tab) -> int:
    """The step a tab's run shows; fails, with the status, when the run is not running."""
    status = tab.locator("#mdl-status").inner_text()
    assert status.startswith("Step ") and "Done" not in status, status
    return int(status.split()[1])


def test_browser_closed_tabs_free_their_slots_and_a_full_queue_says_so(small_queue_server):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            # Both slots and the queue's one place taken: a visitor clicking Generate is told, in words.
            jobs = [visitor(small_queue_server, **LONG_RUN) for _ in range(2)]
            for job in jobs:
                wait_for(lambda job=job: len(job.outputs()) > 0, 60, "a run starts")
            jobs.append(visitor(small_queue_server, **LONG_RUN))
            time.sleep(1.0)
            page = browser.new_page()
            page.goto(small_queue_server.url, wait_until="domcontentloaded")
            page.locator("#mdl-prompt textarea").wait_for(timeout=30_000)
            started = time.monotonic()
            page.locator("#mdl-generate").click()
            page.get_by_text("This application is currently busy").first.wait_for(timeout=10_000)
            assert time.monotonic() - started < 10
            page.close()
            for job in jobs:
                job.cancel()
            # Stopped runs end at their next step (1 s); the queued one may have taken a slot before its cancel.
            time.sleep(3.0)

            # Two visitors start long runs, then close their tabs mid-run: both slots come free.
            tabs = [browser.new_page() for _ in range(2)]
            for tab in tabs:
                start_long_run_in(tab, small_queue_server.url)
            time.sleep(1.5)
            before = [running_step(tab) for tab in tabs]    # at slow motion: a minute or more to go
            fresh = visitor(small_queue_server, **SHORT_RUN)
            time.sleep(2.0)
            after = [running_step(tab) for tab in tabs]
            assert not fresh.outputs(), f"both slots should be taken by the two tabs (steps {before} -> {after})"
            assert all(b <= a <= b + 4 for b, a in zip(before, after)), f"slow motion: steps {before} -> {after}"
            closed = time.monotonic()
            for tab in tabs:
                tab.close()
            wait_for(lambda: fresh.done(), 30, "a new run after the tabs were closed")
            took = time.monotonic() - closed
        finally:
            browser.close()
    assert fresh.result()[4].startswith("**Done.**")
    assert took < 10, f"the new run waited {took:.1f} s for a slot"
    print(f"new run done {took:.1f} s after the tabs were closed")
