"""Small matrix multiplies on the CPU: each Linear layer's weight also packed for oneDNN.

A model evaluation here multiplies a few rows at a time: 1 in a left-to-right step, 10-25 in a round of
draft and verify, a prompt's length once. PyTorch hands a float32 `F.linear` to MKL's sgemm, which on
this project's AMD CPU is slow for a few rows and does not split them across threads; oneDNN's kernel on
a weight packed once for it is 1.4-1.5x faster from 3 rows on at one thread and 1.7-2.2x at two, but
slower for one row, where MKL's streaming of the weight wins (docs/performance.md, stop 21). So a
`PackedLinear` keeps the weight both ways and each call picks by its number of rows: every way of
writing gets the faster kernel for its shape, the autoregressive baseline too.

Inference only (no gradient flows through the packed copy) and float32 on the CPU; `pack_linears` leaves
any other model as it is. The two kernels round differently (~1e-6 of a logit), so a served model's
numbers are not bitwise the plain model's.
"""
from __future__ import annotations

import copy
import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

log = logging.getLogger(__name__)

PACKED_MIN_ROWS = 3     # fewer rows: MKL (one row: 1.8x faster than oneDNN; two: about even)
ROWS_HINT = 16          # oneDNN picks the packed layout for about this many rows: a round of draft and verify


class PackedLinear(nn.Module):
    """nn.Linear's weight (shared, still the parameter) plus a oneDNN-packed copy for calls of many rows."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias
        self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), ROWS_HINT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() >= PACKED_MIN_ROWS * self.in_features and not torch.is_grad_enabled():
            return self.onednn(x)
        return F.linear(x, self.weight, self.bias)

    def onednn(self, x: torch.Tensor) -> torch.Tensor:
        """x through oneDNN's kernel on the packed weight, whatever its rows (inference only)."""
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), self.packed, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, packed for oneDNN"


def can_pack(model: nn.Module) -> bool:
    """A float32 model on the CPU, with PyTorch built with oneDNN."""
    params = list(model.parameters())
    return (torch.backends.mkldnn.is_available() and bool(params)
            and all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params))


def pack_linears(model: nn.Module) -> nn.Module:
    """A copy of `model` whose nn.Linear layers are `PackedLinear`s, or `model` itself where that cannot
    be (`can_pack`) or packing fails: a slower kernel beats no model."""
    if not can_pack(model):
        return model
    try:
        packed = copy.deepcopy(model).eval()
        for parent in list(packed.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear:
                    setattr(parent, name, PackedLinear(child))
    except (RuntimeError, AttributeError) as e:   # a build whose oneDNN lacks the ops
        log.warning("could not pack the Linear weights for oneDNN (%s); serving them unpacked", e)
        return model
    return packed
