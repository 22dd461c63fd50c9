"""Frames, GIF and MP4 of a denoising trace (microdllm.viz)."""
from pathlib import Path

import pytest
from PIL import ImageColor

from microdllm import viz
from microdllm.sampling import DenoiseState

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def states():
    from microdllm.checkpoint import load_checkpoint
    from microdllm.sampling import denoise

    ck = load_checkpoint(ROOT / "checkpoints" / "tinystories-tiny")
    out = list(denoise(ck.model, ck.tokenizer, "Once upon a time", steps=7, gen_len=40))
    assert len(out) >= 4 and out[-1].done
    return out


def make_state(text, fixed=(), masked=(), revealed=(), remasked=(), step=3):
    """A synthetic state: each argument lists positions of that kind (remasked positions are masked too)."""
    n = len(text)
    is_masked = [i in masked or i in remasked for i in range(n)]
    shown = "".join("_" if m else c for m, c in zip(is_masked, text))
    return DenoiseState(step=step, total_steps=8, u=0.5, tokens=tuple(range(n)), text=shown,
                        masked=tuple(is_masked), revealed=tuple(i in revealed for i in range(n)),
                        remasked=tuple(i in remasked for i in range(n)), confidence=(0.9,) * n,
                        fixed=tuple(i in fixed for i in range(n)), nfe=step, elapsed=0.1)


def colour_counts(img) -> dict:
    return {rgb: k for k, rgb in img.getcolors(maxcolors=img.width * img.height)}


@pytest.mark.parametrize("kind, colour", [("fixed", viz.PROMPT), ("masked", viz.MASK_BOX),
                                          ("revealed", viz.REVEALED), ("remasked", viz.REMASKED)])
def test_each_kind_of_position_has_its_own_colour(kind, colour):
    text = "The cat sat on the mat.\nIt was happy."
    positions = tuple(range(4, 20))
    base = colour_counts(viz.render_frame(make_state(text), [10, 8, 6, 4]))
    marked = colour_counts(viz.render_frame(make_state(text, **{kind: positions}), [10, 8, 6, 4]))
    rgb = ImageColor.getrgb(colour)
    # The legend shows every colour once; the marked cells must add many more pixels of it.
    assert marked.get(rgb, 0) > base.get(rgb, 0) + 100


def test_palette_colours_are_distinct():
    colours = {viz.PROMPT, viz.MASK_BOX, viz.REVEALED, viz.REMASKED, viz.INK}
    assert len({ImageColor.getrgb(c) for c in colours}) == 5


def test_frame_size_and_long_text_is_truncated():
    text = ("a long line of generated text " * 40) + "\n" * 50
    img = viz.render_frame(make_state(text, masked=range(0, len(text), 2)), [], size=(640, 360))
    assert img.size == (640, 360) and img.mode == "RGB"
    cells, ellipsis = viz._layout(text, cols=20, rows=3)
    assert ellipsis is not None and len(cells) <= 60
    assert all(c + 1 <= 20 for _, _, c in cells) and ellipsis[1] + 3 <= 20
    assert viz._layout("ab\ncd", cols=10, rows=3) == ([(0, 0, 0), (1, 0, 1), (2, 0, 2), (3, 1, 0), (4, 1, 1)], None)


def test_trace_frames_keeps_first_and_last(states):
    n = len(states)
    assert len(viz.trace_frames(states)) == n
    assert len(viz.trace_frames(states, every=n + 5)) == 2


def expected_frames(n: int, every: int) -> int:
    picks = list(range(0, n, every))
    return len(picks) + (picks[-1] != n - 1)


@pytest.mark.parametrize("suffix, write", [(".gif", viz.write_gif), (".mp4", viz.write_mp4)])
@pytest.mark.parametrize("every", [1, 3])
def test_written_file_decodes_to_the_expected_frames(tmp_path, states, suffix, write, every):
    path = write(states, tmp_path / "nested" / f"trace{suffix}", every=every)
    assert path.is_file() and path.stat().st_size > 0
    assert viz.count_frames(path) == expected_frames(len(states), every)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left behind


def test_gif_holds_the_last_frame(tmp_path, states):
    from PIL import Image

    path = viz.write_gif(states[:3], tmp_path / "t.gif", frame_ms=100, hold_last_ms=900)
    with Image.open(path) as im:
        durations = []
        for k in range(im.n_frames):
            im.seek(k)
            durations.append(im.info["duration"])
    assert durations == [100, 100, 900]


@pytest.mark.parametrize("write", [viz.write_gif, viz.write_mp4])
def test_empty_trace_is_an_error(tmp_path, write):
    with pytest.raises(ValueError, match="empty"):
        write([], tmp_path / "x.out")
    assert not (tmp_path / "x.out").exists()
