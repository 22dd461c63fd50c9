"""A session's run: the states it recorded, streamed to the Generate tab as they come, and shown again
without the model (rewind, replay, the ghost toggle).

`Run` lives in a gr.State: Generate and Branch fill it (`stream`), the other events only read it.
A run paused by Hold keeps its live `denoise` generator (`Run.live`): Next step pulls one more state
from it, Continue streams the rest (hand.py). A paused generator holds no thread and no queue slot;
the session's `Run` (and with it the generator) is let go RUN_TTL_S after it was last used (`sweep`,
every SWEEP_S: a visitor who paused and walked away with the tab open), or as
soon as the visitor closes or reloads the tab (`let_go`, on the page's unload). Gradio's own clean-up
does not reach it: a gr.State's time to live starts only when an event returns the state, and this
one is changed in place; a closed session's state would be kept for an hour. Memory per session: at
most MAX_TRACE states for the run and MAX_TRACE for the original run an edit or a reveal by hand
branched from (each state: a few tuples of the canvas length).
"""
from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, field

import gradio as gr

from .. import history, render
from . import settings
from .messages import log, warn


def pause(delay_ms) -> float:
    """Slow motion: seconds to wait after each frame (0 to 2)."""
    return min(max(float(delay_ms or 0), 0.0), 2000.0) / 1000


@dataclass
class Run:
    """A session's last run (gr.State; shared by its events): the states, for rewind, branch and export,
    and how the Generate tab shows them."""
    states: list = field(default_factory=list)
    pinned: int | None = None     # the state the rewind slider holds on screen; None: follow the run live
    ghost: bool = False           # show the model's guesses under the masks
    tokenizer: object = None      # the vocabulary the states are written in (a branch must share it)
    running: bool = False
    owner: object = None          # the stream writing it: a newer run (Generate or Branch) takes over
    hold: bool = False            # Hold was pressed: the stream pauses after its next state
    live: object = None           # the paused run's denoise generator (Next step, Continue pull from it)
    source: tuple | None = None   # (model key, SamplerConfig) the run was written with: edits continue so
    original: list | None = None  # the states of the run before its first edit or reveal by hand
    used: float = field(default_factory=time.monotonic)   # last use (a paused run expires RUN_TTL_S after)
    gone: str = ""                # why the run was let go (`forget`), until the next one starts

    def drop(self) -> None:
        """Let go of the paused generator (a new run, an expired one, a session that ended)."""
        live, self.live = self.live, None
        if live is not None:
            live.close()

    def let_go_if_unused(self, now: float | None = None) -> bool:
        """`forget` the run if it was not written or driven for RUN_TTL_S (`sweep`; hand.py, if it comes first)."""
        idle = (time.monotonic() if now is None else now) - self.used
        if self.running or self.gone or not self.states or idle <= settings.RUN_TTL_S:
            return False
        self.forget(f"unused for {settings.RUN_TTL_S / 60:g} minutes")
        return True

    def forget(self, why: str) -> None:
        """Let go of everything the run holds (its session ended): the generator, the states, the original."""
        held = len(self.states) + len(self.original or ())
        self.drop()
        self.states, self.original, self.source, self.gone = [], None, None, why
        log.info("let go of a session's run (%s): %d states", why, held)

    def index(self, at) -> int:
        """A step the slider (or an API caller) names, clamped to the run's states."""
        return min(max(int(at or 0), 0), len(self.states) - 1)

    def view(self, index: int | None = None, live: bool = False) -> tuple[str, str, str]:
        """(canvas, chart, status) of states[index] (default: the last), with every view's extras. live: a
        frame of a run in progress, replaced a few ms later: without the hover alternatives (a lighter
        stream; the finished run, a rewound or replayed step have them)."""
        last = len(self.states) - 1
        index = last if index is None else self.index(index)
        state = self.states[index]
        counts = [s.num_masked for s in self.states[:index + 1]]
        cands = {} if live else history.candidates_at(self.states, index)
        drafted = self.states[index - 1].guesses if index else ()   # the draft this step checked, if any
        canvas = render.render_state(state, cands=cands, ghost=self.ghost, drafted=drafted)
        if index < last:
            status = render.rewind_line(state, self.states[-1], self.running)
        elif self.live is not None:
            status = render.paused_line(state, self.source[1].remasking if self.source else "")
        else:
            status = render.status_line(state)
        entropy = [s.entropy for s in self.states[:index + 1]]
        return canvas, render.mask_chart_svg(counts, state.total_steps, entropy=entropy), status

    def heatmap(self, index: int | None = None) -> str:
        return render.heatmap_svg(self.states, current=None if index is None else self.states[index].step)


SESSIONS: "weakref.WeakValueDictionary[str, Run]" = weakref.WeakValueDictionary()   # session hash -> its Run


SWEEP_S = 10


def remember(run: Run, request) -> None:
    """Note whose run this is, so that `let_go` and `sweep` find it (no request: a direct call)."""
    session = getattr(request, "session_hash", None)
    if session:
        SESSIONS[session] = run


def sweep(now: float | None = None) -> int:
    """Let go of every run not written or driven for RUN_TTL_S; returns how many."""
    now = time.monotonic() if now is None else now
    expired = [key for key, run in list(SESSIONS.items()) if run.let_go_if_unused(now)]
    for key in expired:
        SESSIONS.pop(key, None)
    return len(expired)


def start_sweeping() -> threading.Thread:
    """`sweep` every SWEEP_S in a daemon thread, for as long as the app runs (app.py's main)."""
    def forever():
        while True:
            time.sleep(SWEEP_S)
            sweep()
    thread = threading.Thread(target=forever, name="microdllm-sweep", daemon=True)
    thread.start()
    return thread


def let_go(request: gr.Request) -> None:
    """The page's unload (the visitor closed or reloaded the tab): free the session's run at once."""
    run = SESSIONS.pop(getattr(request, "session_hash", None) or "", None)
    if run is not None:
        run.forget("the visitor left")


def stream(run: Run, states, kept: list, delay: float):
    """Record each state in the session's run and yield its frame (only the slider while rewound). A
    newer run of the same session (another Generate or Branch) takes the run over: this one stops."""
    me = run.owner = object()
    if run.live is not states:
        run.drop()
    run.live, run.hold, run.gone = None, False, ""
    run.states, run.pinned, run.running, run.used = list(kept), None, True, time.monotonic()
    try:
        yield from _frames(run, states, delay, me)
    finally:
        if run.owner is me:
            run.running, run.used = False, time.monotonic()


def _frames(run: Run, states, delay: float, me):
    keep = gr.skip()
    for state in states:
        if run.owner is not me:
            return
        if len(run.states) < settings.MAX_TRACE:
            run.states.append(state)
        last = len(run.states) - 1
        slider = gr.update(maximum=max(last, 1), value=last) if run.pinned is None else gr.update(maximum=max(last, 1))
        if state.done:
            run.running = False
            canvas, chart, status = run.view(run.pinned)
            yield canvas, chart, slider, run.heatmap(run.pinned), status, state.text
            return
        if run.hold:               # Hold: keep the generator, end the stream (no thread is kept)
            run.live, run.hold, run.running = states, False, False
            canvas, chart, status = run.view(run.pinned)
            yield canvas, chart, slider, run.heatmap(run.pinned), status, ""
            return
        frame = run.view(live=True) if run.pinned is None else (keep, keep, keep)
        yield frame[0], frame[1], slider, keep, frame[2], ""
        if delay:
            time.sleep(delay)


def rewind(at, run):
    """The rewind slider moved: show that step of the run (no model call); the live run, if any, goes on
    behind it until the slider is back at the end."""
    if run is None or not run.states:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    index = run.index(at)
    run.pinned = None if index == len(run.states) - 1 and run.running else index
    canvas, chart, status = run.view(index)
    return canvas, chart, status, gr.skip() if run.running else run.heatmap(index)


def show_guesses(ghost, at, run):
    """The ghost toggle: re-draw the step on screen with or without the model's guesses."""
    if run is None:
        return gr.skip()
    run.ghost = bool(ghost)
    if not run.states:
        return gr.skip()
    return run.view(run.pinned if run.running else at)[0]


def replay(speed, at, run):
    """Play the run again from the step on the slider (from the start if it is at the end)."""
    if run is None or not run.states or run.running:
        warn("Nothing to replay yet: generate a story first." if not (run and run.states) else
             "A run is still being written: replay it when it is done.")
        return
    last, wait = len(run.states) - 1, 1 / min(max(float(speed or 8), 0.5), 60)
    start = run.index(at) if run.index(at) < last else 0
    for i in range(start, last + 1):
        run.pinned = i
        canvas, chart, status = run.view(i)
        yield canvas, chart, gr.update(value=i), run.heatmap(i) if i == last else gr.skip(), status
        if i < last:
            time.sleep(wait)


def after_run(status_text):
    """After every run, also a stopped one: a run that ended mid-way says it was stopped, and where."""
    line = render.stopped_line(status_text or "")
    return line if line is not None else gr.skip()
