"""The teaching views' data, from the one sampler stream: what the model weighed for each character,
its guesses under the masks, branching from any state, and the run read across its steps (history)."""
from __future__ import annotations

import re

import pytest
from helpers import tiny_model

from microdllm import history, render
from microdllm.checkpoint import BUNDLED_AR_DIR, BUNDLED_BLOCK_DIR, BUNDLED_DIFFUSION_DIR, load_checkpoint
from microdllm.sampling import SAMPLER_PRESETS, TOP_CANDIDATES, SamplingError, defaults_for, denoise

PROMPT = "Once upon a time"


@pytest.fixture(scope="module", autouse=True)
def one_thread(single_thread):
    """Every test here on one torch thread (conftest.single_thread)."""


@pytest.fixture(scope="module", params=[BUNDLED_BLOCK_DIR, BUNDLED_DIFFUSION_DIR, BUNDLED_AR_DIR],
                ids=["block", "diffusion", "autoregressive"])
def bundled(request):
    return load_checkpoint(request.param)


def run(ck, prompt=PROMPT, **kw):
    cfg = defaults_for(ck.model.config).replace(gen_len=48, **kw)
    return list(denoise(ck.model, ck.tokenizer, prompt, cfg, schedule=ck.schedule))


def test_every_written_character_carries_its_rivals(bundled):
    states = run(bundled, temperature=0.0)
    for prev, state in zip(states, states[1:]):
        for c in state.candidates:
            assert not state.masked[c.position] and state.text[c.position] == c.written
            assert prev.masked[c.position] or prev.text[c.position] != c.written   # written by this step
            probs = [p for _, p in c.top]
            assert len(c.top) == TOP_CANDIDATES and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-3
            assert c.top[0][0] == c.written          # greedy: the model's first choice is what it wrote
    written = [c.position for s in states for c in s.candidates if s.phase != "polish"]
    assert sorted(written) == [i for i, f in enumerate(states[0].fixed) if not f]   # each revealed once


def test_guesses_sit_only_under_masks_the_model_has_seen(bundled):
    states = run(bundled)
    for state in states:
        if not state.guesses:
            continue
        for i, guess in enumerate(state.guesses):
            assert not guess or state.masked[i]
    if not bundled.model.config.causal:
        assert any(g for s in states for g in s.guesses)     # some step guessed under a mask
    if bundled.model.config.attn_block:                       # a block model guesses only in its block
        for s in states:
            if s.block:
                assert not any(g for i, g in enumerate(s.guesses) if i >= s.block[1])


def test_a_sampled_character_is_among_what_the_model_weighed():
    ck = load_checkpoint(BUNDLED_DIFFUSION_DIR)
    states = run(ck, temperature=0.8, top_k=5, seed=3)
    cands = [c for s in states for c in s.candidates if s.phase == "reveal"]
    assert cands and all(c.written in [ch for ch, _ in c.top] for c in cands)   # top-k 5 = the five shown


def test_the_views_do_not_change_what_is_written():
    """The original's classic preset still reproduces its outputs (test_core); here: a traced run and a
    run with the traces stripped write the same, state for state."""
    ck = load_checkpoint(BUNDLED_DIFFUSION_DIR)
    a = run(ck, seed=1, temperature=0.7)
    b = run(ck, seed=1, temperature=0.7)
    assert [s.text for s in a] == [s.text for s in b] and [s.guesses for s in a] == [s.guesses for s in b]


@pytest.mark.parametrize("index", [1, 5])
def test_branch_keeps_the_draft_and_writes_only_its_masks(bundled, index):
    states = run(bundled)
    start = states[min(index, len(states) - 2)]
    branch = list(denoise(bundled.model, bundled.tokenizer, "", defaults_for(bundled.model.config).replace(
        temperature=0.9, seed=7), schedule=bundled.schedule, start=start))
    assert branch[0].text == start.text and branch[0].step == start.step
    assert [s.step for s in branch] == list(range(start.step, start.step + len(branch)))
    end = branch[-1]
    assert end.done and not any(end.masked) and end.fixed == start.fixed and end.nfe > start.nfe
    for i, masked in enumerate(start.masked):
        if not masked:
            assert end.text[i] == start.text[i]     # the text written so far is kept (no polish by default)


@pytest.mark.parametrize("source", [BUNDLED_AR_DIR, BUNDLED_BLOCK_DIR], ids=["autoregressive", "block"])
def test_branch_with_the_same_settings_writes_what_the_run_wrote(source):
    """Greedy left to right (and a block model from the end of a block) continues exactly as the run did."""
    ck = load_checkpoint(source)
    states = run(ck, temperature=0.0)        # greedy: a sampled branch draws from a fresh generator
    ends = [s for s in states[1:-1] if s.block is None or all(not s.masked[i] for i in range(*s.block))]
    start = ends[len(ends) // 2]
    branch = list(denoise(ck.model, ck.tokenizer, "", defaults_for(ck.model.config).replace(gen_len=48,
                          temperature=0.0), schedule=ck.schedule, start=start))
    assert branch[-1].text == states[-1].text


def test_branching_refuses_what_it_cannot_continue():
    ar, diff = load_checkpoint(BUNDLED_AR_DIR), load_checkpoint(BUNDLED_DIFFUSION_DIR)
    states = run(diff)
    scattered = next(s for s in states if any(s.masked) and not all(s.masked[s.masked.index(True):]))
    with pytest.raises(SamplingError, match="masks all come after its text"):
        list(denoise(ar.model, ar.tokenizer, "", start=scattered))
    with pytest.raises(SamplingError, match="nothing to continue"):
        list(denoise(diff.model, diff.tokenizer, "", start=states[-1]))
    model, tok = tiny_model()
    with pytest.raises(SamplingError, match="context|vocabulary"):
        list(denoise(model, tok, "", start=states[1]))


def test_history_reads_reveals_remasks_and_rewrites():
    ck = load_checkpoint(BUNDLED_DIFFUSION_DIR)
    states = run(ck, **{f: v for f, v in vars(SAMPLER_PRESETS["classic"]).items() if f in ("steps", "remasking",
                                                                                           "remask_ratio")})
    events = history.events(states)
    remasks = sum(sum(s.remasked) for s in states)
    assert sum(e.kind == "remask" for e in events) == remasks > 0
    assert {e.kind for e in events} <= set(history.EVENTS)
    for e in events:
        if e.kind == "remask":
            before = next(s for s in states if s.step == e.step - 1)
            assert before.text[e.position] == e.char
    # the spans of each position tile the run: from the first step to the last, without gaps
    by_pos: dict[int, list] = {}
    for sp in history.spans(states):
        by_pos.setdefault(sp.position, []).append(sp)
    for spans in by_pos.values():
        spans.sort(key=lambda sp: sp.start)
        assert spans[0].start == 0 and spans[-1].end == states[-1].step + 1
        assert all(a.end == b.start and a.masked != b.masked for a, b in zip(spans, spans[1:]))


def test_candidates_at_a_step_are_the_latest_written():
    ck = load_checkpoint(BUNDLED_DIFFUSION_DIR)
    states = run(ck)
    mid = len(states) // 2
    known = history.candidates_at(states, mid)
    for i, masked in enumerate(states[mid].masked):
        if not masked and not states[mid].fixed[i]:
            assert known[i].written == states[mid].text[i]
    assert set(known) <= {i for i, f in enumerate(states[0].fixed) if not f}


def test_the_canvas_shows_candidates_and_ghosts():
    ck = load_checkpoint(BUNDLED_DIFFUSION_DIR)
    states = run(ck)
    mid = next(i for i, s in enumerate(states) if any(s.guesses) and not all(s.masked[len(PROMPT):]))
    html = render.render_state(states[mid], cands=history.candidates_at(states, mid), ghost=True)
    popups = re.findall(r'<span class="mdl-cands">([^<]*)</span>', html)
    written = sum(1 for i, m in enumerate(states[mid].masked) if not m and not states[mid].fixed[i])
    assert len(popups) == written and all(re.match(r"^\S+ \d+% · ", p) for p in popups)
    ghosts = html.split('<div class="mdl-canvas">')[1].count("mdl-mask mdl-ghost")   # (the legend shows one)
    assert ghosts == sum(1 for i, g in enumerate(states[mid].guesses) if g and states[mid].masked[i]) > 0
    assert "mdl-ghost" not in render.render_state(states[mid], cands={}, ghost=False)


def test_the_heatmap_names_every_decision():
    ck = load_checkpoint(BUNDLED_BLOCK_DIR)
    states = run(ck)
    svg = render.heatmap_svg(states, current=3)
    titles = re.findall(r"<title>([^<]*)</title>", svg)
    events = history.events(states)
    assert sum("revealed at step" in t for t in titles) == len(events) == 48
    assert any(re.match(r"^'.' revealed at step \d+ \(position \d+\)$", t) for t in titles)
    assert svg.count('stroke="#56B4E9"') == len(states[-1].boundaries)      # block starts drawn
    assert svg.count('class="mdl-hblock"') == len(states[-1].boundaries)    # and the blocks, as a strip
    assert 'stroke-dasharray="4 3"' in svg                                  # the step shown


def test_exported_frames_mark_the_blocks():
    """The GIF/MP4 frames show where blocks start (blue bars in the text panel), as the canvas does; a
    full-sequence run has none there."""
    from microdllm import viz

    def text_panel_colours(state):
        frame = viz.render_frame(state, [])                  # 1280 x 720: the text panel is left of the chart
        return {c for _, c in frame.crop((32, 150, 880, 680)).getcolors(1 << 20)}

    blue = (0x56, 0xB4, 0xE9)
    block = run(load_checkpoint(BUNDLED_BLOCK_DIR))
    assert blue in text_panel_colours(block[len(block) // 2])
    assert blue not in text_panel_colours(run(load_checkpoint(BUNDLED_DIFFUSION_DIR))[3])


def test_the_exported_heatmap_is_a_picture(tmp_path):
    from microdllm import viz

    ck = load_checkpoint(BUNDLED_BLOCK_DIR)
    path = viz.write_heatmap(run(ck), tmp_path / "h.png")
    from PIL import Image

    with Image.open(path) as im:
        assert im.size == (1280, 720)
        colours = {c for _, c in im.getcolors(1 << 20)}
    assert (0xE6, 0x9F, 0x00) in colours          # reveals in orange
    with pytest.raises(ValueError, match="empty"):
        viz.heatmap_image([])
