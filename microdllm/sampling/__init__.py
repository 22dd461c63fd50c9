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
  remask_ratio    r > 0 runs the original's refinement instead (`refine`): every step re-predicts
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

from typing import Iterator

import torch

from ..diffusion import CosineSchedule, Schedule
from ..remasking import REMASKING_CHOICES, SCORED
from ..tokenizer import CharTokenizer
from .by_hand import by_hand, check_reveal
from .canvas import BlockPlan, Canvas, Lookahead, generation_length, model_blocks, resumed, split_blocks, start_ids
from .config import (
    BLOCK_DEFAULT,
    DEFAULT,
    MAX_POLISH,
    MAX_STEPS,
    MODES,
    POLISH_CONFIDENCE,
    SAMPLER_PRESETS,
    TRAINING_SCHEDULE,
    VERIFY_DEFAULT,
    SamplerConfig,
    SamplingError,
    defaults_for,
    switches,
)
from .left_to_right import left_to_right
from .refine import final_pass, polish, refine
from .reveal import reveal
from .state import PHASES, ROLES, TOP_CANDIDATES, Candidates, DenoiseState, candidates, timed
from .verify import draft_and_verify

__all__ = ["BLOCK_DEFAULT", "DEFAULT", "MAX_POLISH", "MAX_STEPS", "MODES", "PHASES", "POLISH_CONFIDENCE",
           "REMASKING_CHOICES", "ROLES", "SAMPLER_PRESETS", "TOP_CANDIDATES", "TRAINING_SCHEDULE", "VERIFY_DEFAULT", "BlockPlan",
           "Candidates", "Canvas", "DenoiseState", "Lookahead", "SamplerConfig", "SamplingError", "candidates",
           "defaults_for", "denoise", "generate", "generation_length", "left_to_right", "model_blocks",
           "split_blocks", "switches"]


@torch.inference_mode()
def _run(model, tokenizer: CharTokenizer, prompt: str, cfg: SamplerConfig, infill: bool,
         schedule: Schedule, start: DenoiseState | None = None, hand=None, chars=None,
         ngram=None) -> Iterator[DenoiseState]:
    """The reverse process: the all-masked start (or `start`), a step chosen by hand (`hand`), the
    denoising phase, then the polish passes."""
    ids = resumed(start, model) if start is not None else start_ids(model, tokenizer, prompt, cfg, infill)
    c = Canvas(model, tokenizer, ids, cfg, schedule, start, ngram)
    passes = min(cfg.polish, len(c.editable)) if cfg.mode == "denoise" else 0
    total = c.step + sum(b.steps for b in c.blocks) + cfg.final_pass + passes
    if cfg.mode != "denoise":       # the text grows at its end: at most one step a character
        total = c.step + int((c.x == c.mask_id).sum()) * (1 + (cfg.mode == "verify" and not cfg.merge))
        window = (cfg.block_len or cfg.draft_window or c.attn_block) if cfg.mode == "verify" else 0
        phases = [draft_and_verify(c, window, cfg.merge, cfg.outcome_windows, cfg.draft_tree)]
    elif cfg.remasking in SCORED and cfg.remask_ratio > 0:
        phases = [refine(c)]
    else:
        phases = [reveal(c)]
    phases += [final_pass(c)] * cfg.final_pass + [polish(c, passes)] * bool(passes)
    u = start.u if start else 1.0
    if hand is not None:
        check_reveal(c, hand, chars)         # refused before the first state: nothing is yielded
        total += 1
    yield c.state(c.x, u, total, done=False)
    if hand is not None:
        prev = by_hand(c, hand, chars, u)
        yield c.state(prev, u, total, done=not c.any_masked())
        if not c.any_masked():
            return                           # written in full by hand: the run is done (no polish)
    for k, phase in enumerate(phases):
        for prev, u, phase_over, rewritten in phase:
            yield c.state(prev, u, total, done=phase_over and k == len(phases) - 1, rewritten=rewritten)



def denoise(model, tokenizer: CharTokenizer, prompt: str = "", config: SamplerConfig | None = None, *,
            infill: bool = False, schedule: Schedule | None = None, start: DenoiseState | None = None,
            reveal=None, chars=None, ngram=None, **overrides) -> Iterator[DenoiseState]:
    """Yield the state after every denoising step, from all-masked (step 0) to clean text (done=True).

    prompt: text to continue, or with infill=True a template whose `_` glyphs are filled in. A
    block-causal model writes block by block (its blocks, KV-cached); a causal one left to right; a
    clean-causal block model also by drafting and checking (`mode="verify"`, verify.py) or with its
    autoregressive half alone (`mode="left-to-right"`).
    start: branch from a state of an earlier run (same vocabulary): its text is kept, its masks are
    written from there on with `config` (the prompt and `infill` are then ignored); steps go on from
    its step, so the branch's states follow the earlier run's states up to `start`.
    reveal: positions (masked, in the block being written) that the first step after the start writes,
    chosen by hand instead of by the strategy (by_hand.py): chars[k] at reveal[k], or where chars is
    None or chars[k] is None / "", the model's most probable character there. One evaluation; then
    the run goes on as usual. Its state names what the strategy would have chosen (`suggested`).
    ngram: the checkpoint's character n-gram (`Checkpoint.ngram`, ngram.py): with `config.copula`, drafting
    and checking draws each draft's characters tied together by it (more of each draft is kept; the text
    is the verifier's either way). None: drafts drawn position by position.
    config: None = the defaults for this kind of model (`defaults_for`); keyword overrides go on top.
    Stop iterating at any time to cancel. `elapsed` counts the sampler's own time only, not the
    time the caller spends with each state (rendering, streaming).
    """
    cfg = (config or defaults_for(model.config)).replace(**overrides)
    if model.config.causal:   # an autoregressive model writes left to right, through the same stream
        if infill and start is None:
            raise SamplingError("an autoregressive model writes left to right: it cannot fill in blanks")
        if reveal is not None:
            raise SamplingError("an autoregressive model writes one character at its cursor: "
                                "choose what to reveal with a diffusion model")
        return left_to_right(model, tokenizer, prompt, cfg, start=start)
    if cfg.mode != "denoise" and not getattr(model.config, "clean_causal", False):
        raise SamplingError(f"writing {cfg.mode} needs a block model whose clean half is causal (an autoregressive "
                            f"model inside it); this {model.config.kind} model writes by denoising only")
    return timed(_run(model, tokenizer, prompt, cfg, infill, schedule or CosineSchedule(), start, reveal, chars, ngram))



def generate(model, tokenizer, prompt: str = "", config: SamplerConfig | None = None, **kw) -> DenoiseState:
    """Run the generator to the end and return the final state."""
    last = None
    for last in denoise(model, tokenizer, prompt, config, **kw):
        pass
    return last
