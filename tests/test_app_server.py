"""A real `python app.py` server in a subprocess, driven over HTTP with gradio_client.

Servers run with HF_HUB_OFFLINE=1 (see conftest.AppServer) and are killed at module teardown.
"""
from __future__ import annotations

import socket
import time
from contextlib import contextmanager

import pytest
from conftest import CACHED_REPO
from gradio_client import Client

PROMPT = "Once upon a time"


def canvas_body(canvas_html: str) -> str:
    return canvas_html.split('<div class="mdl-canvas">', 1)[1]


@pytest.fixture(scope="module")
def cached_server(start_server, hub_cache):
    """The app with MICRODLLM_CHECKPOINT=owner/name, served from a pre-populated offline Hub cache."""
    return start_server(MICRODLLM_CHECKPOINT=CACHED_REPO, HF_HUB_CACHE=str(hub_cache))


def test_generate_streams_every_state(cached_server):
    client = Client(cached_server.url, verbose=False)
    job = client.submit(prompt=PROMPT, gen_len=40, steps=16, delay_ms=50, api_name="/generate")
    arrivals, outputs = [], []
    for output in job:  # each update as it arrives
        arrivals.append(time.monotonic())
        outputs.append(output)
    intermediate = [o for o in outputs if o[5] == ""]
    canvas, chart, _scrub, _heatmap, status, final = outputs[-1]
    assert len(intermediate) >= 10
    assert all(o[4].startswith("Step ") for o in intermediate)
    assert arrivals[-1] - arrivals[0] > 0.3  # streamed while running, not delivered at the end
    assert status.startswith("**Done.**")
    assert final.startswith(PROMPT) and len(final) == len(PROMPT) + 40
    assert "mdl-mask" not in canvas_body(canvas) and "<svg" in chart


def test_bad_input_is_a_message_not_an_error(cached_server):
    client = Client(cached_server.url, verbose=False)
    canvas, chart, _scrub, _heatmap, status, final = client.predict(prompt="x" * 300, api_name="/generate")
    assert status.startswith("⚠️") and "at most 255" in status
    *_, status, final = client.predict(prompt=PROMPT, gen_len=8, steps=3, delay_ms=0, api_name="/generate")
    assert status.startswith("**Done.**")  # still serving


def test_checkpoint_from_the_offline_hub_cache(cached_server):
    client = Client(cached_server.url, verbose=False)
    card = client.predict(api_name="/model_info")
    assert f"hf://{CACHED_REPO}" in card
    assert "Could not load" not in cached_server.log()
    # The Model panel: a repo id that is nowhere to be found falls back to the bundled model.
    card, notice, *_ = client.predict("nobody/missing", api_name="/load_model")
    assert "`bundled`" in card and "Could not load checkpoint 'nobody/missing'" in notice["value"]


@contextmanager
def silent_endpoint():
    """A TCP port that accepts connections and never answers: a Hub that hangs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def test_unreachable_hub_falls_back_to_the_bundled_model(start_server):
    with silent_endpoint() as endpoint:
        started = time.monotonic()
        server = start_server(MICRODLLM_CHECKPOINT="owner/unreachable", HF_HUB_OFFLINE="0", HF_ENDPOINT=endpoint,
                              MICRODLLM_HUB_TIMEOUT="2")
        assert time.monotonic() - started < 30  # 2 s for the Hub, the rest is Python + Gradio start-up
        assert "could not load checkpoint 'owner/unreachable'" in server.log()
        client = Client(server.url, verbose=False)
        assert "`bundled`" in client.predict(api_name="/model_info")
        canvas, chart, _scrub, _heatmap, status, final = client.predict(prompt=PROMPT, gen_len=12, steps=4, delay_ms=0,
                                                      api_name="/generate")
        assert status.startswith("**Done.**") and final.startswith(PROMPT)


def test_int8_server_writes_a_story(start_server):
    server = start_server(MICRODLLM_INT8="1")
    client = Client(server.url, verbose=False)
    canvas, chart, _scrub, _heatmap, status, final = client.predict(prompt=PROMPT, gen_len=30, delay_ms=0, api_name="/generate")
    assert status.startswith("**Done.**") and final.startswith(PROMPT) and len(final) == len(PROMPT) + 30
    assert "_" not in final[len(PROMPT):]
    assert "with int8 Linear weights" in server.log()
    assert "| Weights | int8 Linear layers" in client.predict(api_name="/model_info")   # the page says so too
