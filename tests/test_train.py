"""Training: exact resume, atomic checkpoints, DDP under torchrun, and clear errors."""
import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import ROOT, story_text

from microdllm import train as train_mod
from microdllm.card import write_model_card
from microdllm.checkpoint import load_checkpoint
from microdllm.train import STATE_NAME, TrainingError, train
from microdllm.train_config import TrainConfig


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(story_text(8000), encoding="utf-8")
    return path


def config(corpus, out, **kw):
    base = dict(out=str(out), data=[str(corpus)], preset="test", batch_size=4, max_iters=6, warmup_iters=2,
                eval_interval=3, eval_windows=4, eval_timesteps=2, save_interval=3, progress=False, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def weights(out):
    return load_checkpoint(out).model.state_dict()


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_resume_continues_exactly(corpus, tmp_path, optimizer):
    full = train(config(corpus, tmp_path / "full", optimizer=optimizer, loss="elbo", stratified=True))
    half = train(config(corpus, tmp_path / "half", optimizer=optimizer, loss="elbo", stratified=True, max_iters=3))
    assert half.step == 3
    resumed = train(config(corpus, tmp_path / "half", optimizer=optimizer, loss="elbo", stratified=True),
                    resume=str(tmp_path / "half"))
    assert resumed.step == full.step == 6
    a, b = weights(tmp_path / "full"), weights(tmp_path / "half")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in resumed.history] == [3, 6]


def test_checkpoint_contents_and_loss_curve(corpus, tmp_path):
    train(config(corpus, tmp_path / "run"))
    out = tmp_path / "run"
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", STATE_NAME, "metrics.jsonl", "loss_curve.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["training"]["step"] == 6 and cfg["diffusion"]["schedule"] == "cosine"
    assert "nelbo_bpc" in cfg["training"]["val"]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(corpus, tmp_path, monkeypatch):
    real = train_mod.Trainer.loss_on

    def poisoned(self, x0, g):
        loss = real(self, x0, g)
        return loss * float("nan") if self.step == 4 else loss

    monkeypatch.setattr(train_mod.Trainer, "loss_on", poisoned)
    with pytest.raises(TrainingError, match="diverged"):
        train(config(corpus, tmp_path / "run"))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["training"]["step"] == 3
    assert load_checkpoint(tmp_path / "run").model is not None


def test_bad_inputs_are_clear(corpus, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("Once upon a time.", encoding="utf-8")
    with pytest.raises(ValueError, match="longer than one block"):
        train(config(short, tmp_path / "a"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        train(config(tmp_path / "missing.txt", tmp_path / "b"))
    with pytest.raises(ValueError, match="unknown preset"):
        train(config(corpus, tmp_path / "c", preset="gigantic"))
    with pytest.raises(Exception, match="nothing.*missing"):
        train(config(corpus, tmp_path / "d"), resume=str(tmp_path / "nothing"))


def test_autoregressive_baseline_trains(corpus, tmp_path):
    t = train(config(corpus, tmp_path / "ar", causal=True))
    assert "bpc" in t.history[-1]["val"] and load_checkpoint(tmp_path / "ar").model.config.causal


def test_diffusion_model_adapted_from_the_autoregressive_baseline(corpus, tmp_path):
    train(config(corpus, tmp_path / "ar", causal=True, time_embedding=False))
    ar = weights(tmp_path / "ar")
    adapted = config(corpus, tmp_path / "dm", init_from=str(tmp_path / "ar"), shift=True, time_embedding=False,
                     preset="tiny")  # the source's shape wins over the preset
    start = train_mod.Trainer(adapted).model.state_dict()
    assert set(start) == set(ar) | {"start"}
    assert all(torch.equal(start[k], ar[k]) for k in ar)
    t = train(adapted)
    loaded = load_checkpoint(tmp_path / "dm")
    cfg = loaded.model.config
    assert cfg.shift and not cfg.causal and not cfg.time_embedding and cfg.n_layer == 2
    assert "nelbo_bpc" in t.history[-1]["val"]
    assert not torch.equal(loaded.model.state_dict()["blocks.0.attn.c_q.weight"], ar["blocks.0.attn.c_q.weight"])
    card = write_model_card(tmp_path / "dm", title="adapted").read_text()
    assert f"| initialised from | `{tmp_path / 'ar'}` (autoregressive: 6 steps" in card and "| alignment | shifted" in card
    resumed = train(config(corpus, tmp_path / "dm", max_iters=8), resume=str(tmp_path / "dm"))
    assert resumed.step == 8
    timed = train_mod.Trainer(config(corpus, tmp_path / "timed", init_from=str(tmp_path / "ar"), shift=True))
    assert timed.model.timestep_emb is not None  # a part the source lacks starts fresh
    with pytest.raises(Exception, match="nothing: no such directory"):
        train(config(corpus, tmp_path / "bad", init_from=str(tmp_path / "nothing")))


@pytest.mark.parametrize("extra", [[], ["--attn-block", "4", "--shift", "--no-time-embedding"]])
def test_two_process_ddp_on_cpu(corpus, tmp_path, extra):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "microdllm", "train", "--data", str(corpus), "--preset", "test", "--batch-size", "4",
           "--max-iters", "3", "--eval-interval", "3", "--save-interval", "3", "--eval-windows", "4",
           "--eval-timesteps", "2", "--out", str(out), "--no-progress", "--threads", "1", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    meta = json.loads((out / "config.json").read_text())["training"]
    assert meta["world_size"] == 2 and meta["step"] == 3
    assert meta["tokens"] == 3 * 4 * 64 * 2


def test_block_diffusion_from_an_autoregressive_model_resumes_exactly(corpus, tmp_path):
    train(config(corpus, tmp_path / "ar", causal=True, time_embedding=False, optimizer="muon"))
    block = dict(init_from=str(tmp_path / "ar"), attn_block=4, shift=True, time_embedding=False, schedule="linear",
                 mask_range=[0.3, 0.8], optimizer="muon")
    full = train(config(corpus, tmp_path / "full", **block))
    train(config(corpus, tmp_path / "half", **block, max_iters=3))
    train(config(corpus, tmp_path / "half", **block), resume=str(tmp_path / "half"))
    a, b = weights(tmp_path / "full"), weights(tmp_path / "half")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ck = load_checkpoint(tmp_path / "full")
    assert ck.model_config.kind == "block diffusion" and ck.model_config.attn_block == 4
    assert full.history[-1]["val"]["block"] == 4 and 0 < full.history[-1]["val"]["nelbo_bpc"] < 10
    with pytest.raises(ValueError, match="mask-range"):
        train(config(corpus, tmp_path / "bad", **{**block, "mask_range": [0.9, 0.1]}))


def test_one_model_over_several_block_sizes(corpus, tmp_path, monkeypatch):
    """--block-sizes draws each step's block size (resume stays exact); the model serves --attn-block and
    evaluates at any size."""
    train(config(corpus, tmp_path / "ar", causal=True, time_embedding=False))
    block = dict(init_from=str(tmp_path / "ar"), attn_block=2, block_sizes=[2, 4], shift=True, time_embedding=False,
                 schedule="linear", mask_range=[0.3, 0.8])
    seen = []
    real = train_mod.corrupt_blocks
    monkeypatch.setattr(train_mod, "corrupt_blocks", lambda x0, b, *a, **k: seen.append(b) or real(x0, b, *a, **k))
    train(config(corpus, tmp_path / "full", **block))
    assert set(seen) == {2, 4}
    train(config(corpus, tmp_path / "half", **block, max_iters=3))
    train(config(corpus, tmp_path / "half", **block), resume=str(tmp_path / "half"))
    a, b = weights(tmp_path / "full"), weights(tmp_path / "half")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ck = load_checkpoint(tmp_path / "full")
    assert ck.model_config.attn_block == 2
    from microdllm.data import validation_windows
    from microdllm.evaluate import evaluate

    windows, _ = validation_windows(str(corpus), ck.tokenizer, 4, ck.model_config.block_size)
    at = {b: evaluate(ck.model, windows, ck.schedule, ck.tokenizer.mask_id, timesteps_per_window=2, block=b)
          for b in (2, 4)}
    assert at[2]["block"] == 2 and at[4]["block"] == 4 and at[2]["nelbo_bpc"] != at[4]["nelbo_bpc"]
    with pytest.raises(ValueError, match="block-sizes"):
        train(config(corpus, tmp_path / "bad", **{**block, "attn_block": None}))


def test_resume_refuses_mismatched_or_damaged_state(corpus, tmp_path):
    out = tmp_path / "run"
    train(config(corpus, out, max_iters=3))
    assert not list(out.glob("*.pt"))  # nothing pickled: safetensors + JSON only
    cfg = json.loads((out / "config.json").read_text())
    cfg["training"]["step"] = 2
    (out / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TrainingError, match="weights are from step 2 but the optimiser state from step 3"):
        train(config(corpus, out), resume=str(out))
    (out / "training_state.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(Exception, match="training_state.safetensors.*truncated or corrupt"):
        train(config(corpus, out), resume=str(out))


def test_one_plotter_draws_several_runs_against_characters(tmp_path):
    from microdllm.plots import Curve, plot_curves

    diffusion = [{"step": s, "tokens": 1000 * s, "train_loss": 1.5, "val": {"nelbo_bpc": 3 - s / 10}} for s in (1, 2, 3)]
    ar = [{"step": s, "tokens": 1000 * s, "train_loss": 1.2, "val": {"bpc": 2.5 - s / 10}} for s in (1, 2)]
    out = plot_curves([Curve("diffusion", diffusion), Curve("ar", ar, start=0.002, dashed=True)],
                      tmp_path / "curves.png", per="characters", title="t")
    assert out.read_bytes().startswith(b"\x89PNG") and [p.name for p in tmp_path.iterdir()] == ["curves.png"]
