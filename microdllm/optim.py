"""Optimisers and the learning-rate schedule of training: AdamW, or Muon on the hidden matrices with
AdamW on the rest; linear warm-up then cosine decay. (train.py runs them; nothing here knows data,
models' meaning or diffusion.)
"""
from __future__ import annotations

import math

import torch

OPTIMIZERS = ("adamw", "muon")


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup to 1, then cosine decay to min_ratio at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _orthogonalise_in_float32_on_cpu():
    """torch.optim.Muon orthogonalises each update by Newton-Schulz in bfloat16, which a CPU without
    bfloat16 matrix units runs ~27x slower than float32 (docs/performance.md: it was 3/4 of a training
    step here). On the CPU, run the very same iteration in float32; elsewhere leave torch's alone."""
    from torch.optim import _muon

    original = getattr(_muon._zeropower_via_newtonschulz, "__wrapped__", _muon._zeropower_via_newtonschulz)

    def zeropower(grad, ns_coefficients, ns_steps, eps):
        if grad.device.type != "cpu":
            return original(grad, ns_coefficients, ns_steps, eps)
        a, b, c = ns_coefficients
        x = grad.float()
        x = x.T if grad.size(0) > grad.size(1) else x
        x = x / x.norm().clamp(min=eps)
        for _ in range(ns_steps):
            gram = x @ x.T
            x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
        return x.T if grad.size(0) > grad.size(1) else x

    zeropower.__wrapped__ = original
    _muon._zeropower_via_newtonschulz = zeropower


def build_optimizers(model: torch.nn.Module, cfg) -> list[torch.optim.Optimizer]:
    """AdamW for all; or Muon on the 2-D hidden weights (blocks) and AdamW on embeddings and head."""
    if cfg.optimizer == "adamw":
        return [torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))]
    if cfg.optimizer == "muon":
        _orthogonalise_in_float32_on_cpu()
        hidden = [p for n, p in model.named_parameters() if n.startswith("blocks.") and p.ndim == 2]
        other = [p for n, p in model.named_parameters() if not (n.startswith("blocks.") and p.ndim == 2)]
        return [torch.optim.Muon(hidden, lr=cfg.muon_lr, weight_decay=cfg.weight_decay),
                torch.optim.AdamW(other, lr=cfg.lr, weight_decay=0.0, betas=(0.9, 0.95))]
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose {' or '.join(OPTIMIZERS)}")
