"""Soak: many generations with mixed settings against one real `python app.py`; is memory flat?

A real server (tests.conftest.AppServer, as the tests start it), three gradio_client sessions
(the default model, the full-sequence diffusion model, the autoregressive baseline, each chosen
with /load_model), and two phases:

1. `--n` generations cycling through every remasking strategy, step counts, lengths,
   temperatures, top-k / top-p, thresholds, reveal schedules, polish passes, infilling and bad
   prompts (refused or cleaned, never a crash);
2. `--exports` more generations, each followed by /export (the GIF + MP4 of its trace).

After each call the server's resident memory (the process and its children, /proc VmRSS) is
sampled. Reported for phase 1: the memory after warm-up (the first `--warmup` calls load
models, code paths and Gradio caches) and its growth over the rest, as a least-squares slope in
MB per 100 generations and as the last-10 mean minus the first-10 mean; for phase 2: the step
the exporter's working set adds and whether it keeps growing.

    python -m bench.soak [--n 300] [--exports 20] [--json docs/soak.json] [--png docs/soak.png]   # repo root

A benchmark, never a test assertion.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before anything imports gradio

from gradio_client import Client  # noqa: E402

from bench.app_under_load import rss_bytes  # noqa: E402
from microdllm.atomic import atomic_write  # noqa: E402
from microdllm.sampling import REMASKING_CHOICES  # noqa: E402
from tests.conftest import AppServer  # noqa: E402  (the same server launcher the tests use)

ROOT = Path(__file__).resolve().parent.parent
MODELS = {"default": "", "full": "checkpoints/tinystories-tiny", "ar": "checkpoints/tinystories-tiny-ar"}
PROMPTS = ["Once upon a time, there was a little girl named Lily.", "One day, a boy named Tom went to the park.",
           "Sara and Ben were playing in the garden.", "Tim had a new toy car.", "", "The little bunny was hungry."]
TEMPLATES = ["Once upon a time, there was a ___ named ___. She liked to ___ in the park.",
             "Lily had a big red ____. Every day she ________ with it."]
BAD_PROMPTS = ["x" * 100_000, "snow\u2603man \x00\x1b[31m", "no blanks here"]   # refused or cleaned, never a crash


def settings(i: int, rng: random.Random) -> tuple[str, dict]:
    """The i-th call's model and /generate arguments: every strategy in turn, the rest drawn."""
    model = ("default", "full", "ar")[i % 3]
    kw = dict(prompt=PROMPTS[i % len(PROMPTS)], mode="continue", gen_len=rng.randint(40, 120),
              steps=rng.choice([4, 8, 12, 16, 24, 32]), temperature=rng.choice([0.0, 0.3, 0.7, 1.0, 1.2]),
              remasking=REMASKING_CHOICES[(i // 3) % len(REMASKING_CHOICES)],
              remask_ratio=rng.choice([0.0, 0.25, 1.0]), top_k=rng.choice([0, 5, 20]),
              top_p=rng.choice([1.0, 0.9]), threshold=rng.choice([1.0, 0.8, 0.6]),
              reveal_schedule=rng.choice(["linear", "cosine", "loglinear", "model"]), seed=rng.randint(0, 10_000),
              polish=rng.choice([0, 2, 6]), delay_ms=0)
    if model == "full" and i % 4 == 1:
        kw.update(mode="infill", prompt=TEMPLATES[i % len(TEMPLATES)])
    if i % 17 == 5:
        kw.update(prompt=BAD_PROMPTS[(i // 17) % len(BAD_PROMPTS)], mode="infill" if i % 2 else "continue")
    return model, kw


def run(n: int, exports: int, warmup: int, seed: int) -> dict:
    log_path = Path(tempfile.mkdtemp(prefix="microdllm-soak-")) / "app.log"
    server = AppServer(log_path)
    rng = random.Random(seed)
    try:
        boot = server.wait()
        clients = {}
        for name, source in MODELS.items():
            clients[name] = Client(server.url, verbose=False)
            if source:
                clients[name].predict(source, api_name="/load_model")
        rss0 = rss_bytes(server.proc.pid)
        calls, t_start = [], time.monotonic()
        for i in range(n + exports):
            model, kw = settings(i, rng)
            phase = 1 if i < n else 2
            if phase == 2:   # a story to export
                kw.update(mode="continue", prompt=PROMPTS[i % 4])
            t0 = time.monotonic()
            *_, status, final = clients[model].predict(**kw, api_name="/generate")
            call = {"i": i, "phase": phase, "model": model,
                    "outcome": "done" if str(status).startswith("**Done.**") else
                               "refused" if str(status).startswith("⚠️") else "other",
                    "settings": {k: (v if not isinstance(v, str) or len(v) < 80 else f"<{len(v)} characters>")
                                 for k, v in kw.items()}}
            if phase == 2:
                clients[model].predict(api_name="/export")
            call["seconds"] = round(time.monotonic() - t0, 3)
            call["rss_mb"] = round(rss_bytes(server.proc.pid) / 2**20, 1)
            calls.append(call)
            print(f"[{i + 1}/{n + exports}] {'export ' if phase == 2 else ''}{model:<7} {kw['remasking']:<14} "
                  f"len {kw['gen_len']:>3} steps {kw['steps']:>2} {call['outcome']:<7} {call['seconds']:6.2f} s  "
                  f"rss {call['rss_mb']:7.1f} MB", flush=True)
        tracebacks = log_path.read_text(errors="replace").count("Traceback")
        return summarize(calls, warmup, boot=boot, rss_idle_mb=rss0 / 2**20, seconds=time.monotonic() - t_start,
                         tracebacks=tracebacks)
    finally:
        server.stop()


def growth(rss: list[float], start: int) -> dict:
    """Memory over calls[start:]: its least-squares slope per 100 calls and last-10 minus first-10 mean."""
    steady = rss[start:]
    slope = statistics.linear_regression(range(len(steady)), steady).slope if len(steady) > 1 else 0.0
    return {"slope_mb_per_100": round(slope * 100, 2),
            "growth_first10_to_last10_mb": round(statistics.mean(steady[-10:]) - statistics.mean(steady[:10]), 1),
            "min_mb": min(steady), "max_mb": max(steady), "first_mb": steady[0], "last_mb": steady[-1]}


def summarize(calls: list[dict], warmup: int, **extra) -> dict:
    gens = [c for c in calls if c["phase"] == 1]
    exps = [c for c in calls if c["phase"] == 2]
    outcomes = {k: sum(c["outcome"] == k for c in gens) for k in ("done", "refused", "other")}
    result = {"generations": len(gens), "outcomes": outcomes, "warmup": warmup,
              "rss_after_load_mb": round(extra.pop("rss_idle_mb"), 1),
              "generate": {**growth([c["rss_mb"] for c in gens], warmup),
                           "median_seconds": round(statistics.median(c["seconds"] for c in gens), 3)}}
    if exps:   # the exporter's frames come and go in steps: its peak and where it settles, not a slope
        rss = [c["rss_mb"] for c in exps]
        result["export"] = {"calls": len(exps), "peak_mb": max(rss), "median_mb": statistics.median(rss),
                            "min_mb": min(rss), "last_mb": rss[-1],
                            "median_seconds": round(statistics.median(c["seconds"] for c in exps), 3)}
    return {**result, "wall_seconds": round(extra.pop("seconds"), 1), "boot_seconds": round(extra.pop("boot"), 1),
            "cpus": os.cpu_count(), **extra, "calls": calls}


def plot(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calls = result["calls"]
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=120)
    colors = {"default": "#0072B2", "full": "#E69F00", "ar": "#009E73"}
    ax.plot([c["i"] + 1 for c in calls], [c["rss_mb"] for c in calls], color="#555555", lw=1, zorder=1)
    for name, color in colors.items():
        mine = [c for c in calls if c["model"] == name]
        ax.scatter([c["i"] + 1 for c in mine], [c["rss_mb"] for c in mine], s=10, color=color, zorder=2,
                   label={"default": "block diffusion (default)", "full": "full-sequence diffusion",
                          "ar": "autoregressive"}[name])
    ax.axvline(result["warmup"] + 0.5, color="#999999", ls=":", lw=1)
    if "export" in result:
        ax.axvspan(result["generations"] + 0.5, len(calls) + 0.5, color="#CC79A7", alpha=0.12, lw=0,
                   label="each followed by a GIF + MP4 export")
    ax.set_xlabel("call (generation, or generation + export)")
    ax.set_ylabel("server resident memory (MB)")
    g = result["generate"]
    ax.set_title(f"{result['generations']} generations, mixed settings: {g['slope_mb_per_100']:+.1f} MB per 100 "
                 f"after warm-up", fontsize=10)
    lo, hi = min(c["rss_mb"] for c in calls), max(c["rss_mb"] for c in calls)
    ax.set_ylim(lo - max(20, 0.1 * lo), hi + max(20, 0.1 * lo))
    ax.text(result["warmup"] + 2, ax.get_ylim()[1], "warm-up ends", fontsize=7, va="top", color="#777777")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.18, 0.98))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp))
    finally:
        plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=300, help="generations (at least 100 for the figures in docs/)")
    p.add_argument("--exports", type=int, default=20, help="then this many generations, each exported")
    p.add_argument("--warmup", type=int, default=30, help="first calls left out of the growth figures")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--from-json", metavar="FILE", help="no run: summarise and plot the calls saved in FILE")
    p.add_argument("--json", default=str(ROOT / "docs" / "soak.json"))
    p.add_argument("--png", default=str(ROOT / "docs" / "soak.png"))
    args = p.parse_args(argv)
    if args.from_json:   # summarise and draw a saved run again
        saved = json.loads(Path(args.from_json).read_text())
        extra = {k: saved[k] for k in ("wall_seconds", "boot_seconds", "cpus", "tracebacks")}
        result = summarize(saved["calls"], args.warmup, rss_idle_mb=saved["rss_after_load_mb"],
                           seconds=extra.pop("wall_seconds"), boot=extra.pop("boot_seconds"), tracebacks=extra["tracebacks"])
    else:
        result = run(args.n, args.exports, args.warmup, args.seed)
    if args.json:
        atomic_write(args.json, json.dumps(result, indent=1) + "\n")
    if args.png:
        plot(result, Path(args.png))
    print(json.dumps({k: v for k, v in result.items() if k != "calls"}, indent=1))


if __name__ == "__main__":
    main()
