"""`python -m microdllm bench`: how fast, as ratios measured in one run on this machine.

For the bundled model and the `micro` preset: wall time and model evaluations (NFE) to write
256 characters with each remasking strategy, characters per second and time to the first
streamed state; training tokens per second; the machine's float32 matrix-multiply rate, and
each figure as a share of it (model FLOP utilisation). Medians of several runs after a warm-up.

FLOPs counted: 2 N per token per forward pass (N = parameters in matrix multiplies: the blocks
and the LM head), 6 N per training token, plus attention (4 L d per token per layer forward,
three times that in training).
"""
from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

import torch

from .checkpoint import BUNDLED_AR_DIR, BUNDLED_MODELS, load_checkpoint
from .config import get_preset
from .devices import pick_device
from .diffusion import corrupt, get_schedule, masked_ce_loss, sample_timesteps
from .int8 import quantize_int8
from .model import Transformer
from .quality import OPENINGS
from .sampling import DEFAULT, SAMPLER_PRESETS, defaults_for, denoise
from .serving import compile_model, serve_checkpoint

# Each remasking strategy at 64 steps on the training schedule without early reveals; PLAIN (random order)
# was the default before issue #6 and is the quality reference for the faster default.
PLAIN = DEFAULT.replace(remasking="random", steps=64, threshold=None, reveal_schedule=None, polish=0)
SAMPLER_RUNS = {
    f"default ({DEFAULT.remasking}, {DEFAULT.reveal_schedule} reveals, threshold {DEFAULT.threshold}, "
    f"{DEFAULT.steps} steps, {DEFAULT.polish} polish passes)": DEFAULT,
    "random r=0, 64 steps (the default before #6)": PLAIN,
    "spread r=0, 64 steps": PLAIN.replace(remasking="spread"),
    "low_confidence r=0, 64 steps": PLAIN.replace(remasking="low_confidence"),
    "margin r=0, 64 steps": PLAIN.replace(remasking="margin"),
    "entropy r=0, 64 steps": PLAIN.replace(remasking="entropy"),
    "none (ancestral), T=1, 64 steps": PLAIN.replace(remasking="none", temperature=1.0),
    "threshold 0.9 (low_confidence order), 64 steps": PLAIN.replace(remasking="low_confidence", threshold=0.9),
    "classic (original, 100 steps + t=0)": SAMPLER_PRESETS["classic"],
}


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / median_time(lambda: torch.mm(a, b), repeats) / 1e9


def paired_time(fn, repeats: int, warmup: int = 1, n: int = 2048, warmup_s: float = 1.0) -> tuple[float, float]:
    """Median seconds of fn, and the median float32 GEMM rate (GFLOP/s) timed just before each of
    its runs: a share of the GEMM rate computed from these two was measured under the same load,
    however the shared machine's speed drifts during the benchmark.

    The warm-up runs fn at least `warmup` times and for at least `warmup_s` seconds: a fresh
    process's first second of small forwards runs up to 25% slower (allocator and caches settling)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    start, done = time.perf_counter(), 0
    while done < warmup or time.perf_counter() - start < warmup_s:
        fn()
        done += 1
    times, rates = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        t1 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t1)
        rates.append(2 * n**3 / (t1 - t0) / 1e9)
    return statistics.median(times), statistics.median(rates)


def matmul_params(model) -> int:
    """Weights in matrix multiplies (the blocks' 12 d^2 a layer, and the head), from the config, so an
    int8 copy (whose packed weights are no parameters) counts the same."""
    c = model.config
    return 12 * c.n_layer * c.n_embd ** 2 + c.n_embd * c.vocab_size


def forward_flops(model: Transformer, tokens: int) -> float:
    cfg = model.config
    return 2 * matmul_params(model) * tokens + 4 * cfg.n_layer * cfg.n_embd * tokens * tokens


def round_robin(runs: dict, repeats: int) -> dict[str, dict]:
    """runs: name -> a function returning a fresh state stream. Every run once per round (a warm-up
    round, then `repeats` rounds), so a shared machine's drifts in speed hit every run alike and their
    ratios stay fair. Per run: the median seconds, each round's ("rounds"), the median time to the first
    state, and its last state's work."""
    seconds, first, last = {n: [] for n in runs}, {n: [] for n in runs}, {}
    for round_ in range(repeats + 1):
        for name, make in runs.items():
            t0 = time.perf_counter()
            for s in make():
                if s.step == 0:
                    t_first = time.perf_counter() - t0
            if round_:  # round 0 is the warm-up
                seconds[name].append(time.perf_counter() - t0)
                first[name].append(t_first)
            last[name] = s
    return {n: {"nfe": last[n].nfe, "positions": last[n].positions_evaluated, "characters": last[n].generated,
                "seconds": statistics.median(seconds[n]), "rounds": seconds[n],
                "first_state_ms": 1000 * statistics.median(first[n]),
                "text": last[n].text} for n in runs}


def bench_sampling(model, tokenizer, schedule, repeats: int) -> list[dict]:
    """Each sampler writes 256 characters from an empty prompt (round_robin); each row its median."""
    L = model.config.block_size
    runs = {name: (lambda cfg=cfg: denoise(model, tokenizer, "", cfg.replace(gen_len=L), schedule=schedule))
            for name, cfg in SAMPLER_RUNS.items()}
    return [{"sampler": name, "nfe": r["nfe"], "seconds": r["seconds"], "chars_per_s": L / r["seconds"],
             "first_state_ms": r["first_state_ms"]} for name, r in round_robin(runs, repeats).items()]


RACE_PROMPT = OPENINGS[0]   # "Once upon a time, there was a little girl named Lily."


def race_prompt(seed: int) -> str:
    """The prompt the race's run with this seed writes after: sample-eval's openings in turn (the first,
    RACE_PROMPT), so a race of several seeds samples prompts as well as draws."""
    return OPENINGS[seed % len(OPENINGS)]


RACE_TREE = 8   # the race's tree of drafts, with a window for every way its check can end (experiments.md 6m)


def race_variants(config, cfg) -> dict[str, object]:
    """Every way the network of `config` writes, at its defaults `cfg`: a block model by denoising (and
    without its look-ahead, to show what that saves), and, when its clean half is causal, by drafting
    and checking (merged, unmerged, and a tree of RACE_TREE drafts: the most characters an evaluation,
    at the most positions) and with that half alone, left to right."""
    if config.kind != "block diffusion":
        return {"": cfg}
    if not getattr(config, "clean_causal", False):
        return {"": cfg, " (no lookahead)": cfg.replace(lookahead=False)}
    verify = cfg.replace(mode="verify")
    return {" block diffusion": cfg.replace(mode="denoise"), " draft and verify": verify,
            " draft and verify, unmerged": verify.replace(merge=False),
            f" draft and verify, tree of {RACE_TREE}": verify.replace(draft_tree=RACE_TREE, outcome_windows=RACE_TREE),
            " left to right": cfg.replace(mode="left-to-right")}


RACE_SEEDS = 8   # the race's runs each write with this many seeds: one draw of one prompt moves draft and
                 # verify's ratio by 0.1 (16 seeds: 0.92x; 4 seeds: 0.83-0.95x; docs/experiments.md 6l)


def bench_race(repeats: int, characters: int = 200, checkpoint: str | None = None, compile: bool = False,
               int8: bool = False, seeds: int = RACE_SEEDS, device: str = "cpu", pack: bool = True) -> list[dict]:
    """The same prompts, `characters` after each, in one round-robin: each model at its default settings,
    in every way it writes (`race_variants`): by default the bundled models, else `checkpoint` against
    the bundled autoregressive baseline (KV-cached). Characters per model evaluation, and wall time as a
    ratio to the autoregressive model's. compile: every model through torch.compile (serving's). int8:
    every model also with int8 Linear weights (serving's), the autoregressive one too; the ratios are
    then to the faster of its two. seeds: each run writes with seeds 0 .. seeds - 1, seed i after
    `race_prompt(i)` (a sampled draft is kept longer on some draws and prompts than on others), its row
    the sums over them. device: where every model runs (int8 runs on the CPU only); each step's results
    come back to the CPU, so the wall times include the device's work. pack: float models as served, their
    Linear weights also packed for oneDNN (packed.py); False: as loaded."""
    device = race_device(device, int8)
    sources = BUNDLED_MODELS if checkpoint is None else (checkpoint, BUNDLED_AR_DIR)
    runs, kinds = {}, {}
    for source in sources:
        loaded = load_checkpoint(source, device=device)
        for quantized in (False, True) if int8 else (False,):
            ck = serve_checkpoint(loaded, int8=quantized, compile=compile, pack=pack)
            cfg = defaults_for(ck.model_config).replace(gen_len=characters)
            for suffix, c in race_variants(ck.model_config, cfg).items():
                name = Path(str(source)).name + suffix + (", int8" if quantized else "")
                kinds[name] = ck.model_config.kind
                for seed in range(seeds):
                    runs[name, seed] = lambda ck=ck, c=c.replace(seed=c.seed + seed): denoise(
                        ck.model, ck.tokenizer, race_prompt(seed), c, schedule=ck.schedule, ngram=ck.ngram)
    rows = _summed_over_seeds(round_robin(runs, repeats), kinds)
    ar = min((r for r in rows if r["kind"] == "autoregressive"), key=lambda r: r["seconds"])
    for r in rows:
        r["vs_autoregressive"] = r["seconds"] / ar["seconds"]
        each = [t / t_ar for t, t_ar in zip(r["rounds"], ar["rounds"])]   # a round's runs minutes apart at most
        r["vs_autoregressive_rounds"] = [min(each), max(each)]
        r["chars_per_nfe"] = r["characters"] / max(r["nfe"], 1)
    return rows


def race_device(name: str, int8: bool = False) -> torch.device:
    """The race's device (`devices.pick_device`, refused in one line when it is not here), which must be
    the CPU to run int8 weights."""
    device = pick_device(name)
    if int8 and device.type != "cpu":
        raise ValueError("--int8 races int8 Linear weights, which run on the CPU only: leave out --device or --int8")
    return device


def _summed_over_seeds(results: dict, kinds: dict) -> list[dict]:
    """round_robin's rows, keyed (name, seed), as one row per name: counts and seconds summed (each round's
    too), the first seed's text and time to the first state."""
    rows = {}
    for (name, seed), r in results.items():
        if name not in rows:
            rows[name] = {"model": name, "kind": kinds[name], **r, "rounds": list(r["rounds"]), "seeds": 0}
        else:
            for key in ("nfe", "positions", "characters", "seconds"):
                rows[name][key] += r[key]
            rows[name]["rounds"] = [a + b for a, b in zip(rows[name]["rounds"], r["rounds"])]
        rows[name]["seeds"] += 1
    return list(rows.values())


def bench_forward(model, repeats: int, per_call: int = 3) -> tuple[float, float]:
    """Seconds per forward over one block, and the GEMM rate timed alongside (paired_time)."""
    L = model.config.block_size
    x, t = torch.randint(1, model.config.vocab_size, (1, L)), torch.tensor([50])

    def forwards():
        for _ in range(per_call):
            model(x, t)

    with torch.inference_mode():
        seconds, gemm = paired_time(forwards, repeats)
    return seconds / per_call, gemm


def bench_training(model, batch: int, repeats: int, compile: bool = False) -> tuple[float, float]:
    """Seconds per optimisation step (forward, backward, AdamW) on a (batch, block) of random text,
    and the GEMM rate timed alongside (paired_time)."""
    L, T = model.config.block_size, model.config.timesteps
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    forward = torch.compile(model) if compile else model
    g = torch.Generator().manual_seed(0)
    schedule = get_schedule("cosine")
    x0 = torch.randint(1, model.config.vocab_size, (batch, L), generator=g)

    def step():
        t = sample_timesteps(batch, T, g)
        xt, mask = corrupt(x0, t, T, schedule, 0, g)
        loss = masked_ce_loss(forward(xt, t), x0, mask, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    seconds, gemm = paired_time(step, repeats, warmup=2 if compile else 1)
    model.eval()
    return seconds, gemm


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    return {"platform": platform.platform(), "processor": cpu_name(), "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def run(checkpoint=None, repeats: int = 3, train_batch: int = 16, sampling: bool = True,
        compile: bool = False) -> dict:
    gemm = gemm_gflops()
    ck = load_checkpoint(checkpoint)
    torch.manual_seed(0)
    micro = Transformer(get_preset("micro", vocab_size=ck.tokenizer.vocab_size)).eval()
    result = {"machine": machine(), "gemm_gflops": gemm, "models": {}}
    for name, model in (("bundled", ck.model), ("micro", micro)):
        L = model.config.block_size
        # Each MFU divides by the GEMM rate timed alternately with that measurement (paired_time).
        fwd, fwd_gemm = bench_forward(model, repeats + 2)
        train_s, train_gemm = bench_training(model, train_batch, repeats)
        train_tokens = train_batch * L
        timed_input = torch.randint(0, model.config.vocab_size, (1, L))   # int8's input ranges: those of this input
        fwd_int8, _ = bench_forward(quantize_int8(model, lambda m: m(timed_input)), repeats + 2)
        entry = {"parameters": model.num_params(), "forward_ms": 1000 * fwd,
                 "forward_mfu": forward_flops(model, L) / fwd / 1e9 / fwd_gemm,
                 "int8_forward_ms": 1000 * fwd_int8, "int8_speedup": fwd / fwd_int8,
                 "train_tokens_per_s": train_tokens / train_s,
                 "train_mfu": 3 * forward_flops(model, L) * train_batch / train_s / 1e9 / train_gemm}
        if compile:  # torch.compile (Inductor): the forward, then a training step
            fwd_c, fwd_c_gemm = bench_forward(compile_model(model), repeats + 2)  # as served
            train_c, train_c_gemm = bench_training(model, train_batch, repeats, compile=True)
            entry.update(compiled_forward_ms=1000 * fwd_c,
                         compiled_forward_mfu=forward_flops(model, L) / fwd_c / 1e9 / fwd_c_gemm,
                         compiled_train_tokens_per_s=train_tokens / train_c,
                         compiled_train_mfu=3 * forward_flops(model, L) * train_batch / train_c / 1e9 / train_c_gemm)
        if sampling:
            entry["sampling"] = bench_sampling(model, ck.tokenizer, ck.schedule, repeats)
            classic = entry["sampling"][-1]["seconds"]
            for row in entry["sampling"]:
                row["vs_classic"] = row["seconds"] / classic
        result["models"][name] = entry
    if sampling:
        result["race"] = bench_race(repeats)
    return result


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"Machine: {m['processor']}, {m['platform']}, torch {m['torch']}, {m['threads']} threads."]
    if "models" not in r:                       # the race alone (`bench --race`)
        if "packed" in r:
            lines[0] += f" Float Linear weights {'packed for oneDNN (packed.py)' if r['packed'] else 'as loaded (--no-pack)'}."
        return "\n".join(lines + _race_lines(r["race"])) + "\n"
    lines[0] += (f" float32 GEMM (2048 x 2048): {r['gemm_gflops']:.1f} GFLOP/s. Each MFU below divides by the "
                 "GEMM rate timed alternately with that measurement.")
    lines += ["", "| model | parameters | forward (256 chars) | forward MFU | int8 forward | training tokens/s "
                  "| training MFU |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, e in r["models"].items():
        lines.append(f"| {name} | {e['parameters']:,} | {e['forward_ms']:.1f} ms | {e['forward_mfu']:.2f} | "
                     f"{e['int8_forward_ms']:.1f} ms ({e['int8_speedup']:.2f}x) | "
                     f"{e['train_tokens_per_s']:,.0f} | {e['train_mfu']:.2f} |")
    if any("compiled_forward_ms" in e for e in r["models"].values()):
        lines += ["", "With `torch.compile` (Inductor, after its warm-up):", "",
                  "| model | forward | forward MFU | training tokens/s | training MFU |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {name} | {e['compiled_forward_ms']:.1f} ms | {e['compiled_forward_mfu']:.2f} | "
                  f"{e['compiled_train_tokens_per_s']:,.0f} | {e['compiled_train_mfu']:.2f} |"
                  for name, e in r["models"].items() if "compiled_forward_ms" in e]
    for name, e in r["models"].items():
        if "sampling" not in e:
            continue
        lines += ["", f"Sampling 256 characters with the {name} model:", "",
                  "| sampler | NFE | seconds | characters/s | first state | time vs classic |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {s['sampler']} | {s['nfe']} | {s['seconds']:.2f} | {s['chars_per_s']:.0f} | "
                  f"{s['first_state_ms']:.1f} ms | {s['vs_classic']:.2f} |" for s in e["sampling"]]
    if "race" in r:
        lines += _race_lines(r["race"])
    return "\n".join(lines) + "\n"


def _race_lines(race: list[dict]) -> list[str]:
    seeds = max((x.get("seeds", 1) for x in race), default=1)
    each = f" with each of {seeds} seeds, seed i after sample-eval's opening i (their sums)" if seeds > 1 else ""
    return (["", f"Each model at its default settings, in every way it writes, 200 characters after the same prompt{each}"
                 " (round-robin, medians; each round's ratio to the autoregressive run of that round, lowest-highest):", "",
             "| model | kind | NFE | characters / NFE | positions evaluated | seconds | vs autoregressive "
             "| each round | first state |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
            + [f"| {x['model']} | {x['kind']} | {x['nfe']} | {x['characters'] / max(x['nfe'], 1):.2f} | "
               f"{x['positions']:,} | {x['seconds']:.3f} | {x['vs_autoregressive']:.2f} | {_spread(x)} | "
               f"{x['first_state_ms']:.1f} ms |" for x in race])


def _spread(row: dict) -> str:
    low, high = row.get("vs_autoregressive_rounds") or (row["vs_autoregressive"],) * 2
    return f"{low:.2f}-{high:.2f}"


def save(r: dict, json_path=None, md_path=None) -> str:
    md = markdown(r)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(r, f, indent=2)
    if md_path:
        with open(md_path, "w") as f:
            f.write(md)
    return md
