"""A run read across its steps: when each character was decided, and what the model weighed there.

The sampler's states (`DenoiseState`) each say what one step did. The teaching views need the run
as a whole: the rewind slider shows any step with the alternatives of every character written by
then; the heatmap shows, for every position, when it was revealed, re-masked or rewritten. These
are plain functions of the list of states (no model, no torch), shared by the app (render/) and
the exporter (viz.py). Draft and verify adds the drafts the verifier turned down (`rejections`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # annotations only: importing the sampler would import torch
    from .sampling import Candidates, DenoiseState

EVENTS = ("reveal", "remask", "rewrite")   # what a step can do to a character
REJECT = "reject"     # draft and verify: a drafted character the verifier turned down (it stays masked)


@dataclass(frozen=True)
class Event:
    position: int
    step: int
    kind: str           # one of EVENTS, or REJECT
    char: str           # the character written (reveal, rewrite), masked again (remask) or drafted (reject)


@dataclass(frozen=True)
class Span:
    """A stretch of steps [start, end) over which a position stayed masked, or stayed written."""
    position: int
    start: int
    end: int
    masked: bool


def candidates_at(states: Sequence[DenoiseState], index: int) -> dict[int, Candidates]:
    """Per position, the candidates of the last time a character was written there, up to states[index]."""
    known: dict[int, Candidates] = {}
    for state in states[:index + 1]:
        for c in state.candidates:
            known[c.position] = c
    return known


def events(states: Sequence[DenoiseState]) -> list[Event]:
    """Every reveal, re-mask and rewrite of the run, in step order (a polish pass's or the original
    refinement's change of a written character is a rewrite)."""
    out = []
    for prev, state in zip(states, states[1:]):
        for c in state.candidates:
            kind = "reveal" if prev.masked[c.position] else "rewrite"
            out.append(Event(c.position, state.step, kind, c.written))
        out += [Event(i, state.step, "remask", prev.text[i]) for i, r in enumerate(state.remasked) if r]
    return out


def rejections(states: Sequence[DenoiseState]) -> list[Event]:
    """Every drafted character the verifier turned down (draft and verify), left masked, in step order:
    what a run's drafts lost. The character is the draft's, read from the state before (its guesses)."""
    out = []
    for prev, state in zip(states, states[1:]):
        drafted = prev.guesses or ("",) * len(prev.text)
        out += [Event(i, state.step, REJECT, drafted[i]) for i, r in enumerate(state.rejected) if r and state.masked[i]]
    return out


def spans(states: Sequence[DenoiseState]) -> list[Span]:
    """For every generated position, its masked and written stretches from the first state to the last."""
    if not states:
        return []
    first, last = states[0], states[-1].step + 1
    opened = {i: (first.step, m) for i, m in enumerate(first.masked) if not first.fixed[i]}
    out = []
    for ev in events(states):
        if ev.kind == "rewrite" or ev.position not in opened:
            continue
        start, masked = opened[ev.position]
        out.append(Span(ev.position, start, ev.step, masked))
        opened[ev.position] = (ev.step, ev.kind == "remask")
    out += [Span(i, start, last, masked) for i, (start, masked) in opened.items()]
    return out


@dataclass(frozen=True)
class Point:
    """Where one position stood after one step: its top guess under a mask, or its written character."""
    step: int
    char: str           # '' = no guess yet
    p: float            # its probability (nan: unknown)
    written: bool


def trajectory(states: Sequence[DenoiseState], position: int) -> tuple[list[Point], int]:
    """How a character made up its mind: per step, the model's top guess at `position` while it was
    masked (state.guesses, state.guess_conf) or the character written there (its confidence); and how
    many times that character changed from one step to the next."""
    points: list[Point] = []
    for s in states:
        if s.masked[position]:
            char = s.guesses[position] if s.guesses else ""
            p = s.guess_conf[position] if s.guess_conf and char else float("nan")
            points.append(Point(s.step, char, p, False))
        else:
            points.append(Point(s.step, s.text[position], s.confidence[position], True))
    chars = [pt.char for pt in points if pt.char]
    return points, sum(a != b for a, b in zip(chars, chars[1:]))
