"""Driving a run by hand (issue #22): hold, next step, continue, reveal by hand, edit, the trajectory
and the comparison; the sampler's explicit reveal (`denoise(..., reveal=...)`)."""
from __future__ import annotations

import math

import pytest
import torch
from helpers import tiny_model

import app
from microdllm import history, render
from microdllm.checkpoint import BUNDLED_BLOCK_DIR, BUNDLED_DIFFUSION_DIR, BUNDLED_LARGE_BLOCK_DIR
from microdllm.sampling import DenoiseState, SamplerConfig, SamplingError, denoise
from microdllm.ui import hand, settings

PROMPT = "Once upon a time"
SMALL = dict(gen_len=24, steps=12, delay_ms=0, threshold=1, model_key=str(BUNDLED_BLOCK_DIR))   # blocks of 2
STATUS, FINAL = 4, 5


@pytest.fixture(scope="module", autouse=True)
def one_thread(single_thread):
    """One torch thread (conftest.single_thread)."""


def held_after(k: int, **kw) -> app.Run:
    """A session whose run was held after its k-th frame (as the Hold button does mid-stream)."""
    session = app.Run()
    frames = app.generate(PROMPT, run=session, **{**SMALL, **kw})
    for _ in range(k):
        next(frames)
    session.hold = True
    rest = list(frames)
    assert len(rest) == 1 and rest[0][STATUS].startswith("**Paused** at step"), rest
    assert session.live is not None and not session.running
    return session


def uninterrupted(**kw) -> list[DenoiseState]:
    session = app.Run()
    list(app.generate(PROMPT, run=session, **{**SMALL, **kw}))
    return session.states


@pytest.mark.parametrize("sampled", [
    dict(temperature=0), dict(temperature=0.9, seed=7),
    dict(temperature=0.9, seed=3, model_key=str(BUNDLED_LARGE_BLOCK_DIR), writing="verify", gen_len=60),
    dict(temperature=0, model_key=str(BUNDLED_DIFFUSION_DIR), steps=12)],
    ids=["greedy", "sampled", "draft-and-verify", "full-sequence"])
def test_stepping_by_hand_gives_the_states_of_an_uninterrupted_run(notes, sampled):
    session = held_after(3, **sampled)
    for k in range(3):
        before = session.states[-1]
        canvas, chart, scrub, heatmap, status, final = hand.next_step(session)
        after = session.states[-1]
        assert after.step == before.step + 1 and after.nfe - before.nfe <= 1   # one step, one evaluation at most
        assert scrub["value"] == len(session.states) - 1 and status.startswith("**Paused**"), status
    *_, last = list(hand.continue_run(0, session))
    assert last[STATUS].startswith("**Done.**") and session.live is None
    whole = uninterrupted(**sampled)
    assert [s.tokens for s in session.states] == [s.tokens for s in whole]
    assert [s.nfe for s in session.states] == [s.nfe for s in whole]
    assert not notes["warning"]


def test_a_draft_and_verify_run_refuses_a_reveal_by_hand_and_an_edit_behind_its_cursor(notes):
    session = held_after(2, model_key=str(BUNDLED_LARGE_BLOCK_DIR), writing="verify", temperature=0)
    at = len(session.states) - 1
    cursor = session.states[-1].masked.index(True)
    status = hand.reveal(str(cursor + 1), "", at, session)[STATUS]
    assert "drafts and checks at its cursor" in status and "\n" not in status.strip()
    status = hand.edit(cursor - 1, "x", at, session)[STATUS]
    assert f"its cursor is at position {cursor}" in status
    assert session.live is not None                     # still paused, still there to continue


def test_nothing_to_drive_says_so_in_one_line(notes):
    assert hand.next_step(None)[STATUS].startswith("⚠️ Nothing to drive yet")
    done = app.Run()
    list(app.generate(PROMPT, run=done, **SMALL))
    assert "not paused" in hand.next_step(done)[STATUS]
    assert "not paused" in list(hand.continue_run(0, done))[0][STATUS]
    assert hand.hold(done) == app.gr.skip() and "Nothing is being written" in notes["warning"][-1]
    session = held_after(2)
    session.used -= settings.RUN_TTL_S + 1          # a visitor who paused and left: the run is let go
    assert "let go" in hand.next_step(session)[STATUS] and session.live is None and not session.states


def test_a_visitor_who_leaves_frees_the_paused_run_at_once(notes):
    from types import SimpleNamespace

    from microdllm.ui import session as sessions
    visitor = SimpleNamespace(session_hash="tab-1")
    run = app.Run()
    frames = app.generate(PROMPT, run=run, request=visitor, **SMALL)
    next(frames)
    run.hold = True
    list(frames)
    live = run.live
    assert live is not None and sessions.SESSIONS["tab-1"] is run
    sessions.let_go(SimpleNamespace(session_hash="someone-else"))      # another tab's unload: nothing here
    assert run.live is live and run.states
    sessions.let_go(visitor)
    assert run.live is None and not run.states and run.original is None and "tab-1" not in sessions.SESSIONS
    with pytest.raises(StopIteration):
        next(live)                                                       # the paused generator is closed
    assert "let go (the visitor left)" in hand.next_step(run)[STATUS]


def test_a_run_left_paused_is_let_go_when_unused_for_its_time_to_live(notes):
    from types import SimpleNamespace

    from microdllm.ui import session as sessions
    walked_away, busy = held_after(2), held_after(2)
    sessions.remember(walked_away, SimpleNamespace(session_hash="tab-2"))
    sessions.remember(busy, SimpleNamespace(session_hash="tab-3"))
    walked_away.used -= settings.RUN_TTL_S + 1
    assert sessions.sweep() == 1
    assert walked_away.live is None and not walked_away.states and "tab-2" not in sessions.SESSIONS
    assert busy.live is not None and sessions.SESSIONS["tab-3"] is busy
    assert "unused for" in hand.next_step(walked_away)[STATUS]


def test_a_reveal_by_hand_is_denoise_from_the_state_with_that_reveal(notes):
    session = held_after(2)
    paused = session.states[-1]
    chosen = [i for i, m in enumerate(paused.masked) if m][:2]     # in the block being written (B >= 2)
    out = hand.reveal(", ".join(map(str, chosen)), "", len(session.states) - 1, session)
    assert out[-1] == "" and out[STATUS].startswith("**Paused**") and "you revealed" in out[STATUS], out[STATUS]
    new = session.states[-1]
    assert new.phase == "by hand" and new.step == paused.step + 1
    assert [i for i, r in enumerate(new.revealed) if r] == chosen and len(new.suggested) == 2
    assert "mdl-suggested" in out[0]
    _, ck, _ = settings.STORE.load(session.source[0])
    it = denoise(ck.model, ck.tokenizer, "", session.source[1], start=paused, schedule=ck.schedule, reveal=chosen)
    next(it)
    assert next(it).tokens == new.tokens
    assert session.original is not None and session.original[-1] is paused
    hand.next_step(session)                    # and the run goes on from it
    assert session.states[-1].step == new.step + 1


@pytest.mark.parametrize("marks, char, needle", [
    ("", "", "mark one or more"), ("a, b", "", "whole numbers"), ("0", "", "not a masked position"),
    ("99999", "", "not a masked position"), ("-3", "", "not a masked position"), ("FIRST", "\u2603", "not a character"),
    ("FIRST", "abc", "type one character"), ("LAST", "", "not in the block being written"),
])
def test_a_bad_reveal_is_refused_in_one_line(notes, marks, char, needle):
    session = held_after(2)
    last = session.states[-1]
    marks = marks.replace("LAST", str(len(last.tokens) - 1)).replace("FIRST", str(last.masked.index(True)))
    out = hand.reveal(marks, char, len(session.states) - 1, session)
    assert out[STATUS].startswith("⚠️") and needle in out[STATUS].lower() and "\n" not in out[STATUS], out[STATUS]
    assert session.states[-1] is last and session.live is not None     # the held run is untouched


def test_edit_and_resume_keeps_the_original(notes):
    session = held_after(3, polish=0)      # (a polish pass may rewrite an edited character, as any other)
    paused = session.states[-1]
    pos = paused.block[0] if paused.block else len(PROMPT)
    out = hand.edit(pos, "Z", len(session.states) - 1, session)
    assert out[STATUS].startswith("**Paused**"), out[STATUS]
    assert session.states[-1].text[pos] == "Z" and session.states[-1].step == paused.step + 1
    *_, last = list(hand.continue_run(0, session))
    assert last[FINAL].startswith(PROMPT) and last[FINAL][pos] == "Z"
    compared = hand.diff(session)
    assert "the original run" in compared and "mdl-differ" in compared
    for position, char, needle in ((0, "x", "the prompt"), (10**6, "x", "choose a position"), (pos, "\u2603", "not one")):
        assert needle in hand.edit(position, char, 3, session)[STATUS].lower()


def test_an_edit_behind_a_left_to_right_cursor_is_refused(notes):
    session = app.Run()
    frames = app.generate(PROMPT, run=session, model_key="checkpoints/tinystories-tiny-ar", gen_len=12, delay_ms=0)
    next(frames), next(frames), next(frames)
    session.hold = True
    list(frames)
    cursor = session.states[-1].masked.index(True)
    out = hand.edit(cursor - 1, "a", len(session.states) - 1, session)
    assert "cursor is at position" in out[STATUS] and "\n" not in out[STATUS], out[STATUS]
    assert hand.edit(cursor, "a", len(session.states) - 1, session)[STATUS].startswith("**Paused**")


def test_the_trajectory_of_a_position(notes):
    states = uninterrupted()
    pos = len(PROMPT) + 5
    points, changes = history.trajectory(states, pos)
    assert len(points) == len(states) and points[-1].written and not points[0].written
    guessed = [p.char for p in points if p.char]
    assert changes == sum(a != b for a, b in zip(guessed, guessed[1:]))
    session = app.Run(states=states)
    svg = hand.trajectory(pos, session)
    assert svg.count("mdl-tpoint") == sum(not math.isnan(p.p) for p in points) > 1 and f"changed {changes}" in svg
    assert hand.trajectory(10**6, session) == app.gr.skip() and "Choose a position" in notes["warning"][-1]
    chart = render.mask_chart_svg([s.num_masked for s in states], 12, entropy=[s.entropy for s in states])
    assert "mdl-entropy" in chart


def test_the_sampler_reveals_the_given_characters_on_a_block_model():
    model, tok = tiny_model(attn_block=4, shift=True, time_embedding=False)
    cfg = SamplerConfig(gen_len=12, steps=4, seed=1, temperature=0)
    start = next(iter(denoise(model, tok, "Once", cfg)))
    it = denoise(model, tok, "", cfg, start=start, reveal=[5, 6], chars=["a", None])
    first, hand_step = next(it), next(it)
    assert first.tokens == start.tokens and hand_step.phase == "by hand"
    assert hand_step.text[5] == "a" and not hand_step.masked[6] and sum(hand_step.revealed) == 2
    assert hand_step.nfe == start.nfe + 1 and all(4 <= p < 8 for p in hand_step.suggested)
    assert list(it)[-1].done
    with pytest.raises(SamplingError, match="block being written"):
        next(iter(denoise(model, tok, "", cfg, start=start, reveal=[10])))
    assert torch.equal(torch.tensor(hand_step.tokens[:4]), torch.tensor(start.tokens[:4]))
