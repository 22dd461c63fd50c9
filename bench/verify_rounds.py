"""Draft and verify: characters per model evaluation, per window and merged or not, on one checkpoint.

Run from the repository root (a clean-causal block checkpoint; greedy and sampled at its defaults):

    python -m bench.verify_rounds --checkpoint runs/block16 --windows 4 8 16 --n 8 [--json out.json]

For each setting, over n continuations of the sample-eval openings (200 characters each): model
evaluations, characters per evaluation, the mean number of drafted characters a check keeps and
the share of drafts kept whole, positions evaluated per evaluation, and the sampler's own seconds.
All rows come from the one `denoise` stream (`DenoiseState.accepted`, `nfe`, `positions_evaluated`).
"""
from __future__ import annotations

import argparse
import json
import statistics

from microdllm.checkpoint import load_checkpoint
from microdllm.quality import OPENINGS
from microdllm.sampling import defaults_for, generate


def measure(ck, cfg, n: int) -> dict:
    runs = [generate(ck.model, ck.tokenizer, OPENINGS[i % len(OPENINGS)] + " ", cfg.replace(seed=i), ngram=ck.ngram)
            for i in range(n)]
    checks = [a for s in runs for a in s.accepted]
    written = cfg.gen_len * n
    nfe = sum(s.nfe for s in runs)
    return {"nfe": nfe / n, "chars_per_nfe": written / nfe,
            "kept_per_check": statistics.mean(k for k, _ in checks) if checks else 0.0,
            "drafted_per_check": statistics.mean(d for _, d in checks) if checks else 0.0,
            "whole_drafts_kept": sum(k == d for k, d in checks) / len(checks) if checks else 0.0,
            "positions_per_nfe": sum(s.positions_evaluated for s in runs) / nfe,
            "seconds": statistics.median(s.elapsed for s in runs)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--windows", type=int, nargs="+", default=[8, 16])
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--json")
    args = p.parse_args(argv)
    ck = load_checkpoint(args.checkpoint)
    base = defaults_for(ck.model_config).replace(gen_len=200, mode="verify", polish=0)
    rows = []
    for temperature in (0.0, base.temperature):
        for window in args.windows:
            for merge in (True, False):
                cfg = base.replace(block_len=window, merge=merge, temperature=temperature)
                rows.append({"window": window, "merge": merge, "temperature": temperature, **measure(ck, cfg, args.n)})
                r = rows[-1]
                print(f"| {window} | {'merged' if merge else 'unmerged'} | {temperature} | {r['nfe']:.1f} | "
                      f"{r['chars_per_nfe']:.2f} | {r['kept_per_check']:.2f} / {r['drafted_per_check']:.1f} | "
                      f"{r['whole_drafts_kept']:.2f} | {r['positions_per_nfe']:.1f} | {r['seconds']:.3f} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "n": args.n, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
