"""The sampler's knobs (`SamplerConfig`), checked on construction, and the measured presets.

Knows numbers and names only: no model, no tensors.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Iterator

from ..diffusion import SCHEDULES
from ..remasking import REMASKING_CHOICES

POLISH_CONFIDENCE = 0.5   # a polish pass replaces a character only with one the model gives more than this
MAX_STEPS = 1000
MAX_POLISH = 16
MAX_DRAFT_WINDOW = 64
MAX_COPULA = 4.0
TRAINING_SCHEDULE = "model"   # what the UI and the CLI call "the model's training schedule"
# How a model writes: from masks (every model but the autoregressive one), or, for a block model whose
# clean half is causal, by drafting a block and checking it with that half (verify.py), or with that
# half alone, one character a step ("left-to-right"; an autoregressive model's only way).
MODES = ("denoise", "verify", "left-to-right")


class SamplingError(ValueError):
    """A sampling setting or prompt is out of range; the message says the limit."""


@dataclass(frozen=True)
class SamplerConfig:
    """Every knob of the sampler; checked on construction (the error says the limit)."""
    steps: int = 12
    temperature: float = 0.0        # 0 = greedy
    remasking: str = "spread"       # one of REMASKING_CHOICES
    remask_ratio: float = 0.0       # > 0: the original's refinement (see above)
    gen_len: int | None = 200       # None: to the end of the context
    top_k: int = 0                  # 0 = off
    top_p: float = 1.0              # 1 = off
    seed: int = 0
    block_len: int | None = None    # semi-autoregressive blocks of this many generated positions (a block-
                                    # diffusion model: its attention block; default the one it was trained with)
    threshold: float | None = 0.8   # also reveal every masked position this confident; None or 1 = off
    entropy_bound: float | None = None  # also reveal the surest masks whose entropies, less the largest, sum to
                                        # at most this (nats; EB-sampler); None = off
    reveal_schedule: str | None = "linear"  # masks left after each step; None = the training schedule
    final_pass: bool = False        # the original's extra greedy pass at t = 0
    polish: int = 6                 # passes that re-read the finished draft and fix typos (0 = off)
    lookahead: bool = True          # a shifted block model: look one block ahead on a guess (`Lookahead`)
    mode: str = "denoise"           # one of MODES
    merge: bool = True              # verify: the evaluation that checks a draft also drafts the next one
    draft_window: int | None = None # verify: the window a draft is written in, the verifier's character
                                    # first (a sub-block of the attention block); None: block_len or the block
    outcome_windows: int = 0        # verify, merged: how many more of the ways a check can end (kept whole, its
                                    # 1st, 2nd, ... drafted character turned down) than the likeliest get a
                                    # window of their own (TiDAR), the likeliest by the draft's odds
    draft_tree: int = 0             # verify: check a tree of this many drafted characters, the likeliest paths
                                    # through the window (Medusa), instead of one path drawn from it (0)
    copula: float = 0.0             # verify: how strongly the checkpoint's character n-gram ties a draft's
                                    # characters together (the weight beta of ngram.py; 0 = off, or no n-gram)

    def __post_init__(self):
        for message in _problems(self):
            raise SamplingError(message)

    def replace(self, **changes) -> "SamplerConfig":
        return dataclasses.replace(self, **changes)


def _problems(cfg: SamplerConfig) -> Iterator[str]:
    if cfg.mode not in MODES:
        yield f"unknown writing mode {cfg.mode!r}; choose one of: {', '.join(MODES)}"
    if cfg.remasking not in REMASKING_CHOICES:
        yield f"unknown remasking strategy {cfg.remasking!r}; choose one of: {', '.join(REMASKING_CHOICES)}"
    if not 1 <= cfg.steps <= MAX_STEPS:
        yield f"steps must be between 1 and {MAX_STEPS}, got {cfg.steps}"
    if not (cfg.temperature >= 0 and math.isfinite(cfg.temperature)):
        yield f"temperature must be >= 0 (0 = greedy), got {cfg.temperature}"
    if cfg.top_k < 0:
        yield f"top-k must be >= 0 (0 = off), got {cfg.top_k}"
    if not 0 < cfg.top_p <= 1:
        yield f"top-p must be in (0, 1], got {cfg.top_p}"
    if cfg.threshold is not None and not 0 < cfg.threshold <= 1:
        yield f"threshold must be in (0, 1] (1 = off), got {cfg.threshold}"
    if cfg.reveal_schedule is not None and cfg.reveal_schedule not in SCHEDULES:
        yield f"unknown reveal schedule {cfg.reveal_schedule!r}; choose one of: {', '.join(SCHEDULES)}"
    if not 0 <= cfg.remask_ratio <= 1:
        yield f"remasking ratio must be in [0, 1], got {cfg.remask_ratio}"
    if not 0 <= cfg.polish <= MAX_POLISH:
        yield f"polish passes must be between 0 and {MAX_POLISH}, got {cfg.polish}"
    if cfg.block_len is not None and cfg.block_len < 1:
        yield f"block length must be >= 1, got {cfg.block_len}"
    if cfg.entropy_bound is not None and not (0 <= cfg.entropy_bound <= 100 and math.isfinite(cfg.entropy_bound)):
        yield f"entropy bound must be between 0 and 100 nats (None = off), got {cfg.entropy_bound}"
    if cfg.draft_window is not None and not 2 <= cfg.draft_window <= MAX_DRAFT_WINDOW:
        yield f"draft window must be between 2 and {MAX_DRAFT_WINDOW}, got {cfg.draft_window}"
    if not 0 <= cfg.draft_tree <= MAX_DRAFT_WINDOW:
        yield f"draft tree must have between 0 (off: one drawn path) and {MAX_DRAFT_WINDOW} characters, got {cfg.draft_tree}"
    if not (0 <= cfg.copula <= MAX_COPULA and math.isfinite(cfg.copula)):
        yield f"copula weight must be between 0 (off) and {MAX_COPULA}, got {cfg.copula}"
    if not 0 <= cfg.outcome_windows <= MAX_DRAFT_WINDOW:
        yield f"outcome windows must be between 0 and {MAX_DRAFT_WINDOW}, got {cfg.outcome_windows}"


DEFAULT = SamplerConfig()   # the app's and the CLI's defaults, chosen by measurement (docs/experiments.md)
# A block-diffusion model's defaults (measured there too): each block of B in at most B steps, the most
# confident first, and every character it is sure of at once; drawn at temperature 0.9 from the top 90%
# of the probability (so another seed writes another story; greedy repeats one per prompt).
BLOCK_DEFAULT = SamplerConfig(steps=4, remasking="low_confidence", threshold=0.8, polish=0, temperature=0.9,
                              top_p=0.9)
# A block model whose clean half is causal: it drafts and checks with that half (verify.py), at the block
# model's temperature and top-p: the text is that half's, sampled. Drafts in windows of 6 (sub-blocks of
# the block of 16), and the two likeliest ways a check can end get their windows in the same
# evaluation: measured against windows of 3-16, 0-5 outcome windows and trees of drafts
# (bench/draft_windows.py, docs/experiments.md 6d, 6g, 6m: a tree of 8 writes 3 characters an evaluation,
# but 1.3x slower on a CPU). Its blocks of 16, when written by block diffusion instead, get one step a
# character (the steps knob at B), and every other character it is 0.7 sure of: four steps a block wrote
# half words (word share 0.50), this 0.79, at 1.27 characters an evaluation (experiments.md 6k); the model
# trained from random weights 0.95 at 1.47 at stop 17 (6l), finished 0.98 at 1.61 (6m). Its drafts are drawn
# tied together by the checkpoint's character n-gram at weight 0.75 (order 5): 3.1 characters an evaluation
# instead of 2.5, measured against orders 2-6 and weights 0.5-1.5; tied, windows of 6 with one outcome window
# keep as many characters as 5 with two for 3 fewer positions an evaluation, faster in the race (6p).
VERIFY_DEFAULT = BLOCK_DEFAULT.replace(mode="verify", draft_window=6, outcome_windows=1, steps=16, threshold=0.7,
                                      copula=0.75)
SAMPLER_PRESETS = {
    "default": DEFAULT,
    "block": BLOCK_DEFAULT,
    "verify": VERIFY_DEFAULT,
    "classic": SamplerConfig(steps=100, temperature=0.0, remasking="low_confidence", remask_ratio=1.0,
                             gen_len=None, threshold=None, reveal_schedule=None, final_pass=True, polish=0),
}


def defaults_for(model_config) -> SamplerConfig:
    """The default settings for this kind of model: VERIFY_DEFAULT for a block model with a causal clean
    half, BLOCK_DEFAULT for other block-diffusion models, else DEFAULT."""
    if getattr(model_config, "kind", "") != "block diffusion":
        return DEFAULT
    return VERIFY_DEFAULT if getattr(model_config, "clean_causal", False) else BLOCK_DEFAULT


def switches(threshold: float | None, reveal_schedule: str | None) -> dict:
    """The UI's and CLI's spelling of the two knobs -> SamplerConfig fields: threshold 1 is off,
    reveal schedule "model" is the training schedule (both None in the config)."""
    return {"threshold": None if threshold is None or threshold == 1 else threshold,
            "reveal_schedule": None if reveal_schedule in (None, TRAINING_SCHEDULE) else reveal_schedule}

