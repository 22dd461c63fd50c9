"""Compare sampler settings on one checkpoint with the sample-eval metrics; print a Markdown table.

Run from the repository root:

    python -m bench.compare_samplers --checkpoint runs/tiny --n 32 [--words-from FILE] [--only SUBSTRING ...] [--json out.json]
    python -m bench.plot_samplers out.json --out docs/samplers.png    # quality against evaluations
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from microdllm.checkpoint import load_checkpoint
from microdllm.data import CORPUS_TRAIN, read_text_files
from microdllm.quality import sample_eval, vocabulary
from microdllm.sampling import DEFAULT, SAMPLER_PRESETS
from microdllm.speed import PLAIN  # 64 steps, training schedule, no early reveals

CANDIDATES = {
    "classic (original: low_confidence, r=1, 100 steps, t=0 pass)": SAMPLER_PRESETS["classic"].replace(gen_len=DEFAULT.gen_len),
    "low_confidence r=1, 64 steps": PLAIN.replace(remasking="low_confidence", remask_ratio=1.0, steps=64),
    "low_confidence r=0.1, 64 steps": PLAIN.replace(remasking="low_confidence", remask_ratio=0.1, steps=64),
    "low_confidence r=0, 64 steps": PLAIN.replace(remasking="low_confidence", remask_ratio=0.0, steps=64),
    "low_confidence r=0, 32 steps": PLAIN.replace(remasking="low_confidence", remask_ratio=0.0, steps=32),
    "margin r=0, 64 steps": PLAIN.replace(remasking="margin", remask_ratio=0.0, steps=64),
    "entropy r=0, 64 steps": PLAIN.replace(remasking="entropy", remask_ratio=0.0, steps=64),
    "random r=0, 64 steps": PLAIN.replace(remasking="random", remask_ratio=0.0, steps=64),
    "none (MDLM ancestral), T=1, 64 steps": PLAIN.replace(remasking="none", temperature=1.0, steps=64),
    "threshold 0.9, <=64 steps": PLAIN.replace(remasking="low_confidence", threshold=0.9, steps=64),
    "threshold 0.7, <=64 steps": PLAIN.replace(remasking="low_confidence", threshold=0.7, steps=64),
    "low_confidence r=0, T=0.7, 64 steps": PLAIN.replace(remasking="low_confidence", temperature=0.7, steps=64),
    "threshold 0.9, T=0.7, <=64 steps": PLAIN.replace(remasking="low_confidence", threshold=0.9, temperature=0.7, steps=64),
    "random r=0, 32 steps": PLAIN.replace(remasking="random", remask_ratio=0.0, steps=32),
    "random r=0, 24 steps": PLAIN.replace(remasking="random", remask_ratio=0.0, steps=24),
    "random r=0, 20 steps": PLAIN.replace(remasking="random", remask_ratio=0.0, steps=20),
    "random r=0, 16 steps": PLAIN.replace(remasking="random", remask_ratio=0.0, steps=16),
    "random r=0, T=0.5, 32 steps": PLAIN.replace(remasking="random", temperature=0.5, steps=32),
    "low_confidence r=0, blocks of 32, 32 steps": PLAIN.replace(remasking="low_confidence", block_len=32, steps=32),
    "low_confidence r=0, blocks of 32, T=0.7, 32 steps": PLAIN.replace(remasking="low_confidence", block_len=32,
                                                                         temperature=0.7, steps=32),
    "margin r=0, blocks of 32, 32 steps": PLAIN.replace(remasking="margin", block_len=32, steps=32),
    "threshold 0.5, blocks of 32, <=32 steps": PLAIN.replace(remasking="low_confidence", threshold=0.5, block_len=32,
                                                             steps=32),
    # Fewer evaluations (#6): early reveals above a confidence threshold, the linear reveal schedule.
    "random, threshold 0.8, 64 steps": PLAIN.replace(threshold=0.8),
    "random, threshold 0.8, 32 steps": PLAIN.replace(threshold=0.8, steps=32),
    "random, linear, 24 steps": PLAIN.replace(reveal_schedule="linear", steps=24),
    "random, linear, threshold 0.8, 48 steps": PLAIN.replace(reveal_schedule="linear", threshold=0.8, steps=48),
    "random, linear, threshold 0.8, 40 steps (the default of stop 2)": PLAIN.replace(reveal_schedule="linear",
                                                                                      threshold=0.8, steps=40),
    "random, linear, threshold 0.8, 32 steps": PLAIN.replace(reveal_schedule="linear", threshold=0.8, steps=32),
    "random, linear, threshold 0.8, 28 steps": PLAIN.replace(reveal_schedule="linear", threshold=0.8, steps=28),
    "random, linear, threshold 0.8, 24 steps": PLAIN.replace(reveal_schedule="linear", threshold=0.8, steps=24),
    "random, linear, threshold 0.7, 24 steps": PLAIN.replace(reveal_schedule="linear", threshold=0.7, steps=24),
    "random, linear, threshold 0.8, 20 steps": PLAIN.replace(reveal_schedule="linear", threshold=0.8, steps=20),
    "random, linear, threshold 0.8, 16 steps": PLAIN.replace(reveal_schedule="linear", threshold=0.8, steps=16),
    "random, linear, threshold 0.9, 24 steps": PLAIN.replace(reveal_schedule="linear", threshold=0.9, steps=24),
    "random, linear, threshold 0.6, 128 steps": PLAIN.replace(reveal_schedule="linear", threshold=0.6, steps=128),
    # Reveals kept apart within a step (`spread`): parallel decoding's factorisation error shrinks.
    "spread r=0, 64 steps": PLAIN.replace(remasking="spread"),
    **{f"spread, linear, threshold 0.8, {n} steps": PLAIN.replace(remasking="spread", reveal_schedule="linear",
                                                                   threshold=0.8, steps=n)
       for n in (40, 32, 24, 20, 16, 12)},
    "spread, linear, no threshold, 20 steps": PLAIN.replace(remasking="spread", reveal_schedule="linear", steps=20),
    # Polish passes (a corrector): when the draft is done, re-read every K-th written character.
    **{f"spread, linear, threshold 0.8, {n} steps + {k} polish passes": PLAIN.replace(
        remasking="spread", reveal_schedule="linear", threshold=0.8, steps=n, polish=k)
       for n, k in ((20, 4), (20, 6), (16, 4), (16, 6), (12, 4), (12, 6), (12, 8), (8, 6), (8, 8))},
}
# Mark the app's default wherever it is among the candidates.
CANDIDATES = {f"{name} (the default)" if cfg == DEFAULT else name: cfg for name, cfg in CANDIDATES.items()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint")
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--only", nargs="*", help="substrings of candidate names to run")
    p.add_argument("--words-from", default=CORPUS_TRAIN,
                   help=f"training text for the word list (default: {CORPUS_TRAIN}, relative to the current directory)")
    p.add_argument("--ar-checkpoint", help="autoregressive model for generative bits/char")
    p.add_argument("--json")
    args = p.parse_args()
    if not Path(args.words_from).is_file():
        p.error(f"{args.words_from}: no such file (the word list comes from the training text; pass --words-from FILE)")
    ck = load_checkpoint(args.checkpoint)
    ar = load_checkpoint(args.ar_checkpoint) if args.ar_checkpoint else None
    known = vocabulary(read_text_files([args.words_from]))
    rows = {}
    print("| sampler | word share | distinct-2 | gen bits/char | mean NFE | s / sample |\n"
          "|---|---:|---:|---:|---:|---:|", flush=True)
    for name, cfg in CANDIDATES.items():
        if args.only and not any(s in name for s in args.only):
            continue
        r = sample_eval(ck, known, cfg, n=args.n, seed=0, ar=ar)
        rows[name] = {**r, "settings": dataclasses.asdict(cfg)}
        gen_bpc = f"{r['gen_bpc']:.3f}" if "gen_bpc" in r else "-"
        print(f"| {name} | {r['word_share']:.3f} | {r['distinct_2']:.3f} | {gen_bpc} | {r['mean_nfe']:.1f} | "
              f"{r['mean_seconds']:.2f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
