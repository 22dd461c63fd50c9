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

from . import history
from .tokenizer import MASK_GLYPH

if TYPE_CHECKING:  # annotations only: importing the sampler would import torch
    from .sampling import Candidates, DenoiseState

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
.mdl-canvas .mdl-c { position: relative; }
.mdl-ghost { color: rgba(112, 112, 112, .75); font-style: italic; background: rgba(128, 128, 128, .12); }
.mdl-cands { display: none; position: absolute; left: 0; top: 100%; z-index: 20; white-space: nowrap;
  font-size: .85rem; line-height: 1.3; font-style: normal; font-weight: 400; color: #1a1a1a;
  background: #fff; border: 1px solid #999; border-radius: 4px; padding: .15rem .4rem; opacity: 1;
  box-shadow: 0 2px 6px rgba(0, 0, 0, .2); pointer-events: none; }
.mdl-c:hover > .mdl-cands, .mdl-c:focus > .mdl-cands { display: block; }
.mdl-heatmap svg { width: 100%; max-width: 640px; height: auto; }
.mdl-caveat { font-size: .95rem; color: #D55E00; margin: .2rem 0; }
.mdl-pred .mdl-hit { background: rgba(0, 158, 115, .32); }
.mdl-pred .mdl-miss { background: rgba(204, 121, 167, .45); }
.mdl-pred .mdl-always { text-decoration: underline dotted; }
.mdl-pred-rows { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: .9rem;
  max-height: 16em; overflow-y: auto; margin: .3rem 0; padding-left: 2.2rem; }
.mdl-pred-sum { font-size: 1.05rem; margin: .2rem 0 .4rem 0; }
.mdl-attention svg { width: 100%; max-width: 200px; height: auto; }
.mdl-attention-caption { font-size: .95rem; margin: .2rem 0; }
"""

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
WRITTEN = ("revealed", "text")  # the roles of generated characters that are on the page


def _char_html(ch: str) -> str:
    return "<br>" if ch == "\n" else html.escape(ch, quote=True)


def _span(classes: str, ch: str, title: str, opacity: float | None = None, popup: str = "") -> str:
    """One character; `popup` (the candidates): shown on hover or tap instead of a plain tooltip."""
    style = f' style="opacity:{opacity:.2f}"' if opacity is not None else ""
    if popup:   # the shading on the character only, so the popup stays opaque
        char = f'<span class="mdl-ch"{style}>{_char_html(ch)}</span>' if style else _char_html(ch)
        return (f'<span class="mdl-c {classes}" tabindex="0">{char}'
                f'<span class="mdl-cands">{html.escape(popup, quote=False)}</span></span>')
    return f'<span class="mdl-c {classes}" title="{html.escape(title, quote=True)}"{style}>{_char_html(ch)}</span>'


def _shown(ch: str) -> str:
    return {"\n": "↵", " ": "␣"}.get(ch, ch)


def _percent(p: float) -> str:
    return "<1%" if p < 0.005 else ">99%" if 0.99 < p < 1 else f"{p:.0%}"


def candidates_text(c: Candidates, remasked: bool = False) -> str:
    """'e 62% · a 21% · o 9% …': what the model weighed when it wrote the character (a re-masked one:
    what it was)."""
    ranked = " · ".join(f"{_shown(ch)} {_percent(p)}" for ch, p in c.top)
    return (f"was {_shown(c.written)} · " if remasked else "") + ranked


def _role_span(role: str, ch: str, conf: float, cands: Candidates | None = None, guess: str = "") -> str:
    """One character of a state, drawn as its role says (conf: nan where never predicted); cands: the
    alternatives when it was written; guess: the model's best guess under a mask (the ghost view)."""
    known = not math.isnan(conf)
    if role == "prompt":
        return _span("mdl-prompt", ch, "prompt")
    if role == "remasked":
        return _span("mdl-remask", MASK_GLYPH,
                     "re-masked this step" + (f" (its token had confidence {conf:.2f})" if known else ""),
                     popup=candidates_text(cands, remasked=True) if cands else "")
    if role == "masked":
        if guess:
            return _span("mdl-mask mdl-ghost", guess, f"masked; the model's best guess now: {_shown(guess)!r}")
        return _span("mdl-mask", MASK_GLYPH, "masked")
    title = f"confidence {conf:.2f}" if known else "confidence n/a"
    popup = candidates_text(cands) if cands else ""
    if role == "revealed":
        return _span("mdl-new", ch, "written this step, " + title, popup=popup)
    return _span("mdl-gen", ch, title, 0.35 + 0.65 * min(max(conf, 0.0), 1.0) if known else None, popup=popup)


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


def render_state(state: DenoiseState, legend: bool = True, cands: dict[int, Candidates] | None = None,
                 ghost: bool = False) -> str:
    """HTML for one denoising state: every character a span with its role, confidence as opacity + tooltip;
    with blocks, where each starts and which one is being written. cands (position -> Candidates, e.g.
    history.candidates_at): hovering a written character lists them. ghost: the model's best guesses
    under the masks, faint."""
    conf, marks, cands = state.confidence, _block_marks(state), cands or {}
    guesses = state.guesses if ghost and state.guesses else ("",) * len(state.text)
    spans = [_role_span(state.role(i), ch, conf[i] if i < len(conf) else float("nan"), cands.get(i), guesses[i])
             for i, ch in enumerate(state.text)]
    body = "".join(span.replace('class="mdl-c ', f'class="mdl-c{mark} ', 1) if mark else span
                   for span, mark in zip(spans, marks))
    legends = (LEGEND + (BLOCK_LEGEND if state.boundaries else "") + (GHOST_LEGEND if ghost else "")) if legend else ""
    return legends + f'<div class="mdl-canvas">{body}</div>'


def render_text(text: str, legend: bool = True) -> str:
    """A plain text shown as prompt-coloured characters (before a run, or for the prompt alone)."""
    body = "".join(_span("mdl-mask", MASK_GLYPH, "masked") if c == MASK_GLYPH else _span("mdl-prompt", c, "prompt")
                   for c in text)
    return (LEGEND if legend else "") + f'<div class="mdl-canvas">{body}</div>'


HEAT_COLOURS = {"reveal": "#E69F00", "remask": "#D55E00", "rewrite": "#CC79A7"}   # Okabe-Ito
HEAT_SPANS = {True: "#D9D9D9", False: "#F4F1E8"}   # masked, written
HEAT_PROMPT = "#DCEBF5"
HEAT_NAMES = {"reveal": "revealed", "remask": "re-masked", "rewrite": "rewritten"}


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
    (purple) it; the prompt light blue; the blocks of a block-by-block run as a strip above the grid
    (and lines, where they fit); `current`: the step shown, a dashed line. Every cell names its character and steps on hover."""
    if not states:
        return '<div class="mdl-heatmap"></div>'
    n_pos, first, last = len(states[0].text), states[0].step, states[-1].step
    left, top = 40, 10
    cw = (width - left - 8) / n_pos
    ch = min(12.0, max(1.0, 260 / max(last - first + 1, 1)))
    bottom_y = top + ch * (last - first + 1)

    def rect(pos, step, steps, fill, title, cols=1):
        return (f'<rect x="{left + pos * cw:.2f}" y="{top + (step - first) * ch:.2f}" width="{cols * cw:.2f}" '
                f'height="{steps * ch:.2f}" fill="{fill}"><title>{html.escape(title, quote=False)}</title></rect>')

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {bottom_y + 34:.0f}" role="img" '
           'aria-label="when each character was decided" font-family="sans-serif">']
    out += [rect(lo, first, last - first + 1, HEAT_PROMPT, "the prompt", cols=hi - lo) for lo, hi in _runs(states[0].fixed)]
    at = {state.step: state for state in states}
    for sp in history.spans(states):
        what = "masked" if sp.masked else f"written: {_shown(at.get(sp.end - 1, states[-1]).text[sp.position])!r}"
        out.append(rect(sp.position, sp.start, sp.end - sp.start, HEAT_SPANS[sp.masked],
                        f"position {sp.position}: {what}, steps {sp.start} to {sp.end - 1}"))
    out += [rect(ev.position, ev.step, 1, HEAT_COLOURS[ev.kind],
                 f"{_shown(ev.char)!r} {HEAT_NAMES[ev.kind]} at step {ev.step} (position {ev.position})")
            for ev in history.events(states)]
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
    out += [_svg_text(left - 4, top + 9, first, anchor="end"), _svg_text(left - 4, bottom_y, last, anchor="end"),
            _svg_text(left, bottom_y + 14, "position 0"), _svg_text(width - 8, bottom_y + 14, n_pos - 1, anchor="end"),
            _svg_text(left + (width - left) / 2, bottom_y + 28, "position → · step ↓ · orange revealed · "
                      "vermillion re-masked · purple rewritten · blue: the prompt", size=11, anchor="middle"), "</svg>"]
    return '<div class="mdl-heatmap">' + "".join(out) + "</div>"


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
    ahead = _looked_ahead(state, " more")
    if state.done:
        return (f"**Done.** {state.generated} characters in {state.step} steps · "
                f"{state.nfe} model evaluations{ahead} · {compute_s:.2f} s of compute · {rate}")
    masks = state.num_masked
    left = f"{masks} mask{'s' * (masks != 1)} left" if masks or not state.step else "polishing the draft"
    if state.boundaries and state.block is not None and masks:
        left += f" · block {_block_number(state)} of {len(state.boundaries)}"
    return (f"Step {state.step} of {state.total_steps} · {left} · "
            f"{state.nfe} model evaluation{'s' * (state.nfe != 1)}{ahead} · {rate}")


def _looked_ahead(state: DenoiseState, more: str = "") -> str:
    """' (k steps from look-aheads)': the steps a block model's look-ahead served without an evaluation."""
    return f" ({state.looked_ahead}{more} steps from look-aheads)" if state.looked_ahead else ""


def rewind_line(state: DenoiseState, last: DenoiseState, running: bool = False) -> str:
    """The status while the rewind slider shows an earlier step than the run's last."""
    where = f"the run is at step {last.step}" if running else f"the run ended at step {last.step}"
    masks = state.num_masked
    return (f"**Rewound to step {state.step}** of {last.step} ({where}) · {masks} mask{'s' * (masks != 1)} "
            f"left · {state.nfe} model evaluation{'s' * (state.nfe != 1)} by then · Branch continues from here")


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
    ahead = _looked_ahead(state)
    return (f"**{label}** · {done}{_written(state)} of {state.generated} characters · {state.nfe} model evaluations"
            f"{ahead}{work}{flops} · {state.elapsed:.2f} s")


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


# ---- teaching views: what the model learns (Forward process tab), the attention pattern ------------


PRED_LEGEND = ('<div class="mdl-legend"><span><span class="mdl-c mdl-hit">e</span> best guess right</span>'
               '<span><span class="mdl-c mdl-miss">x</span> best guess wrong (hover: the true character, '
               'p(true), loss)</span></div>')
LOSS_NAMES = {"masked_ce": "masked cross-entropy", "elbo": "NELBO estimate",
              "next_char": "next-character cross-entropy"}


def _pred_row(p, char_of, block: int | None = None) -> str:
    extra = "" if p.masked or not block else " · always predicted (the last of its block)"
    return (f"position {p.position} · true {char_of(p.true_id)!r} · guess {char_of(p.guess_id)!r} · "
            f"p(true) {_percent(p.p_true)} · loss {p.loss:.2f} nats{extra}")


def _objective_line(ex) -> str:
    n, value = len(ex.predictions), ex.objective
    name = LOSS_NAMES.get(ex.loss, ex.loss)
    when = "" if ex.loss == "next_char" else (f", every block at t = {ex.t} of {ex.T}" if ex.block
                                               else f", at t = {ex.t} of {ex.T}")
    if not n:
        return f"objective: {name}: nothing to predict{when}, so this sentence adds no loss"
    if ex.loss == "elbo":
        w = max((p.weight for p in ex.predictions if p.masked), default=0.0)
        how = (f"T·w_t / L = {ex.step_weight:.3g} / {ex.length} = {w:.3g} on each masked character"
               if ex.step_weight is not None else
               f"-a'(u) / (1 - a(u)) / L = {w:.3g} on each masked character, 1 / L on each always-predicted one")
        return f"objective: {name} = {value:.3f} nats per character (weight {how}){when}"
    always = n - sum(p.masked for p in ex.predictions)
    unit = ("character" if ex.loss == "next_char" else "masked character" if not always else
            f"predicted character: {n - always} masked + {always} always predicted")
    return (f"objective: {name} = {value:.3f} nats ({value / math.log(2):.3f} bits) per {unit} "
            f"(weight 1/{n} each){when}")


def prediction_view(ex, sentence: str, char_of, max_rows: int = 60) -> str:
    """What the training objective scores on one sentence (a diffusion.LossExplanation, read through
    plain attributes): the sentence with the model's best guess at every scored character, a row per
    scored character (at most `max_rows`, the rest summarised) and the objective with its weights.
    char_of(id) -> the character of a token id."""
    preds = {p.position: p for p in ex.predictions}
    spans = []
    for i, ch in enumerate(sentence):
        p = preds.get(i)
        if p is None:
            spans.append(_span("mdl-gen", ch, "visible: not scored"))
            continue
        cls = ("mdl-hit" if p.guess_id == p.true_id else "mdl-miss") + (" mdl-always" if ex.block and not p.masked
                                                                         else "")
        spans.append(_span(cls, char_of(p.guess_id), _pred_row(p, char_of, ex.block)))
    rows = [f"<li>{html.escape(_pred_row(p, char_of, ex.block))}</li>" for p in ex.predictions[:max_rows]]
    rest = ex.predictions[max_rows:]
    more = (f"<p>… and {len(rest)} more scored characters (mean loss "
            f"{sum(p.loss for p in rest) / len(rest):.2f} nats)</p>") if rest else ""
    note = ('<p class="mdl-pred-sum">An autoregressive model is trained without masks: it predicts every '
            "character from the ones before it, so t does not apply.</p>") if ex.loss == "next_char" else ""
    return (f'<div class="mdl-pred">{note}<p class="mdl-pred-sum">{html.escape(_objective_line(ex))}</p>'
            f'{PRED_LEGEND}<div class="mdl-canvas">{"".join(spans)}</div>'
            f'<ol class="mdl-pred-rows">{"".join(rows)}</ol>{more}</div>')


def attention_caption(kind: str, block: int | None) -> str:
    if kind == "autoregressive":
        return "causal: each character sees itself and every character before it"
    if kind == "block diffusion":
        return f"block-causal, B = {block}: each character sees its own block and every block before it"
    return "bidirectional: every character sees every other character"


def attention_svg(pattern: list[list[bool]], kind: str, block: int | None = None, cell: int = 14) -> str:
    """The attention pattern (rows: queries, columns: keys; a filled cell where attention is allowed),
    block boundaries dashed, with a one-line caption."""
    n, left, top = len(pattern), 22, 22
    size = n * cell
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {left + size + 6} {top + size + 6}" '
           f'role="img" aria-label="attention pattern: {html.escape(attention_caption(kind, block))}">',
           f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="rgba(128,128,128,.12)" stroke="#999"/>',
           _svg_text(left + size / 2, 12, "key (sees) →", size=10, anchor="middle"),
           f'<text x="12" y="{top + size / 2}" font-size="10" text-anchor="middle" fill="currentColor" '
           f'transform="rotate(-90 12 {top + size / 2})">query ↓</text>']
    for i, row in enumerate(pattern):
        for j, allowed in enumerate(row):
            if allowed:
                svg.append(f'<rect x="{left + j * cell + 1}" y="{top + i * cell + 1}" width="{cell - 2}" '
                           f'height="{cell - 2}" fill="#0072B2"/>')
    if kind == "block diffusion" and block and block < n:
        for k in range(block, n, block):
            x, y = left + k * cell, top + k * cell
            svg.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{top + size}" stroke="#E69F00" stroke-dasharray="3 2"/>'
                       f'<line x1="{left}" y1="{y}" x2="{left + size}" y2="{y}" stroke="#E69F00" '
                       f'stroke-dasharray="3 2"/>')
    svg.append("</svg>")
    caption = html.escape(f"{attention_caption(kind, block)} (first {n} positions).")
    return f'<div class="mdl-attention">{"".join(svg)}<p class="mdl-attention-caption">{caption}</p></div>'
