"""A run as charts (SVG): when each character was decided (the heatmap), and masks left per step."""
from __future__ import annotations

import html
from typing import TYPE_CHECKING

from .. import history
from .pieces import shown, svg_text

if TYPE_CHECKING:  # annotations only: importing the sampler would import torch
    from ..sampling import DenoiseState

HEAT_COLOURS = {"reveal": "#E69F00", "remask": "#D55E00", "rewrite": "#CC79A7",   # Okabe-Ito
                history.REJECT: "#D55E00"}     # a draft turned down: the re-mask colour (verify runs re-mask nothing)
HEAT_SPANS = {True: "#D9D9D9", False: "#F4F1E8"}   # masked, written
HEAT_PROMPT = "#DCEBF5"
HEAT_NAMES = {"reveal": "revealed", "remask": "re-masked", "rewrite": "rewritten", history.REJECT: "drafted, turned down"}


def _runs(flags) -> list[tuple[int, int]]:
    """[lo, hi) stretches where flags are true."""
    out, lo = [], None
    for i, f in enumerate(list(flags) + [False]):
        if f and lo is None:
            lo = i
        elif not f and lo is not None:
            out.append((lo, i))
            lo = None
    return out


def _spaced(boundaries, cell: float, px: float = 6.0) -> bool:
    """Whether block starts are far enough apart to draw as lines (else they would hide the cells)."""
    gaps = [b - a for a, b in zip(boundaries, boundaries[1:])]
    return bool(boundaries) and min(gaps, default=len(boundaries)) * cell >= px


def heatmap_svg(states: list[DenoiseState], current: int | None = None, width: int = 640) -> str:
    """When each character was decided: position (x) against step (y, down). Grey while masked, cream
    once written, a coloured cell where a step revealed (orange), re-masked (vermillion) or rewrote
    (purple) it, or turned down its draft (draft and verify: vermillion too, so each round's kept
    characters are the orange run before them); the prompt light blue; the blocks of a block-by-block
    run as a strip above the grid (and lines, where they fit); `current`: the step shown, a dashed line.
    Every cell names its character and steps on hover."""
    if not states:
        return '<div class="mdl-heatmap"></div>'
    n_pos, first, last = len(states[0].text), states[0].step, states[-1].step
    left, top = 40, 10
    cw = (width - left - 8) / n_pos
    ch = min(12.0, max(1.0, 260 / max(last - first + 1, 1)))
    bottom_y = top + ch * (last - first + 1)

    def rect(pos, step, steps, fill, title, cols=1, attrs=""):
        return (f'<rect{attrs} x="{left + pos * cw:.2f}" y="{top + (step - first) * ch:.2f}" width="{cols * cw:.2f}" '
                f'height="{steps * ch:.2f}" fill="{fill}"><title>{html.escape(title, quote=False)}</title></rect>')

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {bottom_y + 34:.0f}" role="img" '
           'aria-label="when each character was decided" font-family="sans-serif">']
    out += [rect(lo, first, last - first + 1, HEAT_PROMPT, "the prompt", cols=hi - lo) for lo, hi in _runs(states[0].fixed)]
    at = {state.step: state for state in states}
    for sp in history.spans(states):
        what = "masked" if sp.masked else f"written: {shown(at.get(sp.end - 1, states[-1]).text[sp.position])!r}"
        out.append(rect(sp.position, sp.start, sp.end - sp.start, HEAT_SPANS[sp.masked],
                        f"position {sp.position}: {what}, steps {sp.start} to {sp.end - 1}"))
    out += [rect(ev.position, ev.step, 1, HEAT_COLOURS[ev.kind],
                 f"{shown(ev.char)!r} {HEAT_NAMES[ev.kind]} at step {ev.step} (position {ev.position})")
            for ev in history.events(states)]
    turned_down = history.rejections(states)
    out += [rect(ev.position, ev.step, 1, HEAT_COLOURS[ev.kind], f"{shown(ev.char)!r} {HEAT_NAMES[ev.kind]} at step "
                 f"{ev.step} (position {ev.position})", attrs=' class="mdl-hreject"') for ev in turned_down]
    bounds = states[-1].boundaries
    out += [f'<line x1="{left + b * cw:.2f}" y1="{top}" x2="{left + b * cw:.2f}" y2="{bottom_y:.2f}" '
            'stroke="#56B4E9" stroke-width="0.6"/>' for b in (bounds if _spaced(bounds, cw) else ())]
    ends = list(bounds[1:]) + [n_pos]     # and always a strip above the grid, one shade per block
    out += [f'<rect class="mdl-hblock" x="{left + b * cw:.2f}" y="{top - 6}" width="{(e - b) * cw:.2f}" height="4" '
            f'fill="{("#56B4E9", "#0072B2")[k % 2]}"><title>block {k + 1}: positions {b} to {e - 1}</title></rect>'
            for k, (b, e) in enumerate(zip(bounds, ends))]
    if current is not None and first <= current <= last:
        y = top + (current - first + 0.5) * ch
        out.append(f'<line x1="{left}" y1="{y:.2f}" x2="{width - 8}" y2="{y:.2f}" stroke="#0072B2" '
                   'stroke-width="1.5" stroke-dasharray="4 3"/>')
    out += [svg_text(left - 4, top + 9, first, anchor="end"), svg_text(left - 4, bottom_y, last, anchor="end"),
            svg_text(left, bottom_y + 14, "position 0"), svg_text(width - 8, bottom_y + 14, n_pos - 1, anchor="end"),
            svg_text(left + (width - left) / 2, bottom_y + 28, _caption(bool(turned_down)), size=11, anchor="middle"),
            "</svg>"]
    return '<div class="mdl-heatmap">' + "".join(out) + "</div>"


def _caption(drafts: bool) -> str:
    if drafts:
        return "position → · step ↓ · orange written (drafts kept) · vermillion drafted, turned down · blue: the prompt"
    return "position → · step ↓ · orange revealed · vermillion re-masked · purple rewritten · blue: the prompt"


def mask_chart_svg(counts: list[int], total_steps: int, width: int = 420, height: int = 130,
                   entropy: list[float] | None = None) -> str:
    """Masks remaining after each step (a polyline over a fixed 0..total_steps axis); entropy: the mean
    entropy of the still-masked positions per step (nan: no evaluation that step), a dashed line on its
    own scale (right axis, nats)."""
    left, right, top, bottom = 44, 10, 10, 30
    pw, ph = width - left - right, height - top - bottom
    top_count = max(max(counts, default=0), 1)
    n_steps = max(total_steps, len(counts) - 1, 1)

    def xy(step: int, count: int) -> tuple[float, float]:
        return left + pw * step / n_steps, top + ph * (1 - count / top_count)

    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, c) for i, c in enumerate(counts)))
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="masks remaining per denoising step">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999" stroke-width="1"/>',
           svg_text(left - 6, top + 10, top_count, anchor="end"), svg_text(left - 6, top + ph, 0, anchor="end"),
           svg_text(left, height - 8, "step 0"), svg_text(left + pw, height - 8, n_steps, anchor="end"),
           svg_text(left + pw / 2, height - 8, "masks left per step", size=12, anchor="middle")]
    if counts:
        svg.append(f'<polyline points="{points}" fill="none" stroke="#0072B2" stroke-width="2.5"/>')
        x, y = xy(len(counts) - 1, counts[-1])
        svg.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#D55E00"/>')
    svg += _entropy_line(entropy or [], xy, left + pw, top, ph)
    svg.append("</svg>")
    return '<div class="mdl-chart">' + "".join(svg) + "</div>"


def _entropy_line(entropy: list[float], xy, right: float, top: float, ph: float) -> list[str]:
    """The mean entropy of the masked positions per step, dashed, scaled to its own maximum (right axis)."""
    known = [(i, h) for i, h in enumerate(entropy) if h == h]
    if not known:
        return []
    top_h = max(max(h for _, h in known), 1e-6)
    points = " ".join(f"{xy(i, 0)[0]:.1f},{top + ph * (1 - h / top_h):.1f}" for i, h in known)
    return [f'<polyline class="mdl-entropy" points="{points}" fill="none" stroke="#009E73" stroke-width="1.8" '
            f'stroke-dasharray="5 3"><title>mean entropy of the masked positions (nats)</title></polyline>',
            svg_text(right - 4, top + 12, f"- - mean entropy of the masks (top: {top_h:.1f} nats)", size=10,
                     anchor="end")]
