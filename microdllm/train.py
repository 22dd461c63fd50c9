"""Training loop: AdamW or Muon, warmup + cosine LR, atomic checkpoints, exact resume, DDP.

Every random draw of step k (which windows, which timesteps, which masks) comes from a
generator seeded by (seed, rank, k), so the data order is a pure function of the step:
resuming at step k replays exactly what an uninterrupted run would have done.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from . import checkpoint as ckpt
from .config import ModelConfig, get_preset
from .data import build_token_data, fixed_windows, read_text_files, sample_windows, stream_stories
from .diffusion import autoregressive_loss, corrupt, diffusion_loss, get_schedule, sample_timesteps
from .evaluate import evaluate
from .model import Transformer
from .tokenizer import CharTokenizer

STATE_NAME = ckpt.STATE_JSON
LOG_NAME = "metrics.jsonl"
CURVE_NAME = "loss_curve.png"


class TrainingError(RuntimeError):
    """Training cannot go on (bad input or a diverged loss); the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    out: str = "runs/tiny"
    data: list[str] = field(default_factory=list)   # text files
    val_data: str | None = None                     # separate validation file (else last 10%)
    dataset: str | None = None                      # Hugging Face dataset id (instead of files)
    dataset_stories: int = 2000
    preset: str = "tiny"
    n_layer: int | None = None
    n_head: int | None = None
    n_embd: int | None = None
    block_size: int | None = None
    time_embedding: bool = True
    causal: bool = False
    shift: bool = False                     # predict each character from the position to its left (see model.py)
    init_from: str | None = None            # start from these weights (a checkpoint directory or Hub id),
                                            # e.g. an autoregressive model turned into a diffusion model
    schedule: str = "cosine"
    loss: str = "masked_ce"                 # masked_ce (original) or elbo
    stratified: bool = False                # low-discrepancy timesteps within a batch
    optimizer: str = "adamw"                # adamw or muon
    lr: float = 3e-4                        # AdamW lr (embeddings, head, everything for adamw)
    muon_lr: float = 0.02
    weight_decay: float = 0.0
    batch_size: int = 64
    max_iters: int = 5000
    warmup_iters: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_windows: int = 32
    eval_timesteps: int = 8
    save_interval: int = 500
    seed: int = 1337
    device: str = "auto"
    threads: int | None = None
    compile: bool = False                   # torch.compile the training forward: same maths, faster steps
    progress: bool = True


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup to 1, then cosine decay to min_ratio at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizers(model: Transformer, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """AdamW for all; or Muon on the 2-D hidden weights (blocks) and AdamW on embeddings and head."""
    if cfg.optimizer == "adamw":
        return [torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))]
    if cfg.optimizer == "muon":
        hidden = [p for n, p in model.named_parameters() if n.startswith("blocks.") and p.ndim == 2]
        other = [p for n, p in model.named_parameters() if not (n.startswith("blocks.") and p.ndim == 2)]
        return [torch.optim.Muon(hidden, lr=cfg.muon_lr, weight_decay=cfg.weight_decay),
                torch.optim.AdamW(other, lr=cfg.lr, weight_decay=0.0, betas=(0.9, 0.95))]
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose adamw or muon")


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + rank * 7_919 + step) % (2**63))


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: str | None = None):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = pick_device(cfg.device)
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
            if self.device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(self.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.schedule = get_schedule(cfg.schedule)
        if cfg.loss not in ("masked_ce", "elbo"):
            raise ValueError(f"unknown loss {cfg.loss!r}; choose masked_ce or elbo")

        resume_config = ckpt.read_config(resume) if resume else None
        init = None
        if cfg.init_from and not resume:
            init = ckpt.load_checkpoint(cfg.init_from)
        vocab = resume_config["vocab"] if resume_config else init.config["vocab"] if init else None
        self.data = self._load_data(CharTokenizer(vocab) if vocab else None,
                                    init.model_config.block_size if init else None)
        self.tokenizer = self.data.tokenizer
        if resume_config:
            model_config = ModelConfig.from_dict(resume_config["model"])
        elif init:
            # The source's shape and vocabulary, this run's attention, timestep embedding and alignment.
            model_config = init.model_config.replace(causal=cfg.causal, time_embedding=cfg.time_embedding,
                                                     shift=cfg.shift)
        else:
            overrides = {k: getattr(cfg, k) for k in ("n_layer", "n_head", "n_embd", "block_size")
                         if getattr(cfg, k) is not None}
            model_config = get_preset(cfg.preset, vocab_size=self.tokenizer.vocab_size,
                                      time_embedding=cfg.time_embedding, causal=cfg.causal, shift=cfg.shift,
                                      **overrides)
        self.model_config = model_config
        torch.manual_seed(cfg.seed)  # same initial weights on every rank
        self.model = Transformer(model_config).to(self.device)
        if init:  # same shapes by construction; the start vector or a timestep embedding may be new
            own = self.model.state_dict()
            self.model.load_state_dict({k: v for k, v in init.model.state_dict().items() if k in own}, strict=False)
        self.optimizers = build_optimizers(self.model, cfg)
        self.step = 0
        self.history: list[dict] = []
        self.elapsed = 0.0  # training seconds before this process (resume)
        if resume:
            self._load_state(Path(resume))
        self.ddp = self.model
        if self.world > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        # Compiled (Inductor fuses the elementwise work between the matmuls) or eager; evaluation stays eager.
        self.forward = torch.compile(self.ddp) if cfg.compile else self.ddp
        self.val_windows = fixed_windows(self.data.val, cfg.eval_windows, model_config.block_size, seed=0)

    # ---- data -------------------------------------------------------------------------
    def _load_data(self, tokenizer, block: int | None = None):
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

    # ---- state --------------------------------------------------------------------------
    def _load_state(self, directory: Path):
        weights = ckpt.load_weights(directory / ckpt.WEIGHTS_NAME)
        try:
            self.model.load_state_dict(weights)
        except RuntimeError as e:
            raise TrainingError(f"{directory / ckpt.WEIGHTS_NAME}: does not match the model: {e}") from e
        info, rng = ckpt.load_training_state(directory, self.optimizers)
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
        ckpt.save_checkpoint(self.out, self.model, self.tokenizer, self.cfg.schedule, training)
        ckpt.save_training_state(self.out, self.optimizers, torch.get_rng_state(),
                                 {"step": self.step, "history": self.history, "elapsed": self.elapsed_now(),
                                  "config": asdict(self.cfg)})
        self._plot()

    # ---- loop --------------------------------------------------------------------------
    def tokens_seen(self) -> int:
        return self.step * self.cfg.batch_size * self.model_config.block_size * self.world

    def elapsed_now(self) -> float:
        return self.elapsed + (time.perf_counter() - self._t0 if hasattr(self, "_t0") else 0.0)

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
        T = self.model_config.timesteps
        t = sample_timesteps(len(x0), T, generator=g, stratified=self.cfg.stratified)
        xt, mask = corrupt(x0, t, T, self.schedule, mask_id, generator=g)
        t_in = t.to(self.device) if self.model_config.time_embedding else None
        logits = self.forward(xt.to(self.device), t_in)
        return diffusion_loss(self.cfg.loss, logits, x0.to(self.device), mask.to(self.device),
                              t.to(self.device), T, self.schedule, mask_id)

    def evaluate(self) -> dict:
        metrics = evaluate(self.model, self.val_windows, self.schedule, self.tokenizer.mask_id,
                           timesteps_per_window=self.cfg.eval_timesteps)
        self.model.train()
        return metrics

    def train(self):
        cfg, block = self.cfg, self.model_config.block_size
        if self.step >= cfg.max_iters:
            print(f"already at step {self.step} >= max_iters {cfg.max_iters}; nothing to do")
            return
        self._t0 = time.perf_counter()
        self.model.train()
        bar = None
        if cfg.progress and self.rank == 0:
            from tqdm import tqdm
            bar = tqdm(total=cfg.max_iters, initial=self.step, dynamic_ncols=True, unit="it")
        tok_per_step = cfg.batch_size * block * self.world
        last_t, last_step = time.perf_counter(), self.step
        while self.step < cfg.max_iters:
            self.set_lr()
            g = step_generator(cfg.seed, self.rank, self.step)
            x0 = sample_windows(self.data.train, cfg.batch_size, block, g)
            loss = self.loss_on(x0, g)
            if not torch.isfinite(loss):
                if bar:
                    bar.close()
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
            if bar:
                now = time.perf_counter()
                if now - last_t > 1.0 or self.step == cfg.max_iters:
                    tps = (self.step - last_step) * tok_per_step / (now - last_t)
                    last_t, last_step = now, self.step
                    bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tps:,.0f}")
                bar.update(1)
            record = None
            if self.step % cfg.eval_interval == 0 or self.step == cfg.max_iters:
                record = {"step": self.step, "tokens": self.tokens_seen(), "seconds": round(self.elapsed_now(), 1),
                          "train_loss": loss.item(), "val": self.evaluate() if self.rank == 0 else None}
                if self.rank == 0:
                    self.history.append(record)
                    self._log(record)
            if self.step % cfg.save_interval == 0 or self.step == cfg.max_iters:
                self.save()
        if bar:
            bar.close()
        if self.world > 1:
            dist.barrier()

    def _log(self, record: dict):
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / LOG_NAME, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        v = record["val"]
        key = "bpc" if self.model_config.causal else "nelbo_bpc"
        msg = f"step {record['step']}: train loss {record['train_loss']:.4f}, val {key} {v[key]:.4f}"
        if "masked_loss" in v:
            msg += f", val masked loss {v['masked_loss']:.4f}"
        from tqdm import tqdm
        tqdm.write(msg)

    def _plot(self):
        if not self.history:
            return
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        key = "bpc" if self.model_config.causal else "nelbo_bpc"
        steps = [r["step"] for r in self.history]
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(steps, [r["train_loss"] / math.log(2) for r in self.history], label="train loss (bits)", alpha=0.6)
        ax.plot(steps, [r["val"][key] for r in self.history], marker="o",
                label="val bits/char" + ("" if self.model_config.causal else " (NELBO, upper bound)"))
        ax.set_xlabel("step")
        ax.set_ylabel("bits per character")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        ckpt.atomic_save(lambda p: fig.savefig(p, dpi=110, format="png"), self.out / CURVE_NAME)
        plt.close(fig)


def train(cfg: TrainConfig, resume: str | None = None) -> Trainer:
    trainer = Trainer(cfg, resume=resume)
    try:
        trainer.train()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return trainer
