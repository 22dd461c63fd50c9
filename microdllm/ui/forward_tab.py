"""The Forward process tab: a real sentence noised to time t, and what training asks the model for on it."""
from __future__ import annotations

import html
from typing import NamedTuple

import gradio as gr
import torch

from .. import render
from ..diffusion import SCHEDULES, corrupt, explain_loss, trained_loss, training_recipe
from ..serving import one_line
from . import settings
from .messages import info, log, warn
from .wiring import inputs_for

FORWARD_SENTENCE = "Once upon a time, there was a little dog named Max. He loved to play in the sun."


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
        _, ck, _ = settings.STORE.load(model_key)
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


def forward_tab(ck, model_key) -> gr.Slider:
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
