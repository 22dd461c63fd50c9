"""int8 Linear layers for serving on the CPU: weights per output channel, inputs at a calibrated fixed scale.

Each `Int8Linear` holds its weight as int8 with one scale per output channel, and quantises its input
with one scale and zero point per layer, fixed once from the ranges the float model's inputs took
while it wrote a few stories (`input_ranges`, static quantisation). One fbgemm call then quantises the
input, multiplies in int8 and returns float32 (`quantized::linear_with_input_q_dq_qweight_dq_output_fp32`).

Why a fixed input scale, not one per call (PyTorch's dynamic quantisation, served until stop 22): a
scale per call is the range of the whole input, so a row's numbers depend on the other rows evaluated
with it. In draft and verify the verifier's rows share an evaluation with the draft's windows, so the
verifier was no longer the model that writes left to right: greedy, the two texts parted within ~40
characters on 16 of the race's 16 openings. With a fixed scale each row is computed on its own; they
part on 3 of 16, after 115-130 characters (float: 0), where the float kernels' last-bit differences
between one row and many (attention's, for one or two queries) tip an input's rounding. The clean half
reads held-out text at 0.906 bits a character against 0.899 in float and 0.910 with a scale per call
(`python -m bench.int8_rows`, docs/performance.md, stop 22).

An input outside its calibrated range is clipped to it (ranges widened by 25% or 50% kept no more
characters an evaluation on sample-eval: the coarser steps cost what the clipping saved).
"""
from __future__ import annotations

import copy
import warnings
from typing import Callable

import torch
import torch.nn as nn

INPUT_LEVELS = 127  # 7-bit inputs (fbgemm's reduce_range): an int8 x uint8 product pair cannot overflow


class Int8Linear(nn.Module):
    """nn.Linear (no bias) with int8 weights (a scale per output channel) and inputs quantised at a fixed
    scale for the range [low, high] (widened to include 0)."""

    def __init__(self, linear: nn.Linear, low: float, high: float):
        super().__init__()
        if linear.bias is not None:
            raise ValueError("Int8Linear serves Linear layers without a bias (as every layer of model.py)")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach().float()
        scales = (w.abs().amax(1).clamp_min(1e-12) / 127).double()
        with warnings.catch_warnings():   # torch >= 2.10 calls quantized tensors deprecated; the ops still work
            warnings.simplefilter("ignore")
            qw = torch.quantize_per_channel(w, scales, torch.zeros(len(scales), dtype=torch.long), 0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(qw, None)
        low, high = min(low, 0.0), max(high, 0.0)
        self.scale = max(high - low, 1e-8) / INPUT_LEVELS
        self.zero_point = int(round(-low / self.scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(
            x.contiguous(), self.scale, self.zero_point, self.packed)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8, input scale {self.scale:.3g}"


def input_ranges(model: nn.Module, calibrate: Callable[[nn.Module], None]) -> dict[str, tuple[float, float]]:
    """The smallest and largest input each nn.Linear of `model` saw while `calibrate(model)` ran (a range
    that always holds 0: a layer's zero input is exact)."""
    seen: dict[str, tuple[float, float]] = {}

    def record(name):
        def hook(module, args):
            low, high = args[0].aminmax()
            old = seen.get(name, (0.0, 0.0))
            seen[name] = (min(old[0], low.item()), max(old[1], high.item()))
        return hook

    hooks = [m.register_forward_pre_hook(record(n)) for n, m in model.named_modules() if type(m) is nn.Linear]
    try:
        with torch.inference_mode():
            calibrate(model)
    finally:
        for h in hooks:
            h.remove()
    return seen


def quantize_int8(model: nn.Module, calibrate: Callable[[nn.Module], None]) -> nn.Module:
    """A copy of `model` (float, on the CPU) whose nn.Linear layers are `Int8Linear`s, their input ranges
    those seen while `calibrate(model)` ran the float model on representative inputs.
    Raises RuntimeError where this PyTorch build lacks fbgemm's int8 ops (serving then keeps float)."""
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("int8 Linear weights run on the CPU; move the model to the CPU first")
    ranges = input_ranges(model, calibrate)
    quantized = copy.deepcopy(model).eval()
    for prefix, parent in list(quantized.named_modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                low, high = ranges.get(f"{prefix}.{name}" if prefix else name, (-1.0, 1.0))
                setattr(parent, name, Int8Linear(child, low, high))
    n = model.num_params() if hasattr(model, "num_params") else sum(p.numel() for p in model.parameters())
    quantized.num_params = lambda: n   # packed int8 weights are not parameters; report the model's size
    quantized.int8 = True
    return quantized
