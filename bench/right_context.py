"""Does a block model read the text to the right of a mask, inside its block? (issue #21, the long road)

    python -m bench.right_context checkpoints/tinystories-tiny-block16 checkpoints/tinystories-tiny --block 8

For characters of validation text (positions 120, 129, ... of 200-character windows), their bits under
three views, each with the text before the block in view:
  - "rest of block": only this character masked; the rest of its block in view (what a one-character-a-step
    reveal has when the character comes late);
  - "block from it masked": it and everything after it masked (a draft: nothing to the right);
  - "left only": an autoregressive reading (a clean-causal model's causal half; a full-sequence model:
    everything from it masked, as above).
A model that reads the right context scores far fewer bits in the first view than in the others.
A full-sequence model is given the same view (everything past the block masked), at time 0.4.
"""
from __future__ import annotations

import argparse
import json
import random

import torch

from microdllm.checkpoint import load_checkpoint
from microdllm.data import read_text_files
from microdllm.evaluate import LN2


def windows(text: str, n: int, length: int = 200, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [text[s:s + length] for s in (rng.randrange(0, len(text) - length - 1) for _ in range(n))]


@torch.inference_mode()
def bits(model, ids: torch.Tensor, pos: int, block: int, mask_id: int) -> dict[str, float]:
    """-log2 p(ids[pos]) under each view (see the module's docstring)."""
    end = (pos // block + 1) * block                      # where its block ends
    rest = ids.clone()
    rest[pos] = mask_id
    rest[end - (0 if model.config.attn_block else 1):] = mask_id   # a full-sequence model: what a block input reads
    from_it = ids.clone()
    from_it[pos:] = mask_id
    if model.config.attn_block:
        from_it[end - 1:end] = ids[end - 1:end]          # with shift the block's last character is never masked
        one, left = model.forward_pair(rest[None], ids[None], block, with_clean=True)
        rows = {"rest of block": one[0, pos], "block from it masked": model.forward_pair(from_it[None], ids[None], block)[0, pos]}
        rows["left only"] = left[0, pos] if model.config.clean_causal else rows["block from it masked"]
    else:
        t = torch.tensor([round(0.4 * model.config.timesteps)]) if model.config.time_embedding else None
        rows = {"rest of block": model(rest[None], t)[0, pos], "block from it masked": model(from_it[None], t)[0, pos]}
        rows["left only"] = rows["block from it masked"]
    return {k: -float(r.float().log_softmax(-1)[ids[pos]]) / LN2 for k, r in rows.items()}


def measure(path: str, texts: list[str], block: int) -> dict:
    ck = load_checkpoint(path)
    totals, count = {}, 0
    for text in texts:
        ids = torch.tensor(ck.tokenizer.encode(ck.tokenizer.clean(text)))
        for pos in range(120, min(len(ids), 200), 9):
            for k, v in bits(ck.model, ids, pos, block, ck.tokenizer.mask_id).items():
                totals[k] = totals.get(k, 0.0) + v
            count += 1
    return {"checkpoint": path, "block": block, "characters": count, **{k: v / count for k, v in totals.items()}}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--block", type=int, default=8)
    p.add_argument("--n", type=int, default=40, help="validation windows")
    p.add_argument("--data", default="../shared/data/tinystories_valid.txt")
    p.add_argument("--json")
    args = p.parse_args(argv)
    texts = windows(read_text_files([args.data]), args.n)
    rows = [measure(path, texts, args.block) for path in args.checkpoints]
    print(f"| checkpoint | rest of block in view | block from it masked | left only |  (bits/char, B = {args.block})")
    for r in rows:
        print(f"| {r['checkpoint']} | {r['rest of block']:.3f} | {r['block from it masked']:.3f} | {r['left only']:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": args.n, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
