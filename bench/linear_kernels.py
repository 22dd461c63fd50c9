"""The Linear layers of one evaluation, by kernel and number of rows (packed.py, docs/performance.md).

Run from the repository root:

    python -m bench.linear_kernels [--checkpoint checkpoints/tinystories-tiny-block16] [--threads 1 2]
        [--rows 1 2 3 4 8 16 24 32 64 256] [--repeats 7] [--json out.json]

For each row count: every Linear layer of the checkpoint's network applied once to that many rows (an
evaluation's matrix multiplies: 1 row is a left-to-right step, ~16 a round of draft and verify), with
`nn.Linear` on the float weight (PyTorch's own choice: MKL's sgemm), with oneDNN on the packed weight, and
with `PackedLinear` as served (whichever of the two its rows pick). Interleaved in one process, medians of
`repeats` rounds of 50 calls (the kernels' order rotating); ratios are what to read on a shared machine.
(The oneDNN column calls `PackedLinear.onednn` directly, without a module call's few microseconds a layer.)
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from microdllm.checkpoint import load_checkpoint
from microdllm.packed import PackedLinear

CALLS = 50


def layers(checkpoint: str) -> list[torch.nn.Linear]:
    model = load_checkpoint(checkpoint).model
    return [m for m in model.modules() if type(m) is torch.nn.Linear]


def kernels(linears: list[torch.nn.Linear]) -> dict:
    """name -> a function applying every layer to x (each layer's input width taken from x's columns)."""
    packed = [PackedLinear(m) for m in linears]
    return {"nn.Linear (MKL)": lambda x: [m(x[m.in_features]) for m in linears],
            "oneDNN, packed": lambda x: [p.onednn(x[p.in_features]) for p in packed],
            "PackedLinear (served)": lambda x: [p(x[p.in_features]) for p in packed]}


def time_rows(linears, rows: int, repeats: int) -> dict[str, float]:
    """Median milliseconds per pass over every layer, each kernel, interleaved."""
    x = {m.in_features: torch.randn(1, rows, m.in_features) for m in linears}
    runs, times = kernels(linears), {}
    names = list(runs)
    with torch.inference_mode():
        for r in range(repeats + 1):       # each round in another order: which kernel ran before (and left
            for name in names[r % 3:] + names[:r % 3]:                   # its weights in the cache) rotates
                run = runs[name]
                t0 = time.perf_counter()
                for _ in range(CALLS):
                    run(x)
                times.setdefault(name, []).append((time.perf_counter() - t0) / CALLS * 1000)
    return {name: statistics.median(t[1:]) for name, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="checkpoints/tinystories-tiny-block16")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rows", type=int, nargs="+", default=[1, 2, 3, 4, 8, 16, 24, 32, 64, 256])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--json")
    args = p.parse_args()
    linears, results = layers(args.checkpoint), []
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"\n{len(linears)} Linear layers of {args.checkpoint}, {threads} thread(s), ms per evaluation's layers:\n")
        print("| rows | nn.Linear (MKL) | oneDNN, packed | PackedLinear (served) | MKL / oneDNN |")
        print("|---:|---:|---:|---:|---:|")
        for rows in args.rows:
            t = time_rows(linears, rows, args.repeats)
            results.append({"threads": threads, "rows": rows, **t})
            print(f"| {rows} | {t['nn.Linear (MKL)']:.3f} | {t['oneDNN, packed']:.3f} | {t['PackedLinear (served)']:.3f} | "
                  f"{t['nn.Linear (MKL)'] / t['oneDNN, packed']:.2f} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "torch": torch.__version__, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
