"""The Compare tab: the same prompt written in every way the chosen network writes, and by the
autoregressive baseline, raced as if all ran at once (microdllm.serving.race)."""
from __future__ import annotations

import time

import gradio as gr

from .. import render
from ..inputs import prepare_prompt, sampler_config
from ..sampling import DEFAULT, MODES, SamplingError, defaults_for, denoise, left_to_right
from ..serving import one_line, race
from ..speed import matmul_params, race_variants
from . import settings
from .describe import writing_modes
from .messages import log, tell, warn
from .session import pause
from .wiring import inputs_for

BASELINE = "Autoregressive: left to right"
MODE_LABELS = {"verify": "Draft and verify: a block drafted, checked by its left-to-right half",
               "left-to-right": "Left to right: its causal half alone"}
KIND_LABELS = {"block diffusion": "Block diffusion: block by block", "autoregressive": "Left to right (the model)"}
# compare's outputs: (canvas, status) of each racer in this order, then the table and the row of the
# network's other ways of writing (shown only for a network that has them)
SLOTS = ("denoise", "baseline", "verify", "left-to-right")


def label(model_config, mode: str) -> str:
    """A racer's name: how the network writes in `mode`."""
    if mode == "denoise":
        return KIND_LABELS.get(model_config.kind, "Diffusion: all at once")
    return MODE_LABELS[mode]


def racers(model_config, cfg) -> dict:
    """mode -> SamplerConfig: each way the network writes, once (the first of speed.race_variants per mode)."""
    out = {}
    for variant in race_variants(model_config, cfg).values():
        out.setdefault(variant.mode, variant)
    return {mode: out[mode] for mode in MODES if mode in out and mode in writing_modes(model_config)}


def compare(prompt, gen_len=DEFAULT.gen_len, temperature=DEFAULT.temperature, seed=DEFAULT.seed,
            delay_ms=0, model_key=""):
    """Compare tab: the network in each way it writes and the autoregressive baseline write the same
    prompt, raced as if all ran at once; yields (diffusion HTML, its status, autoregressive HTML, its
    status, draft-and-verify HTML, its status, left-to-right HTML, its status, the table, the row of
    those two); a network that writes one way leaves the last two racers empty and their row hidden."""
    keep = gr.skip()
    try:
        _, ck, _ = settings.STORE.load(model_key)
        _, ar, notice = settings.STORE.load(settings.AR_SOURCE, trusted=True)   # the operator's choice, not a visitor's
        if notice or not ar.model.config.causal:
            warn(f"No autoregressive baseline at {settings.AR_SOURCE}: set MICRODLLM_AR_CHECKPOINT to a causal "
                 "checkpoint.")
            return
        cfg = sampler_config(gen_len=gen_len, temperature=temperature, seed=seed, defaults=defaults_for(ck.model.config))
        room = min(ck.model.config.block_size, ar.model.config.block_size)
        prep = prepare_prompt(ck.tokenizer, ar.tokenizer.clean(prompt or ""), False, True, room, cfg.gen_len)
        tell(prep.messages)
        if prep.error:
            warn(prep.error)
            return
        cfg, delay = cfg.replace(gen_len=prep.gen_len), pause(delay_ms)
        modes = racers(ck.model.config, cfg)
        streams = {mode: denoise(ck.model, ck.tokenizer, prep.text, c, schedule=ck.schedule, ngram=ck.ngram)
                   for mode, c in modes.items()}
        streams["baseline"] = left_to_right(ar.model, ar.tokenizer, prep.text, cfg)
        names = {**{mode: label(ck.model.config, mode) for mode in modes}, "baseline": BASELINE}
        models = {**dict.fromkeys(modes, ck.model), "baseline": ar.model}
        for frame in _race(streams):
            yield _frame(frame, names, models, more=len(modes) > 1)
            if delay:
                time.sleep(delay)
    except SamplingError as e:
        warn(str(e))
    except Exception as e:  # noqa: BLE001 - the app must keep serving
        log.exception("compare failed")
        warn(f"Compare failed: {one_line(e)}")
        yield (keep,) * (2 * len(SLOTS) + 2)


def _race(streams: dict):
    """serving.race over named streams: each round, {name: (its state before, its state)} (the state
    before: for the draft that a draft-and-verify step checked)."""
    latest, before = {}, {}
    for states in race(*streams.values()):
        for name, state in zip(streams, states):
            if latest.get(name) is not state:
                before[name], latest[name] = latest.get(name, state), state
        yield {name: (before[name], latest[name]) for name in streams}


def _frame(frame: dict, names: dict, models: dict, more: bool) -> tuple:
    """One frame of compare's outputs (see compare) from {racer: (state before, state)}."""
    out = []
    for slot in SLOTS:
        if slot not in frame:
            out += ["", ""]
            continue
        before, state = frame[slot]
        drafted = before.guesses if before is not state else ()
        out += [render.render_state(state, legend=False, drafted=drafted),
                render.compare_status(names[slot], state, mflops(models[slot], state))]
    rows = [(names[slot], frame[slot][1]) for slot in (*MODES, "baseline") if slot in frame]   # the network first
    return (*out, render.compare_table(rows), gr.update(visible=more))


def mflops(model, state) -> float:
    """Matrix-multiply work of a run so far: 2 x (weights in matmuls) per position the network processed
    (attention scores left out: small at this context)."""
    return 2 * matmul_params(model) * state.positions_evaluated / 1e6


def _racer(name: str, first_prompt: str, elem: str) -> tuple[gr.HTML, gr.Markdown]:
    with gr.Column():
        status = gr.Markdown(f"**{name}**", elem_id=f"mdl-cmp-{elem}-status")
        canvas = gr.HTML(render.render_text(first_prompt, legend=False), elem_id=f"mdl-cmp-{elem}")
    return canvas, status


def compare_tab(ck, model_key, first_prompt: str) -> gr.Row:
    """The Compare tab and its event; returns the row of the network's other ways of writing (a new model
    shows or hides it)."""
    room, cfg = ck.model.config.block_size - 1, ck.model.config
    with gr.Tab("Compare", id="compare"):
        gr.Markdown("The same prompt, written by the model chosen in the Generate tab in every way its network "
                    "writes (block diffusion: a block of characters at a time; full-sequence diffusion: all "
                    "positions at once, a few dozen steps; a block model with a left-to-right half also drafts a "
                    "few characters at a time and checks them with that half, or writes with that half alone) and "
                    "by the autoregressive baseline (the same network with causal attention, one character per model "
                    "evaluation), raced as if all ran at once.")
        with gr.Row():
            prompt = gr.Textbox(first_prompt, label="Prompt", scale=4, elem_id="mdl-cmp-prompt")
            go_btn = gr.Button("Write all", variant="primary", scale=1, elem_id="mdl-cmp-go")
        with gr.Row():
            controls = dict(
                prompt=prompt, model_key=model_key,
                gen_len=gr.Slider(1, room, value=min(DEFAULT.gen_len or room, room), step=1, precision=0,
                                  label="Characters to generate"),
                temperature=gr.Slider(0, 2, value=DEFAULT.temperature, step=0.05, label="Temperature"),
                seed=gr.Number(DEFAULT.seed, precision=0, label="Seed"),
                delay_ms=gr.Slider(0, 200, value=10, step=5, precision=0, label="Slow motion (ms per step)"))
        with gr.Row():
            diff, diff_status = _racer(label(cfg, "denoise"), first_prompt, "diff")
            ar, ar_status = _racer(BASELINE, first_prompt, "ar")
        with gr.Row(visible=len(writing_modes(cfg)) > 1) as more:
            verify, verify_status = _racer(MODE_LABELS["verify"], first_prompt, "verify")
            l2r, l2r_status = _racer(MODE_LABELS["left-to-right"], first_prompt, "l2r")
        table = gr.HTML(render.compare_table([]), elem_id="mdl-cmp-table")

    gr.on([go_btn.click, prompt.submit], compare, inputs=inputs_for(compare, controls),
          outputs=[diff, diff_status, ar, ar_status, verify, verify_status, l2r, l2r_status, table, more],
          api_name="compare", show_progress="hidden", concurrency_id="model")
    return more
