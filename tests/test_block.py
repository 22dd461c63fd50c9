"""Block diffusion: block-causal attention, its KV cache, the paired x_t / x_0 pass, block-by-block sampling."""
import pytest
import torch
from helpers import tiny_model

from microdllm.diffusion import LinearSchedule, always_predicted, corrupt_blocks, masked_ce_loss, masked_token_nll
from microdllm.model import KVCache, Transformer, block_causal_mask
from microdllm.sampling import denoise


class Uncached(torch.nn.Module):
    """The same model without `extend`: the sampler must then run full forwards (no KV cache)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config = model, model.config

    def forward(self, *a, **kw):
        return self.model(*a, **kw)

    def forward_pair(self, *a):
        return self.model.forward_pair(*a)


def ids(tok, n=64, seed=0):
    return torch.randint(1, tok.vocab_size, (2, n), generator=torch.Generator().manual_seed(seed))


def test_block_of_the_whole_context_is_the_bidirectional_model():
    model, tok = tiny_model(time_embedding=False)
    block = Transformer(model.config.replace(attn_block=model.config.block_size)).eval()
    block.load_state_dict(model.state_dict())
    x = ids(tok)
    assert torch.equal(model(x), block(x))


@torch.no_grad()
def test_block_of_one_with_the_shift_is_a_causal_model():
    model, tok = tiny_model(time_embedding=False, attn_block=1, shift=True)
    assert torch.equal(block_causal_mask(5, 5, 1), torch.ones(5, 5).tril().bool())
    x = ids(tok)
    y = x.clone()
    y[:, 40:] = (y[:, 40:] % (tok.vocab_size - 1)) + 1        # change the future
    a, b = model(x), model(y)
    assert torch.equal(a[:, :41], b[:, :41])                    # character i is read from x[:i] only
    assert not torch.allclose(a[:, 41:], b[:, 41:])
    # the block-diffusion objective at B = 1 is next-character prediction: nothing is masked, all predicted
    xt, targets, _ = corrupt_blocks(x, 1, LinearSchedule(), tok.mask_id, shift=True)
    assert torch.equal(xt, x) and targets.all()
    logits = model.forward_pair(xt, x)
    assert torch.allclose(logits, model(x), atol=1e-5)           # every character from the clean ones before it
    nll = masked_token_nll(logits, x, tok.mask_id).mean()        # the mean next-character loss
    assert float(masked_ce_loss(logits, x, targets, tok.mask_id)) == pytest.approx(float(nll), rel=1e-5)


@pytest.mark.parametrize("shift", [False, True])
def test_the_paired_pass_sees_its_own_noisy_block_and_only_clean_blocks_before(shift):
    model, tok = tiny_model(time_embedding=False, attn_block=8, shift=shift)
    x = ids(tok)
    noisy = x.clone()
    noisy[:, 17:20] = tok.mask_id                                # characters of block 2 (inputs 17-19, or 18-20)
    base = model.forward_pair(noisy, x)
    assert torch.allclose(model.forward_pair(x, x), model(x), atol=1e-5)   # clean in, clean context
    changed = (model.forward_pair(x, x) - base).abs().amax(-1)[0] > 1e-6
    assert changed.nonzero().flatten().tolist() == list(range(16, 24))   # only block 2's predictions move
    other = x.clone()
    other[:, 40:] = tok.mask_id                                  # a later clean block cannot leak backwards
    assert torch.allclose(model.forward_pair(noisy, other)[:, :40], base[:, :40], atol=1e-6)


@pytest.mark.parametrize("kind", [dict(attn_block=4, shift=True), dict(attn_block=8), dict(causal=True)])
def test_kv_cache_gives_the_full_forward(kind):
    model, tok = tiny_model(time_embedding=False, **kind)
    x = ids(tok)[:1]
    full = model(x)
    step = model.config.attn_block or 1
    cache, rows = KVCache(model.config.n_layer), []
    rows.append(model.extend(x, 16, cache, keep=16))               # a prompt of two blocks at once
    for end in range(16 + step, 65, step):
        rows.append(model.extend(x, end, cache, keep=step))
    assert cache.length == 64 and torch.allclose(torch.cat(rows, 1), full, atol=1e-5)


def test_corrupt_blocks_draws_one_level_per_block():
    x = torch.randint(1, 20, (4, 64))
    g = torch.Generator().manual_seed(0)
    xt, targets, u = corrupt_blocks(x, 8, LinearSchedule(), 0, shift=True, u_range=(0.3, 0.8), generator=g)
    assert ((u >= 0.3) & (u <= 0.8)).all()
    assert (u.view(4, 8, 8) == u.view(4, 8, 8)[..., :1]).all()          # constant inside each block
    last = always_predicted(64, 8, True)
    assert targets[:, last].all() and (xt[:, last] == x[:, last]).all()  # predicted, never masked as inputs
    assert torch.equal(targets & ~last, xt == 0)


def test_block_model_writes_block_by_block_from_the_cache():
    model, tok = tiny_model(time_embedding=False, attn_block=8, shift=True)
    prompt = "Once upon"
    states = list(denoise(model, tok, prompt, steps=4, gen_len=30, threshold=None, polish=2, temperature=0.7))
    assert states[-1].done and states[-1].num_masked == 0 and states[-1].text.startswith(prompt)
    assert states[-1].boundaries == (8, 16, 24, 32)
    for s in states[1:-2]:
        written = [i for i, r in enumerate(s.revealed) if r]
        assert all(s.block[0] <= i < s.block[1] for i in written)      # each step writes inside its block
        later = [i for i in range(s.block[1], len(s.tokens))]
        assert all(s.masked[i] for i in later if not s.fixed[i])        # blocks after it are untouched
    plain = list(denoise(Uncached(model), tok, prompt, steps=4, gen_len=30, threshold=None, polish=2, temperature=0.7))
    assert [s.tokens for s in plain] == [s.tokens for s in states]   # the cache changes the cost, not the text
    assert states[-1].positions_evaluated < plain[-1].positions_evaluated
    with pytest.raises(ValueError, match="cannot fill in blanks"):
        next(denoise(model, tok, "a __ b", infill=True))


def test_autoregressive_model_writes_left_to_right_through_denoise():
    model, tok = tiny_model(causal=True)
    cached = list(denoise(model, tok, "Once", gen_len=20, temperature=0.8, seed=2))
    plain = list(denoise(Uncached(model), tok, "Once", gen_len=20, temperature=0.8, seed=2))
    assert [s.tokens for s in cached] == [s.tokens for s in plain] and cached[-1].nfe == 20
    assert cached[-1].positions_evaluated < plain[-1].positions_evaluated


@pytest.mark.parametrize("block", [2, 4])
@pytest.mark.parametrize("threshold", [None, 0.01])
def test_a_blocks_last_character_is_written_with_or_after_the_others(block, threshold):
    # With the shift, a block's last character is read only by the next block: written early, it would
    # help nothing and leave the other characters of its block blind to it.
    model, tok = tiny_model(time_embedding=False, attn_block=block, shift=True)
    states = list(denoise(model, tok, "Once", steps=block, gen_len=24, threshold=threshold, polish=0,
                          remasking="low_confidence", temperature=0.0))
    assert states[-1].done and states[-1].num_masked == 0
    last = always_predicted(len(states[0].tokens), block, True)
    for s in states:
        for p in last.nonzero().flatten().tolist():
            if not s.masked[p]:
                others = [i for i in range(p - block + 1, p) if not s.fixed[i]]
                assert not any(s.masked[i] for i in others), (s.step, p)
    if threshold:                                     # every proposal is sure enough: one evaluation a block
        assert states[-1].nfe == len(states[-1].boundaries)


def test_choose_reveal_holds_the_last_character_back():
    from microdllm.remasking import choose_reveal
    from microdllm.sampling import SamplerConfig

    cfg = SamplerConfig(remasking="low_confidence", threshold=0.5)
    g = torch.Generator().manual_seed(0)
    masked, last = torch.tensor([True, True, True]), torch.tensor([False, False, True])
    p = torch.tensor([0.2, 0.3, 0.99])                 # the last is the surest, yet not first
    assert choose_reveal(cfg, p, p, masked, 1, 1.0, 0.5, g, last).tolist() == [False, True, False]
    sure = torch.tensor([0.6, 0.7, 0.99])              # every other one goes now: the last goes with them
    assert choose_reveal(cfg, sure, sure, masked, 1, 1.0, 0.5, g, last).tolist() == [True, True, True]
    alone = torch.tensor([False, False, True])         # only the last is left
    assert choose_reveal(cfg, p, p, alone, 1, 0.5, 0.0, g, last).tolist() == [False, False, True]
    assert choose_reveal(cfg, p, p, masked, 3, 1.0, 0.0, g, last).all()   # a quota of all takes all


@pytest.mark.parametrize("settings", [dict(steps=4, remasking="low_confidence", threshold=None),
                                      dict(steps=4, remasking="none", threshold=None, temperature=1.0),
                                      dict(steps=2, remasking="low_confidence", threshold=0.3, temperature=0.8)])
def test_a_finished_blocks_cache_is_kept_from_its_last_evaluation(settings):
    # Once a block's inputs are all written (only its last character is left), that evaluation's keys and
    # values are final: the next block then evaluates only its own positions. The text is the same as
    # without any cache, and the ancestral sampler (which may leave the last one masked) still agrees.
    model, tok = tiny_model(time_embedding=False, attn_block=4, shift=True)
    kw = dict(gen_len=40, polish=0, seed=3, lookahead=False, **settings)
    cached = list(denoise(model, tok, "Once upon", **kw))
    plain = list(denoise(Uncached(model), tok, "Once upon", **kw))
    assert [s.tokens for s in cached] == [s.tokens for s in plain]
    assert cached[-1].done and cached[-1].num_masked == 0
    if settings["remasking"] == "low_confidence" and settings["threshold"] is None:
        # every evaluation runs only its own block: the first one also the prompt's 8 inputs before it,
        # then 3 evaluations of block [8, 12), 4 of each of the 9 blocks [12, 48), 1 of the last [48, 49)
        assert cached[-1].nfe == 3 + 9 * 4 + 1
        assert cached[-1].positions_evaluated == 8 + 3 * 4 + 9 * 4 * 4 + 1


@pytest.mark.parametrize("settings", [dict(steps=4, temperature=0.0, threshold=None),
                                      dict(steps=2, temperature=0.9, top_p=0.9, threshold=0.3),
                                      dict(steps=4, temperature=1.0, remasking="none", threshold=None)])
def test_looking_ahead_writes_the_same_text_with_fewer_evaluations(settings):
    # The evaluation that writes a block's last character also runs the next block on the model's guess
    # for it; when the guess is what gets written, the next block's first step needs no evaluation.
    model, tok = tiny_model(time_embedding=False, attn_block=4, shift=True)
    kw = dict(gen_len=40, polish=0, seed=5, remasking="low_confidence") | settings
    ahead = list(denoise(model, tok, "Once upon", lookahead=True, **kw))
    plain = list(denoise(model, tok, "Once upon", lookahead=False, **kw))
    uncached = list(denoise(Uncached(model), tok, "Once upon", **kw))
    assert [s.tokens for s in ahead] == [s.tokens for s in plain] == [s.tokens for s in uncached]
    conf = [torch.tensor([s.confidence for s in run]).nan_to_num(-1) for run in (ahead, plain)]
    assert torch.allclose(*conf, atol=1e-5)
    saved = plain[-1].nfe - ahead[-1].nfe
    hits = sum(b.nfe == a.nfe for a, b in zip(ahead, ahead[1:]) if b.step > 0 and b.num_masked < a.num_masked)
    assert saved == hits > 0 if settings["temperature"] == 0 else saved == hits >= 0
    assert ahead[-1].looked_ahead == saved and plain[-1].looked_ahead == 0
    from microdllm import render

    line = render.status_line(ahead[-1])
    assert (f"({saved} more steps from look-aheads)" in line) == (saved > 0) and "look-ahead" not in render.status_line(plain[-1])


def test_a_guess_that_is_not_written_is_not_used():
    # A model whose every guess is wrong: every block's first step still gets its own evaluation.
    model, tok = tiny_model(time_embedding=False, attn_block=4, shift=True)
    kw = dict(gen_len=24, polish=0, steps=4, temperature=0.0, threshold=None, remasking="low_confidence")
    plain = list(denoise(model, tok, "Once upon", lookahead=False, **kw))
    from microdllm import sampling

    real = sampling.Canvas.note
    written = torch.tensor(plain[-1].tokens)
    never = written % (tok.vocab_size - 1) + 1       # at each position, a character other than the one written

    def wrong(self, pos, logits, before):
        real(self, pos, logits, before)
        guessed = self.best > 0
        self.best[guessed] = never[guessed]          # a guess that is never written
    sampling.Canvas.note = wrong
    try:
        ahead = list(denoise(model, tok, "Once upon", lookahead=True, **kw))
    finally:
        sampling.Canvas.note = real
    assert [s.tokens for s in ahead] == [s.tokens for s in plain] and ahead[-1].nfe == plain[-1].nfe
    assert ahead[-1].positions_evaluated > plain[-1].positions_evaluated   # it looked ahead, in vain
