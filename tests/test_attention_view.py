"""Attention, drawn: model.attention_pattern is the mask the model applies; render.attention_svg draws it."""
from __future__ import annotations

import pytest
import torch
from helpers import tiny_model

import app
from microdllm import render
from microdllm.checkpoint import BUNDLED_AR_DIR, BUNDLED_BLOCK_DIR, BUNDLED_DIFFUSION_DIR
from microdllm.model import attention_pattern, block_causal_mask

FILLED = 'fill="#0072B2"'
KINDS = [  # (tiny_model overrides, the kind)
    (dict(), "diffusion"),
    (dict(time_embedding=False, attn_block=4), "block diffusion"),
    (dict(time_embedding=False, attn_block=4, shift=True), "block diffusion"),
    (dict(time_embedding=False, attn_block=64), "diffusion"),      # B = the context: all see all
    (dict(time_embedding=False, causal=True), "autoregressive"),
]


def test_the_pattern_is_the_models_mask():
    n = 12
    full, _ = tiny_model()
    assert attention_pattern(full.config, n) == [[True] * n] * n
    whole, _ = tiny_model(time_embedding=False, attn_block=64)
    assert attention_pattern(whole.config, n) == [[True] * n] * n
    causal, _ = tiny_model(time_embedding=False, causal=True)
    assert attention_pattern(causal.config, n) == torch.ones(n, n).tril().bool().tolist()
    for block in (1, 2, 3, 4):
        model, _ = tiny_model(time_embedding=False, attn_block=block)
        pattern = attention_pattern(model.config, n)
        assert pattern == model._mask(n, n).tolist() == block_causal_mask(n, n, block).tolist()
        assert all(pattern[i][j] == (j // block <= i // block) for i in range(n) for j in range(n))


@pytest.mark.parametrize("overrides, kind", KINDS, ids=lambda v: str(v))
@torch.no_grad()
def test_the_pattern_is_what_the_network_actually_reads(overrides, kind):
    """Change one character: exactly the outputs whose input may attend to its input change."""
    model, tok = tiny_model(**overrides)
    assert model.config.kind == kind
    L, shift = 12, int(model.config.shift)
    pattern = attention_pattern(model.config, L + shift)       # positions are the inputs (start vector first)
    x = torch.randint(1, tok.vocab_size, (1, L), generator=torch.Generator().manual_seed(0))
    t = torch.tensor([50]) if model.config.time_embedding else None
    base = model(x, t)
    for j in range(L):
        y = x.clone()
        y[0, j] = 1 + (x[0, j] % (tok.vocab_size - 1))
        changed = (model(y, t) - base).abs().amax(-1)[0] > 0
        assert changed.tolist() == [pattern[i][j + shift] for i in range(L)], j


@pytest.mark.parametrize("overrides, kind", KINDS, ids=lambda v: str(v))
def test_the_svg_fills_one_cell_per_allowed_pair(overrides, kind):
    model, _ = tiny_model(**overrides)
    pattern = attention_pattern(model.config, 16)
    svg = render.attention_svg(pattern, model.config.kind, model.config.attn_block)
    assert svg.count(FILLED) == sum(map(sum, pattern))
    assert svg.count("<line") == (2 * 3 if kind == "block diffusion" else 0)   # B = 4: boundaries at 4, 8, 12
    assert {"diffusion": "bidirectional", "autoregressive": "causal:",
            "block diffusion": "block-causal, B = 4: each character sees its own block"}[kind] in svg
    assert "torch" not in render.__dict__


@pytest.mark.parametrize("source, kind, filled, caption", [
    (BUNDLED_BLOCK_DIR, "block diffusion", sum(2 * (i // 2 + 1) for i in range(16)), "block-causal, B = 2"),
    (BUNDLED_DIFFUSION_DIR, "diffusion", 256, "bidirectional"),
    (BUNDLED_AR_DIR, "autoregressive", 136, "causal"),
])
def test_choosing_a_model_redraws_its_attention(notes, source, kind, filled, caption):
    key, summary, notice, *rest = app.load_model(str(source), 200)
    updates = dict(zip(app.CONTROLS_FOR_MODEL, rest))
    model_tab_copy = rest[len(app.CONTROLS_FOR_MODEL)]
    assert len(rest) == len(app.CONTROLS_FOR_MODEL) + 1
    for html in (updates["attention"], model_tab_copy):
        assert html.count(FILLED) == filled and caption in html and "first 16 positions" in html
    assert app.STORE.load(key)[1].model_config.kind == kind


def test_the_attention_diagrams_are_in_the_generate_and_model_tabs():
    demo = app.build_demo("")
    ids = {getattr(block, "elem_id", None): block for block in demo.blocks.values()}
    for elem_id in ("mdl-attention", "mdl-attention-model", "mdl-fwd-pred"):
        assert elem_id in ids
    assert ids["mdl-attention"].value.count(FILLED) == sum(16 * (i // 16 + 1) for i in range(32))   # the default: B = 16
    assert "objective: masked cross-entropy" in ids["mdl-fwd-pred"].value
