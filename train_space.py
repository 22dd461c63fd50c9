"""One command from nothing to a published micro-dLLM: data, training, evaluation, model card, Hub.

    python train_space.py                                  # the bundled full-sequence model's recipe (CPU is fine)
    python train_space.py --recipe micro                   # the full original-size model (use a GPU)
    python train_space.py --recipe micro --push-to-hub you/micro-dllm   # then: MICRODLLM_CHECKPOINT=you/micro-dllm python app.py
    python train_space.py --recipe tiny-block              # the bundled blocks of 2: the AR baseline, then blocks of 2 from it
    python train_space.py --recipe micro-block             # the same two stages at the original's size (use a GPU)
    python train_space.py --recipe tiny-block16            # the bundled default: blocks of 16 from random weights (5 h, 2 cores)
    python train_space.py --recipe micro-block16           # the same two stages at the original's size (use a GPU)

Runs on whatever is present (CUDA, MPS or CPU) and under `torchrun --nproc_per_node K`.
Data: local files with --train-file/--val-file, else TinyStories streamed from the Hub.
Needs HF_TOKEN (or `hf auth login`) to push.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from microdllm.atomic import atomic_write
from microdllm.card import describe_checkpoint
from microdllm.checkpoint import STATE_JSON
from microdllm.data import DEFAULT_DATASET, stream_stories, write_stories
from microdllm.devices import pick_device
from microdllm.evaluate import headline_metric
from microdllm.hub import push_to_hub
from microdllm.train import train
from microdllm.train_config import TrainConfig

# The recipes, chosen by measurement (docs/experiments.md); each is one or more stages, a stage starting
# from the one before it. `tiny` is the bundled full-sequence model's: 11500 steps of 32 x 256 characters.
# The bundled run was trained in legs (2000, then resumed to 3700, 7200, 10000 and 11500), each resume
# stretching the cosine LR to the new end (a warm restart); this runs it in one leg. `tiny-block` is the
# bundled block model's: the autoregressive baseline (2000 steps), then block diffusion with B = 2 from
# its weights (the bundled run: legs to 400, 1000 and 1600 steps; here one leg of 1600). `micro-block`
# is the same two stages at the original's size, not yet measured at that size (no GPU was at hand).
# `tiny-block16` is the bundled default's (docs/experiments.md 6i, 6k, 6l): blocks of 16 from random weights, the
# clean half causal and read as an autoregressive model (the verifier of draft and verify), over a mixture of
# block sizes, in two stages: stage 1 with the next-character loss at weight 1 (the bundled run stopped at step
# 3000 of an 8000-step cosine, its rates at 0.73 of their peak, where its causal half had stopped improving:
# here a 3000-step decay to 0.73), stage 2 that loss at weight 4 from there, a cosine over 5000 steps to stage
# 1's floor (~2.2 s a step on two idle CPU cores: 1.8 h for stage 1, 3 h for stage 2; the bundled run, beside
# other work, took longer). A block half grown from an autoregressive model reads little to the right of a mask
# (docs/experiments.md 6i), so it does not start there.
AR_STAGE = dict(causal=True, time_embedding=False, optimizer="muon", muon_lr=0.02, lr=2e-3, batch_size=32,
                warmup_iters=100, eval_interval=100, save_interval=100)
BLOCK_STAGE = dict(shift=True, time_embedding=False, attn_block=2, mask_range=[0.3, 0.8], schedule="linear",
                   loss="masked_ce", optimizer="muon", muon_lr=0.01, lr=1e-3, batch_size=16, warmup_iters=50,
                   eval_interval=50, save_interval=50)
LARGE_BLOCK_STAGE = dict(BLOCK_STAGE, attn_block=16, block_sizes=[4, 8, 16, 16], clean_causal=True, ar_weight=1.0,
                         mask_range=[0.1, 1.0], muon_lr=0.02, lr=2e-3, warmup_iters=100, eval_interval=200,
                         eval_timesteps=4)
LARGE_BLOCK_STAGES = (dict(LARGE_BLOCK_STAGE, max_iters=3000, min_lr_ratio=0.73),
                      dict(LARGE_BLOCK_STAGE, ar_weight=4.0, muon_lr=0.0146, lr=1.46e-3, warmup_iters=20,
                           max_iters=5000, min_lr_ratio=0.137))
RECIPES = {
    "tiny": (TrainConfig(preset="tiny", optimizer="muon", muon_lr=0.02, lr=2e-3, batch_size=32, max_iters=11500,
                         warmup_iters=100, eval_interval=100, save_interval=100),),
    "micro": (TrainConfig(preset="micro", optimizer="muon", muon_lr=0.02, lr=2e-3, batch_size=64, max_iters=5000,
                          warmup_iters=200, eval_interval=250, save_interval=500),),
    "tiny-block": (TrainConfig(preset="tiny", max_iters=2000, **AR_STAGE),
                   TrainConfig(preset="tiny", max_iters=1600, **BLOCK_STAGE)),
    "micro-block": (TrainConfig(preset="micro", max_iters=5000, **AR_STAGE),
                    TrainConfig(preset="micro", max_iters=2000, **BLOCK_STAGE)),
}
RECIPES["tiny-block16"] = tuple(TrainConfig(preset="tiny", **s) for s in LARGE_BLOCK_STAGES)
RECIPES["micro-block16"] = tuple(TrainConfig(preset="micro", **s) for s in LARGE_BLOCK_STAGES)


def stage_dirs(out: str, stages: int) -> list[str]:
    """Where each stage writes: the last one to `out`, an earlier one k to `out`-stage<k+1> beside it."""
    return [f"{out}-stage{k + 1}" for k in range(stages - 1)] + [out]


def prepare_data(args) -> tuple[list[str], str | None]:
    if args.train_file:
        return [args.train_file], args.val_file
    data_dir = Path(args.out).parent / "data"
    train_path, val_path = data_dir / "tinystories_train.txt", data_dir / "tinystories_valid.txt"
    if not train_path.exists():
        print(f"streaming {args.num_stories} stories from {args.dataset} ...", flush=True)
        write_stories(stream_stories(args.dataset, split="train", num_stories=args.num_stories, seed=args.seed), train_path)
        write_stories(stream_stories(args.dataset, split="validation", num_stories=max(200, args.num_stories // 20),
                                     seed=args.seed), val_path)
    return [str(train_path)], str(val_path)


def _write_val(trainer, out) -> str:
    """The held-out 10% as a file, when no validation file was given."""
    return str(atomic_write(Path(out) / "validation.txt", trainer.tokenizer.decode(trainer.data.val.tolist())))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", choices=list(RECIPES), default="tiny")
    p.add_argument("--out", default=None, help="checkpoint directory (default: runs/<recipe>)")
    p.add_argument("--train-file")
    p.add_argument("--val-file")
    p.add_argument("--dataset", default=DEFAULT_DATASET)
    p.add_argument("--num-stories", type=int, default=20000)
    p.add_argument("--max-iters", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--eval-windows", type=int, default=256, help="validation windows for the final evaluation")
    p.add_argument("--resume", action="store_true", help="continue from the training state in --out")
    p.add_argument("--push-to-hub", metavar="REPO_ID")
    p.add_argument("--private", action="store_true")
    args = p.parse_args(argv)
    args.out = args.out or f"runs/{args.recipe}"
    return args


def _resume_from(args, out: str) -> str | None:
    """`out` when --resume is given and it holds a training state (a finished stage then does nothing)."""
    if not args.resume:
        return None
    if (Path(out) / STATE_JSON).exists():
        return out
    print(f"no training state in {out}: starting from scratch", flush=True)
    return None


def main(argv=None) -> int:
    args = parse_args(argv)
    device = pick_device()
    print(f"device: {device}", flush=True)
    data, val = prepare_data(args)
    overrides = {k: v for k, v in (("max_iters", args.max_iters), ("batch_size", args.batch_size)) if v}
    stages, before = RECIPES[args.recipe], None
    for k, (stage, out) in enumerate(zip(stages, stage_dirs(args.out, len(stages)))):
        if len(stages) > 1:
            print(f"stage {k + 1} of {len(stages)}: {out}" + (f", from {before}" if before else ""), flush=True)
        cfg = dataclasses.replace(stage, out=out, data=data, val_data=val, seed=args.seed, init_from=before,
                                  **overrides)
        trainer = train(cfg, resume=_resume_from(args, out))
        before = out
    if int(os.environ.get("RANK", "0")) != 0:
        return 0

    val_file = val or _write_val(trainer, args.out)
    metrics = describe_checkpoint(args.out, val_file, title=f"micro-dLLM {args.recipe}", hardware=str(device),
                                  windows=args.eval_windows)
    key, value = headline_metric(metrics)
    print(f"validation {key} {value:.4f} bits/char" + ("" if key == "bpc" else " (upper bound)"))
    if args.push_to_hub:
        url = push_to_hub(args.out, args.push_to_hub, token=os.environ.get("HF_TOKEN"), private=args.private)
        print(f"pushed to {url}\nrun the app on it: MICRODLLM_CHECKPOINT={args.push_to_hub} python app.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
