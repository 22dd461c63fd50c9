"""Serving options: int8 Linear weights (close to the float model, same stream), thread defaults."""
import os

import torch
from helpers import ROOT, tiny_model

from microdllm.checkpoint import load_checkpoint
from microdllm.sampling import denoise, generate
from microdllm.serving import default_threads, quantize_int8


def test_int8_copy_is_close_to_the_float_model_and_leaves_it_alone():
    model, tok = tiny_model(seed=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quantize_int8(model)
    x, t = torch.randint(1, tok.vocab_size, (2, 40)), torch.tensor([10, 90])
    with torch.inference_mode():
        ref, out = model(x, t), q(x, t)
    assert not any(isinstance(m, torch.nn.Linear) and type(m) is torch.nn.Linear for m in q.modules())
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()          # int8: small, bounded differences
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the float model is untouched
    assert q.num_params() == model.num_params() and q.config == model.config


def test_int8_bundled_model_writes_through_the_same_stream():
    ck = load_checkpoint(ROOT / "checkpoints" / "tinystories-tiny")
    q = quantize_int8(ck.model)
    states = list(denoise(q, ck.tokenizer, "Once upon a time", gen_len=40, steps=8, schedule=ck.schedule))
    assert states[-1].done and states[-1].num_masked == 0 and states[-1].text.startswith("Once upon a time")
    fp = generate(ck.model, ck.tokenizer, "Once upon a time", gen_len=40, steps=8, schedule=ck.schedule)
    same = sum(a == b for a, b in zip(fp.text, states[-1].text)) / len(fp.text)
    assert same > 0.5   # mostly the same characters as the float model (greedy, same seed)


def test_thread_default_shares_the_cores():
    cores = os.cpu_count() or 1
    assert default_threads(1) == min(4, cores)
    assert default_threads(cores) == 1 and default_threads(10 * cores) == 1
