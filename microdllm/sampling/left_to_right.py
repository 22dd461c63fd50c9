"""The autoregressive baseline as the same stream: one character per step, left to right, from a
KV cache; positions not yet written are masks, so every view renders it like the other samplers.
"""
from __future__ import annotations

from typing import Iterator

import torch

from ..model import KVCache
from ..remasking import propose
from ..tokenizer import CharTokenizer
from .canvas import generation_length, resumed
from .config import DEFAULT, SamplerConfig, SamplingError
from .state import DenoiseState, candidates, timed


def left_to_right(model, tokenizer: CharTokenizer, prompt: str = "", config: SamplerConfig | None = None, *,
                  start: DenoiseState | None = None, **overrides) -> Iterator[DenoiseState]:
    """The autoregressive baseline as the same stream: one character per step, left to right.

    For a causal model (`model.config.causal`): every step runs the model on the text so far and
    samples the next character (temperature, top-k, top-p, seed as for `denoise`); positions not
    yet written are shown as masks, so every view renders both kinds of model alike. start: branch
    from a state whose masks all come after its text (see `denoise`).
    """
    return timed(_left_to_right(model, tokenizer, prompt, (config or DEFAULT).replace(**overrides), start))


@torch.inference_mode()
def _left_to_right(model, tokenizer, prompt, cfg, start: DenoiseState | None = None) -> Iterator[DenoiseState]:
    if not model.config.causal:
        raise SamplingError("left-to-right generation needs a causal (autoregressive) model")
    ids, n_gen, fixed = _ar_start(model, tokenizer, prompt, cfg, start)
    L, mask_id, n = model.config.block_size, tokenizer.mask_id, len(ids)
    # A story starts after a blank line in the training text: the hidden context of an empty prompt.
    context = tokenizer.encode(tokenizer.clean("\n\n")) or [mask_id]
    seq = torch.tensor(context + ids + [mask_id] * n_gen)      # what the model reads; x = seq[len(context):]
    x = seq[len(context):]
    conf = torch.tensor(start.confidence) if start else torch.full(x.shape, float("nan"))
    g, greedy = torch.Generator().manual_seed(cfg.seed), cfg.replace(remasking="low_confidence")
    cache, s0, nfe0 = KVCache(model.config.n_layer), start.step if start else 0, start.nfe if start else 0
    work = start.positions_evaluated if start else 0

    def state(step, revealed_at=None, noted=()):
        masked = x == mask_id
        revealed = [False] * len(x)
        if revealed_at is not None:
            revealed[revealed_at] = True
        span = None if revealed_at is None else (revealed_at, revealed_at + 1)
        ids = x.tolist()
        return DenoiseState(s0 + step, s0 + n_gen, 1 - step / n_gen, tuple(ids), tokenizer.decode(ids),
                            tuple(masked.tolist()), tuple(revealed), (False,) * len(x), tuple(conf.tolist()), fixed,
                            nfe0 + step, 0.0, step == n_gen, span, (), work,
                            "left to right" if step else "start", (), noted)

    yield state(0)
    for step in range(1, n_gen + 1):
        end = len(context) + n + step - 1                  # the model reads seq[:end] to write x[end - len(context)]
        if end <= L and hasattr(model, "extend"):          # KV-cached: only the new positions are evaluated
            work += end - cache.length
            logits = model.extend(seq[None].to(_device(model)), end, cache, keep=end - cache.length)[0, -1:]
        else:                            # uncached (past the context: a sliding window)
            work += min(end, L)
            logits = model(seq[None, max(0, end - L):end].to(_device(model)))[0, -1:]
        logits, i = logits.float().cpu(), end - len(context)
        token, p_tok, _ = propose(logits, greedy, g, mask_id)
        x[i], conf[i] = token[0], p_tok[0]
        yield state(step, revealed_at=i, noted=(candidates(i, logits[0], int(token[0]), tokenizer),))


def _ar_start(model, tokenizer, prompt: str, cfg: SamplerConfig, start: DenoiseState | None):
    """(prompt ids, characters to write, fixed flags): from the prompt, or from a branch's draft, whose
    masks must all come after its text (a left-to-right model writes only at the end)."""
    if start is None:
        ids = tokenizer.encode(prompt)
        n_gen = generation_length(cfg, len(ids), model.config.block_size)
        return ids, n_gen, tuple([True] * len(ids) + [False] * n_gen)
    ids = resumed(start, model)
    first = list(start.masked).index(True)
    if not all(start.masked[first:]):
        raise SamplingError("a left-to-right model continues only a draft whose masks all come after its text; "
                            "this draft has text after a mask (continue it with a diffusion model)")
    return ids[:first], len(ids) - first, start.fixed


def _device(model) -> torch.device:
    return next(model.parameters()).device

