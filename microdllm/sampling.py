"""The denoising sampler: one generator, many views.

`denoise(...)` yields an immutable `DenoiseState` after every denoising step: the Gradio
app, the CLI, the GIF/MP4 exporters, benchmarks and tests all consume this one stream.

Reverse process (LLaDA, Nie et al. 2025, Alg. 4/5; MDLM, Sahoo et al. 2024, Eq. 7). Step i of
N runs the model at time u = (N - i + 1) / N and leaves (1 - a((N - i) / N)) * n of the n
generated positions masked, so the masked share follows a schedule a(u) whatever N is (the
reveal schedule below; the model's training schedule for `classic`). Which positions stay
masked is the remasking strategy:

  low_confidence  keep masked the positions whose sampled token is least probable (the original)
  margin          ... whose top-1 minus top-2 probability is smallest
  entropy         ... whose predictive entropy is largest
  random          ... chosen uniformly at random
  spread          random too, but the characters revealed in one step are kept apart (at least half
                  their mean spacing), so two characters decided without seeing each other rarely
                  fall in the same word: the factorisation error of parallel decoding shrinks
  none            MDLM ancestral: each masked position is revealed with probability
                  (a(s) - a(u)) / (1 - a(u)); revealed tokens are final
  threshold       the low_confidence order, named for Fast-dLLM parallel decoding (below)

Two knobs make a run shorter without changing what the model sees:

  threshold       Fast-dLLM parallel decoding: besides the strategy's quota, every masked position
                  whose proposed token has probability >= threshold is revealed at once. A step
                  whose quota is already met then needs no model evaluation, and the run stops as
                  soon as nothing is masked. None or 1 = off. (Not for `none`, nor with r > 0.)
  reveal_schedule how many positions stay masked after each step, a named
                  survival schedule ("linear": the same number every step, as in LLaDA), or None
                  for the model's training schedule. The model is always told the time at which
                  its training schedule leaves that many masks.

After the last mask is gone, `polish` K > 0 re-reads the draft (a corrector, in the spirit of
ReMDM's remasking): pass j of K masks every K-th written character (offset j), so each is
re-predicted with the other (K - 1) / K of the text in view, and replaced when the model gives
another character more than POLISH_CONFIDENCE. One model evaluation per pass; it fixes the
typos that parallel decoding leaves ("litttle", "wast"). Prompt characters are never touched.

`remask_ratio` r scales how much already-revealed text the confidence strategies may re-open:
with r > 0 revealed tokens are re-predicted every step (the original's refinement) and up to
floor(r * revealed) of the least confident may be re-masked; r = 0 commits a revealed token for
good (LLaDA's low-confidence remasking); r = 1 with a final t = 0 greedy pass is the original.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Iterator

import torch

from .diffusion import SCHEDULES, CosineSchedule, Schedule, get_schedule
from .tokenizer import MASK_GLYPH, CharTokenizer

REMASKING_CHOICES = ("low_confidence", "margin", "entropy", "random", "spread", "none")
CONFIDENCE_STRATEGIES = ("low_confidence", "margin", "entropy", "random", "spread")
SPREAD_GAP = 0.5   # `spread`: reveals in one step are >= this share of their mean spacing apart
POLISH_CONFIDENCE = 0.5   # a polish pass replaces a character only with one the model gives more than this
MAX_STEPS = 1000
MAX_POLISH = 16


class SamplingError(ValueError):
    """A sampling setting or prompt is out of range; the message says the limit."""


@dataclass(frozen=True)
class SamplerConfig:
    steps: int = 12
    temperature: float = 0.0        # 0 = greedy
    remasking: str = "spread"
    remask_ratio: float = 0.0
    gen_len: int | None = 200       # None: to the end of the context
    top_k: int = 0                  # 0 = off
    top_p: float = 1.0              # 1 = off
    seed: int = 0
    block_len: int | None = None    # semi-autoregressive blocks of this many generated positions
    threshold: float | None = 0.8   # also reveal every masked position this confident; None or 1 = off
    reveal_schedule: str | None = "linear"  # masks left after each step; None = the training schedule
    final_pass: bool = False        # the original's extra greedy pass at t = 0
    polish: int = 6                 # passes that re-read the finished draft and fix typos (0 = off)

    def replace(self, **changes) -> "SamplerConfig":
        return dataclasses.replace(self, **changes)


# The app's and the CLI's defaults, chosen by measurement (docs/experiments.md, 3c-3d): reveal a
# random, spread-out subset of the masked positions each step (the same number each step) with their
# greedy prediction, never re-open a revealed character, reveal at once whatever the model is at
# least 80% sure of, and when the draft is done re-read it in 6 polish passes. On the bundled model
# (sample-eval, n = 64): 0.986 word share and 1.65 generative bits/char in 17 model evaluations. On
# the 10000-step model, 64 plain random steps scored 0.968 and 1.90 in 59 evaluations, and the
# original sampler 0.38 word share in 101; it stays reachable as PRESETS["classic"].
DEFAULT = SamplerConfig()
TRAINING_SCHEDULE = "model"   # what the UI and the CLI call "the model's training schedule"


def switches(threshold: float | None, reveal_schedule: str | None) -> dict:
    """The UI's and CLI's spelling of the two knobs -> SamplerConfig fields: threshold 1 is off,
    reveal schedule "model" is the training schedule (both None in the config)."""
    return {"threshold": None if threshold is None or threshold == 1 else threshold,
            "reveal_schedule": None if reveal_schedule in (None, TRAINING_SCHEDULE) else reveal_schedule}


PRESETS = {
    "default": DEFAULT,
    "classic": SamplerConfig(steps=100, temperature=0.0, remasking="low_confidence", remask_ratio=1.0,
                             gen_len=None, threshold=None, reveal_schedule=None, final_pass=True, polish=0),
}


ROLES = ("prompt", "masked", "remasked", "revealed", "text")  # what a character is in a state (see DenoiseState.role)


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


def validate(cfg: SamplerConfig, prompt_len: int, block_size: int, n_masks: int | None = None) -> int:
    """Check every knob; return the number of positions to generate. Errors say the limit."""
    if cfg.remasking not in REMASKING_CHOICES:
        raise SamplingError(f"unknown remasking strategy {cfg.remasking!r}; choose one of: {', '.join(REMASKING_CHOICES)}")
    if not 1 <= cfg.steps <= MAX_STEPS:
        raise SamplingError(f"steps must be between 1 and {MAX_STEPS}, got {cfg.steps}")
    if not (cfg.temperature >= 0 and math.isfinite(cfg.temperature)):
        raise SamplingError(f"temperature must be >= 0 (0 = greedy), got {cfg.temperature}")
    if cfg.top_k < 0:
        raise SamplingError(f"top-k must be >= 0 (0 = off), got {cfg.top_k}")
    if not 0 < cfg.top_p <= 1:
        raise SamplingError(f"top-p must be in (0, 1], got {cfg.top_p}")
    if cfg.threshold is not None and not 0 < cfg.threshold <= 1:
        raise SamplingError(f"threshold must be in (0, 1] (1 = off), got {cfg.threshold}")
    if cfg.reveal_schedule is not None and cfg.reveal_schedule not in SCHEDULES:
        raise SamplingError(f"unknown reveal schedule {cfg.reveal_schedule!r}; "
                            f"choose one of: {', '.join(SCHEDULES)}")
    if not 0 <= cfg.remask_ratio <= 1:
        raise SamplingError(f"remasking ratio must be in [0, 1], got {cfg.remask_ratio}")
    if not 0 <= cfg.polish <= MAX_POLISH:
        raise SamplingError(f"polish passes must be between 0 and {MAX_POLISH}, got {cfg.polish}")
    if cfg.block_len is not None and cfg.block_len < 1:
        raise SamplingError(f"block length must be >= 1, got {cfg.block_len}")
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


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Keep the top-k tokens and/or the smallest set whose probability reaches top-p; -inf elsewhere."""
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p   # keep tokens until the mass before them reaches p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def propose(logits: torch.Tensor, cfg: SamplerConfig, generator: torch.Generator,
            mask_id: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per position: a proposed token, its probability, and the strategy's confidence score. logits: (L, V).

    Probabilities are the full softmax (as in the original); the mask id is never proposed.
    """
    logits = logits.float()
    if cfg.temperature == 0:
        probs = logits.softmax(-1)
        tokens = probs.index_fill(-1, torch.tensor([mask_id]), -1.0).argmax(-1)
    else:
        probs = filter_logits(logits / cfg.temperature, cfg.top_k, cfg.top_p).softmax(-1)
        weights = probs.index_fill(-1, torch.tensor([mask_id]), 0.0)
        weights[weights.sum(-1) == 0] = 1.0  # only the mask survived the filters: fall back to uniform
        weights[:, mask_id] = 0.0
        tokens = torch.multinomial(weights, 1, generator=generator).squeeze(-1)
    p_token = probs.gather(-1, tokens[:, None]).squeeze(-1)
    if cfg.remasking == "margin":
        top2 = probs.topk(2, dim=-1).values
        score = top2[:, 0] - top2[:, 1]
    elif cfg.remasking == "entropy":
        score = (probs * probs.clamp_min(1e-30).log()).sum(-1)  # -H: higher = more certain
    elif cfg.remasking in ("random", "spread"):
        score = torch.rand(p_token.shape, generator=generator)
    else:
        score = p_token
    return tokens, p_token, score


def _blocks(positions: list[int], block_len: int | None, steps: int) -> list[tuple[list[int], int]]:
    """Split the generated positions into semi-autoregressive blocks and share the steps between them."""
    if not block_len or block_len >= len(positions):
        return [(positions, steps)]
    chunks = [positions[i:i + block_len] for i in range(0, len(positions), block_len)]
    per, extra = divmod(steps, len(chunks))
    return [(chunk, max(1, per + (b < extra))) for b, chunk in enumerate(chunks)]


def lowest(score: torch.Tensor, k: int, allowed: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the k lowest-scoring positions among `allowed`."""
    out = torch.zeros_like(allowed)
    k = min(k, int(allowed.sum()))
    if k > 0:
        out[score.masked_fill(~allowed, float("inf")).topk(k, largest=False).indices] = True
    return out


def spread_out(score: torch.Tensor, k: int, allowed: torch.Tensor, gap_share: float = SPREAD_GAP) -> torch.Tensor:
    """Boolean mask of k positions among `allowed`, taken in descending score order but kept at
    least gap_share x (span / k) apart; if the gap leaves fewer than k, the rest in score order."""
    out = torch.zeros_like(allowed)
    idx = allowed.nonzero().squeeze(-1)
    k = min(k, len(idx))
    if k <= 0:
        return out
    order = idx[score[idx].argsort(descending=True, stable=True)].tolist()
    gap = max(1, int(gap_share * (int(idx[-1]) - int(idx[0]) + 1) / k))
    free, taken = [True] * len(allowed), []
    for p in order:
        if len(taken) == k:
            break
        if free[p]:
            taken.append(p)
            lo, hi = max(0, p - gap + 1), min(len(free), p + gap)   # nothing else within gap - 1 of p
            free[lo:hi] = [False] * (hi - lo)
    if len(taken) < k:
        chosen = set(taken)
        taken += [p for p in order if p not in chosen][:k - len(taken)]
    out[taken] = True
    return out


def choose_reveal(cfg: SamplerConfig, score: torch.Tensor, p_token: torch.Tensor, masked: torch.Tensor,
                  quota: int, a_now: float, a_next: float, generator: torch.Generator) -> torch.Tensor:
    """Which masked positions get their proposed token this step (strategies that never re-open)."""
    if cfg.remasking == "none":
        p_reveal = 1.0 if a_now >= 1 else (a_next - a_now) / (1 - a_now)
        return masked & (torch.rand(masked.shape, generator=generator) < p_reveal)
    # the `quota` highest-scoring masked positions (kept apart for `spread`)
    reveal = spread_out(score, quota, masked) if cfg.remasking == "spread" else lowest(-score, quota, masked)
    if cfg.threshold is not None and cfg.threshold < 1:
        reveal |= masked & (p_token >= cfg.threshold)
    return reveal


def denoise(model, tokenizer: CharTokenizer, prompt: str = "", config: SamplerConfig | None = None, *,
            infill: bool = False, schedule: Schedule | None = None, **overrides) -> Iterator[DenoiseState]:
    """Yield the state after every denoising step, from all-masked (step 0) to clean text (done=True).

    prompt: text to continue, or with infill=True a template whose `_` glyphs are filled in.
    Stop iterating at any time to cancel. `elapsed` counts the sampler's own time only, not the
    time the caller spends with each state (rendering, streaming).
    """
    return _timed(_steps(model, tokenizer, prompt, (config or DEFAULT).replace(**overrides), infill,
                         schedule or CosineSchedule()))


def _timed(states: Iterator[DenoiseState]) -> Iterator[DenoiseState]:
    """Stamp each state with the generator's own working time (not the time the consumer holds it)."""
    start, paused = time.perf_counter(), 0.0
    for state in states:
        state = dataclasses.replace(state, elapsed=time.perf_counter() - start - paused)
        handed_over = time.perf_counter()
        yield state
        paused += time.perf_counter() - handed_over


@torch.inference_mode()
def _steps(model, tokenizer: CharTokenizer, prompt: str, cfg: SamplerConfig, infill: bool,
           schedule: Schedule) -> Iterator[DenoiseState]:
    """The reverse process itself; `denoise` adds the timing."""
    mcfg, mask_id = model.config, tokenizer.mask_id
    if infill:
        ids = tokenizer.encode_template(prompt)
        validate(cfg, len(ids), mcfg.block_size, n_masks=ids.count(mask_id))
    else:
        ids = tokenizer.encode(prompt)
        ids = ids + [mask_id] * validate(cfg, len(ids), mcfg.block_size)
    reveal_schedule = get_schedule(cfg.reveal_schedule) if cfg.reveal_schedule else schedule
    device = next(model.parameters()).device
    x = torch.tensor(ids, dtype=torch.long)
    fixed = tuple((x != mask_id).tolist())
    editable = [i for i, f in enumerate(fixed) if not f]
    conf = torch.full(x.shape, float("nan"))
    g = torch.Generator().manual_seed(cfg.seed)
    reopen = cfg.remasking in CONFIDENCE_STRATEGIES and cfg.remask_ratio > 0
    blocks = _blocks(editable, cfg.block_len, cfg.steps)
    passes = min(cfg.polish, len(editable))
    total = sum(n for _, n in blocks) + cfg.final_pass + passes
    nfe, step = 0, 0

    def state(prev: torch.Tensor, u: float, done: bool) -> DenoiseState:
        masked, was = x == mask_id, prev == mask_id
        return DenoiseState(step, total, u, tuple(x.tolist()), tokenizer.decode(x.tolist()),
                            tuple(masked.tolist()), tuple((was & ~masked).tolist()),
                            tuple((~was & masked).tolist()), tuple(conf.tolist()), fixed, nfe,
                            0.0, done)

    def run_model(u: float) -> torch.Tensor:
        nonlocal nfe
        nfe += 1
        if reveal_schedule.name != schedule.name:  # the training time that leaves as many masks
            u = schedule.time_at(reveal_schedule.alpha(u))
        t = torch.tensor([round(u * mcfg.timesteps)], device=device) if mcfg.time_embedding else None
        return model(x[None].to(device), t)[0].float().cpu()

    yield state(x, 1.0, done=False)
    for b, (block, n_steps) in enumerate(blocks):
        pos = torch.tensor(block)
        n = len(block)
        for i in range(1, n_steps + 1):
            prev = x.clone()
            u_now, u_next = (n_steps - i + 1) / n_steps, (n_steps - i) / n_steps
            a_now, a_next = reveal_schedule.alpha(u_now), reveal_schedule.alpha(u_next)
            masked = x[pos] == mask_id
            n_masked = int(masked.sum())
            if n_masked == 0 and not reopen:
                break                                    # block finished early
            target = int((1.0 - a_next) * n + 1e-9)      # masks left in this block after the step
            quota = n_masked - min(target, n_masked)     # positions to reveal
            if reopen:
                # Re-predict the whole block, then re-mask the `target` least confident among the
                # masked positions and the floor(r * revealed) least confident revealed ones.
                tokens, p_tok, score = propose(run_model(u_now)[pos], cfg, g, mask_id)
                cap = n if cfg.remask_ratio >= 1 else math.floor(cfg.remask_ratio * (n - n_masked))
                open_ = masked | lowest(score, cap, ~masked)
                x[pos], conf[pos] = tokens, p_tok
                if cfg.remasking == "spread":
                    stay = open_ & ~spread_out(score, int(open_.sum()) - target, open_)
                else:
                    stay = lowest(score, target, open_)
                x[pos[stay]] = mask_id
            elif quota > 0 or cfg.remasking == "none":
                tokens, p_tok, score = propose(run_model(u_now)[pos], cfg, g, mask_id)
                reveal = choose_reveal(cfg, score, p_tok, masked, quota, a_now, a_next, g)
                x[pos[reveal]], conf[pos[reveal]] = tokens[reveal], p_tok[reveal]
            # else: nothing may change this step, so the model is not called.
            step += 1
            finished = not bool((x == mask_id).any()) and (not reopen or (b == len(blocks) - 1 and i == n_steps))
            yield state(prev, u_next, done=finished and not cfg.final_pass and not passes)
            if finished and not reopen:
                break
    if cfg.final_pass:
        prev, ed = x.clone(), torch.tensor(editable)
        tokens, p_tok, _ = propose(run_model(0.0)[ed], cfg.replace(temperature=0.0), g, mask_id)
        x[ed], conf[ed] = tokens, p_tok
        step += 1
        yield state(prev, 0.0, done=not passes)
    for j in range(passes):
        # Re-read every passes-th written character with the rest in view; keep it unless the
        # model is sure of another one.
        prev, pos = x.clone(), torch.tensor(editable[j::passes])
        x[pos] = mask_id
        u = reveal_schedule.time_at(1.0 - len(pos) / len(editable))   # the time that leaves this many masks
        logits = run_model(u)[pos]
        best, p_best, _ = propose(logits, cfg.replace(temperature=0.0), g, mask_id)   # the greedy proposal
        x[pos] = torch.where(p_best > POLISH_CONFIDENCE, best, prev[pos])
        conf[pos] = logits.softmax(-1).gather(-1, x[pos][:, None]).squeeze(-1)
        step += 1
        yield dataclasses.replace(state(prev, 0.0, done=j == passes - 1),   # clean text again: t = 0
                                  revealed=tuple((x != prev).tolist()))


def left_to_right(model, tokenizer: CharTokenizer, prompt: str = "", config: SamplerConfig | None = None,
                  **overrides) -> Iterator[DenoiseState]:
    """The autoregressive baseline as the same stream: one character per step, left to right.

    For a causal model (`model.config.causal`): every step runs the model on the text so far and
    samples the next character (temperature, top-k, top-p, seed as for `denoise`); positions not
    yet written are shown as masks, so every view renders both kinds of model alike.
    """
    return _timed(_left_to_right(model, tokenizer, prompt, (config or DEFAULT).replace(**overrides)))


@torch.inference_mode()
def _left_to_right(model, tokenizer, prompt, cfg) -> Iterator[DenoiseState]:
    if not model.config.causal:
        raise SamplingError("left-to-right generation needs a causal (autoregressive) model")
    ids = tokenizer.encode(prompt)
    n_gen = validate(cfg.replace(remasking="low_confidence"), len(ids), model.config.block_size)
    device = next(model.parameters()).device
    mask_id, n = tokenizer.mask_id, len(ids)
    x = torch.tensor(ids + [mask_id] * n_gen)
    fixed = tuple([True] * n + [False] * n_gen)
    conf = torch.full(x.shape, float("nan"))
    g = torch.Generator().manual_seed(cfg.seed)
    greedy = cfg.replace(remasking="low_confidence")
    # A story starts after a blank line in the training text: the hidden context of an empty prompt.
    start = torch.tensor(tokenizer.encode(tokenizer.clean("\n\n")) or [mask_id])

    def state(step, revealed_at=None):
        masked = x == mask_id
        revealed = tuple(i == revealed_at for i in range(len(x)))
        return DenoiseState(step, n_gen, 1 - step / n_gen, tuple(x.tolist()), tokenizer.decode(x.tolist()),
                            tuple(masked.tolist()), revealed, (False,) * len(x), tuple(conf.tolist()), fixed,
                            step, 0.0, step == n_gen)

    yield state(0)
    for step in range(1, n_gen + 1):
        i = n + step - 1                                   # the position written this step
        context = torch.cat([start, x[:i]])[-model.config.block_size:]
        logits = model(context[None].to(device))[0, -1:].float().cpu()
        token, p_tok, _ = propose(logits, greedy, g, mask_id)
        x[i], conf[i] = token[0], p_tok[0]
        yield state(step, revealed_at=i)


def generate(model, tokenizer, prompt: str = "", config: SamplerConfig | None = None, **kw) -> DenoiseState:
    """Run the generator to the end and return the final state."""
    last = None
    for last in denoise(model, tokenizer, prompt, config, **kw):
        pass
    return last
