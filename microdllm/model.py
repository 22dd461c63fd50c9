"""The Transformer denoiser: token ids (+ an optional timestep) in, logits out.

It knows nothing of diffusion. The same network with `causal=True` is the
autoregressive baseline. Architecture of the original micro-dllm: RoPE, RMSNorm
without gains (`F.rms_norm`), QK-norm, relu(x)^2 MLP with 4x expansion, no biases,
untied LM head, learned timestep embedding added to the token embeddings.

With `shift=True` a learned start vector goes in front of the sequence and the output at
position i - 1 is the prediction for character i, as in a left-to-right model; the logits
keep the usual alignment (logits[:, i] is about character i), so no caller needs to know.

With `attn_block=B` attention is block-causal (BD3-LM, Arriola et al. 2025): the network's
inputs (the start vector and characters, with `shift`) are cut into blocks of B, and each input
sees its own block and every block before it. Blocks behind the one being written are then
fixed, so their keys and values can be cached (`KVCache`, `extend`), and `forward_pair` scores
every block of a sequence at once against the clean blocks behind it, in one pass. A position
i is predicted by input i either way, so logits for characters [s, e) come from inputs [s, e).

With `clean_causal` the clean text attends causally instead (BlockGen's x0_causal; TiDAR): its
outputs are then exactly an autoregressive model's (the plain forward is that model), its cache is
that model's cache, and a block being written (a *window*, at any offset) sees all of it and itself.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig


def norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.size(-1),))


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (i, i + d/2) of x: (B, L, H, D) by position-dependent angles."""
    d = x.size(-1) // 2
    x1, x2 = x[..., :d], x[..., d:]
    return torch.cat([x1 * cos + x2 * sin, x2 * cos - x1 * sin], dim=-1)


def window_mask(n_q: int, n_k: int, q_start: int, window: int | None) -> torch.Tensor:
    """(n_q, n_k) booleans for a clean-causal model: inputs before `window` are clean text and attend
    causally; inputs from `window` on (the block being written) see every key. None: all causal."""
    q, k = torch.arange(n_q) + q_start, torch.arange(n_k)
    see = k[None, :] <= q[:, None]
    return see if window is None else see | (q[:, None] >= window)


def block_causal_mask(n_q: int, n_k: int, block: int, q_start: int = 0, k_start: int = 0) -> torch.Tensor:
    """(n_q, n_k) booleans, True where query position q_start + i may see key position k_start + j:
    its own block of `block` positions and every block before it. block = 1 is causal attention."""
    q_blocks = (torch.arange(n_q) + q_start) // block
    k_blocks = (torch.arange(n_k) + k_start) // block
    return k_blocks[None, :] <= q_blocks[:, None]


class KVCache:
    """Keys and values of the inputs [0, length) of one sequence, per layer (after RoPE and QK-norm).

    Kept in buffers that grow by doubling: a new evaluation writes its keys and values behind the
    cached ones in place and attends to a view, instead of copying the whole cache every step (a
    copy that grew with the text and cost every left-to-right step as much as a layer's matmuls)."""

    def __init__(self, n_layer: int):
        self.keys: list[torch.Tensor | None] = [None] * n_layer
        self.values: list[torch.Tensor | None] = [None] * n_layer
        self.length = 0

    def rewind(self, length: int) -> None:
        """Forget every input from `length` on (its slots are written over later)."""
        self.length = min(self.length, length)

    def layer(self, i: int, k: torch.Tensor, v: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached keys/values of layer i followed by k, v (B, H, n, D). The new ones are written
        behind the cached ones; the caller advances `length` past the first `keep` of them."""
        end = self.length + k.size(2)
        if self.keys[i] is None or self.keys[i].size(2) < end or self.keys[i].shape[:2] != k.shape[:2]:
            self._grow(i, k, v, end)
        self.keys[i][:, :, self.length:end] = k
        self.values[i][:, :, self.length:end] = v
        return self.keys[i][:, :, :end], self.values[i][:, :, :end]

    def keep(self, slots: list[int]) -> None:
        """Keep, of the inputs from slots[0] on, only those at `slots` (ascending), moved to slots[0],
        slots[0] + 1, ...: the path a check of a tree of drafts kept; its other branches are forgotten."""
        start, count = slots[0], len(slots)
        if slots[-1] != start + count - 1:                  # not already in place
            rows = torch.tensor(slots)
            for store in (self.keys, self.values):
                for t in store:
                    if t is not None:
                        t[:, :, start:start + count] = t[:, :, rows]
        self.length = min(self.length, start + count)

    def _grow(self, i: int, k: torch.Tensor, v: torch.Tensor, end: int) -> None:
        size = max(end, 2 * (self.keys[i].size(2) if self.keys[i] is not None else 0), 64)
        for store, new in ((self.keys, k), (self.values, v)):
            buffer = new.new_empty(*new.shape[:2], size, new.size(3))
            if store[i] is not None:
                buffer[:, :, :self.length] = store[i][:, :, :self.length]
            store[i] = buffer


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, index: int = 0):
        super().__init__()
        self.n_head, self.head_dim, self.causal, self.index = cfg.n_head, cfg.head_dim, cfg.causal, index
        self.c_q = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.c_k = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.c_v = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x, cos, sin, mask=None, cache: KVCache | None = None, keep: int = 0):
        """mask: (L, L_keys) booleans or None (all-to-all; causal for a causal model without a cache)."""
        B, L, C = x.shape
        q = self.c_q(x).view(B, L, self.n_head, self.head_dim)
        k = self.c_k(x).view(B, L, self.n_head, self.head_dim)
        v = self.c_v(x).view(B, L, self.n_head, self.head_dim).transpose(1, 2)
        # RoPE, then QK-norm: q and k side by side as one set of heads, so each is one pass, not two
        q, k = norm(apply_rotary(torch.cat([q, k], dim=2), cos, sin)).transpose(1, 2).split(self.n_head, dim=1)
        if cache is not None:
            k, v = cache.layer(self.index, k, v, keep)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal and mask is None and cache is None)
        return self.c_proj(y.transpose(1, 2).reshape(B, L, C))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x):
        return self.c_proj(F.relu(self.c_fc(x)).square())


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, index: int = 0):
        super().__init__()
        self.attn = Attention(cfg, index)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask=None, cache=None, keep=0):
        x = x + self.attn(norm(x), cos, sin, mask, cache, keep)
        return x + self.mlp(norm(x))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.token_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.timestep_emb = nn.Embedding(cfg.timesteps + 1, cfg.n_embd) if cfg.time_embedding else None
        self.start = nn.Parameter(torch.empty(cfg.n_embd)) if cfg.shift else None
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        cos, sin = self._rotary_tables(2 * cfg.block_size, cfg.head_dim)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if self.start is not None:
            nn.init.normal_(self.start, mean=0.0, std=0.02)

    @staticmethod
    def _rotary_tables(seq_len: int, head_dim: int, base: float = 10000.0):
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
        return angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]  # (1, L, 1, D/2)

    def inputs(self, idx: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """The network's input vectors: token embeddings (behind the start vector with `shift`),
        plus the timestep embedding. (B, L or L + 1, C)."""
        x = self.token_emb(idx)
        if self.start is not None:
            x = torch.cat([self.start.expand(idx.size(0), 1, -1), x], dim=1)
        if x.size(1) > self.cos.size(1):
            raise ValueError(f"sequence of {idx.size(1)} tokens exceeds the rotary table ({self.cos.size(1)})")
        if self.timestep_emb is not None and t is not None:
            x = x + self.timestep_emb(t).unsqueeze(1)
        return x

    def _inputs_between(self, idx: torch.Tensor, start: int, end: int) -> torch.Tensor:
        """inputs(idx)[:, start:end] without embedding the whole prefix (the KV-cached hot path)."""
        if self.start is None:
            return self.token_emb(idx[:, start:end])
        x = self.token_emb(idx[:, max(start - 1, 0):end - 1])      # input j holds character j - 1
        if start == 0:
            x = torch.cat([self.start.expand(idx.size(0), 1, -1), x], dim=1)
        return x

    def _run(self, x, start: int = 0, mask=None, cache=None, keep=0, positions=None):
        """The blocks and the head over inputs at positions start, start + 1, ... (or `positions`). A cached
        evaluation (inference) hands attention its mask as floats (`_additive`)."""
        if cache is not None:
            mask = _additive(mask)
        pos = positions if positions is not None else torch.arange(start, start + x.size(1), device=x.device)
        cos, sin = self.cos[:, pos], self.sin[:, pos]
        x = norm(x)
        for block in self.blocks:
            x = block(x, cos, sin, mask, cache, keep)
        return self.lm_head(norm(x))

    def _mask(self, n_q: int, n_k: int, q_start: int = 0, block: int | None = None,
              window: int | None = None) -> torch.Tensor | None:
        """The attention mask (None: every query sees every key, e.g. one block against its cache).
        window: a clean-causal model's block being written starts at this input (None: none)."""
        if self.config.clean_causal:
            one_clean_input = window is None and n_q == 1 and n_k == q_start + 1
            if one_clean_input or (window is not None and window <= q_start):
                return None                 # one clean input, or only the window's inputs: they see every key
            return window_mask(n_q, n_k, q_start, window).to(self.cos.device)
        block = block or attention_block(self.config)
        if block is None or (q_start // block == (q_start + n_q - 1) // block and n_k <= q_start + n_q):
            return None
        return block_causal_mask(n_q, n_k, block, q_start).to(self.cos.device)

    def forward(self, idx: torch.Tensor, t: torch.Tensor | None = None, clean: torch.Tensor | None = None,
                block: int | None = None, with_clean: bool = False) -> torch.Tensor:
        """idx: (B, L) token ids; t: (B,) integer timesteps in [0, T] or None. Returns (B, L, V) logits.

        clean (block-causal models): a second (B, L) sequence that every block of `idx` sees in place
        of the blocks before it, while seeing only itself of `idx`: the vectorised block-diffusion pass
        of BD3-LM (x_t and x_0 side by side in one forward; `forward_pair`). block: the attention
        block of a block-causal model, if not the one it was built with (a model trained over
        several block sizes serves each of them); with_clean: see `forward_pair`. A clean-causal
        model's plain forward is causal: the autoregressive model it holds."""
        if clean is not None:
            return self.forward_pair(idx, clean, block, with_clean)
        L = idx.size(1)
        x = self.inputs(idx, t)
        mask = self._mask(x.size(1), x.size(1), block=block) if self.config.attn_block else None
        return self._run(x, mask=mask)[:, :L]  # with `shift`: the output at i - 1 is about character i

    def forward_pair(self, noisy: torch.Tensor, clean: torch.Tensor, block: int | None = None,
                     with_clean: bool = False):
        """Logits for every block of `noisy`, each seeing itself and the blocks of `clean` before it.
        with_clean: also the clean half's own logits (a clean-causal model: its autoregressive ones)."""
        L = noisy.size(1)
        xt, x0 = self.inputs(noisy), self.inputs(clean)
        n = xt.size(1)
        block = block or self.config.attn_block or n
        seen = block_causal_mask(n, n, block)                       # own block and those before it
        before = block_causal_mask(n, n, block, q_start=-block)     # blocks strictly before
        own = block_causal_mask(n, n, 1) if self.config.clean_causal else seen
        mask = torch.cat([torch.cat([seen & ~before, before], 1),   # noisy: itself, then clean context
                          torch.cat([torch.zeros_like(seen), own], 1)], 0).to(xt.device)   # clean: clean only
        pos = torch.arange(n, device=xt.device).repeat(2)
        logits = self._run(torch.cat([xt, x0], 1), mask=mask, positions=pos)
        return (logits[:, :L], logits[:, n:n + L]) if with_clean else logits[:, :L]

    @torch.inference_mode()
    def extend(self, idx: torch.Tensor, end: int, cache: KVCache, keep: int = 0, block: int | None = None,
               window: int | None = None) -> torch.Tensor:
        """Logits for characters [cache.length, end) of `idx` (1, >= end), computed from the inputs
        [cache.length, end) against the cached ones; the first `keep` of those inputs join the cache.
        For block-causal (and causal) models: keep the cache at the end of a block that is final.
        window (clean-causal models): the inputs from here on are the block being written."""
        start = cache.length
        x = self._inputs_between(idx, start, end)
        logits = self._run(x, start, self._mask(end - start, end, q_start=start, block=block, window=window),
                           cache, keep)
        cache.length += keep
        return logits

    @torch.inference_mode()
    def verify_and_draft(self, clean: torch.Tensor, cache: KVCache, windows: list[tuple[int, torch.Tensor]] = (),
                         parents: list[int] | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One evaluation of a clean-causal model with two kinds of inputs behind the cached ones (TiDAR):

        clean: (k,) ids read causally by the inputs at cache.length, cache.length + 1, ... (-1: the start
            vector); all of them join the cache (rewind what turns out wrong). The clean half: what the
            autoregressive model computes, there.
        windows: blocks being written, each (a, ids): ids (masks, mostly) read by inputs whose first sits
            at clean input a's position and reads the same id; a window sees the clean inputs before a
            and itself, as a block sees the blocks behind it in training. Several windows at different
            a are the drafts for each way a check of the clean inputs can end.
        parents: the clean inputs as a tree (tree attention, SpecInfer / Medusa): the index of each one's
            parent among them (-1: the cached text), parents first. An input sits one position after its
            parent and sees only its ancestors, so each path from the first is a text the autoregressive
            model reads; "before a" is then a's ancestors. None: a chain (each input's parent the one before).

        Returns the clean inputs' logits (k, V) and each window's (W_i, V)."""
        n, k = cache.length, clean.numel()
        if not windows and parents is None:                  # the clean half alone: causal, as extend
            x = self._embed_reads(clean, n)
            logits = self._run(x[None], n, self._mask(k, n + k, q_start=n), cache, keep=k)[0]
            cache.length += k
            return logits, []
        if parents is None:
            ancestors, depth = torch.ones(k, k, dtype=torch.bool).tril(), torch.arange(k)
        else:
            ancestors, depth = tree_ancestors(parents)
        reads = torch.cat([clean, *(ids for _, ids in windows)])
        x = self._embed_reads(reads, n)
        positions = torch.cat([n + depth] + [torch.arange(n + int(depth[a]), n + int(depth[a]) + ids.numel())
                                             for a, ids in windows]).to(self.cos.device)
        mask = _verify_draft_mask(n, ancestors, [(a, ids.numel()) for a, ids in windows]).to(self.cos.device)
        logits = self._run(x[None], mask=mask, cache=cache, keep=k, positions=positions)[0]
        cache.length += k
        return logits[:k], list(logits[k:].split([ids.numel() for _, ids in windows]))

    def _embed_reads(self, reads: torch.Tensor, n: int) -> torch.Tensor:
        """Embeddings of ids (-1: the start vector, which only the text's first input reads)."""
        x = self.token_emb(reads.clamp_min(0))
        if self.start is not None and n == 0:
            x = torch.where((reads < 0)[:, None], self.start, x)
        return x

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _additive(mask: torch.Tensor | None) -> torch.Tensor | None:
    """A boolean attention mask as the float one SDPA adds to its scores (0 where seen, -inf where not):
    the same attention; on the CPU the float form takes a faster kernel (~25% at 41 queries x 300 keys)."""
    if mask is None:
        return None
    return torch.zeros(mask.shape, device=mask.device).masked_fill_(~mask, float("-inf"))


def tree_ancestors(parents: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """For a tree given by each node's parent (-1: the root's; parents first): (k, k) booleans, [i, j] where
    j is i or one of its ancestors, and each node's depth (0 for a child of the root)."""
    k = len(parents)
    ancestors, depth = torch.eye(k, dtype=torch.bool), torch.zeros(k, dtype=torch.long)
    for i, parent in enumerate(parents):
        if not -1 <= parent < i:
            raise ValueError(f"node {i}'s parent {parent} is not a node before it")
        if parent >= 0:
            ancestors[i] |= ancestors[parent]
            depth[i] = depth[parent] + 1
    return ancestors, depth


def _verify_draft_mask(n: int, ancestors: torch.Tensor, windows: list[tuple[int, int]]) -> torch.Tensor:
    """(k + sum W_i, n + k + sum W_i) for `verify_and_draft`: keys are the n cached and k new clean inputs,
    then each window's W_i inputs. Every query sees the cached keys; a clean query sees itself and its
    ancestors among the clean keys (`tree_ancestors`: a chain's are the inputs before it); the queries of
    a window anchored at clean input a see a's ancestors but not a, and their own window."""
    k, w = len(ancestors), sum(width for _, width in windows)
    mask = torch.zeros(k + w, n + k + w, dtype=torch.bool)
    mask[:, :n] = True
    mask[:k, n:n + k] = ancestors
    first = k
    for a, width in windows:
        rows = slice(first, first + width)
        mask[rows, n:n + k] = ancestors[a]
        mask[rows, n + a] = False
        mask[rows, n + first:n + first + width] = True
        first += width
    return mask


def attention_block(config: ModelConfig) -> int | None:
    """The block of the model's block-causal attention: attn_block, 1 for a causal model, None (all to all)."""
    return config.attn_block or (1 if config.causal else None)


def attention_pattern(config: ModelConfig, n: int) -> list[list[bool]]:
    """The first n x n of the attention mask the model applies (`Transformer._mask`), as plain booleans:
    row = query, column = key, True where it may attend (positions are the network's inputs; with
    `shift`, input 0 is the start vector and input j reads character j - 1)."""
    return block_causal_mask(n, n, attention_block(config) or max(n, 1)).tolist()
