"""Validation metrics.

Diffusion models: the NELBO in bits per character (an upper bound on the true NLL), the
original mean masked cross-entropy, masked reconstruction accuracy, and the predictive
entropy by timestep. Autoregressive models: their exact bits per character.

Evaluations are silent unless run inside `progress_bars()` (the CLI's eval and model-card do):
then each draws a tqdm bar on stderr.
"""
from __future__ import annotations

import math
import sys
from contextlib import contextmanager
from contextvars import ContextVar

import torch

from .diffusion import Schedule, always_predicted, corrupt, masked_token_nll
from .model import Transformer

LN2 = math.log(2)
_PROGRESS: ContextVar[bool | None] = ContextVar("microdllm_eval_progress", default=False)


@contextmanager
def progress_bars(show: bool | None = None):
    """Within this block evaluations draw a progress bar on stderr: True always, None only when stderr
    is a terminal, False never (the default outside the block)."""
    token = _PROGRESS.set(show)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def _bar(total: int, unit: str, desc: str = "eval"):
    from tqdm import tqdm

    show = _PROGRESS.get()
    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False,
                disable=None if show is None else not show)


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
    x_all, t_all = stratified_timesteps(windows, K, T, g)
    device = next(model.parameters()).device

    nelbo_sum = nll_sum = 0.0
    n_masked = n_correct = 0
    entropy = EntropyByTimestep(entropy_bins, T)
    bar = _bar(len(x_all), "pass", f"eval ({N} windows x {K} timesteps)")
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
        entropy.add(logits, mask, t)
        bar.update(len(x0))
    bar.close()

    return {
        "nelbo_bpc": nelbo_sum / (len(x_all) * L) / LN2,
        "nelbo_is_upper_bound": True,
        "masked_loss": nll_sum / max(1, n_masked),
        "masked_accuracy": n_correct / max(1, n_masked),
        "entropy_bits_by_t": entropy.bits(),
        "windows": N,
        "timesteps_per_window": K,
        "characters": N * L,
    }


def stratified_timesteps(windows: torch.Tensor, K: int, T: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Each window repeated K times, at one timestep in [1, T] drawn from each of K equal slices."""
    u = (torch.arange(K) + torch.rand(len(windows), K, generator=g)) / K      # stratified in [0, 1)
    t_all = ((u * T).long().clamp(0, T - 1) + 1).reshape(-1)                  # (N*K,)
    return windows.repeat_interleave(K, dim=0), t_all                         # (N*K, L), (N*K,)


class EntropyByTimestep:
    """The model's mean predictive entropy at masked positions, in `bins` equal slices of [1, T]:
    how sure it is as the masks thin out."""

    def __init__(self, bins: int, T: int):
        self.bins, self.T = bins, T
        self.sum = torch.zeros(bins, dtype=torch.float64)
        self.count = torch.zeros(bins, dtype=torch.float64)

    def add(self, logits: torch.Tensor, mask: torch.Tensor, t: torch.Tensor):
        logp = logits.log_softmax(-1)
        ent = -(logp.exp() * logp.nan_to_num(neginf=0.0)).sum(-1)          # (B, L) nats
        bins = ((t - 1) * self.bins // self.T).clamp(max=self.bins - 1)
        self.sum.index_add_(0, bins, (ent * mask).sum(1).double())
        self.count.index_add_(0, bins, mask.sum(1).double())

    def bits(self) -> dict[str, float | None]:
        edges = [round(1 + b * self.T / self.bins) for b in range(self.bins)]
        return {f"t>={e}": float(s / c / LN2) if c else None
                for e, s, c in zip(edges, self.sum.tolist(), self.count.tolist())}


@torch.inference_mode()
def evaluate_autoregressive(model: Transformer, windows: torch.Tensor, mask_id: int,
                            batch_size: int = 64, shifted: bool = False) -> dict:
    """Exact next-character bits per character over the windows (first character of each window unscored).
    shifted: a clean-causal block model's plain forward, whose logits[:, i] are about character i."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    bar = _bar(len(windows), "window")
    for i in range(0, len(windows), batch_size):
        x = windows[i:i + batch_size]
        logits = model(x.to(device)).float().cpu()
        logits = logits[:, 1:] if shifted else logits[:, :-1]
        nll = masked_token_nll(logits, x[:, 1:], mask_id)
        total += float(nll.sum())
        count += nll.numel()
        bar.update(len(x))
    bar.close()
    return {"bpc": total / count / LN2, "exact": True, "windows": len(windows), "characters": count}


@torch.inference_mode()
def evaluate_blocks(model: Transformer, windows: torch.Tensor, schedule: Schedule, mask_id: int,
                    timesteps_per_window: int = 16, batch_size: int = 32, seed: int = 0,
                    block: int | None = None) -> dict:
    """NELBO of a block-diffusion model: per block, the masked-diffusion bound on its characters given
    the clean blocks before it (each block scored at `timesteps_per_window` stratified timesteps of
    its own), plus the exact log-likelihood of the always-predicted ones given everything before them.
    B = 1 with shift is the exact autoregressive figure. block: another block size than the model's own
    (for a model trained over several)."""
    model.eval()
    cfg = model.config
    T, block, (N, L) = cfg.timesteps, block or cfg.attn_block, windows.shape
    K, n_blocks = timesteps_per_window, -(-L // block)
    always = always_predicted(L, block, cfg.shift)
    g = torch.Generator().manual_seed(seed)
    slices = torch.rand(N, n_blocks, K, generator=g).argsort(-1)       # each block: every slice once
    t_all = (((slices + torch.rand(N, n_blocks, K, generator=g)) / K * T).long().clamp(0, T - 1) + 1)
    device = next(model.parameters()).device
    bound = exact = masked_nll = 0.0
    n_masked = 0
    bar = _bar(N * K, "pass", f"eval ({N} windows x {K} timesteps)")
    for i in range(0, N, batch_size):
        x0 = windows[i:i + batch_size]
        exact += float((masked_token_nll(model(x0.to(device), block=block).float().cpu(), x0, mask_id) * always).sum())
        for k in range(K):
            t = t_all[i:i + batch_size, :, k].repeat_interleave(block, dim=1)[:, :L]
            masked = (torch.rand(x0.shape, generator=g) < schedule.mask_prob(t.double() / T).float()) & ~always
            logits = model(x0.masked_fill(masked, mask_id).to(device), clean=x0.to(device), block=block).float().cpu()
            nll = masked_token_nll(logits, x0, mask_id) * masked
            bound += float((nll * schedule.elbo_weight(t.flatten(), T).view_as(t) * T).sum()) / K
            masked_nll += float(nll.sum())
            n_masked += int(masked.sum())
            bar.update(len(x0))
    bar.close()
    out = {"nelbo_bpc": (bound + exact) / (N * L) / LN2, "nelbo_is_upper_bound": True,
           "masked_loss": masked_nll / max(1, n_masked), "block": block,
           "windows": N, "timesteps_per_window": K, "characters": N * L}
    if getattr(cfg, "clean_causal", False):     # its clean half is an autoregressive model: exact bits/char
        out["ar_bpc"] = evaluate_autoregressive(model, windows, mask_id, batch_size, shifted=True)["bpc"]
    return out


def evaluate(model: Transformer, windows: torch.Tensor, schedule: Schedule, mask_id: int, **kw) -> dict:
    """Exact bits/char for an autoregressive model; the NELBO and its companions for a diffusion model."""
    if getattr(model.config, "attn_block", None):
        return evaluate_blocks(model, windows, schedule, mask_id, timesteps_per_window=kw.get("timesteps_per_window", 16),
                               seed=kw.get("seed", 0), block=kw.get("block"))
    kw.pop("block", None)   # only a block-diffusion model has a block size to choose
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
