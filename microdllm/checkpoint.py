"""Checkpoints: a directory with model.safetensors + config.json (architecture, schedule, vocab, metadata).

Loadable from a local directory or a Hugging Face Hub repo id. Weights are only ever read
with safetensors; nothing is unpickled.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic import atomic_write
from .config import ModelConfig
from .diffusion import Schedule, get_schedule
from .model import Transformer
from .tokenizer import CharTokenizer

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
STATE_TENSORS = "training_state.safetensors"   # optimiser moments, RNG state
STATE_JSON = "training_state.json"             # step, history, recipe, optimiser hyper-parameters
FORMAT = "microdllm"
CHECKPOINTS_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
BUNDLED_DIR = CHECKPOINTS_DIR / "tinystories-tiny-block4"      # the default: block diffusion from the AR model
BUNDLED_DIFFUSION_DIR = CHECKPOINTS_DIR / "tinystories-tiny"   # full-sequence diffusion (can fill in blanks)
BUNDLED_AR_DIR = CHECKPOINTS_DIR / "tinystories-tiny-ar"       # the autoregressive baseline
BUNDLED_MODELS = (BUNDLED_DIR, BUNDLED_DIFFUSION_DIR, BUNDLED_AR_DIR)   # offered by the app, the default first


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not match its config."""


@dataclass
class Checkpoint:
    model: Transformer
    tokenizer: CharTokenizer
    schedule: Schedule
    config: dict
    source: str            # what the caller asked for: a path or a repo id
    path: Path             # the local directory the files were read from
    metadata: dict = field(default_factory=dict)

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
                    training: dict | None = None, extra: dict | None = None) -> Path:
    """Write model.safetensors and config.json into out_dir, each atomically. Returns the directory."""
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
    return out


def read_config(directory) -> dict:
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (a checkpoint needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(config, dict) or "model" not in config or "vocab" not in config:
        raise CheckpointError(f"{path}: not a micro-dLLM config (needs 'model' and 'vocab')")
    return config


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot be read as safetensors (truncated or corrupt?): {e}") from e


def load_local(directory, source: str | None = None, device: str | torch.device = "cpu") -> Checkpoint:
    directory = Path(directory)
    config = read_config(directory)
    try:
        model_config = ModelConfig.from_dict(config["model"])
        tokenizer = CharTokenizer(config["vocab"])
        schedule = get_schedule(config.get("diffusion", {}).get("schedule", "cosine"))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{directory / CONFIG_NAME}: invalid config: {e}") from e
    if tokenizer.vocab_size != model_config.vocab_size:
        raise CheckpointError(
            f"{directory / CONFIG_NAME}: vocabulary has {tokenizer.vocab_size} ids "
            f"(with the mask) but the model expects vocab_size={model_config.vocab_size}")
    weights_path = directory / WEIGHTS_NAME
    state = load_weights(weights_path)
    model = Transformer(model_config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{weights_path}: parameters do not match config.json "
                              f"(missing {missing[:4]}, unexpected {unexpected[:4]})")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(f"{weights_path}: {name} has shape {tuple(tensor.shape)}, "
                                  f"config.json implies {tuple(expected[name].shape)}")
    model.load_state_dict(state)
    model.to(device).eval()
    return Checkpoint(model, tokenizer, schedule, config, source or str(directory), directory,
                      metadata=config.get("training", {}))


def looks_like_repo_id(source: str) -> bool:
    parts = str(source).split("/")
    return len(parts) == 2 and all(parts) and not str(source).startswith((".", "/", "~"))


def resolve(source: str | os.PathLike | None, *, timeout: float = 10.0) -> tuple[Path, str]:
    """Turn a local directory or a Hub repo id into a local directory. Returns (path, description)."""
    if source is None or str(source) == "":
        return BUNDLED_DIR, "bundled"
    path = Path(source).expanduser()
    if path.is_dir():
        return path, str(source)
    if path.exists():
        raise CheckpointError(f"{path}: a checkpoint is a directory holding {CONFIG_NAME} and {WEIGHTS_NAME}")
    if not looks_like_repo_id(str(source)):
        raise CheckpointError(f"{source}: no such directory, and not a Hub repo id (owner/name)")
    return download(str(source), timeout=timeout), f"hf://{source}"


def download(repo_id: str, revision: str | None = None, timeout: float = 10.0) -> Path:
    """Fetch config.json + model.safetensors from the Hub (or its local cache when offline)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        local = snapshot_download(repo_id, revision=revision, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, "*.md", "*.png"],
                                  etag_timeout=timeout)
    except LocalEntryNotFoundError as e:
        raise CheckpointError(f"hf://{repo_id}: not in the local cache and the Hub cannot be reached ({type(e).__name__})") from e
    except (HfHubHTTPError, OSError, ValueError) as e:
        raise CheckpointError(f"hf://{repo_id}: cannot be fetched from the Hub: {str(e).splitlines()[0]}") from e
    local = Path(local)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (local / name).is_file():
            raise CheckpointError(f"hf://{repo_id}: the repo has no {name}")
    return local


def load_checkpoint(source: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                    timeout: float = 10.0) -> Checkpoint:
    """Load a checkpoint by local path or Hub repo id (None: the bundled model)."""
    path, description = resolve(source, timeout=timeout)
    return load_local(path, source=description, device=device)


def push_to_hub(directory, repo_id: str, token: str | None = None, private: bool = False,
                commit_message: str = "Upload micro-dLLM checkpoint") -> str:
    """Create (if needed) and upload a checkpoint directory to a Hub model repo. Returns the repo URL."""
    from huggingface_hub import HfApi

    directory = Path(directory)
    read_config(directory)
    load_weights(directory / WEIGHTS_NAME)  # refuse to publish a broken checkpoint
    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(folder_path=str(directory), repo_id=repo_id, repo_type="model",
                      commit_message=commit_message,
                      allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, "README.md", "*.png", "*.json"],
                      ignore_patterns=["training_state*", ".*"])
    return str(url)


# ---- resumable training state: safetensors + JSON, so resuming never unpickles anything ----------

def save_training_state(directory, optimizers: list[torch.optim.Optimizer], rng: torch.Tensor, info: dict) -> None:
    """Optimiser states as tensors `opt{i}.{param}.{name}` + their param groups and `info` as JSON."""
    directory = Path(directory)
    tensors, groups, scalars = {"rng.torch": rng.clone()}, [], {}
    for i, opt in enumerate(optimizers):
        sd = opt.state_dict()
        groups.append(sd["param_groups"])
        for pid, state in sd["state"].items():
            for name, value in state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"opt{i}.{pid}.{name}"] = value.detach().to("cpu").contiguous()
                else:
                    scalars[f"opt{i}.{pid}.{name}"] = value
    meta = {**info, "optimizer_param_groups": groups, "optimizer_scalars": scalars}
    atomic_write(directory / STATE_TENSORS, lambda p: save_file(tensors, str(p)))
    atomic_write(directory / STATE_JSON, json.dumps(meta))


def read_training_info(directory) -> dict:
    path = Path(directory) / STATE_JSON
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; nothing to resume in {directory}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e


def load_training_state(directory, optimizers: list[torch.optim.Optimizer]) -> tuple[dict, torch.Tensor]:
    """Restore the optimisers in place; return (info, torch RNG state)."""
    directory = Path(directory)
    info = read_training_info(directory)
    tensors = load_weights(directory / STATE_TENSORS)
    rng = tensors.pop("rng.torch")
    groups = info.pop("optimizer_param_groups")
    scalars = info.pop("optimizer_scalars")
    if len(groups) != len(optimizers):
        raise CheckpointError(f"{directory / STATE_JSON}: saved with {len(groups)} optimiser(s), "
                              f"the recipe builds {len(optimizers)}")
    for i, opt in enumerate(optimizers):
        state: dict[int, dict] = {}
        for key, value in [*tensors.items(), *scalars.items()]:
            owner, pid, name = key.split(".", 2)
            if owner == f"opt{i}":
                state.setdefault(int(pid), {})[name] = value
        try:
            opt.load_state_dict({"state": state, "param_groups": groups[i]})
        except (ValueError, KeyError) as e:
            raise CheckpointError(f"{directory / STATE_TENSORS}: does not fit the optimiser: {e}") from e
    return info, rng
