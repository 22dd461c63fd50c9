"""Checkpoints: a directory with model.safetensors + config.json (architecture, schedule, vocab, metadata).

Loadable from a local directory or a Hugging Face Hub repo id. Weights are only ever read
with safetensors; nothing is unpickled.

Loading checks before it allocates: the declared architecture against `LoadLimits` (when given),
the weights file's size, and the safetensors header's names, dtypes and shapes against the
parameters the config implies (`expected_shapes`, arithmetic on the config); only then is the
model built and filled, one tensor at a time. A Hub repo is size-checked from the Hub's file
metadata (or, offline, from the cached files) before anything is downloaded.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .atomic import atomic_write
from .config import ModelConfig
from .diffusion import Schedule, get_schedule
from .model import Transformer
from .ngram import NGRAM_NAME, NGram, NGramError, load_ngram
from .tokenizer import CharTokenizer

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
STATE_TENSORS = "training_state.safetensors"   # optimiser moments, RNG state
STATE_JSON = "training_state.json"             # step, history, recipe, optimiser hyper-parameters
FORMAT = "microdllm"
CHECKPOINTS_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
BUNDLED_LARGE_BLOCK_DIR = CHECKPOINTS_DIR / "tinystories-tiny-block16"   # blocks of 16, a causal clean half:
                                                                         # drafts and verifies
BUNDLED_BLOCK_DIR = CHECKPOINTS_DIR / "tinystories-tiny-block"     # blocks of 2, from the AR model
BUNDLED_DIFFUSION_DIR = CHECKPOINTS_DIR / "tinystories-tiny"   # full-sequence diffusion (can fill in blanks)
BUNDLED_AR_DIR = CHECKPOINTS_DIR / "tinystories-tiny-ar"       # the autoregressive baseline
BUNDLED_DIR = BUNDLED_LARGE_BLOCK_DIR                          # the default (docs/experiments.md 6h, 6l)
BUNDLED_MODELS = (BUNDLED_DIR, BUNDLED_BLOCK_DIR, BUNDLED_DIFFUSION_DIR, BUNDLED_AR_DIR)   # the default first
MAX_CONFIG_BYTES = 1_000_000     # a config.json is a few KB (architecture, vocabulary, training metadata)
MAX_HEADER_BYTES = 1_000_000     # a safetensors header: ~100 bytes a tensor, 6 tensors a layer
WEIGHT_DTYPES = ("F32", "F16", "BF16")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not match its config."""


@dataclass(frozen=True)
class LoadLimits:
    """The largest checkpoint a loader accepts; checked before anything is allocated.

    The defaults fit a free CPU Space (2 vCPUs, 16 GB): the bundled models are ~3.2 M parameters
    (4 layers, 256 wide, context 256, 13 MB), the original `micro` network 10.7 M (6 layers, 384).
    """
    max_parameters: int = 50_000_000
    max_layers: int = 12
    max_width: int = 1024          # n_embd
    max_context: int = 1024        # block_size, in characters
    max_file_bytes: int = 250_000_000   # model.safetensors on disk or on the Hub

    def check(self, cfg: ModelConfig, where: str = "config.json") -> None:
        """Raise a one-line CheckpointError naming the first limit the declared architecture exceeds."""
        for value, limit, what in ((cfg.n_layer, self.max_layers, "{:,} layers"),
                                   (cfg.n_embd, self.max_width, "a width of {:,}"),
                                   (cfg.block_size, self.max_context, "a context of {:,} characters")):
            if value > limit:
                raise CheckpointError(f"{where}: declares {what.format(value)}; this loader accepts at most "
                                      f"{what.format(limit)}")
        n = count_parameters(cfg)
        if n > self.max_parameters:
            raise CheckpointError(f"{where}: declares {n:,} parameters; this loader accepts at most "
                                  f"{self.max_parameters:,}")

    def check_file_size(self, size: int, where: str) -> None:
        if size > self.max_file_bytes:
            raise CheckpointError(f"{where}: {_mb(size)}; this loader accepts files up to {_mb(self.max_file_bytes)}")


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def count_parameters(cfg: ModelConfig) -> int:
    """The parameter count `Transformer(cfg)` would have, by arithmetic (nothing is allocated)."""
    d = cfg.n_embd
    return (2 * cfg.vocab_size * d                      # token embedding + LM head
            + ((cfg.timesteps + 1) * d if cfg.time_embedding else 0)
            + (d if cfg.shift else 0)
            + cfg.n_layer * 12 * d * d)                  # q, k, v, proj (4 d^2) + MLP (8 d^2)


def count_tensors(cfg: ModelConfig) -> int:
    """How many tensors `Transformer(cfg).state_dict()` holds."""
    return 2 + bool(cfg.time_embedding) + bool(cfg.shift) + 6 * cfg.n_layer


def expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in `Transformer(cfg).state_dict()` (mirrors model.py; nothing allocated)."""
    d, v = cfg.n_embd, cfg.vocab_size
    shapes: dict[str, tuple[int, ...]] = {"token_emb.weight": (v, d)}
    if cfg.time_embedding:
        shapes["timestep_emb.weight"] = (cfg.timesteps + 1, d)
    if cfg.shift:
        shapes["start"] = (d,)
    for i in range(cfg.n_layer):
        for name in ("c_q", "c_k", "c_v", "c_proj"):
            shapes[f"blocks.{i}.attn.{name}.weight"] = (d, d)
        shapes[f"blocks.{i}.mlp.c_fc.weight"] = (4 * d, d)
        shapes[f"blocks.{i}.mlp.c_proj.weight"] = (d, 4 * d)
    shapes["lm_head.weight"] = (v, d)
    return shapes


def _check_cancel(cancel: threading.Event | None, where: str) -> None:
    if cancel is not None and cancel.is_set():
        raise CheckpointError(f"{where}: loading was cancelled (it took too long)")


@dataclass
class Checkpoint:
    model: Transformer
    tokenizer: CharTokenizer
    schedule: Schedule
    config: dict
    source: str            # what the caller asked for: a path or a repo id
    path: Path             # the local directory the files were read from
    metadata: dict = field(default_factory=dict)
    ngram: NGram | None = None   # the training text's character n-gram (ngram.py), where the directory has one

    @property
    def model_config(self) -> ModelConfig:
        return self.model.config


def build_config(model_config: ModelConfig, tokenizer: CharTokenizer, schedule: str,
                 training: dict | None = None, extra: dict | None = None) -> dict:
    return {
        "format": FORMAT,
        "format_version": 1,
        "model": model_config.to_dict(),
        "diffusion": {"schedule": schedule},
        "vocab": tokenizer.chars,
        "mask_id": tokenizer.mask_id,
        "training": training or {},
        **(extra or {}),
    }


def save_checkpoint(out_dir, model: Transformer, tokenizer: CharTokenizer, schedule: str = "cosine",
                    training: dict | None = None, extra: dict | None = None, ngram: NGram | None = None) -> Path:
    """Write model.safetensors and config.json into out_dir, each atomically (and ngram.safetensors, when
    given: the training text's n-gram, which draft and verify draws its drafts with). Returns the directory."""
    out = Path(out_dir)
    raw = model.module if hasattr(model, "module") else model
    raw = getattr(raw, "_orig_mod", raw)
    if tokenizer.vocab_size != raw.config.vocab_size:
        raise CheckpointError(f"tokenizer has {tokenizer.vocab_size} ids but the model {raw.config.vocab_size}")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in raw.state_dict().items()}
    step = str((training or {}).get("step", ""))
    atomic_write(out / WEIGHTS_NAME, lambda p: save_file(tensors, str(p), metadata={"format": FORMAT, "step": step}))
    config = build_config(raw.config, tokenizer, schedule, training, extra)
    atomic_write(out / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    if ngram is not None:
        ngram.save(out / NGRAM_NAME)
    return out


def read_config(directory, where: str | None = None) -> dict:
    """config.json of a checkpoint directory; `where` names it in errors (default: its path)."""
    path = Path(directory) / CONFIG_NAME
    name = f"{where}/{CONFIG_NAME}" if where else str(path)
    if not path.is_file():
        raise CheckpointError(f"{name}: missing (a checkpoint needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{name}: {_mb(size)}; a config is at most {_mb(MAX_CONFIG_BYTES)}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{name}: not valid JSON ({e})") from e
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict) or "vocab" not in config:
        raise CheckpointError(f"{name}: not a micro-dLLM config (needs 'model' and 'vocab')")
    return config


def parse_config(config: dict, where: str) -> tuple[ModelConfig, CharTokenizer, Schedule]:
    """The architecture, tokenizer and schedule a config declares; every size must be a positive int."""
    model = config["model"]
    for key in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "timesteps", "attn_block"):
        value = model.get(key)
        if value is not None and (type(value) is not int):
            raise CheckpointError(f"{where}: invalid config: model.{key} must be an integer, got {value!r:.40}")
    try:
        model_config = ModelConfig.from_dict(model)
        tokenizer = CharTokenizer(config["vocab"])
        schedule = get_schedule(config.get("diffusion", {}).get("schedule", "cosine"))
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        raise CheckpointError(f"{where}: invalid config: {e}") from e
    if tokenizer.vocab_size != model_config.vocab_size:
        raise CheckpointError(
            f"{where}: vocabulary has {tokenizer.vocab_size} ids "
            f"(with the mask) but the model expects vocab_size={model_config.vocab_size}")
    return model_config, tokenizer, schedule


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot be read as safetensors (truncated or corrupt?): {e}") from e


def check_weights_header(path: Path, cfg: ModelConfig, where: str,
                         limits: LoadLimits | None = None) -> None:
    """Compare the safetensors header of `path` with the tensors `cfg` implies, reading the header only.

    Raises a one-line CheckpointError on a file over the size limit, a header that is not
    safetensors, or names, dtypes or shapes that disagree with the config.
    """
    if not path.is_file():
        raise CheckpointError(f"{where}: missing")
    size = path.stat().st_size
    if limits is not None:
        limits.check_file_size(size, where)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        header_len = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < header_len <= min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"{where}: cannot be read as safetensors (truncated or corrupt?): "
                                  f"header of {header_len} bytes in a file of {size}")
        with safe_open(str(path), framework="pt") as f:   # parses the header; tensors stay on disk
            found = {name: (tuple(f.get_slice(name).get_shape()), f.get_slice(name).get_dtype()) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{where}: cannot be read as safetensors (truncated or corrupt?): "
                              f"{one_line_error(e)}") from e
    if len(found) != count_tensors(cfg):
        raise CheckpointError(f"{where}: holds {len(found)} tensors, config.json implies {count_tensors(cfg)} "
                              f"({cfg.n_layer} layers)")
    expected = expected_shapes(cfg)
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{where}: parameters do not match config.json "
                              f"(missing {missing[:4]}, unexpected {unexpected[:4]})")
    for name, (shape, dtype) in found.items():
        if shape != expected[name]:
            raise CheckpointError(f"{where}: {name} has shape {shape}, config.json implies {expected[name]}")
        if dtype not in WEIGHT_DTYPES:
            raise CheckpointError(f"{where}: {name} is {dtype}; weights must be one of {', '.join(WEIGHT_DTYPES)}")


def one_line_error(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def load_local(directory, source: str | None = None, device: str | torch.device = "cpu", *,
               limits: LoadLimits | None = None, where: str | None = None,
               cancel: threading.Event | None = None) -> Checkpoint:
    """Load a checkpoint directory. Everything is checked before the model is allocated: the config
    (and, with `limits`, its size), the weights file's size and its safetensors header.

    where: how errors name the directory (default: its path; a Hub repo passes hf://owner/name, so
    no server path shows). cancel: once set, the load stops at its next step and raises.
    """
    directory = Path(directory)
    label = where or str(directory)
    config_name, weights_name = f"{label}/{CONFIG_NAME}", f"{label}/{WEIGHTS_NAME}"
    config = read_config(directory, where)
    model_config, tokenizer, schedule = parse_config(config, config_name)
    if limits is not None:
        limits.check(model_config, config_name)
    weights_path = directory / WEIGHTS_NAME
    check_weights_header(weights_path, model_config, weights_name, limits)
    _check_cancel(cancel, label)
    model = Transformer(model_config)      # the first allocation: the header matches a config within limits
    params = model.state_dict()
    try:
        with torch.no_grad(), safe_open(str(weights_path), framework="pt", device="cpu") as f:
            for name in f.keys():          # one tensor at a time: peak memory is the model + its largest tensor
                params[name].copy_(f.get_tensor(name))
                _check_cancel(cancel, label)
    except CheckpointError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{weights_name}: cannot be read as safetensors (truncated or corrupt?): "
                              f"{one_line_error(e)}") from e
    model.to(device).eval()
    return Checkpoint(model, tokenizer, schedule, config, source or str(directory), directory,
                      metadata=config.get("training", {}), ngram=_optional_ngram(directory, label, model_config))


def _optional_ngram(directory: Path, label: str, cfg: ModelConfig) -> NGram | None:
    """The directory's n-gram file, checked like the weights (a CheckpointError if it is broken); None without one."""
    path = directory / NGRAM_NAME
    if not path.is_file():
        return None
    try:
        return load_ngram(path, cfg.vocab_size, where=f"{label}/{NGRAM_NAME}")
    except NGramError as e:
        raise CheckpointError(str(e)) from e


def resolve(source: str | os.PathLike | None, *, timeout: float = 10.0, limits: LoadLimits | None = None,
            local: bool = True, cancel: threading.Event | None = None) -> tuple[Path, str]:
    """Turn a local directory or a Hub repo id into a local directory. Returns (path, description).

    local=False: never look at the local file system; `source` must be a Hub repo id.
    """
    from .hub import download, looks_like_repo_id  # the Hub's module reads this one's format

    if source is None or str(source) == "":
        return BUNDLED_DIR, "bundled"
    if local:
        path = Path(source).expanduser()
        if path.is_dir():
            return path, str(source)
        if path.exists():
            raise CheckpointError(f"{path}: a checkpoint is a directory holding {CONFIG_NAME} and {WEIGHTS_NAME}")
    if not looks_like_repo_id(str(source)):
        if local:
            raise CheckpointError(f"{source}: no such directory, and not a Hub repo id (owner/name)")
        raise CheckpointError(f"{str(source)[:100]}: not a Hub repo id (owner/name)")
    return download(str(source), timeout=timeout, limits=limits, cancel=cancel), f"hf://{source}"


def load_checkpoint(source: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                    timeout: float = 10.0, *, limits: LoadLimits | None = None, local: bool = True,
                    cancel: threading.Event | None = None) -> Checkpoint:
    """Load a checkpoint by local path or Hub repo id (None: the bundled model).

    limits: refuse (before allocating anything) an architecture or file larger than these; None:
    no size limits, but the header is still checked against the config before allocation.
    local=False: only Hub repo ids (and None, the bundled model); the local file system is not consulted.
    cancel: a threading.Event; once set, the load stops at its next step with a CheckpointError.
    """
    path, description = resolve(source, timeout=timeout, limits=limits, local=local, cancel=cancel)
    where = description if description.startswith("hf://") else None
    return load_local(path, source=description, device=device, limits=limits, where=where, cancel=cancel)
