"""The Model tab: what is loaded, loading another checkpoint, and the experiments' figures."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from .. import card
from ..sampling import DEFAULT
from . import settings
from .controls import CONTROLS_FOR_MODEL, control_updates
from .describe import attention_html
from .messages import info, notice_md, warn
from .wiring import inputs_for

DOCS = Path(__file__).resolve().parents[2] / "docs"
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


def load_model(source, gen_len=DEFAULT.gen_len):
    """Load another checkpoint for this session (falls back to the bundled one), and set the knobs to its defaults."""
    key, ck, notice = settings.STORE.load(source)
    if notice:
        warn(notice)
    else:
        info(f"Loaded {ck.source}: {card.kind_label(ck.model.config)}, {ck.model.num_params() / 1e6:.2f} M parameters.")
    updates = control_updates(ck, gen_len)
    attention = updates[CONTROLS_FOR_MODEL.index("attention")]     # the Model tab shows it too (last)
    return (key, card.model_summary(ck), notice_md(notice), *updates, attention)


def model_info(model_key=""):
    """On page load: the model card of this session's model (and the startup fallback notice, if any)."""
    store = settings.STORE
    _, ck, notice = store.load(model_key)
    notice = notice or (store.startup_notice if (model_key or "") == store.default_key else None)
    if notice:
        warn(notice)
    return card.model_summary(ck)


def model_tab(demo, ck, model_key, notice_box, selector, knobs: list) -> list:
    """The Model tab and its events: what is loaded, loading another checkpoint, the experiments' figures.
    knobs: what a new model sets (CONTROLS_FOR_MODEL order). Returns the events that load a model."""
    with gr.Tab("Model", id="model"):
        with gr.Row():
            summary = gr.Markdown(card.model_summary(ck), elem_id="mdl-card")
            attention = gr.HTML(attention_html(ck.model.config), elem_id="mdl-attention-model")
        with gr.Row():
            source = gr.Textbox(label="Load another checkpoint", scale=4, max_length=300,
                                placeholder="Hub repo id (owner/name)"
                                            + ("" if settings.STORE.public else " or a local directory")
                                            + "; empty = bundled")
            load_btn = gr.Button("Load", scale=1)
        for path, label, caption in FIGURES:
            if path.is_file():
                gr.Image(str(path), label=label, show_label=True, interactive=False, buttons=["download"])
                gr.Markdown(caption)

    outputs = [model_key, summary, notice_box, *knobs, attention]
    loads = [gr.on([load_btn.click, source.submit], load_model,
                   inputs=inputs_for(load_model, dict(source=source, gen_len=knobs[0])), outputs=outputs,
                   api_name="load_model", concurrency_id="model"),
             selector.input(load_model, inputs=inputs_for(load_model, dict(source=selector, gen_len=knobs[0])),
                            outputs=outputs, concurrency_id="model", api_visibility="private")]
    demo.load(model_info, inputs=model_key, outputs=summary, api_name="model_info", concurrency_limit=None)
    return loads
