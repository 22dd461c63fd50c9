"""The class drives the run: hold it, step it by hand, choose what to reveal, edit and resume.

Every handler reads the session's `Run` (session.py). A held run keeps its live `denoise` generator:
Next step pulls exactly one more state from it (one model evaluation), Continue streams the rest. A
reveal by hand or an edit is a branch: `denoise(..., start=state)` (with `reveal=` for the former),
whose generator becomes the run's, paused at its first new step; the run before it is kept
(`Run.original`) for the comparison. No handler samples or calls the model itself.
"""
from __future__ import annotations

import dataclasses
import re
import time

import gradio as gr

from .. import render
from ..sampling import SamplingError, denoise
from ..serving import one_line
from . import settings
from .messages import log, warn
from .session import Run, pause, stream

SKIP6 = (gr.skip(),) * 6


def _refuse(message: str, n: int = 6):
    """A clear one-line refusal: a toast, and the status line (the fifth of the run's six outputs)."""
    warn(message)
    return (gr.skip(),) * 4 + (f"⚠️ {message}",) + (gr.skip(),) * (n - 5)


def _problem(run: Run | None, paused: bool = True) -> str | None:
    """Why the run cannot be driven (no run, expired, not paused); None if it can."""
    if run is not None:
        run.let_go_if_unused()                   # if the sweep has not come by yet
    if run is not None and run.gone:
        return f"This run was let go ({run.gone}): generate again."
    if run is None or not run.states:
        return "Nothing to drive yet: generate a story first."
    if run.running:
        return "The run is being written: press Hold first."
    if paused and run.live is None:
        return "The run is not paused: Hold it while it is being written (or rewind and edit a step)."
    return None


def _show(run: Run):
    """The run's six outputs at its last state (canvas, chart, slider, heatmap, status, final text)."""
    run.pinned, run.used = None, time.monotonic()
    last = len(run.states) - 1
    canvas, chart, status = run.view()
    final = run.states[-1].text if run.states[-1].done else ""
    return canvas, chart, gr.update(maximum=max(last, 1), value=last), run.heatmap(), status, final


def hold(run):
    """Hold the live run after the step it is writing (its generator is kept: Next step, Continue). The
    status is left to the run: its next frame says Paused (a line of our own could arrive after that
    frame and write over it)."""
    if run is not None and run.running:
        run.hold = True
        return gr.skip()
    warn("Nothing is being written: generate a story, then Hold it while it runs.")
    return gr.skip()


def next_step(run):
    """Exactly one more state of the held run's own generator (one model evaluation at most)."""
    problem = _problem(run)
    if problem:
        return _refuse(problem)
    try:
        state = next(run.live)
    except StopIteration:
        run.live = None
        return _show(run)
    except Exception as e:  # noqa: BLE001 - the app must keep serving
        log.exception("next step failed")
        run.drop()
        return _refuse(f"The next step failed: {one_line(e)}")
    if len(run.states) < settings.MAX_TRACE:
        run.states.append(state)
    if state.done:
        run.live = None
    return _show(run)


def continue_run(delay_ms, run):
    """Stream the held run on from where it is, at the slow-motion speed."""
    problem = _problem(run)
    if problem:
        yield _refuse(problem)
        return
    it = run.live
    try:
        yield from stream(run, it, run.states, pause(delay_ms))
    finally:
        if run.live is not it:
            it.close()


def step_back(at, run):
    """One step back on the rewind slider (no model call)."""
    if run is None or not run.states:
        return (gr.skip(),) * 5
    index = max(run.index(at) - 1, 0)
    run.pinned = index
    canvas, chart, status = run.view(index)
    return canvas, chart, status, run.heatmap(index), gr.update(value=index)


def parse_positions(marks) -> list[int]:
    """'3, 9 12' -> [3, 9, 12]; anything but whole numbers is refused in one line."""
    items = [m for m in re.split(r"[,\s]+", str(marks or "").strip()) if m]
    if not items:
        raise SamplingError("mark one or more masks to reveal first (click them on the canvas)")
    if len(items) > 1024 or not all(re.fullmatch(r"-?\d{1,6}", m) for m in items):
        raise SamplingError("positions are whole numbers separated by commas, e.g. 3, 9, 12")
    return [int(m) for m in items]


def _chars_for(char, n: int) -> list | None:
    """The characters to write at n positions: none (the model's guesses), one for all, or one each."""
    char = "" if char is None else str(char)
    if not char:
        return None
    if len(char) == 1:
        return [char] * n
    if len(char) == n:
        return list(char)
    raise SamplingError(f"type one character (for every marked mask) or {n}, one for each; got {len(char)}")


def _branch(run: Run, index: int, start, hand=None, chars=None):
    """Continue the run from `start` (the state after states[index]) with its own settings; paused."""
    if run.source is None:
        raise SamplingError("this run cannot be continued: generate a story first")
    key, cfg = run.source
    _, ck, _ = settings.STORE.load(key)
    if ck.tokenizer != run.tokenizer:
        raise SamplingError("the session's model changed since this run: generate again")
    it = denoise(ck.model, ck.tokenizer, "", cfg, start=start, schedule=ck.schedule, ngram=ck.ngram, reveal=hand, chars=chars)
    first = next(it)                         # the start itself (a bad reveal is refused here)
    new = next(it) if hand is not None else first
    if run.original is None:
        run.original = list(run.states)
    run.drop()
    run.states, run.live = run.states[:index + 1] + [new], (None if new.done else it)
    if new.done:
        it.close()
    return _show(run)


def reveal(marks, char, at, run):
    """Reveal the marked masks as one step (the model's guesses there, or the typed characters),
    branching from the step on the slider; the run stays paused at the new step."""
    problem = _problem(run, paused=False)
    if problem:
        return _refuse(problem, 7)
    try:
        positions = parse_positions(marks)
        index = run.index(at)
        return *_branch(run, index, run.states[index], positions, _chars_for(char, len(positions))), ""
    except SamplingError as e:
        message = str(e)
        return _refuse(message[:1].upper() + message[1:], 7)
    except Exception as e:  # noqa: BLE001
        log.exception("reveal failed")
        return _refuse(f"The reveal failed: {one_line(e)}", 7)


def edited(run: Run, state, position, char):
    """The state with one character changed (char) or masked again (''), checked; a SamplingError says why not."""
    tok, n = run.tokenizer, len(state.tokens)
    if position is None or not float(position).is_integer() or not 0 <= int(position) < n:
        raise SamplingError(f"choose a position of the text (0 to {n - 1}): click a character")
    pos, char = int(position), "" if char is None else str(char)
    if state.fixed[pos]:
        raise SamplingError(f"position {pos} is the prompt: edit only characters the model writes")
    if len(char) > 1 or (char and char not in tok.chars):
        raise SamplingError(f"{char[:20]!r} is not one character this model writes (empty: mask it again)")
    mode = "left to right" if run.source is None else run.source[1].mode
    if any(state.masked) and (mode != "denoise" or _causal(run)):
        cursor = state.masked.index(True)
        if pos != cursor or not char:
            raise SamplingError(f"this run writes left to right and its cursor is at position {cursor}: "
                                f"it can only be given the character at its cursor, not an edit at {pos}")
    if state.block and state.boundaries and pos < state.block[0] and not state.done:
        raise SamplingError(f"position {pos} is in a block already written: edit inside the block being "
                            f"written ({state.block[0]} to {state.block[1] - 1})")
    tokens, masked, conf = list(state.tokens), list(state.masked), list(state.confidence)
    tokens[pos] = tok.chars.index(char) + 1 if char else tok.mask_id
    masked[pos], conf[pos] = not char, 1.0 if char else float("nan")
    return dataclasses.replace(state, step=state.step + 1, tokens=tuple(tokens), text=tok.decode(tokens),
                               masked=tuple(masked), revealed=(False,) * n, remasked=(False,) * n,
                               confidence=tuple(conf), done=False, phase="start", candidates=(), suggested=())


def _causal(run: Run) -> bool:
    _, ck, _ = settings.STORE.load(run.source[0])
    return bool(ck.model.config.causal)


def edit(position, char, at, run):
    """Change (or mask again) the character at `position` of the step on the slider; the run continues
    from the edited draft, paused."""
    problem = _problem(run, paused=False)
    if problem:
        return _refuse(problem)
    try:
        index = run.index(at)
        return _branch(run, index, edited(run, run.states[index], position, char))
    except SamplingError as e:
        message = str(e)
        return _refuse(message[:1].upper() + message[1:])
    except Exception as e:  # noqa: BLE001
        log.exception("edit failed")
        return _refuse(f"The edit failed: {one_line(e)}")


def diff(run):
    """The original run's text and the edited one's, the differing characters marked."""
    if run is None or not run.original or not run.states:
        warn("Nothing to compare yet: reveal by hand or edit a paused run first (the original is kept then).")
        return gr.skip()
    return render.diff_html(run.original[-1].text, run.states[-1].text)


def trajectory(position, run):
    """How the character at `position` made up its mind across every step of the run."""
    if run is None or not run.states:
        warn("Nothing to chart yet: generate a story first, then click a character.")
        return gr.skip()
    n = len(run.states[0].tokens)
    if position is None or not float(position).is_integer() or not 0 <= int(position) < n:
        warn(f"Choose a position of the text (0 to {n - 1}): click a character.")
        return gr.skip()
    return render.trajectory_svg(run.states, int(position))
