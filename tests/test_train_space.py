"""train_space.py: data, training, evaluation, model card and Hub push in one command."""
from helpers import story_text

import train_space


def test_one_command_trains_evaluates_writes_a_card_and_pushes(tmp_path, monkeypatch):
    train_file, val_file = tmp_path / "train.txt", tmp_path / "valid.txt"
    train_file.write_text(story_text(5000))
    val_file.write_text(story_text(2000))
    pushed = {}
    monkeypatch.setattr(train_space, "push_to_hub", lambda d, repo, **kw: pushed.setdefault(repo, d) and f"https://hf.co/{repo}")
    out = tmp_path / "run"
    code = train_space.main(["--recipe", "tiny", "--train-file", str(train_file), "--val-file", str(val_file),
                             "--out", str(out), "--max-iters", "2", "--batch-size", "2", "--eval-windows", "2",
                             "--push-to-hub", "me/tiny"])
    assert code == 0 and pushed == {"me/tiny": str(out)}
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "nelbo_bpc" in card and "Uncurated samples" in card
    assert card.count("```text") == 3 and "loss_curve.png" in card and (out / "loss_curve.png").exists()


def test_resume_continues_the_run_in_out(tmp_path, monkeypatch):
    train_file, val_file = tmp_path / "train.txt", tmp_path / "valid.txt"
    train_file.write_text(story_text(5000))
    val_file.write_text(story_text(2000))
    common = ["--recipe", "tiny", "--train-file", str(train_file), "--val-file", str(val_file),
              "--out", str(tmp_path / "run"), "--batch-size", "2", "--eval-windows", "2"]
    seen = []
    real_train = train_space.train
    monkeypatch.setattr(train_space, "train", lambda cfg, resume=None: seen.append(resume) or real_train(cfg, resume))
    assert train_space.main([*common, "--max-iters", "2"]) == 0
    assert train_space.main([*common, "--max-iters", "4", "--resume"]) == 0
    assert seen == [None, str(tmp_path / "run")]   # the second run continued from the saved state
    assert '"step": 4' in (tmp_path / "run" / "training_state.json").read_text()


def test_a_two_stage_recipe_converts_its_autoregressive_stage_into_block_diffusion(tmp_path, monkeypatch):
    # tiny-block (and micro-block): the autoregressive baseline, then block diffusion from its weights.
    import json

    train_file, val_file = tmp_path / "train.txt", tmp_path / "valid.txt"
    train_file.write_text(story_text(5000))
    val_file.write_text(story_text(2000))
    out = tmp_path / "run"
    common = ["--recipe", "tiny-block", "--train-file", str(train_file), "--val-file", str(val_file),
              "--out", str(out), "--max-iters", "2", "--batch-size", "2", "--eval-windows", "2"]
    assert train_space.main(common) == 0
    first = json.loads((tmp_path / "run-stage1" / "config.json").read_text())
    final = json.loads((out / "config.json").read_text())
    assert first["model"]["causal"] and not first["model"].get("attn_block")
    assert final["model"]["attn_block"] == 2 and final["model"]["shift"] and not final["model"]["causal"]
    assert final["training"]["config"]["init_from"] == str(tmp_path / "run-stage1")
    assert final["training"]["config"]["mask_range"] == [0.3, 0.8]
    assert "block diffusion" in (out / "README.md").read_text()
    seen = []
    real_train = train_space.train
    monkeypatch.setattr(train_space, "train", lambda cfg, resume=None: seen.append(resume) or real_train(cfg, resume))
    assert train_space.main([*common, "--resume"]) == 0           # both stages done: each resumes, and stops
    assert seen == [str(tmp_path / "run-stage1"), str(out)]


def test_the_large_block_recipe_trains_blocks_of_16_with_a_causal_verifier_from_random_weights(tmp_path, monkeypatch):
    # tiny-block16 (the bundled default's recipe): blocks of 16 from random weights, in two stages.
    import dataclasses
    import json

    quick = tuple(dataclasses.replace(s, eval_windows=2, eval_timesteps=1) for s in train_space.RECIPES["tiny-block16"])
    monkeypatch.setitem(train_space.RECIPES, "tiny-block16", quick)     # its validations, not its recipe, cut short

    train_file, val_file = tmp_path / "train.txt", tmp_path / "valid.txt"
    train_file.write_text(story_text(5000))
    val_file.write_text(story_text(2000))
    out = tmp_path / "run"
    assert train_space.main(["--recipe", "tiny-block16", "--train-file", str(train_file), "--val-file", str(val_file),
                             "--out", str(out), "--max-iters", "2", "--batch-size", "2", "--eval-windows", "2"]) == 0
    configs = [json.loads((tmp_path / d / "config.json").read_text())
               for d in ("run-stage1", "run")]
    assert [c["model"].get("attn_block") for c in configs] == [16, 16]
    assert [c["training"]["config"]["ar_weight"] for c in configs] == [1.0, 4.0]
    assert [c["training"]["config"]["init_from"] for c in configs] == [None, str(tmp_path / "run-stage1")]
    assert configs[1]["model"]["clean_causal"] and configs[1]["training"]["config"]["block_sizes"] == [4, 8, 16, 16]
    assert "block diffusion" in (out / "README.md").read_text()
    assert "trained with micro-dLLM from random weights" in (out / "README.md").read_text()
