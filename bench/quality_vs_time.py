"""Story quality against wall time per story, for several models in one run on this machine.

Each checkpoint writes the same n story continuations at its kind's default settings (sample-eval);
the figure puts generative bits/char (scored by the autoregressive baseline; real stories scored the
same way are the dashed line) against the median seconds per 200-character story.

    python -m bench.quality_vs_time --n 16 --json docs/quality_vs_time.json --out docs/quality_vs_time.png \
        "autoregressive=checkpoints/tinystories-tiny-ar" "block B=2 (bundled, 1600 steps)=checkpoints/tinystories-tiny-block" \
        "full diffusion=checkpoints/tinystories-tiny" --words-from ../shared/data/tinystories_train.txt \
        --reference ../shared/data/tinystories_valid.txt
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from microdllm.atomic import atomic_write
from microdllm.checkpoint import BUNDLED_AR_DIR, load_checkpoint
from microdllm.data import CORPUS_TRAIN, CORPUS_VALID, read_text_files
from microdllm.quality import reference_stories, sample_eval, vocabulary
from microdllm.sampling import defaults_for


def measure(specs: list[str], n: int, words: str, reference: str) -> list[dict]:
    known = vocabulary(read_text_files([words]))
    refs = reference_stories(reference, n)
    ar = load_checkpoint(BUNDLED_AR_DIR)
    rows = []
    for spec in specs:
        label, path = spec.rsplit("=", 1)
        ck = load_checkpoint(path)
        cfg = defaults_for(ck.model_config)
        r = sample_eval(ck, known, cfg, n=n, ar=ar, reference_texts=refs)
        rows.append({"label": label, "checkpoint": path, "kind": ck.model_config.kind, "settings": cfg.__dict__,
                     **{k: r[k] for k in ("gen_bpc", "real_bpc", "word_share", "distinct_2", "mean_nfe",
                                          "mean_seconds", "chars_per_second")}})
        print(f"{label}: gen bits/char {r['gen_bpc']:.3f} (real {r['real_bpc']:.3f}), word share "
              f"{r['word_share']:.3f}, distinct-2 {r['distinct_2']:.3f}, {r['mean_seconds']:.2f} s/story, "
              f"{r['mean_nfe']:.0f} evaluations", flush=True)
    return rows


def plot(rows: list[dict], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = {"autoregressive": "#0072B2", "block diffusion": "#E69F00", "diffusion": "#D55E00"}
    for r in rows:
        ax.scatter(r["mean_seconds"], r["gen_bpc"], s=60, color=colours.get(r["kind"], "#555"), zorder=3)
        ax.annotate(r["label"], (r["mean_seconds"], r["gen_bpc"]), textcoords="offset points", xytext=(6, 4),
                    fontsize=9)
    ax.axhline(rows[0]["real_bpc"], color="#555", ls="--", lw=1, label="real stories, scored the same way")
    ax.axhline(1.15 * rows[0]["real_bpc"], color="#999", ls=":", lw=1, label="target: 1.15 x real")
    ax.set_xlabel("wall time per story (s, 200 characters, this machine, one run)")
    ax.set_ylabel("generative bits per character (lower = likelier text)")
    ax.set_title("Story quality against time: left to right, block by block, all at once")
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize=9)
    fig.tight_layout()
    atomic_write(out, lambda p: fig.savefig(p, dpi=110))
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="LABEL=CHECKPOINT")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--words-from", default=CORPUS_TRAIN)
    p.add_argument("--reference", default=CORPUS_VALID)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    p.add_argument("--out", help="the figure (PNG)")
    p.add_argument("--from-json", action="store_true", help="plot the rows in --json, measure nothing")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.from_json:
        rows = json.loads(Path(args.json).read_text())
    else:
        rows = measure(args.runs, args.n, args.words_from, args.reference)
        if args.json:
            atomic_write(args.json, json.dumps(rows, indent=2))
    if args.out:
        plot(rows, args.out)


if __name__ == "__main__":
    main()
