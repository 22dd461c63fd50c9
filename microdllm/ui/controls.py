"""The sampler's knobs on the Generate tab: built at a model's defaults, and set to another model's
when the session loads one (`control_updates`, in CONTROLS_FOR_MODEL order)."""
from __future__ import annotations

import gradio as gr

from ..diffusion import SCHEDULES
from ..sampling import MAX_POLISH, REMASKING_CHOICES, defaults_for
from .describe import WRITING_LABELS, attention_html, model_note, writing_modes

REMASKING_INFO = ("which masked characters to reveal each step: the most confident (low_confidence, margin, "
                  "entropy), random, random but far apart (spread), or MDLM's ancestral sampler (none)")
CONTROLS_FOR_MODEL = ("gen_len", "fwd_t", "steps", "remasking", "threshold", "polish", "block_len", "model_note",
                      "attention", "temperature", "top_p", "writing", "cmp_modes")
MAX_STEPS_SLIDER = 256   # the steps slider's range (a block model's: its block size B, see steps_range)
WRITING_INFO = ("how the network writes: denoising each block from masks; drafting a few characters at once and "
                "checking them with its own left-to-right half (the text that half writes, several characters an "
                "evaluation when the draft is right); or with that half alone, one character an evaluation")


def steps_range(model_config) -> tuple[int, int, str]:
    """(maximum, default, info) of the steps slider for this model: a block model's steps are per block,
    so at most its block size B (one character a step). The slider is built with MAX_STEPS_SLIDER and
    narrowed in the browser (generate_tab.wire_steps_range); the API keeps the wide range (the sampler
    never gives a block more steps than it has characters)."""
    default = defaults_for(model_config).steps
    if model_config.kind != "block diffusion":
        return MAX_STEPS_SLIDER, default, "fewer = faster, more characters per step"
    block = model_config.attn_block
    info = (f"per block of {block} characters, so at most {block} (one character a step); fewer = faster, more "
            "characters per step" + ("; Writing by block diffusion only" if len(writing_modes(model_config)) > 1 else ""))
    return block, min(default, block), info


def writing_default(model_config) -> str:
    """How this model writes by default (its defaults' mode: draft and verify for a clean-causal block
    model); "denoise" for any model that has no other way."""
    mode = defaults_for(model_config).mode
    return mode if mode in writing_modes(model_config) else "denoise"


def _writing_update(model_config):
    """The Writing control for this model, at its default: shown only when it has a choice, else hidden
    (and set to denoise)."""
    return gr.update(value=writing_default(model_config), visible=len(writing_modes(model_config)) > 1)


def _block_info(model_config) -> str:
    block = model_config.attn_block
    if not block:
        return "0 = off; else write left-to-right blocks of this size"
    drafts = "; draft and verify: the characters a draft covers" if len(writing_modes(model_config)) > 1 else ""
    return f"the attention block (trained: {block}); 0 = as trained{drafts}"


def sampler_controls(ck, room: int) -> dict:
    """The sampler's main knobs (the Generate tab's left column, below the buttons), at this model's defaults."""
    d, block = defaults_for(ck.model.config), ck.model.config.attn_block
    _, steps, steps_info = steps_range(ck.model.config)     # the range: narrowed in the browser (wire_steps_range)
    return dict(
        writing=gr.Radio([(label, mode) for mode, label in WRITING_LABELS.items()], value=writing_default(ck.model.config),
                         label="Writing", elem_id="mdl-writing", info=WRITING_INFO,
                         visible=len(writing_modes(ck.model.config)) > 1),
        gen_len=gr.Slider(1, room, value=min(d.gen_len or room, room), step=1, precision=0,
                          label="Characters to generate", info="continuation only"),
        steps=gr.Slider(1, MAX_STEPS_SLIDER, value=steps, step=1, precision=0, elem_id="mdl-steps",
                        label="Denoising steps", info=steps_info),
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
                            label="Block size" if block else "Block length", info=_block_info(ck.model.config)),
    )


def advanced_controls(ck) -> dict:
    """The Advanced accordion: sampling filters, the reveal schedule, seed, slow motion, unknown characters."""
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
            delay_ms=gr.Slider(0, 1000, value=40, step=10, precision=0, label="Slow motion: pause per step (ms)",
                               elem_id="mdl-delay"),
            drop_unknown=gr.Checkbox(True, label="Drop unknown characters",
                                     info="otherwise a prompt with characters the model does not know is refused"),
        )


def steps_update(model_config, narrow: bool = True):
    """The steps slider for this model: its default and info, and (narrow) its range (steps_range).
    Not narrowed: as the API sees it, the full range (with a default already within the narrow one, so
    a page never sends a value its narrowed slider refuses)."""
    maximum, value, info = steps_range(model_config)
    return gr.update(maximum=maximum, value=value, info=info) if narrow else gr.update(value=value, info=info)


def control_updates(ck, gen_len=None) -> tuple:
    """The knobs a model sets, at its defaults (CONTROLS_FOR_MODEL order): the Generate tab's, the Forward
    tab's t, and whether the Compare tab races its other ways of writing."""
    cfg, d = ck.model.config, defaults_for(ck.model.config)
    room = cfg.block_size - 1
    block = cfg.attn_block or 0
    return (gr.update(maximum=room, value=min(int(gen_len or room), room)), gr.update(maximum=cfg.timesteps),
            steps_update(cfg, narrow=False), gr.update(value=d.remasking), gr.update(value=d.threshold or 1),
            gr.update(value=d.polish), gr.update(value=0, label="Block size" if block else "Block length",
                                                 info=_block_info(cfg)),
            model_note(cfg), attention_html(cfg), gr.update(value=d.temperature), gr.update(value=d.top_p),
            _writing_update(cfg), gr.update(visible=len(writing_modes(cfg)) > 1))
