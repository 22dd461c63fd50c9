"""Draft and verify: the draft window and the outcome windows, against the autoregressive checkpoint.

Run from the repository root (a clean-causal block checkpoint, at its default temperature):

    python -m bench.draft_windows --checkpoint checkpoints/tinystories-tiny-block16 \\
        --windows 3 4 5 16 --outcomes 0 16 [--trees 0 8] --n 4 --repeats 3 [--threads 1] [--int8] [--json out.json]
        [--plot out.png]
    python -m bench.draft_windows --replot out.json --plot out.png     # draw an earlier run again

Every setting writes 200 characters after each of n sample-eval openings; all settings and the KV-cached
autoregressive checkpoint run round-robin (`speed.round_robin`: a warm-up round, then `repeats`), so a
shared machine's drifts hit them alike. Per setting: evaluations, characters per evaluation, positions
evaluated per evaluation, and the summed median wall time over the openings as a ratio to the
autoregressive model's (with --int8: every setting and the AR model also with int8 weights, the ratio to
the faster AR run). One `denoise` stream for all of it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from microdllm.checkpoint import load_checkpoint
from microdllm.quality import OPENINGS
from microdllm.sampling import defaults_for, denoise
from microdllm.serving import serve_checkpoint
from microdllm.speed import round_robin

AR_CHECKPOINT = "checkpoints/tinystories-tiny-ar"


def settings(ck, base, windows: list[int], outcomes: list[int], int8: bool = False, trees: tuple[int, ...] = (0,)) -> dict:
    """name -> (checkpoint, sampler settings): every window x outcome windows x draft (a path, or a tree of
    that many characters), and with int8 weights too."""
    served = {"": serve_checkpoint(ck), **({", int8": serve_checkpoint(ck, int8=True)} if int8 else {})}
    return {f"window {w}, {o} outcome windows{f', tree {t}' if t else ''}{tag}":
            (c, base.replace(draft_window=w, outcome_windows=o, draft_tree=t))
            for w in windows for o in outcomes for t in trees for tag, c in served.items()}


def race(ar, runs: dict, prompts: list[str], repeats: int, int8: bool = False) -> list[dict]:
    """runs: name -> (checkpoint, settings). The autoregressive checkpoint (and its int8 copy) runs beside
    them, sampled alike; ratios are to the faster autoregressive run."""
    totals: dict[str, dict] = {}
    temperature = next(iter(runs.values()))[1].temperature
    baselines = {"autoregressive": serve_checkpoint(ar),
                 **({"autoregressive, int8": serve_checkpoint(ar, int8=True)} if int8 else {})}
    for prompt in prompts:
        same = defaults_for(ar.model_config).replace(gen_len=200, temperature=temperature)   # sampled alike
        streams = {name: (lambda b=b, p=prompt: denoise(b.model, b.tokenizer, p, same)) for name, b in baselines.items()}
        streams.update({name: (lambda c=c, cfg=cfg, p=prompt: denoise(c.model, c.tokenizer, p, cfg, ngram=c.ngram))
                        for name, (c, cfg) in runs.items()})
        for name, r in round_robin(streams, repeats).items():
            t = totals.setdefault(name, {"setting": name, "nfe": 0, "positions": 0, "characters": 0, "seconds": 0.0})
            for key in ("nfe", "positions", "characters", "seconds"):
                t[key] += r[key]
    ar_seconds = min(totals[name]["seconds"] for name in baselines)
    return [{**t, "chars_per_nfe": t["characters"] / t["nfe"], "positions_per_nfe": t["positions"] / t["nfe"],
             "vs_autoregressive": t["seconds"] / ar_seconds} for t in totals.values()]


def plot(rows: list[dict], out: str) -> None:
    """Characters per evaluation against time (x the AR model's) for every setting, float and int8, with
    the targets of issue #21 (3 characters an evaluation, 0.7x the time) drawn in."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for int8, marker in ((False, "o"), (True, "^")):
        mine = [r for r in rows if r["setting"].endswith("int8") == int8 and r["setting"].startswith("window")]
        ax.scatter([r["vs_autoregressive"] for r in mine], [r["chars_per_nfe"] for r in mine], marker=marker,
                   label="int8 weights" if int8 else "float32")
        for r in mine:
            w, o = r["setting"].split(",")[:2]
            ax.annotate(f"{w.split()[1]}/{o.split()[0]}", (r["vs_autoregressive"], r["chars_per_nfe"]),
                        fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.axvline(0.7, color="grey", ls="--", lw=1)
    ax.axhline(3.0, color="grey", ls=":", lw=1)
    ax.set_xlabel("wall time, x the autoregressive model's (lower is faster)")
    ax.set_ylabel("characters per model evaluation")
    ax.set_title("Draft and verify: window / outcome windows", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="a clean-causal block checkpoint (needed unless --replot)")
    p.add_argument("--windows", type=int, nargs="+", default=[3, 4, 5, 16])
    p.add_argument("--outcomes", type=int, nargs="+", default=[0, 16])
    p.add_argument("--trees", type=int, nargs="+", default=[0],
                   help="drafts checked: 0 a path drawn from the window, N a tree of its N likeliest characters")
    p.add_argument("--n", type=int, default=4, help="openings (prompts)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--int8", action="store_true", help="every setting, and the AR model, also with int8 weights")
    p.add_argument("--json")
    p.add_argument("--plot", help="draw characters per evaluation against time to this PNG")
    p.add_argument("--replot", help="only draw --plot from this earlier --json")
    args = p.parse_args(argv)
    if args.replot:
        plot(json.loads(Path(args.replot).read_text())["rows"], args.plot or "draft_windows.png")
        return
    if not args.checkpoint:
        p.error("--checkpoint is required (unless --replot)")
    torch.set_num_threads(args.threads)
    ck, ar = load_checkpoint(args.checkpoint), load_checkpoint(AR_CHECKPOINT)
    base = defaults_for(ck.model_config).replace(gen_len=200, mode="verify", polish=0, block_len=None)
    prompts = [OPENINGS[i % len(OPENINGS)] + " " for i in range(args.n)]
    rows = race(ar, settings(ck, base, args.windows, args.outcomes, args.int8, args.trees), prompts, args.repeats, args.int8)
    print(f"T={base.temperature}, top-p {base.top_p}, {args.n} openings, {args.threads} thread(s)\n")
    print("| setting | evaluations | characters / evaluation | positions / evaluation | vs autoregressive |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['setting']} | {r['nfe']} | {r['chars_per_nfe']:.2f} | {r['positions_per_nfe']:.1f} | "
              f"{r['vs_autoregressive']:.2f} |")
    if args.plot:
        plot(rows, args.plot)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "threads": args.threads, "n": args.n, "repeats": args.repeats,
                       "int8": args.int8, "trees": args.trees,
                       "temperature": base.temperature, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
