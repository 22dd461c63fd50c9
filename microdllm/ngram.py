"""A character n-gram model of the training text: the copula that makes a draft's characters agree.

The block half drafts a window's positions in one pass, each from its own distribution q_j: it sees
the text before the window, not the characters drafted beside it (they are masks to it). Drawn
independently, they often disagree ("tha" from "th" and "ha" both likely). An n-gram of the training
text knows which characters follow which, so a draft is drawn left to right, each character from

    q_j(c) * (P(c | the few characters before it) / P(c)) ^ beta

(the text's last characters, then those drawn before it): the window's marginals tied together by the
n-gram's dependencies, a copula over them (Discrete Copula Diffusion, Liu et al. 2024, ties a diffusion
model's marginals with an autoregressive model). Speculative sampling keeps the verifier's text exact
for any draft distribution (sampling/draft.py), so the copula changes how much of a draft is kept, never
what is written. Stored beside the weights (`ngram.safetensors`: counts only, derived from the text).

P(c | context) interpolates the orders (Jelinek-Mercer style, the lower order as the prior):
P_m(c | x_1..x_m) = (count(x_1..x_m c) + SMOOTHING * P_{m-1}(c | x_2..x_m)) / (count(x_1..x_m .) + SMOOTHING).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from .atomic import atomic_write

NGRAM_NAME = "ngram.safetensors"
ORDER = 5                  # 4 characters of context: measured against 3-6 (docs/experiments.md 6p)
SMOOTHING = 2.0
MAX_ORDER = 8
MAX_FILE_BYTES = 64_000_000
CACHED_CONTEXTS = 8192     # conditionals and weights kept (V floats each: 8 MB for the bundled vocabulary of 84)
FORMAT = "microdllm-ngram"


class NGramError(ValueError):
    """An n-gram file is unreadable or does not fit the vocabulary."""


class NGram:
    """Counts of every k-gram (k = 1..order) of a text of ids, each k-gram as one base-V integer."""

    def __init__(self, vocab_size: int, keys: list[np.ndarray], counts: list[np.ndarray]):
        if not 1 <= len(keys) <= MAX_ORDER or vocab_size ** len(keys) >= 2 ** 63:
            raise NGramError(f"orders 1-{len(keys)} of {vocab_size} ids do not fit 64-bit keys (at most order {MAX_ORDER})")
        self.vocab_size, self.keys, self.counts = vocab_size, keys, counts
        self.order = len(keys)
        unigram = np.ones(vocab_size)
        unigram[keys[0]] += counts[0]
        self.unigram = unigram / unigram.sum()
        self._conditional = functools.lru_cache(maxsize=CACHED_CONTEXTS)(self._compute)
        self._coupling = functools.lru_cache(maxsize=CACHED_CONTEXTS)(self._weights)

    @classmethod
    def from_ids(cls, ids, vocab_size: int, order: int = ORDER) -> "NGram":
        """Count the k-grams of `ids` (a sequence of token ids) for k = 1..order."""
        ids = np.asarray(ids, dtype=np.int64)
        if not 1 <= order <= MAX_ORDER or vocab_size ** order >= 2 ** 63:
            raise NGramError(f"orders 1-{order} of {vocab_size} ids do not fit 64-bit keys (at most order {MAX_ORDER})")
        keys, counts = [], []
        for k in range(1, order + 1):
            code = np.zeros(max(len(ids) - k + 1, 0), dtype=np.int64)
            for i in range(k):
                code = code * vocab_size + ids[i:len(ids) - k + 1 + i]
            unique, n = np.unique(code, return_counts=True)
            keys.append(unique)
            counts.append(n.astype(np.int32))
        return cls(vocab_size, keys, counts)

    def conditional(self, context) -> np.ndarray:
        """P(c | context) for every id c: the last order - 1 characters of `context` (ids) are read."""
        return self._conditional(self._read(context))

    def coupling(self, context, beta: float) -> torch.Tensor:
        """(P(c | context) / P(c)) ^ beta: how much likelier each character is after this context (cached:
        a draft asks for the same few contexts every round; do not write into the tensor)."""
        return self._coupling(self._read(context), beta)

    def _read(self, context) -> tuple[int, ...]:
        """The part of a context the n-gram reads: its last order - 1 ids."""
        context = tuple(context)
        return context[max(len(context) - (self.order - 1), 0):]

    def _weights(self, context: tuple[int, ...], beta: float) -> torch.Tensor:
        return torch.from_numpy((self._conditional(context) / self.unigram) ** beta).float()

    def _compute(self, context: tuple[int, ...]) -> np.ndarray:
        if not context:
            return self.unigram
        prior = self._conditional(context[1:])
        base = 0
        for x in context:
            base = base * self.vocab_size + x
        keys, counts = self.keys[len(context)], self.counts[len(context)]
        lo, hi = np.searchsorted(keys, [base * self.vocab_size, (base + 1) * self.vocab_size])
        seen = np.zeros(self.vocab_size)
        seen[keys[lo:hi] % self.vocab_size] = counts[lo:hi]
        return (seen + SMOOTHING * prior) / (seen.sum() + SMOOTHING)

    def save(self, path) -> Path:
        tensors = {}
        for k, (keys, counts) in enumerate(zip(self.keys, self.counts), start=1):
            tensors[f"order{k}.keys"], tensors[f"order{k}.counts"] = keys, counts
        meta = {"format": FORMAT, "vocab_size": str(self.vocab_size), "order": str(self.order)}
        return atomic_write(Path(path), lambda p: save_file(tensors, str(p), metadata=meta))


def load_ngram(path, vocab_size: int, where: str | None = None) -> NGram:
    """Read an n-gram file, checking its size, header and every array before trusting it (NGramError)."""
    path, where = Path(path), where or str(path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise NGramError(f"{where}: {size / 1e6:,.1f} MB; an n-gram file is at most {MAX_FILE_BYTES / 1e6:,.0f} MB")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            order = _declared_order(meta, vocab_size, where)
            names = {f"order{k}.{part}" for k in range(1, order + 1) for part in ("keys", "counts")}
            if set(f.keys()) != names:
                raise NGramError(f"{where}: holds {sorted(f.keys())[:4]}..., expected the keys and counts of orders 1-{order}")
            arrays = {name: f.get_tensor(name) for name in names}
    except (SafetensorError, OSError) as e:
        raise NGramError(f"{where}: cannot be read as safetensors (truncated or corrupt?): {e}") from e
    keys = [arrays[f"order{k}.keys"] for k in range(1, order + 1)]
    counts = [arrays[f"order{k}.counts"] for k in range(1, order + 1)]
    for k, (key, count) in enumerate(zip(keys, counts), start=1):
        _check_order(key, count, k, vocab_size, where)
    return NGram(vocab_size, keys, counts)


def _declared_order(meta: dict, vocab_size: int, where: str) -> int:
    if meta.get("format") != FORMAT:
        raise NGramError(f"{where}: not a micro-dLLM n-gram file (format {meta.get('format')!r})")
    if meta.get("vocab_size") != str(vocab_size):
        raise NGramError(f"{where}: counts a vocabulary of {meta.get('vocab_size')} ids, the model has {vocab_size}")
    order = meta.get("order", "")
    if not order.isdigit() or not 1 <= int(order) <= MAX_ORDER:
        raise NGramError(f"{where}: order {order!r}; an n-gram file has orders 1 to at most {MAX_ORDER}")
    return int(order)


def _check_order(keys: np.ndarray, counts: np.ndarray, k: int, vocab_size: int, where: str) -> None:
    if keys.dtype != np.int64 or counts.dtype != np.int32 or keys.ndim != 1 or keys.shape != counts.shape:
        raise NGramError(f"{where}: order {k} must be int64 keys and int32 counts of one length")
    if len(keys) and (keys[0] < 0 or keys[-1] >= vocab_size ** k or np.any(np.diff(keys) <= 0) or counts.min() < 1):
        raise NGramError(f"{where}: order {k}'s keys must be distinct {k}-grams in order, each counted at least once")
