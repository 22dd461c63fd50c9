"""The attention pattern of a model, drawn from the mask it applies (rows: queries, columns: keys)."""
from __future__ import annotations

import html

from .pieces import svg_text


def attention_caption(kind: str, block: int | None) -> str:
    if kind == "autoregressive":
        return "causal: each character sees itself and every character before it"
    if kind == "block diffusion":
        return f"block-causal, B = {block}: each character sees its own block and every block before it"
    return "bidirectional: every character sees every other character"


def attention_svg(pattern: list[list[bool]], kind: str, block: int | None = None, cell: int = 14) -> str:
    """The attention pattern (rows: queries, columns: keys; a filled cell where attention is allowed),
    block boundaries dashed, with a one-line caption."""
    n, left, top = len(pattern), 22, 22
    size = n * cell
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {left + size + 6} {top + size + 6}" '
           f'role="img" aria-label="attention pattern: {html.escape(attention_caption(kind, block))}">',
           f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="rgba(128,128,128,.12)" stroke="#999"/>',
           svg_text(left + size / 2, 12, "key (sees) →", size=10, anchor="middle"),
           f'<text x="12" y="{top + size / 2}" font-size="10" text-anchor="middle" fill="currentColor" '
           f'transform="rotate(-90 12 {top + size / 2})">query ↓</text>']
    for i, row in enumerate(pattern):
        for j, allowed in enumerate(row):
            if allowed:
                svg.append(f'<rect x="{left + j * cell + 1}" y="{top + i * cell + 1}" width="{cell - 2}" '
                           f'height="{cell - 2}" fill="#0072B2"/>')
    if kind == "block diffusion" and block and block < n:
        for k in range(block, n, block):
            x, y = left + k * cell, top + k * cell
            svg.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{top + size}" stroke="#E69F00" stroke-dasharray="3 2"/>'
                       f'<line x1="{left}" y1="{y}" x2="{left + size}" y2="{y}" stroke="#E69F00" '
                       f'stroke-dasharray="3 2"/>')
    svg.append("</svg>")
    caption = html.escape(f"{attention_caption(kind, block)} (first {n} positions).")
    return f'<div class="mdl-attention">{"".join(svg)}<p class="mdl-attention-caption">{caption}</p></div>'
