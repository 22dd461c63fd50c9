"""The app's pictures as HTML and SVG strings: the canvas, the charts, the status lines.

Pure string building: it knows nothing of Gradio, of torch or of models. It is handed
DenoiseStates (read through `state.role(i)`, the one definition of what a character is) and
plain numbers and lists, so every function is quick to test and safe to call from any thread.

Colours are Okabe-Ito (distinguishable with colour-blind vision): prompt blue #0072B2, written
this step (revealed, or rewritten by a polish pass) orange #E69F00, re-masked vermillion #D55E00,
still masked grey.
"""
from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

from .tokenizer import MASK_GLYPH

if TYPE_CHECKING:  # annotations only: importing the sampler would import torch
    from .sampling import DenoiseState

CSS = """
.mdl-canvas { font-family: ui-monospace, "DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, monospace;
  font-size: 1.45rem; line-height: 1.75; white-space: pre-wrap; overflow-wrap: anywhere;
  padding: .6rem .8rem; min-height: 7.5em; border: 1px solid var(--border-color-primary, #ccc);
  border-radius: 8px; }
.mdl-c { border-radius: 3px; }
.mdl-prompt { color: #0072B2; font-weight: 700; }
.dark .mdl-prompt { color: #56B4E9; }
.mdl-mask { color: #707070; background: rgba(128, 128, 128, .22); }
.mdl-canvas .mdl-mask, .mdl-canvas .mdl-remask { box-shadow: inset -1px 0 0 var(--background-fill-primary, #fff); }
.mdl-new { background: #E69F00; color: #000; }
.mdl-remask { background: #D55E00; color: #fff; }
.mdl-legend { font-family: var(--font, sans-serif); font-size: 1rem; display: flex; flex-wrap: wrap;
  gap: .3rem 1.1rem; margin: 0 0 .35rem 0; }
.mdl-legend .mdl-c { font-family: ui-monospace, monospace; padding: 0 .3em; }
.mdl-chart svg, .mdl-schedule svg { width: 100%; max-width: 560px; height: auto; }
.mdl-summary { font-size: 1.1rem; }
.mdl-canvas .mdl-bstart { border-left: 2px solid #56B4E9; }
.mdl-canvas .mdl-cur { outline: 1px dashed #56B4E9; outline-offset: -1px; }
#mdl-status { font-size: 1.15rem; }
"""

LEGEND = (
    '<div class="mdl-legend">'
    '<span><span class="mdl-c mdl-prompt">Abc</span> prompt</span>'
    '<span><span class="mdl-c mdl-mask">_</span> still masked</span>'
    '<span><span class="mdl-c mdl-new">a</span> written this step</span>'
    '<span><span class="mdl-c mdl-remask">_</span> re-masked this step</span>'
    '<span>fainter = less confident (hover a character for its confidence)</span>'
    "</div>"
)
BLOCK_LEGEND = ('<div class="mdl-legend"><span><span class="mdl-c mdl-bstart">&nbsp;</span> a block starts</span>'
                '<span><span class="mdl-c mdl-cur">ab</span> the block being written</span></div>')
WRITTEN = ("revealed", "text")  # the roles of generated characters that are on the page


def _char_html(ch: str) -> str:
    return "<br>" if ch == "\n" else html.escape(ch, quote=True)


def _span(classes: str, ch: str, title: str, opacity: float | None = None) -> str:
    style = f' style="opacity:{opacity:.2f}"' if opacity is not None else ""
    return f'<span class="mdl-c {classes}" title="{html.escape(title, quote=True)}"{style}>{_char_html(ch)}</span>'


def _role_span(role: str, ch: str, conf: float) -> str:
    """One character of a state, drawn as its role says (conf: nan where never predicted)."""
    known = not math.isnan(conf)
    if role == "prompt":
        return _span("mdl-prompt", ch, "prompt")
    if role == "remasked":
        return _span("mdl-remask", MASK_GLYPH,
                     "re-masked this step" + (f" (its token had confidence {conf:.2f})" if known else ""))
    if role == "masked":
        return _span("mdl-mask", MASK_GLYPH, "masked")
    title = f"confidence {conf:.2f}" if known else "confidence n/a"
    if role == "revealed":
        return _span("mdl-new", ch, "written this step, " + title)
    return _span("mdl-gen", ch, title, 0.35 + 0.65 * min(max(conf, 0.0), 1.0) if known else None)


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


def render_state(state: DenoiseState, legend: bool = True) -> str:
    """HTML for one denoising state: every character a span with its role, confidence as opacity + tooltip;
    with blocks, where each starts and which one is being written."""
    conf, marks = state.confidence, _block_marks(state)
    spans = [_role_span(state.role(i), ch, conf[i] if i < len(conf) else float("nan"))
             for i, ch in enumerate(state.text)]
    body = "".join(span.replace('class="mdl-c ', f'class="mdl-c{mark} ', 1) if mark else span
                   for span, mark in zip(spans, marks))
    legends = (LEGEND + (BLOCK_LEGEND if state.boundaries else "")) if legend else ""
    return legends + f'<div class="mdl-canvas">{body}</div>'


def render_text(text: str, legend: bool = True) -> str:
    """A plain text shown as prompt-coloured characters (before a run, or for the prompt alone)."""
    body = "".join(_span("mdl-mask", MASK_GLYPH, "masked") if c == MASK_GLYPH else _span("mdl-prompt", c, "prompt")
                   for c in text)
    return (LEGEND if legend else "") + f'<div class="mdl-canvas">{body}</div>'


def _svg_text(x, y, text, size=11, anchor: str | None = "start") -> str:
    align = f' text-anchor="{anchor}"' if anchor else ""
    return f'<text x="{x}" y="{y}" font-size="{size}"{align} fill="currentColor">{text}</text>'


def mask_chart_svg(counts: list[int], total_steps: int, width: int = 420, height: int = 130) -> str:
    """Masks remaining after each step (a polyline over a fixed 0..total_steps axis)."""
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
           _svg_text(left - 6, top + 10, top_count, anchor="end"), _svg_text(left - 6, top + ph, 0, anchor="end"),
           _svg_text(left, height - 8, "step 0"), _svg_text(left + pw, height - 8, n_steps, anchor="end"),
           _svg_text(left + pw / 2, height - 8, "masks left per step", size=12, anchor="middle")]
    if counts:
        svg.append(f'<polyline points="{points}" fill="none" stroke="#0072B2" stroke-width="2.5"/>')
        x, y = xy(len(counts) - 1, counts[-1])
        svg.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#D55E00"/>')
    svg.append("</svg>")
    return '<div class="mdl-chart">' + "".join(svg) + "</div>"


def _written(state: DenoiseState) -> int:
    return sum(role in WRITTEN for role in state.roles)


def status_line(state: DenoiseState) -> str:
    """'Step k of N · m masks left · e model evaluations · c characters/s' (or a Done line).

    Characters per second count the sampler's own time (state.elapsed), not rendering or slow motion.
    """
    compute_s = state.elapsed
    rate = f"{_written(state) / compute_s:,.0f} characters/s" if compute_s > 0 else "… characters/s"
    if state.done:
        return (f"**Done.** {state.generated} characters in {state.step} steps · "
                f"{state.nfe} model evaluations · {compute_s:.2f} s of compute · {rate}")
    masks = state.num_masked
    left = f"{masks} mask{'s' * (masks != 1)} left" if masks or not state.step else "polishing the draft"
    if state.boundaries and state.block is not None and masks:
        left += f" · block {_block_number(state)} of {len(state.boundaries)}"
    return (f"Step {state.step} of {state.total_steps} · {left} · "
            f"{state.nfe} model evaluation{'s' * (state.nfe != 1)} · {rate}")


def _block_number(state: DenoiseState) -> int:
    return sum(1 for b in state.boundaries if b <= state.block[0])


def stopped_line(status: str) -> str | None:
    """The status to show once a run has ended: None if it finished or failed (its line stays).

    A run that ended while its status still reads 'Step k of N ...' was stopped mid-way; the line says
    so, and keeps where it stopped.
    """
    if not status.startswith("Step "):
        return None
    return f"**Stopped** at step {status.removeprefix('Step ')}"


def compare_status(label: str, state: DenoiseState, mflops: float | None = None) -> str:
    """One side of the Compare tab: how far it got, at what cost (wall time, model evaluations, the
    positions the network processed and, given, their matrix-multiply MFLOPs)."""
    done = "**done** · " if state.done else ""
    work = f" · {state.positions_evaluated:,} positions evaluated" if state.positions_evaluated else ""
    flops = f" ({mflops:,.0f} MFLOP)" if mflops is not None else ""
    return (f"**{label}** · {done}{_written(state)} of {state.generated} characters · {state.nfe} model evaluations"
            f"{work}{flops} · {state.elapsed:.2f} s")


def schedule_svg(schedules: dict, selected: str, u: float, width: int = 420, height: int = 250) -> str:
    """a(u) for every schedule (name -> class with .alpha(u); the selected one bold) with a marker at u."""
    left, right, top, bottom = 46, 14, 12, 40
    pw, ph = width - left - right, height - top - bottom

    def xy(uu: float, a: float) -> tuple[float, float]:
        return left + pw * uu, top + ph * (1 - a)

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="noise schedules a(t)">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for k, (name, cls) in enumerate(schedules.items()):
        sched = cls()
        pts = " ".join("{:.1f},{:.1f}".format(*xy(k / 60, float(sched.alpha(k / 60)))) for k in range(61))
        if name == selected:
            style = 'stroke="#0072B2" stroke-width="3"'
        else:
            style = 'stroke="#999" stroke-width="1.5" stroke-dasharray="5 4"'
        svg.append(f'<polyline points="{pts}" fill="none" {style}><title>{html.escape(name)}</title></polyline>')
        label_u = 0.2 + 0.6 * k / max(len(schedules) - 1, 1)  # spread out: the curves can nearly coincide
        lx, ly = xy(label_u, float(sched.alpha(label_u)))
        svg.append(f'<text x="{lx + 4:.1f}" y="{ly - 5:.1f}" font-size="11" fill="currentColor">'
                   f'{html.escape(name)}</text>')
    x, y = xy(u, float(schedules[selected]().alpha(u)))
    svg += [f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#D55E00" stroke-dasharray="3 3"/>',
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="#D55E00"/>',
            _svg_text(left - 6, top + 10, 1, anchor="end"), _svg_text(left - 6, top + ph, 0, anchor="end"),
            _svg_text(left, top + ph + 16, "t = 0", anchor=None), _svg_text(left + pw, top + ph + 16, "T", anchor="end"),
            _svg_text(left + pw / 2, height - 6, "a(t): share of characters still visible", size=12, anchor="middle"),
            "</svg>"]
    return '<div class="mdl-schedule">' + "".join(svg) + "</div>"


def forward_view(sentence: str, masked: list[bool], t: int, T: int, schedules: dict, schedule: str
                 ) -> tuple[str, str, str]:
    """The forward process at time t: (the sentence with its masked characters, a summary, the curves).

    `masked` says which characters of `sentence` the caller's draw has masked.
    """
    u = t / T
    a = float(schedules[schedule]().alpha(u))
    body = "".join(_span("mdl-mask", MASK_GLYPH, "masked") if m else _span("mdl-gen", c, "visible")
                   for c, m in zip(sentence, masked))
    summary = (f"t = {t} of T = {T} (u = {u:.2f}) · a(t) = {a:.2f}: each character survives with "
               f"probability {a:.2f} · {sum(masked)} of {len(masked)} characters masked")
    return f'<div class="mdl-canvas">{body}</div>', summary, schedule_svg(schedules, selected=schedule, u=u)
