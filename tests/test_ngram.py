"""The training text's character n-gram (ngram.py) and the drafts it ties together (sampling/draft.py)."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import make_hub_cache
from helpers import ROOT, story_text

from microdllm import ngram as ngram_module
from microdllm.checkpoint import BUNDLED_DIR, CheckpointError, load_checkpoint
from microdllm.data import read_text_files
from microdllm.ngram import NGRAM_NAME, ORDER, NGram, NGramError, load_ngram
from microdllm.sampling import SamplerConfig, SamplingError
from microdllm.sampling.draft import Coupling, drawn_path, likeliest_tree
from microdllm.tokenizer import CharTokenizer

TEXT = story_text(3000)


@pytest.fixture(scope="module")
def counted():
    tok = CharTokenizer.from_text(TEXT)
    return NGram.from_ids(tok.encode(TEXT), tok.vocab_size), tok


def test_counts_and_conditionals(counted):
    ng, tok = counted
    ids = tok.encode(TEXT)
    assert ng.order == ORDER and [int(c.sum()) for c in ng.counts] == [len(ids) - k for k in range(ORDER)]
    for context in ("", "L", "Li", "Lil", "a li", "!!dog"):         # seen, and never seen ("!!do")
        p = ng.conditional(tok.encode(context))
        assert p.shape == (tok.vocab_size,) and p.sum() == pytest.approx(1.0) and (p > 0).all()
    # after "Lil" the story always goes on with "y": the n-gram says so, and the coupling favours it
    after = ng.conditional(tok.encode("Lil"))
    assert tok.decode([int(after.argmax())]) == "y" and after.max() > 0.5
    weights = ng.coupling(tok.encode("Lil"), 1.0)
    assert int(weights.argmax()) == tok.encode("y")[0] and weights.max() > 10
    # only the last ORDER - 1 characters are read
    assert ng.conditional(tok.encode("the Lil")).tolist() == ng.conditional(tok.encode("d. Lil")).tolist()


def test_save_and_load_round_trip(counted, tmp_path):
    ng, tok = counted
    path = ng.save(tmp_path / NGRAM_NAME)
    back = load_ngram(path, tok.vocab_size)
    assert back.order == ng.order
    assert all(np.array_equal(a, b) for a, b in zip(back.keys + back.counts, ng.keys + ng.counts))
    assert np.array_equal(back.conditional(tok.encode("a li")), ng.conditional(tok.encode("a li")))


def _tamper(ng: NGram, tmp_path, **changes) -> str:
    keys, counts = list(ng.keys), list(ng.counts)
    for name, value in changes.items():
        (keys if name == "keys" else counts)[1] = value
    return NGram(ng.vocab_size, keys, counts).save(tmp_path / NGRAM_NAME)


def test_a_broken_file_is_refused_in_one_line(counted, tmp_path, monkeypatch):
    ng, tok = counted
    good = ng.save(tmp_path / "good.safetensors")
    with pytest.raises(NGramError, match="counts a vocabulary of"):
        load_ngram(good, tok.vocab_size + 1)
    (tmp_path / "cut.safetensors").write_bytes(good.read_bytes()[:500])
    with pytest.raises(NGramError, match="cannot be read as safetensors"):
        load_ngram(tmp_path / "cut.safetensors", tok.vocab_size)
    with pytest.raises(NGramError, match="distinct 2-grams in order"):
        load_ngram(_tamper(ng, tmp_path, keys=ng.keys[1][::-1].copy()), tok.vocab_size)
    with pytest.raises(NGramError, match="distinct 2-grams in order"):
        load_ngram(_tamper(ng, tmp_path, keys=ng.keys[1] + tok.vocab_size ** 2), tok.vocab_size)
    with pytest.raises(NGramError, match="int64 keys and int32 counts"):
        load_ngram(_tamper(ng, tmp_path, counts=ng.counts[1].astype(np.int64)), tok.vocab_size)
    with pytest.raises(NGramError, match="do not fit 64-bit keys"):
        NGram.from_ids([1, 2, 3], 100_000, order=5)             # 100,000^5 > 2^63
    monkeypatch.setattr(ngram_module, "MAX_FILE_BYTES", 1000)
    with pytest.raises(NGramError, match="an n-gram file is at most"):
        load_ngram(good, tok.vocab_size)


def test_a_checkpoint_loads_its_ngram_and_a_broken_one_is_a_checkpoint_error(tmp_path):
    ck = load_checkpoint(BUNDLED_DIR)
    assert ck.ngram is not None and ck.ngram.order == ORDER and ck.ngram.vocab_size == ck.model_config.vocab_size
    copy = tmp_path / "ck"
    shutil.copytree(BUNDLED_DIR, copy)
    (copy / NGRAM_NAME).unlink()
    assert load_checkpoint(copy).ngram is None                 # optional: drafts are then drawn untied
    (copy / NGRAM_NAME).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(CheckpointError, match=NGRAM_NAME):
        load_checkpoint(copy)


def test_the_ngram_command_counts_a_checkpoints_training_text(tmp_path, capsys):
    from microdllm.cli import main

    copy = tmp_path / "ck"
    shutil.copytree(BUNDLED_DIR, copy)
    (copy / NGRAM_NAME).unlink()
    (tmp_path / "story.txt").write_text(TEXT)
    assert main(["ngram", "--checkpoint", str(copy), "--data", str(tmp_path / "story.txt"), "--order", "3"]) == 0
    assert "orders 1-3" in capsys.readouterr().out
    ngram = load_checkpoint(copy).ngram
    assert ngram.order == 3 and int(ngram.counts[0].sum()) == len(read_text_files([tmp_path / "story.txt"]))


def test_a_hub_checkpoint_brings_its_ngram_when_it_has_one(tmp_path):
    with_it, without = tmp_path / "with", tmp_path / "without"
    shutil.copytree(BUNDLED_DIR, with_it)
    shutil.copytree(BUNDLED_DIR, without)
    (without / NGRAM_NAME).unlink()
    cache = make_hub_cache(tmp_path / "hub", "someone/with-ngram", with_it)
    make_hub_cache(cache, "someone/without-ngram", without)
    code = ("import sys; from microdllm.checkpoint import load_checkpoint\n"
            "for repo in sys.argv[1:]: ck = load_checkpoint(repo); print(repo, ck.ngram is not None)")
    out = subprocess.run([sys.executable, "-c", code, "someone/with-ngram", "someone/without-ngram"], cwd=ROOT,
                         env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["someone/with-ngram", "True", "someone/without-ngram", "False"], out.stderr[-2000:]


def test_a_tied_path_is_drawn_left_to_right_from_the_rows_it_keeps(counted):
    ng, tok = counted
    g = torch.Generator().manual_seed(0)
    q = torch.rand(5, tok.vocab_size).softmax(-1)
    coupling = Coupling(ng, 0.75, tuple(tok.encode("a li")))
    draft = drawn_path(q, g, coupling)
    for j in range(len(q)):
        expected = q[j] * ng.coupling(tuple(tok.encode("a li")) + tuple(draft.chars[:j].tolist()), 0.75)
        assert torch.allclose(draft.q[j], expected / expected.sum())    # what speculative sampling divides by
    untied = drawn_path(q, torch.Generator().manual_seed(0))
    assert torch.equal(untied.q, q)
    # a tree ranks each node's children by its own path: after "a li" + "tt", "l" is the likeliest next
    tree = likeliest_tree(torch.full((3, tok.vocab_size), 1.0 / tok.vocab_size), 3, Coupling(ng, 1.0, tuple(tok.encode("a li"))))
    assert tok.decode(tree.chars.tolist()) == "ttl"


def test_the_copula_weight_is_checked():
    assert SamplerConfig(copula=0.75).copula == 0.75
    for bad in (-1.0, 5.0, float("nan")):
        with pytest.raises(SamplingError, match="copula weight"):
            SamplerConfig(copula=bad)
