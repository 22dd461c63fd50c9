"""micro-dLLM in the browser: watch a masked-diffusion language model write, one denoising step a frame.

    python app.py                 # http://127.0.0.1:7860
    MICRODLLM_CHECKPOINT=owner/name python app.py     # a checkpoint from the Hugging Face Hub

Environment
    MICRODLLM_CHECKPOINT   checkpoint: a local directory or a Hub repo id (default: the bundled model)
    MICRODLLM_AR_CHECKPOINT  the autoregressive baseline for the Compare tab (default: the bundled one)
    MICRODLLM_HUB_TIMEOUT  seconds to wait for the Hub before falling back to the bundled model (5)
    MICRODLLM_THREADS      torch threads per process (default: cores / concurrent generations, 1 to 4)
    MICRODLLM_INT8         1 = int8 weights for the Linear layers (CPU; see docs/performance.md)
    MICRODLLM_COMPILE      1 = model evaluations through torch.compile (faster; each model loads seconds slower)
    MICRODLLM_PUBLIC       1 = a public app: visitors load only the bundled models and Hub repo ids
                           (default: 1 when SPACE_ID is set, as on every Hugging Face Space; else 0)
    MICRODLLM_MAX_PARAMETERS / _LAYERS / _WIDTH / _CONTEXT / _FILE_MB   the largest checkpoint the app
                           loads (50000000 / 12 / 1024 / 1024 / 250), checked before anything is allocated
    MICRODLLM_QUEUE_SIZE   runs that may wait in the queue (32); beyond, a visitor is told the app is busy
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT   where to serve (127.0.0.1:7860)

Layout of this file: the event handlers (plain functions and generators), then one builder per tab
that lays out its components and wires their events, then `build_demo()` that puts the tabs together.
The sampler is `microdllm.sampling.denoise`; models are loaded and served by `microdllm.serving`,
pictures drawn by `microdllm.render`, and what a visitor typed is checked by `microdllm.inputs`.
"""
from __future__ import annotations

import html
import inspect
import logging
import math
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import torch

from microdllm import card, history, render
from microdllm.checkpoint import BUNDLED_AR_DIR, BUNDLED_MODELS, read_config
from microdllm.config import ModelConfig
from microdllm.diffusion import SCHEDULES, corrupt, explain_loss, trained_loss, training_recipe
from microdllm.inputs import prepare_prompt, sampler_config
from microdllm.model import attention_pattern
from microdllm.sampling import (
    DEFAULT,
    MAX_POLISH,
    MAX_STEPS,
    REMASKING_CHOICES,
    SamplingError,
    defaults_for,
    denoise,
    left_to_right,
)
from microdllm.serving import ModelStore, default_threads, load_limits, one_line, public_mode, race
from microdllm.speed import matmul_params

log = logging.getLogger("microdllm.app")

CONCURRENCY = 2          # generations at once: a free Space has 2 vCPUs
HUB_TIMEOUT = float(os.environ.get("MICRODLLM_HUB_TIMEOUT", "5"))
INT8 = os.environ.get("MICRODLLM_INT8", "").lower() in ("1", "true", "yes")
COMPILE = os.environ.get("MICRODLLM_COMPILE", "").lower() in ("1", "true", "yes")
PUBLIC = public_mode()   # MICRODLLM_PUBLIC, default on when SPACE_ID is set (a Hugging Face Space)
LIMITS = load_limits()   # MICRODLLM_MAX_PARAMETERS / _LAYERS / _WIDTH / _CONTEXT / _FILE_MB
QUEUE_SIZE = int(os.environ.get("MICRODLLM_QUEUE_SIZE") or 32)   # runs waiting beyond the two running
MAX_TRACE = MAX_STEPS + MAX_POLISH + 2
EXPORT_FRAMES = 80       # at most this many frames in an exported GIF / MP4
RUN_TTL_S = 1800         # a session's last run (for rewind, branch, export) is kept this long after it changed
DOCS = Path(__file__).resolve().parent / "docs"
FIGURES = [  # (file, label, caption) shown in the Model panel when present
    (DOCS / "quality_vs_time.png", "Story quality against time",
     "**Left to right, block by block, all at once: which writes better, and how fast?** Each point is a model "
     "at its default settings on this machine, in one run: how likely its stories are under the autoregressive "
     "model (lower is better; dashed: real stories scored the same way) against the wall time per 200-character "
     "story. See docs/experiments.md, section 5."),
    (DOCS / "block_sizes.png", "Block size",
     "**Block diffusion started from the autoregressive model, at several block sizes B.** Validation bits per "
     "character (NELBO, an upper bound) against characters seen: small blocks keep most of what the "
     "left-to-right model knew; the run from random weights shows what the start is worth. "
     "See docs/experiments.md, section 5."),
    (DOCS / "diffusion_vs_ar.png", "Diffusion vs autoregressive",
     "**Diffusion vs autoregressive, same network, data and budget.** Validation bits per character against "
     "characters seen: the diffusion model's NELBO (an upper bound) and the autoregressive baseline's exact "
     "figure. The third curve is a diffusion model started from the autoregressive model's weights, drawn "
     "after the autoregressive run's characters. See docs/experiments.md."),
    (DOCS / "muon_vs_adamw.png", "Muon vs AdamW",
     "**Muon vs AdamW, same network and data** (the diffusion model's validation NELBO in bits per character). "
     "Dashed: 600 steps of 32 x 256 characters each. Solid: 2000 steps, the budget of the figure above; "
     "AdamW there saw twice Muon's characters (batch 64) and still ends 0.13 bits/char behind. "
     "See docs/experiments.md."),
    (DOCS / "samplers.png", "Quality against model evaluations",
     "**Fewer steps, same story quality?** Each line is one sampler at several step counts (the labels): "
     "the share of real words and how likely the text is under the autoregressive model, against the model "
     "evaluations spent on 200 characters. `spread` reveals the characters of one step far apart, so they "
     "rarely have to agree within a word. See docs/experiments.md."),
    (DOCS / "polish.png", "Polish passes",
     "**Polish passes: the model re-reads its draft.** After the last mask is gone, each pass re-masks every "
     "K-th written character and lets the model fix it with the rest of the text in view. For the same model "
     "evaluations, a few polish passes (orange, green) write more real words and likelier text than more "
     "denoising steps (light blue). The default is 12 steps + 6 passes. See docs/experiments.md."),
]
AR_SOURCE = os.environ.get("MICRODLLM_AR_CHECKPOINT", str(BUNDLED_AR_DIR))

EXAMPLES = [
    ["Once upon a time, there was a little girl named Lily.", "continue"],
    ["One day, Tom and his dog went to the park.", "continue"],
    ["The sun was shining and the birds were singing. Sam wanted to", "continue"],
    ["Once upon a time, there was a ___ named ___. She liked to ___ in the park.", "infill"],
    ["Lily had a big red ____. Every day she ________ with it. One day, ______________.", "infill"],
]
FORWARD_SENTENCE = "Once upon a time, there was a little dog named Max. He loved to play in the sun."
REMASKING_INFO = ("which masked characters to reveal each step: the most confident (low_confidence, margin, "
                  "entropy), random, random but far apart (spread), or MDLM's ancestral sampler (none)")
INTRO = """# micro-dLLM: watch a diffusion language model write
It does not write one character after another. It starts from a row of masks `_ _ _` and, step by step,
fills in the characters it chooses to commit, until the story is complete: the default model does it
block by block ([BD3-LM](https://arxiv.org/abs/2503.09573), converted from a left-to-right model), the
full-sequence model everywhere at once ([MDLM](https://arxiv.org/abs/2406.07524) /
[LLaDA](https://arxiv.org/abs/2502.09992)). Small character-level models trained on TinyStories."""



# Loaded once, shared by all sessions; each session remembers which model it uses (a key).
STORE = ModelStore(timeout=HUB_TIMEOUT, int8=INT8, compile=COMPILE, public=PUBLIC, limits=LIMITS)


# ---------------------------------------------------------------------------------------------
# Event handlers

def warn(message: str) -> None:
    log.warning(message)
    gr.Warning(html.escape(message, quote=False))


def info(message: str) -> None:
    log.info(message)
    gr.Info(html.escape(message, quote=False))


def _tell(messages: list[tuple[str, str]]) -> None:
    for level, message in messages:
        (warn if level == "warning" else info)(message)


def _pause(delay_ms) -> float:
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
        canvas = render.render_state(state, cands=cands, ghost=self.ghost)
        status = render.status_line(state) if index == last else render.rewind_line(state, self.states[-1],
                                                                                     self.running)
        return canvas, render.mask_chart_svg(counts, state.total_steps), status

    def heatmap(self, index: int | None = None) -> str:
        return render.heatmap_svg(self.states, current=None if index is None else self.states[index].step)


def generate(prompt, mode="continue", gen_len=DEFAULT.gen_len, steps=DEFAULT.steps,
             temperature=DEFAULT.temperature, remasking=DEFAULT.remasking, remask_ratio=DEFAULT.remask_ratio,
             top_k=DEFAULT.top_k, top_p=DEFAULT.top_p, block_len=0, threshold=DEFAULT.threshold,
             reveal_schedule=DEFAULT.reveal_schedule, seed=DEFAULT.seed, drop_unknown=True, delay_ms=0,
             model_key="", polish=DEFAULT.polish, ghost=False, run=None, at=None):
    """Stream the sampler: yields (canvas HTML, chart SVG, rewind slider, heatmap, status, final text)
    once per state. at: branch from the state `at` of the session's last run (`run`) instead.

    The final text is empty until the run is done, the heatmap is drawn then. Problems become a
    gr.Warning and a status line, never an exception.
    """
    keep = gr.skip()

    def problem(message: str):
        warn(message)
        return keep, keep, keep, keep, f"⚠️ {message}", keep

    run, it = (run if run is not None else Run()), None
    try:
        key, ck, notice = STORE.load(model_key)
        if notice:
            warn(notice)
        infill = mode == "infill"
        cfg = sampler_config(steps=steps, temperature=temperature, remasking=remasking, remask_ratio=remask_ratio,
                             gen_len=gen_len, top_k=top_k, top_p=top_p, seed=seed, block_len=block_len,
                             threshold=threshold, reveal_schedule=reveal_schedule, polish=polish,
                             defaults=defaults_for(ck.model.config))
        if at is None:
            prep = prepare_prompt(ck.tokenizer, prompt, infill, bool(drop_unknown), ck.model.config.block_size,
                                  cfg.gen_len)
            _tell(prep.messages)
            if prep.error:
                yield problem(prep.error)
                return
            it, kept = denoise(ck.model, ck.tokenizer, prep.text, cfg.replace(gen_len=prep.gen_len),
                               infill=infill, schedule=ck.schedule), []
        else:
            it, kept = _branch(run, ck, cfg, at)
        run.ghost, run.tokenizer = bool(ghost), ck.tokenizer
        yield from _stream(run, it, kept, _pause(delay_ms))
    except SamplingError as e:
        message = str(e)
        yield problem(message[:1].upper() + message[1:])
    except Exception as e:  # noqa: BLE001 - the app must keep serving
        log.exception("generation failed")
        yield problem(f"Generation failed: {one_line(e)}")
    finally:
        if it is not None:
            it.close()


def _branch(run: Run, ck, cfg, at):
    """The sampler continuing from state `at` of the last run with these settings, and the states kept."""
    if not run.states:
        raise SamplingError("nothing to branch from yet: generate a story first, then rewind to a step")
    if run.tokenizer is not None and run.tokenizer != ck.tokenizer:
        raise SamplingError("this model reads another alphabet than the one that wrote the draft: "
                            "branch with the model that wrote it")
    index = run.index(at)
    start = run.states[index]
    states = denoise(ck.model, ck.tokenizer, "", cfg, start=start, schedule=ck.schedule)
    next(states)              # the branch's first state is `start` itself: the run keeps its own
    info(f"Branching at step {start.step}: the text written so far is kept, the masks are written anew.")
    return states, run.states[:index + 1]


def _stream(run: Run, states, kept: list, delay: float):
    """Record each state in the session's run and yield its frame (only the slider while rewound). A
    newer run of the same session (another Generate or Branch) takes the run over: this one stops."""
    me = run.owner = object()
    run.states, run.pinned, run.running = list(kept), None, True
    try:
        yield from _frames(run, states, delay, me)
    finally:
        if run.owner is me:
            run.running = False


def _frames(run: Run, states, delay: float, me):
    keep = gr.skip()
    for state in states:
        if run.owner is not me:
            return
        if len(run.states) < MAX_TRACE:
            run.states.append(state)
        last = len(run.states) - 1
        slider = gr.update(maximum=max(last, 1), value=last) if run.pinned is None else gr.update(maximum=max(last, 1))
        if state.done:
            run.running = False
            canvas, chart, status = run.view(run.pinned)
            yield canvas, chart, slider, run.heatmap(run.pinned), status, state.text
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
    last, pause = len(run.states) - 1, 1 / min(max(float(speed or 8), 0.5), 60)
    start = run.index(at) if run.index(at) < last else 0
    for i in range(start, last + 1):
        run.pinned = i
        canvas, chart, status = run.view(i)
        yield canvas, chart, gr.update(value=i), run.heatmap(i) if i == last else gr.skip(), status
        if i < last:
            time.sleep(pause)


def after_run(status_text):
    """After every run, also a stopped one: a run that ended mid-way says it was stopped, and where."""
    line = render.stopped_line(status_text or "")
    return line if line is not None else gr.skip()


def _export_dir() -> Path:
    """Where exports go; files older than an hour are removed, so a long-running server does not fill up."""
    out = Path(tempfile.gettempdir()) / "microdllm-exports"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        try:
            if time.time() - old.stat().st_mtime > 3600:
                old.unlink()
        except OSError:
            pass
    return out


def export_trace(run):
    """Render the last run's states as a GIF, an MP4 and its heatmap (microdllm.viz); returns three file paths."""
    trace = run.states if isinstance(run, Run) else list(run or [])
    keep = (gr.skip(),) * 3
    if not trace:
        warn("Nothing to export yet: generate a story first.")
        return keep
    try:
        from microdllm import viz  # lazy: the app runs even if the exporter is unavailable
    except Exception as e:  # noqa: BLE001
        log.exception("microdllm.viz cannot be imported")
        warn(f"Export is unavailable: {one_line(e)}")
        return keep
    out = _export_dir()
    stem = f"diffusion-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{threading.get_ident() % 10000}"
    every = max(1, math.ceil(len(trace) / EXPORT_FRAMES))
    writers = ((partial(viz.write_gif, every=every), ".gif"), (partial(viz.write_mp4, every=every), ".mp4"),
               (viz.write_heatmap, "-heatmap.png"))
    paths = []
    for writer, suffix in writers:
        try:
            paths.append(str(writer(trace, out / (stem + suffix))))
        except Exception as e:  # noqa: BLE001 - e.g. no ffmpeg for MP4: still give the GIF
            log.exception("export to %s failed", suffix)
            warn(f"Could not write the {suffix.split('.')[-1].upper()}: {one_line(e)}")
            paths.append(None)
    return tuple(gr.update(value=path, visible=path is not None) for path in paths)


class ForwardDraw(NamedTuple):
    """One draw of the forward process on the Forward tab's sentence."""
    schedule: str           # a known schedule name
    t: int
    T: int
    sentence: str           # as the model reads it (unknown characters dropped)
    ids: list[int]
    masked: list[bool]      # the mask `corrupt` puts on it at t


def _forward_draw(tokenizer, sentence: str, t: int, T: int, schedule: str, seed: int) -> ForwardDraw:
    """Corrupt `sentence` to time t with the chosen schedule. The same seed draws the same uniform number
    per character at every t, so raising t only ever adds masks: what the slider shows is one sample
    path of the forward process."""
    schedule = schedule if schedule in SCHEDULES else next(iter(SCHEDULES))
    t = min(max(int(t), 0), T)
    sentence = tokenizer.clean(sentence or "")
    ids = tokenizer.encode(sentence)
    masked = []
    if ids:
        g = torch.Generator().manual_seed(abs(int(seed)) % (2 ** 63))
        _, mask = corrupt(torch.tensor([ids]), torch.tensor([t]), T, SCHEDULES[schedule](), tokenizer.mask_id, g)
        masked = mask[0].tolist()
    return ForwardDraw(schedule, t, T, sentence, ids, masked)


def forward_views(ck, sentence: str, t: int, schedule: str, seed: int) -> tuple:
    """The Forward tab for one draw: (text HTML, summary, curve SVG, what the model learns HTML)."""
    d = _forward_draw(ck.tokenizer, sentence, t, ck.model.config.timesteps, schedule, seed)
    return (*render.forward_view(d.sentence, d.masked, d.t, d.T, SCHEDULES, d.schedule), forward_predictions(ck, d))


def forward_predictions(ck, d: ForwardDraw):
    """What the model learns from the draw (HTML): its guess at every character the training objective
    scores and that objective's value (microdllm.diffusion.explain_loss)."""
    if not d.ids:
        return '<div class="mdl-pred"><p>Type a sentence to see what the model predicts.</p></div>'
    try:
        ex = explain_loss(ck.model, torch.tensor(d.ids), torch.tensor(d.masked), d.t, d.T, SCHEDULES[d.schedule](),
                          ck.tokenizer.mask_id, trained_loss(ck.config))
    except Exception as e:  # noqa: BLE001
        log.exception("forward predictions failed")
        warn(f"Could not run the model on the sentence: {one_line(e)}")
        return gr.skip()
    caveats = _forward_caveats(ck, d.schedule, d.t / d.T)
    return ("".join(f'<p class="mdl-caveat">{html.escape(c)}</p>' for c in caveats)
            + render.prediction_view(ex, d.sentence, lambda i: ck.tokenizer.decode([i])))


def _forward_caveats(ck, schedule: str, u: float) -> list[str]:
    """Where the Forward tab shows the model something its training never did (a note each)."""
    notes = []
    if ck.model.config.causal:
        return notes
    if schedule != ck.schedule.name:
        notes.append(f"The model was trained with the {ck.schedule.name} schedule: with {schedule}, the masks "
                     "and the weight are not the ones its training used.")
    lo, hi = training_recipe(ck.config).get("mask_range") or (0.0, 1.0)
    if ck.model.config.attn_block and not lo <= u <= hi:
        notes.append(f"This block model was trained with each block's time drawn from [{lo}, {hi}]; "
                     f"u = {u:.2f} is outside it.")
    return notes


def forward_process(sentence, t, schedule, seed=0, model_key=""):
    """The forward (noising) process: the sentence at time t, a summary line, the schedule curve, and
    what the model predicts for it with the loss training would count (HTML)."""
    try:
        _, ck, _ = STORE.load(model_key)
        sentence, limit = sentence or "", ck.model.config.block_size
        if len(sentence) > limit:   # the model reads at most its context: show what training would see
            info(f"The sentence is {len(sentence):,} characters; showing its first {limit} (the model's context).")
            sentence = sentence[:limit]
        unknown = ck.tokenizer.unknown_chars(sentence)
        if unknown:
            info(f"Dropped characters the model does not know: {', '.join(repr(c) for c in unknown[:20])}")
        return forward_views(ck, sentence, int(t or 0), schedule, int(seed or 0))
    except Exception as e:  # noqa: BLE001
        log.exception("forward process failed")
        warn(f"Could not corrupt the sentence: {one_line(e)}")
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()


def compare(prompt, gen_len=DEFAULT.gen_len, temperature=DEFAULT.temperature, seed=DEFAULT.seed,
            delay_ms=0, model_key=""):
    """Compare tab: the diffusion model and the autoregressive baseline write the same prompt, raced
    as if both ran at once; yields (diffusion HTML, its status, autoregressive HTML, its status)."""
    keep = gr.skip()
    try:
        _, ck, _ = STORE.load(model_key)
        _, ar, notice = STORE.load(AR_SOURCE, trusted=True)   # the operator's choice, not a visitor's
        if notice or not ar.model.config.causal:
            warn(f"No autoregressive baseline at {AR_SOURCE}: set MICRODLLM_AR_CHECKPOINT to a causal checkpoint.")
            return
        cfg = sampler_config(gen_len=gen_len, temperature=temperature, seed=seed, defaults=defaults_for(ck.model.config))
        room = min(ck.model.config.block_size, ar.model.config.block_size)
        prep = prepare_prompt(ck.tokenizer, ar.tokenizer.clean(prompt or ""), False, True, room, cfg.gen_len)
        _tell(prep.messages)
        if prep.error:
            warn(prep.error)
            return
        cfg, delay = cfg.replace(gen_len=prep.gen_len), _pause(delay_ms)
        streams = (denoise(ck.model, ck.tokenizer, prep.text, cfg, schedule=ck.schedule),
                   left_to_right(ar.model, ar.tokenizer, prep.text, cfg))
        label = {"block diffusion": "Block diffusion: block by block", "autoregressive": "Left to right (the model)"}
        left = label.get(ck.model.config.kind, "Diffusion: all at once")
        for a, b in race(*streams):
            yield (render.render_state(a, legend=False), render.compare_status(left, a, mflops(ck.model, a)),
                   render.render_state(b, legend=False),
                   render.compare_status("Autoregressive: left to right", b, mflops(ar.model, b)))
            if delay:
                time.sleep(delay)
    except SamplingError as e:
        warn(str(e))
    except Exception as e:  # noqa: BLE001 - the app must keep serving
        log.exception("compare failed")
        warn(f"Compare failed: {one_line(e)}")
        yield keep, keep, keep, keep


def mflops(model, state) -> float:
    """Matrix-multiply work of a run so far: 2 x (weights in matmuls) per position the network processed
    (attention scores left out: small at this context)."""
    return 2 * matmul_params(model) * state.positions_evaluated / 1e6


def _notice_md(notice: str | None):
    return gr.Markdown(f"⚠️ **{html.escape(notice, quote=False)}**" if notice else "", visible=bool(notice))


def model_choices() -> list[tuple[str, str]]:
    """The bundled models, each labelled with what it is (the default first)."""
    choices = []
    for i, path in enumerate(BUNDLED_MODELS):
        if (path / "config.json").is_file():
            label = card.kind_label(ModelConfig.from_dict(read_config(path)["model"]))
            choices.append((label[:1].upper() + label[1:] + (" · the default" if i == 0 else ""), str(path)))
    return choices


def model_note(model_config) -> str:
    """One line under the model selector: how this model writes, and what it cannot do."""
    kind = model_config.kind
    if kind == "block diffusion":
        return (f"Writes blocks of {model_config.attn_block} characters left to right; inside a block, diffusion "
                "fills the masks in parallel. Steps are per block. It cannot fill in blanks (choose the full-"
                "sequence model for that).")
    if kind == "autoregressive":
        return "Writes left to right, one character per step: the strategy, steps and blocks do not apply."
    return "Writes everywhere at once and can fill in blanks."


def control_updates(ck, gen_len=None) -> tuple:
    """The Generate tab's knobs set to this model's defaults (CONTROLS_FOR_MODEL order)."""
    cfg, d = ck.model.config, defaults_for(ck.model.config)
    room = cfg.block_size - 1
    block = cfg.attn_block or 0
    block_info = (f"the attention block (trained: {block}); 0 = as trained" if block else
                  "0 = off; else write left-to-right blocks of this size")
    return (gr.update(maximum=room, value=min(int(gen_len or room), room)), gr.update(maximum=cfg.timesteps),
            gr.update(value=d.steps), gr.update(value=d.remasking), gr.update(value=d.threshold or 1),
            gr.update(value=d.polish), gr.update(value=0, label="Block size" if block else "Block length",
                                                 info=block_info),
            model_note(cfg), attention_html(cfg), gr.update(value=d.temperature), gr.update(value=d.top_p))


CONTROLS_FOR_MODEL = ("gen_len", "fwd_t", "steps", "remasking", "threshold", "polish", "block_len", "model_note",
                      "attention", "temperature", "top_p")


def attention_html(model_config) -> str:
    """The model's attention pattern, drawn from the mask it applies: its first 16 positions (32 for big blocks)."""
    n = min(model_config.block_size, 32 if (model_config.attn_block or 0) > 8 else 16)
    return render.attention_svg(attention_pattern(model_config, n), model_config.kind, model_config.attn_block)


def load_model(source, gen_len=DEFAULT.gen_len):
    """Load another checkpoint for this session (falls back to the bundled one), and set the knobs to its defaults."""
    key, ck, notice = STORE.load(source)
    if notice:
        warn(notice)
    else:
        info(f"Loaded {ck.source}: {card.kind_label(ck.model.config)}, {ck.model.num_params() / 1e6:.2f} M parameters.")
    updates = control_updates(ck, gen_len)
    attention = updates[CONTROLS_FOR_MODEL.index("attention")]     # the Model tab shows it too (last)
    return (key, card.model_summary(ck), _notice_md(notice), *updates, attention)


def model_info(model_key=""):
    """On page load: the model card of this session's model (and the startup fallback notice, if any)."""
    _, ck, notice = STORE.load(model_key)
    notice = notice or (STORE.startup_notice if (model_key or "") == STORE.default_key else None)
    if notice:
        warn(notice)
    return card.model_summary(ck)


# ---------------------------------------------------------------------------------------------
# Layout and wiring: one builder per tab, each wiring its own events

def inputs_for(fn, controls: dict) -> list:
    """`fn`'s inputs, in the order of its parameters, from controls named like them.

    The API's parameter names are fn's; a control without a parameter, or a parameter without a
    control, is a wiring mistake and raises here, when the demo is built.
    """
    names = list(inspect.signature(fn).parameters)
    missing, extra = [n for n in names if n not in controls], [n for n in controls if n not in names]
    if missing or extra:
        raise TypeError(f"{fn.__name__}: parameters without a control: {missing}; controls without a parameter: "
                        f"{extra}")
    return [controls[name] for name in names]


def _sampler_controls(ck, room: int) -> dict:
    """The sampler's main knobs (the Generate tab's left column, below the buttons), at this model's defaults."""
    d, block = defaults_for(ck.model.config), ck.model.config.attn_block
    return dict(
        gen_len=gr.Slider(1, room, value=min(d.gen_len or room, room), step=1, precision=0,
                          label="Characters to generate", info="continuation only"),
        steps=gr.Slider(1, 256, value=d.steps, step=1, precision=0, elem_id="mdl-steps",
                        label="Denoising steps", info="fewer = faster, more characters per step (per block for a "
                                                      "block-diffusion model)"),
        temperature=gr.Slider(0, 2, value=d.temperature, step=0.05, label="Temperature", info="0 = greedy",
                              elem_id="mdl-temperature"),
        remasking=gr.Dropdown(list(REMASKING_CHOICES), value=d.remasking, label="Remasking", info=REMASKING_INFO),
        remask_ratio=gr.Slider(0, 1, value=d.remask_ratio, step=0.05, label="Remasking ratio",
                               info="share of written characters that may be masked again (confidence strategies)"),
        threshold=gr.Slider(0.05, 1, value=d.threshold or 1, step=0.05, elem_id="mdl-threshold",
                            label="Reveal early above confidence",
                            info="also reveal every character the model is at least this sure of: fewer model "
                                 "evaluations (1 = off)"),
        polish=gr.Slider(0, MAX_POLISH, value=d.polish, step=1, precision=0, elem_id="mdl-polish",
                         label="Polish passes",
                         info="when the draft is complete, re-read it in this many passes and fix the characters "
                              "the model is sure are wrong (0 = off)"),
        block_len=gr.Slider(0, room, value=0, step=1, precision=0, elem_id="mdl-block",
                            label="Block size" if block else "Block length",
                            info=f"the attention block (trained: {block}); 0 = as trained" if block else
                            "0 = off; else write left-to-right blocks of this size"),
    )


def _advanced_controls(ck, room: int) -> dict:
    d = defaults_for(ck.model.config)
    with gr.Accordion("Advanced", open=False):
        return dict(
            top_k=gr.Slider(0, ck.tokenizer.vocab_size, value=d.top_k, step=1, precision=0, label="Top-k",
                            info="0 = off"),
            top_p=gr.Slider(0.05, 1, value=d.top_p, step=0.05, label="Top-p", info="1 = off"),
            reveal_schedule=gr.Dropdown(
                [(name, name) for name in SCHEDULES] + [("the model's training schedule", "model")],
                value=d.reveal_schedule or "model", label="Reveal schedule",
                info="how many masks are left after each step; linear = the same number each step"),
            seed=gr.Number(d.seed, precision=0, label="Seed"),
            delay_ms=gr.Slider(0, 1000, value=40, step=10, precision=0, label="Slow motion: pause per step (ms)"),
            drop_unknown=gr.Checkbox(True, label="Drop unknown characters",
                                     info="otherwise a prompt with characters the model does not know is refused"),
        )


def _generate_tab(ck, model_key, run) -> tuple[dict, gr.Dropdown, gr.Markdown, gr.HTML]:
    """The Generate tab and its events; returns its controls (a new model sets them), the model selector,
    the line that says what the model is and the drawing of its attention.

    Each control is keyed by the name of the `generate` parameter it feeds (see inputs_for).
    """
    room, first_prompt = ck.model.config.block_size - 1, EXAMPLES[0][0]
    with gr.Tab("Generate", id="generate"), gr.Row():
        with gr.Column(scale=2, min_width=320):
            choices = model_choices()
            chosen = next((v for _, v in choices if Path(v).resolve() == Path(ck.path).resolve()), None)
            selector = gr.Dropdown(choices, value=chosen, label="Model", elem_id="mdl-model",
                                   info="the bundled models; Model tab: load another")
            note = gr.Markdown(model_note(ck.model.config), elem_id="mdl-model-note")
            attention = gr.HTML(attention_html(ck.model.config), elem_id="mdl-attention")
            mode = gr.Radio([("Continue a prompt", "continue"), ("Fill in the _ blanks", "infill")],
                            value="continue", label="Mode",
                            info="infilling: every _ in the template is one character to fill in")
            prompt = gr.Textbox(first_prompt, label="Prompt or template", lines=3, max_lines=8,
                                info="empty = unconditional generation", elem_id="mdl-prompt")
            with gr.Row():
                generate_btn = gr.Button("Generate", variant="primary", elem_id="mdl-generate")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="mdl-stop")
            controls = dict(prompt=prompt, mode=mode, model_key=model_key, **_sampler_controls(ck, room),
                            **_advanced_controls(ck, room))
            gr.Examples(EXAMPLES, inputs=[prompt, mode], label="Try these")
        with gr.Column(scale=3, min_width=360):
            canvas = gr.HTML(render.render_text(first_prompt), label="Canvas", elem_id="mdl-canvas")
            views = _run_views()
            status = gr.Markdown("Press **Generate**.", label="Status", elem_id="mdl-status")
            chart = gr.HTML(render.mask_chart_svg([], DEFAULT.steps), label="Masks left", elem_id="mdl-chart")
            heatmap = gr.HTML(render.heatmap_svg([]), label="When each character was decided", elem_id="mdl-heatmap")
            final = gr.Textbox(label="Final text", lines=4, interactive=False, buttons=["copy"], elem_id="mdl-final")
            export_btn = gr.Button("Export GIF / MP4 / heatmap of the last run", elem_id="mdl-export")
            with gr.Row():
                files = [gr.File(label=label, interactive=False, visible=False) for label in ("GIF", "MP4", "Heatmap")]
    controls["ghost"], controls["run"] = views["ghost"], run
    screen = dict(canvas=canvas, chart=chart, status=status, heatmap=heatmap, final=final)
    _wire_generate(controls, views, screen, generate_btn, stop_btn, prompt)
    export_btn.click(export_trace, inputs=run, outputs=files, api_name="export", concurrency_id="model")
    return controls, selector, note, attention


def _run_views() -> dict:
    """Under the canvas: the ghost toggle, the rewind slider with play / pause, and branch."""
    with gr.Row(equal_height=True):
        ghost = gr.Checkbox(False, label="Show the model's guesses under the masks", elem_id="mdl-ghost", scale=2)
        branch = gr.Button("Branch from this step", elem_id="mdl-branch", scale=1)
    with gr.Row(equal_height=True):
        scrub = gr.Slider(0, 1, value=0, step=1, precision=0, label="Rewind: step", elem_id="mdl-scrub", scale=4,
                          info="drag to any step of the run (no model call); Branch continues from it")
        play = gr.Button("▶ Play", elem_id="mdl-play", scale=1, min_width=70)
        pause = gr.Button("Pause", elem_id="mdl-pause", scale=1, min_width=70)
        speed = gr.Slider(1, 30, value=8, step=1, precision=0, label="Steps per second", elem_id="mdl-speed", scale=2)
    fresh = gr.State(None)   # Generate's `at`: a new run, not a branch (made here: inside the tab's layout)
    return dict(ghost=ghost, branch=branch, scrub=scrub, play=play, pause=pause, speed=speed, fresh=fresh)


def _wire_generate(controls: dict, views: dict, screen: dict, generate_btn, stop_btn, prompt) -> None:
    """Generate and Branch stream a run; Stop cancels it; the rewind slider, play / pause and the ghost
    toggle re-draw the run's states without the model."""
    c, v, run = screen, views, controls["run"]
    play_event = v["play"].click(replay, inputs=[v["speed"], v["scrub"], run],
                                 outputs=[c["canvas"], c["chart"], v["scrub"], c["heatmap"], c["status"]],
                                 show_progress="hidden", concurrency_limit=None, api_visibility="private")
    v["pause"].click(None, cancels=[play_event])
    outputs = [c["canvas"], c["chart"], v["scrub"], c["heatmap"], c["status"], c["final"]]
    runs = []
    for triggers, at, api in (([generate_btn.click, prompt.submit], v["fresh"], "generate"),
                              ([v["branch"].click], v["scrub"], "branch")):
        runs.append(gr.on(triggers, generate, inputs=inputs_for(generate, {**controls, "at": at}), outputs=outputs,
                          api_name=api, show_progress="hidden", concurrency_id="model", cancels=[play_event]))
    # Stop cancels the run. The browser may still apply a frame that was in flight after the stop's
    # own "Stopped." arrives, so the status is settled once more after the run has ended for good
    # (a .then runs after the browser has dropped the cancelled stream).
    stop_btn.click(lambda: "Stopped.", outputs=c["status"], cancels=runs, concurrency_limit=None,
                   api_visibility="private")
    for event in runs:
        event.then(after_run, inputs=c["status"], outputs=c["status"], show_progress="hidden",
                   concurrency_limit=None, api_visibility="private")
    v["scrub"].input(rewind, inputs=[v["scrub"], run], outputs=[c["canvas"], c["chart"], c["status"], c["heatmap"]],
                     show_progress="hidden", trigger_mode="always_last", concurrency_limit=None,
                     api_visibility="private")
    v["ghost"].change(show_guesses, inputs=[v["ghost"], v["scrub"], run], outputs=c["canvas"], show_progress="hidden",
                      concurrency_limit=None, api_visibility="private")


def _forward_tab(ck, model_key) -> gr.Slider:
    """The Forward process tab and its events; returns the t slider (a new model resizes it)."""
    T = ck.model.config.timesteps
    fwd_text, fwd_summary, fwd_curve, fwd_first_pred = forward_views(ck, FORWARD_SENTENCE, T // 2, ck.schedule.name, 0)
    with gr.Tab("Forward process", id="forward"):
        gr.Markdown("Training runs this the other way: take a real sentence, mask each character "
                    "with probability 1 - a(t), and teach the model to guess the masked ones. "
                    "Slide t to add noise; the same seed keeps the same random draws.")
        with gr.Row():
            with gr.Column(scale=3):
                sentence = gr.Textbox(FORWARD_SENTENCE, label="Sentence (press Enter)", lines=2)
                t = gr.Slider(0, T, value=T // 2, step=1, precision=0, label="t (0 = clean text, T = all masked)")
                with gr.Row():
                    schedule = gr.Dropdown(list(SCHEDULES), value=ck.schedule.name, label="Noise schedule a(t)")
                    seed = gr.Number(0, precision=0, label="Seed")
                fwd_html = gr.HTML(fwd_text)
                fwd_md = gr.Markdown(fwd_summary, elem_classes=["mdl-summary"])
                gr.Markdown("**What the model learns:** at this t, training asks the model for every masked "
                            "character and counts the loss below (hover a character: its guess, the "
                            "probability it gives the true one, its loss).")
                fwd_pred = gr.HTML(fwd_first_pred, elem_id="mdl-fwd-pred")
            with gr.Column(scale=2):
                fwd_svg = gr.HTML(fwd_curve)

    controls = dict(sentence=sentence, t=t, schedule=schedule, seed=seed, model_key=model_key)
    gr.on([sentence.submit, t.change, schedule.change, seed.change, model_key.change], forward_process,
          inputs=inputs_for(forward_process, controls), outputs=[fwd_html, fwd_md, fwd_svg, fwd_pred],
          api_name="forward_process", show_progress="hidden", trigger_mode="always_last", concurrency_limit=None)
    return t


def _compare_tab(ck, model_key) -> None:
    """The Compare tab and its event: the diffusion model and the autoregressive baseline, raced."""
    room, first_prompt = ck.model.config.block_size - 1, EXAMPLES[0][0]
    with gr.Tab("Compare", id="compare"):
        gr.Markdown("The same prompt, written by the model chosen in the Generate tab (block diffusion: "
                    "a block of characters at a time; full-sequence diffusion: all positions at once, a few "
                    "dozen steps) and by the autoregressive baseline (the same network with causal "
                    "attention, one character per model evaluation), raced as if both ran at once.")
        with gr.Row():
            prompt = gr.Textbox(first_prompt, label="Prompt", scale=4, elem_id="mdl-cmp-prompt")
            go_btn = gr.Button("Write both", variant="primary", scale=1, elem_id="mdl-cmp-go")
        with gr.Row():
            controls = dict(
                prompt=prompt, model_key=model_key,
                gen_len=gr.Slider(1, room, value=min(DEFAULT.gen_len or room, room), step=1, precision=0,
                                  label="Characters to generate"),
                temperature=gr.Slider(0, 2, value=DEFAULT.temperature, step=0.05, label="Temperature"),
                seed=gr.Number(DEFAULT.seed, precision=0, label="Seed"),
                delay_ms=gr.Slider(0, 200, value=10, step=5, precision=0, label="Slow motion (ms per step)"))
        with gr.Row():
            with gr.Column():
                diff_status = gr.Markdown("**Diffusion: all at once**", elem_id="mdl-cmp-diff-status")
                diff = gr.HTML(render.render_text(first_prompt, legend=False))
            with gr.Column():
                ar_status = gr.Markdown("**Autoregressive: left to right**", elem_id="mdl-cmp-ar-status")
                ar = gr.HTML(render.render_text(first_prompt, legend=False))

    gr.on([go_btn.click, prompt.submit], compare, inputs=inputs_for(compare, controls),
          outputs=[diff, diff_status, ar, ar_status], api_name="compare", show_progress="hidden",
          concurrency_id="model")


def _model_tab(demo, ck, model_key, notice_box, selector, knobs: list) -> None:
    """The Model tab and its events: what is loaded, loading another checkpoint, the experiments' figures."""
    with gr.Tab("Model", id="model"):
        with gr.Row():
            summary = gr.Markdown(card.model_summary(ck), elem_id="mdl-card")
            attention = gr.HTML(attention_html(ck.model.config), elem_id="mdl-attention-model")
        with gr.Row():
            source = gr.Textbox(label="Load another checkpoint", scale=4, max_length=300,
                                placeholder="Hub repo id (owner/name)" + ("" if STORE.public else " or a local directory")
                                            + "; empty = bundled")
            load_btn = gr.Button("Load", scale=1)
        for path, label, caption in FIGURES:
            if path.is_file():
                gr.Image(str(path), label=label, show_label=True, interactive=False, buttons=["download"])
                gr.Markdown(caption)

    outputs = [model_key, summary, notice_box, *knobs, attention]
    gr.on([load_btn.click, source.submit], load_model, inputs=inputs_for(load_model, dict(source=source, gen_len=knobs[0])),
          outputs=outputs, api_name="load_model", concurrency_id="model")
    selector.input(load_model, inputs=inputs_for(load_model, dict(source=selector, gen_len=knobs[0])), outputs=outputs,
                   concurrency_id="model", api_visibility="private")
    demo.load(model_info, inputs=model_key, outputs=summary, api_name="model_info", concurrency_limit=None)


def build_demo(checkpoint_source: str | None = None) -> gr.Blocks:
    """The app. checkpoint_source: a local directory or Hub repo id (None: $MICRODLLM_CHECKPOINT, else bundled)."""
    if checkpoint_source is None:
        checkpoint_source = os.environ.get("MICRODLLM_CHECKPOINT", "")
    key, ck, notice = STORE.load(checkpoint_source, trusted=True)   # the operator's choice, not a visitor's
    STORE.default_key, STORE.startup_notice = key, notice
    with gr.Blocks(title="micro-dLLM: watch a diffusion LM write", delete_cache=(3600, 3600)) as demo:
        model_key = gr.State(key)   # the session's model, and its last run (rewind, branch, export)
        # a callable: a new Run for each session (Gradio calls it); a run untouched for RUN_TTL_S is dropped
        run = gr.State(lambda: Run(), time_to_live=RUN_TTL_S)
        gr.Markdown(INTRO)
        notice_box = _notice_md(notice)
        with gr.Tabs():
            controls, selector, note, attention = _generate_tab(ck, model_key, run)
            knobs = {**controls, "fwd_t": _forward_tab(ck, model_key), "model_note": note, "attention": attention}
            _compare_tab(ck, model_key)
            _model_tab(demo, ck, model_key, notice_box, selector, [knobs[name] for name in CONTROLS_FOR_MODEL])
    # A full queue refuses new runs at once: the browser shows "This application is currently busy.
    # Please try again.", gradio_client raises QueueError. A stopped run or a closed tab frees its slot
    # after the frame in progress (Gradio closes the generator; generate closes the sampler in `finally`).
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    threads = int(os.environ.get("MICRODLLM_THREADS") or 0) or default_threads(CONCURRENCY)
    torch.set_num_threads(threads)
    demo = build_demo()
    # Gradio reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1, 7860) itself.
    # show_error: a value Gradio itself refuses (a string for a number, NaN for an integer) reaches the
    # visitor as Gradio's one-line reason instead of a blank error; the app's own errors are messages anyway.
    demo.launch(css=render.CSS, theme=gr.themes.Soft(), show_error=True)


if __name__ == "__main__":
    main()
