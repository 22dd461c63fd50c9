"""The Transformer denoiser: token ids (+ an optional timestep) in, logits out.

It knows nothing of diffusion. The same network with `causal=True` is the
autoregressive baseline. Architecture of the original micro-dllm: RoPE, RMSNorm
without gains (`F.rms_norm`), QK-norm, relu(x)^2 MLP with 4x expansion, no biases,
untied LM head, learned timestep embedding added to the token embeddings.

With `shift=True` a learned start vector goes in front of the sequence and the output at
position i - 1 is the prediction for character i, as in a left-to-right model; the logits
keep the usual alignment (logits[:, i] is about character i), so no caller needs to know.
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


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head, self.head_dim, self.causal = cfg.n_head, cfg.head_dim, cfg.causal
        self.c_q = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.c_k = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.c_v = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x, cos, sin):
        B, L, C = x.shape
        q = self.c_q(x).view(B, L, self.n_head, self.head_dim)
        k = self.c_k(x).view(B, L, self.n_head, self.head_dim)
        v = self.c_v(x).view(B, L, self.n_head, self.head_dim)
        q, k = norm(apply_rotary(q, cos, sin)), norm(apply_rotary(k, cos, sin))  # RoPE, then QK-norm
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=self.causal
        )  # (B, H, L, D)
        return self.c_proj(y.transpose(1, 2).reshape(B, L, C))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x):
        return self.c_proj(F.relu(self.c_fc(x)).square())


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn = Attention(cfg)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin):
        x = x + self.attn(norm(x), cos, sin)
        return x + self.mlp(norm(x))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.token_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.timestep_emb = nn.Embedding(cfg.timesteps + 1, cfg.n_embd) if cfg.time_embedding else None
        self.start = nn.Parameter(torch.empty(cfg.n_embd)) if cfg.shift else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
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

    def forward(self, idx: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """idx: (B, L) token ids; t: (B,) integer timesteps in [0, T] or None. Returns (B, L, V) logits."""
        B, L = idx.shape
        x = self.token_emb(idx)
        if self.start is not None:
            x = torch.cat([self.start.expand(B, 1, -1), x], dim=1)
        n = x.size(1)
        if n > self.cos.size(1):
            raise ValueError(f"sequence of {L} tokens exceeds the rotary table ({self.cos.size(1)})")
        if self.timestep_emb is not None and t is not None:
            x = x + self.timestep_emb(t).unsqueeze(1)
        x = norm(x)
        cos, sin = self.cos[:, :n], self.sin[:, :n]
        for block in self.blocks:
            x = block(x, cos, sin)
        if self.start is not None:
            x = x[:, :L]  # the output at position i - 1 (the start vector for i = 0) is about character i
        return self.lm_head(norm(x))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
