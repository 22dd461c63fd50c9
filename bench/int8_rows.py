"""int8 weights with a fixed input scale against a scale per call, and float (int8.py, docs/performance.md).

Run from the repository root:

    python -m bench.int8_rows [--checkpoint checkpoints/tinystories-tiny-block16] [--openings 16]
        [--characters 200] [--reference ../shared/data/tinystories_valid.txt --windows 32] [--json out.json]

For each way of serving the checkpoint: float (as served, packed), int8 as served (int8.py: each layer's
input at a scale calibrated once), and int8 with the input's scale taken per call (PyTorch's dynamic
quantisation, served until stop 22; here only to compare):

  - **greedy partings**: after each of the race's openings, greedy draft and verify and greedy left to right
    at the default settings; on how many openings the two texts part, and at which character. They are
    the same model (the verifier is the left-to-right half), so any parting is a row of a round computed
    differently from the same row alone;
  - **bits per character** of the clean (left-to-right) half on `windows` windows of the reference text, the
    float model's loss against each int8's.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import warnings

import torch
import torch.nn.functional as F

from microdllm.checkpoint import load_checkpoint
from microdllm.sampling import defaults_for, generate
from microdllm.serving import serve_checkpoint
from microdllm.speed import race_prompt


def per_call_scale(ck):
    """The checkpoint with PyTorch's dynamic int8 Linear layers (an input's scale from its own range)."""
    from torch.ao.quantization import quantize_dynamic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = quantize_dynamic(copy.deepcopy(ck.model).eval(), {torch.nn.Linear}, dtype=torch.qint8)
    return dataclasses.replace(ck, model=model)


def partings(ck, openings: int, characters: int) -> list[int | None]:
    """For each opening, the first character at which greedy draft and verify and left to right part (None: never)."""
    cfg = defaults_for(ck.model_config).replace(temperature=0, gen_len=characters)
    out = []
    for i in range(openings):
        prompt = race_prompt(i)
        verify = generate(ck.model, ck.tokenizer, prompt, cfg, ngram=ck.ngram).text
        alone = generate(ck.model, ck.tokenizer, prompt, cfg.replace(mode="left-to-right")).text
        out.append(next((j - len(prompt) for j, (a, b) in enumerate(zip(verify, alone)) if a != b), None))
    return out


def bits_per_char(ck, text: str, windows: int) -> float:
    """The clean half's loss (its plain forward: left to right) over `windows` windows of the text."""
    L = ck.model.config.block_size
    ids = torch.tensor(ck.tokenizer.encode(ck.tokenizer.clean(text))[:windows * L]).view(-1, L)
    with torch.inference_mode():
        return F.cross_entropy(ck.model(ids).flatten(0, 1), ids.flatten()).item() / math.log(2)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="checkpoints/tinystories-tiny-block16")
    p.add_argument("--openings", type=int, default=16)
    p.add_argument("--characters", type=int, default=200)
    p.add_argument("--reference", help="held-out text for bits per character (e.g. tinystories_valid.txt)")
    p.add_argument("--windows", type=int, default=32)
    p.add_argument("--json")
    args = p.parse_args(argv)
    loaded = load_checkpoint(args.checkpoint)
    served = {"float": serve_checkpoint(loaded), "int8 (a fixed input scale, served)": serve_checkpoint(loaded, int8=True),
              "int8 (a scale per call)": per_call_scale(loaded)}
    text = open(args.reference, encoding="utf-8").read() if args.reference else None
    result = {"checkpoint": args.checkpoint, "openings": args.openings, "characters": args.characters, "rows": {}}
    for name, ck in served.items():
        parts = partings(ck, args.openings, args.characters)
        row = {"parted": sum(p is not None for p in parts), "at": parts}
        if text:
            row["bits_per_char"] = bits_per_char(ck, text, args.windows)
        result["rows"][name] = row
        print(f"{name}: parted on {row['parted']} of {args.openings}, at {[p for p in parts if p is not None]}"
              + (f"; {row['bits_per_char']:.4f} bits/char" if text else ""), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
