"""The Generate tab: write a story and watch every denoising step; rewind, replay, branch, export.

`generate` streams the sampler (`microdllm.sampling.denoise`) into the session's `Run` (session.py);
the tab's layout and its events are built by `generate_tab` below.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from .. import render
from ..inputs import prepare_prompt, sampler_config
from ..sampling import DEFAULT, SamplingError, defaults_for, denoise
from ..serving import one_line
from . import settings
from .controls import advanced_controls, sampler_controls, steps_update
from .describe import attention_html, model_choices, model_note
from .drive import drive_views, wire_drive
from .export import export_trace
from .messages import info, log, tell, warn
from .session import Run, after_run, pause, remember, replay, rewind, show_guesses, stream
from .wiring import inputs_for

EXAMPLES = [
    ["Once upon a time, there was a little girl named Lily.", "continue"],
    ["One day, Tom and his dog went to the park.", "continue"],
    ["The sun was shining and the birds were singing. Sam wanted to", "continue"],
    ["Once upon a time, there was a ___ named ___. She liked to ___ in the park.", "infill"],
    ["Lily had a big red ____. Every day she ________ with it. One day, ______________.", "infill"],
]


def generate(prompt, mode="continue", gen_len=DEFAULT.gen_len, steps=DEFAULT.steps,
             temperature=DEFAULT.temperature, remasking=DEFAULT.remasking, remask_ratio=DEFAULT.remask_ratio,
             top_k=DEFAULT.top_k, top_p=DEFAULT.top_p, block_len=0, threshold=DEFAULT.threshold,
             reveal_schedule=DEFAULT.reveal_schedule, seed=DEFAULT.seed, drop_unknown=True, delay_ms=0,
             model_key="", polish=DEFAULT.polish, ghost=False, run=None, at=None, writing="",
             request: gr.Request = None):
    """Stream the sampler: yields (canvas HTML, chart SVG, rewind slider, heatmap, status, final text)
    once per state. at: branch from the state `at` of the session's last run (`run`) instead. writing:
    how the network writes (SamplerConfig.mode: "denoise", or for a block model with a causal clean
    half "verify" or "left-to-right"; "": the model's own default, draft and verify for such a model).

    The final text is empty until the run is done, the heatmap is drawn then. Problems become a
    gr.Warning and a status line, never an exception.
    """
    keep = gr.skip()

    def problem(message: str):
        warn(message)
        return keep, keep, keep, keep, f"⚠️ {message}", keep

    run, it = (run if run is not None else Run()), None
    remember(run, request)
    try:
        key, ck, notice = settings.STORE.load(model_key)
        if notice:
            warn(notice)
        infill = mode == "infill"
        cfg = sampler_config(steps=steps, temperature=temperature, remasking=remasking, remask_ratio=remask_ratio,
                             gen_len=gen_len, top_k=top_k, top_p=top_p, seed=seed, block_len=block_len,
                             threshold=threshold, reveal_schedule=reveal_schedule, polish=polish,
                             writing=writing, defaults=defaults_for(ck.model.config))
        if at is None:
            prep = prepare_prompt(ck.tokenizer, prompt, infill, bool(drop_unknown), ck.model.config.block_size,
                                  cfg.gen_len)
            tell(prep.messages)
            if prep.error:
                yield problem(prep.error)
                return
            cfg = cfg.replace(gen_len=prep.gen_len)
            it, kept = denoise(ck.model, ck.tokenizer, prep.text, cfg, infill=infill, schedule=ck.schedule, ngram=ck.ngram), []
        else:
            it, kept = _branch(run, ck, cfg, at)
        run.ghost, run.tokenizer, run.source, run.original = bool(ghost), ck.tokenizer, (key, cfg), None
        yield from stream(run, it, kept, pause(delay_ms))
    except SamplingError as e:
        message = str(e)
        yield problem(message[:1].upper() + message[1:])
    except Exception as e:  # noqa: BLE001 - the app must keep serving
        log.exception("generation failed")
        yield problem(f"Generation failed: {one_line(e)}")
    finally:
        if it is not None and run.live is not it:   # a held run keeps its generator (hand.py)
            it.close()


def warm_up() -> None:
    """One short run through the whole path of a click (the default model, the sampler, every view of a
    frame, guesses on) before the first visitor: it pays torch's and the renderers' first-call costs, which
    the first click after start-up otherwise paid (docs/performance.md, the first state in the browser)."""
    for _ in generate(EXAMPLES[0][0], gen_len=8, ghost=True):
        pass


def _branch(run: Run, ck, cfg, at):
    """The sampler continuing from state `at` of the last run with these settings, and the states kept."""
    if not run.states:
        raise SamplingError("nothing to branch from yet: generate a story first, then rewind to a step")
    if run.tokenizer is not None and run.tokenizer != ck.tokenizer:
        raise SamplingError("this model reads another alphabet than the one that wrote the draft: "
                            "branch with the model that wrote it")
    index = run.index(at)
    start = run.states[index]
    states = denoise(ck.model, ck.tokenizer, "", cfg, start=start, schedule=ck.schedule, ngram=ck.ngram)
    next(states)              # the branch's first state is `start` itself: the run keeps its own
    info(f"Branching at step {start.step}: the text written so far is kept, the masks are written anew.")
    return states, run.states[:index + 1]


def steps_for_model(model_key=""):
    """The steps slider's range and default for the session's model (controls.steps_range)."""
    _, ck, _ = settings.STORE.load(model_key)
    return steps_update(ck.model.config)


def wire_steps_range(demo, model_key, steps, loads: list) -> None:
    """A block model's steps are per block: in the browser the slider goes up to its B, set on page load
    and after every model load (`loads`, chained). gradio_client runs neither, so the API keeps the
    slider's full range (the sampler gives a block no more steps than it has characters anyway)."""
    for trigger in (demo.load, *(event.then for event in loads)):
        trigger(steps_for_model, inputs=model_key, outputs=steps, show_progress="hidden", concurrency_limit=None,
                api_visibility="private")


def generate_tab(ck, model_key, run) -> tuple[dict, gr.Dropdown, gr.Markdown, gr.HTML]:
    """The Generate tab and its events; returns its controls (a new model sets them), the model selector,
    the line that says what the model is and the drawing of its attention.

    Each control is keyed by the name of the `generate` parameter it feeds (see inputs_for).
    """
    room, first_prompt = ck.model.config.block_size - 1, EXAMPLES[0][0]
    with gr.Tab("Generate", id="generate"), gr.Row(elem_id="mdl-gen-row"):
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
            controls = dict(prompt=prompt, mode=mode, model_key=model_key, **sampler_controls(ck, room),
                            **advanced_controls(ck))
            gr.Examples(EXAMPLES, inputs=[prompt, mode], label="Try these")
        with gr.Column(scale=3, min_width=360, elem_id="mdl-screen"):
            canvas = gr.HTML(render.render_text(first_prompt), label="Canvas", elem_id="mdl-canvas")
            views = {**_run_views(), **drive_views()}
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
        pause_btn = gr.Button("Pause", elem_id="mdl-pause", scale=1, min_width=70)
        speed = gr.Slider(1, 30, value=8, step=1, precision=0, label="Steps per second", elem_id="mdl-speed", scale=2)
    fresh = gr.State(None)   # Generate's `at`: a new run, not a branch (made here: inside the tab's layout)
    return dict(ghost=ghost, branch=branch, scrub=scrub, play=play, pause=pause_btn, speed=speed, fresh=fresh)


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
    runs.append(wire_drive(v, c, run, controls["delay_ms"], play_event))
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
