"""The canvas: a state of the sequence as HTML, one span per character coloured by its role.

Colours are Okabe-Ito (distinguishable with colour-blind vision): prompt blue #0072B2, written
this step (revealed, or rewritten by a polish pass) orange #E69F00, re-masked vermillion #D55E00,
still masked grey. Draft and verify: the draft is shown as ghosts under the masks, the characters the
verifier kept turn orange, the ones it turned down are struck through in vermillion for that step.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..tokenizer import MASK_GLYPH
from .pieces import percent, shown, span

if TYPE_CHECKING:  # annotations only: importing the sampler would import torch
    from ..sampling import Candidates, DenoiseState

LEGEND = (
    '<div class="mdl-legend">'
    '<span><span class="mdl-c mdl-prompt">Abc</span> prompt</span>'
    '<span><span class="mdl-c mdl-mask">_</span> still masked</span>'
    '<span><span class="mdl-c mdl-new">a</span> written this step</span>'
    '<span><span class="mdl-c mdl-remask">_</span> re-masked this step</span>'
    '<span>fainter = less confident (hover or tap a character: what else the model weighed)</span>'
    "</div>"
)
BLOCK_LEGEND = ('<div class="mdl-legend"><span><span class="mdl-c mdl-bstart">&nbsp;</span> a block starts</span>'
                '<span><span class="mdl-c mdl-cur">ab</span> the block being written</span></div>')
GHOST_LEGEND = ('<div class="mdl-legend"><span><span class="mdl-c mdl-mask mdl-ghost">e</span> under a mask: the '
                'model\'s best guess at this step (not written yet)</span></div>')

DRAFT_LEGEND = ('<div class="mdl-legend"><span><span class="mdl-c mdl-mask mdl-ghost">e</span> drafted: written '
                'all at once by the block half, checked next by the left-to-right half</span>'
                '<span><span class="mdl-c mdl-new">a</span> kept (and the checker\'s own character)</span>'
                '<span><span class="mdl-c mdl-mask mdl-rejected">x</span> drafted, turned down: stays masked</span>'
                '</div>')
HAND_LEGEND = ('<div class="mdl-legend"><span><span class="mdl-c mdl-mask mdl-suggested">_</span> what the '
               'strategy would have revealed instead</span></div>')
DRAFTING = ("draft", "verify")   # the phases of draft and verify: their states show the draft


def candidates_text(c: Candidates, remasked: bool = False) -> str:
    """'e 62% · a 21% · o 9% …': what the model weighed when it wrote the character (a re-masked one:
    what it was)."""
    ranked = " · ".join(f"{shown(ch)} {percent(p)}" for ch, p in c.top)
    return (f"was {shown(c.written)} · " if remasked else "") + ranked


def _role_span(role: str, ch: str, conf: float, cands: Candidates | None = None, guess: str = "") -> str:
    """One character of a state, drawn as its role says (conf: nan where never predicted); cands: the
    alternatives when it was written; guess: the model's best guess under a mask (the ghost view)."""
    known = not math.isnan(conf)
    if role == "prompt":
        return span("mdl-prompt", ch, "prompt")
    if role == "remasked":
        return span("mdl-remask", MASK_GLYPH,
                    "re-masked this step" + (f" (its token had confidence {conf:.2f})" if known else ""),
                    popup=candidates_text(cands, remasked=True) if cands else "")
    if role == "masked":
        if guess:
            return span("mdl-mask mdl-ghost", guess, f"masked; the model's best guess now: {shown(guess)!r}")
        return span("mdl-mask", MASK_GLYPH, "masked")
    title = f"confidence {conf:.2f}" if known else "confidence n/a"
    popup = candidates_text(cands) if cands else ""
    if role == "revealed":
        return span("mdl-new", ch, "written this step, " + title, popup=popup)
    return span("mdl-gen", ch, title, 0.35 + 0.65 * min(max(conf, 0.0), 1.0) if known else None, popup=popup)


def _block_marks(state: DenoiseState) -> list[str]:
    """Per character, the classes that show the blocks of a block-by-block run (else nothing)."""
    marks = [""] * len(state.text)
    if not state.boundaries:
        return marks
    for i in state.boundaries:
        marks[i] += " mdl-bstart"
    if state.block is not None and not state.done:
        for i in range(*state.block):
            marks[i] += " mdl-cur"
    return marks


def _draft_span(i: int, state: DenoiseState, drafted: str) -> str | None:
    """A masked position of a draft-and-verify step: a drafted character turned down this step (struck
    through; it stays masked), or one of the draft to be checked next (a ghost); None: neither."""
    if state.rejected and state.rejected[i]:
        title = f"drafted {shown(drafted)!r}, turned down by the check: still masked" if drafted else \
            "drafted, turned down by the check: still masked"
        return span("mdl-mask mdl-rejected", shown(drafted) if drafted else MASK_GLYPH, title)
    guess = state.guesses[i] if state.guesses else ""
    if guess:
        return span("mdl-mask mdl-ghost", guess, f"drafted {shown(guess)!r}: not written yet, checked next step")
    return None


def render_state(state: DenoiseState, legend: bool = True, cands: dict[int, Candidates] | None = None,
                 ghost: bool = False, drafted: tuple[str, ...] = ()) -> str:
    """HTML for one denoising state: every character a span with its role, confidence as opacity + tooltip;
    with blocks, where each starts and which one is being written. cands (position -> Candidates, e.g.
    history.candidates_at): hovering a written character lists them. ghost: the model's best guesses
    under the masks, faint. A step of draft and verify always shows its draft so, and the drafted
    characters it turned down struck through; drafted: the draft it checked (the guesses of the state
    before), else a turned-down character is drawn as a struck-through mask."""
    conf, marks, cands = state.confidence, _block_marks(state), cands or {}
    drafting = state.phase in DRAFTING
    guesses = state.guesses if ghost and state.guesses else ("",) * len(state.text)
    drafted = drafted or ("",) * len(state.text)
    spans = []
    for i, ch in enumerate(state.text):
        role = state.role(i)
        draft = _draft_span(i, state, drafted[i]) if drafting and role == "masked" else None
        spans.append(draft or _role_span(role, ch, conf[i] if i < len(conf) else float("nan"), cands.get(i), guesses[i]))
    for i in state.suggested:      # a step revealed by hand: what the strategy would have chosen
        marks[i] += " mdl-suggested"
    body = "".join(s.replace('<span class="mdl-c ', f'<span data-pos="{i}" class="mdl-c{mark} ', 1)
                   for i, (s, mark) in enumerate(zip(spans, marks)))
    extra = DRAFT_LEGEND if drafting else GHOST_LEGEND if ghost else ""
    extra += HAND_LEGEND if state.suggested else ""
    legends = (LEGEND + (BLOCK_LEGEND if state.boundaries else "") + extra) if legend else ""
    return legends + f'<div class="mdl-canvas">{body}</div>'


def render_text(text: str, legend: bool = True) -> str:
    """A plain text shown as prompt-coloured characters (before a run, or for the prompt alone)."""
    body = "".join(span("mdl-mask", MASK_GLYPH, "masked") if c == MASK_GLYPH else span("mdl-prompt", c, "prompt")
                   for c in text)
    return (LEGEND if legend else "") + f'<div class="mdl-canvas">{body}</div>'
