"""The Generate tab's teaching views, through the app's handlers (no server): rewind, replay, the
ghost toggle and branch, all from the session's recorded run (no model call but Branch's)."""
from __future__ import annotations

import pytest

import app
from microdllm.checkpoint import BUNDLED_AR_DIR, BUNDLED_BLOCK_DIR, BUNDLED_DIFFUSION_DIR
from microdllm.ui import session as session_module

PROMPT = "Once upon a time"
CANVAS, CHART, SCRUB, HEATMAP, STATUS, FINAL = range(6)


@pytest.fixture(scope="module", autouse=True)
def one_thread(single_thread):
    """Every test here on one torch thread (conftest.single_thread)."""


def written(session, **kw):
    return list(app.generate(PROMPT, **{"gen_len": 40, "delay_ms": 0, "model_key": str(BUNDLED_DIFFUSION_DIR),
                                        "run": session, **kw}))


@pytest.fixture
def session(notes):
    s = app.Run()
    written(s)
    return s


def body(canvas: str) -> str:
    return canvas.split('<div class="mdl-canvas">', 1)[1]


def test_rewind_shows_any_step_without_the_model(session, monkeypatch):
    monkeypatch.setattr(app.STORE, "load", lambda *a, **k: pytest.fail("rewinding must not load or run a model"))
    canvas, chart, status, heatmap = app.rewind(1, session)
    assert "mdl-mask" in body(canvas) and status.startswith("**Rewound to step 1**")
    assert "polyline" in chart and 'stroke-dasharray="4 3"' in heatmap
    assert session.pinned == 1
    last = len(session.states) - 1
    canvas, _, status, _ = app.rewind(last, session)
    assert status.startswith("**Done.**") and "mdl-mask" not in body(canvas)
    assert app.rewind(10 ** 9, session)[2] == status             # out of range: the last step
    assert app.rewind(0, app.Run())[0] == app.gr.skip()           # nothing recorded yet: nothing changes


def test_the_ghost_toggle_redraws_the_step_on_screen(session):
    app.rewind(1, session)
    with_ghosts = app.show_guesses(True, 1, session)
    assert 'mdl-mask mdl-ghost' in body(with_ghosts) and session.ghost
    assert 'mdl-ghost' not in body(app.show_guesses(False, 1, session))


def test_replay_plays_from_the_slider_to_the_end(session, monkeypatch):
    monkeypatch.setattr(session_module.time, "sleep", lambda s: None)
    frames = list(app.replay(30, 2, session))
    assert [f[2]["value"] for f in frames] == list(range(2, len(session.states)))
    assert frames[-1][4].startswith("**Done.**") and "<rect" in frames[-1][3]
    assert len(list(app.replay(30, len(session.states) - 1, session))) == len(session.states)   # at the end: from 0


def test_replay_without_a_run_warns(notes):
    assert list(app.replay(8, 0, app.Run())) == []
    assert "Nothing to replay" in notes["warning"][0]


def test_branch_continues_from_the_slider_with_the_current_controls(session, notes):
    kept = session.states[2]
    frames = written(session, at=2, temperature=1.0, seed=11)
    final = frames[-1][FINAL]
    assert frames[-1][STATUS].startswith("**Done.**") and final.startswith(PROMPT)
    assert all(final[i] == ch for i, ch in enumerate(kept.text) if not kept.masked[i])
    assert session.states[2] is kept and [s.step for s in session.states] == list(range(len(session.states)))
    assert frames[0][SCRUB]["value"] == 3 and any("Branching at step 2" in m for m in notes["info"])


def test_branch_problems_are_messages(notes):
    frames = written(app.Run(), at=3)
    assert frames[-1][STATUS].startswith("⚠️ Nothing to branch from yet")
    session = app.Run()
    written(session)
    frames = written(session, at=len(session.states) - 1)
    assert "Nothing to continue" in frames[-1][STATUS] and not any("Branching" in m for m in notes["info"])
    frames = written(session, at=1, model_key=str(BUNDLED_AR_DIR))       # masks everywhere: not left to right
    assert frames[-1][STATUS].startswith("⚠️") and "masks all come after its text" in frames[-1][STATUS]


def test_a_rewound_screen_stays_put_while_the_run_goes_on(notes):
    session = app.Run()
    stream = app.generate(PROMPT, gen_len=40, steps=16, threshold=1, delay_ms=0, run=session,
                          model_key=str(BUNDLED_DIFFUSION_DIR))
    for _ in range(4):
        next(stream)
    app.rewind(1, session)                    # the visitor drags the slider back mid-run
    frame = next(stream)
    assert frame[CANVAS] == app.gr.skip() and "value" not in frame[SCRUB] and frame[SCRUB]["maximum"] == 4
    *_, last = stream
    assert last[STATUS].startswith("**Rewound to step 1**") and last[FINAL]   # done, still showing step 1
    assert not session.running


def test_the_forward_tab_says_where_it_leaves_the_training_recipe(notes):
    """Another schedule than the model's, or (block model) a time outside its training range: a note."""
    sentence, B2 = "Once upon a time, there was a little dog.", str(BUNDLED_BLOCK_DIR)
    *_, pred = app.forward_process(sentence, 50, "cosine", 0, model_key=B2)        # B = 2 model: linear
    assert "trained with the linear schedule" in pred
    *_, pred = app.forward_process(sentence, 95, "linear", 0, model_key=B2)
    assert "outside it" in pred and "trained with the linear" not in pred
    *_, pred = app.forward_process(sentence, 50, "linear", 0, model_key=B2)
    assert "mdl-caveat" not in pred


def test_a_newer_run_of_the_session_takes_the_run_over(notes):
    """Generate, then Branch (or Generate) again before the first is done: the first stops at its next
    state, and the session's run is the newer one's alone."""
    session = app.Run()
    first = app.generate(PROMPT, gen_len=40, steps=16, threshold=1, delay_ms=0, run=session,
                         model_key=str(BUNDLED_DIFFUSION_DIR))
    for _ in range(3):
        next(first)
    second = app.generate("Tom had a dog.", gen_len=40, steps=16, delay_ms=0, run=session,
                          model_key=str(BUNDLED_DIFFUSION_DIR))
    next(second)
    assert list(first) == []                                   # the older stream ends without a frame
    *_, last = second
    assert last[FINAL].startswith("Tom had a dog.") and session.states[0].text.startswith("Tom had a dog.")
    assert not session.running and all(s.text.startswith("Tom had a dog.") for s in session.states)


def test_live_frames_are_light_and_the_finished_run_has_the_alternatives(notes):
    frames = written(app.Run())
    assert all("mdl-cands" not in f[CANVAS] for f in frames[:-1])   # replaced a few ms later: no popups
    assert "mdl-cands" in frames[-1][CANVAS]
