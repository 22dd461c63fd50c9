"""Linear weights packed for oneDNN (packed.py): the same numbers by either kernel, the plain model left alone,
and what a served checkpoint gets."""
import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import ROOT, tiny_model

from microdllm.checkpoint import load_checkpoint
from microdllm.packed import PACKED_MIN_ROWS, PackedLinear, can_pack, pack_linears
from microdllm.sampling import denoise
from microdllm.serving import serve_checkpoint

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN")


@pytest.mark.parametrize("rows", [1, PACKED_MIN_ROWS - 1, PACKED_MIN_ROWS, 17, 64])
def test_a_packed_linear_computes_the_plain_one_at_every_row_count(rows):
    torch.manual_seed(rows)
    linear = torch.nn.Linear(32, 48, bias=False)
    packed, x = PackedLinear(linear), torch.randn(1, rows, 32)
    with torch.inference_mode():
        assert torch.allclose(packed(x), F.linear(x, linear.weight), atol=1e-5, rtol=1e-5)
        assert torch.allclose(packed(x[0]), F.linear(x[0], linear.weight), atol=1e-5, rtol=1e-5)   # 2-D as well


def test_the_kernel_is_chosen_by_rows_and_never_under_autograd(monkeypatch):
    linear = torch.nn.Linear(16, 16, bias=False)
    packed, calls = PackedLinear(linear), []
    real = torch.ops.mkldnn._linear_pointwise
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", lambda *a: calls.append(a[0].shape) or real(*a))
    with torch.inference_mode():
        packed(torch.randn(1, 1, 16))
        packed(torch.randn(1, PACKED_MIN_ROWS, 16))
    x = torch.randn(1, 8, 16, requires_grad=True)
    packed(x).sum().backward()                                 # a gradient flows through the plain weight
    assert calls == [torch.Size([1, PACKED_MIN_ROWS, 16])]
    assert linear.weight.grad is not None and x.grad is not None


def test_pack_linears_copies_the_model_shares_its_weights_and_leaves_it_alone():
    model, tok = tiny_model(seed=1)
    before = copy.deepcopy(model.state_dict())
    packed = pack_linears(model)
    assert packed is not model and packed.config == model.config
    assert not any(type(m) is torch.nn.Linear for m in packed.modules())
    assert all(type(m) is torch.nn.Linear for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert packed.state_dict().keys() == model.state_dict().keys()     # saves as the plain model does
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = torch.randint(1, tok.vocab_size, (1, 40))
    with torch.inference_mode():
        assert torch.allclose(packed(x), model(x), atol=1e-4)


def test_what_cannot_be_packed_is_served_as_it_is():
    model, _ = tiny_model(seed=2)
    half = copy.deepcopy(model).to(torch.bfloat16)
    assert not can_pack(half) and pack_linears(half) is half
    assert can_pack(model)


def test_a_served_checkpoint_is_packed_unless_int8_or_compiled():
    ck = load_checkpoint(ROOT / "checkpoints" / "tinystories-tiny-block16")
    kinds = lambda m: {type(x).__name__ for x in m.modules()}       # noqa: E731
    assert "PackedLinear" in kinds(serve_checkpoint(ck).model)
    assert "PackedLinear" not in kinds(serve_checkpoint(ck, pack=False).model)
    assert "PackedLinear" not in kinds(serve_checkpoint(ck, int8=True).model)
    assert "PackedLinear" not in kinds(ck.model)                   # the loaded checkpoint is left alone


def test_the_served_bundled_model_writes_the_same_greedy_text_every_way():
    """Draft and verify evaluates many rows (oneDNN), left to right one (MKL): the text is the same."""
    ck = serve_checkpoint(load_checkpoint(ROOT / "checkpoints" / "tinystories-tiny-block16"))
    greedy = dict(gen_len=60, temperature=0.0, seed=0)
    for prompt in ("Once upon a time", "Tom had a red"):
        texts = {mode: list(denoise(ck.model, ck.tokenizer, prompt, mode=mode, ngram=ck.ngram, **greedy))[-1]
                 for mode in ("verify", "left-to-right")}
        assert texts["verify"].text == texts["left-to-right"].text
        assert texts["verify"].nfe < texts["left-to-right"].nfe
