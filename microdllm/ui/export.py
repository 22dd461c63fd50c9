"""Export the session's last run: an animated GIF, an MP4 and the heatmap as a PNG (microdllm.viz)."""
from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import gradio as gr

from ..serving import one_line
from .messages import log, warn
from .session import Run

EXPORT_FRAMES = 80       # at most this many frames in an exported GIF / MP4


def _export_dir() -> Path:
    """Where exports go; files older than an hour are removed, so a long-running server does not fill up."""
    out = Path(tempfile.gettempdir()) / "microdllm-exports"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        try:
            if time.time() - old.stat().st_mtime > 3600:
                old.unlink()
        except OSError:
            pass
    return out


def export_trace(run):
    """Render the last run's states as a GIF, an MP4 and its heatmap (microdllm.viz); returns three file paths."""
    trace = run.states if isinstance(run, Run) else list(run or [])
    keep = (gr.skip(),) * 3
    if not trace:
        warn("Nothing to export yet: generate a story first.")
        return keep
    try:
        from microdllm import viz  # lazy: the app runs even if the exporter is unavailable
    except Exception as e:  # noqa: BLE001
        log.exception("microdllm.viz cannot be imported")
        warn(f"Export is unavailable: {one_line(e)}")
        return keep
    out = _export_dir()
    stem = f"diffusion-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{threading.get_ident() % 10000}"
    every = max(1, math.ceil(len(trace) / EXPORT_FRAMES))
    writers = ((partial(viz.write_gif, every=every), ".gif"), (partial(viz.write_mp4, every=every), ".mp4"),
               (viz.write_heatmap, "-heatmap.png"))
    paths = []
    for writer, suffix in writers:
        try:
            paths.append(str(writer(trace, out / (stem + suffix))))
        except Exception as e:  # noqa: BLE001 - e.g. no ffmpeg for MP4: still give the GIF
            log.exception("export to %s failed", suffix)
            warn(f"Could not write the {suffix.split('.')[-1].upper()}: {one_line(e)}")
            paths.append(None)
    return tuple(gr.update(value=path, visible=path is not None) for path in paths)
