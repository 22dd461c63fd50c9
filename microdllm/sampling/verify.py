"""Draft and verify: self-speculative decoding with one clean-causal block model.

The network has two halves that share every weight (model.py, `clean_causal`): its block half drafts
a window of characters from masks, all at once; its clean half reads text causally, so it is an
autoregressive model: the verifier. A round (speculative sampling, Leviathan et al. 2023, Alg. 1;
one network drafting and checking, TiDAR, Liu et al. 2025):

    1. the verifier reads the draft d_1..d_k behind the text: its p_1..p_{k+1}, one evaluation
    2. keep d_i while it passes: with probability min(1, p_i(d_i) / q_i(d_i)), q_i the draft's
       distribution (greedy: while d_i is the verifier's own first choice)
    3. at the first that fails, write a character drawn from the rest, max(p_i - q_i, 0), instead;
       if all pass, one more drawn from p_{k+1}
    4. merged: the same evaluation drafts the next window behind the draft as if all of it is kept,
       and (outcome windows) one behind each way the check can fail: d_1 turned down, d_2, ...; each
       window sees the text up to where it starts, its first position (the verifier's) masked. The
       window for what the check decided is the next draft; if it had none, the next draft is empty.
       When not every way gets a window, the likeliest do, by the draft's own odds (`_ends`)

With `tree`, a round checks a tree of the window's likeliest paths instead (draft.py): the verifier reads
every node behind its ancestors in the same one evaluation, steps 2-3 become its own draws walking down
the tree, and any node the walk may stop on can have the next window.

So the text follows the verifier's distribution, and greedy text is exactly the verifier's greedy
text. Every round writes at least one character; a round with an empty draft is one step of the
autoregressive model, and without a window that is all there is: the network's own left-to-right mode.
Unmerged, drafting and checking are evaluations of their own: two a round.

Same protocol as reveal.py: each step yields (x before it, u after it, whether the run is over, False).
"""
from __future__ import annotations

from typing import Iterator

import torch

from ..remasking import target_distribution, without_mask
from .canvas import Canvas
from .config import SamplingError
from .draft import EMPTY, Coupling, Draft, drawn_path, likeliest_ends, likeliest_tree, speculative, walk

WINDOW_BUDGET = 64      # window positions an evaluation may carry: outcome windows stop there


def draft_and_verify(c: Canvas, window: int, merge: bool = True, outcomes: int = 0, tree: int = 0) -> Iterator[tuple]:
    """Write every masked position of the canvas (all after its text) in rounds; window 0: left to right.
    outcomes: how many ways a check can end get a window besides the likeliest (kept whole, or the first
    drafted character turned down, the second, ...): the likeliest 1 + outcomes of them (`likeliest_ends`).
    tree: check a tree of this many drafted characters, the window's likeliest paths, instead of one path
    drawn from it (draft.py)."""
    n, end = frontier(c), len(c.x)
    total, c.boundaries, draft = end - n, (), EMPTY
    while n < end:
        if not merge and window and not len(draft.chars) and end - n > 1:
            draft = _draft(c, n, window, end, tree)        # a pass of its own
            c.step += 1
            yield c.x.clone(), (end - n) / total, False, False
            continue
        prev = c.x.clone()
        ends = _ends(draft, outcomes, window) if merge and window else []
        logits, p, windows = _check(c, n, draft, window, ends, end, tree)            # 1. the verifier
        key, char = (walk if draft.is_tree else speculative)(draft, p, c.generator)  # 2., 3. keep, write
        n = _write(c, n, draft, key, char, logits)
        draft = _next_draft(c, windows.get(key), n, end, tree)                       # 4. the next draft
        c.step += 1
        yield prev, (end - n) / total, n >= end, False


def _ends(draft: Draft, outcomes: int, window: int) -> list[int]:
    """The ways the check of this draft may end that get a window (the key of the node it stops on):
    1 + `outcomes` of them, as many as WINDOW_BUDGET holds, the likeliest by the draft's own estimate."""
    return likeliest_ends(draft, min(1 + outcomes, max(WINDOW_BUDGET // max(window, 1), 1)))


def frontier(c: Canvas) -> int:
    """The first masked position; every position after it must be masked too (the text grows at its end)."""
    masked = (c.x == c.mask_id).tolist()
    first = masked.index(True)
    if not all(masked[first:]):
        raise SamplingError("drafting and checking writes only at the end of the text; this draft has text "
                            "after a mask (continue it by denoising)")
    return first


def _clean_reads(c: Canvas, n: int, draft: Draft) -> tuple[torch.Tensor, list[int] | None]:
    """What the clean inputs cache.length .. n read (the character before each; -1: the start vector in
    front of the text), then one input for each drafted character, reading it; and, for a tree, each
    input's parent among them (the text's inputs a chain, the root the one at n)."""
    first = c.cache.length
    text = torch.cat([torch.tensor([-1] * (first == 0), dtype=torch.long), c.x[max(first - 1, 0):n]])
    reads = torch.cat([text, draft.chars])
    if not draft.is_tree:
        return reads, None
    root = len(text) - 1
    return reads, list(range(-1, root)) + [root + 1 + parent for parent in draft.parents]


def _evaluate(c: Canvas, n: int, draft: Draft, width: int, ends: list[int], end: int, phase: str):
    """One evaluation: the clean inputs up to the draft's end (a tree: each drafted node behind its
    ancestors), and for each key in `ends` a window of up to `width` masks behind that node (its first
    input reads the node's character: that path kept). Returns the clean rows of the root and the drafted
    nodes, and {key: window rows}."""
    c.nfe, c.phase = c.nfe + 1, phase
    clean, parents = _clean_reads(c, n, draft)
    at = n - c.cache.length                        # the clean input at position n (reading n - 1): the root
    windows = {}
    for key in ends:
        w = min(width, end - n - draft.depth(key))
        if w >= 2:                                 # the first row is the verifier's to write: a draft needs 2
            windows[key] = (at + key, torch.cat([clean[at + key:at + key + 1], torch.full((w - 1,), c.mask_id)]))
    c.work += len(clean) + sum(len(ids) for _, ids in windows.values())
    shown = draft.main_path()                      # the page outlines the window behind the shown draft
    w0 = n + len(shown)
    c.block = (w0, min(w0 + width, end)) if (shown[-1] + 1 if shown else 0) in windows else None
    p_rows, rows = c.model.verify_and_draft(clean.to(c.device), c.cache,
                                            [(a, ids.to(c.device)) for a, ids in windows.values()], parents)
    return p_rows.float().cpu()[at:], {k: r.float().cpu() for k, r in zip(windows, rows)}


def _check(c: Canvas, n: int, draft: Draft, width: int, ends: list[int], end: int, tree: int):
    """The verifier's distributions p at the root and each drafted node (the row of node i is i + 1;
    logits kept for the written characters' confidences), and by the key they follow, the windows'
    distributions to draft from (only the window for the way the check ends becomes a draft, `_next_draft`)."""
    phase = "verify" if len(draft.chars) or ends else "left to right"      # no draft and no window: AR step
    logits, rows = _evaluate(c, n, draft, width, ends, end, phase)
    p, windows = _distributions(c, logits, rows, tree)
    return logits, p, windows


def _distributions(c: Canvas, logits: torch.Tensor, windows: dict, tree: int) -> tuple[torch.Tensor, dict]:
    """The verifier's p (the sampler's settings) and each window's distributions to draft from: a path is
    drawn at the same settings, so all rows go through them at once (row by row, the same numbers); a
    tree offers the window's likeliest guesses by its own softmax (`_drafted`)."""
    rows = [logits, *([] if tree else windows.values())]
    p, *qs = target_distribution(torch.cat(rows), c.cfg, c.mask_id).split([len(r) for r in rows])
    if tree:
        qs = [without_mask(r, c.mask_id).softmax(-1) for r in windows.values()]
    return p, dict(zip(windows, qs))


def _draft(c: Canvas, n: int, width: int, end: int, tree: int) -> Draft:
    """Unmerged: a pass that only drafts the window at the text's end (the text behind it is cached)."""
    logits, rows = _evaluate(c, n, EMPTY, width, [0], end, "draft")
    c.cache.rewind(n)                        # the clean input at n is read again with the draft behind it
    _, windows = _distributions(c, logits, rows, tree)
    return _drafted(c, windows[0][:end - n - 1], n, tree)   # the window starts at n: its rows, the draft from n on


def _drafted(c: Canvas, q: torch.Tensor, n: int, tree: int) -> Draft:
    """The draft from a window's distributions behind the text's end n (row 0 is about position n): a path
    drawn from them, or the tree of their likeliest paths (the verifier draws at its settings whatever the
    tree: a tree only offers guesses, and a guess the filter would drop, or greedy's one-hot, is one fewer);
    shown as ghosts under the masks (its likeliest path)."""
    coupling = _coupling(c, n)
    if tree:
        draft = likeliest_tree(q, tree, coupling)
    else:
        draft = drawn_path(q, c.generator, coupling)
    shown = draft.chars[draft.main_path()]
    c.best.zero_()
    c.best[n:n + len(shown)] = shown
    return draft


def _coupling(c: Canvas, n: int) -> Coupling | None:
    """The copula for a draft behind the text's end n: the checkpoint's n-gram (ngram.py) after the text's
    last characters, at the config's weight; None when off or the checkpoint has none."""
    if c.ngram is None or not c.cfg.copula:
        return None
    return Coupling(c.ngram, c.cfg.copula, tuple(c.x[max(n - c.ngram.order + 1, 0):n].tolist()))


def _write(c: Canvas, n: int, draft: Draft, key: int, char: int, logits: torch.Tensor) -> int:
    """Write the kept path's characters (the node with this key and its ancestors) and the verifier's one
    behind them; forget the rest of the draft (its cached inputs too); return the new end of the text.
    logits: the verifier's at the root and each node, for the confidences and rivals."""
    path = draft.path(key)
    k = len(path)
    new = torch.cat([draft.chars[path], torch.tensor([char])])
    c.x[n:n + k + 1] = new
    c.wrote(n, new, logits[[0] + [i + 1 for i in path]])
    c.rejected = torch.zeros(len(c.x), dtype=torch.bool)
    c.rejected[n + k:n + len(draft.main_path())] = True
    if len(draft.chars):
        c.accepted.append((k, len(draft.chars)))
    c.cache.keep([n] + [n + 1 + i for i in path])   # the kept path's inputs, in place behind the text's
    return n + k + 1


def _next_draft(c: Canvas, window: torch.Tensor | None, n: int, end: int, tree: int) -> Draft:
    """From the window that stood where the text now ends (the one for how the check ended) behind the
    character just written; an empty draft if that way had no window. Its first row is the verifier's
    position; the rest, up to the last character but one (so that the verifier's character still fits),
    the draft."""
    c.best.zero_()
    if window is None or len(window) < 2:
        return EMPTY
    return _drafted(c, window[1:end - n], n, tree)
