"""Serving checkpoints on small CPU machines: loading them once (with a Hub that may not answer,
and visitors who may ask for anything), threads, compiled evaluations, int8 Linear weights, float
ones packed for oneDNN (packed.py, on by default), and streams raced side by side.

Sampling already runs under `torch.inference_mode()` (see `sampling.py`); these are the knobs
left to whoever serves the model, measured in docs/performance.md. Used by the app and the CLI
alike, it knows nothing of Gradio: what it has to say is logged or returned as a sentence.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable

import torch
import torch.nn as nn

from .checkpoint import BUNDLED_MODELS, Checkpoint, CheckpointError, LoadLimits, load_checkpoint
from .hub import looks_like_repo_id
from .int8 import quantize_int8
from .packed import pack_linears
from .quality import OPENINGS
from .sampling import defaults_for, generate

log = logging.getLogger("microdllm.serving")

PUBLIC_REFUSAL = "This public app loads only its bundled models and Hugging Face Hub repo ids (owner/name)."
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")

# Environment variables that set the limits of what ModelStore loads (LoadLimits' fields; MB for the file).
LIMIT_ENV = {"MICRODLLM_MAX_PARAMETERS": "max_parameters", "MICRODLLM_MAX_LAYERS": "max_layers",
             "MICRODLLM_MAX_WIDTH": "max_width", "MICRODLLM_MAX_CONTEXT": "max_context",
             "MICRODLLM_MAX_FILE_MB": "max_file_bytes"}


def env_flag(name: str, default: bool = False, environ=None) -> bool:
    """An on/off environment variable (1/true/yes/on, 0/false/no/off); unset: `default`."""
    environ = os.environ if environ is None else environ
    value = environ.get(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value not in TRUE + FALSE:
        raise ValueError(f"{name}={environ[name]!r}: expected 1 or 0")
    return value in TRUE


def public_mode(environ=None) -> bool:
    """MICRODLLM_PUBLIC; unset, on when SPACE_ID is set (every Hugging Face Space sets it)."""
    environ = os.environ if environ is None else environ
    return env_flag("MICRODLLM_PUBLIC", default=bool(environ.get("SPACE_ID")), environ=environ)


def load_limits(environ=None) -> LoadLimits:
    """LoadLimits from MICRODLLM_MAX_PARAMETERS / _LAYERS / _WIDTH / _CONTEXT / _FILE_MB; unset: the defaults."""
    environ = os.environ if environ is None else environ
    changes = {}
    for name, fld in LIMIT_ENV.items():
        raw = environ.get(name, "").strip().replace("_", "")
        if not raw:
            continue
        try:
            value = float(raw) * 1e6 if fld == "max_file_bytes" else float(raw)
        except ValueError:
            raise ValueError(f"{name}={environ[name]!r}: expected a number") from None
        if value < 1 or value != value:
            raise ValueError(f"{name}={environ[name]!r}: expected a positive number")
        changes[fld] = int(value)
    return dataclasses.replace(LoadLimits(), **changes)


def default_threads(concurrent: int = 1) -> int:
    """Torch threads per generation when `concurrent` generations share this machine's cores (1 to 4).

    On a 2-vCPU Space two generations with one thread each beat two with two threads each:
    oversubscribed cores slow small matrix multiplies many times over.
    """
    return min(4, max(1, (os.cpu_count() or 1) // max(1, concurrent)))


CALIBRATION_STORIES = 4     # int8: the float model writes this many stories to calibrate each layer's input range
CALIBRATION_CHARACTERS = 160


def own_stories(ck: Checkpoint) -> Callable[[nn.Module], None]:
    """A calibration for int8.quantize_int8: the model writes CALIBRATION_STORIES stories at its default
    settings after sample-eval's first openings (a block model as many again by block diffusion), so each
    layer sees the inputs it sees when served: the text, and a window's masks."""
    def write(model: nn.Module) -> None:
        cfg = defaults_for(ck.model_config)
        configs = [cfg] + ([cfg.replace(mode="denoise")] if cfg.mode == "verify" else [])
        for i in range(CALIBRATION_STORIES):
            prompt = ck.tokenizer.clean(OPENINGS[i])          # what of it the vocabulary has
            for c in configs:
                room = model.config.block_size - len(prompt) - 1
                generate(model, ck.tokenizer, prompt, c.replace(gen_len=min(CALIBRATION_CHARACTERS, room), seed=i),
                         schedule=ck.schedule, ngram=ck.ngram)
    return write


def quantize_checkpoint(ck: Checkpoint) -> Checkpoint:
    """`ck` with int8 Linear weights (int8.py), calibrated on its own stories; `ck` as it is, with a
    warning, where that fails (a PyTorch without the int8 ops, say): a float model beats no model."""
    try:
        model = quantize_int8(ck.model, own_stories(ck))
    except Exception as e:  # noqa: BLE001 - no int8 ops in this build, a calibration that failed: serve float
        log.warning("could not serve %s with int8 weights (%s); serving float", ck.source, one_line(e))
        return ck
    log.info("serving %s with int8 Linear weights", ck.source)
    return dataclasses.replace(ck, model=model)


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


def serve_checkpoint(ck: Checkpoint, *, int8: bool = False, compile: bool = False, pack: bool = True) -> Checkpoint:
    """`ck` with its model swapped for the one it is served as: int8 and/or compiled, or else (pack) with
    its float Linear weights also packed for oneDNN on the CPU (packed.py: a faster kernel for calls of
    several rows, the plain one for a single row).

    A failed compile (e.g. no C++ compiler) is logged and the eager model served: a slower model
    beats no model.
    """
    if int8:
        ck = quantize_checkpoint(ck)
    if pack and not compile and not getattr(ck.model, "int8", False):
        ck = dataclasses.replace(ck, model=pack_linears(ck.model))
    if compile:
        t0 = time.monotonic()
        try:
            ck = dataclasses.replace(ck, model=compile_model(ck.model, warmup_len=ck.model.config.block_size))
            log.info("compiled %s in %.1f s", ck.source, time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - serve the eager model instead
            log.warning("could not compile %s (%s); serving it uncompiled", ck.source, one_line(e))
    return ck


def _without_frames(e: BaseException) -> BaseException:
    """`e` with the tracebacks of its chain dropped: a failed or cancelled load's frames (a model
    half-filled, say) are not kept alive by the exception handed to its callers."""
    seen, link = set(), e
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        link.__traceback__ = None
        link = link.__cause__ or link.__context__
    return e


class _Load:
    """One load in flight: every caller asking for its source waits on it, until one shared deadline."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.future: Future = Future()     # the served checkpoint, or the load's exception
        self.settled = threading.Event()   # the loading itself is over (loaded, failed or cancelled)
        self.cancel = threading.Event()    # set at the deadline: the loader stops at its next step


class ModelStore:
    """Checkpoints by source ("" = bundled), loaded and served once, shared by every caller.

    A source that does not load within `timeout` seconds, or at all, falls back to the bundled
    model with a reason: a visitor gets a story either way. Besides the bundled and the default
    model, the `keep` most recently loaded ones stay in memory.

    What a load may cost is bounded before anything is allocated: `limits` (LoadLimits) refuses
    larger architectures and files, and the weights' header must match the config (see
    checkpoint.load_local). Callers asking for the same source share one load (one thread, one
    deadline); at most `max_loads` loader threads run at once, further sources are refused as busy.
    When the deadline passes, the load is cancelled: it stops at its next step (before its next
    Hub request, within one chunk of a download, before the model is allocated or between two of
    its tensors), and whatever it produced is discarded, never cached, and not kept alive by the
    exception its callers get. What cannot be cut short is a Hub request already waiting for an
    answer: it ends within huggingface_hub's own timeouts and retries (etag_timeout = `timeout`,
    then its retries, up to about a minute for a Hub that accepts connections and never answers);
    it holds no model memory meanwhile, and counts against `max_loads`.

    public: visitors may load only the bundled models and Hub repo ids (size-checked from the
    Hub's metadata before any download); any other source gets the same PUBLIC_REFUSAL whether or
    not it exists, and the local file system is never consulted for it. Sources the operator
    configured are loaded with `trusted=True`.
    """

    def __init__(self, timeout: float = 5.0, keep: int = 4, *, int8: bool = False, compile: bool = False,
                 public: bool = False, limits: LoadLimits | None = None, max_loads: int = 2):
        self.timeout, self.keep, self.int8, self.compile = timeout, keep, int8, compile
        self.public, self.limits, self.max_loads = public, limits or LoadLimits(), max_loads
        self._models: dict[str, Checkpoint] = {}
        self._loads: dict[str, _Load] = {}
        self._running = 0                  # loader threads alive, cancelled ones included
        self._lock = threading.Lock()
        self._bundled_lock = threading.Lock()
        self.default_key = ""
        self.startup_notice: str | None = None

    @staticmethod
    def is_bundled(key: str) -> bool:
        """One of the bundled checkpoint directories (a string comparison: the file system is not consulted)."""
        return bool(key) and os.path.abspath(os.path.expanduser(key)) in {str(p) for p in BUNDLED_MODELS}

    def permitted(self, key: str, trusted: bool = False) -> bool:
        return not self.public or trusted or key == "" or self.is_bundled(key) or looks_like_repo_id(key)

    def load(self, source: str | None, *, trusted: bool = False) -> tuple[str, Checkpoint, str | None]:
        """(key, checkpoint, notice). notice is None, or says why the bundled model is used instead.

        trusted: the operator named this source (MICRODLLM_CHECKPOINT, ...): local paths are fine
        even in a public app.
        """
        key = (source or "").strip()
        with self._lock:
            if key in self._models:
                return key, self._models[key], None
        if key == "":
            return "", self._load_bundled(), None
        if not self.permitted(key, trusted):
            log.warning("refused checkpoint %r: not a bundled model or a Hub repo id (public app)", key[:200])
            return "", self._load_bundled(), f"{PUBLIC_REFUSAL} Using the bundled model instead."
        local = not self.public or trusted or self.is_bundled(key)
        try:
            ck = self._shared_load(key, local)
        except Exception as e:  # noqa: BLE001 - any failure: explain and use the bundled model
            reason = self._reason(e)
            log.warning("could not load checkpoint %r: %s; using the bundled model", key[:200], reason)
            shown = key if len(key) <= 80 else key[:77] + "..."
            reason = reason if len(reason) <= 300 else reason[:297] + "..."
            return "", self._load_bundled(), f"Could not load checkpoint '{shown}': {reason}. Using the bundled model instead."
        return key, ck, None

    def _load_bundled(self) -> Checkpoint:
        with self._bundled_lock:   # one load, however many callers arrive at once
            with self._lock:
                if "" in self._models:
                    return self._models[""]
            ck = load_checkpoint(None)
            log.info("loaded checkpoint %s from %s (%d parameters)", ck.source, ck.path, ck.model.num_params())
            ck = serve_checkpoint(ck, int8=self.int8, compile=self.compile)
            self._remember("", ck)
            return ck

    def _shared_load(self, key: str, local: bool) -> Checkpoint:
        """The served checkpoint for `key`: loaded by one thread, however many callers ask at once."""
        with self._lock:
            if key in self._models:
                return self._models[key]
            load = self._loads.get(key)
            if load is None:
                if self._running >= self.max_loads:
                    raise CheckpointError("the server is busy loading other checkpoints; try again in a minute")
                load = self._loads[key] = _Load(time.monotonic() + self.timeout)
                self._running += 1
                threading.Thread(target=self._work, args=(key, load, local), name="checkpoint-load",
                                 daemon=True).start()
        if not load.settled.wait(max(0.0, load.deadline - time.monotonic())):
            with self._lock:
                if not load.settled.is_set():
                    load.cancel.set()   # the loader stops at its next step; its result is discarded
                    if self._loads.get(key) is load:
                        del self._loads[key]
                    raise FutureTimeout()
        return load.future.result()

    def _work(self, key: str, load: _Load, local: bool) -> None:
        try:
            ck = load_checkpoint(key, timeout=self.timeout, limits=self.limits, local=local, cancel=load.cancel)
            with self._lock:
                cancelled = load.cancel.is_set()
                if not cancelled:
                    load.settled.set()
            if cancelled:                  # too late: its callers have gone; drop it
                del ck
                raise CheckpointError("loading was cancelled (it took too long)")
            log.info("loaded checkpoint %s from %s (%d parameters)", ck.source, ck.path, ck.model.num_params())
            ck = serve_checkpoint(ck, int8=self.int8, compile=self.compile)
            self._remember(key, ck)
            load.future.set_result(ck)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting callers
            load.future.set_exception(_without_frames(e))
        finally:
            load.settled.set()
            with self._lock:
                self._running -= 1
                if self._loads.get(key) is load:
                    del self._loads[key]

    def _reason(self, e: Exception) -> str:
        if isinstance(e, FutureTimeout):
            return f"no answer within {self.timeout:g} s"
        if self.public and not isinstance(e, CheckpointError):
            return f"it could not be loaded ({type(e).__name__})"   # no server paths in a public app
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
