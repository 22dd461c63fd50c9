"""Validation bits per character against characters seen, for several runs (their metrics.jsonl).

    python -m bench.plot_curves --out docs/diffusion_vs_ar.png \
        "diffusion (NELBO, upper bound)=checkpoints/tinystories-tiny" "autoregressive (exact)=checkpoints/tinystories-tiny-ar"

A run that started from another model's weights can be drawn after that model's characters:
LABEL=RUN@16.4 starts its curve at 16.4 million characters. With --by-block, a run validated at
several block sizes (its records' "by_block") is drawn as one curve per block size, and a clean-causal
run's causal half ("ar_bpc", exact) as one more:

    python -m bench.plot_curves --by-block --out docs/block16_nelbo.png "B=16 conversion=runs/block16"
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from microdllm.plots import Curve, plot_curves
from microdllm.train import LOG_NAME


def load(run: str) -> list[dict]:
    """The records of a run directory's metrics.jsonl, or of a metrics .jsonl file itself."""
    path = Path(run) if Path(run).is_file() else Path(run) / LOG_NAME
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def curve(spec: str, dashed: str | None = None) -> Curve:
    """A curve from LABEL=RUN[@START_MILLIONS]; dashed when its label contains `dashed`."""
    label, run = spec.split("=", 1)
    run, _, start = run.partition("@")
    return Curve(label, load(run), start=float(start or 0), dashed=bool(dashed and dashed in label))


def by_block(c: Curve) -> list[Curve]:
    """One curve per block size the run was validated at, and its causal half's exact bits/char."""
    sizes = sorted({b for r in c.records for b in (r["val"] or {}).get("by_block", {})}, key=int)
    out = [Curve(f"{c.label}: NELBO at B = {b}", [{**r, "val": {"nelbo_bpc": r["val"]["by_block"][b]}}
                                                  for r in c.records if b in r["val"].get("by_block", {})], c.start)
           for b in sizes]
    causal = [{**r, "val": {"bpc": r["val"]["ar_bpc"]}} for r in c.records if "ar_bpc" in (r["val"] or {})]
    if causal:
        out.append(Curve(f"{c.label}: its causal half (exact)", causal, c.start, dashed=True))
    return out or [c]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+", help="LABEL=RUN_DIR (or LABEL=metrics.jsonl), optionally @START_MILLIONS")
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="Validation bits per character, same data, same budget")
    p.add_argument("--dashed", default=None, help="draw the runs whose label contains this text dashed")
    p.add_argument("--by-block", action="store_true", help="a curve per block size a run was validated at")
    args = p.parse_args()
    curves = [curve(spec, args.dashed) for spec in args.runs]
    if args.by_block:
        curves = [c for run in curves for c in by_block(run)]
    plot_curves(curves, args.out, per="characters", title=args.title,
                figsize=(7.5, 4.5), dpi=120, markersize=3)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
