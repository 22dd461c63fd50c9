"""Data preparation through `datasets` streaming, on a local JSON file (the Hub is unreachable here)."""
import json
import subprocess
import sys

import pytest
from helpers import ROOT

from microdllm.data import build_token_data, clean_story, stream_stories


@pytest.fixture
def jsonl(tmp_path):
    rows = [{"text": f"Story {i}: Tom\u2019s dog \u201cran\u201d fast\u2026", "id": i} for i in range(50)]
    rows.append({"text": "   ", "id": 99})
    rows.append({"text": "It\u00e2\u20ac\u2122s sunny.", "id": 100})  # mojibake of "It's sunny."
    path = tmp_path / "stories.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def test_clean_story_fixes_mojibake_and_typography():
    assert clean_story("It\u00e2\u20ac\u2122s a day \u2014 ok\u2026  \n\n  Next") == "It's a day - ok...\nNext"


def test_stream_stories_is_seeded_and_complete(jsonl):
    a = stream_stories(str(jsonl), num_stories=20, seed=1, shuffle_buffer=100)
    b = stream_stories(str(jsonl), num_stories=20, seed=1, shuffle_buffer=100)
    c = stream_stories(str(jsonl), num_stories=20, seed=2, shuffle_buffer=100)
    assert a == b and a != c and len(a) == 20
    assert all(s.isascii() and s.strip() for s in a)
    with pytest.raises(RuntimeError, match="only 51 stories"):
        stream_stories(str(jsonl), num_stories=60)
    with pytest.raises(KeyError, match="no column 'story'"):
        stream_stories(str(jsonl), num_stories=5, text_column="story")


def test_prepare_data_cli(jsonl, tmp_path):
    out = tmp_path / "out.txt"
    res = subprocess.run([sys.executable, "-m", "microdllm", "prepare-data", "--dataset", str(jsonl),
                          "--num-stories", "10", "--seed", "3", "--output", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "wrote 10 stories" in res.stdout
    assert len(out.read_text().rstrip("\n").split("\n\n")) == 10


def test_token_data_split_and_validation_file():
    text = "abc def. " * 200
    d = build_token_data(text, block_size=16)
    assert len(d.train) + len(d.val) == len(text)
    d2 = build_token_data(text, "abc xyz " * 10, block_size=16)
    assert d2.dropped_val_chars == 30  # x, y, z are not in the training vocabulary


def test_training_reads_a_datasets_source(jsonl, tmp_path):
    from microdllm.train import train
    from microdllm.train_config import TrainConfig

    cfg = TrainConfig(out=str(tmp_path / "run"), dataset=str(jsonl), dataset_stories=51, preset="test",
                      block_size=16, batch_size=2, max_iters=2, eval_interval=2, save_interval=2,
                      eval_windows=2, eval_timesteps=1, progress=False)
    trainer = train(cfg)
    chars = trainer.tokenizer.chars  # the vocabulary comes from the cleaned stories
    assert trainer.step == 2 and "'" in chars and "\u2019" not in chars and "\u00e2" not in chars
