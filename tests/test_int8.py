"""int8 Linear weights for serving (int8.py): calibrated input ranges, each row computed on its own, close
to the float model, served through the same stream, and float kept where the ops are missing."""
import dataclasses
import logging

import pytest
import torch
from helpers import ROOT, tiny_model

from microdllm import serving
from microdllm.checkpoint import load_checkpoint
from microdllm.diffusion import get_schedule
from microdllm.int8 import Int8Linear, input_ranges, quantize_int8
from microdllm.packed import PackedLinear
from microdllm.sampling import defaults_for, denoise, generate
from microdllm.tokenizer import CharTokenizer

BLOCK16 = ROOT / "checkpoints" / "tinystories-tiny-block16"


def test_input_ranges_are_what_each_layer_saw():
    model, tok = tiny_model(seed=1)
    x = torch.randint(1, tok.vocab_size, (2, 30))
    seen = {}
    hooks = [m.register_forward_pre_hook(lambda m, a, n=n: seen.__setitem__(n, a[0].clone()))
             for n, m in model.named_modules() if type(m) is torch.nn.Linear]
    with torch.inference_mode():
        model(x)
    for h in hooks:
        h.remove()
    ranges = input_ranges(model, lambda m: m(x))
    assert set(ranges) == set(seen) and "lm_head" in ranges
    for name, inputs in seen.items():
        assert ranges[name] == (min(inputs.min().item(), 0.0), max(inputs.max().item(), 0.0))
    assert not any(m._forward_pre_hooks for m in model.modules())     # the hooks are gone


def test_an_int8_layer_computes_each_row_on_its_own_and_close_to_float():
    # A fixed input scale: row i of a call of 16 rows is bitwise the call of row i alone (with a scale
    # per call, each row's numbers would depend on the rows beside it: the verifier's on the draft's).
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48, bias=False)
    x = torch.randn(16, 64)
    x[3] *= 5                                                   # a row of a much wider range than the rest
    q = Int8Linear(linear, x.min().item(), x.max().item())
    with torch.inference_mode():
        together, ref = q(x), linear(x)
        alone = torch.cat([q(x[i:i + 1]) for i in range(16)])
    assert torch.equal(together, alone)
    assert (together - ref).abs().max() < 0.05 * ref.abs().max()
    with pytest.raises(ValueError, match="without a bias"):
        Int8Linear(torch.nn.Linear(4, 4), -1, 1)


def test_int8_copy_is_close_to_the_float_model_and_leaves_it_alone():
    model, tok = tiny_model(seed=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, t = torch.randint(1, tok.vocab_size, (2, 40)), torch.tensor([10, 90])
    q = quantize_int8(model, lambda m: m(x, t))
    with torch.inference_mode():
        ref, out = model(x, t), q(x, t)
    assert not any(type(m) is torch.nn.Linear for m in q.modules())
    low, high = input_ranges(model, lambda m: m(x, t))["lm_head"]
    assert q.lm_head.scale == pytest.approx((high - low) / 127)     # the range seen
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()          # int8: small, bounded differences
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the float model is untouched
    assert q.num_params() == model.num_params() and q.config == model.config and q.int8


def test_a_served_int8_checkpoint_is_calibrated_on_its_own_stories_and_writes_through_the_same_stream():
    ck = load_checkpoint(ROOT / "checkpoints" / "tinystories-tiny")
    q = serving.serve_checkpoint(ck, int8=True)
    assert q.model.int8 and not any(isinstance(m, (torch.nn.Linear, PackedLinear)) for m in q.model.modules())
    states = list(denoise(q.model, q.tokenizer, "Once upon a time", gen_len=40, steps=8, schedule=q.schedule))
    assert states[-1].done and states[-1].num_masked == 0 and states[-1].text.startswith("Once upon a time")
    fp = generate(ck.model, ck.tokenizer, "Once upon a time", gen_len=40, steps=8, schedule=ck.schedule)
    same = sum(a == b for a, b in zip(fp.text, states[-1].text)) / len(fp.text)
    assert same > 0.5   # mostly the same characters as the float model (greedy, same seed)


def test_int8_draft_and_verify_writes_the_int8_verifiers_greedy_text_on_the_race_opening():
    # Each row on its own: the verifier inside a round of 16 rows is the model that writes left to right.
    # (Over the race's 16 openings, 200 characters each, the two part on 3: the float kernels' last bits,
    # differing between one row and many, tip an input's rounding; docs/performance.md, stop 22.)
    ck = serving.serve_checkpoint(load_checkpoint(BLOCK16), int8=True)
    cfg = defaults_for(ck.model_config).replace(temperature=0, gen_len=120)
    verify = generate(ck.model, ck.tokenizer, "Once upon a time", cfg, ngram=ck.ngram)
    alone = generate(ck.model, ck.tokenizer, "Once upon a time", cfg.replace(mode="left-to-right"))
    assert verify.text == alone.text and verify.nfe < alone.nfe / 2


def test_without_the_int8_ops_a_checkpoint_is_served_float_and_packed(monkeypatch, caplog):
    def missing(model, calibrate):
        raise RuntimeError("Could not run 'quantized::linear_prepack' with arguments from the 'CPU' backend")
    monkeypatch.setattr(serving, "quantize_int8", missing)
    ck = load_checkpoint(BLOCK16)
    with caplog.at_level(logging.WARNING, logger="microdllm.serving"):
        served = serving.serve_checkpoint(ck, int8=True)
    assert not getattr(served.model, "int8", False) and isinstance(served.model.lm_head, PackedLinear)
    assert "could not serve" in caplog.text and "serving float" in caplog.text


def test_a_model_is_calibrated_on_what_of_the_openings_its_vocabulary_has():
    # A checkpoint whose vocabulary lacks most of sample-eval's openings ('O', 'L', ',' ...) is still served
    # int8: its stories start from the characters it knows (a calibration that raised would serve float).
    tok = CharTokenizer.from_text("a bit of text. the end.")
    model, _ = tiny_model(tok, seed=4)
    ck = dataclasses.replace(load_checkpoint(BLOCK16), model=model, tokenizer=tok, schedule=get_schedule("cosine"),
                             ngram=None)
    served = serving.serve_checkpoint(ck, int8=True)
    assert served.model.int8
    assert all(m.scale > 1e-6 for m in served.model.modules() if isinstance(m, Int8Linear))  # every layer saw text
