"""The canvas: the sequence being written, its blocks, and the model evaluations that write it.

Every way of writing changes one `Canvas` step by step and turns it into a `DenoiseState`; the canvas
knows the model and its KV cache, not the strategy that decides what to write.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..diffusion import Schedule, always_predicted, get_schedule
from ..model import KVCache
from ..tokenizer import MASK_GLYPH, CharTokenizer
from .config import SamplerConfig, SamplingError
from .state import DenoiseState, candidates_rows, top_candidates


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


class Canvas:
    """The sequence being written, and the model evaluations that write it (mutable; states are not).

    A block-causal model keeps the blocks behind the one being written in a KV cache: an evaluation
    then runs only the block's positions (and, once, the block just finished, to cache it)."""

    def __init__(self, model, tokenizer: CharTokenizer, ids: list[int], cfg: SamplerConfig, schedule: Schedule,
                 start: DenoiseState | None = None, ngram=None):
        self.model, self.tokenizer, self.cfg, self.schedule = model, tokenizer, cfg, schedule
        self.ngram = ngram                  # the checkpoint's n-gram: couples a draft's characters (ngram.py)
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
        self.best_p = torch.full((len(ids),), float("nan"))   # ... and its probability
        self.mask_index = torch.tensor([self.mask_id])
        self.entropy, self.suggested = float("nan"), ()      # this step's: see DenoiseState
        self.guess_names = ["", *tokenizer.chars]       # a guess id -> what DenoiseState.guesses shows
        self.ahead: Lookahead | None = None
        self.looked_ahead = start.looked_ahead if start else 0
        self.block: tuple[int, int] | None = None
        self.rejected: torch.Tensor | None = None       # draft and verify: the drafts this step turned down
        self.accepted: list[tuple[int, int]] = list(start.accepted) if start else []   # (kept, drafted) a round

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
        shift, window = int(self.model.config.shift), None
        if self.model.config.clean_causal:    # the text behind the block is read causally: its own keys
            window = start
        elif shift and not (x[0, max(cached - shift, 0):end - shift] == self.mask_id).any():
            keep = end - cached
            after = self.after.get(self.block)
            if self.cfg.lookahead and after and after[0] == end and self.best[end - 1] > 0:
                x[0, end - 1] = self.best[end - 1]          # the next block reads the guess
                stop = after[1]
        rows = self.model.extend(x.to(self.device), stop, self.cache, keep, self.attn_block, window)[0].float().cpu()
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
            logp = logits[still].float().log_softmax(-1)
            self.entropy = -float((logp.exp() * logp).sum() / len(logp))
            best_logp, best = logp.index_fill(-1, self.mask_index, float("-inf")).max(-1)
            where = pos[still]
            self.best[where], self.best_p[where] = best, best_logp.exp()
        written = (~still & (now != before)).nonzero().flatten()
        if len(written):
            self.noted += candidates_rows(pos[written].tolist(), logits[written], now[written].tolist(), self.tokenizer)

    def wrote(self, start: int, chars: torch.Tensor, logits: torch.Tensor) -> None:
        """`chars` were just written over masks at start, start + 1, ... (the text growing at its end; `note`
        for any positions): their confidences and rivals from one softmax of their rows of logits."""
        probs, end = logits.float().softmax(-1), start + len(chars)
        self.conf[start:end] = probs[torch.arange(len(chars)), chars]
        self.noted += top_candidates(list(range(start, end)), probs, chars.tolist(), self.tokenizer)

    def state(self, prev: torch.Tensor, u: float, total: int, done: bool, rewritten: bool = False) -> DenoiseState:
        """The state after a step; `prev` is x before it. rewritten: `revealed` marks changed characters."""
        masked, was = self.x == self.mask_id, prev == self.mask_id
        revealed = self.x != prev if rewritten else was & ~masked
        noted, self.noted, ids = tuple(self.noted), [], self.x.tolist()
        guesses = tuple(map(self.guess_names.__getitem__, (self.best * masked).tolist()))
        rejected, self.rejected = (() if self.rejected is None else tuple(self.rejected.tolist())), None
        guess_conf = tuple(torch.where(masked, self.best_p, float("nan")).tolist())
        (entropy, self.entropy), (suggested, self.suggested) = (self.entropy, float("nan")), (self.suggested, ())
        return DenoiseState(self.step, total, u, tuple(ids), self.tokenizer.decode(ids),
                            tuple(masked.tolist()), tuple(revealed.tolist()), tuple((~was & masked).tolist()),
                            tuple(self.conf.tolist()), self.fixed, self.nfe, 0.0, done,
                            self.block, self.boundaries, self.work, self.phase, guesses, noted,
                            self.looked_ahead, rejected, tuple(self.accepted), guess_conf, entropy, suggested)



def start_ids(model, tokenizer: CharTokenizer, prompt: str, cfg: SamplerConfig, infill: bool) -> list[int]:
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


def resumed(start: DenoiseState, model) -> list[int]:
    """The tokens a branch starts from: a state of an earlier run, whose masks are written from here on."""
    ids, vocab = list(start.tokens), model.config.vocab_size
    if not 0 < len(ids) <= model.config.block_size:
        raise SamplingError(f"the draft is {len(ids)} characters; the model's context is {model.config.block_size}")
    if not all(0 <= i < vocab for i in ids) or len(start.fixed) != len(ids) or len(start.confidence) != len(ids):
        raise SamplingError("the draft does not fit this model's vocabulary")
    if not any(start.masked):
        raise SamplingError("nothing to continue: the draft has no masks left (rewind to an earlier step)")
    return ids

