"""Checkpoints: safetensors round trip, clear errors on damage, Hub repo ids through an offline cache."""
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import make_hub_cache
from helpers import ROOT, tiny_model

from microdllm import hub
from microdllm.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


@pytest.fixture
def saved(tmp_path):
    model, tok = tiny_model()
    return save_checkpoint(tmp_path / "ck", model, tok, "linear", training={"step": 7}), model, tok


def test_round_trip(saved):
    path, model, tok = saved
    ck = load_checkpoint(path)
    assert ck.tokenizer == tok and ck.schedule.name == "linear" and ck.metadata["step"] == 7
    assert all(torch.equal(v, ck.model.state_dict()[k]) for k, v in model.state_dict().items())
    config = json.loads((path / "config.json").read_text())
    assert config["vocab"] == tok.chars and config["model"]["n_layer"] == 2


def test_truncated_weights_name_the_file(saved):
    path, *_ = saved
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors.*truncated or corrupt"):
        load_checkpoint(path)


def test_corrupt_config_and_missing_files(saved, tmp_path):
    path, *_ = saved
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json: not valid JSON"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no such directory"):
        load_checkpoint(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json: missing"):
        load_checkpoint(tmp_path / "empty")


def test_vocab_and_shape_mismatch(saved):
    path, *_ = saved
    config = json.loads((path / "config.json").read_text())
    bad = dict(config, vocab=config["vocab"][:-1])
    (path / "config.json").write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match="vocabulary has .* ids"):
        load_checkpoint(path)
    bad = dict(config, model=dict(config["model"], n_embd=32, n_head=1))
    (path / "config.json").write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match="has shape"):
        load_checkpoint(path)


def load_in_subprocess(source, cache):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    code = ("import sys; from microdllm.checkpoint import load_checkpoint, CheckpointError\n"
            "try:\n ck = load_checkpoint(sys.argv[1]); print('OK', ck.source, ck.model.num_params())\n"
            "except CheckpointError as e: print('ERR', e)")
    return subprocess.run([sys.executable, "-c", code, source], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120).stdout.strip()


def test_hub_repo_id_through_offline_cache(saved, tmp_path):
    path, model, _ = saved
    cache = make_hub_cache(tmp_path / "hub", "someone/micro-dllm-test", path)
    assert load_in_subprocess("someone/micro-dllm-test", cache) == f"OK hf://someone/micro-dllm-test {model.num_params()}"
    out = load_in_subprocess("someone/not-cached", cache)
    assert out.startswith("ERR hf://someone/not-cached: not in the local cache")


def test_push_to_hub_uploads_the_checkpoint(saved, monkeypatch):
    path, *_ = saved
    calls = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, **kw):
            calls["create"] = repo_id
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, **kw):
            calls["upload"] = kw

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    url = hub.push_to_hub(path, "me/model", token="t0k")
    assert url.endswith("me/model") and calls["create"] == "me/model"
    assert calls["upload"]["folder_path"] == str(path) and "model.safetensors" in calls["upload"]["allow_patterns"]
    (path / "model.safetensors").write_bytes(b"broken")
    with pytest.raises(CheckpointError):
        hub.push_to_hub(path, "me/model")


def test_bundled_checkpoint_loads():
    ck = load_checkpoint()
    assert ck.source == "bundled" and ck.model.config.block_size == 256
