"""The long road: story quality of block diffusion (no verification) against characters of training.

    python -m bench.block_quality_curve runs/block16-snap/step400 runs/block16b-snap/step200@1.6384 ... \
        --n 16 --json docs/block16_quality.json --out docs/block16_quality.png

A checkpoint of a later stage is given as PATH@M: its characters are counted after M million of the
stages before it.

For each checkpoint (snapshots of one run) and each block size in --blocks, `sample-eval` (n stories
of 200 characters, sampled at the model's block defaults) by denoising: one character a step
(steps = B, no early reveals) and B / 4 steps a block (with the 0.8 threshold). Word share and
generative bits/char (under the bundled autoregressive model) against the characters the run had
seen, one line per (B, steps); the figure has one panel per metric.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from microdllm.checkpoint import BUNDLED_AR_DIR, load_checkpoint, read_config
from microdllm.data import read_text_files
from microdllm.quality import sample_eval, vocabulary
from microdllm.sampling import BLOCK_DEFAULT


def settings(block: int) -> dict:
    base = BLOCK_DEFAULT.replace(mode="denoise", block_len=block, gen_len=200)
    return {f"B = {block}, one character a step": base.replace(steps=block, threshold=None),
            f"B = {block}, {max(1, block // 4)} steps a block": base.replace(steps=max(1, block // 4), threshold=0.8)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--blocks", type=int, nargs="+", default=[8, 16])
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--words-from", default="../shared/data/tinystories_train.txt")
    p.add_argument("--json")
    p.add_argument("--out")
    args = p.parse_args(argv)
    known = vocabulary(read_text_files([args.words_from]))
    ar = load_checkpoint(BUNDLED_AR_DIR)
    rows = []
    for spec in args.checkpoints:
        path, _, before = spec.partition("@")
        ck, training = load_checkpoint(path), read_config(path)["training"]
        for block in args.blocks:
            for name, cfg in settings(block).items():
                r = sample_eval(ck, known, cfg, n=args.n, ar=ar)
                seen = training["tokens"] + float(before or 0) * 1e6
                rows.append({"checkpoint": path, "step": training["step"], "characters": seen,
                             "setting": name, "word_share": r["word_share"], "gen_bpc": r["gen_bpc"],
                             "distinct_2": r["distinct_2"], "mean_nfe": r["mean_nfe"]})
                print(json.dumps(rows[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"n": args.n, "rows": rows}, indent=2))
    if args.out:
        plot(rows, args.out)


def plot(rows: list[dict], out, xlabel: str = "characters of training since the B = 2 model (millions)") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for setting in dict.fromkeys(r["setting"] for r in rows):
        mine = [r for r in rows if r["setting"] == setting]
        xs = [r["characters"] / 1e6 for r in mine]
        for ax, key in zip(axes, ("word_share", "gen_bpc")):
            ax.plot(xs, [r[key] for r in mine], marker="o", label=setting)
    axes[0].set_ylabel("word share (target >= 0.95 at B = 8)")
    axes[1].set_ylabel("generative bits/char (real text about 0.99)")
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Block diffusion without verification, against training")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
