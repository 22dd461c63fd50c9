"""bench.distill_drafter: the teacher's marginals and the student's windows are the sampler's."""
from __future__ import annotations

import torch
from helpers import tiny_model

from bench.distill_drafter import teacher_marginals, window_kl, windows_as_drafted
from microdllm.model import KVCache

CLEAN_CAUSAL = dict(time_embedding=False, shift=True, attn_block=8, clean_causal=True)


def _dist(logits: torch.Tensor, mask_id: int) -> torch.Tensor:
    return logits.float().index_fill(-1, torch.tensor([mask_id]), float("-inf")).softmax(-1)


def test_the_tree_of_continuations_is_the_causal_half_on_each_path(monkeypatch):
    # One evaluation a character for every anchor and path at once (a tree of attention, a KV cache): each
    # path's distributions must be the plain causal forward of the text before its anchor + its own draws.
    model, tok = tiny_model(**CLEAN_CAUSAL)
    rows, anchors = torch.randint(1, tok.vocab_size, (2, 40)), torch.tensor([10, 15, 30])
    draws, multinomial = [], torch.multinomial

    def recorded(*a, **k):
        draws.append(multinomial(*a, **k))
        return draws[-1]

    monkeypatch.setattr(torch, "multinomial", recorded)
    with torch.no_grad():
        p, m = teacher_marginals(model, rows, anchors, 4, 1, tok.mask_id, torch.Generator().manual_seed(0))
    drawn = torch.cat([d.view(2, -1, 1) for d in draws], 2)                 # (rows, anchors, 3) with 1 path
    assert m.shape == (2, 3, 4, tok.vocab_size) and torch.allclose(p, _dist(model(rows), tok.mask_id), atol=1e-5)
    with torch.no_grad():
        for r in range(2):
            for i, a in enumerate(anchors.tolist()):
                path = torch.cat([rows[r, :a], drawn[r, i]])[None]
                plain = _dist(model(torch.cat([path, path[:, -1:]], 1)), tok.mask_id)[0, a:a + 4]
                assert torch.allclose(m[r, i], plain, atol=1e-5)


def test_the_students_blocks_are_the_samplers_merged_windows():
    # Blocks of W in the x_t (+) x_0 pass, all masked but the character the next block's first input reads,
    # must be exactly the window a merged round drafts behind the same text (model.verify_and_draft).
    model, tok = tiny_model(**CLEAN_CAUSAL)
    rows = torch.randint(1, tok.vocab_size, (1, 40))
    with torch.no_grad():
        drafted = model(windows_as_drafted(rows, 5, tok.mask_id), clean=rows, block=5)
        for a in (10, 25):
            reads = torch.cat([torch.tensor([-1]), rows[0, :a]])
            ids = torch.cat([rows[0, a - 1:a], torch.full((4,), tok.mask_id)])
            _, (window,) = model.verify_and_draft(reads, KVCache(model.config.n_layer), [(a, ids)])
            assert torch.allclose(drafted[0, a:a + 5], window, atol=1e-5)


def test_window_kl_is_zero_for_the_windows_own_distribution_and_positive_otherwise():
    model, tok = tiny_model(**CLEAN_CAUSAL)
    rows, anchors = torch.randint(1, tok.vocab_size, (2, 30)), torch.tensor([10, 20])
    with torch.no_grad():
        own = _dist(model(windows_as_drafted(rows, 5, tok.mask_id), clean=rows, block=5), tok.mask_id)
    m = own[:, anchors[:, None] + torch.arange(5)]
    assert max(window_kl(model, rows, anchors, m, tok.mask_id)) < 1e-4
    other = torch.zeros_like(m)
    other[..., 1] = 1.0
    assert min(window_kl(model, rows, anchors, other, tok.mask_id)) > 0.1
