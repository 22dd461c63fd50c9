"""The app's handlers, called directly (no server): streaming, bad input, rendering, forward process, export."""
from __future__ import annotations

import dataclasses
import inspect
import math
import sys
import time
import types
from pathlib import Path

import pytest
import torch

import app
from microdllm import render, serving
from microdllm.card import model_summary
from microdllm.checkpoint import BUNDLED_DIFFUSION_DIR
from microdllm.diffusion import SCHEDULES
from microdllm.inputs import sampler_config
from microdllm.sampling import DEFAULT, DenoiseState
from microdllm.ui import export, generate_tab, settings

PROMPT = "Once upon a time"
SMALL = dict(gen_len=40, steps=16, delay_ms=0)  # ~15 states, well under a second
STATUS, FINAL = 4, 5   # generate yields (canvas, chart, rewind slider, heatmap, status, final text)


@pytest.fixture(scope="module", autouse=True)
def one_thread(single_thread):
    """Every test here on one torch thread (conftest.single_thread)."""


def canvas_body(canvas_html: str) -> str:
    """The characters part of the canvas (the legend above it shows a mask too)."""
    return canvas_html.split('<div class="mdl-canvas">', 1)[1]


def run(*args, **kw) -> list[tuple]:
    return list(app.generate(*args, **{**SMALL, **kw}))


def test_generate_streams_states_then_the_final_text(notes):
    session = app.Run()
    outputs = run(PROMPT, run=session)
    *frames, last = outputs
    assert len(frames) >= 3                  # one frame a step (checked below), and this run takes several
    for i, (canvas, chart, scrub, heatmap, status, final) in enumerate(frames):
        assert final == "" and status.startswith("Step ") and "<svg" in chart
        assert scrub["value"] == i and heatmap == app.gr.skip()   # the heatmap is drawn at the end
    assert 'class="mdl-c mdl-mask"' in canvas_body(frames[0][0])  # step 0: all masked
    canvas, chart, scrub, heatmap, status, final = last
    assert status.startswith("**Done.**")
    assert final.startswith(PROMPT) and len(final) == len(PROMPT) + SMALL["gen_len"]
    assert "mdl-mask" not in canvas_body(canvas)
    assert scrub["maximum"] == scrub["value"] == len(outputs) - 1 and "<rect" in heatmap
    trace = session.states
    assert [s.step for s in trace] == list(range(len(outputs))) and trace[-1].done
    assert not notes["warning"]


def test_infilling_keeps_the_template(notes):
    template = "Once upon a time, there was a ___ named ___."
    *_, (canvas, _, _, _, status, final) = run(template, mode="infill", model_key=str(BUNDLED_DIFFUSION_DIR))
    assert status.startswith("**Done.**") and len(final) == len(template)
    assert all(f == t for f, t in zip(final, template) if t != "_")
    assert "mdl-mask" not in canvas_body(canvas)


def test_empty_prompt_is_unconditional(notes):
    *_, (_, _, _, _, status, final) = run("", gen_len=12, steps=4)
    assert status.startswith("**Done.**") and len(final) == 12
    assert any("unconditional" in m for m in notes["info"])


def test_unknown_characters_are_dropped_with_a_message(notes):
    outputs = run("Hi <there> ☃", gen_len=8, steps=4)
    assert outputs[-1][FINAL].startswith("Hi there ")
    assert any("'☃'" in m and "&lt;" in m for m in notes["info"])  # named, and HTML-escaped for the toast


@pytest.mark.parametrize("prompt, kw, expected", [
    ("Hi ☃", dict(drop_unknown=False), "does not know these characters: '☃'"),
    ("a ___ b", dict(drop_unknown=False), "choose infilling"),
    ("x" * 300, {}, "at most 255"),
    ("no blanks here", dict(mode="infill"), "no _ masks"),
    ("_" * 300, dict(mode="infill"), "at most 256"),
    (PROMPT, dict(steps=5000), "between 1 and 1000"),
    (PROMPT, dict(temperature="hot"), "must be a number"),
    (PROMPT, dict(top_p=0), "must be in (0, 1]"),
    (PROMPT, dict(remasking="telepathy"), "nknown remasking strategy"),
])
def test_bad_input_warns_instead_of_raising(notes, prompt, kw, expected):
    outputs = run(prompt, **kw)
    assert len(outputs) == 1
    status = outputs[0][STATUS]
    assert status.startswith("⚠️") and expected in status
    assert len(notes["warning"]) == 1


def test_ui_values_map_to_sampler_settings():
    d = sampler_config()
    assert d == DEFAULT                                                                # the defaults
    off = sampler_config(threshold=1, reveal_schedule="model")
    assert off.threshold is None and off.reveal_schedule is None                       # 1 = off; the training schedule
    assert sampler_config(threshold="0.5", reveal_schedule="cosine").threshold == 0.5
    assert sampler_config(polish=3.0).polish == 3 and sampler_config(polish=None).polish == DEFAULT.polish


def test_too_long_generation_is_clamped_to_the_context(notes):
    outputs = run("x" * 250, gen_len=200, steps=3)
    assert len(outputs[-1][FINAL]) == 256
    assert any("reduced to 6" in m for m in notes["info"])


def test_an_unexpected_error_is_one_warning(notes, monkeypatch):
    def broken(*a, **k):
        yield from ()
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(generate_tab, "denoise", broken)
    outputs = run(PROMPT)
    assert outputs[-1][STATUS] == "⚠️ Generation failed: RuntimeError: boom"
    assert notes["warning"] == ["Generation failed: RuntimeError: boom"]


def state(text, fixed=(), masked=(), revealed=(), remasked=(), conf=0.5, done=False):
    n = len(text)
    return DenoiseState(step=1, total_steps=2, u=0.5, tokens=tuple(range(n)), text=text,
                        masked=tuple(i in masked or i in remasked for i in range(n)),
                        revealed=tuple(i in revealed for i in range(n)),
                        remasked=tuple(i in remasked for i in range(n)),
                        confidence=tuple(math.nan if i in fixed else conf for i in range(n)),
                        fixed=tuple(i in fixed for i in range(n)), nfe=1, elapsed=0.1, done=done)


def test_render_escapes_and_marks_every_character():
    html = render.render_state(state('<b>&"\nx__', fixed={0, 1, 2}, revealed={3}, masked={7}, remasked={6}))
    body = canvas_body(html)
    assert "<b>" not in body and "&lt;" in body and "&gt;" in body and "&amp;" in body and "&quot;" in body
    assert body.count("mdl-prompt") == 3 and body.count("mdl-new") == 1
    assert body.count("mdl-remask") == 1 and body.count("mdl-mask") == 1
    assert "<br>" in body  # the newline
    assert f'title="confidence 0.50" style="opacity:{0.35 + 0.65 * 0.5:.2f}"' in body  # shading + tooltip
    assert 'class="mdl-legend"' in html


def test_status_and_chart():
    s = dataclasses.replace(state("ab__", fixed={0}, masked={2, 3}), elapsed=0.5)
    assert render.status_line(s) == "Step 1 of 2 · 2 masks left · 1 model evaluation · 2 characters/s"
    polishing = dataclasses.replace(state("abcd", fixed={0}), elapsed=0.5)
    assert render.status_line(polishing).startswith("Step 1 of 2 · polishing the draft · 1 model evaluation")
    svg = render.mask_chart_svg([3, 2, 0], total_steps=2)
    assert svg.count("<polyline") == 1 and "<circle" in svg


def test_a_run_that_ends_mid_way_says_it_was_stopped():
    running = render.status_line(dataclasses.replace(state("ab__", fixed={0}, masked={2, 3}), elapsed=0.5))
    assert render.stopped_line(running) == "**Stopped** at step 1 of 2 · 2 masks left · 1 model evaluation · 2 characters/s"
    done = render.status_line(dataclasses.replace(state("abcd", fixed={0}), elapsed=0.5, done=True))
    assert done.startswith("**Done.**")
    for ended in (done, "⚠️ The prompt is empty.", "Stopped.", ""):
        assert render.stopped_line(ended) is None   # finished, failed or already stopped: the line stays


def test_forward_process_masks_more_as_t_grows(notes):
    sentence = "Lily saw a big red ball."
    counts = []
    for t in (0, 30, 60, 100):
        text_html, summary, svg, _predictions = app.forward_process(sentence, t, "cosine", seed=1)
        counts.append(text_html.count("mdl-mask"))
        assert f"t = {t} of T = 100" in summary
    assert counts[0] == 0 and counts[-1] == len(sentence) and counts == sorted(counts)
    _, summary, svg, _ = app.forward_process(sentence, 50, "linear", seed=1)
    assert "a(t) = 0.50" in summary
    assert svg.count("<polyline") == len(SCHEDULES) and 'stroke="#0072B2"' in svg


def test_model_card_describes_the_bundled_checkpoint():
    _, ck, notice = app.STORE.load("")
    card = model_summary(ck)
    assert notice is None
    assert "`bundled`" in card and f"{ck.model.num_params():,}" in card and "256 characters" in card
    assert "| Weights | float32 |" in card
    if "nelbo_bpc" in ck.metadata.get("val", {}):
        assert "bits per character" in card


def test_store_falls_back_to_the_bundled_model(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    key, ck, notice = serving.ModelStore(timeout=5).load("nobody/not-in-cache")
    assert key == "" and ck.source == "bundled"
    assert "nobody/not-in-cache" in notice and "bundled model instead" in notice

    real_load = serving.load_checkpoint

    def silent_hub(source=None, **kw):
        if source:
            time.sleep(3)  # a Hub that never answers in time
        return real_load(source, **kw)

    monkeypatch.setattr(serving, "load_checkpoint", silent_hub)
    started = time.monotonic()
    key, ck, notice = serving.ModelStore(timeout=0.3).load("slow/hub")
    assert key == "" and "no answer within 0.3 s" in notice and time.monotonic() - started < 2


def test_store_loads_a_local_directory():
    key, ck, notice = serving.ModelStore().load(str(Path(app.__file__).parent / "checkpoints" / "tinystories-tiny"))
    assert notice is None and key.endswith("tinystories-tiny") and ck.path.name == "tinystories-tiny"


def test_controls_are_wired_by_parameter_name():
    params = [p for p in inspect.signature(app.generate).parameters if p != "request"]   # gr.Request: Gradio's
    controls = {name: object() for name in reversed(params)}
    assert app.inputs_for(app.generate, controls) == [controls[name] for name in params]
    with pytest.raises(TypeError, match="polish"):      # a control left out
        app.inputs_for(app.generate, {k: v for k, v in controls.items() if k != "polish"})
    with pytest.raises(TypeError, match="strategy"):    # a control with no parameter
        app.inputs_for(app.generate, {**controls, "strategy": object()})


def test_every_child_of_the_tabs_is_a_tab():
    """A component made directly inside gr.Tabs (even an invisible gr.State) mixes up the browser's tab
    buttons (a tab shows twice, another vanishes): everything must live inside a gr.Tab."""
    demo = app.build_demo("")
    tabs = [b for b in demo.blocks.values() if isinstance(b, app.gr.Tabs)]
    assert tabs and all(isinstance(child, app.gr.Tab) for t in tabs for child in t.children)


def test_build_demo_wires_the_api():
    demo = app.build_demo("")
    names = {fn.api_name for fn in demo.fns.values()}
    assert {"generate", "forward_process", "load_model", "model_info", "export"} <= names


@pytest.fixture(scope="module")
def trace():
    session = app.Run()
    list(app.generate(PROMPT, gen_len=24, steps=5, delay_ms=0, run=session))
    return session.states


def fake_viz(monkeypatch, module):
    """Replace microdllm.viz for `from microdllm import viz`, even if another test imported the real one."""
    import microdllm

    monkeypatch.setitem(sys.modules, "microdllm.viz", module)
    if module is None:
        monkeypatch.delattr(microdllm, "viz", raising=False)
    else:
        monkeypatch.setattr(microdllm, "viz", module, raising=False)


def test_export_writes_gif_and_mp4(trace, monkeypatch):
    written = []

    def fake_writer(suffix):
        def write(states, path, frame_ms=180, every=1):
            written.append((suffix, len(states), every))
            Path(path).write_bytes(b"x")
            return Path(path)
        return write

    fake_viz(monkeypatch, types.SimpleNamespace(write_gif=fake_writer("gif"), write_mp4=fake_writer("mp4"),
                                                write_heatmap=fake_writer("png")))
    monkeypatch.setattr(export, "EXPORT_FRAMES", 3)  # long traces are thinned
    gif, mp4, heatmap = app.export_trace(trace)
    assert gif["value"].endswith(".gif") and Path(gif["value"]).is_file() and gif["visible"]
    assert mp4["value"].endswith(".mp4") and Path(mp4["value"]).is_file()
    assert heatmap["value"].endswith("-heatmap.png") and heatmap["visible"]
    every = math.ceil(len(trace) / 3)
    assert every > 1 and written == [("gif", len(trace), every), ("mp4", len(trace), every), ("png", len(trace), 1)]


def test_export_without_a_run_or_without_viz_warns(trace, notes, monkeypatch):
    app.export_trace([])
    fake_viz(monkeypatch, None)  # the import fails
    app.export_trace(trace)
    assert notes["warning"][0].startswith("Nothing to export") and "Export is unavailable" in notes["warning"][1]


def test_export_with_the_real_renderer(trace):
    pytest.importorskip("microdllm.viz")
    gif, mp4, heatmap = app.export_trace(trace)
    assert Path(gif["value"]).read_bytes()[:3] == b"GIF"
    assert Path(heatmap["value"]).read_bytes()[:4] == b"\x89PNG"
    assert mp4["value"] is None or Path(mp4["value"]).stat().st_size > 0


@pytest.fixture(scope="module")
def ar_checkpoint(tmp_path_factory):
    """A small (untrained) causal checkpoint with the bundled model's vocabulary."""
    from microdllm.checkpoint import load_checkpoint, save_checkpoint
    from microdllm.config import get_preset
    from microdllm.model import Transformer

    tok = load_checkpoint().tokenizer
    torch.manual_seed(0)
    model = Transformer(get_preset("test", vocab_size=tok.vocab_size, causal=True, block_size=256))
    return save_checkpoint(tmp_path_factory.mktemp("ar") / "ar", model, tok)


def test_race_advances_the_stream_that_used_less_time():
    def stream(name, times):
        for k, t in enumerate(times):
            yield types.SimpleNamespace(name=name, step=k, elapsed=t, done=k == len(times) - 1)

    rounds = list(serving.race(stream("fast", [0, 1, 2]), stream("slow", [0, 5, 6, 7])))
    assert [(a.step, b.step) for a, b in rounds] == [(0, 0), (1, 0), (1, 1), (2, 1), (2, 2), (2, 3)]
    assert rounds[-1][0].done and rounds[-1][1].done


def test_compare_writes_both_to_the_end(notes, ar_checkpoint, monkeypatch):
    monkeypatch.setattr(settings, "AR_SOURCE", str(ar_checkpoint))
    frames = list(app.compare(PROMPT, gen_len=20, seed=1))
    assert len(frames) > 20 and not notes["warning"]
    diff_html, diff_status, ar_html, ar_status, *_ = frames[-1]    # then the network's other ways of writing
    assert "**done**" in diff_status and "**done**" in ar_status and "20 model evaluations" in ar_status
    assert "mdl-mask" not in diff_html and "mdl-mask" not in ar_html


def test_compare_without_a_baseline_warns(notes, monkeypatch, tmp_path):
    monkeypatch.setattr(settings, "AR_SOURCE", str(tmp_path / "none"))
    assert list(app.compare(PROMPT, gen_len=10)) == []
    assert "No autoregressive baseline" in notes["warning"][-1]


def test_model_panel_figures_are_committed():
    assert [p.name for p, _, _ in app.FIGURES] == ["quality_vs_time.png", "block_sizes.png", "diffusion_vs_ar.png",
                                                  "muon_vs_adamw.png", "samplers.png", "polish.png"]
    assert all(p.is_file() and p.stat().st_size > 10_000 for p, _, _ in app.FIGURES)


def test_the_bundled_models_are_offered_with_what_they_are():
    choices = app.model_choices()
    labels = [label for label, _ in choices]
    assert len(choices) == 4 and "the default" in labels[0] and labels[0].startswith("Block diffusion, blocks of 16")
    assert "checks them" in labels[0] and labels[1].startswith("Block diffusion, blocks of 2")   # draft and verify
    assert any(label.startswith("Full-sequence diffusion") for label in labels)
    assert any(label.startswith("Autoregressive") for label in labels)


@pytest.mark.parametrize("index, kind", [(0, "block diffusion"), (1, "block diffusion"), (2, "diffusion"),
                                         (3, "autoregressive")])
def test_choosing_a_model_sets_its_defaults_and_says_what_it_is(notes, index, kind):
    source = app.model_choices()[index][1]
    key, summary, _notice, *knobs = app.load_model(source, 200)
    updates = dict(zip(app.CONTROLS_FOR_MODEL, knobs))
    ck = serving.ModelStore().load(source)[1]
    assert ck.model.config.kind == kind and "| Kind |" in summary
    d = app.defaults_for(ck.model.config)
    assert updates["steps"]["value"] == min(d.steps, ck.model.config.attn_block or d.steps)   # a block's steps: at most B
    assert (updates["temperature"]["value"], updates["top_p"]["value"]) == (d.temperature, d.top_p)
    if kind == "block diffusion":
        assert updates["block_len"]["label"] == "Block size" and "cannot fill in blanks" in updates["model_note"]
    # the run it starts writes with that model, at those settings
    session = app.Run()
    *_, (canvas, _, _, _, status, final) = run(PROMPT, model_key=key, steps=updates["steps"]["value"], run=session,
                                               writing=updates["writing"]["value"])
    assert status.startswith("**Done.**") and final.startswith(PROMPT) and session.states[-1].done
    drafts = ck.model.config.clean_causal            # draft and verify: the text grows at its end, no blocks
    assert ("mdl-bstart" in canvas) == (kind == "block diffusion" and not drafts)
    assert (session.states[-1].phase == "verify") == drafts


def test_infilling_with_a_block_model_is_a_clear_message(notes):
    *_, (canvas, chart, _, _, status, final) = run("a ___ b", mode="infill", model_key="")
    assert status.startswith("⚠️") and "cannot fill in blanks" in status


def test_compare_reports_the_cost_of_each_side(notes):
    outputs = list(app.compare(PROMPT, gen_len=24, delay_ms=0, model_key=""))
    diff_status, ar_status = outputs[-1][1], outputs[-1][3]
    assert diff_status.startswith("**Block diffusion: block by block** · **done**")
    for line in (diff_status, ar_status):
        assert "model evaluations" in line and "positions evaluated" in line and "MFLOP" in line


def test_load_model_in_a_public_app_answers_every_path_alike(notes, monkeypatch, tmp_path):
    store = serving.ModelStore(public=True)
    store._models[""] = app.STORE.load("")[1]
    monkeypatch.setattr(settings, "STORE", store)
    (tmp_path / "file").write_text("x")
    answers = set()
    for source in (str(BUNDLED_DIFFUSION_DIR.parent), str(tmp_path / "missing"), str(tmp_path / "file"), "/etc"):
        key, summary, notice, *_ = app.load_model(source, 200)
        assert key == "" and "`bundled`" in summary
        answers.add((notice.value, notes["warning"][-1]))
    assert answers == {(f"⚠️ **{serving.PUBLIC_REFUSAL} Using the bundled model instead.**",
                        f"{serving.PUBLIC_REFUSAL} Using the bundled model instead.")}
    key, summary, notice, *_ = app.load_model(str(BUNDLED_DIFFUSION_DIR), 200)   # a bundled model: fine
    assert key == str(BUNDLED_DIFFUSION_DIR) and not notice.visible
