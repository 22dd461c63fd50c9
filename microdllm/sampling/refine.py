"""Correctors that rewrite written characters: the original's refinement (re-mask the least confident
and re-predict), its greedy pass at t = 0, and the polish passes (in the spirit of ReMDM) that re-read
a finished draft and fix what the model is sure is wrong. Same protocol as reveal.py.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch

from ..remasking import lowest, propose, spread_out
from .canvas import Canvas
from .config import POLISH_CONFIDENCE


def refine(c: Canvas) -> Iterator[tuple]:
    """The original's refinement (remask_ratio r > 0): every step re-predicts the whole block, then
    re-masks the `target` least confident of the masked positions and the floor(r * revealed) least
    confident written ones. Runs every planned step."""
    cfg, g, c.phase = c.cfg, c.generator, "refine"
    for b, block in enumerate(c.blocks):
        pos, n, n_steps, c.block = torch.tensor(block.positions), len(block.positions), block.steps, block.span
        for i in range(1, n_steps + 1):
            prev, u_now, u_next = c.x.clone(), (n_steps - i + 1) / n_steps, (n_steps - i) / n_steps
            masked = c.x[pos] == c.mask_id
            target = int((1.0 - c.reveal_schedule.alpha(u_next)) * n + 1e-9)   # masks left after the step
            logits = c.logits(u_now)[pos]
            tokens, p_tok, score = propose(logits, cfg, g, c.mask_id)
            cap = n if cfg.remask_ratio >= 1 else math.floor(cfg.remask_ratio * (n - int(masked.sum())))
            open_ = masked | lowest(score, cap, ~masked)
            c.x[pos], c.conf[pos] = tokens, p_tok
            if cfg.remasking == "spread":
                stay = open_ & ~spread_out(score, int(open_.sum()) - target, open_)
            else:
                stay = lowest(score, target, open_)
            c.x[pos[stay]] = c.mask_id
            c.note(pos, logits, prev[pos])
            c.step += 1
            yield prev, u_next, b == len(c.blocks) - 1 and i == n_steps, False


def final_pass(c: Canvas) -> Iterator[tuple]:
    """The original's last step: a greedy re-prediction of every written character at t = 0."""
    prev, ed, c.block, c.phase = c.x.clone(), torch.tensor(c.editable), None, "final pass"
    logits = c.logits(0.0)[ed]
    tokens, p_tok, _ = propose(logits, c.cfg.replace(temperature=0.0), c.generator, c.mask_id)
    c.x[ed], c.conf[ed] = tokens, p_tok
    c.note(ed, logits, prev[ed])
    c.step += 1
    yield prev, 0.0, True, False


def polish(c: Canvas, passes: int) -> Iterator[tuple]:
    """Re-read every passes-th written character with the rest in view; keep it unless the model
    is sure of another one."""
    greedy, c.block, c.phase = c.cfg.replace(temperature=0.0), None, "polish"
    for j in range(passes):
        prev, pos = c.x.clone(), torch.tensor(c.editable[j::passes])
        c.x[pos] = c.mask_id
        u = c.reveal_schedule.time_at(1.0 - len(pos) / len(c.editable))   # the time that leaves this many masks
        logits = c.logits(u, clean=prev)[pos]
        proposal, p_best, _ = propose(logits, greedy, c.generator, c.mask_id)
        c.x[pos] = torch.where(p_best > POLISH_CONFIDENCE, proposal, prev[pos])
        c.conf[pos] = logits.softmax(-1).gather(-1, c.x[pos][:, None]).squeeze(-1)
        c.note(pos, logits, prev[pos])
        c.step += 1
        yield prev, 0.0, j == passes - 1, True

