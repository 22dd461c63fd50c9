"""Draft and verify: the draft window and the outcome windows, against the autoregressive checkpoint.

Run from the repository root (a clean-causal block checkpoint, at its default temperature):

    python -m bench.draft_windows --checkpoint checkpoints/tinystories-tiny-block16 \\
        --windows 3 4 5 16 --outcomes 0 16 --n 4 --repeats 3 [--threads 1] [--json out.json]

Every setting writes 200 characters after each of n sample-eval openings; all settings and the KV-cached
autoregressive checkpoint run round-robin (`speed.round_robin`: a warm-up round, then `repeats`), so a
shared machine's drifts hit them alike. Per setting: evaluations, characters per evaluation, positions
evaluated per evaluation, and the summed median wall time over the openings as a ratio to the
autoregressive model's. One `denoise` stream for all of it.
"""
from __future__ import annotations

import argparse
import json

import torch

from microdllm.checkpoint import load_checkpoint
from microdllm.quality import OPENINGS
from microdllm.sampling import defaults_for, denoise
from microdllm.speed import round_robin

AR_CHECKPOINT = "checkpoints/tinystories-tiny-ar"


def settings(base, windows: list[int], outcomes: list[int]) -> dict:
    return {f"window {w}, {o} outcome windows": base.replace(draft_window=w, outcome_windows=o)
            for w in windows for o in outcomes}


def race(ck, ar, cfgs: dict, prompts: list[str], repeats: int) -> list[dict]:
    totals: dict[str, dict] = {}
    temperature = next(iter(cfgs.values())).temperature
    for prompt in prompts:
        same = defaults_for(ar.model_config).replace(gen_len=200, temperature=temperature)   # sampled alike
        runs = {"autoregressive": lambda p=prompt: denoise(ar.model, ar.tokenizer, p, same)}
        runs.update({name: (lambda c=c, p=prompt: denoise(ck.model, ck.tokenizer, p, c)) for name, c in cfgs.items()})
        for name, r in round_robin(runs, repeats).items():
            t = totals.setdefault(name, {"setting": name, "nfe": 0, "positions": 0, "characters": 0, "seconds": 0.0})
            for key in ("nfe", "positions", "characters", "seconds"):
                t[key] += r[key]
    ar_seconds = totals["autoregressive"]["seconds"]
    return [{**t, "chars_per_nfe": t["characters"] / t["nfe"], "positions_per_nfe": t["positions"] / t["nfe"],
             "vs_autoregressive": t["seconds"] / ar_seconds} for t in totals.values()]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--windows", type=int, nargs="+", default=[3, 4, 5, 16])
    p.add_argument("--outcomes", type=int, nargs="+", default=[0, 16])
    p.add_argument("--n", type=int, default=4, help="openings (prompts)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ck, ar = load_checkpoint(args.checkpoint), load_checkpoint(AR_CHECKPOINT)
    base = defaults_for(ck.model_config).replace(gen_len=200, mode="verify", polish=0, block_len=None)
    prompts = [OPENINGS[i % len(OPENINGS)] + " " for i in range(args.n)]
    rows = race(ck, ar, settings(base, args.windows, args.outcomes), prompts, args.repeats)
    print(f"T={base.temperature}, top-p {base.top_p}, {args.n} openings, {args.threads} thread(s)\n")
    print("| setting | evaluations | characters / evaluation | positions / evaluation | vs autoregressive |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['setting']} | {r['nfe']} | {r['chars_per_nfe']:.2f} | {r['positions_per_nfe']:.1f} | "
              f"{r['vs_autoregressive']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "threads": args.threads, "n": args.n, "repeats": args.repeats,
                       "temperature": base.temperature, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
