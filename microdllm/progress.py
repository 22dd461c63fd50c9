"""The training progress bar: loss and tokens per second, refreshed at most once a second (tqdm)."""
from __future__ import annotations

import time

import torch


class Progress:
    """A tqdm bar showing the loss and tokens per second (refreshed at most once a second), or nothing."""

    def __init__(self, show: bool, total: int, initial: int, tokens_per_step: int):
        self.bar = None
        if show:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, dynamic_ncols=True, unit="it")
        self.total, self.tokens_per_step = total, tokens_per_step
        self.last_t, self.last_step = time.perf_counter(), initial

    def update(self, step: int, loss: torch.Tensor):
        if self.bar is None:
            return
        now = time.perf_counter()
        if now - self.last_t > 1.0 or step == self.total:
            tps = (step - self.last_step) * self.tokens_per_step / (now - self.last_t)
            self.last_t, self.last_step = now, step
            self.bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tps:,.0f}")
        self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()
