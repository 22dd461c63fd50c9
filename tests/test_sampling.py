"""The denoising generator: invariants for every strategy, the classic sampler against the original."""
import json
import math

import pytest
import torch
from helpers import ROOT, SHARED, tiny_model

from microdllm.checkpoint import load_checkpoint
from microdllm.config import get_preset
from microdllm.model import Transformer
from microdllm.original import import_original
from microdllm.remasking import spread_out
from microdllm.sampling import POLISH_CONFIDENCE, REMASKING_CHOICES, SAMPLER_PRESETS, denoise, generate

FIXTURE = ROOT / "tests" / "fixtures" / "original-imported"
ORIGINAL = SHARED / "fixtures" / "original-checkpoint"


class Counting(torch.nn.Module):
    """Wraps a model and counts real forward calls."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config, self.calls = model, model.config, 0

    def forward(self, *a):
        self.calls += 1
        self.times = getattr(self, "times", []) + [int(a[1]) if len(a) > 1 and a[1] is not None else None]
        return self.model(*a)


@pytest.fixture(scope="module")
def lm():
    model, tok = tiny_model(seed=1)
    return Counting(model), tok


def check_invariants(states, tok, prompt_ids):
    first, last = states[0], states[-1]
    assert first.step == 0 and all(first.masked[i] for i, f in enumerate(first.fixed) if not f)
    assert last.done and last.num_masked == 0 and sum(s.done for s in states) == 1
    for prev, s in zip(states, states[1:]):
        assert s.step == prev.step + 1
        assert s.text == tok.decode(s.tokens)
        assert all(s.tokens[i] == t for i, t in prompt_ids.items())          # fixed text never changes
        if prev.num_masked == s.num_masked == 0:   # a polish pass: `revealed` marks what it rewrote
            assert s.revealed == tuple(a != b for a, b in zip(prev.tokens, s.tokens))
        else:
            assert s.revealed == tuple(a and not b for a, b in zip(prev.masked, s.masked))
        assert s.remasked == tuple(b and not a for a, b in zip(prev.masked, s.masked))
        assert s.nfe >= prev.nfe and s.u <= prev.u
    assert not any(m for m, f in zip(last.masked, last.fixed) if f)


@pytest.mark.parametrize("strategy", REMASKING_CHOICES)
@pytest.mark.parametrize("remask_ratio", [0.0, 0.5, 1.0])
def test_invariants_for_every_strategy(lm, strategy, remask_ratio):
    model, tok = lm
    prompt = "Once upon a time"
    model.calls = 0
    states = list(denoise(model, tok, prompt, remasking=strategy, remask_ratio=remask_ratio, steps=12,
                          gen_len=30, temperature=0.9, top_k=20, top_p=0.95, seed=5, threshold=0.5))
    check_invariants(states, tok, dict(enumerate(tok.encode(prompt))))
    assert states[-1].nfe == model.calls          # nfe counts real model evaluations
    assert states[-1].text.startswith(prompt) and len(states[-1].text) == len(prompt) + 30
    again = list(denoise(model, tok, prompt, remasking=strategy, remask_ratio=remask_ratio, steps=12,
                         gen_len=30, temperature=0.9, top_k=20, top_p=0.95, seed=5, threshold=0.5))
    assert [s.tokens for s in again] == [s.tokens for s in states]          # same seed, same trace


def test_masked_count_follows_the_schedule_and_steps_are_independent_of_T(lm):
    model, tok = lm
    model.times = []
    states = list(denoise(model, tok, "Hi", steps=10, gen_len=40, remasking="low_confidence", threshold=None,
                          reveal_schedule=None, polish=0))  # the model's own (cosine) schedule
    masks = [s.num_masked for s in states]
    assert masks == sorted(masks, reverse=True) and masks[0] == 40 and masks[-1] == 0
    expected = [int((1 - math.cos(math.pi / 2 * (10 - i) / 10)) * 40) for i in range(1, 11)]
    assert masks[1:] == expected[: expected.index(0) + 1]  # stops as soon as nothing is masked
    assert model.times[:3] == [100, 90, 80]                # the model is told u = 1, 0.9, 0.8 (T = 100)


def test_linear_reveal_schedule_tells_the_model_its_training_time(lm):
    model, tok = lm
    model.times = []
    states = list(denoise(model, tok, "Hi", steps=10, gen_len=40, remasking="random", threshold=None,
                          reveal_schedule="linear", polish=0))
    assert [s.num_masked for s in states] == [40, 36, 32, 28, 24, 20, 16, 12, 8, 4, 0]  # 4 per step
    # Linear leaves a share u masked; the cosine-trained model saw that share at 2/pi * acos(1 - u).
    assert model.times == [round(100 * 2 / math.pi * math.acos(1 - (10 - i) / 10)) for i in range(10)]


def test_threshold_reveals_confident_positions_and_skips_evaluations(lm):
    model, tok = lm
    plain = list(denoise(model, tok, "Hi", steps=20, gen_len=40, threshold=None, polish=0))
    model.calls = 0
    fast = list(denoise(model, tok, "Hi", steps=20, gen_len=40, threshold=0.05, polish=0))
    assert fast[-1].nfe == model.calls < plain[-1].nfe                 # fewer model evaluations
    for s in fast[1:]:
        revealed = [c for c, r in zip(s.confidence, s.revealed) if r]
        assert len(revealed) >= 2 or s.nfe < s.step                   # beyond the quota of 2 ...
    assert list(denoise(model, tok, "Hi", steps=20, gen_len=40, threshold=1.0, polish=0))[-1].tokens == plain[-1].tokens


def test_infilling_fills_only_the_masks(lm):
    model, tok = lm
    template = "Once upon a time, ___ went to the ____."
    states = list(denoise(model, tok, template, infill=True, steps=4))
    fixed = {i: tok.encode(c)[0] for i, c in enumerate(template) if c != "_"}
    check_invariants(states, tok, fixed)
    assert len(states[-1].text) == len(template) and states[-1].num_masked == 0


def test_block_decoding_goes_left_to_right(lm):
    model, tok = lm
    states = list(denoise(model, tok, "O", steps=8, gen_len=32, block_len=8))
    for s in states:
        revealed = [i for i, r in enumerate(s.revealed) if r]
        if revealed:  # each step works inside one block of 8 positions
            assert (revealed[0] - 1) // 8 == (revealed[-1] - 1) // 8


def test_spread_out_keeps_picks_apart_and_still_fills_its_quota():
    score = torch.rand(100, generator=torch.Generator().manual_seed(0))
    allowed = torch.ones(100, dtype=torch.bool)
    picks = spread_out(score, 10, allowed).nonzero().squeeze(-1).tolist()
    assert len(picks) == 10 and min(b - a for a, b in zip(picks, picks[1:])) >= 5   # half of 100 / 10
    allowed[::3] = False                                                          # only some positions open
    picks = spread_out(score, 60, allowed)
    assert int(picks.sum()) == 60 and not (picks & ~allowed).any()                # too many to keep apart
    assert spread_out(score, 0, allowed).sum() == 0


def test_spread_reveals_characters_far_apart_in_each_step(lm):
    model, tok = lm
    states = list(denoise(model, tok, "", remasking="spread", steps=8, gen_len=64, threshold=None,
                          reveal_schedule="linear"))
    first = [i for i, r in enumerate(states[1].revealed) if r]
    assert len(first) == 8 and min(b - a for a, b in zip(first, first[1:])) >= 4   # half of 64 / 8
    assert states[-1].num_masked == 0


class Corrector(torch.nn.Module):
    """A fake denoiser: its first `draft_calls` evaluations write 'b' everywhere; later ones (the
    polish passes re-reading the draft) prefer 'a' with probability `p_a`."""

    def __init__(self, tok, p_a, draft_calls):
        super().__init__()
        self.tok, self.p_a, self.draft_calls, self.calls = tok, p_a, draft_calls, 0
        self.config = get_preset("test", vocab_size=tok.vocab_size)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t=None):
        self.calls += 1
        a, b = self.tok.encode("ab")
        probs = torch.full((*x.shape, self.tok.vocab_size), 1e-6)
        if self.calls > self.draft_calls:
            probs[..., a], probs[..., b] = self.p_a, 1 - self.p_a
        else:
            probs[..., b] = 1.0
        return probs.log()


@pytest.mark.parametrize("p_a", [0.9, POLISH_CONFIDENCE - 0.1])
def test_polish_rereads_the_draft_and_rewrites_only_what_the_model_is_sure_of(lm, p_a):
    _, tok = lm
    model = Corrector(tok, p_a, draft_calls=4)   # 4 steps, no early reveals: 4 evaluations
    states = list(denoise(model, tok, "ab ab", gen_len=24, steps=4, threshold=None, polish=3))
    check_invariants(states, tok, dict(enumerate(tok.encode("ab ab"))))
    draft, passes = states[-4], states[-3:]
    assert draft.text == "ab ab" + "b" * 24 and not draft.done      # the draft, before polishing
    assert [s.nfe - draft.nfe for s in passes] == [1, 2, 3] and model.calls == states[-1].nfe
    assert all(s.num_masked == 0 and s.u == 0.0 for s in passes) and states[-1].total_steps == 4 + 3
    if p_a > POLISH_CONFIDENCE:   # every written character was re-read once and rewritten; the prompt kept
        assert states[-1].text == "ab ab" + "a" * 24
        assert [sum(s.revealed) for s in passes] == [8, 8, 8]
    else:                         # not sure enough: nothing changes
        assert states[-1].text == draft.text and not any(any(s.revealed) for s in passes)


def test_polish_is_off_for_classic_and_checked(lm):
    model, tok = lm
    assert SAMPLER_PRESETS["classic"].polish == 0
    with pytest.raises(ValueError, match="polish passes must be between 0 and"):
        next(denoise(model, tok, "Hi", polish=-1))


def test_threshold_stops_as_soon_as_nothing_is_masked(lm):
    model, tok = lm
    model.calls = 0
    states = list(denoise(model, tok, "O", remasking="low_confidence", threshold=1e-9, steps=50, gen_len=20, polish=0))
    assert model.calls == 1 and states[-1].done and states[-1].step == 1  # everything passes: one evaluation
    polished = list(denoise(model, tok, "O", remasking="low_confidence", threshold=1e-9, steps=50, gen_len=20, polish=2))
    assert polished[-1].nfe == 3 and polished[-1].step == 3 and sum(s.done for s in polished) == 1  # then 2 passes


def test_caller_can_stop_any_time(lm):
    model, tok = lm
    model.calls = 0
    gen = denoise(model, tok, "O", steps=50, gen_len=50)
    for s in gen:
        if s.step == 3:
            break
    gen.close()
    assert model.calls <= 3


def test_empty_prompt_is_unconditional(lm):
    model, tok = lm
    assert generate(model, tok, "", steps=4, gen_len=10).num_masked == 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(prompt="a" * 64), "at most 63"),
    (dict(prompt="abc\u2603"), "unknown character"),
    (dict(steps=0), "between 1 and"),
    (dict(temperature=-1), ">= 0"),
    (dict(gen_len=1000), "between 1 and"),
    (dict(threshold=0), r"\(0, 1\]"),
    (dict(reveal_schedule="wavy"), "unknown reveal schedule"),
    (dict(threshold=1.5), r"\(0, 1\]"),
    (dict(remask_ratio=2), r"\[0, 1\]"),
    (dict(remasking="magic"), "unknown remasking strategy"),
    (dict(prompt="no masks", infill=True), "no masks"),
])
def test_bad_input_gives_one_clear_error(lm, kwargs, message):
    model, tok = lm
    kwargs = {"prompt": "Hi", **kwargs}
    with pytest.raises(ValueError, match=message):
        next(denoise(model, tok, **kwargs))


def check_classic(ck):
    refs = json.loads((FIXTURE / "reference_outputs.json").read_text())
    for ref in refs:
        states = list(denoise(ck.model, ck.tokenizer, ref["prompt"], SAMPLER_PRESETS["classic"]))
        assert states[-1].text == ref["text"]
        assert states[-1].nfe == 101 and len(ref["text"]) == 256
        by_t = {f"t={100 - s.step + 1}": s.num_masked for s in states[1:101]}
        for label in ("t=100", "t=75", "t=50", "t=25", "t=1"):
            assert by_t[label] == ref["masked_after_step"][label]


def test_classic_sampler_reproduces_the_original_greedy_output():
    check_classic(load_checkpoint(FIXTURE))


@pytest.mark.skipif(not (ORIGINAL / "model_stories.pt").exists(), reason="shared original checkpoint not present")
def test_import_original_then_classic(tmp_path):
    out = import_original(ORIGINAL / "model_stories.pt", ORIGINAL / "stories.txt", tmp_path / "imported")
    ck = load_checkpoint(out)
    assert ck.model.num_params() == 3_209_472
    check_classic(ck)


def test_import_original_format_round_trip(tmp_path):
    """A checkpoint in the original's torch.save layout converts with every weight intact."""
    text = "Once upon a time, a cat sat.\n"
    vocab_size = len(set(text)) + 1
    torch.manual_seed(0)
    src = Transformer(get_preset("test", vocab_size=vocab_size, n_head=1, block_size=256))
    torch.save({"iter": 5, "model_state_dict": src.state_dict(), "loss": 1.0}, tmp_path / "model.pt")
    (tmp_path / "data.txt").write_text(text)
    ck = load_checkpoint(import_original(tmp_path / "model.pt", tmp_path / "data.txt", tmp_path / "out"))
    assert all(torch.equal(v, ck.model.state_dict()[k]) for k, v in src.state_dict().items())
    assert ck.metadata["original_iter"] == 5
    (tmp_path / "other.txt").write_text("xyz")
    with pytest.raises(Exception, match="vocabulary"):
        import_original(tmp_path / "model.pt", tmp_path / "other.txt", tmp_path / "out2")


def test_left_to_right_baseline_is_the_same_stream():
    from microdllm.sampling import left_to_right

    model, tok = tiny_model(causal=True)
    counting = Counting(model)
    states = list(left_to_right(counting, tok, "Once", gen_len=12, temperature=0.8, seed=3))
    check_invariants(states, tok, dict(enumerate(tok.encode("Once"))))
    assert len(states) == 13 and states[-1].nfe == counting.calls == 12
    for k, s in enumerate(states[1:], start=1):  # exactly one character per step, in order
        assert [i for i, r in enumerate(s.revealed) if r] == [4 + k - 1]
    assert [s.tokens for s in left_to_right(model, tok, "Once", gen_len=12, temperature=0.8, seed=3)] == \
        [s.tokens for s in states]
    assert generate_lr_empty(model, tok).num_masked == 0
    with pytest.raises(ValueError, match="causal"):
        next(left_to_right(tiny_model()[0], tok, "Once"))


def generate_lr_empty(model, tok):
    from microdllm.sampling import left_to_right

    *_, last = left_to_right(model, tok, "", gen_len=5)
    return last


def test_the_confidence_of_a_sampled_character_is_the_models_own():
    """A temperature or a top-p changes what is drawn, never how sure the model looks: the probability
    that the remasking and the threshold read is the full softmax (as LLaDA's), not the filtered one."""
    from microdllm.remasking import propose

    logits = torch.tensor([[0.0, 2.0, 1.9, 0.5, -1.0], [0.0, 5.0, 0.1, 0.0, 0.0]])
    cfg = SAMPLER_PRESETS["default"].replace(temperature=0.7, top_p=0.5, remasking="low_confidence")
    tokens, p_token, score = propose(logits, cfg, torch.Generator().manual_seed(0), mask_id=0)
    model = logits.softmax(-1)
    assert torch.allclose(p_token, model.gather(-1, tokens[:, None]).squeeze(-1))
    assert p_token[0] < 0.5 and torch.equal(score, p_token)   # top-p 0.5 keeps one token; it is not sure


def test_entropy_bounded_takes_the_surest_while_the_rest_sum_under_gamma():
    from microdllm.remasking import entropy_bounded
    h = torch.tensor([0.5, 0.1, 2.0, 0.2, 0.3, 9.0])
    allowed = torch.tensor([True, True, True, True, True, False])
    picked = lambda gamma: entropy_bounded(h, allowed, gamma).nonzero().flatten().tolist()   # noqa: E731
    assert picked(0.0) == [1]                          # always the surest one
    assert picked(0.3) == [1, 3, 4]                    # 0.1 + 0.2 <= 0.3 before the third
    assert picked(0.6) == [0, 1, 3, 4]
    assert picked(100.0) == [0, 1, 2, 3, 4]            # never a position that is not allowed


@pytest.mark.parametrize("block", [None, 8])
def test_an_entropy_bound_reveals_more_a_step_and_a_huge_one_finishes_each_block_in_one(block):
    model, tok = tiny_model(seed=3, **({"attn_block": block, "time_embedding": False} if block else {}))
    kw = dict(gen_len=32, steps=32, threshold=1, polish=0, temperature=0, remasking="low_confidence")
    plain = generate(model, tok, "Once", **kw)
    some = generate(model, tok, "Once", entropy_bound=1.0, **kw)
    every = generate(model, tok, "Once", entropy_bound=100.0, **kw)
    assert every.nfe < some.nfe <= plain.nfe
    blocks = len({p // block for p in range(4, 4 + 32)}) if block else 1       # the text's 32 after "Once"
    assert every.nfe <= blocks + 1 and not any(every.masked)
    with pytest.raises(ValueError, match="entropy bound"):
        generate(model, tok, "Once", entropy_bound=-1.0, **kw)
