"""Block diffusion without verification: how many characters a step, and what that costs the stories.

    python -m bench.parallel_rules --checkpoint checkpoints/tinystories-tiny-block16 --n 16 \
        [--json docs/parallel_rules.json]

For blocks of 16 and sub-blocks of 8 inside them (Fast-dLLM v2), each rule that decides how many masks
a step reveals: one a step (steps = B, the baseline), the confidence threshold (every mask at least p
sure), and the entropy bound (EB-sampler: the surest masks while their entropies less the largest sum
to at most gamma nats). `sample-eval` at the block defaults otherwise (T 0.9, top-p 0.9, 200 characters
after each opening): characters per model evaluation, word share, distinct-2 and generative bits/char
under the bundled autoregressive model.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from microdllm.checkpoint import BUNDLED_AR_DIR, load_checkpoint
from microdllm.data import read_text_files
from microdllm.quality import sample_eval, vocabulary
from microdllm.sampling import BLOCK_DEFAULT


def settings(blocks: list[int], thresholds: list[float], gammas: list[float]) -> dict:
    out = {}
    for block in blocks:
        one = BLOCK_DEFAULT.replace(mode="denoise", block_len=block, gen_len=200, steps=block, threshold=None)
        out[f"B {block}, one a step"] = one
        out.update({f"B {block}, threshold {p}": one.replace(threshold=p) for p in thresholds})
        out.update({f"B {block}, entropy bound {g}": one.replace(entropy_bound=g) for g in gammas})
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--blocks", type=int, nargs="+", default=[16, 8])
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 0.7])
    p.add_argument("--gammas", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--words-from", default="../shared/data/tinystories_train.txt")
    p.add_argument("--json")
    args = p.parse_args(argv)
    known = vocabulary(read_text_files([args.words_from]))
    ck, ar = load_checkpoint(args.checkpoint), load_checkpoint(BUNDLED_AR_DIR)
    rows = []
    print("| setting | chars / evaluation | word share | distinct-2 | gen bits/char |\n|---|---:|---:|---:|---:|")
    for name, cfg in settings(args.blocks, args.thresholds, args.gammas).items():
        r = sample_eval(ck, known, cfg, n=args.n, ar=ar)
        rows.append({"setting": name, "chars_per_nfe": 200 / r["mean_nfe"], **{k: r[k] for k in
                     ("word_share", "distinct_2", "gen_bpc", "mean_nfe")}})
        x = rows[-1]
        print(f"| {name} | {x['chars_per_nfe']:.2f} | {x['word_share']:.3f} | {x['distinct_2']:.3f} | "
              f"{x['gen_bpc']:.2f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint": args.checkpoint, "n": args.n, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
