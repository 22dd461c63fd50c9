"""Teach the drafter the verifier's marginals (issue #21: three characters an evaluation).

    python -m bench.distill_drafter checkpoints/tinystories-tiny-block16 --out runs/distill-a --steps 400

bench.draft_ceiling showed what holds a merged draft back: the network's window, made in one pass from
masks, keeps 2.61 characters a round at drafts of 4 where the verifier's exact marginals would keep 3.45.
Training on text teaches the window those marginals only through one-hot targets: the character that
happened to come 3 or 4 places on, a draw from a distribution of 2-3 bits. This distils them instead.

Each step cuts rows of training text. The frozen starting model (the teacher: its causal half, the
verifier) gives, at every 5th position a (an anchor), the marginals m_0 .. m_{W-1} of its own next W
characters: m_0 its distribution there, m_j averaged over `--paths` continuations it writes (one
evaluation of every row's anchors and paths at once, a tree of attention, per character; Rao-Blackwellised
as in draft_ceiling). The student reads each row as the sampler's windows: blocks of W = 5 in the x_t
(+) x_0 pass, every block masked but for the character its first input reads (the text before the
anchor), exactly a merged round's window. Its loss is the cross-entropy of its window against the
marginals, plus `--keep` times the cross-entropy of its causal half against the teacher's (so the
verifier, whose text the sampler writes, stays where it was).

It writes a checkpoint (weights + config) to --out every --save steps; measure it with
`python -m bench.draft_ceiling CHECKPOINT --network-only --own-text --drafter OUT` and the sampler itself
(`sample-eval --checkpoint OUT`). `--measure CKPT ...` only prints each network's window KL to CHECKPOINT's
marginals. Measured and dropped (the KL fell a tenth, the drafts kept no more): docs/experiments.md 6k.
"""
from __future__ import annotations

import argparse
import copy
import json
import time

import torch

from microdllm.checkpoint import load_checkpoint, save_checkpoint
from microdllm.data import read_text_files, sample_windows, validation_windows
from microdllm.evaluate import evaluate_blocks
from microdllm.model import KVCache
from microdllm.remasking import target_distribution
from microdllm.sampling import SamplerConfig

TEXT = SamplerConfig(temperature=1.0, top_p=1.0, top_k=0)     # the distributions as they are: no T, no filter


def tree_mask(L: int, anchors: torch.Tensor, paths: int, steps: int) -> torch.Tensor:
    """Attention over [the row's L + 1 inputs, then `steps` rounds of one input per (anchor, path)]: the
    row is causal; the input a path adds in round j sits at position a + 1 + j and sees the row's inputs
    0 .. a (the text before the anchor) and its own path's inputs up to itself."""
    n_row, A = L + 1, len(anchors)
    per_round = A * paths
    n = n_row + steps * per_round
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[:n_row, :n_row] = torch.ones(n_row, n_row, dtype=torch.bool).tril()
    anchor_of = anchors.repeat_interleave(paths)                         # per path: its anchor
    for j in range(steps):
        q = n_row + j * per_round + torch.arange(per_round)
        mask[q[:, None], torch.arange(n_row)[None]] = torch.arange(n_row)[None] <= anchor_of[:, None]
        for i in range(j + 1):                                           # its own path's inputs so far
            mask[q, n_row + i * per_round + torch.arange(per_round)] = True
    return mask


@torch.no_grad()
def teacher_marginals(model, rows: torch.Tensor, anchors: torch.Tensor, window: int, paths: int,
                      mask_id: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's next-character distributions at every position of each row (R, L, V), and its
    marginals at each anchor's next `window` characters (R, A, window, V), at T 1 without filtering."""
    R, L = rows.shape
    A = len(anchors)
    steps = window - 1
    full = tree_mask(L, anchors, paths, steps)
    row_inputs = model.inputs(rows)                                      # (R, L + 1, C)
    pos_row = torch.arange(L + 1)
    pos_path = [anchors.repeat_interleave(paths) + 1 + j for j in range(steps)]

    # model._run with our own mask and positions: the tree is no layout the model's public passes make
    cache = KVCache(model.config.n_layer)                               # the row's keys, then each round's
    logits = model._run(row_inputs, mask=full[:L + 1, :L + 1], positions=pos_row, cache=cache, keep=L + 1)
    p = target_distribution(logits, TEXT, mask_id)
    cache.length += L + 1
    marg = [p[:, anchors]]                                               # m_0: input a predicts character a
    cur = p[:, anchors].repeat_interleave(paths, 1)                      # (R, A * paths, V)
    for j in range(steps):
        drawn = torch.multinomial(cur.reshape(-1, cur.size(-1)), 1, generator=g).view(R, -1)
        q0 = cache.length
        out = model._run(model.token_emb(drawn), mask=full[q0:q0 + A * paths, :q0 + A * paths],
                         positions=pos_path[j], cache=cache, keep=A * paths)
        cache.length += A * paths
        cur = target_distribution(out, TEXT, mask_id)
        marg.append(cur.view(R, A, paths, -1).mean(2))
    return p[:, :L], torch.stack(marg, 2)


def windows_as_drafted(rows: torch.Tensor, window: int, mask_id: int) -> torch.Tensor:
    """The noisy half for blocks of `window`: every character masked but the last of each block, which
    the next block's first input reads (shift): each block is then a merged round's draft window."""
    keep = (torch.arange(rows.size(1)) % window) == window - 1
    return rows.masked_fill(~keep, mask_id)


def soft_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -(target * logits.float().log_softmax(-1)).sum(-1).mean()


@torch.no_grad()
def window_kl(model, rows: torch.Tensor, anchors: torch.Tensor, m: torch.Tensor, mask_id: int) -> list[float]:
    """KL(m_j || the network's window at j) in nats, by position j of the window (mean over rows and
    anchors): how far the drafter is from the marginals it should draft from. Anchors: multiples of W."""
    W = m.size(2)
    drafted = model(windows_as_drafted(rows, W, mask_id), clean=rows, block=W)[:, anchors[:, None] + torch.arange(W)]
    log_q = target_distribution(drafted, TEXT, mask_id).log()
    terms = torch.where(m > 0, m * (m.clamp_min(1e-30).log() - log_q), torch.zeros(()))
    return terms.sum(-1).mean((0, 1)).tolist()


def distill(ck, args, kl_rows: torch.Tensor, anchors: torch.Tensor, kl_m: torch.Tensor) -> None:
    """Train a copy of the checkpoint's network (module docstring), logging to {out}.log.jsonl."""
    tok, W = ck.tokenizer, args.window
    student, teacher = ck.model.train(), copy.deepcopy(ck.model).eval()
    for q in teacher.parameters():
        q.requires_grad_(False)
    data = torch.tensor(tok.encode(tok.clean(read_text_files([args.data]))))
    val, _ = validation_windows(args.val_data, tok, 32, 256)
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(args.seed)
    at = (anchors[:, None] + torch.arange(W)).flatten()                    # characters the windows predict

    def validate(step):
        r = evaluate_blocks(student.eval(), val, ck.schedule, tok.mask_id, timesteps_per_window=4, block=16)
        kl = window_kl(student, kl_rows, anchors, kl_m, tok.mask_id)
        student.train()
        return {"step": step, "nelbo16": r["nelbo_bpc"], "ar_bpc": r["ar_bpc"], "window_kl": kl}

    with open(f"{args.out}.log.jsonl", "a") as log:
        print(json.dumps(validate(0)), file=log, flush=True)
        t0 = time.time()
        for step in range(1, args.steps + 1):
            rows = sample_windows(data, args.rows, args.length, g)
            p_clean, m = teacher_marginals(teacher, rows, anchors, W, args.paths, tok.mask_id, g)
            drafted, causal = student(windows_as_drafted(rows, W, tok.mask_id), clean=rows, block=W, with_clean=True)
            draft_loss, keep_loss = soft_ce(drafted[:, at], m.flatten(1, 2)), soft_ce(causal, p_clean)
            opt.zero_grad(set_to_none=True)
            ((draft_loss + args.keep * keep_loss) / (1 + args.keep)).backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            opt.step()
            print(json.dumps({"step": step, "draft_ce": draft_loss.item(), "causal_ce": keep_loss.item(),
                              "s": round(time.time() - t0, 1)}), file=log, flush=True)
            if step % args.save == 0 or step == args.steps:
                save_checkpoint(args.out, student, tok, ck.config["diffusion"]["schedule"],
                                training={"step": step, "distilled_from": args.checkpoint, **vars(args)})
            if step % args.eval == 0:
                print(json.dumps(validate(step)), file=log, flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--out", help="where the distilled checkpoint goes (training)")
    p.add_argument("--measure", nargs="+", metavar="CKPT",
                   help="no training: each checkpoint's window KL to CHECKPOINT's marginals, by position")
    p.add_argument("--data", default="../shared/data/tinystories_train.txt")
    p.add_argument("--val-data", default="../shared/data/tinystories_valid.txt")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--length", type=int, default=160)
    p.add_argument("--window", type=int, default=5, help="the sampler's draft window (verifier's position + drafts)")
    p.add_argument("--first-anchor", type=int, default=20, help="no window behind less text than this")
    p.add_argument("--paths", type=int, default=8)
    p.add_argument("--keep", type=float, default=1.0, help="weight of the causal half's distillation")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--save", type=int, default=50)
    p.add_argument("--eval", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not (args.out or args.measure):
        raise SystemExit("--out DIR to distil, or --measure CKPT ... to compare windows")
    ck = load_checkpoint(args.checkpoint)
    anchors = torch.arange(0, args.length - args.window + 1, args.window)
    anchors = anchors[anchors >= args.first_anchor]                       # block starts: window anchors
    kl_rows, _ = validation_windows(args.val_data, ck.tokenizer, 8, args.length, seed=5)
    with torch.no_grad():                                                  # the drafter's own check
        _, kl_m = teacher_marginals(ck.model.eval(), kl_rows, anchors, args.window, 64, ck.tokenizer.mask_id,
                                    torch.Generator().manual_seed(1))
    if not args.measure:
        return distill(ck, args, kl_rows, anchors, kl_m)
    for path in args.measure:
        kl = window_kl(load_checkpoint(path).model.eval(), kl_rows, anchors, kl_m, ck.tokenizer.mask_id)
        print(f"{path}: KL to {args.checkpoint}'s marginals (nats), positions 0..{args.window - 1}:",
              " ".join(f"{v:.3f}" for v in kl))


if __name__ == "__main__":
    main()
