"""Masked (absorbing-state) diffusion: survival schedules, forward corruption, losses.

Notation (MDLM, Sahoo et al. 2024; LLaDA, Nie et al. 2025). Time u = t / T in [0, 1].
a(u) is the survival probability: each clean token x0 is still visible in x_t with
probability a(u) and replaced by the mask otherwise. a(0) = 1, a(1) = 0.

The discrete-time NELBO of an absorbing-state model with T steps is

    NELBO(x0) = sum_{t=1..T} E_{x_t}[ (a(s) - a(t)) / (1 - a(t)) * sum_{i masked} -log p(x0_i | x_t) ],  s = t - 1,

(the prior and reconstruction terms vanish because a(1) = 0 and a(0) = 1). With t drawn
uniformly from {1..T} it is T * E_t[ w_t * masked CE sum ], w_t = (a(s) - a(t)) / (1 - a(t)),
which tends to the continuous weight -a'(u) / (1 - a(u)) dt as T grows. Per character it
is an upper bound on the negative log-likelihood.

This module does no file or network I/O.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


class Schedule:
    """A survival schedule a(u), u in [0, 1]. Subclasses define `alpha` for floats and tensors."""

    name = "base"

    def alpha(self, u):
        raise NotImplementedError

    def mask_prob(self, u):
        return 1 - self.alpha(u)

    def time_at(self, a: float) -> float:
        """The time u in [0, 1] at which alpha(u) = a. Schedules below invert alpha in closed form;
        this generic fallback bisects (alpha decreases from 1 to 0)."""
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self.alpha(mid) > a else (lo, mid)
        return (lo + hi) / 2

    def elbo_weight(self, t: torch.Tensor, T: int) -> torch.Tensor:
        """Discrete-time weight w_t = (a((t-1)/T) - a(t/T)) / (1 - a(t/T)) for integer t in [1, T]."""
        t = t.double()
        a_t, a_s = self.alpha(t / T), self.alpha((t - 1) / T)
        return ((a_s - a_t) / (1 - a_t).clamp_min(1e-12)).float()

    def __repr__(self):
        return f"{type(self).__name__}()"


class CosineSchedule(Schedule):
    """a(u) = cos(pi/2 * u): the original micro-dllm schedule."""

    name = "cosine"

    def alpha(self, u):
        if isinstance(u, torch.Tensor):
            return torch.cos(u * (math.pi / 2))
        return math.cos(u * math.pi / 2)

    def time_at(self, a: float) -> float:
        return math.acos(min(1.0, max(0.0, a))) * 2 / math.pi


class LinearSchedule(Schedule):
    """a(u) = 1 - u: the mask probability grows linearly (LLaDA)."""

    name = "linear"

    def alpha(self, u):
        return 1 - u

    def time_at(self, a: float) -> float:
        return min(1.0, max(0.0, 1 - a))


class LogLinearSchedule(Schedule):
    """MDLM's log-linear noise sigma(u) = -log(1 - (1 - eps) u), so a(u) = 1 - (1 - eps) u."""

    name = "loglinear"

    def __init__(self, eps: float = 1e-3):
        self.eps = eps

    def alpha(self, u):
        return 1 - (1 - self.eps) * u

    def time_at(self, a: float) -> float:
        return min(1.0, max(0.0, (1 - a) / (1 - self.eps)))


SCHEDULES = {cls.name: cls for cls in (CosineSchedule, LinearSchedule, LogLinearSchedule)}


def get_schedule(name: str) -> Schedule:
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
    return SCHEDULES[name]()


def sample_timesteps(batch: int, T: int, generator: torch.Generator | None = None,
                     stratified: bool = False) -> torch.Tensor:
    """Integer timesteps in [1, T]. Stratified: one draw per equal slice of [0, 1) (low discrepancy)."""
    u = torch.rand(batch, generator=generator)
    if stratified:
        u = (torch.arange(batch) + u) / batch
        u = u[torch.randperm(batch, generator=generator)]
    return (u * T).long().clamp(0, T - 1) + 1


def corrupt(x0: torch.Tensor, t: torch.Tensor, T: int, schedule: Schedule, mask_id: int,
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward process q(x_t | x0): mask each token independently with probability 1 - a(t/T).

    x0: (B, L) ids, t: (B,) integer timesteps. Returns (x_t, mask) with mask True where masked.
    """
    p_mask = schedule.mask_prob(t.double() / T).float().unsqueeze(1)  # (B, 1)
    mask = torch.rand(x0.shape, generator=generator) < p_mask
    return x0.masked_fill(mask, mask_id), mask


def masked_token_nll(logits: torch.Tensor, x0: torch.Tensor, mask_id: int) -> torch.Tensor:
    """-log p(x0_i | x_t) at every position, with the mask id excluded from the prediction. (B, L)."""
    logits = logits.float().clone()
    logits[..., mask_id] = float("-inf")
    return F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")


def masked_ce_loss(logits, x0, mask, mask_id) -> torch.Tensor:
    """The original objective: mean cross-entropy over masked positions (nats)."""
    nll = masked_token_nll(logits, x0, mask_id)
    return (nll * mask).sum() / mask.sum().clamp_min(1)


def elbo_loss(logits, x0, mask, t, T, schedule: Schedule, mask_id) -> torch.Tensor:
    """Unbiased estimate of the NELBO per token (nats): T * w_t * (sum of masked NLL) / L, averaged over the batch."""
    nll = masked_token_nll(logits, x0, mask_id)
    w = schedule.elbo_weight(t, T) * T  # (B,)
    return ((nll * mask).sum(1) * w).sum() / x0.numel()


def diffusion_loss(kind: str, logits, x0, mask, t, T, schedule, mask_id) -> torch.Tensor:
    if kind == "masked_ce":
        return masked_ce_loss(logits, x0, mask, mask_id)
    if kind == "elbo":
        return elbo_loss(logits, x0, mask, t, T, schedule, mask_id)
    raise ValueError(f"unknown loss {kind!r}; choose masked_ce or elbo")


def next_character_loss(logits: torch.Tensor, x: torch.Tensor, mask_id: int) -> torch.Tensor:
    """The autoregressive loss of a shifted model's causal half, whose logits[:, i] are about x[:, i]
    (read from the characters before it): mean cross-entropy (nats), the first character unscored."""
    return masked_token_nll(logits[:, 1:], x[:, 1:], mask_id).mean()


def mixed_loss(diffusion: torch.Tensor, autoregressive: torch.Tensor, weight: float) -> torch.Tensor:
    """TiDAR's mixture of the two objectives of one network: (weight * L_AR + L_diff) / (1 + weight)."""
    return (weight * autoregressive + diffusion) / (1 + weight)


def autoregressive_loss(logits: torch.Tensor, x: torch.Tensor, mask_id: int) -> torch.Tensor:
    """Next-character cross-entropy (nats) for the causal baseline: predict x[1:] from x[:-1]."""
    logits = logits[:, :-1].float().clone()
    logits[..., mask_id] = float("-inf")
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1))


# ---- block diffusion (BD3-LM, Arriola et al. 2025) -------------------------------------------------
# The sequence is cut into blocks of B characters, each with its own noise level; a block-causal model
# (model.py, attn_block=B) denoises each block seeing the clean blocks before it. With `shift` (the
# alignment of an autoregressive model) the last character of a block is read by the *next* block's
# first input, so it is never an input of its own block: it is always predicted and never masked as an
# input. B = 1 with shift is then exactly next-character prediction.

def always_predicted(length: int, block: int, shift: bool) -> torch.Tensor:
    """(length,) booleans: the positions a block-causal model must predict whatever the noise (with
    shift, the last of each block of `block`)."""
    if not shift:
        return torch.zeros(length, dtype=torch.bool)
    return torch.arange(length) % block == block - 1


def corrupt_blocks(x0: torch.Tensor, block: int, schedule: Schedule, mask_id: int, shift: bool = False,
                   u_range: tuple[float, float] = (0.0, 1.0), generator: torch.Generator | None = None,
                   complementary: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Block-diffusion forward process: block b of every row gets a time u_b ~ U[u_range] (BD3-LM's
    clipped schedule when the range is narrower than [0, 1]) and each of its characters is masked with
    probability 1 - a(u_b). Returns (x_t, targets, u): targets = masked or always predicted, (B, L).

    complementary (Fast-dLLM v2): each row twice, masked with m and with 1 - m (its time u' the one at
    which a(u') = 1 - a(u)), so every character of every window is a target once: (2B, L)."""
    rows, L = x0.shape
    lo, hi = u_range
    u = lo + (hi - lo) * torch.rand(rows, -(-L // block), generator=generator)
    u = u.repeat_interleave(block, dim=1)[:, :L]
    masked = torch.rand(x0.shape, generator=generator) < schedule.mask_prob(u.double()).float()
    if complementary:
        flipped = u.double().flatten().tolist()
        flipped = torch.tensor([schedule.time_at(1 - schedule.alpha(v)) for v in flipped]).view_as(u)
        x0, u, masked = torch.cat([x0, x0]), torch.cat([u, flipped.to(u.dtype)]), torch.cat([masked, ~masked])
    always = always_predicted(L, block, shift)
    return x0.masked_fill(masked & ~always, mask_id), masked | always, u


def block_elbo_weights(u: torch.Tensor, schedule: Schedule, always: torch.Tensor) -> torch.Tensor:
    """Per character, the NELBO weight of the block objective: -a'(u) / (1 - a(u)) at its block's time u,
    1 where it is always predicted (its likelihood is exact)."""
    h = 1e-4
    u = u.double().clamp(h, 1 - h)
    slope = (schedule.alpha(u - h) - schedule.alpha(u + h)) / (2 * h)          # -a'(u)
    return torch.where(always, torch.ones_like(u), slope / schedule.mask_prob(u).clamp_min(1e-6)).float()


def block_diffusion_loss(kind: str, logits, x0, targets, u, schedule: Schedule, mask_id: int, always=None):
    """The block objective (nats). masked_ce: mean cross-entropy over the targets. elbo: per character,
    the continuous NELBO weight -a'(u) / (1 - a(u)) of its block's time on masked ones and 1 on the
    always-predicted ones (their likelihood is exact), summed and divided by the characters."""
    if kind == "masked_ce":
        return masked_ce_loss(logits, x0, targets, mask_id)
    if kind != "elbo":
        raise ValueError(f"unknown loss {kind!r}; choose masked_ce or elbo")
    always = torch.zeros_like(targets) if always is None else always.to(targets.device).expand_as(targets)
    w = block_elbo_weights(u, schedule, always.cpu())
    nll = masked_token_nll(logits, x0, mask_id)
    return (nll * targets * w.to(nll.device)).sum() / x0.numel()


# ---- what the model learns: one sentence through the training objective (the app's Forward tab) -----
# One x_t of one sentence, run through the model and scored by the very loss functions above, as
# Trainer.loss_on does for each kind of model: full-sequence diffusion (mask from `corrupt`, the
# timestep if the model embeds it), block diffusion (the paired pass against the clean sentence, the
# always-predicted characters as targets too), or the causal baseline (next-character loss, no masks).

LOSS_KINDS = ("masked_ce", "elbo")


def training_recipe(config: dict | None) -> dict:
    """The training options a checkpoint records (config.json's training.config; {} if absent)."""
    training = (config or {}).get("training")
    recipe = training.get("config") if isinstance(training, dict) else None
    return recipe if isinstance(recipe, dict) else {}


def trained_loss(config: dict | None) -> str:
    """The loss a checkpoint was trained with (masked_ce if it does not say)."""
    loss = training_recipe(config).get("loss")
    return loss if loss in LOSS_KINDS else "masked_ce"


@dataclass(frozen=True)
class Prediction:
    """One character the objective scores."""

    position: int       # its index in the sentence
    true_id: int
    guess_id: int       # the model's most likely character there (never the mask)
    p_true: float       # the probability the model gives the true character
    loss: float         # -log p_true, nats
    weight: float       # its weight in the objective: objective = sum of weight * loss
    masked: bool        # masked in the model's input (False: predicted whatever the noise, or next-character)


@dataclass(frozen=True)
class LossExplanation:
    """What training computes on one sentence at time t: `objective` is exactly the training loss (nats)."""

    model_kind: str     # "diffusion", "block diffusion" or "autoregressive"
    loss: str           # "masked_ce", "elbo", or "next_char" for the causal baseline
    objective: float
    predictions: tuple[Prediction, ...]
    t: int
    T: int
    length: int         # characters in the sentence
    block: int | None = None
    step_weight: float | None = None   # full-sequence elbo: T * w_t


def _predictions(logits, x0, targets, weights, masked, mask_id, offset: int = 0) -> tuple[Prediction, ...]:
    nll = masked_token_nll(logits, x0, mask_id)[0]
    guess = logits[0].float().clone()
    guess[:, mask_id] = float("-inf")
    guess = guess.argmax(-1)
    return tuple(Prediction(i + offset, int(x0[0, i]), int(guess[i]), math.exp(-float(nll[i])), float(nll[i]),
                            float(weights[0, i]), bool(masked[0, i]))
                 for i in targets[0].nonzero().flatten().tolist())


@torch.inference_mode()
def explain_loss(model, x0: torch.Tensor, mask: torch.Tensor, t: int, T: int, schedule: Schedule, mask_id: int,
                 loss: str = "masked_ce") -> LossExplanation:
    """Run one sentence as training does and score it with the training loss.

    x0: (L,) or (1, L) ids; mask: the matching booleans from `corrupt` at time t (ignored by a causal
    model). A block model sees x_t = x0 masked there (not at its always-predicted characters) in the
    paired pass against x0, every block at time u = t / T; its targets are the masked characters and
    the always-predicted ones."""
    model = getattr(model, "_orig_mod", model)      # a compiled model: run the eager one
    cfg, device = model.config, model.token_emb.weight.device
    x0, mask = x0.reshape(1, -1).to(device), mask.reshape(1, -1).to(device=device, dtype=torch.bool)
    L = x0.size(1)
    if cfg.causal:
        logits = model(x0)
        value = autoregressive_loss(logits, x0, mask_id) if L > 1 else torch.zeros(())
        ones = torch.ones(1, L - 1, dtype=torch.bool, device=device)
        preds = _predictions(logits[:, :-1], x0[:, 1:], ones, ones / max(L - 1, 1), ~ones, mask_id, offset=1)
        return LossExplanation(cfg.kind, "next_char", float(value), preds, t, T, L)
    if loss not in LOSS_KINDS:
        raise ValueError(f"unknown loss {loss!r}; choose masked_ce or elbo")
    tt = torch.tensor([t], device=device)
    if cfg.attn_block:
        always = always_predicted(L, cfg.attn_block, cfg.shift).to(device)[None]
        targets, u = mask | always, torch.full((1, L), t / T, dtype=torch.float64)
        logits = model(x0.masked_fill(mask & ~always, mask_id), clean=x0)
        value = block_diffusion_loss(loss, logits, x0, targets, u, schedule, mask_id, always[0])
        weights = (block_elbo_weights(u, schedule, always.cpu()) / L if loss == "elbo"
                   else torch.full((1, L), 1 / max(int(targets.sum()), 1)))
        preds = _predictions(logits, x0, targets, weights, mask & ~always, mask_id)
        return LossExplanation(cfg.kind, loss, float(value), preds, t, T, L, block=cfg.attn_block)
    logits = model(x0.masked_fill(mask, mask_id), tt if cfg.time_embedding else None)
    value = diffusion_loss(loss, logits, x0, mask, tt, T, schedule, mask_id)
    step = float(schedule.elbo_weight(tt.cpu(), T)[0]) * T if loss == "elbo" else None
    weights = torch.full((1, L), step / L if step is not None else 1 / max(int(mask.sum()), 1))
    preds = _predictions(logits, x0, mask, weights, mask, mask_id)
    return LossExplanation(cfg.kind, loss, float(value), preds, t, T, L, step_weight=step)
