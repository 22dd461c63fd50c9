"""Validation metrics.

Diffusion models: the NELBO in bits per character (an upper bound on the true NLL), the
original mean masked cross-entropy, masked reconstruction accuracy, and the predictive
entropy by timestep. Autoregressive models: their exact bits per character.
"""
from __future__ import annotations

import math

import torch

from .diffusion import Schedule, corrupt, masked_token_nll
from .model import Transformer

LN2 = math.log(2)


@torch.inference_mode()
def evaluate_diffusion(model: Transformer, windows: torch.Tensor, schedule: Schedule, mask_id: int,
                       timesteps_per_window: int = 16, batch_size: int = 64, seed: int = 0,
                       entropy_bins: int = 10) -> dict:
    """Monte-Carlo NELBO over `windows` (N, L), with stratified timesteps per window.

    Each window is scored at `timesteps_per_window` timesteps, one from each equal slice of
    [1, T], so every run covers the whole schedule; only the masks are random.
    """
    model.eval()
    T = model.config.timesteps
    N, L = windows.shape
    K = timesteps_per_window
    g = torch.Generator().manual_seed(seed)
    u = (torch.arange(K) + torch.rand(N, K, generator=g)) / K          # stratified in [0, 1)
    t_all = ((u * T).long().clamp(0, T - 1) + 1).reshape(-1)          # (N*K,)
    x_all = windows.repeat_interleave(K, dim=0)                        # (N*K, L)
    device = next(model.parameters()).device

    nelbo_sum = nll_sum = 0.0
    n_masked = n_correct = 0
    ent_sum = torch.zeros(entropy_bins, dtype=torch.float64)
    ent_cnt = torch.zeros(entropy_bins, dtype=torch.float64)
    for i in range(0, len(x_all), batch_size):
        x0, t = x_all[i:i + batch_size], t_all[i:i + batch_size]
        xt, mask = corrupt(x0, t, T, schedule, mask_id, generator=g)
        logits = model(xt.to(device), t.to(device)).float().cpu()
        nll = masked_token_nll(logits, x0, mask_id) * mask                # (B, L)
        w = schedule.elbo_weight(t, T) * T
        nelbo_sum += float((nll.sum(1) * w).sum())
        nll_sum += float(nll.sum())
        n_masked += int(mask.sum())
        logits[..., mask_id] = float("-inf")
        n_correct += int(((logits.argmax(-1) == x0) & mask).sum())
        logp = logits.log_softmax(-1)
        ent = -(logp.exp() * logp.nan_to_num(neginf=0.0)).sum(-1)          # (B, L) nats
        bins = ((t - 1) * entropy_bins // T).clamp(max=entropy_bins - 1)
        ent_sum.index_add_(0, bins, (ent * mask).sum(1).double())
        ent_cnt.index_add_(0, bins, mask.sum(1).double())

    nelbo_nats = nelbo_sum / (len(x_all) * L)
    edges = [round(1 + b * T / entropy_bins) for b in range(entropy_bins)]
    return {
        "nelbo_bpc": nelbo_nats / LN2,
        "nelbo_is_upper_bound": True,
        "masked_loss": nll_sum / max(1, n_masked),
        "masked_accuracy": n_correct / max(1, n_masked),
        "entropy_bits_by_t": {f"t>={e}": float(s / c / LN2) if c else None
                              for e, s, c in zip(edges, ent_sum.tolist(), ent_cnt.tolist())},
        "windows": N,
        "timesteps_per_window": K,
        "characters": N * L,
    }


@torch.inference_mode()
def evaluate_autoregressive(model: Transformer, windows: torch.Tensor, mask_id: int,
                            batch_size: int = 64) -> dict:
    """Exact next-character bits per character over the windows (first character of each window unscored)."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(windows), batch_size):
        x = windows[i:i + batch_size]
        logits = model(x.to(device)).float().cpu()[:, :-1]
        nll = masked_token_nll(logits, x[:, 1:], mask_id)
        total += float(nll.sum())
        count += nll.numel()
    return {"bpc": total / count / LN2, "exact": True, "windows": len(windows), "characters": count}


def evaluate(model: Transformer, windows: torch.Tensor, schedule: Schedule, mask_id: int, **kw) -> dict:
    if model.config.causal:
        return evaluate_autoregressive(model, windows, mask_id, batch_size=kw.get("batch_size", 64))
    return evaluate_diffusion(model, windows, schedule, mask_id, **kw)


def headline_metric(metrics: dict) -> tuple[str, float]:
    """The one number that sums up a checkpoint's validation metrics: ("bpc", exact bits per character)
    for an autoregressive model, ("nelbo_bpc", its upper bound) for a diffusion model."""
    for key in ("bpc", "nelbo_bpc"):
        value = (metrics or {}).get(key)
        if isinstance(value, (int, float)):
            return key, float(value)
    raise KeyError("no bits-per-character figure in these metrics")


METRIC_LABELS = {"bpc": "bits per character (exact)", "nelbo_bpc": "bits per character (NELBO, an upper bound)"}
