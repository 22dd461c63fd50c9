"""Serving checkpoints on small CPU machines: loading them once (with a Hub that may not answer),
threads, compiled evaluations, int8 Linear weights, and streams raced side by side.

Sampling already runs under `torch.inference_mode()` (see `sampling.py`); these are the knobs
left to whoever serves the model, measured in docs/performance.md. Used by the app and the CLI
alike, it knows nothing of Gradio: what it has to say is logged or returned as a sentence.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import os
import threading
import time
import warnings
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

import torch
import torch.nn as nn

from .checkpoint import Checkpoint, load_checkpoint

log = logging.getLogger("microdllm.serving")


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
    around them fused into a few kernels, which in eager mode cost a noticeable share of an
    evaluation on a small CPU (measured in docs/performance.md).

    Compiled with dynamic shapes, so one graph serves every prompt length. Compiling takes seconds;
    `warmup_len` pays for it now with one evaluation of that many tokens, instead of in the first
    request. Needs a C++ compiler on the CPU.
    """
    compiled = torch.compile(model, dynamic=True)
    if warmup_len:
        cfg = model.config
        with torch.inference_mode():
            device = next(model.parameters()).device
            compiled(torch.zeros(1, warmup_len, dtype=torch.long, device=device),
                     torch.full((1,), cfg.timesteps // 2, device=device))
    return compiled


def one_line(e: BaseException) -> str:
    """An exception as one short line, for logs and user-facing notices."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def serve_checkpoint(ck: Checkpoint, *, int8: bool = False, compile: bool = False) -> Checkpoint:
    """`ck` with its model swapped for the int8 and/or compiled one it is served as.

    A failed compile (e.g. no C++ compiler) is logged and the eager model served: a slower model
    beats no model.
    """
    if int8:
        ck = dataclasses.replace(ck, model=quantize_int8(ck.model))
        log.info("serving %s with int8 Linear weights", ck.source)
    if compile:
        t0 = time.monotonic()
        try:
            ck = dataclasses.replace(ck, model=compile_model(ck.model, warmup_len=ck.model.config.block_size))
            log.info("compiled %s in %.1f s", ck.source, time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - serve the eager model instead
            log.warning("could not compile %s (%s); serving it uncompiled", ck.source, one_line(e))
    return ck


def _load_with_timeout(source: str, timeout: float) -> Checkpoint:
    """load_checkpoint in a daemon thread, so a silent Hub cannot hold the app (or its exit) hostage."""
    future: Future = Future()

    def work():
        try:
            future.set_result(load_checkpoint(source, timeout=timeout))
        except BaseException as e:  # noqa: BLE001 - handed to the waiting caller
            future.set_exception(e)

    threading.Thread(target=work, name="checkpoint-load", daemon=True).start()
    return future.result(timeout=timeout)


class ModelStore:
    """Checkpoints by source ("" = bundled), loaded and served once, shared by every caller.

    A source that does not load within `timeout` seconds, or at all, falls back to the bundled
    model with a reason: a visitor gets a story either way. Besides the bundled and the default
    model, the `keep` most recently loaded ones stay in memory.
    """

    def __init__(self, timeout: float = 5.0, keep: int = 4, *, int8: bool = False, compile: bool = False):
        self.timeout, self.keep, self.int8, self.compile = timeout, keep, int8, compile
        self._models: dict[str, Checkpoint] = {}
        self._lock = threading.Lock()
        self.default_key = ""
        self.startup_notice: str | None = None

    def load(self, source: str | None) -> tuple[str, Checkpoint, str | None]:
        """(key, checkpoint, notice). notice is None, or says why the bundled model is used instead."""
        key = (source or "").strip()
        with self._lock:
            if key in self._models:
                return key, self._models[key], None
        try:
            ck = load_checkpoint(None) if key == "" else _load_with_timeout(key, self.timeout)
        except Exception as e:  # noqa: BLE001 - any failure: explain and use the bundled model
            if key == "":
                raise
            reason = self._reason(e)
            log.warning("could not load checkpoint %r: %s; using the bundled model", key, reason)
            key, ck, _ = self.load("")
            return key, ck, f"Could not load checkpoint '{source}': {reason}. Using the bundled model instead."
        log.info("loaded checkpoint %s from %s (%d parameters)", ck.source, ck.path, ck.model.num_params())
        ck = serve_checkpoint(ck, int8=self.int8, compile=self.compile)
        self._remember(key, ck)
        return key, ck, None

    def _reason(self, e: Exception) -> str:
        if isinstance(e, FutureTimeout):
            return f"no answer within {self.timeout:g} s"
        return (str(e).strip().splitlines() or [type(e).__name__])[0]

    def _remember(self, key: str, ck: Checkpoint) -> None:
        with self._lock:
            self._models[key] = ck
            others = [k for k in self._models if k not in ("", self.default_key, key)]
            for old in others[:max(0, len(others) - self.keep)]:  # oldest first
                del self._models[old]


def race(*streams):
    """Advance several state streams as if they ran in parallel at the same speed.

    Each round steps the unfinished stream that has used the least compute so far (state.elapsed),
    then yields the latest state of every stream; ends when all are done.
    """
    iters = [iter(s) for s in streams]
    latest = [next(it) for it in iters]
    yield tuple(latest)
    while not all(s.done for s in latest):
        i = min((k for k, s in enumerate(latest) if not s.done), key=lambda k: latest[k].elapsed)
        state = next(iters[i], None)
        if state is None:  # a stream ended without a done state: treat its last one as final
            state = dataclasses.replace(latest[i], done=True)
        latest[i] = state
        yield tuple(latest)
