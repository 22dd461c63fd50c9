"""Tokenizer, model, diffusion and evaluation: the pieces everything stands on."""
import math

import pytest
import torch
import torch.nn.functional as F
from helpers import story_text, tiny_model

from microdllm.config import ModelConfig, get_preset
from microdllm.diffusion import SCHEDULES, Schedule, corrupt, elbo_loss, get_schedule, masked_ce_loss, sample_timesteps
from microdllm.evaluate import evaluate_autoregressive, evaluate_diffusion
from microdllm.model import Transformer
from microdllm.tokenizer import CharTokenizer, UnknownCharactersError, normalise


# ---- tokenizer ---------------------------------------------------------------------------
def test_mask_id_never_collides_and_underscore_is_writable():
    tok = CharTokenizer.from_text("a_b c")
    assert tok.mask_id == 0 and tok.vocab_size == len(tok.chars) + 1
    ids = tok.encode("a_b")
    assert tok.mask_id not in ids
    assert tok.decode(ids) == "a_b"
    assert tok.decode([tok.mask_id, *ids]) == "_a_b"  # `_` is only the display glyph for the mask


def test_normalisation_and_unknown_characters_are_named():
    assert normalise("\u201cHi\u201d \u2014 it\u2019s\u2026") == '"Hi" - it\'s...'
    tok = CharTokenizer.from_text("abc '\"-.")
    assert tok.encode("\u2018a\u2019") == tok.encode("'a'")
    with pytest.raises(UnknownCharactersError) as e:
        tok.encode("abz\u2603")
    assert "'z'" in str(e.value) and "'\u2603'" in str(e.value)
    assert tok.clean("abz") == "ab"


def test_template_encoding_marks_masks():
    tok = CharTokenizer.from_text("ab ")
    assert tok.encode_template("a__b") == [tok.encode("a")[0], 0, 0, tok.encode("b")[0]]


# ---- model -------------------------------------------------------------------------------
def test_micro_preset_is_the_original_parameter_count():
    assert Transformer(get_preset("micro", vocab_size=66)).num_params() == 10_706_304


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        get_preset("huge")


def test_shapes_and_time_embedding_switch():
    model, tok = tiny_model()
    x = torch.randint(1, tok.vocab_size, (2, 16))
    assert model(x, torch.tensor([3, 7])).shape == (2, 16, tok.vocab_size)
    assert model(x, torch.tensor([3, 3])).sub(model(x, torch.tensor([90, 90]))).abs().max() > 0
    plain, _ = tiny_model(tok, time_embedding=False)
    assert plain.timestep_emb is None
    assert plain(x, torch.tensor([3, 7])).shape == (2, 16, tok.vocab_size)


def test_causal_switch_makes_outputs_independent_of_the_future():
    for causal in (True, False):
        model, tok = tiny_model(causal=causal)
        x = torch.randint(1, tok.vocab_size, (1, 16))
        y = x.clone()
        y[0, 10:] = (y[0, 10:] % (tok.vocab_size - 1)) + 1
        same_past = torch.allclose(model(x)[0, :10], model(y)[0, :10], atol=1e-6)
        assert same_past == causal


def test_shift_reads_each_character_from_the_position_to_its_left():
    model, tok = tiny_model(shift=True)
    assert model.num_params() == tiny_model(tok)[0].num_params() + model.config.n_embd  # the start vector
    with torch.no_grad():  # blocks that add nothing: each output is the head of its own input
        for block in model.blocks:
            block.attn.c_proj.weight.zero_()
            block.mlp.c_proj.weight.zero_()
    x = torch.randint(1, tok.vocab_size, (2, 16))
    logits = model(x)
    assert logits.shape == (2, 16, tok.vocab_size)

    def head(h):
        return model.lm_head(F.rms_norm(F.rms_norm(h, (h.size(-1),)), (h.size(-1),)))
    assert torch.allclose(logits[:, 1:], head(model.token_emb(x[:, :-1])), atol=1e-5)
    assert torch.allclose(logits[:, 0], head(model.start).expand(2, -1), atol=1e-5)
    with pytest.raises(ValueError, match="shift is for bidirectional"):
        get_preset("test", shift=True, causal=True)


# ---- diffusion ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedules_run_from_clean_to_fully_masked(name):
    s = get_schedule(name)
    assert s.alpha(0.0) == pytest.approx(1.0)
    assert s.alpha(1.0) == pytest.approx(0.0, abs=2e-3)  # loglinear keeps eps = 1e-3
    u = torch.linspace(0, 1, 11, dtype=torch.float64)
    assert (s.alpha(u).diff() <= 0).all()
    # discrete-time ELBO weights telescope: sum_t w_t (1 - a_t) = a_0 - a_T
    T = 100
    t = torch.arange(1, T + 1)
    total = (s.elbo_weight(t, T).double() * (1 - s.alpha(t.double() / T))).sum()
    assert float(total) == pytest.approx(s.alpha(0.0) - s.alpha(1.0), rel=1e-4)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_time_at_inverts_the_schedule_and_agrees_with_bisection(name):
    s = get_schedule(name)
    for u in (0.0, 0.1, 0.37, 0.5, 0.9, 0.999):
        a = s.alpha(u)
        assert s.time_at(a) == pytest.approx(u, abs=1e-9)
        assert s.time_at(a) == pytest.approx(Schedule.time_at(s, a), abs=1e-9)  # the generic bisection
    assert 0.0 <= s.time_at(1.5) <= s.time_at(-0.5) <= 1.0  # out-of-range values clamp to [0, 1]


def test_corruption_is_vectorised_and_follows_the_schedule():
    s = get_schedule("cosine")
    x0 = torch.randint(1, 50, (400, 256))
    t = torch.full((400,), 50)
    g = torch.Generator().manual_seed(0)
    xt, mask = corrupt(x0, t, 100, s, 0, generator=g)
    assert torch.equal(xt == 0, mask) and torch.equal(xt[~mask], x0[~mask])
    assert float(mask.float().mean()) == pytest.approx(1 - math.cos(math.pi / 4), abs=0.01)
    assert not corrupt(x0, torch.zeros(400, dtype=torch.long), 100, s, 0)[1].any()


def test_stratified_timesteps_cover_every_slice():
    t = sample_timesteps(100, 100, torch.Generator().manual_seed(0), stratified=True)
    assert sorted(t.tolist()) == list(range(1, 101))


def test_losses_are_finite_and_masked_ce_ignores_visible_positions():
    model, tok = tiny_model()
    x0 = torch.tensor([tok.encode(story_text(64))])
    t = torch.tensor([60])
    xt, mask = corrupt(x0, t, 100, get_schedule("cosine"), 0, torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(xt, t)
    ce = masked_ce_loss(logits, x0, mask, 0)
    el = elbo_loss(logits, x0, mask, t, 100, get_schedule("cosine"), 0)
    assert torch.isfinite(ce) and torch.isfinite(el) and ce > 0 and el > 0
    logits2 = logits.clone()
    logits2[~mask] = torch.randn_like(logits2[~mask])
    assert masked_ce_loss(logits2, x0, mask, 0) == pytest.approx(float(ce))


class Uniform(torch.nn.Module):
    """Predicts the uniform distribution: its NELBO is exactly log2(V - 1) bits per character."""

    def __init__(self, vocab, causal=False):
        super().__init__()
        self.config = ModelConfig(vocab_size=vocab, block_size=64, n_layer=1, n_head=1, n_embd=2, causal=causal)
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, idx, t=None):
        return torch.zeros(*idx.shape, self.config.vocab_size) + self.w


def test_nelbo_is_exact_for_a_known_model():
    V = 30
    windows = torch.randint(1, V, (32, 64))
    for schedule in SCHEDULES:
        m = evaluate_diffusion(Uniform(V), windows, get_schedule(schedule), 0, timesteps_per_window=32)
        assert m["nelbo_bpc"] == pytest.approx(math.log2(V - 1), rel=0.03)
        assert m["masked_loss"] == pytest.approx(math.log(V - 1), rel=1e-5)
    assert evaluate_autoregressive(Uniform(V, causal=True), windows, 0)["bpc"] == pytest.approx(math.log2(V - 1))


def test_evaluation_runs_agree():
    model, tok = tiny_model()
    windows = torch.randint(1, tok.vocab_size, (16, 64))
    a = evaluate_diffusion(model, windows, get_schedule("cosine"), 0, timesteps_per_window=16, seed=1)
    b = evaluate_diffusion(model, windows, get_schedule("cosine"), 0, timesteps_per_window=16, seed=2)
    assert abs(a["nelbo_bpc"] - b["nelbo_bpc"]) < 0.05
    assert 0 <= a["masked_accuracy"] <= 1 and len(a["entropy_bits_by_t"]) == 10
