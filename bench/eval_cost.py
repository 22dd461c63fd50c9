"""Where one model evaluation's time goes, and what the in-place KV cache saves (docs/performance.md).

Run from the repository root:

    python -m bench.eval_cost [--checkpoint checkpoints/tinystories-tiny-ar] [--threads 1] [--repeats 5]

Times, interleaved in one process (medians of `repeats` rounds, ratios are what to read on a shared
machine): a left-to-right step (one position against a cache of ~150) with the in-place cache and
with a cache copied whole every step (the one before stop 10); a window of 16 positions against the
cache; and one profiled step's top operators.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from microdllm.checkpoint import load_checkpoint
from microdllm.model import KVCache


class CopyingCache(KVCache):
    """The cache as it was: every evaluation concatenates the whole cache with the new keys and values."""

    def layer(self, i, k, v, keep):
        if self.keys[i] is not None:
            k, v = torch.cat([self.keys[i][:, :, :self.length], k], 2), torch.cat([self.values[i][:, :, :self.length], v], 2)
        if keep:
            self.keys[i], self.values[i] = k[:, :, :self.length + keep], v[:, :, :self.length + keep]
        return k, v


def steps(model, cache_type, x, start: int = 100, n: int = 100, width: int = 1) -> float:
    """Seconds per evaluation of `width` positions, as the text grows from `start` by one a step."""
    cache = cache_type(model.config.n_layer)
    model.extend(x, start, cache, keep=start)
    t0 = time.perf_counter()
    for e in range(start, start + n):
        model.extend(x, e + width, cache, keep=1)
    return (time.perf_counter() - t0) / n


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="checkpoints/tinystories-tiny-ar")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_checkpoint(args.checkpoint).model.eval()
    x = torch.randint(1, model.config.vocab_size - 1, (1, model.config.block_size))
    runs = {"one position, in-place cache": lambda: steps(model, KVCache, x),
            "one position, cache copied every step": lambda: steps(model, CopyingCache, x),
            "16 positions, in-place cache": lambda: steps(model, KVCache, x, n=50, width=16)}
    times = {name: [] for name in runs}
    with torch.inference_mode():
        for round_ in range(args.repeats + 1):
            for name, run in runs.items():
                t = run()
                if round_:
                    times[name].append(t)
        print("| evaluation | ms (median) |\n|---|---:|")
        for name, ts in times.items():
            print(f"| {name} | {1000 * statistics.median(ts):.3f} |")
        from torch.profiler import profile
        with profile() as prof:
            steps(model, KVCache, x, n=50)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


if __name__ == "__main__":
    main()
