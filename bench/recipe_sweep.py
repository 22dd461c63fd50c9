"""Recipe sweep for the bundled model: short training trials, one after another, on the CPU.

Every trial trains the tiny preset from scratch on --data (data/tinystories_train.txt) and validates
on --val-data (data/tinystories_valid.txt) with the same fixed windows, through the real
`python -m microdllm train`. A finished trial (its metrics.jsonl reaches max_iters) is not run again,
so the sweep can be stopped and restarted. Results go to runs/sweep/results.json and print as a
Markdown table. Run from the repository root:

    python -m bench.recipe_sweep --threads 1                 # all recipe trials
    python -m bench.recipe_sweep --group block --root runs/blocks   # block sizes, from the AR baseline
    python -m bench.recipe_sweep --only muon-600 adamw3e-4-600 --data ../shared/data/tinystories_train.txt \
        --val-data ../shared/data/tinystories_valid.txt
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from microdllm.checkpoint import STATE_JSON
from microdllm.data import CORPUS_TRAIN, CORPUS_VALID
from microdllm.train import LOG_NAME

BASE = ["--preset", "tiny", "--optimizer", "muon", "--muon-lr", "0.02", "--lr", "2e-3",
        "--loss", "masked_ce", "--schedule", "cosine", "--batch-size", "32"]

# name -> (overrides of BASE, steps). Same characters seen within a group.
TRIALS = {
    # Muon vs AdamW over the baseline budget (600 steps x 32 x 256 = 4.9 M characters).
    "muon-600": ([], 600),
    "adamw3e-4-600": (["--optimizer", "adamw", "--lr", "3e-4"], 600),     # the original recipe
    "adamw2e-3-600": (["--optimizer", "adamw", "--lr", "2e-3"], 600),
    # One change at a time against muon-200 (1.6 M characters).
    "muon-200": ([], 200),
    "elbo-200": (["--loss", "elbo"], 200),
    "linear-200": (["--schedule", "linear"], 200),
    "muonlr0.04-200": (["--muon-lr", "0.04", "--lr", "4e-3"], 200),
    "batch64-100": (["--batch-size", "64", "--warmup-iters", "50"], 100),
    "2L-200": (["--n-layer", "2"], 200),
    # Follow-ups: 2 layers for the wall time of 4 layers' 200 steps; the 2x learning rate over 600 steps.
    "2L-400": (["--n-layer", "2"], 400),
    "muonlr0.04-600": (["--muon-lr", "0.04", "--lr", "4e-3"], 600),
}


# Block diffusion (issue: stories that make sense): the block size B, started from the autoregressive
# baseline's weights with its next-character alignment, BD3-LM's clipped masking rates; one run from noise.
BLOCK_BASE = ["--init-from", "checkpoints/tinystories-tiny-ar", "--shift", "--no-time-embedding", "--schedule", "linear",
              "--mask-range", "0.3", "0.8", "--optimizer", "muon", "--lr", "1e-3", "--muon-lr", "0.01",
              "--batch-size", "16", "--warmup-iters", "50", "--eval-timesteps", "4"]
BLOCK_TRIALS = {
    "B8-150": (["--attn-block", "8"], 150),
    "B16-150": (["--attn-block", "16"], 150),
    "B2-150": (["--attn-block", "2"], 150),
    "B256-150": (["--attn-block", "256"], 150),                     # one block: full-sequence diffusion
    "B4-noise-150": (["--attn-block", "4", "--no-init"], 150),      # the same recipe from random weights
    "B4-150": (["--attn-block", "4"], 150),
    "B2+4-150": (["--attn-block", "2", "--block-sizes", "2", "4"], 150),   # one model over two block sizes
}
GROUPS = {"recipe": (BASE, TRIALS), "block": (BLOCK_BASE, BLOCK_TRIALS)}


def metrics(out: Path) -> list[dict]:
    path = out / LOG_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def trial_args(base: list[str], overrides: list[str]) -> list[str]:
    """The base recipe with the trial's changes; `--no-init` drops the base's --init-from (from noise)."""
    if "--no-init" not in overrides:
        return [*base, *overrides]
    i = base.index("--init-from")
    return [*base[:i], *base[i + 2:], "--preset", "tiny", *[o for o in overrides if o != "--no-init"]]


def run_trial(name: str, overrides: list[str], steps: int, root: Path, threads: int, data: str, val: str,
              base: list[str] = BASE) -> dict:
    out = root / name
    rows = metrics(out)
    if not rows or rows[-1]["step"] < steps:
        if (out / STATE_JSON).exists():   # interrupted: continue exactly where it stopped
            cmd = [sys.executable, "-m", "microdllm", "train", "--resume", str(out), "--threads", str(threads),
                   "--no-progress"]
        else:
            cmd = [sys.executable, "-m", "microdllm", "train", "--data", data, "--val-data", val,
                   *trial_args(base, overrides), "--max-iters", str(steps), "--eval-interval", str(max(steps // 6, 25)),
                   "--save-interval", str(max(steps // 6, 25)), "--threads", str(threads), "--out", str(out),
                   "--no-progress"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
        rows = metrics(out)
    last = rows[-1]
    return {"name": name, "overrides": " ".join(overrides) or "(reference)", "steps": last["step"],
            "characters": last["tokens"], "seconds": round(last["seconds"]),
            "val_nelbo_bpc": round(last["val"]["nelbo_bpc"], 4),
            "val_masked_loss": round(last["val"]["masked_loss"], 4)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--group", choices=list(GROUPS), default="recipe", help="the recipe trials or the block sizes")
    p.add_argument("--only", nargs="*", help="trial names (default: all of the group)")
    p.add_argument("--root", default="runs/sweep")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", default=CORPUS_TRAIN, help=f"training text ({CORPUS_TRAIN})")
    p.add_argument("--val-data", default=CORPUS_VALID, help=f"validation text ({CORPUS_VALID})")
    p.add_argument("--summary", action="store_true", help="print the table of finished trials, run nothing")
    args = p.parse_args()
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    results_path = root / "results.json"

    def load() -> dict:
        return json.loads(results_path.read_text()) if results_path.exists() else {}

    base, trials = GROUPS[args.group]
    for name in [] if args.summary else args.only or trials:
        overrides, steps = trials[name]
        result = run_trial(name, overrides, steps, root, args.threads, args.data, args.val_data, base)
        results = load()            # several sweeps may share the root: merge, do not overwrite
        results[name] = result
        results_path.write_text(json.dumps(results, indent=2))
    results = load()
    print("| trial | change | steps | characters | wall (s) | val NELBO bits/char | val masked loss |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results.values():
        print(f"| {r['name']} | {r['overrides']} | {r['steps']} | {r['characters'] / 1e6:.1f} M | "
              f"{r['seconds']} | {r['val_nelbo_bpc']:.3f} | {r['val_masked_loss']:.3f} |")


if __name__ == "__main__":
    main()
