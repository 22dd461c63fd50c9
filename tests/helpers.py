"""Small shared builders for the unit tests (the app tests have their own fixtures in conftest.py)."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from microdllm.config import get_preset
from microdllm.model import Transformer
from microdllm.tokenizer import CharTokenizer

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
TRAIN_TXT = SHARED / "data" / "tinystories_train.txt"
CHROMIUM = Path("/usr/bin/chromium")      # Debian's; never a browser a test tool downloads
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

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


def train_clean_causal(out: Path):
    """A test-size clean-causal block model (B = 8, trained over B = 4 and 8 with the next-character loss)
    trained a little on a repeated story, so that its drafts are sometimes kept: every path of draft
    and verify is taken. Saved to out / "run"; returns the Trainer (its model, tokenizer)."""
    from microdllm.train import Trainer
    from microdllm.train_config import TrainConfig

    data = out / "story.txt"
    data.write_text(story_text(8000))
    cfg = TrainConfig(out=str(out / "run"), data=[str(data)], preset="test", shift=True, time_embedding=False,
                      attn_block=8, block_sizes=[4, 8], clean_causal=True, ar_weight=1.0, mask_range=[0.1, 1.0],
                      schedule="linear", optimizer="adamw", lr=3e-3, batch_size=16, max_iters=150, warmup_iters=10,
                      eval_interval=1000, save_interval=1000, eval_windows=4, eval_timesteps=2, progress=False)
    trainer = Trainer(cfg)
    trainer.train()
    trainer.save()
    return trainer


def wait_for(predicate, timeout: float, what: str) -> float:
    """Poll predicate every 0.1 s; fail naming `what` after `timeout` seconds; return the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - started
