"""Model cards say where a model's training began, following each stage's init_from."""
import json

from microdllm.card import first_stage, kind_intro
from microdllm.config import ModelConfig

BLOCK = {"vocab_size": 5, "block_size": 32, "n_layer": 1, "n_head": 1, "n_embd": 8, "attn_block": 16,
         "shift": True, "clean_causal": True, "time_embedding": False}
AR = {"vocab_size": 5, "block_size": 32, "n_layer": 1, "n_head": 1, "n_embd": 8, "causal": True}


def stage(tmp_path, name, init_from=None, causal=False):
    model = AR if causal else BLOCK
    config = {"model": model, "vocab": list("abcd"), "training": {"config": {"init_from": init_from}}}
    (tmp_path / name).mkdir()
    (tmp_path / name / "config.json").write_text(json.dumps(config))
    return config


def test_a_chain_from_random_weights_and_from_an_autoregressive_model(tmp_path):
    stage(tmp_path, "s1")
    two = stage(tmp_path, "s2", init_from=str(tmp_path / "s1"))
    assert first_stage(two) == "random"
    stage(tmp_path, "ar", causal=True)
    grown = stage(tmp_path, "b2", init_from=str(tmp_path / "ar"))
    assert first_stage(grown) == "autoregressive"
    intro = kind_intro(ModelConfig.from_dict(two["model"]), first_stage(two))
    assert "trained with micro-dLLM from random weights. It writes blocks of 16" in intro


def test_an_unknown_start_is_not_guessed(tmp_path):
    lost = stage(tmp_path, "b", init_from=str(tmp_path / "gone"))
    assert first_stage(lost) == "" and first_stage({"model": BLOCK}) == ""
    loop = stage(tmp_path, "loop", init_from=str(tmp_path / "loop"))   # a stage that names itself
    assert first_stage(loop) == ""
    assert "trained with micro-dLLM. It writes" in kind_intro(ModelConfig.from_dict(lost["model"]), "")
