"""The Compare tab: the chosen model and the autoregressive baseline write the same prompt, raced."""
from __future__ import annotations

import time

import gradio as gr

from .. import render
from ..inputs import prepare_prompt, sampler_config
from ..sampling import DEFAULT, SamplingError, defaults_for, denoise, left_to_right
from ..serving import one_line, race
from ..speed import matmul_params
from . import settings
from .messages import log, tell, warn
from .session import pause
from .wiring import inputs_for


def compare(prompt, gen_len=DEFAULT.gen_len, temperature=DEFAULT.temperature, seed=DEFAULT.seed,
            delay_ms=0, model_key=""):
    """Compare tab: the diffusion model and the autoregressive baseline write the same prompt, raced
    as if both ran at once; yields (diffusion HTML, its status, autoregressive HTML, its status)."""
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


def compare_tab(ck, model_key, first_prompt: str) -> None:
    """The Compare tab and its event: the diffusion model and the autoregressive baseline, raced."""
    room = ck.model.config.block_size - 1
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
