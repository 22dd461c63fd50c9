"""The views of a run the class drives by hand: the paused status line, a reveal by hand against the
strategy's choice, one position's trajectory across the run, and an edited run against the original."""
from __future__ import annotations

import html
from typing import TYPE_CHECKING

from .. import history
from .pieces import char_html, percent, shown, svg_text

if TYPE_CHECKING:  # annotations only: importing the sampler would import torch
    from ..sampling import DenoiseState


def paused_line(state: DenoiseState, strategy: str = "") -> str:
    """'**Paused** at step k of N · m masks left · e model evaluations · ...' (and, after a reveal by
    hand, the student's choice against the strategy's)."""
    masks = state.num_masked
    line = (f"**Paused** at step {state.step} of {state.total_steps} · {masks} mask{'s' * (masks != 1)} left · "
            f"{state.nfe} model evaluation{'s' * (state.nfe != 1)} · Next step, Continue, or click masks to reveal")
    if state.phase == "by hand":
        line += " · " + hand_line(state, strategy)
    return line


def _picked(state: DenoiseState, positions, written: bool) -> str:
    items = [(p, state.text[p] if written else (state.guesses[p] if state.guesses else ""),
              state.confidence[p] if written else (state.guess_conf[p] if state.guess_conf else float("nan")))
             for p in positions]
    known = [c for _, _, c in items if c == c]
    mean = f" (mean {percent(sum(known) / len(known))})" if known else ""
    return ", ".join(f"{p} {shown(ch)!r} {percent(c) if c == c else '?'}" for p, ch, c in items) + mean


def hand_line(state: DenoiseState, strategy: str) -> str:
    """You revealed 3 'e' 41%, 9 'a' 12% (mean 27%); low_confidence would have revealed 20 't' 97% ..."""
    mine = [i for i, r in enumerate(state.revealed) if r]
    same = sorted(set(mine) & set(state.suggested))
    theirs = ", ".join(f"{p} (also yours)" for p in same)
    others = [p for p in state.suggested if p not in same]
    if others:
        theirs = (theirs + ", " if theirs else "") + _picked(state, others, written=False)
    name = html.escape(strategy or "the strategy", quote=False)
    return f"you revealed {_picked(state, mine, written=True)}; {name} would have revealed {theirs}"


def trajectory_svg(states: list[DenoiseState], position: int, width: int = 420, height: int = 150) -> str:
    """One position across the run: the probability of its top guess (hollow, while masked) or of its
    written character (filled) per step, the character as a label wherever it changes."""
    points, changes = history.trajectory(states, position)
    left, right, top, bottom = 40, 10, 22, 30
    pw, ph = width - left - right, height - top - bottom
    n = max(points[-1].step - points[0].step, 1) if points else 1
    first = points[0].step if points else 0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="position {position}: its top guess per step" font-family="sans-serif">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
           svg_text(left - 6, top + 8, "100%", size=10, anchor="end"), svg_text(left - 6, top + ph, "0", anchor="end"),
           svg_text(left, height - 8, f"step {first}"), svg_text(left + pw, height - 8, first + n, anchor="end"),
           svg_text(left + pw / 2, height - 8, f"position {position}: top guess per step · changed {changes}×",
                    size=12, anchor="middle")]
    last = None
    for pt in points:
        if pt.p != pt.p:
            continue
        x, y = left + pw * (pt.step - first) / n, top + ph * (1 - pt.p)
        fill = "#0072B2" if pt.written else "none"
        out.append(f'<circle class="mdl-tpoint" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{fill}" stroke="#0072B2">'
                   f'<title>step {pt.step}: {html.escape(repr(shown(pt.char)))} {percent(pt.p)}'
                   f'{" (written)" if pt.written else " (top guess under the mask)"}</title></circle>')
        if pt.char != last:
            out.append(svg_text(x, y - 6, html.escape(shown(pt.char)), size=12, anchor="middle"))
            last = pt.char
    out.append("</svg>")
    return f'<div class="mdl-trajectory">{"".join(out)}</div>'


def diff_html(original: str, edited: str) -> str:
    """Both texts, one above the other, the characters where they differ marked."""
    def row(label: str, text: str, other: str) -> str:
        cells = "".join(f'<span class="mdl-c{" mdl-differ" if i >= len(other) or ch != other[i] else ""}">'
                        f"{char_html(ch)}</span>" for i, ch in enumerate(text))
        return f'<div class="mdl-diff-label">{label}</div><div class="mdl-canvas mdl-diff-text">{cells}</div>'
    n = sum(a != b for a, b in zip(original, edited)) + abs(len(original) - len(edited))
    return (f'<div class="mdl-diff">{row("the original run", original, edited)}'
            f'{row("after your changes", edited, original)}'
            f'<div class="mdl-diff-label">{n} character{"s" * (n != 1)} differ</div></div>')
