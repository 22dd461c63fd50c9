"""What every view sees: the immutable state of the sequence after one denoising step.

Every way of writing (the reveal loop, refinement, polish, left to right, draft and verify) yields
these, and every view (app, CLI, exporters, benchmarks, tests) reads them; neither knows the other.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Iterator

import torch

from ..tokenizer import CharTokenizer

ROLES = ("prompt", "masked", "remasked", "revealed", "text")   # what a character is in a state
# What made a step: the fully masked start (or the draft a branch starts from), the reveal loop, the
# original's refinement and its t = 0 pass, a polish pass, one character of the left-to-right model, a
# draft of the next characters, a check of the draft (draft and verify), or a reveal chosen by hand
# (`denoise(..., reveal=...)`).
PHASES = ("start", "reveal", "refine", "final pass", "polish", "left to right", "draft", "verify", "by hand")
TOP_CANDIDATES = 5        # the alternatives a state keeps for each character written in its step


@dataclass(frozen=True)
class Candidates:
    """What the model weighed for one position when it wrote a character there."""
    position: int
    written: str                            # the character written
    top: tuple[tuple[str, float], ...]      # the model's most probable characters, with their probabilities


@dataclass(frozen=True)
class DenoiseState:
    """The sequence after one denoising step. Tuples, so a state can be kept and shared safely."""
    step: int                       # 0 = the fully masked start; then 1, 2, ...
    total_steps: int                # steps planned (a run may finish early)
    u: float                        # diffusion time u in [0, 1] after this step, 1 -> 0
    tokens: tuple[int, ...]
    text: str                       # mask glyph `_` where masked
    masked: tuple[bool, ...]
    revealed: tuple[bool, ...]      # unmasked by this step (a polish pass: rewritten by it)
    remasked: tuple[bool, ...]      # visible before this step, masked after it
    confidence: tuple[float, ...]   # the model's confidence in each position's current token (nan: never predicted)
    fixed: tuple[bool, ...]         # prompt / template characters: never change
    nfe: int                        # model evaluations so far
    elapsed: float                  # seconds the sampler itself has worked (time spent by the consumer excluded)
    done: bool = False
    block: tuple[int, int] | None = None    # positions [start, end) being written (None: all at once)
    boundaries: tuple[int, ...] = ()        # where each block of the run starts
    positions_evaluated: int = 0            # input positions the network has processed so far (its work)
    phase: str = "start"                    # the phase that made this step: see PHASES
    guesses: tuple[str, ...] = ()           # per position: the model's best guess under a mask ('' = none yet)
    candidates: tuple[Candidates, ...] = () # the characters written (or rewritten) by this step, and their rivals
    looked_ahead: int = 0                   # steps so far that took a look-ahead's logits instead of an evaluation
    rejected: tuple[bool, ...] = ()         # draft and verify: drafted characters this step turned down
    accepted: tuple[tuple[int, int], ...] = ()   # draft and verify: (kept, drafted) for every draft checked so far
    guess_conf: tuple[float, ...] = ()      # per position: the probability of its guess (nan = none)
    entropy: float = float("nan")           # mean entropy (nats) of the positions still masked after this step's evaluation
    suggested: tuple[int, ...] = ()         # a step revealed by hand: the positions the strategy would have chosen

    @property
    def num_masked(self) -> int:
        return sum(self.masked)

    @property
    def generated(self) -> int:
        return sum(not f for f in self.fixed)

    def role(self, i: int) -> str:
        """What character i is in this state: one of ROLES (every view colours by this)."""
        if self.fixed[i]:
            return "prompt"
        if self.remasked[i]:
            return "remasked"
        if self.masked[i]:
            return "masked"
        return "revealed" if self.revealed[i] else "text"

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self.role(i) for i in range(len(self.tokens)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def candidates(position: int, logits: torch.Tensor, token: int, tokenizer: CharTokenizer) -> Candidates:
    """The character written at `position` (its id `token`) and the model's top choices there (logits: (V,))."""
    return candidates_rows([position], logits[None], [token], tokenizer)[0]


def candidates_rows(positions: list[int], logits: torch.Tensor, tokens: list[int],
                    tokenizer: CharTokenizer) -> list[Candidates]:
    """`candidates` for several written characters at once (logits: (n, V)): one softmax and top-k."""
    return top_candidates(positions, logits.float().softmax(-1), tokens, tokenizer)


def top_candidates(positions: list[int], probs: torch.Tensor, tokens: list[int],
                   tokenizer: CharTokenizer) -> list[Candidates]:
    """`candidates_rows` from the model's probabilities (n, V) rather than its logits."""
    probs = probs.index_fill(-1, torch.tensor([tokenizer.mask_id]), 0.0)
    p_top, top = probs.topk(min(TOP_CANDIDATES, probs.size(-1) - 1), dim=-1)
    chars = tokenizer.chars
    return [Candidates(i, chars[t - 1], tuple((chars[c - 1], round(p, 4)) for c, p in zip(cs, ps)))
            for i, t, cs, ps in zip(positions, tokens, top.tolist(), p_top.tolist())]


def timed(states: Iterator[DenoiseState]) -> Iterator[DenoiseState]:
    """Stamp each state with the generator's own working time (not the time the consumer holds it)."""
    start, paused = time.perf_counter(), 0.0
    for state in states:
        state = dataclasses.replace(state, elapsed=time.perf_counter() - start - paused)
        handed_over = time.perf_counter()
        yield state
        paused += time.perf_counter() - handed_over

