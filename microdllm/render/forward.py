"""The Forward process tab's pictures: the noise schedules, a sentence at time t, and what training
asks the model for on it (its guesses and the objective, read from a diffusion.LossExplanation)."""
from __future__ import annotations

import html
import math

from ..tokenizer import MASK_GLYPH
from .pieces import percent, span, svg_text


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
            svg_text(left - 6, top + 10, 1, anchor="end"), svg_text(left - 6, top + ph, 0, anchor="end"),
            svg_text(left, top + ph + 16, "t = 0", anchor=None), svg_text(left + pw, top + ph + 16, "T", anchor="end"),
            svg_text(left + pw / 2, height - 6, "a(t): share of characters still visible", size=12, anchor="middle"),
            "</svg>"]
    return '<div class="mdl-schedule">' + "".join(svg) + "</div>"


def forward_view(sentence: str, masked: list[bool], t: int, T: int, schedules: dict, schedule: str
                 ) -> tuple[str, str, str]:
    """The forward process at time t: (the sentence with its masked characters, a summary, the curves).

    `masked` says which characters of `sentence` the caller's draw has masked.
    """
    u = t / T
    a = float(schedules[schedule]().alpha(u))
    body = "".join(span("mdl-mask", MASK_GLYPH, "masked") if m else span("mdl-gen", c, "visible")
                   for c, m in zip(sentence, masked))
    summary = (f"t = {t} of T = {T} (u = {u:.2f}) · a(t) = {a:.2f}: each character survives with "
               f"probability {a:.2f} · {sum(masked)} of {len(masked)} characters masked")
    return f'<div class="mdl-canvas">{body}</div>', summary, schedule_svg(schedules, selected=schedule, u=u)


PRED_LEGEND = ('<div class="mdl-legend"><span><span class="mdl-c mdl-hit">e</span> best guess right</span>'
               '<span><span class="mdl-c mdl-miss">x</span> best guess wrong (hover: the true character, '
               'p(true), loss)</span></div>')
LOSS_NAMES = {"masked_ce": "masked cross-entropy", "elbo": "NELBO estimate",
              "next_char": "next-character cross-entropy"}


def _pred_row(p, char_of, block: int | None = None) -> str:
    extra = "" if p.masked or not block else " · always predicted (the last of its block)"
    return (f"position {p.position} · true {char_of(p.true_id)!r} · guess {char_of(p.guess_id)!r} · "
            f"p(true) {percent(p.p_true)} · loss {p.loss:.2f} nats{extra}")


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
            spans.append(span("mdl-gen", ch, "visible: not scored"))
            continue
        cls = ("mdl-hit" if p.guess_id == p.true_id else "mdl-miss") + (" mdl-always" if ex.block and not p.masked
                                                                         else "")
        spans.append(span(cls, char_of(p.guess_id), _pred_row(p, char_of, ex.block)))
    rows = [f"<li>{html.escape(_pred_row(p, char_of, ex.block))}</li>" for p in ex.predictions[:max_rows]]
    rest = ex.predictions[max_rows:]
    more = (f"<p>… and {len(rest)} more scored characters (mean loss "
            f"{sum(p.loss for p in rest) / len(rest):.2f} nats)</p>") if rest else ""
    note = ('<p class="mdl-pred-sum">An autoregressive model is trained without masks: it predicts every '
            "character from the ones before it, so t does not apply.</p>") if ex.loss == "next_char" else ""
    return (f'<div class="mdl-pred">{note}<p class="mdl-pred-sum">{html.escape(_objective_line(ex))}</p>'
            f'{PRED_LEGEND}<div class="mdl-canvas">{"".join(spans)}</div>'
            f'<ol class="mdl-pred-rows">{"".join(rows)}</ol>{more}</div>')
