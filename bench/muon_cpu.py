"""torch.optim.Muon's Newton-Schulz on the CPU: bfloat16 (torch's) against float32 (train.py's), one run.

    python -m bench.muon_cpu [--preset tiny] [--threads 2] [--repeats 3]

Times one Muon optimiser step over the preset's hidden matrices with each, interleaved (medians),
and the largest difference between the two updates.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.optim import _muon

from microdllm.config import get_preset
from microdllm.model import Transformer
from microdllm.optim import build_optimizers
from microdllm.train_config import TrainConfig


def step_seconds(model, optimizer) -> float:
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    t0 = time.perf_counter()
    optimizer.step()
    return time.perf_counter() - t0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = Transformer(get_preset(args.preset))
    muon = build_optimizers(model, TrainConfig(optimizer="muon"))[0]      # installs the float32 iteration
    fast, slow = _muon._zeropower_via_newtonschulz, _muon._zeropower_via_newtonschulz.__wrapped__
    times = {"bfloat16 (torch)": [], "float32 (train.py)": []}
    for _ in range(args.repeats):
        for name, fn in zip(times, (slow, fast)):
            _muon._zeropower_via_newtonschulz = fn
            times[name].append(step_seconds(model, muon))
    _muon._zeropower_via_newtonschulz = fast
    g = torch.randn(1024, 256)
    diff = (slow(g, (3.4445, -4.775, 2.0315), 5, 1e-7).float() - fast(g, (3.4445, -4.775, 2.0315), 5, 1e-7)).abs().max()
    for name, ts in times.items():
        print(f"{name}: {statistics.median(ts):.3f} s per Muon step ({args.preset}, {args.threads} threads)")
    print(f"largest difference of one orthogonalised 1024 x 256 update: {float(diff):.4f}")


if __name__ == "__main__":
    main()
