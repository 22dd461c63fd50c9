"""`python -m microdllm`: bad input is one line, `error: ...`, and exit status 2, never a traceback;
every command works on an autoregressive checkpoint; the long commands draw a progress bar.

Most cases call `cli.main` in this process (a subprocess per case would spend most of its time
importing torch); `test_a_bad_command_line_in_a_real_process` checks the same from the outside.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from helpers import ROOT, STORY, story_text, tiny_model

from microdllm import card, quality, sampling
from microdllm.cli import main
from microdllm.diffusion import CosineSchedule
from microdllm.evaluate import evaluate, progress_bars
from microdllm.tokenizer import CharTokenizer

AR = ROOT / "checkpoints" / "tinystories-tiny-ar"
FULL = ROOT / "checkpoints" / "tinystories-tiny"


def run_main(argv, capsys) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:   # argparse
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Bad inputs on disk: checkpoints that are not, text that is not text."""
    d = tmp_path_factory.mktemp("bad")
    (d / "story.txt").write_text(story_text(4000))
    (d / "short.txt").write_text("Once upon a time.")
    (d / "binary.txt").write_bytes(b"\xff\xfe\x00 not text")
    (d / "empty-dir").mkdir()
    corrupt = d / "corrupt-config"
    corrupt.mkdir()
    (corrupt / "config.json").write_text('{"model": {"n_layer": ')
    shutil.copyfile(AR / "model.safetensors", corrupt / "model.safetensors")
    truncated = d / "truncated-weights"
    truncated.mkdir()
    shutil.copyfile(AR / "config.json", truncated / "config.json")
    (truncated / "model.safetensors").write_bytes((AR / "model.safetensors").read_bytes()[:1000])
    return d


BAD = [  # (id, argv with {d} for the files' directory, words the message must hold)
    ("generate: not a checkpoint", ["generate", "--checkpoint", "{d}/empty-dir"], ["empty-dir"]),
    ("generate: corrupt config.json", ["generate", "--checkpoint", "{d}/corrupt-config"], ["config.json"]),
    ("generate: truncated weights", ["generate", "--checkpoint", "{d}/truncated-weights"], ["model.safetensors"]),
    ("generate: a file for a checkpoint", ["generate", "--checkpoint", "{d}/story.txt"], ["story.txt"]),
    ("generate: missing directory", ["generate", "--checkpoint", "/no/such/checkpoint"], ["/no/such/checkpoint"]),
    ("generate: gen-len 0", ["generate", "--gen-len", "0"], ["generation length"]),
    ("generate: steps not a number", ["generate", "--steps", "many"], ["--steps", "many"]),
    ("generate: temperature nan", ["generate", "--temperature", "nan"], ["temperature"]),
    ("generate: top-p inf", ["generate", "--top-p", "inf"], ["top-p"]),
    ("generate: unknown remasking", ["generate", "--remasking", "sideways"], ["--remasking", "sideways"]),
    ("generate: gif is a directory", ["generate", "--gen-len", "4", "--gif", "{d}"], ["--gif", "directory"]),
    ("generate: 100k prompt", ["generate", "--prompt", "x" * 100_000], ["at most"]),
    ("generate: control characters", ["generate", "--prompt", "a\x01b"], ["\\x01"]),
    ("eval: missing data", ["eval", "--data", "{d}/missing.txt"], ["missing.txt"]),
    ("eval: data not text", ["eval", "--data", "{d}/binary.txt"], ["binary.txt", "UTF-8"]),
    ("eval: data too short", ["eval", "--data", "{d}/short.txt"], ["short.txt"]),
    ("eval: data is a directory", ["eval", "--data", "{d}"], ["no such file"]),
    ("eval: windows 0", ["eval", "--data", "{d}/story.txt", "--windows", "0"], ["--windows", ">= 1"]),
    ("eval: timesteps -1", ["eval", "--data", "{d}/story.txt", "--timesteps", "-1"], ["--timesteps"]),
    ("eval: corrupt checkpoint", ["eval", "--data", "{d}/story.txt", "--checkpoint", "{d}/corrupt-config"],
     ["config.json"]),
    ("sample-eval: n 0", ["sample-eval", "--n", "0"], ["--n", ">= 1"]),
    ("sample-eval: missing word list", ["sample-eval", "--words-from", "{d}/missing.txt"], ["--words-from"]),
    ("sample-eval: word list not text", ["sample-eval", "--words-from", "{d}/binary.txt", "--ar-checkpoint", "none"],
     ["binary.txt", "UTF-8"]),
    ("sample-eval: missing reference", ["sample-eval", "--words-from", "{d}/story.txt", "--reference", "{d}/no.txt"],
     ["--reference"]),
    ("sample-eval: a diffusion model as the AR baseline",
     ["sample-eval", "--words-from", "{d}/story.txt", "--ar-checkpoint", str(FULL)], ["causal"]),
    ("model-card: not a checkpoint", ["model-card", "--checkpoint", "{d}/empty-dir", "--data", "{d}/story.txt"],
     ["empty-dir"]),
    ("model-card: corrupt config.json", ["model-card", "--checkpoint", "{d}/corrupt-config", "--data",
                                         "{d}/story.txt"], ["config.json"]),
    ("model-card: missing checkpoint", ["model-card", "--checkpoint", "/no/such/checkpoint", "--data",
                                        "{d}/story.txt"], ["/no/such/checkpoint"]),
    ("bench: repeats 0", ["bench", "--repeats", "0"], ["--repeats"]),
    ("generate: --copula without an n-gram", ["generate", "--checkpoint", str(FULL), "--copula", "1"],
     ["ngram.safetensors", "has none"]),
    ("ngram: missing data", ["ngram", "--checkpoint", str(FULL), "--data", "{d}/missing.txt"], ["missing.txt"]),
    ("ngram: order 9", ["ngram", "--checkpoint", str(FULL), "--data", "{d}/story.txt", "--order", "9"], ["--order"]),
    ("train: no such device", ["train", "--data", "{d}/story.txt", "--device", "gpu0", "--out", "{d}/run"],
     ["--device gpu0", "not a torch device"]),
    ("import-original: text for weights", ["import-original", "--checkpoint", "{d}/story.txt", "--vocab-from",
                                           "{d}/story.txt", "--out", "{d}/imported"], ["story.txt"]),
    ("an unknown command", ["frobnicate"], ["frobnicate"]),
    ("no command", [], ["command"]),
]


@pytest.mark.parametrize("argv, words", [pytest.param(a, w, id=i) for i, a, w in BAD])
def test_bad_input_is_one_line_and_exit_status_2(files, capsys, argv, words):
    code, out, err = run_main([a.replace("{d}", str(files)) for a in argv], capsys)
    assert code == 2, (code, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "error: " in err and all(w in err for w in words), err


def test_an_unexpected_error_is_one_line_too(monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("microdllm.speed.run", boom)
    code, out, err = run_main(["bench"], capsys)
    assert code == 2 and err.strip() == ("error: ZeroDivisionError: division by zero "
                                         "(MICRODLLM_TRACEBACK=1 shows where)")


def test_a_bad_command_line_in_a_real_process(files):
    env = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    for argv in (["eval", "--data", files / "binary.txt"], ["generate", "--checkpoint", files / "corrupt-config"],
                 ["sample-eval", "--n", "-3"]):
        res = subprocess.run([sys.executable, "-m", "microdllm", *map(str, argv)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=240)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and "error: " in res.stderr, res.stderr


# ------------------------------------------------------------------------------------------ causal checkpoints

def test_sample_eval_on_the_autoregressive_checkpoint_writes_left_to_right(files, capsys):
    code, out, err = run_main(["sample-eval", "--checkpoint", AR, "--n", "2", "--gen-len", "16", "--words-from",
                               files / "story.txt", "--ar-checkpoint", "none", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["mean_nfe"] == 16   # one model evaluation per character: left to right
    assert all(s.startswith(o) and "_" not in s for s, o in zip(result["samples"], quality.OPENINGS))
    code, out, err = run_main(["sample-eval", "--checkpoint", AR, "--n", "1", "--gen-len", "8", "--words-from",
                               files / "story.txt", "--ar-checkpoint", AR], capsys)
    assert code == 0 and "1 continuations, left to right" in out and "gen_bpc" in out, out + err


def test_model_card_on_the_autoregressive_checkpoint(files, tmp_path, capsys, monkeypatch):
    ck = tmp_path / "ar"
    shutil.copytree(AR, ck)
    # short samples, so that the test takes seconds (the command draws three of 200 characters)
    monkeypatch.setattr(card, "SAMPLE_PROMPTS", card.SAMPLE_PROMPTS[:1])
    monkeypatch.setattr(sampling, "DEFAULT", sampling.DEFAULT.replace(gen_len=24))
    code, out, err = run_main(["model-card", "--checkpoint", ck, "--data", files / "story.txt", "--title", "AR"], capsys)
    assert code == 0 and "Traceback" not in err, err
    assert out.startswith(f"wrote {ck / 'README.md'} (bpc ")
    text = (ck / "README.md").read_text()
    assert "autoregressive" in text and "left to right" in text and "## Uncurated samples" in text
    assert json.loads((ck / "config.json").read_text())["evaluation"]["bpc"] > 0


# ------------------------------------------------------------------------------------------ progress bars

def test_evaluation_and_sample_eval_draw_a_progress_bar_only_when_asked(capsys):
    tok = CharTokenizer.from_text(STORY + "".join(quality.OPENINGS))
    model, _ = tiny_model(tok, block_size=64)
    windows = torch.randint(0, tok.vocab_size - 1, (6, 64))
    evaluate(model, windows, CosineSchedule(), tok.mask_id, timesteps_per_window=2)
    assert capsys.readouterr().err == ""                  # outside progress_bars: silent
    with progress_bars(True):
        evaluate(model, windows, CosineSchedule(), tok.mask_id, timesteps_per_window=2)
    assert "eval (6 windows x 2 timesteps)" in capsys.readouterr().err
    with progress_bars(None):                             # None: only on a terminal (pytest's stderr is not)
        evaluate(model, windows, CosineSchedule(), tok.mask_id, timesteps_per_window=2)
    assert capsys.readouterr().err == ""
    ck = SimpleNamespace(model=model, tokenizer=tok, schedule=CosineSchedule(), ngram=None)
    cfg = sampling.DEFAULT.replace(gen_len=8, steps=2, polish=0)
    quality.sample_eval(ck, quality.vocabulary(STORY), cfg, n=2, progress=True, verbose=True)
    err = capsys.readouterr().err
    assert "sample-eval" in err and "2/2" in err and "[1/2] " in err
    with pytest.raises(ValueError, match="n must be >= 1"):
        quality.sample_eval(ck, set(), cfg, n=0)
