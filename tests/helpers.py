"""Small shared builders for the unit tests (the app tests have their own fixtures in conftest.py)."""
from __future__ import annotations

from pathlib import Path

import torch

from microdllm.config import get_preset
from microdllm.model import Transformer
from microdllm.tokenizer import CharTokenizer

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
TRAIN_TXT = SHARED / "data" / "tinystories_train.txt"

STORY = ("Once upon a time, there was a little girl named Lily. She loved to play in the park with her dog. "
         "One day, Lily saw a big red ball under a tree. \"Look!\" she said. Her dog ran to the ball and they "
         "played all day. When the sun went down, Lily and her dog went home happy.\n\n")


def story_text(n_chars: int = 6000) -> str:
    """Training-like text without depending on the shared corpus."""
    return (STORY * (n_chars // len(STORY) + 1))[:n_chars]


def tiny_model(tokenizer: CharTokenizer | None = None, seed: int = 0, **overrides) -> tuple[Transformer, CharTokenizer]:
    tokenizer = tokenizer or CharTokenizer.from_text(story_text())
    torch.manual_seed(seed)
    model = Transformer(get_preset("test", vocab_size=tokenizer.vocab_size, **overrides)).eval()
    return model, tokenizer
