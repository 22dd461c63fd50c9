"""Validation bits per character against characters seen, for several runs (their metrics.jsonl).

    python bench/plot_curves.py --out docs/diffusion_vs_ar.png \
        "diffusion (NELBO, upper bound)=checkpoints/tinystories-tiny" "autoregressive (exact)=checkpoints/tinystories-tiny-ar"

A run that started from another model's weights can be drawn after that model's characters:
LABEL=RUN@16.4 starts its curve at 16.4 million characters.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(run: str) -> list[dict]:
    """The records of a run directory's metrics.jsonl, or of a metrics .jsonl file itself."""
    path = Path(run) if Path(run).is_file() else Path(run) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+", help="LABEL=RUN_DIR (or LABEL=metrics.jsonl), optionally @START_MILLIONS")
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="Validation bits per character, same data, same budget")
    p.add_argument("--dashed", default=None, help="draw the runs whose label contains this text dashed")
    args = p.parse_args()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for spec in args.runs:
        label, run_dir = spec.split("=", 1)
        run_dir, _, start = run_dir.partition("@")
        start = float(start or 0)
        rows = load(run_dir)
        key = "bpc" if "bpc" in rows[-1]["val"] else "nelbo_bpc"
        style = "--" if args.dashed and args.dashed in label else "-"
        ax.plot([start + r["tokens"] / 1e6 for r in rows], [r["val"][key] for r in rows], style, marker="o", ms=3,
                label=label)
    ax.set_xlabel("characters seen (millions)")
    ax.set_ylabel("validation bits per character")
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
