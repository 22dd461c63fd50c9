"""What the model learns: diffusion.explain_loss is the training loss on one sentence, for every kind of model."""
from __future__ import annotations

import math

import pytest
import torch
from helpers import STORY, tiny_model

import app
from microdllm import render
from microdllm.checkpoint import BUNDLED_AR_DIR, BUNDLED_BLOCK_DIR, BUNDLED_DIFFUSION_DIR
from microdllm.diffusion import (
    CosineSchedule,
    LinearSchedule,
    always_predicted,
    autoregressive_loss,
    block_diffusion_loss,
    corrupt,
    diffusion_loss,
    explain_loss,
    trained_loss,
)
from microdllm.ui import forward_tab

SENTENCE = STORY[:60]


@pytest.fixture(scope="module", autouse=True)
def one_thread(single_thread):
    """Every test here on one torch thread (conftest.single_thread)."""


def draw(tok, t, T, schedule, seed=3):
    x0 = torch.tensor([tok.encode(SENTENCE)])
    _, mask = corrupt(x0, torch.tensor([t]), T, schedule, tok.mask_id, torch.Generator().manual_seed(seed))
    return x0, mask


def p_of(logits_row: torch.Tensor, true_id: int, mask_id: int) -> float:
    row = logits_row.float().clone()
    row[mask_id] = float("-inf")
    return float(row.softmax(-1)[true_id])


def consistent(ex):
    """The objective is the weighted sum of the per-character losses, and each loss is -log p(true)."""
    assert ex.objective == pytest.approx(sum(p.weight * p.loss for p in ex.predictions), rel=1e-5, abs=1e-7)
    for p in ex.predictions:
        assert p.loss == pytest.approx(-math.log(p.p_true), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("loss", ["masked_ce", "elbo"])
@pytest.mark.parametrize("shift", [False, True])
def test_full_diffusion_objective_is_diffusion_loss(loss, shift):
    model, tok = tiny_model(shift=shift)
    schedule, T, t = CosineSchedule(), model.config.timesteps, 60
    x0, mask = draw(tok, t, T, schedule)
    ex = explain_loss(model, x0, mask, t, T, schedule, tok.mask_id, loss)
    tt = torch.tensor([t])
    with torch.no_grad():
        logits = model(x0.masked_fill(mask, tok.mask_id), tt)
    assert ex.objective == pytest.approx(float(diffusion_loss(loss, logits, x0, mask, tt, T, schedule, tok.mask_id)),
                                         rel=1e-5)
    assert [p.position for p in ex.predictions] == mask[0].nonzero().flatten().tolist()
    assert all(p.masked for p in ex.predictions) and ex.model_kind == "diffusion" and ex.loss == loss
    consistent(ex)
    if loss == "masked_ce":    # the mean of the per-character losses, each weighted 1/#masked
        assert ex.objective == pytest.approx(sum(p.loss for p in ex.predictions) / mask.sum().item(), rel=1e-5)
        assert [p.weight for p in ex.predictions] == pytest.approx([1 / mask.sum().item()] * len(ex.predictions))
    else:                      # T * w_t / L on every masked character
        w = float(schedule.elbo_weight(tt, T)[0]) * T
        assert ex.step_weight == pytest.approx(w) and ex.predictions[0].weight == pytest.approx(w / x0.size(1))
    for p in ex.predictions:   # p(true) is the probability the model gives the true character at that position
        assert p.p_true == pytest.approx(p_of(logits[0, p.position], p.true_id, tok.mask_id), rel=1e-4)


@pytest.mark.parametrize("loss", ["masked_ce", "elbo"])
@pytest.mark.parametrize("shift", [False, True])
def test_block_objective_is_block_diffusion_loss(loss, shift):
    block = 4
    model, tok = tiny_model(time_embedding=False, attn_block=block, shift=shift)
    schedule, T, t = LinearSchedule(), model.config.timesteps, 50
    x0, mask = draw(tok, t, T, schedule)
    L = x0.size(1)
    ex = explain_loss(model, x0, mask, t, T, schedule, tok.mask_id, loss)
    always = always_predicted(L, block, shift)
    targets = mask | always
    with torch.no_grad():
        logits = model(x0.masked_fill(mask & ~always, tok.mask_id), clean=x0)
    u = torch.full((1, L), t / T, dtype=torch.float64)
    expected = block_diffusion_loss(loss, logits, x0, targets, u, schedule, tok.mask_id, always)
    assert ex.objective == pytest.approx(float(expected), rel=1e-5)
    assert [p.position for p in ex.predictions] == targets[0].nonzero().flatten().tolist()
    scored_always = [p.position for p in ex.predictions if not p.masked]
    assert scored_always == always.nonzero().flatten().tolist()     # with shift: the last of every block
    assert bool(scored_always) == shift and ex.block == block and ex.model_kind == "block diffusion"
    consistent(ex)
    if loss == "masked_ce":
        assert ex.objective == pytest.approx(sum(p.loss for p in ex.predictions) / targets.sum().item(), rel=1e-5)


@pytest.mark.parametrize("shift", [False, True])
def test_block_p_true_matches_a_direct_prefix_forward(shift):
    """Each target's p(true), from the paired pass, equals a plain block-causal forward over the clean
    blocks before it and its own noisy block (a different code path: checks the shift alignment)."""
    block = 4
    model, tok = tiny_model(time_embedding=False, attn_block=block, shift=shift)
    schedule, T = LinearSchedule(), model.config.timesteps
    x0, mask = draw(tok, 55, T, schedule)
    ex = explain_loss(model, x0, mask, 55, T, schedule, tok.mask_id)
    xt = x0.masked_fill(mask & ~always_predicted(x0.size(1), block, shift), tok.mask_id)
    for p in ex.predictions:
        start, end = p.position // block * block, p.position // block * block + block
        idx = torch.cat([x0[:, :start], xt[:, start:end]], 1)
        with torch.no_grad():
            logits = model(idx)
        assert p.p_true == pytest.approx(p_of(logits[0, p.position], p.true_id, tok.mask_id), rel=1e-3, abs=1e-6)


def test_autoregressive_scores_every_next_character():
    model, tok = tiny_model(time_embedding=False, causal=True)
    x0, mask = draw(tok, 50, model.config.timesteps, CosineSchedule())
    ex = explain_loss(model, x0, mask, 50, model.config.timesteps, CosineSchedule(), tok.mask_id, "elbo")
    with torch.no_grad():
        logits = model(x0)
    assert ex.loss == "next_char" and ex.model_kind == "autoregressive"
    assert ex.objective == pytest.approx(float(autoregressive_loss(logits, x0, tok.mask_id)), rel=1e-5)
    assert [p.position for p in ex.predictions] == list(range(1, x0.size(1)))   # no masks: every next character
    assert ex.objective == pytest.approx(sum(p.loss for p in ex.predictions) / (x0.size(1) - 1), rel=1e-5)
    consistent(ex)
    for p in ex.predictions[:10]:   # the prediction for character i reads only the characters before it
        with torch.no_grad():
            prefix = model(x0[:, :p.position])
        assert p.p_true == pytest.approx(p_of(prefix[0, -1], p.true_id, tok.mask_id), rel=1e-3, abs=1e-6)
        assert p.true_id == x0[0, p.position]


def test_nothing_masked_means_no_loss():
    model, tok = tiny_model()
    x0, mask = draw(tok, 0, model.config.timesteps, CosineSchedule())
    ex = explain_loss(model, x0, mask, 0, model.config.timesteps, CosineSchedule(), tok.mask_id)
    assert not ex.predictions and ex.objective == 0
    assert "nothing to predict" in render.prediction_view(ex, SENTENCE, lambda i: tok.decode([i]))


def test_the_training_loss_kind_comes_from_the_checkpoint_config():
    assert trained_loss({"training": {"config": {"loss": "elbo"}}}) == "elbo"
    for config in ({}, None, {"training": {}}, {"training": {"config": {"loss": "nonsense"}}}, {"training": 3}):
        assert trained_loss(config) == "masked_ce"
    for source in (BUNDLED_BLOCK_DIR, BUNDLED_DIFFUSION_DIR, BUNDLED_AR_DIR):
        assert trained_loss(app.STORE.load(str(source))[1].config) == "masked_ce"


def test_the_view_lists_at_most_60_rows_and_summarises_the_rest():
    model, tok = tiny_model(time_embedding=False, causal=True)
    x0 = torch.tensor([tok.encode(STORY[:64])])
    ex = explain_loss(model, x0, torch.zeros_like(x0, dtype=torch.bool), 0, 100, CosineSchedule(), tok.mask_id)
    view = render.prediction_view(ex, STORY[:64], lambda i: tok.decode([i]))
    assert view.count("<li>") == 60 and "… and 3 more scored characters" in view
    assert "next-character cross-entropy" in view and "without masks" in view
    canvas = view.split('<div class="mdl-canvas">', 1)[1].split("</div>", 1)[0]
    assert canvas.count('class="mdl-c mdl-hit') + canvas.count('class="mdl-c mdl-miss') == 63


@pytest.mark.parametrize("source, needles", [
    (BUNDLED_BLOCK_DIR, ("masked cross-entropy", "always predicted", "every block at t = 50 of 100")),
    (BUNDLED_DIFFUSION_DIR, ("masked cross-entropy", "per masked character", "at t = 50 of 100")),
    (BUNDLED_AR_DIR, ("next-character cross-entropy", "without masks")),
])
def test_forward_process_shows_what_each_bundled_model_learns(notes, source, needles):
    sentence = "Lily saw a big red ball. She wanted to play with it."
    text_html, summary, svg, predictions = app.forward_process(sentence, 50, "cosine", seed=1, model_key=str(source))
    assert not notes["warning"]
    assert '<div class="mdl-pred">' in predictions and "objective: " in predictions   # (after any caveat)
    for needle in needles:
        assert needle in predictions
    rows = predictions.count("<li>")
    masked = text_html.count("mdl-mask")
    kind = app.STORE.load(str(source))[1].model_config.kind
    if kind == "diffusion":
        assert rows == masked and f"(weight 1/{masked} each)" in predictions
    elif kind == "block diffusion":
        assert rows > masked          # the masked ones and the always-predicted ones
    else:
        assert rows == len(sentence) - 1


def test_forward_process_model_failure_is_a_warning(notes, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(forward_tab, "explain_loss", broken)
    *view, predictions = app.forward_process("Lily saw a ball.", 50, "cosine", seed=1)
    assert "mdl-canvas" in view[0] and predictions == app.gr.skip()
    assert any("boom" in w for w in notes["warning"])


def test_forward_process_empty_sentence(notes):
    *_, predictions = app.forward_process("", 50, "cosine")
    assert "Type a sentence" in predictions and not notes["warning"]
