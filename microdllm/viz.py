"""Pictures of a denoising trace: one frame per `DenoiseState`, an animated GIF, an MP4.

A frame shows the header (title, step k / N, masks left, model evaluations), a progress bar,
the sequence as a monospace character grid and a small "masks remaining" timeline. Each
character is drawn by its role in the state (`DenoiseState.role`), in colours from the
Okabe-Ito palette, which stays distinguishable with colour-blind vision:

  prompt text          blue
  still masked         `_` in a light grey box
  written this step    orange box (revealed, or rewritten by a polish pass)
  re-masked this step  grey box with a vermillion outline
  other generated text near-black, lighter where the model was less confident
  block starts         a blue bar at the left of the cell (block-by-block models); the block
                       being written is underlined in blue

`write_heatmap` draws a whole run as one picture: when each character was decided (the app's
heatmap). GIFs are written with Pillow, MP4s (H.264, yuv420p) with the ffmpeg binary of `imageio-ffmpeg`.
It knows nothing of models or of the app: it draws whatever states it is handed.
"""
from __future__ import annotations

import importlib.util
import math
import os
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from . import history, render
from .atomic import atomic_write

BG, INK, MUTED, TRACK = "#FFFFFF", "#1A1A1A", "#5A5A5A", "#E3E3E3"
PROMPT, REVEALED, REMASKED, ACCENT = "#0072B2", "#E69F00", "#D55E00", "#56B4E9"
MASK_BOX, MASK_INK = "#E0E0E0", "#8C8C8C"
GIF_SIZE, MP4_SIZE = (960, 540), (1280, 720)
NEWLINE = "\u21b5"  # ↵


def _font_paths(bold: bool) -> list[str]:
    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    paths = [f"/usr/share/fonts/truetype/dejavu/{name}"]
    spec = importlib.util.find_spec("matplotlib")
    if spec and spec.submodule_search_locations:
        paths.insert(0, os.path.join(spec.submodule_search_locations[0], "mpl-data", "fonts", "ttf", name))
    return paths


@lru_cache(maxsize=None)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans Mono (matplotlib ships it), else Pillow's default font."""
    for path in _font_paths(bold):
        if os.path.isfile(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def _shade(confidence: float) -> tuple[int, int, int]:
    """Near-black for confident tokens, mid-grey for unsure ones (nan: never predicted = confident)."""
    c = 1.0 if math.isnan(confidence) else min(max(confidence, 0.0), 1.0)
    v = round(26 + (1 - c) * 84)
    return v, v, v


def _cell(draw: ImageDraw.ImageDraw, x: float, y: float, w: float, h: float, ch: str, kind: str,
          fnt, bold, ink=INK) -> None:
    """Draw one character cell; kind is one of sampling.ROLES (prompt | masked | remasked | revealed | text)."""
    box, pad = (x + 1, y + 1, x + w - 1, y + h - 1), max(1, round(h / 12))
    if kind in ("masked", "remasked"):
        outline = REMASKED if kind == "remasked" else None
        draw.rounded_rectangle(box, radius=pad, fill=MASK_BOX, outline=outline, width=max(2, round(h / 16)))
        ch, ink, y = "_", MASK_INK, y - h / 8  # lift the underscore off the box's edge
    elif kind == "revealed":
        draw.rounded_rectangle(box, radius=pad, fill=REVEALED)
        fnt, ink = bold, INK
    elif kind == "prompt":
        ink = PROMPT
    draw.text((x + w / 2, y + h / 2), NEWLINE if ch == "\n" else ch if ch.isprintable() else "\u00b7",
              fill=ink, font=fnt, anchor="mm")


def _layout(text: str, cols: int, rows: int) -> tuple[list[tuple[int, int, int]], tuple[int, int] | None]:
    """(position, row, col) for each character that fits, and where to put "..." if some do not."""
    cells, r, c = [], 0, 0
    for i, ch in enumerate(text):
        if c >= cols:
            r, c = r + 1, 0
        if r >= rows:
            while cells and cells[-1][2] + 4 > cols:  # room for "..." after the last kept cell
                cells.pop()
            return cells, (cells[-1][1], cells[-1][2] + 1) if cells else (0, 0)
        cells.append((i, r, c))
        c += 1
        if ch == "\n":
            r, c = r + 1, 0
    return cells, None


def _text_panel(draw, state, box, s: float) -> None:
    x0, y0, x1, y1 = box
    fnt, bold = font(round(22 * s)), font(round(22 * s), bold=True)
    w, h = fnt.getlength("M") * 1.2, round(34 * s)
    cols, rows = max(4, int((x1 - x0) // w)), max(1, int((y1 - y0) // h))
    cells, ellipsis = _layout(state.text, cols, rows)
    starts, current = set(state.boundaries), state.block if not state.done else None
    for i, r, c in cells:
        x, y = x0 + c * w, y0 + r * h
        _cell(draw, x, y, w, h, state.text[i], state.role(i), fnt, bold, ink=_shade(state.confidence[i]))
        if i in starts:      # a block starts here: a blue bar at the cell's left edge, as on the app's canvas
            draw.line([x, y + 2, x, y + h - 2], fill=ACCENT, width=max(2, round(2 * s)))
        if current and current[0] <= i < current[1]:      # the block being written: underlined
            draw.line([x + 1, y + h - 1, x + w - 1, y + h - 1], fill=ACCENT, width=max(1, round(2 * s)))
    if ellipsis:
        draw.text((x0 + ellipsis[1] * w, y0 + ellipsis[0] * h + h / 2), "...", fill=MUTED, font=fnt, anchor="lm")


def _chart(draw, history: list[int], total_steps: int, box, s: float) -> None:
    """Masks remaining per step: a line up to the current step and a dot at the current point."""
    x0, y0, x1, y1 = box
    small = font(round(15 * s))
    draw.text((x0, y0), "masks remaining", fill=MUTED, font=small)
    ax = (x0 + 44 * s, y0 + 30 * s, x1, y1 - 24 * s)
    draw.rectangle(ax, outline=TRACK, width=max(1, round(s)))
    y_max, x_max = max(max(history, default=0), 1), max(total_steps, len(history) - 1, 1)
    draw.text((ax[0] - 6 * s, ax[1]), str(y_max), fill=MUTED, font=small, anchor="ra")
    draw.text((ax[0] - 6 * s, ax[3]), "0", fill=MUTED, font=small, anchor="rd")
    draw.text((ax[2], ax[3] + 4 * s), f"step {x_max}", fill=MUTED, font=small, anchor="ra")
    pts = [(ax[0] + (ax[2] - ax[0]) * k / x_max, ax[3] - (ax[3] - ax[1]) * m / y_max) for k, m in enumerate(history)]
    if len(pts) > 1:
        draw.line(pts, fill=ACCENT, width=max(2, round(3 * s)), joint="curve")
    if pts:
        r = 6 * s
        draw.ellipse((pts[-1][0] - r, pts[-1][1] - r, pts[-1][0] + r, pts[-1][1] + r), fill=INK)


def _legend(draw, x: float, y: float, s: float) -> None:
    fnt, bold, small = font(round(18 * s)), font(round(18 * s), bold=True), font(round(15 * s))
    w, h = fnt.getlength("M") * 1.4, round(26 * s)
    for ch, kind, label in (("a", "prompt", "prompt"), ("_", "masked", "masked"), ("a", "revealed", "written this step"),
                            ("_", "remasked", "re-masked this step"), ("a", "text", "generated")):
        _cell(draw, x, y, w, h, ch, kind, fnt, bold)
        x += w + 8 * s
        draw.text((x, y + h / 2), label, fill=MUTED, font=small, anchor="lm")
        x += small.getlength(label) + 28 * s


def render_frame(state, mask_history: list[int], title: str = "Diffusion decoding", size=(1280, 720)) -> Image.Image:
    """One frame for `state`; mask_history[i] = masks left after step i (plotted up to state.step)."""
    W, H = size
    s, m = min(W / 1280, H / 720), 32 * min(W / 1280, H / 720)
    img = Image.new("RGB", (W, H), BG)
    draw = ImageDraw.Draw(img)
    big = font(round(30 * s), bold=True)
    draw.text((m, m), title, fill=INK, font=big)
    draw.text((W - m, m), f"step {state.step} / {state.total_steps}", fill=INK, font=big, anchor="ra")
    stats = f"masks left {state.num_masked}   model evaluations {state.nfe}   {state.elapsed:.2f} s"
    draw.text((m, m + 44 * s), stats + ("   done" if state.done else ""), fill=MUTED, font=font(round(18 * s)))
    progress = 1.0 if state.done else 1.0 - state.num_masked / max(state.generated, 1)   # the share written
    bar = (m, m + 78 * s, W - m, m + 90 * s)
    draw.rounded_rectangle(bar, radius=6 * s, fill=TRACK)
    if progress > 0:
        draw.rounded_rectangle((bar[0], bar[1], bar[0] + (bar[2] - bar[0]) * progress, bar[3]), radius=6 * s, fill=ACCENT)
    top, bottom = m + 112 * s, H - m - 40 * s
    _text_panel(draw, state, (m, top, W * 0.70, bottom), s)
    _chart(draw, list(mask_history[: state.step + 1]), state.total_steps, (W * 0.73, top, W - m, bottom), s)
    _legend(draw, m, H - m - 26 * s, s)
    return img


def trace_frames(states, every: int = 1, **kw) -> list[Image.Image]:
    """Frames for states[::every], always including the first and the last state."""
    states = list(states)
    if not states:
        raise ValueError("no denoising states to render: the trace is empty")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    picks = list(range(0, len(states), every))
    if picks[-1] != len(states) - 1:
        picks.append(len(states) - 1)
    history = [st.num_masked for st in states]
    return [render_frame(states[i], history[: i + 1], **kw) for i in picks]


def write_gif(states, path, frame_ms: int = 180, every: int = 1, hold_last_ms: int = 1500) -> Path:
    """Animated GIF (looping), the last frame held for hold_last_ms."""
    frames = trace_frames(states, every, size=GIF_SIZE)
    durations = [frame_ms] * (len(frames) - 1) + [max(frame_ms, hold_last_ms)]
    return atomic_write(path, lambda tmp: frames[0].save(tmp, format="GIF", save_all=True, loop=0,
                                                         append_images=frames[1:], duration=durations))


def write_mp4(states, path, frame_ms: int = 180, every: int = 1) -> Path:
    """H.264 MP4 (yuv420p) at 1000 / frame_ms frames per second."""
    import imageio_ffmpeg

    frames = trace_frames(states, every, size=MP4_SIZE)

    def save(tmp: Path) -> None:
        writer = imageio_ffmpeg.write_frames(str(tmp), MP4_SIZE, fps=1000 / frame_ms, codec="libx264",
                                             pix_fmt_out="yuv420p", macro_block_size=16, ffmpeg_log_level="error")
        writer.send(None)  # start ffmpeg
        try:
            for frame in frames:
                writer.send(frame.tobytes())
        finally:
            writer.close()

    return atomic_write(path, save)




def heatmap_image(states, size=(1280, 720)) -> Image.Image:
    """When each character was decided (the app's heatmap as a picture): position (x) against step (y,
    down); grey while masked, cream once written, orange where revealed, vermillion where re-masked
    (or, drafting and verifying, where a draft was turned down), purple where rewritten; block starts
    as blue lines."""
    states = list(states)
    if not states:
        raise ValueError("no denoising states to draw: the trace is empty")
    w, h = size
    s = h / 720
    img = Image.new("RGB", size, BG)
    draw = ImageDraw.Draw(img)
    draw.text((40 * s, 18 * s), "When each character was decided", fill=INK, font=font(round(30 * s), bold=True))
    x0, y0, x1, y1 = 80 * s, 80 * s, w - 40 * s, h - 90 * s
    first, last, n = states[0].step, states[-1].step, len(states[0].text)
    cw, ch = (x1 - x0) / n, (y1 - y0) / (last - first + 1)

    def box(pos, step, steps, fill):
        draw.rectangle([x0 + pos * cw, y0 + (step - first) * ch, x0 + (pos + 1) * cw - 1e-3,
                        y0 + (step - first + steps) * ch - 1e-3], fill=fill)

    for i, fixed in enumerate(states[0].fixed):
        if fixed:
            box(i, first, last - first + 1, render.HEAT_PROMPT)
    for sp in history.spans(states):
        box(sp.position, sp.start, sp.end - sp.start, render.HEAT_SPANS[sp.masked])   # the app's colours
    for ev in history.events(states) + history.rejections(states):   # rejections: drafts turned down
        box(ev.position, ev.step, 1, render.HEAT_COLOURS[ev.kind])
    for b in states[-1].boundaries:
        draw.line([x0 + b * cw, y0, x0 + b * cw, y1], fill=ACCENT, width=max(1, round(s)))
    small = font(round(18 * s))
    draw.text((x0 - 10 * s, y0), str(first), fill=MUTED, font=small, anchor="ra")
    draw.text((x0 - 10 * s, y1), str(last), fill=MUTED, font=small, anchor="rd")
    draw.text((x0, y1 + 10 * s), "position 0", fill=MUTED, font=small)
    draw.text((x1, y1 + 10 * s), str(n - 1), fill=MUTED, font=small, anchor="ra")
    draw.text((x0, y1 + 45 * s), "step ↓ · orange revealed · vermillion re-masked · purple rewritten · blue: prompt",
              fill=MUTED, font=small)
    return img


def write_heatmap(states, path) -> Path:
    """The heatmap of a run as a PNG."""
    image = heatmap_image(states)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def count_frames(path) -> int:
    """Number of frames in a written .gif or .mp4 (decoded back, for tests and checks)."""
    path = Path(path)
    if path.suffix.lower() == ".gif":
        with Image.open(path) as im:
            return im.n_frames
    if path.suffix.lower() == ".mp4":
        import imageio_ffmpeg

        reader = imageio_ffmpeg.read_frames(str(path))
        next(reader)  # metadata
        return sum(1 for _ in reader)
    raise ValueError(f"{path}: can only count frames of .gif and .mp4 files")
