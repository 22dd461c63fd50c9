"""Where a command runs: the torch device, picked (`auto`) or checked before any work starts."""
from __future__ import annotations

import torch


def pick_device(name: str = "auto") -> torch.device:
    """auto: cuda, mps or cpu, the first this machine has. A named device is refused in one line
    (ValueError) when it is no torch device or this machine lacks it, rather than failing mid-run."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"--device {name}: not a torch device ({e})") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this machine has no CUDA device")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: this machine has no MPS device")
    return device
