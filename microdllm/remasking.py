"""Remasking strategies: what the model proposes for each masked character, and which proposals to keep.

Each denoising step the model proposes a character for every masked position (`propose`); the
strategy scores the proposals, and the sampler reveals the best-scored ones up to its quota
(`choose_reveal`). The rest stay masked: they are "re-masked" for the next step.

  low_confidence  keep masked the positions whose sampled token is least probable (the original)
  margin          ... whose top-1 minus top-2 probability is smallest
  entropy         ... whose predictive entropy is largest
  random          ... chosen uniformly at random
  spread          random too, but the characters revealed in one step are kept apart (at least half
                  their mean spacing), so two characters decided without seeing each other rarely
                  fall in the same word: the factorisation error of parallel decoding shrinks
  none            MDLM ancestral: each masked position is revealed with probability
                  (a(s) - a(u)) / (1 - a(u)); revealed tokens are final

This module knows tensors of logits and scores, not models, prompts or schedules.
"""
from __future__ import annotations

import torch

REMASKING_CHOICES = ("low_confidence", "margin", "entropy", "random", "spread", "none")
SCORED = ("low_confidence", "margin", "entropy", "random", "spread")   # rank proposals by a score
SPREAD_GAP = 0.5   # `spread`: reveals in one step are >= this share of their mean spacing apart


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Keep the top-k tokens and/or the smallest set whose probability reaches top-p; -inf elsewhere."""
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        p = sorted_logits.softmax(-1)
        drop = p.cumsum(-1) - p >= top_p   # keep tokens until the mass before them reaches p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def propose(logits: torch.Tensor, cfg, generator: torch.Generator,
            mask_id: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per position: a proposed token, its probability, and the strategy's score. logits: (L, V).

    cfg: anything with temperature, top_k, top_p and remasking (a SamplerConfig). The token is drawn
    from the tempered, filtered distribution; its probability and the strategy's score come from the
    model's own (the full softmax, as in the original and in LLaDA), so a temperature or a top-p never
    makes an unsure character look sure to the remasking or to the threshold. The mask id is never
    proposed.
    """
    logits = logits.float()
    probs = logits.softmax(-1)
    if cfg.temperature == 0:
        tokens = probs.index_fill(-1, torch.tensor([mask_id]), -1.0).argmax(-1)
    else:
        weights = filter_logits(logits / cfg.temperature, cfg.top_k, cfg.top_p).softmax(-1)
        weights = weights.index_fill(-1, torch.tensor([mask_id]), 0.0)
        weights[weights.sum(-1) == 0] = 1.0  # only the mask survived the filters: fall back to uniform
        weights[:, mask_id] = 0.0
        tokens = torch.multinomial(weights, 1, generator=generator).squeeze(-1)
    p_token = probs.gather(-1, tokens[:, None]).squeeze(-1)
    return tokens, p_token, score(cfg.remasking, probs, p_token, generator)


def without_mask(logits: torch.Tensor, mask_id: int) -> torch.Tensor:
    """Float logits in which the mask id can never be chosen (-inf): a character is never a mask."""
    return logits.float().index_fill(-1, torch.tensor([mask_id]), float("-inf"))


def target_distribution(logits: torch.Tensor, cfg, mask_id: int = 0) -> torch.Tensor:
    """Per row, the distribution a character is drawn from (rows of probabilities summing to 1): the
    tempered, filtered softmax, or at temperature 0 all the mass on the most probable character. Never
    the mask id. Draft and verify compares two of these (the draft's and the verifier's)."""
    logits = without_mask(logits, mask_id)
    if cfg.temperature == 0:
        return torch.zeros_like(logits).scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)
    return filter_logits(logits / cfg.temperature, cfg.top_k, cfg.top_p).softmax(-1)


def score(remasking: str, probs: torch.Tensor, p_token: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Higher = reveal sooner."""
    if remasking == "margin":
        top2 = probs.topk(2, dim=-1).values
        return top2[:, 0] - top2[:, 1]
    if remasking == "entropy":
        return -entropy(probs)                                  # higher = more certain
    if remasking in ("random", "spread"):
        return torch.rand(p_token.shape, generator=generator)
    return p_token


def lowest(score: torch.Tensor, k: int, allowed: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the k lowest-scoring positions among `allowed`."""
    out = torch.zeros_like(allowed)
    k = min(k, int(allowed.sum()))
    if k > 0:
        out[score.masked_fill(~allowed, float("inf")).topk(k, largest=False).indices] = True
    return out


def spread_out(score: torch.Tensor, k: int, allowed: torch.Tensor, gap_share: float = SPREAD_GAP) -> torch.Tensor:
    """Boolean mask of k positions among `allowed`, taken in descending score order but kept at
    least gap_share x (span / k) apart; if the gap leaves fewer than k, the rest in score order."""
    out = torch.zeros_like(allowed)
    idx = allowed.nonzero().squeeze(-1)
    k = min(k, len(idx))
    if k <= 0:
        return out
    order = idx[score[idx].argsort(descending=True, stable=True)].tolist()
    gap = max(1, int(gap_share * (int(idx[-1]) - int(idx[0]) + 1) / k))
    free, taken = [True] * len(allowed), []
    for p in order:
        if len(taken) == k:
            break
        if free[p]:
            taken.append(p)
            lo, hi = max(0, p - gap + 1), min(len(free), p + gap)   # nothing else within gap - 1 of p
            free[lo:hi] = [False] * (hi - lo)
    if len(taken) < k:
        chosen = set(taken)
        taken += [p for p in order if p not in chosen][:k - len(taken)]
    out[taken] = True
    return out


def best(remasking: str, score: torch.Tensor, k: int, allowed: torch.Tensor) -> torch.Tensor:
    """The k best-scored positions among `allowed` (kept apart for `spread`)."""
    return spread_out(score, k, allowed) if remasking == "spread" else lowest(-score, k, allowed)


def entropy_bounded(entropy: torch.Tensor, allowed: torch.Tensor, gamma: float) -> torch.Tensor:
    """EB-sampler (Ben-Hamu et al. 2025): the lowest-entropy positions among `allowed`, as many as keep
    their summed entropy less its largest at most gamma (nats); at least one."""
    out = torch.zeros_like(allowed)
    idx = allowed.nonzero().squeeze(-1)
    if len(idx):
        h, order = entropy[idx].sort()
        before = h.cumsum(0) - h                          # the entropy of the ones before each, in order
        out[idx[order[before <= gamma]]] = True
    return out


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Per row, the entropy (nats) of a distribution (the model's own: the full softmax)."""
    return -(probs * probs.clamp_min(1e-30).log()).sum(-1)


def choose_reveal(cfg, score: torch.Tensor, p_token: torch.Tensor, masked: torch.Tensor, quota: int,
                  a_now: float, a_next: float, generator: torch.Generator,
                  last: torch.Tensor | None = None, entropy: torch.Tensor | None = None) -> torch.Tensor:
    """Which masked positions get their proposed token this step (a revealed token is final).

    The strategy's `quota` best, plus (threshold < 1) every proposal at least that probable, plus
    (entropy_bound, given the positions' entropy) the set `entropy_bounded` picks;
    `none` instead reveals each masked position with MDLM's ancestral probability.
    last: positions no other position of the block reads (with `shift`, a block's last character is
    an input of the next block only). Revealing one early helps no other position and leaves them
    blind to it, so it is revealed only in the step that reveals every other masked position.
    """
    last = torch.zeros_like(masked) if last is None else last & masked
    others = masked & ~last
    if cfg.remasking == "none":
        p_reveal = 1.0 if a_now >= 1 else (a_next - a_now) / (1 - a_now)
        reveal = masked & (torch.rand(masked.shape, generator=generator) < p_reveal)
    else:
        n_others = int(others.sum())
        reveal = best(cfg.remasking, score, min(quota, n_others), others if n_others else masked)
        if quota > n_others:
            reveal |= last
        if cfg.threshold is not None and cfg.threshold < 1:
            reveal |= masked & (p_token >= cfg.threshold)
        if getattr(cfg, "entropy_bound", None) is not None and entropy is not None:
            reveal |= entropy_bounded(entropy, others if n_others else masked, cfg.entropy_bound)
    if (others & ~reveal).any():
        reveal &= ~last
    return reveal
