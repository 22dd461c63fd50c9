"""micro-dLLM in the browser: watch a masked-diffusion language model write, one denoising step a frame.

    python app.py                 # http://127.0.0.1:7860
    MICRODLLM_CHECKPOINT=owner/name python app.py     # a checkpoint from the Hugging Face Hub

Environment
    MICRODLLM_CHECKPOINT   checkpoint: a local directory or a Hub repo id (default: the bundled model)
    MICRODLLM_AR_CHECKPOINT  the autoregressive baseline for the Compare tab (default: the bundled one)
    MICRODLLM_HUB_TIMEOUT  seconds to wait for the Hub before falling back to the bundled model (5)
    MICRODLLM_THREADS      torch threads per process (default: cores / concurrent generations, 1 to 4)
    MICRODLLM_INT8         1 = int8 weights for the Linear layers (CPU; calibrated at load, 1.3-2.7 s a model;
                           docs/performance.md)
    MICRODLLM_COMPILE      1 = the full-sequence model's evaluations through torch.compile (faster; loads seconds
                           slower); the block and AR models' KV-cached evaluations run eager whatever it says,
                           and without the oneDNN-packed weights served otherwise: slower for them
    MICRODLLM_PUBLIC       1 = a public app: visitors load only the bundled models and Hub repo ids
                           (default: 1 when SPACE_ID is set, as on every Hugging Face Space; else 0)
    MICRODLLM_MAX_PARAMETERS / _LAYERS / _WIDTH / _CONTEXT / _FILE_MB   the largest checkpoint the app
                           loads (50000000 / 12 / 1024 / 1024 / 250), checked before anything is allocated
    MICRODLLM_QUEUE_SIZE   runs that may wait in the queue (32); beyond, a visitor is told the app is busy
    MICRODLLM_RUN_TTL_S    seconds a session's run (rewind, export, a paused run) is kept unused (1800)
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT   where to serve (127.0.0.1:7860)

The app itself lives in `microdllm/ui/` (one module a tab, see its __init__); this file starts it
and keeps the names scripts and tests import from `app`.
"""
from __future__ import annotations

import logging
import os

import gradio as gr
import torch

from microdllm import render
from microdllm.sampling import defaults_for
from microdllm.serving import default_threads
from microdllm.ui.compare_tab import compare, mflops
from microdllm.ui.controls import CONTROLS_FOR_MODEL, control_updates
from microdllm.ui.demo import INTRO, build_demo
from microdllm.ui.describe import attention_html, model_choices, model_note
from microdllm.ui.drive import BROWSER_JS
from microdllm.ui.export import EXPORT_FRAMES, export_trace
from microdllm.ui.forward_tab import FORWARD_SENTENCE, ForwardDraw, forward_predictions, forward_process, forward_views
from microdllm.ui.generate_tab import EXAMPLES, generate, warm_up
from microdllm.ui.messages import info, log, warn
from microdllm.ui.model_tab import FIGURES, load_model, model_info
from microdllm.ui.session import Run, after_run, replay, rewind, show_guesses, start_sweeping
from microdllm.ui.settings import AR_SOURCE, CONCURRENCY, STORE
from microdllm.ui.wiring import inputs_for

__all__ = ["AR_SOURCE", "CONCURRENCY", "CONTROLS_FOR_MODEL", "EXAMPLES", "EXPORT_FRAMES", "FIGURES", "FORWARD_SENTENCE",
           "INTRO", "STORE", "ForwardDraw", "Run", "after_run", "attention_html", "build_demo", "compare",
           "control_updates", "defaults_for", "export_trace", "forward_predictions", "forward_process",
           "forward_views", "generate", "gr", "info", "inputs_for", "load_model", "log", "main", "mflops",
           "model_choices", "model_info", "model_note", "replay", "rewind", "show_guesses", "warn"]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    threads = int(os.environ.get("MICRODLLM_THREADS") or 0) or default_threads(CONCURRENCY)
    torch.set_num_threads(threads)
    demo = build_demo()
    warm_up()                  # the first visitor's click then costs what every later one does
    start_sweeping()           # let go of runs left paused (RUN_TTL_S)
    # Gradio reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1, 7860) itself.
    # show_error: a value Gradio itself refuses (a string for a number, NaN for an integer) reaches the
    # visitor as Gradio's one-line reason instead of a blank error; the app's own errors are messages anyway.
    # js: the keyboard (space, arrows) and clicks on the canvas that mark masks and pick a position
    demo.launch(css=render.CSS, js=BROWSER_JS, theme=gr.themes.Soft(), show_error=True)


if __name__ == "__main__":
    main()
