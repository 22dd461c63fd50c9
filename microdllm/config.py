"""Model configuration and named presets.

`micro` is exactly the original micro-dllm network (10,706,304 parameters at vocab 66).
`tiny` is the small CPU-friendly preset the bundled demo model uses.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 66        # text characters + 1 mask id
    block_size: int = 256       # context length in characters
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    timesteps: int = 100        # T: discrete diffusion steps the timestep embedding knows
    time_embedding: bool = True  # learned Embedding(T+1, d) added to token embeddings
    causal: bool = False        # causal attention + next-character loss = autoregressive baseline
    shift: bool = False         # predict each character from the position to its left, behind a learned
                                # start vector: the alignment of an autoregressive model, so a diffusion
                                # model can start from one (DiffuGPT, Gong et al. 2025; Dream 7B)
    attn_block: int | None = None  # block-causal attention: positions see their own block of this many
                                # and every block before it (block diffusion, BD3-LM); None: all see all
    clean_causal: bool = False  # block diffusion: the clean text (the blocks behind the one being written)
                                # attends causally, so it computes what the autoregressive model computes and
                                # is one (BlockGen's x0_causal, TiDAR); the block being written sees it all

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.shift and self.causal:
            raise ValueError("shift is for bidirectional models; a causal model predicts the next character already")
        if self.attn_block is not None:
            if self.causal:
                raise ValueError("attn_block is for block diffusion; a causal model attends left to right already")
            if not 1 <= self.attn_block <= self.block_size:
                raise ValueError(f"attn_block must be between 1 and block_size ({self.block_size}), got {self.attn_block}")
            if self.time_embedding:
                raise ValueError("a block-causal model has one noise level per block: use it without a timestep embedding")
        elif self.clean_causal:
            raise ValueError("clean_causal is for block diffusion: give the model an attn_block")
        if (self.n_embd // self.n_head) % 2:
            raise ValueError("head_dim must be even for rotary embeddings")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "timesteps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def kind(self) -> str:
        """"autoregressive", "block diffusion" or "diffusion" (full sequence): what the attention pattern makes it."""
        if self.causal:
            return "autoregressive"
        return "block diffusion" if self.attn_block is not None and self.attn_block < self.block_size else "diffusion"

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


MODEL_PRESETS: dict[str, ModelConfig] = {
    # The original micro-dllm: 6 layers, 6 heads, 384 dims, head_dim 64, block 256, T = 100.
    "micro": ModelConfig(n_layer=6, n_head=6, n_embd=384),
    # Small enough to train to readable TinyStories on two CPU cores.
    "tiny": ModelConfig(n_layer=4, n_head=4, n_embd=256),
    # For tests: builds and steps in milliseconds.
    "test": ModelConfig(n_layer=2, n_head=2, n_embd=64, block_size=64),
}


def get_preset(name: str, **overrides) -> ModelConfig:
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(MODEL_PRESETS)}")
    return MODEL_PRESETS[name].replace(**overrides)
