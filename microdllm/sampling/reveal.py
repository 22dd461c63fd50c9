"""The reveal loop (LLaDA, Nie et al. 2025, Alg. 4/5; BD3-LM's block loop): masked positions are
revealed and stay revealed.

    for each block:
        for each step:
            1. run the model at the training time that leaves this many masks
            2. propose a character for every masked position (remasking.propose)
            3. choose which proposals to reveal (the remasking strategy, early reveals)
            4. write them and yield

Each phase (here, in refine.py) changes the canvas one step at a time and yields (x before the step,
u after it, whether the phase is over, whether characters were rewritten rather than revealed); the
run (`sampling.denoise`) turns each into a DenoiseState and decides, in one place, which is the last.
"""
from __future__ import annotations

from typing import Iterator

import torch

from ..remasking import choose_reveal, entropy, propose
from .canvas import Canvas


def reveal(c: Canvas) -> Iterator[tuple]:
    """Masked positions are revealed and stay revealed: LLaDA's low-confidence remasking and its kin."""
    cfg, g, c.phase = c.cfg, c.generator, "reveal"
    for block in c.blocks:
        pos, n, n_steps, c.block = torch.tensor(block.positions), len(block.positions), block.steps, block.span
        for i in range(1, n_steps + 1):
            masked = c.x[pos] == c.mask_id
            n_masked = int(masked.sum())
            if n_masked == 0:
                break                                             # the block finished early
            prev, u_now, u_next = c.x.clone(), (n_steps - i + 1) / n_steps, (n_steps - i) / n_steps
            a_now, a_next = c.reveal_schedule.alpha(u_now), c.reveal_schedule.alpha(u_next)
            quota = n_masked - min(int((1.0 - a_next) * n + 1e-9), n_masked)   # positions to reveal
            if quota > 0 or cfg.remasking == "none":              # else the quota is met: no evaluation
                logits = c.logits(u_now)[pos]                                      # 1. the model
                tokens, p_tok, score = propose(logits, cfg, g, c.mask_id)          # 2. propose
                h = entropy(logits.float().softmax(-1)) if cfg.entropy_bound is not None else None
                reveal = choose_reveal(cfg, score, p_tok, masked, quota, a_now, a_next, g, c.last[pos], h)   # 3.
                c.x[pos[reveal]], c.conf[pos[reveal]] = tokens[reveal], p_tok[reveal]    # 4. write
                c.note(pos, logits, prev[pos])
            c.step += 1
            finished = not c.any_masked()
            yield prev, u_next, finished, False
            if finished:
                return

