"""What a visitor typed, checked and turned into what the sampler takes.

A prompt or infilling template is cleaned or refused with a reason in words; control values
(None, or strings when they come through the API) become a SamplerConfig. It knows nothing of
Gradio or of how anything is drawn: the app shows the messages and errors it returns.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .sampling import DEFAULT, SamplerConfig, SamplingError, switches
from .tokenizer import MASK_GLYPH, CharTokenizer


@dataclass
class Prepared:
    text: str                      # the prompt / template to sample from (cleaned if asked)
    gen_len: int | None = None     # continuation: characters to generate (clamped to the context)
    messages: list[tuple[str, str]] = field(default_factory=list)  # ("info" | "warning", text)
    error: str | None = None       # set: do not sample; show this


def _names(chars: list[str]) -> str:
    return ", ".join(repr(c) for c in chars[:20]) + (" …" if len(chars) > 20 else "")


def _fit_continuation(tokenizer: CharTokenizer, out: Prepared, block_size: int) -> Prepared:
    """A prompt must leave room in the context; the generation length shrinks to the room left."""
    n = len(tokenizer.encode(out.text))
    room = block_size - n
    if room < 1:
        out.error = (f"The prompt is {n} characters; it can be at most {block_size - 1} "
                     f"(the model's context is {block_size} characters and at least one is left to generate).")
        return out
    if not n:
        out.messages.append(("info", "No prompt: unconditional generation."))
    if out.gen_len is None or out.gen_len > room:
        if out.gen_len is not None:
            out.messages.append(("info", f"Generation length reduced to {room}: a {n}-character prompt "
                                         f"leaves {room} of the model's {block_size}-character context."))
        out.gen_len = room
    return out


def prepare_prompt(tokenizer: CharTokenizer, text: str | None, infill: bool, drop_unknown: bool,
                   block_size: int, gen_len: int | None) -> Prepared:
    """Check a prompt (continuation) or a template (infilling, `_` = one masked character)."""
    text = "" if text is None else str(text)
    out = Prepared(text, gen_len)
    pieces = text.split(MASK_GLYPH) if infill else [text]
    unknown = tokenizer.unknown_chars("".join(pieces))
    if unknown:
        hint = (f" In continuation mode {MASK_GLYPH} is not a blank: choose infilling to fill in blanks."
                if MASK_GLYPH in unknown else "")
        if not drop_unknown:
            out.error = (f"The model does not know these characters: {_names(unknown)}. Remove them, "
                         f"or tick 'Drop unknown characters'.{hint}")
            return out
        out.text = MASK_GLYPH.join(tokenizer.clean(p) for p in pieces)
        out.messages.append(("info", f"Dropped {len(unknown)} kind(s) of character the model does not know: "
                                     f"{_names(unknown)}.{hint}"))
    if not infill:
        return _fit_continuation(tokenizer, out, block_size)
    n = len(tokenizer.encode_template(out.text))
    if MASK_GLYPH not in out.text:
        out.error = (f"The infilling template has no {MASK_GLYPH} masks: put one {MASK_GLYPH} wherever "
                     f"the model should write a character, e.g. 'there was a ____ named ___.'")
    elif n > block_size:
        out.error = f"The template is {n} characters; the model's context is at most {block_size}."
    return out


def _number(name: str, value, default, cast):
    if value is None or value == "":
        return default
    try:
        number = float(value)
        if cast is int:
            if not math.isfinite(number):
                raise ValueError
            return int(round(number))
        return number
    except (TypeError, ValueError):
        raise SamplingError(f"{name} must be a number, got {value!r}") from None


def sampler_config(*, steps=None, temperature=None, remasking=None, remask_ratio=None, gen_len=None,
                   top_k=None, top_p=None, seed=None, block_len=None, threshold=None,
                   reveal_schedule=None, polish=None, writing=None, defaults: SamplerConfig = DEFAULT) -> SamplerConfig:
    """UI / API values -> SamplerConfig (None = the value in `defaults`). The config checks the ranges.

    A threshold of 1 switches early reveals off; reveal_schedule "model" is the model's training schedule;
    writing is the config's mode (how the model writes: "denoise", "verify" or "left-to-right").
    """
    d = defaults
    block = _number("block length", block_len, 0, int)
    return d.replace(
        steps=_number("steps", steps, d.steps, int),
        temperature=_number("temperature", temperature, d.temperature, float),
        remasking=str(remasking) if remasking else d.remasking,
        remask_ratio=_number("remasking ratio", remask_ratio, d.remask_ratio, float),
        gen_len=_number("generation length", gen_len, d.gen_len, int),
        top_k=_number("top-k", top_k, d.top_k, int),
        top_p=_number("top-p", top_p, d.top_p, float),
        seed=abs(_number("seed", seed, d.seed, int)) % (2 ** 63),
        block_len=block if block > 0 else None,
        polish=_number("polish passes", polish, d.polish, int),
        mode=str(writing) if writing else d.mode,
        **switches(_number("threshold", threshold, d.threshold or 1.0, float),
                   str(reveal_schedule) if reveal_schedule else d.reveal_schedule),
    )
