"""A step whose reveal set is chosen by hand: the student is the remasking strategy for one step.

`denoise(..., start=state, reveal=[positions], chars=[...])` makes the first step after `start` write
exactly those positions: the model's current guess there (its most probable character, from one
evaluation) or the character given for it; then the run goes on as usual (reveal.py). The same
evaluation says what the configured strategy would have revealed instead (as many positions, by its
score): `DenoiseState.suggested`, for comparison. No new sampling: one more step of the same canvas.
"""
from __future__ import annotations

import torch

from ..remasking import best, score
from .canvas import Canvas
from .config import SamplingError


def check_reveal(c: Canvas, reveal, chars) -> list[tuple[int, int | None]]:
    """(position, token or None = the model's guess) for each position to reveal; a SamplingError says
    why not (not masked, outside the block being written, a character outside the vocabulary)."""
    positions = [int(p) for p in reveal]
    chars = list(chars) if chars is not None else [None] * len(positions)
    if not positions or len(chars) != len(positions) or len(set(positions)) != len(positions):
        raise SamplingError("choose one or more different masked positions to reveal (and one character or none each)")
    if c.cfg.mode != "denoise":
        how = "drafts and checks" if c.cfg.mode == "verify" else "writes left to right"
        raise SamplingError(f"this run {how} at its cursor, one character after another: choosing what to "
                            f"reveal needs a run that denoises (Writing: block diffusion)")
    span = c.blocks[0].span if c.blocks and c.attn_block else None
    out = []
    for p, ch in zip(positions, chars):
        if not 0 <= p < len(c.x) or int(c.x[p]) != c.mask_id or c.fixed[p]:
            raise SamplingError(f"position {p} is not a masked position of this draft (0 to {len(c.x) - 1})")
        if span and not span[0] <= p < span[1]:
            raise SamplingError(f"position {p} is not in the block being written ({span[0]} to {span[1] - 1})")
        if ch in (None, ""):
            out.append((p, None))
        elif len(ch) != 1 or ch not in c.tokenizer.chars:
            raise SamplingError(f"{ch!r} is not a character this model writes (one character of its vocabulary)")
        else:
            out.append((p, c.tokenizer.chars.index(ch) + 1))
    return out


def by_hand(c: Canvas, reveal, chars, u: float) -> torch.Tensor:
    """Write the chosen positions as one step (one model evaluation) and return x before it."""
    chosen = check_reveal(c, reveal, chars)
    prev, c.phase = c.x.clone(), "by hand"
    span = c.blocks[0].span if c.attn_block else None
    c.block = span
    pos = torch.tensor([i for i in c.editable if int(c.x[i]) == c.mask_id and (not span or span[0] <= i < span[1])])
    logits = c.logits(u)[pos]
    probs = logits.float().softmax(-1).index_fill(-1, torch.tensor([c.mask_id]), 0.0)
    guess = probs.argmax(-1)
    where = {int(p): k for k, p in enumerate(pos.tolist())}
    # what the strategy would have revealed: its best-scored positions, as many as were chosen
    g = torch.Generator().set_state(c.generator.get_state())   # its own draw: the run's stays as it is
    strategy = c.cfg.remasking if c.cfg.remasking != "none" else "low_confidence"
    p_guess = probs.gather(-1, guess[:, None]).squeeze(-1)
    picked = best(strategy, score(strategy, probs, p_guess, g), len(chosen), torch.ones(len(pos), dtype=torch.bool))
    c.suggested = tuple(sorted(int(pos[k]) for k in picked.nonzero().flatten().tolist()))
    for p, token in chosen:
        k = where[p]
        token = int(guess[k]) if token is None else token
        c.x[p], c.conf[p] = token, float(probs[k, token])
    c.note(pos, logits, prev[pos])
    c.step += 1
    return prev
