"""Import a checkpoint written by the original micro-dllm `train.py` (a torch.save dict).

Read with `torch.load(weights_only=True)`: tensors and plain containers only, no code runs.
The original vocabulary is ['_'] + sorted(set(text)) with '_' (id 0) as the mask, which is
exactly our layout: id 0 = mask, ids 1.. = the sorted characters.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from .checkpoint import CheckpointError, save_checkpoint
from .config import ModelConfig
from .model import Transformer
from .tokenizer import CharTokenizer

HEAD_DIM = 64  # the original fixes head_dim = n_embd // n_head = 64


def original_vocab(text: str) -> CharTokenizer:
    chars = sorted(set(text))
    if "_" in chars:
        # The original gave '_' two meanings (mask and character); both mapped to one id it never wrote.
        chars.remove("_")
    return CharTokenizer(chars)


def import_original(checkpoint_path, vocab_text_path, out_dir, block_size: int = 256, timesteps: int | None = None) -> Path:
    """Convert an original micro-dllm checkpoint into a safetensors checkpoint directory."""
    checkpoint_path = Path(checkpoint_path)
    if not checkpoint_path.is_file():
        raise CheckpointError(f"{checkpoint_path}: no such file")
    try:
        obj = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncation, refused globals
        raise CheckpointError(f"{checkpoint_path}: cannot be read as a weights-only torch checkpoint: {e}") from e
    state = obj.get("model_state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or "token_emb.weight" not in state:
        raise CheckpointError(f"{checkpoint_path}: no original micro-dllm model_state_dict (token_emb.weight missing)")
    text = Path(vocab_text_path).read_text(encoding="utf-8")
    tokenizer = original_vocab(text)

    vocab_size, n_embd = state["token_emb.weight"].shape
    if vocab_size != tokenizer.vocab_size:
        raise CheckpointError(f"{checkpoint_path}: embedding has {vocab_size} rows but {vocab_text_path} "
                              f"gives a vocabulary of {tokenizer.vocab_size} (is it the training text?)")
    n_layer = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
    has_time = "timestep_emb.weight" in state
    T = state["timestep_emb.weight"].shape[0] - 1 if has_time else (timesteps or 100)
    config = ModelConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer,
                         n_head=n_embd // HEAD_DIM, n_embd=n_embd, timesteps=T, time_embedding=has_time)
    model = Transformer(config)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items() if k in model.state_dict()}, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{checkpoint_path}: parameters do not fit the original architecture: {e}") from e
    meta = {"imported_from": checkpoint_path.name, "original_iter": int(obj.get("iter", -1)) if isinstance(obj, dict) else -1,
            "recipe": "original micro-dllm train.py (AdamW, mean masked CE, cosine schedule)"}
    return save_checkpoint(out_dir, model, tokenizer, "cosine", training=meta)
