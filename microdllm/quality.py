"""Sample quality by measurement: generate from fixed story openings and score the text.

- word share: the share of generated words found in the training text's word list;
- distinct-2: unique word bigrams over all word bigrams (low = repetitive);
- generative bits/char: the generated text scored by the autoregressive baseline (the
  "generative perplexity" of MDLM and SEDD), next to real validation text scored the same way.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import torch

from .evaluate import LN2
from .sampling import SamplerConfig, generate

OPENINGS = [
    "Once upon a time, there was a little girl named Lily.",
    "One day, a boy named Tom went to the park.",
    "Once upon a time, there was a big red dog.",
    "Sara and Ben were playing in the garden.",
    "The sun was shining and the birds were singing.",
    "Once upon a time, in a small house, there lived a cat.",
    "Tim had a new toy car.",
    "Mom said, \"Let's go to the store.\"",
    "There was a little bird who could not fly.",
    "One morning, Amy woke up and looked out the window.",
    "Once upon a time, there was a kind old man.",
    "The little bunny was hungry.",
    "Max and his friend found a box in the woods.",
    "Lucy loved to draw pictures.",
    "It was a rainy day, so Jack stayed inside.",
    "Once there was a tiny fish in a big pond.",
]
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
# Issue #5's targets for the bundled model at the app's default settings: metric -> (comparison, bound).
TARGETS = {"word_share": (">=", 0.95), "distinct_2": (">=", 0.5), "gen_over_real": ("<=", 1.15)}


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def complete_words(text: str) -> list[str]:
    """Words of `text`, without a last word cut off by the generation length."""
    ws = words(text)
    return ws[:-1] if ws and text and text[-1].isalpha() else ws


def vocabulary(text: str) -> set[str]:
    return set(words(text))


def word_share(texts: list[str], known: set[str]) -> float:
    ws = [w for t in texts for w in complete_words(t)]
    return sum(w in known for w in ws) / max(1, len(ws))


def distinct_n(texts: list[str], n: int = 2) -> float:
    grams = [tuple(ws[i:i + n]) for t in texts for ws in [complete_words(t)] for i in range(len(ws) - n + 1)]
    return len(set(grams)) / max(1, len(grams))


@torch.inference_mode()
def ar_bits_per_char(ar_model, tokenizer, prefix: str, text: str) -> tuple[float, int]:
    """Total bits and count of the characters of `text` given `prefix` under a causal model."""
    ids = tokenizer.encode(tokenizer.clean(prefix + text))[-ar_model.config.block_size:]
    n = min(len(tokenizer.clean(text)), len(ids) - 1)
    x = torch.tensor([ids])
    logp = ar_model(x)[0, :-1].float().log_softmax(-1)
    nll = -logp.gather(-1, x[0, 1:, None]).squeeze(-1)[-n:]
    return float(nll.sum()) / LN2, n


def sample_eval(ck, known_words: set[str], config: SamplerConfig, n: int = 64, seed: int = 0,
                ar=None, reference_texts: list[str] | None = None, progress: bool | None = False,
                verbose: bool = False) -> dict:
    """Generate n continuations (openings cycled, seeds seed..seed+n-1) and score them.

    progress: a tqdm bar on stderr over the stories, then the scoring (True always, None only when
    stderr is a terminal, False never); verbose: also print each story's first 120 characters (to stderr).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1 (stories to generate), got {n}")
    from tqdm import tqdm

    disable = None if progress is None else not progress
    gens, prompts, nfe, seconds = [], [], 0, 0.0
    with tqdm(total=n, desc="sample-eval", unit="story", file=sys.stderr, dynamic_ncols=True, leave=False,
              disable=disable) as bar:
        for i in range(n):
            prompt = OPENINGS[i % len(OPENINGS)] + " "
            state = generate(ck.model, ck.tokenizer, prompt, config.replace(seed=seed + i), schedule=ck.schedule, ngram=ck.ngram)
            gens.append(state.text[len(prompt):])
            prompts.append(prompt)
            nfe += state.nfe
            seconds += state.elapsed
            bar.update()
            bar.set_postfix(nfe=f"{nfe / (i + 1):.1f}", refresh=False)
            if verbose:
                bar.write(f"[{i + 1}/{n}] {state.text[:120]!r}", file=sys.stderr)
    result = {"n": n, "word_share": word_share(gens, known_words), "distinct_2": distinct_n(gens, 2),
              "mean_nfe": nfe / n, "chars_per_nfe": sum(map(len, gens)) / max(nfe, 1), "mean_seconds": seconds / n,
              "chars_per_second": sum(map(len, gens)) / max(seconds, 1e-9),
              "samples": [p + g for p, g in zip(prompts[:3], gens[:3])]}
    real = [split_reference(t, len(gens[0])) for t in reference_texts or []]   # (opening, continuation)
    if ar is not None:
        with tqdm(total=n + len(real), desc="scoring", unit="text", file=sys.stderr, dynamic_ncols=True,
                  leave=False, disable=disable) as bar:
            result["gen_bpc"] = mean_bits_per_char(ar, zip(prompts, gens), bar)
            if real:
                result["real_bpc"] = mean_bits_per_char(ar, real, bar)
                result["gen_over_real"] = result["gen_bpc"] / result["real_bpc"]
    if real:
        result["real_word_share"] = word_share([continuation for _, continuation in real], known_words)
    result["targets_met"] = targets_met(result)
    return result


def mean_bits_per_char(ar, pairs, bar=None) -> float:
    """Bits per character of each (prefix, text)'s text under the autoregressive checkpoint `ar`, pooled
    (`bar`: a tqdm bar to advance once per text)."""
    bits = []
    for prefix, text in pairs:
        bits.append(ar_bits_per_char(ar.model, ar.tokenizer, prefix, text))
        if bar is not None:
            bar.update()
    return sum(b for b, _ in bits) / max(1, sum(c for _, c in bits))


def split_reference(story: str, length: int, opening: int = 40) -> tuple[str, str]:
    """A real story as (opening, continuation of `length` characters), cut after the first space at
    or past `opening` characters, so that the continuation starts with a whole word, as a generated one does."""
    cut = story.find(" ", opening) + 1 or opening
    return story[:cut], story[cut:cut + length]


def targets_met(result: dict) -> dict[str, bool]:
    """For each target whose metric is in `result`: whether it is met."""
    return {key: result[key] >= bound if op == ">=" else result[key] <= bound
            for key, (op, bound) in TARGETS.items() if key in result}


def reference_stories(path, n: int = 64) -> list[str]:
    stories = Path(path).read_text(encoding="utf-8").rstrip("\n").split("\n\n")
    return [s for s in stories if len(s) > 300][:n]
