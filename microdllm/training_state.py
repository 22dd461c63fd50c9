"""The resume state of a training run: optimiser moments and the RNG as safetensors, the step, history
and recipe as JSON, so that resuming never unpickles anything. Written beside a checkpoint's weights
(checkpoint.py) by train.py; read back by `--resume`.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from .atomic import atomic_write
from .checkpoint import STATE_JSON, STATE_TENSORS, CheckpointError, load_weights


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
