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

So the text follows the verifier's distribution, and greedy text is exactly the verifier's greedy
text. Every round writes at least one character; a round with an empty draft is one step of the
autoregressive model, and without a window that is all there is: the network's own left-to-right mode.
Unmerged, drafting and checking are evaluations of their own: two a round.

Same protocol as reveal.py: each step yields (x before it, u after it, whether the run is over, False).
"""
from __future__ import annotations

from typing import Iterator

import torch

from ..remasking import target_distribution
from .canvas import Canvas
from .config import SamplingError

WINDOW_BUDGET = 64      # window positions an evaluation may carry: outcome windows stop there


def draft_and_verify(c: Canvas, window: int, merge: bool = True, outcomes: int = 0) -> Iterator[tuple]:
    """Write every masked position of the canvas (all after its text) in rounds; window 0: left to right.
    outcomes: how many ways a check can end get a window besides the likeliest (kept whole, or the first
    drafted character turned down, the second, ...): the likeliest 1 + outcomes of them (`_ends`)."""
    n, end = frontier(c), len(c.x)
    total, c.boundaries = end - n, ()
    draft, q = torch.zeros(0, dtype=torch.long), torch.zeros(0, c.model.config.vocab_size)
    while n < end:
        if not merge and window and not len(draft) and end - n > 1:
            draft, q = _draft(c, n, window, end)           # a pass of its own
            c.step += 1
            yield c.x.clone(), (end - n) / total, False, False
            continue
        prev = c.x.clone()
        ends = _ends(q, draft, outcomes, window) if merge and window else []
        logits, p, windows = _check(c, n, draft, window, ends, end)                  # 1. the verifier
        kept = _accepted(p[:-1], q, draft, c.generator)                              # 2. keep
        char = _sample(_residual(p[kept], q[kept]) if kept < len(draft) else p[kept], c.generator)   # 3.
        n = _write(c, n, draft, kept, char, logits, prev)
        draft, q = _next_draft(c, windows.get(kept), n, end)                         # 4. the next draft
        c.step += 1
        yield prev, (end - n) / total, n >= end, False


def _ends(q: torch.Tensor, draft: torch.Tensor, outcomes: int, window: int) -> list[int]:
    """The ways the check of this draft may end (k of its characters kept; k = len(draft): all) that get
    a window: 1 + `outcomes` of them, as many as WINDOW_BUDGET holds, the likeliest by the draft's own
    estimate: character i passes with probability about q_i(d_i), so k are kept with probability
    q_1(d_1) ... q_k(d_k) (1 - q_{k+1}(d_{k+1}))."""
    drafted = len(draft)
    count = min(1 + outcomes, drafted + 1, max(WINDOW_BUDGET // max(window, 1), 1))
    if count == drafted + 1:
        return [drafted] + list(range(drafted))
    odds, reach = [], 1.0                                   # reach: P(the first k all pass)
    for sure in q[torch.arange(drafted), draft].tolist() + [0.0]:
        odds.append(reach * (1 - sure))                     # P(exactly k pass)
        reach *= sure
    likeliest = sorted(range(drafted + 1), key=lambda k: -odds[k])[:count]
    return sorted(likeliest, key=lambda k: (k != drafted, k))


def frontier(c: Canvas) -> int:
    """The first masked position; every position after it must be masked too (the text grows at its end)."""
    masked = (c.x == c.mask_id).tolist()
    first = masked.index(True)
    if not all(masked[first:]):
        raise SamplingError("drafting and checking writes only at the end of the text; this draft has text "
                            "after a mask (continue it by denoising)")
    return first


def _clean_reads(c: Canvas, n: int, draft: torch.Tensor) -> torch.Tensor:
    """What the clean inputs cache.length .. n + len(draft) read: the character before each (-1: the
    start vector in front of the text), the draft standing in for the characters from n on."""
    x = torch.cat([c.x[:n], draft])
    first = c.cache.length
    return torch.cat([torch.tensor([-1] * (first == 0), dtype=torch.long), x[max(first - 1, 0):]])


def _evaluate(c: Canvas, n: int, draft: torch.Tensor, width: int, ends: list[int], end: int, phase: str):
    """One evaluation: the clean inputs up to the draft's end, and for each k in `ends` a window of up to
    `width` masks from n + k on (its first input reads the character before n + k: the draft's k first
    characters kept). Returns the clean rows for the draft and the one after, and {k: window rows}."""
    c.nfe, c.phase = c.nfe + 1, phase
    clean = _clean_reads(c, n, draft)
    at = n - c.cache.length                        # the clean input at position n (reading n - 1)
    windows = {}
    for k in ends:
        w = min(width, end - n - k)
        if w >= 2:                                 # the first row is the verifier's to write: a draft needs 2
            windows[k] = (at + k, torch.cat([clean[at + k:at + k + 1], torch.full((w - 1,), c.mask_id)]))
    c.work += len(clean) + sum(len(ids) for _, ids in windows.values())
    w0 = n + len(draft)
    c.block = (w0, min(w0 + width, end)) if len(draft) in windows else None
    p_rows, rows = c.model.verify_and_draft(clean.to(c.device), c.cache,
                                            [(a, ids.to(c.device)) for a, ids in windows.values()])
    return p_rows.float().cpu()[-(len(draft) + 1):], {k: r.float().cpu() for k, r in zip(windows, rows)}


def _check(c: Canvas, n: int, draft: torch.Tensor, width: int, ends: list[int], end: int):
    """The verifier's distributions p for the draft's positions and the one after it (k + 1 rows, logits
    kept for the written characters' confidences), and the windows' rows by outcome (logits: only the
    window for the way the check ends becomes a draft, `_next_draft`)."""
    logits, rows = _evaluate(c, n, draft, width, ends, end, "verify" if len(draft) or ends else "left to right")
    return logits, target_distribution(logits, c.cfg, c.mask_id), rows


def _draft(c: Canvas, n: int, width: int, end: int):
    """Unmerged: a pass that only drafts the window at the text's end (the text behind it is cached)."""
    _, rows = _evaluate(c, n, torch.zeros(0, dtype=torch.long), width, [0], end, "draft")
    q_rows = rows[0]                         # this window starts at n: its rows are the draft from n on
    c.cache.rewind(n)                        # the clean input at n is read again with the draft behind it
    q = target_distribution(q_rows, c.cfg, c.mask_id)[:end - n - 1]     # the last character: the verifier's
    draft = _sample_rows(q, c.generator)
    c.best.zero_()
    c.best[n:n + len(draft)] = draft
    return draft, q


def _accepted(p: torch.Tensor, q: torch.Tensor, draft: torch.Tensor, g: torch.Generator) -> int:
    """How many drafted characters pass in a row: each with probability min(1, p(d) / q(d))."""
    if not len(draft):
        return 0
    rows = torch.arange(len(draft))
    passes = torch.rand(len(draft), generator=g) < p[rows, draft] / q[rows, draft].clamp_min(1e-12)
    failed = (~passes).nonzero()
    return int(failed[0]) if len(failed) else len(draft)         # the passes before the first failure


def _residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Where a draft fails: max(p - q, 0), renormalised (p itself when the two agree everywhere)."""
    rest = (p - q).clamp_min(0)
    return rest if float(rest.sum()) > 0 else p


def _sample(p: torch.Tensor, g: torch.Generator) -> int:
    return int(torch.multinomial(p, 1, generator=g))


def _sample_rows(q: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return torch.multinomial(q, 1, generator=g).squeeze(-1) if len(q) else torch.zeros(0, dtype=torch.long)


def _write(c: Canvas, n: int, draft: torch.Tensor, k: int, char: int, logits: torch.Tensor,
           prev: torch.Tensor) -> int:
    """Write the draft's first k characters and the verifier's one behind them; forget the rest of the
    draft; return the new end of the text. logits: the verifier's, for the confidences and rivals."""
    drafted = len(draft)
    new = torch.cat([draft[:k], torch.tensor([char])])
    pos = torch.arange(n, n + k + 1)
    c.x[pos] = new
    logits = logits[:k + 1]
    c.conf[pos] = logits.softmax(-1).gather(-1, new[:, None]).squeeze(-1)
    c.rejected = torch.zeros(len(c.x), dtype=torch.bool)
    c.rejected[n + k:n + drafted] = True
    if drafted:
        c.accepted.append((k, drafted))
    c.note(pos, logits, prev[pos])
    c.cache.rewind(n + k + 1)                # what the clean inputs read from here on was not written
    return n + k + 1


def _next_draft(c: Canvas, window_rows: torch.Tensor | None, n: int, end: int):
    """The characters of the window that stood where the text now ends (the one for how the check
    ended) behind the one just written; an empty draft if that way had no window. Shown as the ghosts
    under the masks. A draft stops one short of the end, so that the verifier's character still fits."""
    c.best.zero_()
    if window_rows is None or len(window_rows) < 2:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, c.model.config.vocab_size)
    # its first row is the verifier's position; the rest, up to the last character but one, the draft
    q = target_distribution(window_rows[1:end - n], c.cfg, c.mask_id)
    draft = _sample_rows(q, c.generator)
    c.best[n:n + len(draft)] = draft
    return draft, q
