"""Sample quality metrics (`microdllm.quality`) and `python -m microdllm sample-eval` end to end."""
import math
from types import SimpleNamespace

import pytest
import torch
from helpers import STORY, tiny_model
from test_cli import run

from microdllm import quality
from microdllm.diffusion import CosineSchedule
from microdllm.sampling import DEFAULT
from microdllm.tokenizer import CharTokenizer


def test_words_drop_a_last_word_cut_off_by_the_generation_length():
    assert quality.words("Tom's dog ran, fast!") == ["tom's", "dog", "ran", "fast"]
    assert quality.complete_words("the dog ra") == ["the", "dog"]
    assert quality.complete_words("the dog ran.") == ["the", "dog", "ran"]


def test_word_share_and_distinct_2():
    known = {"the", "dog", "ran"}
    assert quality.word_share(["the dog ran. ", "the dgo ran "], known) == pytest.approx(5 / 6)
    # bigrams: (the dog) (dog the) (the dog) | (a b) -> 3 unique of 4
    assert quality.distinct_n(["the dog the dog ", "a b "], 2) == pytest.approx(3 / 4)
    assert quality.word_share([], known) == 0 and quality.distinct_n([""], 2) == 0


def test_real_stories_are_cut_at_a_word_boundary():
    opening, rest = quality.split_reference(STORY, 30)
    assert opening == STORY[:len(opening)] and opening.endswith(" ") and len(opening) >= 40
    assert rest == STORY[len(opening):len(opening) + 30] and rest[0].isalpha()
    assert quality.split_reference("x" * 50, 5) == ("x" * 40, "xxxxx")   # no space: cut at the opening length


def test_targets_met_at_the_bounds():
    at_bounds = {"word_share": 0.95, "distinct_2": 0.5, "gen_over_real": 1.15}
    assert quality.targets_met(at_bounds) == {"word_share": True, "distinct_2": True, "gen_over_real": True}
    missed = {"word_share": 0.949, "distinct_2": 0.499, "gen_over_real": 1.151}
    assert not any(quality.targets_met(missed).values())
    assert quality.targets_met({"word_share": 1.0}) == {"word_share": True}   # only what was measured


def test_ar_bits_per_char_scores_only_the_text_given_its_prefix():
    ar, tok = tiny_model(causal=True, time_embedding=False)
    with torch.no_grad():
        ar.lm_head.weight.zero_()                      # uniform predictions: log2(V) bits per character
    bits, n = quality.ar_bits_per_char(ar, tok, "Once upon", " a time")
    assert n == len(" a time") and bits == pytest.approx(n * math.log2(tok.vocab_size), rel=1e-5)

    ar, tok = tiny_model(causal=True, time_embedding=False, seed=3)
    bits, n = quality.ar_bits_per_char(ar, tok, "Lily", " saw a dog")
    ids = torch.tensor([tok.encode("Lily saw a dog")])
    with torch.no_grad():
        logp = ar(ids)[0, :-1].log_softmax(-1).gather(-1, ids[0, 1:, None]).squeeze(-1)
    assert n == 10 and bits == pytest.approx(float(-logp[-10:].sum()) / math.log(2), rel=1e-5)


def test_sample_eval_reports_every_metric_and_the_targets():
    tok = CharTokenizer.from_text(STORY + "".join(quality.OPENINGS))
    model, _ = tiny_model(tok, block_size=128)
    ar, _ = tiny_model(tok, block_size=128, causal=True, time_embedding=False, seed=1)
    ck = SimpleNamespace(model=model, tokenizer=tok, schedule=CosineSchedule(), ngram=None)
    known = quality.vocabulary(STORY)
    refs = [STORY * 2] * 3
    cfg = DEFAULT.replace(gen_len=30, steps=4, polish=2)
    result = quality.sample_eval(ck, known, cfg, n=3, seed=0, ar=SimpleNamespace(model=ar, tokenizer=tok),
                                 reference_texts=refs)
    assert result["n"] == 3 and len(result["samples"]) == 3
    assert result["samples"][0].startswith(quality.OPENINGS[0]) and "_" not in result["samples"][0]
    assert 0 <= result["word_share"] <= 1 and 0 <= result["distinct_2"] <= 1
    assert 1 <= result["mean_nfe"] <= 4 + 2
    assert result["gen_bpc"] > 0 and result["real_bpc"] > 0
    assert result["gen_over_real"] == pytest.approx(result["gen_bpc"] / result["real_bpc"])
    assert result["real_word_share"] == 1.0
    assert set(result["targets_met"]) == {"word_share", "distinct_2", "gen_over_real"}
    # the same seeds write the same continuations
    again = quality.sample_eval(ck, known, cfg, n=3, seed=0)
    assert again["samples"] == result["samples"] and "gen_bpc" not in again


def test_sample_eval_command_on_the_bundled_models(tmp_path):
    words = tmp_path / "train.txt"
    words.write_text(STORY * 3)
    reference = tmp_path / "valid.txt"
    reference.write_text((STORY.strip("\n") * 2 + "\n\n") * 4)
    res = run("sample-eval", "--n", "2", "--gen-len", "40", "--words-from", words, "--reference", reference)
    assert res.returncode == 0, res.stderr
    assert "bundled: 2 continuations" in res.stdout
    for line in ("word_share", "distinct_2", "gen_bpc", "real_bpc", "gen_over_real"):
        assert line in res.stdout
    assert "target >= 0.95" in res.stdout and "target <= 1.15" in res.stdout
    missing = run("sample-eval", "--n", "1", "--words-from", tmp_path / "nope.txt")
    assert missing.returncode == 2 and "pass --words-from FILE" in missing.stderr and "Traceback" not in missing.stderr
