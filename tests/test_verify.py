"""Draft and verify (sampling/verify.py) and the clean-causal block model it runs on."""
from __future__ import annotations

import pytest
import torch
from helpers import story_text, tiny_model, train_clean_causal

from microdllm.checkpoint import load_checkpoint
from microdllm.config import get_preset
from microdllm.diffusion import corrupt_blocks, get_schedule
from microdllm.model import KVCache
from microdllm.remasking import target_distribution
from microdllm.sampling import SamplerConfig, SamplingError, denoise, generate
from microdllm.sampling.draft import Draft, likeliest_ends, likeliest_tree, speculative, walk
from microdllm.train import Trainer
from microdllm.train_config import TrainConfig

CLEAN_CAUSAL = dict(time_embedding=False, shift=True, attn_block=8, clean_causal=True)
GREEDY = dict(gen_len=40, temperature=0.0, polish=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A test-size clean-causal model trained a little on a repeated story, so that its drafts are
    sometimes right: every path of a round (none, some or all of a draft kept) is taken."""
    out = tmp_path_factory.mktemp("verify")
    trainer = train_clean_causal(out)
    return trainer.model.eval(), trainer.tokenizer, out / "run"


def reference_greedy(model, tok, prompt: str, n: int) -> str:
    """The causal half's greedy text by the plain (uncached) forward, one character at a time."""
    ids = tok.encode(prompt)
    for _ in range(n):
        logits = model(torch.tensor([ids + [tok.mask_id]]))[0, len(ids)].clone()
        logits[tok.mask_id] = float("-inf")
        ids.append(int(logits.argmax()))
    return tok.decode(ids)


# ------------------------------------------------------------------------------------------- the model

def test_the_clean_half_is_the_plain_causal_forward_and_the_cache_agrees():
    model, tok = tiny_model(**CLEAN_CAUSAL)
    x = torch.randint(1, tok.vocab_size, (2, 30))
    noisy = x.masked_fill(torch.rand(x.shape) < 0.5, tok.mask_id)
    plain = model(x)
    _, clean = model.forward_pair(noisy, x, with_clean=True)
    assert torch.allclose(plain, clean, atol=1e-5)
    with torch.inference_mode():
        cache = KVCache(model.config.n_layer)
        assert torch.allclose(model.extend(x[:1], 12, cache, keep=12), plain[:1, :12], atol=1e-5)
        # a window at 12..20 against the cached text equals the same window computed with its prefix
        direct = model.extend(x[:1], 20, KVCache(model.config.n_layer), keep=12, window=12)[:, 12:]
        assert torch.allclose(model.extend(x[:1], 20, cache, window=12), direct, atol=1e-5)


def test_verify_and_draft_is_the_causal_half_plus_a_window_behind_it():
    model, tok = tiny_model(**CLEAN_CAUSAL)
    x = torch.randint(1, tok.vocab_size, (1, 24))
    with torch.inference_mode():
        cache = KVCache(model.config.n_layer)
        reads = torch.cat([torch.tensor([-1]), x[0, :15]])          # the start vector, then characters 0..14
        window = torch.cat([x[0, 14:15], torch.full((7,), tok.mask_id)])
        clean, (drafted,) = model.verify_and_draft(reads, cache, [(15, window)])
        assert cache.length == 16
        assert torch.allclose(clean, model(x)[0, :16], atol=1e-5)     # inputs 0..15: characters 0..15
        probe = x.clone()
        probe[0, 15:22] = tok.mask_id                                 # the window reads x[14], then masks
        expect = model.extend(probe, 23, KVCache(model.config.n_layer), keep=0, window=15)[0, 15:23]
        assert torch.allclose(drafted, expect, atol=1e-5)


def test_windows_anchored_along_the_draft_each_see_only_the_text_before_them():
    model, tok = tiny_model(**CLEAN_CAUSAL)
    x = torch.randint(1, tok.vocab_size, (1, 24))
    reads = torch.cat([torch.tensor([-1]), x[0, :15]])               # inputs 0..15
    windows = [(a, torch.cat([reads[a:a + 1], torch.full((w - 1,), tok.mask_id)])) for a, w in ((15, 5), (12, 4), (9, 6))]
    with torch.inference_mode():
        clean, rows = model.verify_and_draft(reads, KVCache(model.config.n_layer), windows)
        for (a, ids), got in zip(windows, rows):                      # each alone, its clean text ending at a
            cache = KVCache(model.config.n_layer)
            _, (alone,) = model.verify_and_draft(reads[:a + 1], cache, [(a, ids)])
            assert torch.allclose(got, alone, atol=1e-5)
    assert torch.allclose(clean, model(x)[0, :16], atol=1e-5)


def test_a_tree_of_clean_inputs_reads_each_path_as_the_causal_half_does_and_the_cache_keeps_one():
    # Inputs 0..10 read the start vector and characters 0..9 (a chain); behind input 10 (the root) a tree:
    # nodes a, b, c, d with parents root, a, root, c. Each node's row must be the plain causal forward of
    # its path, a window anchored at b must see root and a only, and after keeping the path c, d the
    # cache must read on as if c, d had been the text all along.
    model, tok = tiny_model(**CLEAN_CAUSAL)
    x = torch.randint(1, tok.vocab_size, (12,))
    nodes, parents = torch.randint(1, tok.vocab_size, (4,)), (-1, 0, -1, 2)
    reads = torch.cat([torch.tensor([-1]), x[:10], nodes])
    tree = list(range(-1, 10)) + [11 + p for p in parents]
    window = torch.cat([nodes[1:2], torch.full((3,), tok.mask_id)])

    def plain(chars):                      # the causal half's logits for the character after `chars`
        seq = torch.tensor([chars + chars[-1:]])
        return model(seq)[0, len(chars)]

    with torch.inference_mode():
        cache = KVCache(model.config.n_layer)
        logits, (rows,) = model.verify_and_draft(reads, cache, [(12, window)], parents=tree)
        text = x[:10].tolist()
        paths = [[0], [0, 1], [2], [2, 3]]
        for i, path in enumerate(paths):
            assert torch.allclose(logits[11 + i], plain(text + nodes[path].tolist()), atol=1e-5)
        chain = torch.cat([torch.tensor([-1]), x[:10], nodes[:2]])
        _, (alone,) = model.verify_and_draft(chain, KVCache(model.config.n_layer), [(12, window)])
        assert torch.allclose(rows, alone, atol=1e-5)
        cache.keep([10, 13, 14])                                       # root, c, d
        assert cache.length == 13
        after, _ = model.verify_and_draft(x[10:11], cache)
        assert torch.allclose(after[0], plain(text + nodes[[2, 3]].tolist() + [int(x[10])]), atol=1e-5)


def test_a_clean_causal_config_needs_a_block_and_training_checks_its_options(tmp_path):
    with pytest.raises(ValueError, match="attn_block"):
        get_preset("test", clean_causal=True)
    data = tmp_path / "s.txt"
    data.write_text(story_text(3000))
    for bad, message in ((dict(ar_weight=1.0, attn_block=4), "needs --clean-causal"),
                         (dict(complementary=True), "for block diffusion"),
                         (dict(ar_weight=-1.0, attn_block=4, clean_causal=True), ">= 0")):
        cfg = TrainConfig(out=str(tmp_path / "r"), data=[str(data)], preset="test", time_embedding=False, shift=True,
                          progress=False, **bad)
        with pytest.raises(ValueError, match=message):
            Trainer(cfg)


def test_complementary_masks_make_every_character_a_target_once():
    x0 = torch.randint(1, 20, (3, 32))
    xt, targets, u = corrupt_blocks(x0, 8, get_schedule("linear"), 0, shift=False, generator=torch.Generator().manual_seed(0),
                                    complementary=True)
    assert xt.shape == (6, 32) and torch.equal(targets[:3] ^ targets[3:], torch.ones(3, 32, dtype=torch.bool))
    assert torch.allclose(u[:3] + u[3:], torch.ones(3, 32, dtype=u.dtype))          # linear: a(u') = 1 - a(u)


def test_training_with_the_autoregressive_loss_reports_both_halves(trained):
    model, tok, run = trained
    import json
    val = json.loads((run / "config.json").read_text())["training"]["val"]
    assert val["ar_bpc"] > 0 and set(val["by_block"]) == {"4", "8"}


# ------------------------------------------------------------------------------------------- the sampler

@pytest.mark.parametrize("merge, outcomes, window, tree", [(True, 0, None, 0), (False, 0, None, 0), (True, 16, 4, 0),
                                                           (True, 2, 6, 0), (True, 2, 5, 8), (False, 0, 6, 12)])
def test_greedy_draft_and_verify_writes_exactly_the_left_to_right_text(trained, merge, outcomes, window, tree):
    model, tok, _ = trained
    for prompt in ("Once upon", "", "Lily saw a big"):
        l2r = list(denoise(model, tok, prompt, mode="left-to-right", **GREEDY))
        ver = list(denoise(model, tok, prompt, mode="verify", merge=merge, outcome_windows=outcomes,
                           draft_window=window, draft_tree=tree, **GREEDY))
        assert ver[-1].text == l2r[-1].text == reference_greedy(model, tok, prompt, 40)
        assert l2r[-1].nfe == 40 and ver[-1].done
    kept = [k for k, _ in ver[-1].accepted]
    assert max(kept) > 0, "the trained model's drafts are never kept: the test would not reach that path"


@pytest.mark.parametrize("tree", [0, 8])
def test_drafts_tied_by_the_ngram_still_write_exactly_the_verifiers_text(trained, tree):
    # Training wrote the text's n-gram beside the weights; drafts drawn with it (ngram.py) are kept more or
    # less often, but greedy text is the causal half's greedy text, and sampled text is reproducible.
    model, tok, run = trained
    ngram = load_checkpoint(run).ngram
    assert ngram is not None and ngram.vocab_size == tok.vocab_size
    tied = dict(mode="verify", outcome_windows=2, draft_window=5, draft_tree=tree, copula=1.0, ngram=ngram)
    for prompt in ("Once upon", "Lily saw a big"):
        assert generate(model, tok, prompt, **tied, **GREEDY).text == reference_greedy(model, tok, prompt, 40)
    sampled = dict(gen_len=40, temperature=0.9, top_p=0.9, polish=0, seed=4)
    a, b = generate(model, tok, "Once upon", **tied, **sampled), generate(model, tok, "Once upon", **tied, **sampled)
    assert a.text == b.text and max(k for k, _ in a.accepted) > 0


def test_merged_rounds_cost_one_evaluation_and_write_at_least_one_character(trained):
    model, tok, _ = trained
    states = list(denoise(model, tok, "Once upon", mode="verify", **GREEDY))
    for a, b in zip(states[1:], states[2:]):
        assert b.nfe == a.nfe + 1 and b.num_masked < a.num_masked
    last = states[-1]
    assert last.nfe < 40, "no round kept any of its draft"
    assert sum(k + 1 for k, _ in last.accepted) <= 40


def test_outcome_windows_give_every_round_a_draft_even_after_a_rejection(trained):
    model, tok, _ = trained
    kw = dict(GREEDY, mode="verify", draft_window=4)
    plain = generate(model, tok, "Once upon", outcome_windows=0, **kw)
    every = generate(model, tok, "Once upon", outcome_windows=3, **kw)
    assert every.text == plain.text
    assert any(k < d for k, d in plain.accepted) and len(plain.accepted) < plain.nfe - 2
    assert len(every.accepted) >= every.nfe - 2          # all but the first round (and a last lone character)
    assert every.nfe < plain.nfe
    assert every.positions_evaluated > plain.positions_evaluated


def test_states_show_the_draft_as_ghosts_and_the_rejected_drafts(trained):
    model, tok, _ = trained
    states = list(denoise(model, tok, "Once upon", mode="verify", **GREEDY))
    with_ghosts = [s for s in states if any(s.guesses)]
    assert with_ghosts and all(s.masked[i] for s in with_ghosts for i, g in enumerate(s.guesses) if g)
    rejected = [s for s in states if any(s.rejected)]
    assert rejected and all(s.phase == "verify" for s in rejected)
    unmerged = list(denoise(model, tok, "Once upon", mode="verify", merge=False, **GREEDY))
    assert {s.phase for s in unmerged[1:]} == {"draft", "verify"}
    drafts = [s for s in unmerged if s.phase == "draft"]
    assert all(not any(s.revealed) and any(s.guesses) for s in drafts)


def test_sampled_draft_and_verify_is_reproducible_and_follows_the_verifier(trained):
    model, tok, _ = trained
    kw = dict(gen_len=40, temperature=0.9, top_p=0.9, polish=0, mode="verify")
    a, b = generate(model, tok, "Once upon", seed=5, **kw), generate(model, tok, "Once upon", seed=5, **kw)
    assert a.text == b.text and a.tokens == b.tokens


@pytest.mark.parametrize("tree", [0, 6])
def test_each_written_character_carries_the_verifiers_own_confidence_and_rivals(trained, tree):
    # Whatever a round keeps, each character's confidence and rivals are the causal half's, reading the
    # text before it: what the plain causal forward of the finished text gives at its position.
    model, tok, _ = trained
    states = list(denoise(model, tok, "Once upon", mode="verify", gen_len=40, temperature=0.9, top_p=0.9, polish=0,
                          seed=3, draft_tree=tree, outcome_windows=tree))
    last = states[-1]
    with torch.inference_mode():
        probs = model(torch.tensor([last.tokens]))[0].softmax(-1)
    written = [c for s in states for c in s.candidates]
    assert [c.position for c in written] == list(range(len(tok.encode("Once upon")), len(last.tokens)))
    for c in written:
        token = last.tokens[c.position]
        assert c.written == tok.decode([token])
        assert last.confidence[c.position] == pytest.approx(float(probs[c.position, token]), abs=1e-4)
        best, p_best = c.top[0]
        assert p_best == pytest.approx(float(probs[c.position].index_fill(0, torch.tensor([tok.mask_id]), 0).max()), abs=1e-4)


def test_speculative_acceptance_gives_exactly_the_target_distribution():
    # one drafted character from q, kept with min(1, p/q), else redrawn from max(p - q, 0): the result ~ p
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([[0.0, 0.5, 0.3, 0.2], [0.0, 0.25, 0.25, 0.5]])
    q = torch.tensor([[0.0, 0.1, 0.6, 0.3]])
    counts = torch.zeros(4)
    for _ in range(20000):
        d = torch.multinomial(q[0], 1, generator=g)
        kept, char = speculative(Draft(d, q), p, g)
        counts[d if kept else char] += 1
    assert torch.allclose(counts / counts.sum(), p[0], atol=0.015)


def test_a_tree_walk_writes_exactly_the_verifiers_text_two_characters_deep():
    # The verifier draws at the root; it steps to a child while it draws one. Whatever the tree, the pair of
    # characters written (kept ones, then the drawn one) follows p(first) p(second | first).
    g = torch.Generator().manual_seed(0)
    first = torch.tensor([0.0, 0.5, 0.3, 0.2])
    second = {1: torch.tensor([0.0, 0.1, 0.2, 0.7]), 2: torch.tensor([0.0, 0.6, 0.2, 0.2])}
    tree = Draft(torch.tensor([1, 3, 2]), torch.zeros(2, 4), (-1, 0, -1))        # 1 -> 3, and 2
    p = torch.stack([first, second[1], torch.tensor([0.0, 0.0, 0.0, 1.0]), second[2]])   # rows by key
    counts = torch.zeros(4, 4)
    for _ in range(20000):
        key, char = walk(tree, p, g)
        path = tree.chars[tree.path(key)].tolist() + [char]
        if len(path) == 1:                                           # stopped at the root: draw the second
            path.append(int(torch.multinomial(second.get(char, first), 1, generator=g)))
        counts[path[0], path[1]] += 1
    expected = torch.zeros(4, 4)
    for a in (1, 2, 3):
        expected[a] = first[a] * second.get(a, first)
    assert torch.allclose(counts / counts.sum(), expected, atol=0.015)


def test_the_likeliest_tree_holds_the_likeliest_paths_parents_first():
    q = torch.tensor([[0.0, 0.6, 0.4, 0.0], [0.0, 0.0, 0.1, 0.9], [0.0, 0.5, 0.5, 0.0]])
    tree = likeliest_tree(q, 4)
    # path probabilities: 1 .6, 2 .4, 1-3 .54, 2-3 .36, 1-3-1 .27, 1-3-2 .27, 1-2 .06
    assert tree.chars.tolist() == [1, 3, 2, 3] and tree.parents == (-1, 0, -1, 2)
    assert tree.main_path() == [0, 1] and tree.path(4) == [2, 3] and tree.depth(4) == 2
    assert likeliest_tree(q, 1).chars.tolist() == [1] and len(likeliest_tree(q[:0], 5).chars) == 0
    # where a walk is likeliest to stop: the root (1 - .6 - .4 = 0), node 1 (.6 x .1), node 2 (.54),
    # node 3 (.4 x .1), node 4 (.36): the two likeliest, by key
    assert likeliest_ends(tree, 2) == [2, 4] and likeliest_ends(tree, 9) == [0, 1, 2, 3, 4]


def test_greedy_target_is_one_hot_on_the_best_character_never_the_mask():
    logits = torch.tensor([[5.0, 1.0, 2.0, 0.5]])
    t = target_distribution(logits, SamplerConfig(temperature=0.0), mask_id=0)
    assert t.tolist() == [[0.0, 0.0, 1.0, 0.0]]
    s = target_distribution(logits, SamplerConfig(temperature=1.0), mask_id=0)
    assert s[0, 0] == 0 and abs(float(s.sum()) - 1) < 1e-6


def test_verify_refuses_a_model_without_a_causal_half_and_text_after_a_mask():
    block, tok = tiny_model(time_embedding=False, shift=True, attn_block=4)
    with pytest.raises(SamplingError, match="clean half is causal"):
        list(denoise(block, tok, "Once", mode="verify", **GREEDY))
    model, tok = tiny_model(**CLEAN_CAUSAL)
    states = list(denoise(model, tok, "Once upon", steps=8, **GREEDY))
    holes = states[-1].__class__(**{**states[-1].to_dict(), "masked": tuple(i == 12 for i in range(len(states[-1].tokens))),
                                     "tokens": tuple(tok.mask_id if i == 12 else t for i, t in enumerate(states[-1].tokens))})
    with pytest.raises(SamplingError, match="only at the end"):
        list(denoise(model, tok, start=holes, mode="verify", **GREEDY))


def test_a_branch_continues_a_verified_run_from_any_step(trained):
    model, tok, _ = trained
    states = list(denoise(model, tok, "Once upon", mode="verify", **GREEDY))
    mid = states[len(states) // 2]
    branch = list(denoise(model, tok, start=mid, mode="verify", **GREEDY))
    assert branch[-1].text == states[-1].text and branch[0].step == mid.step


def test_block_diffusion_on_a_clean_causal_model_uses_its_window(trained):
    model, tok, _ = trained
    cached = list(denoise(model, tok, "Once upon", steps=8, remasking="low_confidence", threshold=None, **GREEDY))
    assert cached[-1].done and cached[-1].num_masked == 0
    assert cached[-1].nfe <= 40


def test_cli_verify_and_left_to_right_write_the_same_greedy_text(trained, capsys):
    import json

    from microdllm.cli import main

    _, _, run = trained
    texts = {}
    for flag in ("--verify", "--left-to-right", "--verify --no-merge", "--verify --draft-tree 6"):
        code = main(["generate", "--checkpoint", str(run), "--prompt", "Once upon", "--gen-len", "40",
                     "--temperature", "0", *flag.split(), "--json"])
        out = json.loads(capsys.readouterr().out)
        assert code == 0 and out["settings"]["mode"] == flag.split()[0].lstrip("-")
        texts[flag] = (out["text"], out["nfe"])
    assert out["settings"]["draft_tree"] == 6
    assert len({text for text, _ in texts.values()}) == 1
    assert texts["--left-to-right"][1] == 40 and texts["--verify"][1] < 40


def test_cli_verify_on_a_model_without_a_causal_half_is_one_line(capsys):
    from microdllm.cli import main

    code = main(["generate", "--checkpoint", "checkpoints/tinystories-tiny-block", "--verify", "--gen-len", "8"])
    err = capsys.readouterr().err
    assert code == 2 and "clean half is causal" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_outcome_windows_go_to_the_likeliest_ways_a_check_can_end():
    # The draft's own odds: character i passes with probability q_i(d_i), so k are kept with probability
    # q_1 ... q_k (1 - q_{k+1}). A sure draft's likeliest end is kept whole; an unsure one's, its first
    # character turned down. Every end gets a window when there is room for all.
    from microdllm.sampling.verify import _ends

    chars = torch.tensor([1, 2, 3])
    q = torch.zeros(3, 5)
    q[torch.arange(3), chars] = torch.tensor([0.9, 0.9, 0.9])     # ends: 0.1, 0.09, 0.081, whole 0.729
    assert _ends(Draft(chars, q), 1, 4) == [3, 0]
    q[torch.arange(3), chars] = torch.tensor([0.2, 0.9, 0.9])     # ends: 0.8, 0.02, 0.018, whole 0.162
    draft = Draft(chars, q)
    assert _ends(draft, 0, 4) == [0] and _ends(draft, 1, 4) == [3, 0]
    assert _ends(draft, 3, 4) == [3, 0, 1, 2] == _ends(draft, 9, 4)
    assert _ends(Draft(chars[:0], q[:0]), 2, 4) == [0]             # no draft: one window, from the text's end


def test_draft_ceiling_keeps_every_character_of_a_greedy_verifiers_path_and_none_of_a_wrong_one(trained):
    # bench.draft_ceiling: with a greedy verifier the exact marginals are its greedy path, so a draft drawn
    # from them is kept whole; a draft the verifier never writes keeps nothing; the network's own window
    # is the sampler's draft distribution (rows that sum to 1, never the mask).
    from bench.draft_ceiling import Verifier, expected_kept, network_window

    model, tok, _ = trained
    cfg = SamplerConfig(temperature=0.0)
    verifier, g = Verifier(model, cfg, tok.mask_id), torch.Generator().manual_seed(0)
    context = torch.tensor(tok.encode(story_text()[:30]))
    m = verifier.marginals(context, 5, paths=3, g=g)
    assert torch.equal(expected_kept(verifier, context, m, 4, g), torch.tensor([1.0, 2.0, 3.0, 4.0]))
    wrong = torch.zeros_like(m)
    wrong[torch.arange(5), m.argmax(-1) % (m.size(1) - 1) + 1] = 1.0      # never the mask (id 0)
    assert torch.equal(expected_kept(verifier, context, wrong, 4, g), torch.zeros(4))
    q = network_window(model, context, 5, tok.mask_id, cfg)
    assert q.shape == m.shape and torch.allclose(q.sum(-1), torch.ones(5)) and not q[:, tok.mask_id].any()


def test_draft_ceiling_drafts_with_another_network_for_the_same_verifier(trained):
    # --drafter: the verifier stays the checkpoint's; the window is the other network's. The same network
    # as drafter measures what it measures alone; an untrained one keeps fewer characters.
    import copy

    from bench.draft_ceiling import measure
    from microdllm.checkpoint import load_checkpoint

    ck = load_checkpoint(trained[2])
    texts = [story_text()[:40], story_text()[10:60]]
    alone = measure(ck, texts, 4, paths=2, draws=16, temperature=None, ceiling=False)
    same = measure(ck, texts, 4, paths=2, draws=16, temperature=None, ceiling=False, drafter=copy.deepcopy(ck.model))
    assert same["kept_network"] == alone["kept_network"]
    untrained, _ = tiny_model(ck.tokenizer, **CLEAN_CAUSAL)
    other = measure(ck, texts, 4, paths=2, draws=16, temperature=None, ceiling=False, drafter=untrained)
    assert other["kept_network"][-1] < alone["kept_network"][-1]
