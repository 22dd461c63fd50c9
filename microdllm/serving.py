"""Serving options for small CPU machines: threads, compiled evaluations, int8 Linear weights.

Sampling already runs under `torch.inference_mode()` (see `sampling.py`); these are the knobs
left to whoever serves the model. All are measured in docs/performance.md.
"""
from __future__ import annotations

import copy
import os
import warnings

import torch
import torch.nn as nn


def default_threads(concurrent: int = 1) -> int:
    """Torch threads per generation when `concurrent` generations share this machine's cores (1 to 4).

    On a 2-vCPU Space two generations with one thread each beat two with two threads each:
    oversubscribed cores slow small matrix multiplies many times over.
    """
    return min(4, max(1, (os.cpu_count() or 1) // max(1, concurrent)))


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of `model` whose nn.Linear layers hold int8 weights, dequantised per matmul (CPU only).

    PyTorch's dynamic quantisation: weights are quantised once, activations per call. The copy
    keeps `config` and evaluates like the float model, with small numerical differences.
    """
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("int8 dynamic quantisation runs on the CPU; move the model to the CPU first")
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch >= 2.10 points to torchao; the built-in path still works
        warnings.simplefilter("ignore")
        quantized = quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)
    n = model.num_params() if hasattr(model, "num_params") else sum(p.numel() for p in model.parameters())
    quantized.num_params = lambda: n   # packed int8 weights are not parameters; report the model's size
    quantized.int8 = True
    return quantized


def compile_model(model: nn.Module, warmup_len: int | None = None) -> nn.Module:
    """`model` under torch.compile (Inductor): the same matmuls, with the norms, RoPE and activations
    around them fused into a few kernels. In eager mode those small element-wise ops cost about a
    tenth of a `micro` evaluation on two cores; compiled, an evaluation runs at about 0.87 of the
    machine's GEMM rate instead of 0.79 (docs/performance.md).

    Compiled with dynamic shapes, so one graph serves every prompt length. Compiling takes seconds
    (about 15 s for `micro` on two cores); `warmup_len` pays for it now with one evaluation of that
    many tokens, instead of in the first request. Needs a C++ compiler on the CPU.
    """
    compiled = torch.compile(model, dynamic=True)
    if warmup_len:
        cfg = model.config
        with torch.inference_mode():
            device = next(model.parameters()).device
            compiled(torch.zeros(1, warmup_len, dtype=torch.long, device=device),
                     torch.full((1,), cfg.timesteps // 2, device=device))
    return compiled
