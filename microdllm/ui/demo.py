"""The app put together: the intro, the notice box and the four tabs, each built (and wired) by its module."""
from __future__ import annotations

import os

import gradio as gr

from . import settings
from .compare_tab import compare_tab
from .controls import CONTROLS_FOR_MODEL
from .forward_tab import forward_tab
from .generate_tab import EXAMPLES, generate_tab, wire_steps_range
from .messages import notice_md
from .model_tab import model_tab
from .session import Run, let_go

INTRO = """# micro-dLLM: watch a diffusion language model write
A diffusion language model need not write one character after another: it starts from masks `_ _ _` and
fills in the characters it chooses to commit, several at a time. The default model works in blocks of 16:
its diffusion half drafts a few characters at once from masks (the grey ghosts; a character n-gram of the
training text ties them together), and its own
left-to-right half checks each draft in the same evaluation, keeping it up to the first disagreement
([TiDAR](https://arxiv.org/abs/2511.08923)-style draft and verify: a left-to-right model's text, in fewer
evaluations). Set Writing to Block diffusion to watch it denoise whole blocks from masks
([BD3-LM](https://arxiv.org/abs/2503.09573): one character a step, or more where it is sure), or choose
the model with blocks of 2, or the full-sequence model that writes everywhere at once and fills in blanks
([MDLM](https://arxiv.org/abs/2406.07524) / [LLaDA](https://arxiv.org/abs/2502.09992)). Small
character-level models trained on TinyStories."""


def _drop(run) -> None:
    if isinstance(run, Run):
        run.forget("Gradio deleted the session")


def build_demo(checkpoint_source: str | None = None) -> gr.Blocks:
    """The app. checkpoint_source: a local directory or Hub repo id (None: $MICRODLLM_CHECKPOINT, else bundled)."""
    if checkpoint_source is None:
        checkpoint_source = os.environ.get("MICRODLLM_CHECKPOINT", "")
    store = settings.STORE
    key, ck, notice = store.load(checkpoint_source, trusted=True)   # the operator's choice, not a visitor's
    store.default_key, store.startup_notice = key, notice
    with gr.Blocks(title="micro-dLLM: watch a diffusion LM write", delete_cache=(3600, 3600)) as demo:
        model_key = gr.State(key)   # the session's model, and its last run (rewind, branch, export)
        # a callable: a new Run for each session (Gradio calls it), let go when unused for RUN_TTL_S or when
        # the visitor leaves (session.py: sweep, let_go), a held run's generator closed with it
        run = gr.State(lambda: Run(), delete_callback=_drop)
        gr.Markdown(INTRO)
        notice_box = notice_md(notice)
        with gr.Tabs():
            controls, selector, note, attention = generate_tab(ck, model_key, run)
            knobs = {**controls, "fwd_t": forward_tab(ck, model_key), "model_note": note, "attention": attention,
                     "cmp_modes": compare_tab(ck, model_key, EXAMPLES[0][0])}
            loads = model_tab(demo, ck, model_key, notice_box, selector, [knobs[name] for name in CONTROLS_FOR_MODEL])
        wire_steps_range(demo, model_key, controls["steps"], loads)
        demo.unload(let_go)
    # A full queue refuses new runs at once: the browser shows "This application is currently busy.
    # Please try again.", gradio_client raises QueueError. A stopped run or a closed tab frees its slot
    # after the frame in progress (Gradio closes the generator; generate closes the sampler in `finally`).
    demo.queue(default_concurrency_limit=settings.CONCURRENCY, max_size=settings.QUEUE_SIZE)
    return demo
