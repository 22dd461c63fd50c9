"""The speed benchmark (microdllm/speed.py): its arithmetic and plumbing; `python -m microdllm bench` measures."""
import time

import pytest
import torch
from helpers import tiny_model

from microdllm import speed
from microdllm.config import get_preset
from microdllm.diffusion import get_schedule
from microdllm.model import Transformer


def test_flop_count_of_the_original_network():
    micro = Transformer(get_preset("micro", vocab_size=66))
    assert speed.matmul_params(micro) == 10_706_304 - 66 * 384 - 101 * 384  # all but the embeddings
    assert speed.forward_flops(micro, 256) == 2 * speed.matmul_params(micro) * 256 + 4 * 6 * 384 * 256 * 256


def test_sampling_rows_and_markdown(monkeypatch):
    model, tok = tiny_model()
    monkeypatch.setattr(speed, "SAMPLER_RUNS", {k: v.replace(steps=4) for k, v in list(speed.SAMPLER_RUNS.items())[:2]})
    rows = speed.bench_sampling(model, tok, get_schedule("cosine"), repeats=1)
    assert [r["sampler"] for r in rows] == list(speed.SAMPLER_RUNS)
    assert all(1 <= r["nfe"] <= 4 + speed.SAMPLER_RUNS[r["sampler"]].polish   # 4 steps, then any polish passes
               and r["seconds"] > 0 and r["first_state_ms"] >= 0 for r in rows)
    for r in rows:
        r["vs_classic"] = 1.0
    result = {"machine": {"platform": "p", "processor": "x", "torch": "t", "threads": 1}, "gemm_gflops": 100.0,
              "models": {"test": {"parameters": 1, "forward_ms": 1.0, "forward_mfu": 0.5, "int8_forward_ms": 0.5,
                                  "int8_speedup": 2.0, "train_tokens_per_s": 10.0, "train_mfu": 0.4,
                                  "sampling": rows}}}
    md = speed.markdown(result)
    assert "| test | 1 | 1.0 ms | 0.50 | 0.5 ms (2.00x) |" in md and md.count("\n| ") >= 4
    assert "torch.compile" not in md
    result["models"]["test"].update(compiled_forward_ms=0.8, compiled_forward_mfu=0.6,
                                    compiled_train_tokens_per_s=12.0, compiled_train_mfu=0.45)
    assert "| test | 0.8 ms | 0.60 | 12 | 0.45 |" in speed.markdown(result)
    seconds, gemm = speed.bench_training(model, batch=2, repeats=1)
    assert seconds > 0 and gemm > 0


def test_paired_time_times_the_function_and_the_gemm_alternately():
    calls = []
    seconds, gemm = speed.paired_time(lambda: calls.append(1), repeats=3, warmup=1, n=64, warmup_s=0)
    assert len(calls) == 4 and seconds >= 0 and gemm > 0
    stamps = []
    speed.paired_time(lambda: stamps.append(time.perf_counter()), repeats=3, warmup=1, n=64, warmup_s=0.05)
    # the warm-up ran for its 0.05 s (several calls), and only then the 3 timed runs began
    assert len(stamps) > 4 and stamps[-3] - stamps[0] >= 0.045


def test_the_race_alone_from_the_command_line(tmp_path, capsys):
    # `bench --race`: the bundled models at their defaults, plus the block model without its look-ahead,
    # which writes the same text for more evaluations.
    import json

    from microdllm.cli import main

    out = tmp_path / "race.json"
    assert main(["bench", "--race", "--seeds", "1", "--repeats", "2", "--threads", "1", "--json", str(out)]) in (0, None)
    rows = {r["model"]: r for r in json.loads(out.read_text())["race"]}
    block, plain = rows["tinystories-tiny-block"], rows["tinystories-tiny-block (no lookahead)"]
    assert block["text"] == plain["text"] and block["nfe"] < plain["nfe"] < block["characters"]
    assert rows["tinystories-tiny-ar"]["vs_autoregressive"] == 1 and rows["tinystories-tiny-ar"]["nfe"] == 200
    printed = capsys.readouterr().out
    assert "| tinystories-tiny-block (no lookahead) | block diffusion |" in printed
    # Each round's ratio, a run against the AR run of the same round: with two rounds a median is their mean,
    # so the ratio of the medians lies between the two rounds' ratios.
    assert rows["tinystories-tiny-ar"]["vs_autoregressive_rounds"] == [1, 1] and "| 1.00-1.00 |" in printed
    for r in rows.values():
        low, high, ratio = *r["vs_autoregressive_rounds"], r["vs_autoregressive"]
        assert len(r["rounds"]) == 2 and low * (1 - 1e-9) <= ratio <= high * (1 + 1e-9)
    # The tree of drafts is a row of its own: a window for every way its check can end, so more positions
    # an evaluation than the default's drawn path with three windows.
    merged = rows["tinystories-tiny-block16 draft and verify"]
    tree = rows["tinystories-tiny-block16 draft and verify, tree of 8"]
    assert tree["positions"] / tree["nfe"] > merged["positions"] / merged["nfe"]


def test_the_race_device_is_checked_in_one_line(monkeypatch, capsys):
    # `bench --race --device D`: every model on D; a device this machine lacks, int8 off the CPU, or
    # --device without --race is refused before anything loads.
    from microdllm import cli, speed

    monkeypatch.setattr(speed, "load_checkpoint", lambda *a, **kw: pytest.fail("loaded before the device was checked"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device cuda: this machine has no CUDA device"):
            speed.bench_race(1, device="cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        speed.bench_race(1, device="gpu0")
    with pytest.raises(ValueError, match="int8 Linear weights, which run on the CPU only"):
        speed.bench_race(1, device="meta", int8=True)
    assert cli.main(["bench", "--device", "cpu"]) == 2
    assert "--device and --no-pack apply to the race (--race)" in capsys.readouterr().err
    assert speed.race_device("cpu") == torch.device("cpu")


def test_the_race_writes_with_several_seeds_unless_told(monkeypatch, capsys):
    # One sampled draw of one prompt moves draft and verify's ratio by 0.1 (experiments.md 6l): by default
    # each run of the race writes with RACE_SEEDS seeds; --seeds N says otherwise; without --race it is refused.
    from microdllm import cli

    asked = []
    monkeypatch.setattr(speed, "bench_race", lambda repeats, **kw: asked.append(kw["seeds"]) or [])
    monkeypatch.setattr(speed, "save", lambda *a: "")
    cli.main(["bench", "--race"])
    cli.main(["bench", "--race", "--seeds", "3"])
    assert asked == [speed.RACE_SEEDS, 3] and speed.RACE_SEEDS >= 8
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    assert f"(default {speed.RACE_SEEDS}," in " ".join(capsys.readouterr().out.split())
    assert cli.main(["bench", "--seeds", "3", "--no-sampling"]) == 2


def test_the_race_packs_float_weights_unless_told(monkeypatch, capsys, tmp_path):
    # Served float models have their Linear weights packed for oneDNN (packed.py), in the race too; --no-pack
    # races them as loaded and says so in the table; without --race the flag is refused in one line.
    from microdllm import cli

    asked = []
    monkeypatch.setattr(speed, "bench_race", lambda repeats, **kw: asked.append(kw["pack"]) or [])
    monkeypatch.setattr(speed, "machine", lambda: {"processor": "cpu", "platform": "test", "torch": "x", "threads": 1})
    cli.main(["bench", "--race"])
    cli.main(["bench", "--race", "--no-pack", "--md", str(tmp_path / "race.md")])
    assert asked == [True, False] and "Float Linear weights as loaded (--no-pack)" in (tmp_path / "race.md").read_text()
    capsys.readouterr()
    assert cli.main(["bench", "--no-pack", "--no-sampling"]) == 2
    assert "--no-pack apply to the race (--race)" in capsys.readouterr().err


def test_the_race_samples_prompts_too_seed_i_after_opening_i():
    # Eight draws of one prompt are not a sample of prompts: each seed writes after an opening of its own,
    # the first the race's old prompt, so a race of one seed is the race it always was.
    from microdllm.quality import OPENINGS

    prompts = [speed.race_prompt(i) for i in range(speed.RACE_SEEDS)]
    assert prompts[0] == speed.RACE_PROMPT == "Once upon a time, there was a little girl named Lily."
    assert len(set(prompts)) == speed.RACE_SEEDS and speed.race_prompt(len(OPENINGS)) == OPENINGS[0]


def test_the_race_with_int8_races_every_model_both_ways_against_the_faster_baseline(tmp_path):
    # `bench --race --int8 --seeds 2`: each model (the autoregressive one too) in float and with int8
    # Linear weights, in one round-robin, each writing with two seeds (rows: their sums); the ratios are to
    # the faster autoregressive run, so int8 can only flatter a model by being faster itself. Without
    # --race the flag is refused in one line.
    import json

    from microdllm.cli import main

    out = tmp_path / "race.json"
    argv = ["bench", "--race", "--checkpoint", "checkpoints/tinystories-tiny-block16", "--int8", "--seeds", "2",
            "--repeats", "1", "--threads", "1", "--json", str(out)]
    assert main(argv) in (0, None)
    rows = {r["model"]: r for r in json.loads(out.read_text())["race"]}
    names = {"tinystories-tiny-block16 draft and verify", "tinystories-tiny-ar"}
    assert all(n in rows and n + ", int8" in rows for n in names)
    ar = [rows["tinystories-tiny-ar"], rows["tinystories-tiny-ar, int8"]]
    assert min(r["vs_autoregressive"] for r in ar) == 1 and max(r["vs_autoregressive"] for r in ar) >= 1
    assert all(r["nfe"] == 400 and r["characters"] == 400 and r["seeds"] == 2 for r in ar)   # 2 seeds, summed
    assert main(["bench", "--int8", "--no-sampling"]) == 2
