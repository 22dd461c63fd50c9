"""`python -m microdllm ...` end to end, as a user runs it."""
import argparse
import dataclasses
import json
import subprocess
import sys

import pytest
from helpers import ROOT, story_text

from microdllm.cli import build_parser
from microdllm.diffusion import SCHEDULES
from microdllm.optim import OPTIMIZERS
from microdllm.sampling import DEFAULT
from microdllm.train_config import LOSSES, RESUMABLE, TrainConfig
from microdllm.viz import count_frames

FULL = "checkpoints/tinystories-tiny"   # the full-sequence diffusion model (the default writes block by block)


def run(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "microdllm", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                                                           "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"})


def test_generate_json_with_defaults_and_exports(tmp_path):
    res = run("generate", "--checkpoint", FULL, "--prompt", "Once upon a time", "--gen-len", "40", "--steps", "8", "--json",
              "--gif", tmp_path / "t.gif", "--mp4", tmp_path / "t.mp4")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert {"text", "prompt", "steps", "nfe", "seconds"} <= set(out)
    assert out["text"].startswith("Once upon a time") and len(out["text"]) == 16 + 40 and "_" not in out["text"][16:]
    assert 1 <= out["nfe"] <= 8 + DEFAULT.polish and out["checkpoint"] == FULL   # steps, then polish passes
    assert count_frames(tmp_path / "t.gif") == count_frames(tmp_path / "t.mp4") == out["steps"] + 1


def test_generate_int8_and_the_original_sampler_settings():
    res = run("generate", "--checkpoint", FULL, "--prompt", "Once upon a time", "--gen-len", "30", "--int8",
              "--threshold", "1",
              "--reveal-schedule", "model", "--steps", "10", "--polish", "0", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["text"].startswith("Once upon a time") and "_" not in out["text"]
    assert out["nfe"] == out["steps"] <= 10  # no early reveals: one evaluation per step taken


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "steps must be between 1 and"),
    (["--reveal-schedule", "wavy"], "unknown reveal schedule"),
    (["--prompt", "snow\u2603man"], "unknown character"),
    (["--checkpoint", "/no/such/dir"], "no such directory"),
    (["--temperature", "-2"], ">= 0"),
])
def test_generate_bad_input_is_one_clear_line(args, message):
    res = run("generate", *args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_train_then_eval(tmp_path):
    data = tmp_path / "train.txt"
    data.write_text(story_text(6000))
    out = tmp_path / "run"
    res = run("train", "--data", data, "--preset", "test", "--max-iters", "4", "--batch-size", "4",
              "--eval-interval", "2", "--save-interval", "2", "--eval-windows", "4", "--eval-timesteps", "2",
              "--out", out, "--no-progress")
    assert res.returncode == 0, res.stderr
    res = run("eval", "--checkpoint", out, "--data", data, "--windows", "8", "--timesteps", "4", "--json")
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout)
    assert m["nelbo_is_upper_bound"] and 0 < m["nelbo_bpc"] < 10 and 0 <= m["masked_accuracy"] <= 1
    res = run("train", "--resume", out, "--max-iters", "6", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "config.json").read_text())["training"]["step"] == 6
    res = run("train", "--data", tmp_path / "missing.txt", "--out", tmp_path / "x")
    assert res.returncode == 2 and "no such file" in res.stderr


def test_resume_refuses_a_changed_recipe(tmp_path):
    data = tmp_path / "train.txt"
    data.write_text(story_text(6000))
    out = tmp_path / "run"
    assert run("train", "--data", data, "--preset", "test", "--max-iters", "2", "--batch-size", "2",
               "--eval-windows", "2", "--eval-timesteps", "1", "--out", out, "--no-progress").returncode == 0
    res = run("train", "--resume", out, "--lr", "0.1", "--max-iters", "4")
    assert res.returncode == 2 and "cannot change: --lr" in res.stderr


def train_options() -> dict[str, argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices["train"]._actions if a.option_strings and a.dest != "help"}


def test_every_train_config_field_has_a_flag_and_every_flag_a_field():
    options = train_options()
    assert set(options) - {"resume"} == {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(options["schedule"].choices) == set(SCHEDULES)
    assert tuple(options["loss"].choices) == LOSSES and tuple(options["optimizer"].choices) == OPTIMIZERS
    assert RESUMABLE == {"out", "max_iters", "eval_interval", "save_interval", "progress", "device", "threads", "compile"}


def test_every_train_flag_spelling_reaches_the_config():
    argv = ["train", "--data", "a.txt", "b.txt", "--val-data", "v.txt", "--dataset", "d", "--dataset-stories", "5",
            "--out", "o", "--preset", "test", "--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16",
            "--no-time-embedding", "--causal", "--shift", "--init-from", "ck", "--schedule", "linear", "--loss", "elbo",
            "--stratified", "--optimizer", "muon", "--lr", "0.1", "--muon-lr", "0.2", "--weight-decay", "0.01",
            "--min-lr-ratio", "0.5", "--grad-clip", "2", "--batch-size", "3", "--max-iters", "7", "--warmup-iters", "2",
            "--eval-interval", "4", "--eval-windows", "5", "--eval-timesteps", "6", "--save-interval", "8",
            "--seed", "9", "--device", "cpu", "--threads", "2", "--compile", "--no-progress", "--resume", "r"]
    given = {k: v for k, v in vars(build_parser().parse_args(argv)).items() if k not in ("func", "command")}
    assert given.pop("resume") == "r"
    assert TrainConfig(**given) == TrainConfig(
        data=["a.txt", "b.txt"], val_data="v.txt", dataset="d", dataset_stories=5, out="o", preset="test", n_layer=1,
        n_head=2, n_embd=32, block_size=16, time_embedding=False, causal=True, shift=True, init_from="ck",
        schedule="linear", loss="elbo", stratified=True, optimizer="muon", lr=0.1, muon_lr=0.2, weight_decay=0.01,
        min_lr_ratio=0.5, grad_clip=2.0, batch_size=3, max_iters=7, warmup_iters=2, eval_interval=4, eval_windows=5,
        eval_timesteps=6, save_interval=8, seed=9, device="cpu", threads=2, compile=True, progress=False)
    # only what was typed reaches cmd_train (a resumed run keeps its saved recipe)
    assert set(vars(build_parser().parse_args(["train", "--progress"]))) == {"func", "command", "progress"}


@pytest.mark.parametrize("checkpoint, kind", [("checkpoints/tinystories-tiny-ar", "autoregressive"),
                                              ("checkpoints/tinystories-tiny-block", "block diffusion")])
def test_generate_writes_with_every_kind_of_bundled_model(checkpoint, kind):
    res = run("generate", "--checkpoint", checkpoint, "--prompt", "Once upon a time", "--gen-len", "24", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["text"].startswith("Once upon a time") and len(out["text"]) == 16 + 24 and "_" not in out["text"]
    if kind == "autoregressive":   # left to right: one model evaluation per character
        assert out["nfe"] == out["steps"] == 24
    else:                          # block by block: its defaults, at most B steps a block
        assert out["settings"]["remasking"] == "low_confidence" and out["steps"] <= 24
    # it cannot fill in blanks: the bundled full-sequence model does, and says so
    res = run("generate", "--checkpoint", checkpoint, "--infill", "--prompt", "a ___ b", "--json")
    assert res.returncode == 0 and "cannot fill in blanks" in res.stderr and "tinystories-tiny" in res.stderr
    out = json.loads(res.stdout)
    assert out["checkpoint"].endswith("tinystories-tiny") and len(out["text"]) == 7 and "_" not in out["text"]
    assert out["text"][:2] == "a " and out["text"][-2:] == " b"
