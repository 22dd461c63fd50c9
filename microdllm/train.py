"""Training loop: AdamW or Muon, warmup + cosine LR, atomic checkpoints, exact resume, DDP.

Every random draw of step k (which windows, which timesteps, which masks) comes from a
generator seeded by (seed, rank, k), so the data order is a pure function of the step:
resuming at step k replays exactly what an uninterrupted run would have done.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist

from . import checkpoint as ckpt
from .clock import RunClock
from .config import ModelConfig, get_preset
from .data import build_token_data, fixed_windows, read_text_files, sample_windows, stream_stories
from .devices import pick_device
from .diffusion import (
    always_predicted,
    autoregressive_loss,
    block_diffusion_loss,
    corrupt,
    corrupt_blocks,
    diffusion_loss,
    get_schedule,
    mixed_loss,
    next_character_loss,
    sample_timesteps,
)
from .evaluate import evaluate, headline_metric
from .model import Transformer
from .ngram import NGram
from .optim import build_optimizers, lr_factor
from .plots import Curve, plot_curves
from .progress import Progress
from .tokenizer import CharTokenizer
from .train_config import LOSSES, TrainConfig
from .training_state import load_training_state, save_training_state

STATE_NAME = ckpt.STATE_JSON
LOG_NAME = "metrics.jsonl"
CURVE_NAME = "loss_curve.png"


class TrainingError(RuntimeError):
    """Training cannot go on (bad input or a diverged loss); the last good checkpoint is kept."""


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + rank * 7_919 + step) % (2**63))


class Trainer:
    """One training run. Set up in the order that keeps resume exact: the data, the model's shape, its
    weights (seeded, then --init-from's), the optimisers and the saved state, then the DDP/compile wrappers."""

    def __init__(self, cfg: TrainConfig, resume: str | None = None):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self._setup_processes()
        self._check_recipe()
        saved = ckpt.read_config(resume) if resume else None
        init = ckpt.load_checkpoint(cfg.init_from) if cfg.init_from and not resume else None
        self._load_data(saved, init)
        self.model_config = self._model_config(saved, init)
        self._build_model(init)
        self._build_optimizers(resume)
        self._wrap_model()
        self.val_windows = fixed_windows(self.data.val, cfg.eval_windows, self.model_config.block_size, seed=0)

    # ---- set-up --------------------------------------------------------------------------
    def _setup_processes(self):
        """Rank and world size from torchrun's environment (else one process), the device, CPU threads."""
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = pick_device(self.cfg.device)
        if self.world > 1 and not dist.is_initialized():
            self._join_process_group()
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)

    def _join_process_group(self):
        """NCCL with one GPU per local rank on CUDA, else gloo."""
        dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)

    def _check_recipe(self):
        self.schedule = get_schedule(self.cfg.schedule)
        if self.cfg.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.cfg.loss!r}; choose {' or '.join(LOSSES)}")
        lo, hi = self.cfg.mask_range
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"--mask-range must satisfy 0 <= LOW <= HIGH <= 1, got {lo} {hi}")
        if self.cfg.block_sizes and (not self.cfg.attn_block or min(self.cfg.block_sizes) < 1):
            raise ValueError("--block-sizes needs --attn-block (the block size served by default) and sizes >= 1")
        if (self.cfg.clean_causal or self.cfg.complementary) and not self.cfg.attn_block:
            raise ValueError("--clean-causal and --complementary are for block diffusion: give --attn-block")
        if self.cfg.ar_weight and not self.cfg.clean_causal:
            raise ValueError("--ar-weight trains the clean half as an autoregressive model: it needs --clean-causal")
        if not 0 <= self.cfg.ar_weight < 1e6:
            raise ValueError(f"--ar-weight must be >= 0, got {self.cfg.ar_weight}")

    def _load_data(self, saved: dict | None, init: ckpt.Checkpoint | None):
        """The text as ids, in the vocabulary of the run resumed or of --init-from's source (else the text's own)."""
        vocab = saved["vocab"] if saved else init.config["vocab"] if init else None
        block = init.model_config.block_size if init else None
        self.data = self._read_data(CharTokenizer(vocab) if vocab else None, block)
        self.tokenizer = self.data.tokenizer
        # a model that drafts and checks draws its drafts with the training text's n-gram (ngram.py): counted and
        # written with this process's first checkpoint (the text does not change within a run)
        self._ngram_due = self.cfg.clean_causal

    def _read_data(self, tokenizer, block: int | None = None):
        cfg = self.cfg
        block = block or cfg.block_size or get_preset(cfg.preset).block_size
        if cfg.dataset:
            stories = stream_stories(cfg.dataset, num_stories=cfg.dataset_stories, seed=cfg.seed)
            train_text = "\n\n".join(stories)
        elif cfg.data:
            train_text = read_text_files(cfg.data)
        else:
            raise ValueError("no training data: give --data FILE [FILE ...] or --dataset ID")
        val_text = read_text_files([cfg.val_data]) if cfg.val_data else None
        return build_token_data(train_text, val_text, block_size=block, tokenizer=tokenizer)

    def _model_config(self, saved: dict | None, init: ckpt.Checkpoint | None) -> ModelConfig:
        """The saved run's shape when resuming; --init-from's shape with this run's attention, timestep
        embedding and alignment; else the preset with this run's overrides."""
        cfg = self.cfg
        if saved:
            return ModelConfig.from_dict(saved["model"])
        attention = dict(causal=cfg.causal, time_embedding=cfg.time_embedding, shift=cfg.shift,
                         attn_block=cfg.attn_block, clean_causal=cfg.clean_causal)
        if init:
            return init.model_config.replace(**attention)
        overrides = {k: getattr(cfg, k) for k in ("n_layer", "n_head", "n_embd", "block_size")
                     if getattr(cfg, k) is not None}
        return get_preset(cfg.preset, vocab_size=self.tokenizer.vocab_size, **attention, **overrides)

    def _build_model(self, init: ckpt.Checkpoint | None):
        torch.manual_seed(self.cfg.seed)  # same initial weights on every rank
        self.model = Transformer(self.model_config).to(self.device)
        if init:
            self._copy_weights(init)

    def _copy_weights(self, init: ckpt.Checkpoint):
        """--init-from's weights: the same shapes by construction; a start vector or timestep embedding
        the source lacks keeps its fresh initialisation."""
        own = self.model.state_dict()
        self.model.load_state_dict({k: v for k, v in init.model.state_dict().items() if k in own}, strict=False)

    def _build_optimizers(self, resume: str | None):
        self.optimizers = build_optimizers(self.model, self.cfg)
        self.step = 0
        self.history: list[dict] = []
        self.elapsed = 0.0  # training seconds before this process (resume)
        self._clock: RunClock | None = None   # this process's, from train() on
        if resume:
            self._load_state(Path(resume))

    def _wrap_model(self):
        """DDP across processes; compiled (Inductor fuses the elementwise work between the matmuls) or
        eager for the training forward. Evaluation and checkpoints use the bare model."""
        self.ddp = self.model
        if self.world > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.forward = torch.compile(self.ddp) if self.cfg.compile else self.ddp

    # ---- state --------------------------------------------------------------------------
    def _load_state(self, directory: Path):
        weights = ckpt.load_weights(directory / ckpt.WEIGHTS_NAME)
        try:
            self.model.load_state_dict(weights)
        except RuntimeError as e:
            raise TrainingError(f"{directory / ckpt.WEIGHTS_NAME}: does not match the model: {e}") from e
        info, rng = load_training_state(directory, self.optimizers)
        weights_step = ckpt.read_config(directory).get("training", {}).get("step")
        if weights_step != info["step"]:
            raise TrainingError(f"{directory}: weights are from step {weights_step} but the optimiser state "
                                f"from step {info['step']} (an interrupted save?); cannot resume exactly")
        self.step = int(info["step"])
        self.history = info["history"]
        self.elapsed = float(info["elapsed"])
        torch.set_rng_state(rng)

    def save(self):
        if self.rank != 0:
            return
        training = {"step": self.step, "tokens": self.tokens_seen(), "seconds": round(self.elapsed_now(), 1),
                    "config": asdict(self.cfg), "device": str(self.device), "world_size": self.world,
                    "parameters": self.model.num_params()}
        if self.history and "val" in self.history[-1]:
            training["val"] = self.history[-1]["val"]
        # Weights + config first, then the optimiser state: each file is replaced atomically, and
        # resuming checks that the weights and the state are from the same step.
        ngram = NGram.from_ids(self.data.train.numpy(), self.tokenizer.vocab_size) if self._ngram_due else None
        ckpt.save_checkpoint(self.out, self.model, self.tokenizer, self.cfg.schedule, training, ngram=ngram)
        self._ngram_due = False
        save_training_state(self.out, self.optimizers, torch.get_rng_state(),
                                 {"step": self.step, "history": self.history, "elapsed": self.elapsed_now(),
                                  "config": asdict(self.cfg)})
        self._plot()

    # ---- loop --------------------------------------------------------------------------
    def tokens_seen(self) -> int:
        return self.step * self.cfg.batch_size * self.model_config.block_size * self.world

    def elapsed_now(self) -> float:
        """Training seconds: those before this process, and this process's less any time it was stopped."""
        return self.elapsed + (self._clock.seconds() if self._clock else 0.0)

    def set_lr(self):
        f = lr_factor(self.step, self.cfg.warmup_iters, self.cfg.max_iters, self.cfg.min_lr_ratio)
        for opt in self.optimizers:
            for group in opt.param_groups:
                group.setdefault("base_lr", group["lr"])
                group["lr"] = group["base_lr"] * f
        return f

    def loss_on(self, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        mask_id = self.tokenizer.mask_id
        if self.model_config.causal:
            return autoregressive_loss(self.forward(x0.to(self.device)), x0.to(self.device), mask_id)
        if self.model_config.attn_block:
            return self._block_loss(x0, g)
        T = self.model_config.timesteps
        t = sample_timesteps(len(x0), T, generator=g, stratified=self.cfg.stratified)
        xt, mask = corrupt(x0, t, T, self.schedule, mask_id, generator=g)
        t_in = t.to(self.device) if self.model_config.time_embedding else None
        logits = self.forward(xt.to(self.device), t_in)
        return diffusion_loss(self.cfg.loss, logits, x0.to(self.device), mask.to(self.device),
                              t.to(self.device), T, self.schedule, mask_id)

    def _block_loss(self, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Every block of x_t against the clean blocks before it, in one paired forward (BD3-LM); with
        --block-sizes, this step's block size drawn from them."""
        sizes, shift = self.cfg.block_sizes, self.model_config.shift
        block = sizes[int(torch.randint(len(sizes), (1,), generator=g))] if sizes else self.model_config.attn_block
        xt, targets, u = corrupt_blocks(x0, block, self.schedule, self.tokenizer.mask_id, shift=shift,
                                        u_range=tuple(self.cfg.mask_range), generator=g,
                                        complementary=self.cfg.complementary)
        x0 = x0.repeat(len(xt) // len(x0), 1).to(self.device)
        ar = self.cfg.ar_weight > 0
        logits = self.forward(xt.to(self.device), clean=x0, block=block, with_clean=ar)
        logits, clean = logits if ar else (logits, None)
        loss = block_diffusion_loss(self.cfg.loss, logits, x0, targets.to(self.device), u, self.schedule,
                                    self.tokenizer.mask_id, always_predicted(x0.size(1), block, shift))
        if ar:
            loss = mixed_loss(loss, next_character_loss(clean, x0, self.tokenizer.mask_id), self.cfg.ar_weight)
        return loss

    def evaluate(self) -> dict:
        """Validation at the block size served; a model trained over several: also at each of them
        ("by_block", B -> NELBO bits/char)."""
        kw = dict(timesteps_per_window=self.cfg.eval_timesteps)
        metrics = evaluate(self.model, self.val_windows, self.schedule, self.tokenizer.mask_id, **kw)
        others = sorted(set(self.cfg.block_sizes) - {self.model_config.attn_block})
        if others:
            metrics["by_block"] = {str(self.model_config.attn_block): metrics["nelbo_bpc"]}
            for b in others:
                metrics["by_block"][str(b)] = evaluate(self.model, self.val_windows, self.schedule,
                                                       self.tokenizer.mask_id, block=b, **kw)["nelbo_bpc"]
        self.model.train()
        return metrics

    def train(self):
        cfg = self.cfg
        if self.step >= cfg.max_iters:
            print(f"already at step {self.step} >= max_iters {cfg.max_iters}; nothing to do")
            return
        self._clock = RunClock()
        self.model.train()
        bar = Progress(cfg.progress and self.rank == 0, cfg.max_iters, self.step,
                       cfg.batch_size * self.model_config.block_size * self.world)
        try:
            while self.step < cfg.max_iters:
                loss = self._step()
                bar.update(self.step, loss)
                self._after_step(loss)
        finally:
            bar.close()
            self._clock.close()
        if self.world > 1:
            dist.barrier()

    def _step(self) -> torch.Tensor:
        """One optimisation step on step k's batch (drawn from step k's own generator); returns its loss."""
        cfg = self.cfg
        self.set_lr()
        g = step_generator(cfg.seed, self.rank, self.step)
        x0 = sample_windows(self.data.train, cfg.batch_size, self.model_config.block_size, g)
        loss = self.loss_on(x0, g)
        if not torch.isfinite(loss):
            raise TrainingError(f"loss is {loss.item()} at step {self.step}: training diverged; "
                                f"the last good checkpoint in {self.out} is kept (try a lower --lr)")
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        for opt in self.optimizers:
            opt.step()
        self.step += 1
        return loss

    def _after_step(self, loss: torch.Tensor):
        """Validate and log, then save, at their intervals and at the last step."""
        if self._due(self.cfg.eval_interval):
            record = {"step": self.step, "tokens": self.tokens_seen(), "seconds": round(self.elapsed_now(), 1),
                      "train_loss": loss.item(), "val": self.evaluate() if self.rank == 0 else None}
            if self.rank == 0:
                self.history.append(record)
                self._log(record)
        if self._due(self.cfg.save_interval):
            self.save()

    def _due(self, interval: int) -> bool:
        return self.step % interval == 0 or self.step == self.cfg.max_iters

    def _log(self, record: dict):
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / LOG_NAME, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        v = record["val"]
        key, value = headline_metric(v)
        msg = f"step {record['step']}: train loss {record['train_loss']:.4f}, val {key} {value:.4f}"
        if "masked_loss" in v:
            msg += f", val masked loss {v['masked_loss']:.4f}"
        from tqdm import tqdm
        tqdm.write(msg)

    def _plot(self):
        """loss_curve.png: train loss (in bits) and validation bits/char against the step."""
        if not self.history:
            return
        label = "val bits/char" + ("" if self.model_config.causal else " (NELBO, upper bound)")
        plot_curves([Curve(label, self.history)], self.out / CURVE_NAME, train_loss=True)


def train(cfg: TrainConfig, resume: str | None = None) -> Trainer:
    trainer = Trainer(cfg, resume=resume)
    try:
        trainer.train()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return trainer
