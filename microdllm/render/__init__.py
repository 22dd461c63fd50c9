"""The app's pictures as HTML and SVG strings: the canvas, the charts, the status lines.

Pure string building: it knows nothing of Gradio, of torch or of models. It is handed
DenoiseStates (read through `state.role(i)`, the one definition of what a character is) and
plain numbers and lists, so every function is quick to test and safe to call from any thread.

    canvas.py     a state as a row of coloured characters (render_state), a plain text (render_text)
    status.py     the status lines (status_line, rewind_line, stopped_line, verify_line), the Compare
                  tab's lines and table
    charts.py     a run as charts: the heatmap, masks left per step
    forward.py    the Forward process tab: the schedules, a sentence at time t, what training scores
    drive.py      a run driven by hand: the paused line, a reveal by hand, a position's trajectory, the diff
    attention.py  a model's attention pattern
    pieces.py     one character as a span, one SVG label
    css.py        the style sheet (CSS) for all of them

Colours are Okabe-Ito (distinguishable with colour-blind vision): prompt blue #0072B2, written
this step (revealed, or rewritten by a polish pass) orange #E69F00, re-masked vermillion #D55E00,
still masked grey.
"""
from __future__ import annotations

from .attention import attention_caption, attention_svg
from .canvas import BLOCK_LEGEND, DRAFT_LEGEND, DRAFTING, GHOST_LEGEND, LEGEND, candidates_text, render_state, render_text
from .charts import HEAT_COLOURS, HEAT_NAMES, HEAT_PROMPT, HEAT_SPANS, heatmap_svg, mask_chart_svg
from .css import CSS
from .drive import diff_html, hand_line, paused_line, trajectory_svg
from .forward import LOSS_NAMES, PRED_LEGEND, forward_view, prediction_view, schedule_svg
from .status import WRITTEN, compare_status, compare_table, per_evaluation, rewind_line, status_line, stopped_line, verify_line

__all__ = ["BLOCK_LEGEND", "CSS", "DRAFT_LEGEND", "DRAFTING", "GHOST_LEGEND", "HEAT_COLOURS", "HEAT_NAMES",
           "HEAT_PROMPT", "HEAT_SPANS", "LEGEND", "LOSS_NAMES", "PRED_LEGEND", "WRITTEN", "attention_caption",
           "attention_svg", "candidates_text", "compare_status", "compare_table", "diff_html", "forward_view",
           "hand_line", "heatmap_svg",
           "mask_chart_svg", "paused_line", "per_evaluation", "prediction_view", "render_state", "render_text", "rewind_line",
           "schedule_svg", "status_line", "stopped_line", "trajectory_svg", "verify_line"]
