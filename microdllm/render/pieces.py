"""The smallest pieces every picture is made of: one character as an HTML span, one SVG label."""
from __future__ import annotations

import html


def char_html(ch: str) -> str:
    return "<br>" if ch == "\n" else html.escape(ch, quote=True)


def span(classes: str, ch: str, title: str, opacity: float | None = None, popup: str = "") -> str:
    """One character; `popup` (the candidates): shown on hover or tap instead of a plain tooltip."""
    style = f' style="opacity:{opacity:.2f}"' if opacity is not None else ""
    if popup:   # the shading on the character only, so the popup stays opaque
        char = f'<span class="mdl-ch"{style}>{char_html(ch)}</span>' if style else char_html(ch)
        return (f'<span class="mdl-c {classes}" tabindex="0">{char}'
                f'<span class="mdl-cands">{html.escape(popup, quote=False)}</span></span>')
    return f'<span class="mdl-c {classes}" title="{html.escape(title, quote=True)}"{style}>{char_html(ch)}</span>'


def shown(ch: str) -> str:
    """A character as a label shows it: a newline and a space made visible."""
    return {"\n": "↵", " ": "␣"}.get(ch, ch)


def percent(p: float) -> str:
    return "<1%" if p < 0.005 else ">99%" if 0.99 < p < 1 else f"{p:.0%}"


def svg_text(x, y, text, size=11, anchor: str | None = "start") -> str:
    align = f' text-anchor="{anchor}"' if anchor else ""
    return f'<text x="{x}" y="{y}" font-size="{size}"{align} fill="currentColor">{text}</text>'
