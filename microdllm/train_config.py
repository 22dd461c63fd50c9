"""A training run's recipe: every option of `python -m microdllm train`, one field each.

cli.py builds the command's flags from these fields (their help, choices and whether a resumed run may
change them); train.py runs them. Measured recipes: train_space.py and docs/experiments.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from .config import MODEL_PRESETS
from .diffusion import SCHEDULES
from .optim import OPTIMIZERS

LOSSES = ("masked_ce", "elbo")          # masked_ce: the original's mean masked cross-entropy


def option(default, help: str, *, resumable: bool = False, **argparse_kw):
    """A TrainConfig field with the help text of its command-line flag (cli.py builds the flags from these).

    `resumable`: the option may change when a run is resumed (where to write, how long, logging);
    the recipe may not. Other keywords (choices, metavar) go to argparse as they are.
    """
    kw = {"default_factory": default} if callable(default) else {"default": default}
    return field(**kw, metadata={"help": help, "resumable": resumable, **argparse_kw})


@dataclass
class TrainConfig:
    out: str = option("runs/tiny", "checkpoint directory", resumable=True)
    data: list[str] = option(list, "training text file(s)")
    val_data: str | None = option(None, "validation text file (default: the last 10% of --data)")
    dataset: str | None = option(None, "Hugging Face dataset id or local json/parquet file, instead of --data")
    dataset_stories: int = option(2000, "stories to stream from --dataset")
    preset: str = option("tiny", f"one of: {', '.join(MODEL_PRESETS)}")
    n_layer: int | None = option(None, "override the preset")
    n_head: int | None = option(None, "override the preset")
    n_embd: int | None = option(None, "override the preset")
    block_size: int | None = option(None, "override the preset")
    time_embedding: bool = option(True, "a learned timestep embedding (on unless --no-time-embedding: MDLM)")
    causal: bool = option(False, "autoregressive baseline: causal attention, next-char loss")
    shift: bool = option(False, "predict each character from the position to its left, as a left-to-right "
                                "model does (see model.py)")
    init_from: str | None = option(None, "start from these weights (directory or Hub id), e.g. the "
                                         "autoregressive baseline with --shift: a diffusion model adapted from "
                                         "it (its preset and vocabulary are kept)", metavar="CHECKPOINT")
    attn_block: int | None = option(None, "block diffusion (BD3-LM): block-causal attention over blocks of this "
                                          "many characters, one noise level per block (use with --shift "
                                          "--no-time-embedding; from an autoregressive --init-from)", metavar="B")
    block_sizes: list[int] = option(list, "block diffusion: train one model over several block sizes, one drawn "
                                          "per step (the model serves --attn-block unless told another)",
                                    nargs="+", metavar="B")
    mask_range: list[float] = option(lambda: [0.0, 1.0], "block diffusion: each block's time u is drawn from "
                                                         "[LOW, HIGH] (BD3-LM's clipped schedule when narrower)",
                                     nargs=2, metavar=("LOW", "HIGH"))
    ar_weight: float = option(0.0, "block diffusion with --clean-causal: also train the clean half as the "
                                   "autoregressive model it is, loss (w * L_AR + L_block) / (1 + w) (TiDAR)",
                              metavar="W")
    complementary: bool = option(False, "block diffusion: each window twice per step, with masks m and 1 - m "
                                        "(Fast-dLLM v2), so every character is a target")
    clean_causal: bool = option(False, "block diffusion: the clean blocks attend causally, so the network's "
                                       "clean half is an autoregressive model (verifies drafts; see model.py)")
    schedule: str = option("cosine", "masking schedule", choices=tuple(SCHEDULES))
    loss: str = option("masked_ce", "masked_ce (the original's) or elbo", choices=LOSSES)
    stratified: bool = option(False, "low-discrepancy timesteps within a batch")
    optimizer: str = option("adamw", "adamw, or muon on the hidden matrices", choices=OPTIMIZERS)
    lr: float = option(3e-4, "AdamW learning rate (embeddings and head; everything for adamw)")
    muon_lr: float = option(0.02, "Muon learning rate")
    weight_decay: float = option(0.0, "weight decay")
    batch_size: int = option(64, "windows per step (per process)")
    max_iters: int = option(5000, "total optimisation steps", resumable=True)
    warmup_iters: int = option(100, "linear warmup steps")
    min_lr_ratio: float = option(0.1, "the cosine decay ends at this share of the learning rate")
    grad_clip: float = option(1.0, "gradient norm clip (0 = off)")
    eval_interval: int = option(250, "steps between validations", resumable=True)
    eval_windows: int = option(32, "validation windows")
    eval_timesteps: int = option(8, "stratified timesteps per validation window")
    save_interval: int = option(500, "steps between checkpoints", resumable=True)
    seed: int = option(1337, "seed of the weights and of every step's draws")
    device: str = option("auto", "auto (cuda, mps or cpu), or a torch device", resumable=True)
    threads: int | None = option(None, "torch CPU threads", resumable=True)
    compile: bool = option(False, "torch.compile the training forward: same maths, faster steps (a minute "
                                  "to warm up)", resumable=True)
    progress: bool = option(True, "show a progress bar (on unless --no-progress; a resumed run keeps its "
                                          "setting)", resumable=True)


# What may change when resuming: where to write, how long to run, logging. The recipe may not.
RESUMABLE = frozenset(f.name for f in fields(TrainConfig) if f.metadata["resumable"])
