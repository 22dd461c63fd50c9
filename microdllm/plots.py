"""Loss curves: validation bits per character (and the training loss) of one run or several.

The one plotter behind a run's loss_curve.png (train.py) and the comparison figures in docs/
(bench/plot_curves.py). matplotlib is imported only when a figure is drawn, with the Agg
backend, so that training never needs a display.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_write
from .evaluate import LN2, headline_metric


@dataclass
class Curve:
    """One run's records (metrics.jsonl rows: step, tokens, train_loss, val) and how to draw them."""
    label: str
    records: list[dict]
    start: float = 0.0      # millions of characters seen before the first record (a run started from
                            # another model's weights is drawn after that model's characters)
    dashed: bool = False


def plot_curves(curves: list[Curve], out, *, per: str = "step", train_loss: bool = False,
                title: str | None = None, figsize=(7, 4), dpi: int = 110, markersize: float | None = None) -> Path:
    """Draw each curve's validation bits/char against `per` ("step" or "characters", in millions) and
    write the figure atomically to `out` (its format from the suffix, else PNG).

    `train_loss` also draws each run's training loss, converted from nats to bits, before its
    validation curve. Each curve shows its headline metric: exact bits/char for an
    autoregressive run, the NELBO upper bound for a diffusion run.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    for curve in curves:
        rows = curve.records
        xs = [r["step"] for r in rows] if per == "step" else [curve.start + r["tokens"] / 1e6 for r in rows]
        if train_loss:
            ax.plot(xs, [r["train_loss"] / LN2 for r in rows], label="train loss (bits)", alpha=0.6)
        key, _ = headline_metric(rows[-1]["val"])
        ax.plot(xs, [r["val"][key] for r in rows], "--" if curve.dashed else "-", marker="o", ms=markersize,
                label=curve.label)
    ax.set_xlabel("step" if per == "step" else "characters seen (millions)")
    ax.set_ylabel("bits per character" if train_loss else "validation bits per character")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 6:     # many curves: the legend below the axes, where it hides none of them
        fig.set_size_inches(figsize[0], figsize[1] + 0.25 * len(curves))
        ax.legend(fontsize="small", ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    else:
        ax.legend(fontsize="small", ncol=2 if len(curves) > 4 else 1, framealpha=0.85)
    fig.tight_layout()
    fmt = Path(out).suffix.lstrip(".") or "png"
    try:
        return atomic_write(out, lambda p: fig.savefig(p, dpi=dpi, format=fmt))
    finally:
        plt.close(fig)
