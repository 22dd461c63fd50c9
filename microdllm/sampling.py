"""The denoising sampler: one generator, many views.

`denoise(...)` yields an immutable `DenoiseState` after every denoising step: the Gradio
app, the CLI, the GIF/MP4 exporters, benchmarks and tests all consume this one stream.

Reverse process (LLaDA, Nie et al. 2025, Alg. 4/5; MDLM, Sahoo et al. 2024, Eq. 7). The generated
positions are written in blocks, left to right (one block unless `block_len` is set); step i of a
block's N steps runs the model at time u = (N - i + 1) / N and leaves (1 - a((N - i) / N)) * n of
its n positions masked, so the masked share follows a schedule a(u) whatever N is:

    for each block:
        for each step:
            1. run the model at the training time that leaves this many masks
            2. propose a character for every masked position (remasking.propose)
            3. choose which proposals to reveal (the remasking strategy, early reveals)
            4. write them and yield the state

Knobs (SamplerConfig):

  remasking       the strategy that chooses which masked positions to reveal (remasking.py)
  threshold       Fast-dLLM parallel decoding: besides the strategy's quota, every masked position
                  whose proposal has probability >= threshold is revealed at once. A step whose
                  quota is already met then needs no model evaluation, and the run stops as soon
                  as nothing is masked. None or 1 = off.
  reveal_schedule how many positions stay masked after each step: a named survival schedule
                  ("linear": the same number every step, as in LLaDA), or None for the model's
                  training schedule. The model is always told the time at which its training
                  schedule leaves that many masks.
  polish          K > 0: once the last mask is gone, re-read the draft (a corrector, in the spirit
                  of ReMDM): pass j of K masks every K-th written character (offset j), so each is
                  re-predicted with the other (K - 1) / K of the text in view, and replaced when the
                  model gives another character more than POLISH_CONFIDENCE. One evaluation a pass.
  lookahead       a block-diffusion model with shift: the evaluation that writes a block's last
                  character also runs the next block on the model's guess for it, and the next
                  block's first step uses it when the guess was right (`Lookahead`): the same text
                  in fewer evaluations.
  remask_ratio    r > 0 runs the original's refinement instead (`_refine`): every step re-predicts
                  the whole block and may re-open up to floor(r * revealed) of the least confident
                  written characters; r = 1 followed by `final_pass` (a greedy pass at t = 0) is
                  the original sampler, SAMPLER_PRESETS["classic"].

A block-causal model with shift reads a block's last character only in the next block, so that
character is revealed in the step that reveals the rest of its block, never before
(`remasking.choose_reveal`): revealed early, it would leave the others blind to it.

Time is u in [0, 1] here and in every state; the model is given the integer step t = round(u T).
Measured defaults and their numbers: docs/experiments.md.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Iterator

import torch

from .diffusion import SCHEDULES, CosineSchedule, Schedule, always_predicted, get_schedule
from .model import KVCache
from .remasking import REMASKING_CHOICES, SCORED, choose_reveal, lowest, propose, spread_out
from .tokenizer import MASK_GLYPH, CharTokenizer

POLISH_CONFIDENCE = 0.5   # a polish pass replaces a character only with one the model gives more than this
MAX_STEPS = 1000
MAX_POLISH = 16
TRAINING_SCHEDULE = "model"   # what the UI and the CLI call "the model's training schedule"
ROLES = ("prompt", "masked", "remasked", "revealed", "text")   # what a character is in a state
# What made a step: the fully masked start (or the draft a branch starts from), the reveal loop, the
# original's refinement and its t = 0 pass, a polish pass, or one character of the left-to-right model.
PHASES = ("start", "reveal", "refine", "final pass", "polish", "left to right")
TOP_CANDIDATES = 5        # the alternatives a state keeps for each character written in its step


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
    reveal_schedule: str | None = "linear"  # masks left after each step; None = the training schedule
    final_pass: bool = False        # the original's extra greedy pass at t = 0
    polish: int = 6                 # passes that re-read the finished draft and fix typos (0 = off)
    lookahead: bool = True          # a shifted block model: look one block ahead on a guess (`Lookahead`)

    def __post_init__(self):
        for message in _problems(self):
            raise SamplingError(message)

    def replace(self, **changes) -> "SamplerConfig":
        return dataclasses.replace(self, **changes)


def _problems(cfg: SamplerConfig) -> Iterator[str]:
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


DEFAULT = SamplerConfig()   # the app's and the CLI's defaults, chosen by measurement (docs/experiments.md)
# A block-diffusion model's defaults (measured there too): each block of B in at most B steps, the most
# confident first, and every character it is sure of at once; drawn at temperature 0.9 from the top 90%
# of the probability (so another seed writes another story; greedy repeats one per prompt).
BLOCK_DEFAULT = SamplerConfig(steps=4, remasking="low_confidence", threshold=0.8, polish=0, temperature=0.9,
                              top_p=0.9)
SAMPLER_PRESETS = {
    "default": DEFAULT,
    "block": BLOCK_DEFAULT,
    "classic": SamplerConfig(steps=100, temperature=0.0, remasking="low_confidence", remask_ratio=1.0,
                             gen_len=None, threshold=None, reveal_schedule=None, final_pass=True, polish=0),
}


def defaults_for(model_config) -> SamplerConfig:
    """The default settings for this kind of model: BLOCK_DEFAULT for block diffusion, else DEFAULT."""
    return BLOCK_DEFAULT if getattr(model_config, "kind", "") == "block diffusion" else DEFAULT


def switches(threshold: float | None, reveal_schedule: str | None) -> dict:
    """The UI's and CLI's spelling of the two knobs -> SamplerConfig fields: threshold 1 is off,
    reveal schedule "model" is the training schedule (both None in the config)."""
    return {"threshold": None if threshold is None or threshold == 1 else threshold,
            "reveal_schedule": None if reveal_schedule in (None, TRAINING_SCHEDULE) else reveal_schedule}


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


def generation_length(cfg: SamplerConfig, prompt_len: int, block_size: int, n_masks: int | None = None) -> int:
    """The number of positions to generate for this prompt (or template, when n_masks is given)."""
    if n_masks is not None:  # infilling: the template decides the length
        if prompt_len > block_size:
            raise SamplingError(f"template is {prompt_len} characters; the model's context is {block_size}")
        if n_masks == 0:
            raise SamplingError(f"the template has no masks: put {MASK_GLYPH} where text should be filled in")
        return n_masks
    room = block_size - prompt_len
    if room < 1:
        raise SamplingError(f"prompt is {prompt_len} characters; it must be at most {block_size - 1} "
                            f"(the model's context is {block_size})")
    gen_len = room if cfg.gen_len is None else cfg.gen_len
    if not 1 <= gen_len <= room:
        raise SamplingError(f"generation length must be between 1 and {room} "
                            f"(context {block_size} minus a {prompt_len}-character prompt), got {gen_len}")
    return gen_len


@dataclass(frozen=True)
class BlockPlan:
    positions: list[int]                # the generated positions written in this block
    steps: int                          # denoising steps it gets
    span: tuple[int, int] | None        # [start, end): its extent in the sequence (None: the whole)


def split_blocks(positions: list[int], block_len: int | None, steps: int) -> list[BlockPlan]:
    """Split the generated positions into semi-autoregressive blocks and share the steps between them."""
    if not block_len or block_len >= len(positions):
        chunks = [positions]
    else:
        chunks = [positions[i:i + block_len] for i in range(0, len(positions), block_len)]
    per, extra = divmod(steps, len(chunks))
    return [BlockPlan(chunk, max(1, per + (b < extra)), (chunk[0], chunk[-1] + 1) if len(chunks) > 1 else None)
            for b, chunk in enumerate(chunks)]


def model_blocks(positions: list[int], block: int, length: int, steps: int) -> list[BlockPlan]:
    """The blocks of a block-causal model, aligned as in training (every `block` positions from 0);
    each gets up to `steps` steps (never more than it has positions to write)."""
    out = []
    for b in range(positions[0] // block, (positions[-1] // block) + 1):
        span = (b * block, min(length, (b + 1) * block))
        chunk = [p for p in positions if span[0] <= p < span[1]]
        if chunk:
            out.append(BlockPlan(chunk, min(steps, len(chunk)), span))
    return out


@dataclass(frozen=True)
class Lookahead:
    """Self-speculation of a shifted block model. The evaluation that writes a block's last character
    (its other inputs all written) also runs the next block, whose first input reads that character:
    it reads the model's best guess from the evaluation before. When the character written there is
    the guess, the next block's first step takes these rows instead of a new evaluation: the very
    logits that evaluation would give, so the text is the same, for fewer evaluations."""
    span: tuple[int, int]         # the next block
    reads: slice                  # the characters its inputs read
    inputs: torch.Tensor          # ... as they were read (the guess, then masks)
    rows: torch.Tensor            # its logits


class _Canvas:
    """The sequence being written, and the model evaluations that write it (mutable; states are not).

    A block-causal model keeps the blocks behind the one being written in a KV cache: an evaluation
    then runs only the block's positions (and, once, the block just finished, to cache it)."""

    def __init__(self, model, tokenizer: CharTokenizer, ids: list[int], cfg: SamplerConfig, schedule: Schedule,
                 start: DenoiseState | None = None):
        self.model, self.tokenizer, self.cfg, self.schedule = model, tokenizer, cfg, schedule
        self.reveal_schedule = get_schedule(cfg.reveal_schedule) if cfg.reveal_schedule else schedule
        self.mask_id = tokenizer.mask_id
        self.device = next(model.parameters()).device
        self.x = torch.tensor(ids, dtype=torch.long)
        self.fixed = start.fixed if start else tuple((self.x != self.mask_id).tolist())
        self.editable = [i for i, f in enumerate(self.fixed) if not f]          # every generated position
        self.conf = torch.tensor(start.confidence) if start else torch.full(self.x.shape, float("nan"))
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.nfe, self.step, self.work = (start.nfe, start.step, start.positions_evaluated) if start else (0, 0, 0)
        self.phase, self.noted = "start", []
        to_write = [i for i in self.editable if ids[i] == self.mask_id]
        block = self.attn_block = (cfg.block_len or model.config.attn_block) if model.config.attn_block else None
        self.cache = KVCache(model.config.n_layer) if block and hasattr(model, "extend") else None
        if block:
            self.blocks = model_blocks(to_write, block, len(ids), cfg.steps)
        else:
            self.blocks = split_blocks(to_write, cfg.block_len, cfg.steps)
        self.boundaries = tuple(b.span[0] for b in self.blocks if b.span)
        # the characters only the next block reads (the last of each block, with shift): revealed last
        self.last = always_predicted(len(ids), block, model.config.shift) if block else torch.zeros(len(ids), dtype=torch.bool)
        self.after = {b.span: nb.span for b, nb in zip(self.blocks, self.blocks[1:])}   # block -> the next one
        # the model's best guess at each position while it was masked (ids; 0, the mask id, = none yet)
        self.best = torch.zeros(len(ids), dtype=torch.long)
        self.guess_names = ["", *tokenizer.chars]       # a guess id -> what DenoiseState.guesses shows
        self.ahead: Lookahead | None = None
        self.looked_ahead = start.looked_ahead if start else 0
        self.block: tuple[int, int] | None = None

    def logits(self, u: float, clean: torch.Tensor | None = None) -> torch.Tensor:
        """One model evaluation at the training time whose schedule leaves as many masks as the
        reveal schedule does at u. (L, V) logits on the CPU (only the current block's rows for a
        block-causal model writing a block). clean: the draft a polish pass re-reads."""
        if self.cache is not None and self.block is not None:
            return self._block_logits()
        self.nfe += 1
        if self.reveal_schedule.name != self.schedule.name:
            u = self.schedule.time_at(self.reveal_schedule.alpha(u))
        mcfg = self.model.config
        x = self.x[None].to(self.device)
        self.work += len(self.x) * (1 + (clean is not None and self.cache is not None))
        if self.cache is not None and clean is not None:   # each block seeing the clean draft behind it
            # a character the next block reads as its first input is never masked there in training
            always = always_predicted(len(self.x), self.attn_block, mcfg.shift)
            x = torch.where(always, clean, self.x)[None].to(self.device)
            return self.model.forward_pair(x, clean[None].to(self.device), self.attn_block)[0].float().cpu()
        if self.attn_block:
            return self.model(x, block=self.attn_block)[0].float().cpu()
        t = torch.tensor([round(u * mcfg.timesteps)], device=self.device) if mcfg.time_embedding else None
        return self.model(x, t)[0].float().cpu()

    def _block_logits(self) -> torch.Tensor:
        """The current block's logits: from the evaluation before, when it looked ahead with the right
        guess; else one evaluation of the block, which also caches the finished blocks before it."""
        start, end = self.block
        ahead, self.ahead = self.ahead, None
        if ahead is not None and ahead.span == self.block and torch.equal(self.x[ahead.reads], ahead.inputs):
            rows = ahead.rows                  # the very inputs it read then: no new evaluation
            self.looked_ahead += 1
        else:
            rows = self._evaluate_block()
        out = torch.zeros(len(self.x), rows.size(-1))
        out[start:end] = rows
        return out

    def _evaluate_block(self) -> torch.Tensor:
        self.nfe += 1
        (start, end), x = self.block, self.x[None].clone()
        if self.cache.length > start:        # cached already (below), but a character is still masked
            self.cache.rewind(start)
        cached, stop = self.cache.length, end
        keep = start - cached
        # With shift, the inputs [cached, end) read characters [cached - 1, end - 1): once they are all
        # written (only the block's last character is left), this evaluation's keys and values are
        # final, so they join the cache now, and the evaluation can look ahead (see `Lookahead`).
        shift = int(self.model.config.shift)
        if shift and not (x[0, max(cached - shift, 0):end - shift] == self.mask_id).any():
            keep = end - cached
            after = self.after.get(self.block)
            if self.cfg.lookahead and after and after[0] == end and self.best[end - 1] > 0:
                x[0, end - 1] = self.best[end - 1]          # the next block reads the guess
                stop = after[1]
        rows = self.model.extend(x.to(self.device), stop, self.cache, keep, self.attn_block)[0].float().cpu()
        self.work += stop - cached
        if stop > end:
            reads = slice(end - 1, stop - 1)
            self.ahead = Lookahead((end, stop), reads, x[0, reads].clone(), rows[end - cached:])
        return rows[start - cached:end - cached]

    def any_masked(self) -> bool:
        return bool((self.x == self.mask_id).any())

    def note(self, pos: torch.Tensor, logits: torch.Tensor, before: torch.Tensor) -> None:
        """Remember what the model believed at `pos` this step (logits: their rows; before: their tokens
        before the step): its best guess under each mask left, and the rivals of each character written."""
        now = self.x[pos]
        still = now == self.mask_id
        if still.any():
            best = logits[still].float().index_fill(-1, torch.tensor([self.mask_id]), float("-inf")).argmax(-1)
            self.best[pos[still]] = best
        for k in (~still & (now != before)).nonzero().flatten().tolist():
            self.noted.append(candidates(int(pos[k]), logits[k], int(now[k]), self.tokenizer))

    def state(self, prev: torch.Tensor, u: float, total: int, done: bool, rewritten: bool = False) -> DenoiseState:
        """The state after a step; `prev` is x before it. rewritten: `revealed` marks changed characters."""
        masked, was = self.x == self.mask_id, prev == self.mask_id
        revealed = self.x != prev if rewritten else was & ~masked
        noted, self.noted, ids = tuple(self.noted), [], self.x.tolist()
        guesses = tuple(map(self.guess_names.__getitem__, (self.best * masked).tolist()))
        return DenoiseState(self.step, total, u, tuple(ids), self.tokenizer.decode(ids),
                            tuple(masked.tolist()), tuple(revealed.tolist()), tuple((~was & masked).tolist()),
                            tuple(self.conf.tolist()), self.fixed, self.nfe, 0.0, done,
                            self.block, self.boundaries, self.work, self.phase, guesses, noted,
                            self.looked_ahead)


# Each phase below changes the canvas one step at a time and yields (x before the step, u after it,
# whether the phase is over, whether characters were rewritten rather than revealed); `_run` turns
# each into a DenoiseState and decides, in one place, which state is the last.

def _reveal(c: _Canvas) -> Iterator[tuple]:
    """Masked positions are revealed and stay revealed: LLaDA's low-confidence remasking and its kin."""
    cfg, g, c.phase = c.cfg, c.generator, "reveal"
    for block in c.blocks:
        pos, n, n_steps, c.block = torch.tensor(block.positions), len(block.positions), block.steps, block.span
        for i in range(1, n_steps + 1):
            masked = c.x[pos] == c.mask_id
            n_masked = int(masked.sum())
            if n_masked == 0:
                break                                             # the block finished early
            prev, u_now, u_next = c.x.clone(), (n_steps - i + 1) / n_steps, (n_steps - i) / n_steps
            a_now, a_next = c.reveal_schedule.alpha(u_now), c.reveal_schedule.alpha(u_next)
            quota = n_masked - min(int((1.0 - a_next) * n + 1e-9), n_masked)   # positions to reveal
            if quota > 0 or cfg.remasking == "none":              # else the quota is met: no evaluation
                logits = c.logits(u_now)[pos]                                      # 1. the model
                tokens, p_tok, score = propose(logits, cfg, g, c.mask_id)          # 2. propose
                reveal = choose_reveal(cfg, score, p_tok, masked, quota, a_now, a_next, g, c.last[pos])   # 3. choose
                c.x[pos[reveal]], c.conf[pos[reveal]] = tokens[reveal], p_tok[reveal]    # 4. write
                c.note(pos, logits, prev[pos])
            c.step += 1
            finished = not c.any_masked()
            yield prev, u_next, finished, False
            if finished:
                return


def _refine(c: _Canvas) -> Iterator[tuple]:
    """The original's refinement (remask_ratio r > 0): every step re-predicts the whole block, then
    re-masks the `target` least confident of the masked positions and the floor(r * revealed) least
    confident written ones. Runs every planned step."""
    cfg, g, c.phase = c.cfg, c.generator, "refine"
    for b, block in enumerate(c.blocks):
        pos, n, n_steps, c.block = torch.tensor(block.positions), len(block.positions), block.steps, block.span
        for i in range(1, n_steps + 1):
            prev, u_now, u_next = c.x.clone(), (n_steps - i + 1) / n_steps, (n_steps - i) / n_steps
            masked = c.x[pos] == c.mask_id
            target = int((1.0 - c.reveal_schedule.alpha(u_next)) * n + 1e-9)   # masks left after the step
            logits = c.logits(u_now)[pos]
            tokens, p_tok, score = propose(logits, cfg, g, c.mask_id)
            cap = n if cfg.remask_ratio >= 1 else math.floor(cfg.remask_ratio * (n - int(masked.sum())))
            open_ = masked | lowest(score, cap, ~masked)
            c.x[pos], c.conf[pos] = tokens, p_tok
            if cfg.remasking == "spread":
                stay = open_ & ~spread_out(score, int(open_.sum()) - target, open_)
            else:
                stay = lowest(score, target, open_)
            c.x[pos[stay]] = c.mask_id
            c.note(pos, logits, prev[pos])
            c.step += 1
            yield prev, u_next, b == len(c.blocks) - 1 and i == n_steps, False


def _final_pass(c: _Canvas) -> Iterator[tuple]:
    """The original's last step: a greedy re-prediction of every written character at t = 0."""
    prev, ed, c.block, c.phase = c.x.clone(), torch.tensor(c.editable), None, "final pass"
    logits = c.logits(0.0)[ed]
    tokens, p_tok, _ = propose(logits, c.cfg.replace(temperature=0.0), c.generator, c.mask_id)
    c.x[ed], c.conf[ed] = tokens, p_tok
    c.note(ed, logits, prev[ed])
    c.step += 1
    yield prev, 0.0, True, False


def _polish(c: _Canvas, passes: int) -> Iterator[tuple]:
    """Re-read every passes-th written character with the rest in view; keep it unless the model
    is sure of another one."""
    greedy, c.block, c.phase = c.cfg.replace(temperature=0.0), None, "polish"
    for j in range(passes):
        prev, pos = c.x.clone(), torch.tensor(c.editable[j::passes])
        c.x[pos] = c.mask_id
        u = c.reveal_schedule.time_at(1.0 - len(pos) / len(c.editable))   # the time that leaves this many masks
        logits = c.logits(u, clean=prev)[pos]
        proposal, p_best, _ = propose(logits, greedy, c.generator, c.mask_id)
        c.x[pos] = torch.where(p_best > POLISH_CONFIDENCE, proposal, prev[pos])
        c.conf[pos] = logits.softmax(-1).gather(-1, c.x[pos][:, None]).squeeze(-1)
        c.note(pos, logits, prev[pos])
        c.step += 1
        yield prev, 0.0, j == passes - 1, True


@torch.inference_mode()
def _run(model, tokenizer: CharTokenizer, prompt: str, cfg: SamplerConfig, infill: bool,
         schedule: Schedule, start: DenoiseState | None = None) -> Iterator[DenoiseState]:
    """The reverse process: the all-masked start (or `start`), the denoising phase, then the polish passes."""
    ids = _resumed(start, model) if start is not None else _start_ids(model, tokenizer, prompt, cfg, infill)
    c = _Canvas(model, tokenizer, ids, cfg, schedule, start)
    passes = min(cfg.polish, len(c.editable))
    total = c.step + sum(b.steps for b in c.blocks) + cfg.final_pass + passes
    refine = cfg.remasking in SCORED and cfg.remask_ratio > 0
    phases = [_refine(c) if refine else _reveal(c)]
    phases += [_final_pass(c)] * cfg.final_pass + [_polish(c, passes)] * bool(passes)
    yield c.state(c.x, start.u if start else 1.0, total, done=False)
    for k, phase in enumerate(phases):
        for prev, u, phase_over, rewritten in phase:
            yield c.state(prev, u, total, done=phase_over and k == len(phases) - 1, rewritten=rewritten)


def _start_ids(model, tokenizer: CharTokenizer, prompt: str, cfg: SamplerConfig, infill: bool) -> list[int]:
    """The fully masked start: the prompt and the masks after it, or the template with its masks."""
    mask_id, block_size = tokenizer.mask_id, model.config.block_size
    if infill and getattr(model.config, "attn_block", None):
        raise SamplingError("this model writes block by block, left to right, so it cannot fill in blanks: "
                            "infilling needs a full-sequence diffusion model")
    if infill:
        ids = tokenizer.encode_template(prompt)
        generation_length(cfg, len(ids), block_size, n_masks=ids.count(mask_id))
        return ids
    ids = tokenizer.encode(prompt)
    return ids + [mask_id] * generation_length(cfg, len(ids), block_size)


def _resumed(start: DenoiseState, model) -> list[int]:
    """The tokens a branch starts from: a state of an earlier run, whose masks are written from here on."""
    ids, vocab = list(start.tokens), model.config.vocab_size
    if not 0 < len(ids) <= model.config.block_size:
        raise SamplingError(f"the draft is {len(ids)} characters; the model's context is {model.config.block_size}")
    if not all(0 <= i < vocab for i in ids) or len(start.fixed) != len(ids) or len(start.confidence) != len(ids):
        raise SamplingError("the draft does not fit this model's vocabulary")
    if not any(start.masked):
        raise SamplingError("nothing to continue: the draft has no masks left (rewind to an earlier step)")
    return ids


def _timed(states: Iterator[DenoiseState]) -> Iterator[DenoiseState]:
    """Stamp each state with the generator's own working time (not the time the consumer holds it)."""
    start, paused = time.perf_counter(), 0.0
    for state in states:
        state = dataclasses.replace(state, elapsed=time.perf_counter() - start - paused)
        handed_over = time.perf_counter()
        yield state
        paused += time.perf_counter() - handed_over


def denoise(model, tokenizer: CharTokenizer, prompt: str = "", config: SamplerConfig | None = None, *,
            infill: bool = False, schedule: Schedule | None = None, start: DenoiseState | None = None,
            **overrides) -> Iterator[DenoiseState]:
    """Yield the state after every denoising step, from all-masked (step 0) to clean text (done=True).

    prompt: text to continue, or with infill=True a template whose `_` glyphs are filled in. A
    block-causal model writes block by block (its blocks, KV-cached); a causal one left to right.
    start: branch from a state of an earlier run (same vocabulary): its text is kept, its masks are
    written from there on with `config` (the prompt and `infill` are then ignored); steps go on from
    its step, so the branch's states follow the earlier run's states up to `start`.
    Stop iterating at any time to cancel. `elapsed` counts the sampler's own time only, not the
    time the caller spends with each state (rendering, streaming).
    """
    cfg = (config or DEFAULT).replace(**overrides)
    if model.config.causal:   # an autoregressive model writes left to right, through the same stream
        if infill and start is None:
            raise SamplingError("an autoregressive model writes left to right: it cannot fill in blanks")
        return left_to_right(model, tokenizer, prompt, cfg, start=start)
    return _timed(_run(model, tokenizer, prompt, cfg, infill, schedule or CosineSchedule(), start))


def left_to_right(model, tokenizer: CharTokenizer, prompt: str = "", config: SamplerConfig | None = None, *,
                  start: DenoiseState | None = None, **overrides) -> Iterator[DenoiseState]:
    """The autoregressive baseline as the same stream: one character per step, left to right.

    For a causal model (`model.config.causal`): every step runs the model on the text so far and
    samples the next character (temperature, top-k, top-p, seed as for `denoise`); positions not
    yet written are shown as masks, so every view renders both kinds of model alike. start: branch
    from a state whose masks all come after its text (see `denoise`).
    """
    return _timed(_left_to_right(model, tokenizer, prompt, (config or DEFAULT).replace(**overrides), start))


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
    ids = _resumed(start, model)
    first = list(start.masked).index(True)
    if not all(start.masked[first:]):
        raise SamplingError("a left-to-right model continues only a draft whose masks all come after its text; "
                            "this draft has text after a mask (continue it with a diffusion model)")
    return ids[:first], len(ids) - first, start.fixed


def candidates(position: int, logits: torch.Tensor, token: int, tokenizer: CharTokenizer) -> Candidates:
    """The character written at `position` (its id `token`) and the model's top choices there (logits: (V,))."""
    probs = logits.float().softmax(-1).index_fill(-1, torch.tensor([tokenizer.mask_id]), 0.0)
    p_top, top = probs.topk(min(TOP_CANDIDATES, probs.numel() - 1))
    chars = tokenizer.chars
    return Candidates(position, chars[token - 1],
                      tuple((chars[t - 1], round(p, 4)) for t, p in zip(top.tolist(), p_top.tolist())))


def _device(model) -> torch.device:
    return next(model.parameters()).device


def generate(model, tokenizer, prompt: str = "", config: SamplerConfig | None = None, **kw) -> DenoiseState:
    """Run the generator to the end and return the final state."""
    last = None
    for last in denoise(model, tokenizer, prompt, config, **kw):
        pass
    return last
