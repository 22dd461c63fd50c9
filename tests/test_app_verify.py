"""Draft and verify in the app: the Writing control, a verified run through generate and branch, how the
canvas, the status line and the heatmap show drafts, the steps slider of a block model, the Compare rows.

There is no bundled clean-causal checkpoint: one is trained here once (test size, a few seconds, as in
test_verify.py) and saved to a temporary directory the app loads like any local checkpoint.
"""
from __future__ import annotations

import inspect
import re

import pytest
from helpers import train_clean_causal

import app
from microdllm import history, render
from microdllm.checkpoint import BUNDLED_BLOCK_DIR, BUNDLED_DIFFUSION_DIR
from microdllm.ui import compare_tab, generate_tab

PROMPT = "Once upon"
GREEDY = dict(gen_len=30, temperature=0, polish=0, delay_ms=0)
CANVAS, CHART, SCRUB, HEATMAP, STATUS, FINAL = range(6)


@pytest.fixture(scope="module", autouse=True)
def one_thread(single_thread):
    """Every test here on one torch thread (conftest.single_thread)."""


@pytest.fixture(scope="module")
def clean_causal(tmp_path_factory, single_thread) -> str:
    """A test-size clean-causal block model (B = 8), trained a little so that some drafts are kept; its directory."""
    out = tmp_path_factory.mktemp("clean-causal")
    train_clean_causal(out)
    return str(out / "run")


def component(demo, elem_id: str):
    return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def written(key: str, session=None, **kw) -> list[tuple]:
    return list(app.generate(PROMPT, **{**GREEDY, "model_key": key, "run": session, **kw}))


def body(canvas: str) -> str:
    return canvas.split('<div class="mdl-canvas">', 1)[1]


# ------------------------------------------------------------------------------------------ the control

def test_the_writing_control_is_shown_only_for_a_clean_causal_model(clean_causal, notes):
    writing = component(app.build_demo(clean_causal), "mdl-writing")
    assert writing.visible and writing.value == "verify"                  # such a model drafts and verifies by default
    assert [value for _, value in writing.choices] == ["denoise", "verify", "left-to-right"]
    assert [label for label, _ in writing.choices] == ["Block diffusion", "Draft and verify", "Left to right"]
    assert not component(app.build_demo(str(BUNDLED_BLOCK_DIR)), "mdl-writing").visible
    default = component(app.build_demo(""), "mdl-writing")                  # the default model: blocks of 16
    assert default.visible and default.value == "verify"
    for source, shown in ((clean_causal, True), (str(BUNDLED_BLOCK_DIR), False), (str(BUNDLED_DIFFUSION_DIR), False)):
        key, summary, notice, *knobs = app.load_model(source, 40)
        updates = dict(zip(app.CONTROLS_FOR_MODEL, knobs))
        assert updates["writing"]["visible"] is shown and updates["writing"]["value"] == ("verify" if shown else "denoise")
        assert updates["cmp_modes"]["visible"] is shown
        assert ("checks the draft with its own left-to-right half" in updates["model_note"]) is shown


def test_generate_and_branch_take_the_writing_mode_last():
    params = [p for p in inspect.signature(app.generate).parameters if p != "request"]   # Gradio passes that one
    assert params[-1] == "writing" and inspect.signature(app.generate).parameters["writing"].default == ""
    demo = app.build_demo("")
    for api in ("generate", "branch"):
        fn = next(f for f in demo.fns.values() if f.api_name == api)
        assert component(demo, "mdl-writing") is fn.inputs[-1]


# ------------------------------------------------------------------------------------------ a verified run

def test_greedy_draft_and_verify_writes_the_left_to_right_text(clean_causal, notes):
    session = app.Run()
    verified = written(clean_causal, session, writing="verify")
    by_itself = written(clean_causal, writing="left-to-right")
    assert verified[-1][STATUS].startswith("**Done.**") and by_itself[-1][STATUS].startswith("**Done.**")
    assert verified[-1][FINAL] == by_itself[-1][FINAL] and verified[-1][FINAL].startswith(PROMPT)
    last = session.states[-1]
    assert last.nfe < 30 == int(re.search(r"(\d+) model evaluations", by_itself[-1][STATUS])[1])
    assert "draft and verify: kept" in verified[-1][STATUS] and "drafted in all" in verified[-1][STATUS]
    rounds = [f[STATUS] for f in verified if "drafted this round" in f[STATUS]]
    assert rounds and all(re.search(r"draft and verify: kept \d+ of \d+ drafted this round; \d+\.\d characters an "
                                     r"evaluation", line) for line in rounds)
    kept = sum(k for k, _ in last.accepted)
    assert f"kept {kept} of {sum(d for _, d in last.accepted)} drafted in all" in verified[-1][STATUS]
    assert not notes["warning"]


def test_a_branch_of_a_verified_run_drafts_and_verifies_too(clean_causal, notes):
    session = app.Run()
    first = written(clean_causal, session, writing="verify")
    branched = written(clean_causal, session, at=len(first) // 2, writing="verify")
    assert branched[-1][FINAL] == first[-1][FINAL] and "draft and verify" in branched[-1][STATUS]
    written(clean_causal, session, writing="denoise", threshold=1, remasking="random", seed=1)   # block by block
    holes = next(i for i, s in enumerate(session.states) if s.num_masked and not all(s.masked[s.masked.index(True):]))
    frames = written(clean_causal, session, at=holes, writing="verify")              # text after a mask
    assert frames[-1][STATUS].startswith("⚠️") and "only at the end of the text" in frames[-1][STATUS]


@pytest.mark.parametrize("writing, expected", [("verify", "clean half is causal"),
                                               ("left-to-right", "clean half is causal"),
                                               ("sideways", "nknown writing mode")])
def test_a_writing_mode_the_model_lacks_is_a_one_line_message(notes, writing, expected):
    frames = written(str(BUNDLED_BLOCK_DIR), writing=writing)
    assert len(frames) == 1 and frames[0][STATUS].startswith("⚠️") and expected in frames[0][STATUS]
    assert "\n" not in frames[0][STATUS] and len(notes["warning"]) == 1


# ------------------------------------------------------------------------------------------ how drafts look

def test_the_canvas_shows_the_draft_and_strikes_what_was_turned_down(clean_causal, notes):
    session = app.Run()
    written(clean_causal, session, writing="verify")
    assert not session.ghost                                        # the guesses toggle is off ...
    states = session.states
    drafting = next(i for i, s in enumerate(states) if any(s.guesses))
    canvas = session.view(drafting)[0]
    assert "mdl-mask mdl-ghost" in body(canvas) and render.DRAFT_LEGEND in canvas    # ... the draft shows anyway
    turned_down = next(i for i, s in enumerate(states) if any(s.rejected) and sum(s.masked) > 0)
    canvas = body(session.view(turned_down)[0])
    state, drafted = states[turned_down], states[turned_down - 1].guesses
    struck = re.findall(r'class="mdl-c mdl-mask mdl-rejected" title="([^"]*)">([^<]*)<', canvas)
    expected = [i for i, r in enumerate(state.rejected) if r and state.masked[i]]
    assert len(struck) == len(expected) > 0
    assert [ch for _, ch in struck] == [{" ": "␣", "\n": "↵"}.get(drafted[i], drafted[i]) for i in expected]
    assert all("turned down" in title for title, _ in struck)
    kept = sum(state.revealed)                                      # the kept draft and the checker's own: solid
    assert body(session.view(turned_down)[0]).count('class="mdl-c mdl-new"') == kept


def test_the_heatmap_marks_the_drafts_turned_down(clean_causal, notes):
    session = app.Run()
    written(clean_causal, session, writing="verify")
    heatmap = session.heatmap()
    lost = history.rejections(session.states)
    assert lost and heatmap.count('class="mdl-hreject"') == len(lost)
    assert "drafted, turned down at step" in heatmap and "vermillion drafted, turned down" in heatmap
    assert sum(d - k for k, d in session.states[-1].accepted) == len(lost) + sum(
        1 for k, d in session.states[-1].accepted if k < d)          # the checker writes over the first turned down
    plain = app.Run()
    written(clean_causal, plain, writing="denoise")
    assert "mdl-hreject" not in plain.heatmap() and "drafted, turned down" not in plain.heatmap()


# ------------------------------------------------------------------------------------------ the steps slider

def test_a_block_model_steps_at_most_its_block(clean_causal, notes):
    assert generate_tab.steps_for_model(clean_causal)["maximum"] == 8
    narrowed = generate_tab.steps_for_model(str(BUNDLED_BLOCK_DIR))       # the bundled B = 2 model
    assert narrowed["maximum"] == 2 and narrowed["value"] <= 2 and "at most 2" in narrowed["info"]
    assert generate_tab.steps_for_model(str(BUNDLED_DIFFUSION_DIR))["maximum"] == 256
    updates = dict(zip(app.CONTROLS_FOR_MODEL, app.load_model(clean_causal, 40)[3:]))
    assert "maximum" not in updates["steps"] and "at most 8" in updates["steps"]["info"]   # the API's range stays
    full = dict(zip(app.CONTROLS_FOR_MODEL, app.load_model(str(BUNDLED_DIFFUSION_DIR), 40)[3:]))
    assert "per block" not in full["steps"]["info"]
    demo = app.build_demo(str(BUNDLED_BLOCK_DIR))
    steps = component(demo, "mdl-steps")
    assert steps.maximum == 256 and "at most 2" in steps.info        # built for the API; a page narrows it
    narrowing = [f for f in demo.fns.values() if f.fn is generate_tab.steps_for_model]
    assert len(narrowing) == 3 and all(f.outputs == [steps] and f.api_visibility == "private" for f in narrowing)


# ------------------------------------------------------------------------------------------ Compare

def test_compare_races_every_way_the_network_writes(clean_causal, notes):
    frames = list(app.compare(PROMPT, gen_len=20, delay_ms=0, model_key=clean_causal))
    *canvases_and_lines, table, row = frames[-1]
    lines = dict(zip(compare_tab.SLOTS, canvases_and_lines[1::2]))
    assert row["visible"] and not notes["warning"]
    assert lines["denoise"].startswith("**Block diffusion: block by block** · **done**")
    assert lines["verify"].startswith("**Draft and verify") and lines["left-to-right"].startswith("**Left to right")
    assert lines["baseline"].startswith("**Autoregressive: left to right** · **done**")
    for line in lines.values():
        assert "**done**" in line and "characters an evaluation" in line and "positions evaluated" in line
    rows = re.findall(r"<tr><td>(.*?)</td><td>([\d,]+)</td><td>([\d.]+)</td><td>([\d,]+)</td><td>([\d.]+ s)", table)
    assert [r[0].split(":")[0] for r in rows] == ["Block diffusion", "Draft and verify", "Left to right", "Autoregressive"]
    for name, nfe, per, positions, wall in rows:
        assert int(nfe.replace(",", "")) > 0 and int(positions.replace(",", "")) > 0
        assert float(per) == pytest.approx(20 / int(nfe.replace(",", "")), abs=0.01)
    assert rows[2][1] == "20"                                        # left to right: one character an evaluation


def test_compare_with_a_one_way_model_hides_the_other_rows(notes):
    frames = list(app.compare(PROMPT, gen_len=12, delay_ms=0, model_key=str(BUNDLED_BLOCK_DIR)))
    *canvases_and_lines, table, row = frames[-1]
    lines = dict(zip(compare_tab.SLOTS, canvases_and_lines[1::2]))
    assert not row["visible"] and lines["verify"] == lines["left-to-right"] == ""
    assert table.count("<tr><td>") == 2 and "Block diffusion" in table and "Autoregressive" in table


# ------------------------------------------------------------------------------------------ over HTTP

def test_the_endpoints_draft_and_verify(start_server, clean_causal):
    from gradio_client import Client

    client = Client(start_server(MICRODLLM_CHECKPOINT=clean_causal).url, verbose=False)
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in ("/generate", "/branch"):
        last = api[name]["parameters"][-1]          # the model's default: draft and verify
        assert last["parameter_name"] == "writing" and last["parameter_default"] == "verify"
    kw = dict(prompt=PROMPT, gen_len=24, temperature=0, polish=0, delay_ms=0)
    *_, status, verified = client.predict(**kw, api_name="/generate")
    *_, _, by_itself = client.predict(writing="left-to-right", api_name="/generate", **kw)
    assert status.startswith("**Done.**") and "draft and verify" in status and verified == by_itself
    *_, status, final = client.predict(writing="denoise", api_name="/generate", **kw)
    assert status.startswith("**Done.**") and "draft and verify" not in status
    outputs = client.predict(PROMPT, 16, 0, 0, 0, api_name="/compare")
    assert "**done**" in outputs[5] and "**done**" in outputs[7] and outputs[8].count("<tr><td>") == 4
