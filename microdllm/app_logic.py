"""Pure functions behind the Gradio app (app.py): no Gradio, no global state, easy to test.

  render_state      one DenoiseState -> HTML, a span per character, coloured by role
  mask_chart_svg    masks remaining per step -> a small inline SVG line chart
  status_line       one line of progress: step, masks left, model evaluations, characters/s
  stopped_line      the status after a run that ended mid-way (Stop)
  prepare_prompt    check / clean a prompt or infilling template; say what is wrong in words
  sampler_config    slider values (possibly None or strings from the API) -> SamplerConfig
  forward_view      the forward (noising) process on a sentence at time t, and the schedule curve
  model_card        what a loaded checkpoint is, as Markdown
  race              advance two state streams as if they ran in parallel (the Compare tab)

Colours are Okabe-Ito (distinguishable with colour-blind vision): prompt blue #0072B2,
written this step (revealed, or rewritten by a polish pass) orange #E69F00, re-masked vermillion #D55E00, still masked grey.
"""
from __future__ import annotations

import dataclasses
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

from .sampling import DEFAULT, DenoiseState, SamplerConfig, SamplingError, switches
from .tokenizer import MASK_GLYPH, CharTokenizer

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


def _char_html(ch: str) -> str:
    return "<br>" if ch == "\n" else html.escape(ch, quote=True)


def _span(classes: str, ch: str, title: str, opacity: float | None = None) -> str:
    style = f' style="opacity:{opacity:.2f}"' if opacity is not None else ""
    return f'<span class="mdl-c {classes}" title="{html.escape(title, quote=True)}"{style}>{_char_html(ch)}</span>'


def render_state(state: DenoiseState, legend: bool = True) -> str:
    """HTML for one denoising state: every character a span with its role, confidence as opacity + tooltip."""
    parts = [LEGEND] if legend else []
    parts.append('<div class="mdl-canvas">')
    for i, ch in enumerate(state.text):
        conf = state.confidence[i] if i < len(state.confidence) else float("nan")
        known = not math.isnan(conf)
        if state.fixed[i]:
            parts.append(_span("mdl-prompt", ch, "prompt"))
        elif state.remasked[i]:
            parts.append(_span("mdl-remask", MASK_GLYPH, "re-masked this step"
                               + (f" (its token had confidence {conf:.2f})" if known else "")))
        elif state.masked[i]:
            parts.append(_span("mdl-mask", MASK_GLYPH, "masked"))
        else:
            title = f"confidence {conf:.2f}" if known else "confidence n/a"
            opacity = 0.35 + 0.65 * min(max(conf, 0.0), 1.0) if known else None
            if state.revealed[i]:
                parts.append(_span("mdl-new", ch, "written this step, " + title))
            else:
                parts.append(_span("mdl-gen", ch, title, opacity))
    parts.append("</div>")
    return "".join(parts)


def render_text(text: str, legend: bool = True) -> str:
    """A plain text shown as prompt-coloured characters (before a run, or for the prompt alone)."""
    body = "".join(_span("mdl-mask", MASK_GLYPH, "masked") if c == MASK_GLYPH else _span("mdl-prompt", c, "prompt")
                   for c in text)
    return (LEGEND if legend else "") + f'<div class="mdl-canvas">{body}</div>'


def mask_chart_svg(counts: list[int], total_steps: int, width: int = 420, height: int = 130) -> str:
    """Masks remaining after each step (a polyline over a fixed 0..total_steps axis)."""
    left, right, top, bottom = 44, 10, 10, 30
    pw, ph = width - left - right, height - top - bottom
    top_count = max(max(counts, default=0), 1)
    n_steps = max(total_steps, len(counts) - 1, 1)

    def xy(step: int, count: int) -> tuple[float, float]:
        return left + pw * step / n_steps, top + ph * (1 - count / top_count)

    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, c) for i, c in enumerate(counts)))
    def label(x, y, text, size=11, anchor="start"):
        return (f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}" '
                f'fill="currentColor">{text}</text>')

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="masks remaining per denoising step">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999" stroke-width="1"/>',
           label(left - 6, top + 10, top_count, anchor="end"), label(left - 6, top + ph, 0, anchor="end"),
           label(left, height - 8, "step 0"), label(left + pw, height - 8, n_steps, anchor="end"),
           label(left + pw / 2, height - 8, "masks left per step", size=12, anchor="middle")]
    if counts:
        svg.append(f'<polyline points="{points}" fill="none" stroke="#0072B2" stroke-width="2.5"/>')
        x, y = xy(len(counts) - 1, counts[-1])
        svg.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#D55E00"/>')
    svg.append("</svg>")
    return '<div class="mdl-chart">' + "".join(svg) + "</div>"


def status_line(state: DenoiseState) -> str:
    """'Step k of N · m masks left · e model evaluations · c characters/s' (or a Done line).

    Characters per second count the sampler's own time (state.elapsed), not rendering or slow motion.
    """
    compute_s = state.elapsed
    written = sum(1 for f, m in zip(state.fixed, state.masked) if not f and not m)
    rate = f"{written / compute_s:,.0f} characters/s" if compute_s > 0 else "… characters/s"
    if state.done:
        return (f"**Done.** {state.generated} characters in {state.step} steps · "
                f"{state.nfe} model evaluations · {compute_s:.2f} s of compute · {rate}")
    masks = state.num_masked
    left = f"{masks} mask{'s' * (masks != 1)} left" if masks or not state.step else "polishing the draft"
    return (f"Step {state.step} of {state.total_steps} · {left} · "
            f"{state.nfe} model evaluation{'s' * (state.nfe != 1)} · {rate}")


def stopped_line(status: str) -> str | None:
    """The status to show once a run has ended: None if it finished or failed (its line stays).

    A run that ended while its status still reads 'Step k of N ...' was stopped mid-way; the line says
    so, and keeps where it stopped.
    """
    if not status.startswith("Step "):
        return None
    return f"**Stopped** at step {status.removeprefix('Step ')}"


# ---------------------------------------------------------------------------------------------
# Input checks

@dataclass
class Prepared:
    text: str                      # the prompt / template to sample from (cleaned if asked)
    gen_len: int | None = None     # continuation: characters to generate (clamped to the context)
    messages: list[tuple[str, str]] = field(default_factory=list)  # ("info" | "warning", text)
    error: str | None = None       # set: do not sample; show this


def _names(chars: list[str]) -> str:
    return ", ".join(repr(c) for c in chars[:20]) + (" …" if len(chars) > 20 else "")


def prepare_prompt(tokenizer: CharTokenizer, text: str | None, infill: bool, drop_unknown: bool,
                   block_size: int, gen_len: int | None) -> Prepared:
    """Check a prompt (continuation) or a template (infilling, `_` = one masked character)."""
    text = "" if text is None else str(text)
    out = Prepared(text, gen_len)
    pieces = text.split(MASK_GLYPH) if infill else [text]
    unknown = tokenizer.unknown_chars("".join(pieces))
    if unknown:
        hint = (f" In continuation mode {MASK_GLYPH} is not a blank: choose infilling to fill in blanks."
                if MASK_GLYPH in unknown else "")
        if not drop_unknown:
            out.error = (f"The model does not know these characters: {_names(unknown)}. Remove them, "
                         f"or tick 'Drop unknown characters'.{hint}")
            return out
        out.text = MASK_GLYPH.join(tokenizer.clean(p) for p in pieces)
        out.messages.append(("info", f"Dropped {len(unknown)} kind(s) of character the model does not know: "
                                     f"{_names(unknown)}.{hint}"))
    if infill:
        n = len(tokenizer.encode_template(out.text))
        if MASK_GLYPH not in out.text:
            out.error = (f"The infilling template has no {MASK_GLYPH} masks: put one {MASK_GLYPH} wherever "
                         f"the model should write a character, e.g. 'there was a ____ named ___.'")
        elif n > block_size:
            out.error = f"The template is {n} characters; the model's context is at most {block_size}."
        return out
    n = len(tokenizer.encode(out.text))
    room = block_size - n
    if room < 1:
        out.error = (f"The prompt is {n} characters; it can be at most {block_size - 1} "
                     f"(the model's context is {block_size} characters and at least one is left to generate).")
        return out
    if not n:
        out.messages.append(("info", "No prompt: unconditional generation."))
    if out.gen_len is None or out.gen_len > room:
        if out.gen_len is not None:
            out.messages.append(("info", f"Generation length reduced to {room}: a {n}-character prompt "
                                         f"leaves {room} of the model's {block_size}-character context."))
        out.gen_len = room
    return out


def _number(name: str, value, default, cast):
    if value is None or value == "":
        return default
    try:
        number = float(value)
        if cast is int:
            if not math.isfinite(number):
                raise ValueError
            return int(round(number))
        return number
    except (TypeError, ValueError):
        raise SamplingError(f"{name} must be a number, got {value!r}") from None


def sampler_config(*, steps=None, temperature=None, remasking=None, remask_ratio=None, gen_len=None,
                   top_k=None, top_p=None, seed=None, block_len=None, threshold=None,
                   reveal_schedule=None, polish=None) -> SamplerConfig:
    """UI / API values -> SamplerConfig (None = the default). Range checks are left to the sampler.

    A threshold of 1 switches early reveals off; reveal_schedule "model" is the model's training schedule.
    """
    d = DEFAULT
    block = _number("block length", block_len, 0, int)
    return d.replace(
        steps=_number("steps", steps, d.steps, int),
        temperature=_number("temperature", temperature, d.temperature, float),
        remasking=str(remasking) if remasking else d.remasking,
        remask_ratio=_number("remasking ratio", remask_ratio, d.remask_ratio, float),
        gen_len=_number("generation length", gen_len, d.gen_len, int),
        top_k=_number("top-k", top_k, d.top_k, int),
        top_p=_number("top-p", top_p, d.top_p, float),
        seed=abs(_number("seed", seed, d.seed, int)) % (2 ** 63),
        block_len=block if block > 0 else None,
        polish=_number("polish passes", polish, d.polish, int),
        **switches(_number("threshold", threshold, d.threshold or 1.0, float),
                   str(reveal_schedule) if reveal_schedule else d.reveal_schedule),
    )


# ---------------------------------------------------------------------------------------------
# The forward process (teaching tab)

def schedule_svg(schedules: dict, selected: str, u: float, width: int = 420, height: int = 250) -> str:
    """a(u) for every schedule (the selected one bold) with a marker at u."""
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
    a = float(schedules[selected]().alpha(u))
    x, y = xy(u, a)
    svg += [f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#D55E00" stroke-dasharray="3 3"/>',
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="#D55E00"/>',
            f'<text x="{left - 6}" y="{top + 10}" font-size="11" text-anchor="end" fill="currentColor">1</text>',
            f'<text x="{left - 6}" y="{top + ph}" font-size="11" text-anchor="end" fill="currentColor">0</text>',
            f'<text x="{left}" y="{top + ph + 16}" font-size="11" fill="currentColor">t = 0</text>',
            f'<text x="{left + pw}" y="{top + ph + 16}" font-size="11" text-anchor="end" fill="currentColor">T</text>',
            f'<text x="{left + pw / 2}" y="{height - 6}" font-size="12" text-anchor="middle" fill="currentColor">'
            f'a(t): share of characters still visible</text>',
            "</svg>"]
    return '<div class="mdl-schedule">' + "".join(svg) + "</div>"


def forward_view(tokenizer: CharTokenizer, sentence: str, t: int, T: int, schedules: dict, schedule: str,
                 seed: int) -> tuple[str, str, str]:
    """Corrupt `sentence` to time t with the chosen schedule. Returns (text HTML, summary, curve SVG).

    The same seed draws the same uniform number per character at every t, so raising t only
    ever adds masks: what the slider shows is one sample path of the forward process.
    """
    import torch

    from .diffusion import corrupt

    schedule = schedule if schedule in schedules else next(iter(schedules))
    t = min(max(int(t), 0), T)
    sentence = tokenizer.clean(sentence or "")
    ids = tokenizer.encode(sentence)
    u = t / T
    sched = schedules[schedule]()
    a = float(sched.alpha(u))
    if ids:
        g = torch.Generator().manual_seed(abs(int(seed)) % (2 ** 63))
        xt, mask = corrupt(torch.tensor([ids]), torch.tensor([t]), T, sched, tokenizer.mask_id, g)
        masked = mask[0].tolist()
    else:
        masked = []
    body = "".join(_span("mdl-mask", MASK_GLYPH, "masked") if m else _span("mdl-gen", c, "visible")
                   for c, m in zip(sentence, masked))
    text_html = f'<div class="mdl-canvas">{body}</div>'
    summary = (f"t = {t} of T = {T} (u = {u:.2f}) · a(t) = {a:.2f}: each character survives with "
               f"probability {a:.2f} · {sum(masked)} of {len(masked)} characters masked")
    return text_html, summary, schedule_svg(schedules, schedule, u)


# ---------------------------------------------------------------------------------------------
# The model card

def _md(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _fmt_int(value) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return _md(value)


def _duration(seconds) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return _md(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def model_card(ck) -> str:
    """Markdown table: which checkpoint, size, architecture, training and validation numbers."""
    cfg = ck.model.config
    meta = ck.metadata if isinstance(ck.metadata, dict) else {}
    n = ck.model.num_params()
    shown_source = "bundled" if ck.source == "bundled" else ck.source
    rows = [("Checkpoint", f"`{_md(shown_source)}`"),
            ("Files", f"`{_md(ck.path)}`"),
            ("Parameters", f"{n / 1e6:.2f} M ({n:,})"),
            ("Architecture", f"{'causal (autoregressive baseline)' if cfg.causal else 'bidirectional'} "
                             f"Transformer: {cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd}-dim, RoPE"
                             f"{', timestep embedding' if cfg.time_embedding else ''}"
                             f"{', shifted (each character read from the position to its left)' if cfg.shift else ''}"),
            ("Context", f"{cfg.block_size} characters"),
            ("Vocabulary", f"{ck.tokenizer.vocab_size - 1} characters + the mask"),
            ("Diffusion", f"{getattr(ck.schedule, 'name', '?')} schedule, T = {cfg.timesteps} steps")]
    try:
        tcfg = meta.get("config") if isinstance(meta.get("config"), dict) else {}
        data = tcfg.get("dataset") or tcfg.get("data")
        if isinstance(data, (list, tuple)):
            data = ", ".join(Path(str(d)).name for d in data)
        if data:
            rows.append(("Training data", _md(data)))
        trained = []
        if meta.get("step") is not None:
            trained.append(f"{_fmt_int(meta['step'])} steps")
        if meta.get("tokens") is not None:
            trained.append(f"{_fmt_int(meta['tokens'])} characters")
        if meta.get("seconds") is not None:
            trained.append(_duration(meta["seconds"]))
        if meta.get("device"):
            trained.append(f"on {_md(meta['device'])}")
        if trained:
            rows.append(("Training", ", ".join(trained)))
        final = ck.config.get("evaluation") if isinstance(ck.config.get("evaluation"), dict) else {}
        val = final or (meta.get("val") if isinstance(meta.get("val"), dict) else {})
        where = f" on {_md(final['data'])}, {_fmt_int(final.get('characters'))} characters" if final.get("data") else ""
        if val.get("nelbo_bpc") is not None:
            rows.append(("Validation", f"≤ {float(val['nelbo_bpc']):.3f} bits per character "
                                       f"(NELBO, an upper bound){where}"))
        elif val.get("bpc") is not None:
            rows.append(("Validation", f"{float(val['bpc']):.3f} bits per character (exact){where}"))
    except (TypeError, ValueError, AttributeError):
        pass  # metadata from an unknown source: show what we could read
    return "| Loaded model | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


# ---------------------------------------------------------------------------------------------
# Compare: two streams side by side

def race(*streams):
    """Advance several state streams as if they ran in parallel at the same speed.

    Each round steps the unfinished stream that has used the least compute so far (state.elapsed),
    then yields the latest state of every stream; ends when all are done.
    """
    iters = [iter(s) for s in streams]
    latest = [next(it) for it in iters]
    yield tuple(latest)
    while not all(s.done for s in latest):
        i = min((k for k, s in enumerate(latest) if not s.done), key=lambda k: latest[k].elapsed)
        state = next(iters[i], None)
        if state is None:  # a stream ended without a done state: treat its last one as final
            state = dataclasses.replace(latest[i], done=True)
        latest[i] = state
        yield tuple(latest)


def compare_status(label: str, state: DenoiseState) -> str:
    written = sum(1 for f, m in zip(state.fixed, state.masked) if not f and not m)
    done = "**done** · " if state.done else ""
    return (f"**{label}** · {done}{written} of {state.generated} characters · {state.nfe} model evaluations · "
            f"{state.elapsed:.2f} s")
