"""Sample quality against model evaluations, one line per sampler family (from compare_samplers.py).

Run from the repository root:

    python -m bench.compare_samplers --checkpoint checkpoints/tinystories-tiny --n 64 \
        --ar-checkpoint checkpoints/tinystories-tiny-ar --only "linear, threshold 0.8" --json samplers.json
    python -m bench.plot_samplers samplers.json --out docs/samplers.png

A family is every setting that differs only in its number of steps (e.g. `spread`, linear reveal
schedule, threshold 0.8); settings alone in their family are drawn as single points.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def family(settings: dict) -> str:
    """A label for everything but the step count."""
    parts = [settings.get("remasking", settings.get("strategy"))]
    if settings["remask_ratio"]:
        parts.append(f"r={settings['remask_ratio']:g}")
    parts.append(f"{settings['reveal_schedule'] or 'training'} schedule")
    parts.append(f"threshold {settings['threshold']}" if settings["threshold"] else "no threshold")
    if settings["temperature"]:
        parts.append(f"T={settings['temperature']:g}")
    if settings.get("polish"):
        parts.append(f"+ {settings['polish']} polish passes")
    return ", ".join(parts)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results", help="JSON written by compare_samplers.py --json")
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="Sample quality against model evaluations (sample-eval, n = 64)")
    args = p.parse_args()
    rows = json.loads(Path(args.results).read_text())
    groups = defaultdict(list)
    for name, r in rows.items():
        groups[family(r["settings"])].append(r)
    metrics = [("word_share", "share of real words (higher is better)"),
               ("gen_bpc", "generative bits/char under the AR model (lower is better)")]
    metrics = [(k, label) for k, label in metrics if all(k in r for r in rows.values())]
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.2 * len(metrics), 4.4), squeeze=False)
    for ax, (key, label) in zip(axes[0], metrics):
        for i, (name, rs) in enumerate(sorted(groups.items())):
            rs = sorted(rs, key=lambda r: r["mean_nfe"])
            ax.plot([r["mean_nfe"] for r in rs], [r[key] for r in rs], marker="o", label=name,
                    color=plt.cm.tab20(i % 20))
            for r in rs:
                ax.annotate(str(r["settings"]["steps"]), (r["mean_nfe"], r[key]), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))
        ax.set_xlabel("model evaluations per 200 characters (labels: steps)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(args.title)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
