"""The app's style sheet: the classes every picture of the render package uses."""

CSS = """
.mdl-canvas { font-family: ui-monospace, "DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, monospace;
  font-size: 1.45rem; line-height: 1.75; white-space: pre-wrap; overflow-wrap: anywhere;
  padding: .6rem .8rem; min-height: 7.5em; border: 1px solid var(--border-color-primary, #ccc);
  border-radius: 8px; }
.mdl-c { border-radius: 3px; }
.mdl-prompt { color: #0072B2; font-weight: 700; }
.dark .mdl-prompt { color: #56B4E9; }
.mdl-mask { color: #707070; background: rgba(128, 128, 128, .22); }
.mdl-canvas .mdl-mask, .mdl-canvas .mdl-remask { box-shadow: inset -1px 0 0 var(--background-fill-primary, #fff); }
.mdl-new { background: #E69F00; color: #000; }
.mdl-remask { background: #D55E00; color: #fff; }
.mdl-legend { font-family: var(--font, sans-serif); font-size: 1rem; display: flex; flex-wrap: wrap;
  gap: .3rem 1.1rem; margin: 0 0 .35rem 0; }
.mdl-legend .mdl-c { font-family: ui-monospace, monospace; padding: 0 .3em; }
.mdl-chart svg, .mdl-schedule svg { width: 100%; max-width: 560px; height: auto; }
.mdl-summary { font-size: 1.1rem; }
.mdl-canvas .mdl-bstart { border-left: 2px solid #56B4E9; }
.mdl-canvas .mdl-cur { outline: 1px dashed #56B4E9; outline-offset: -1px; }
#mdl-status { font-size: 1.15rem; }
.mdl-canvas .mdl-c { position: relative; }
.mdl-ghost { color: rgba(112, 112, 112, .75); font-style: italic; background: rgba(128, 128, 128, .12); }
.mdl-cands { display: none; position: absolute; left: 0; top: 100%; z-index: 20; white-space: nowrap;
  font-size: .85rem; line-height: 1.3; font-style: normal; font-weight: 400; color: #1a1a1a;
  background: #fff; border: 1px solid #999; border-radius: 4px; padding: .15rem .4rem; opacity: 1;
  box-shadow: 0 2px 6px rgba(0, 0, 0, .2); pointer-events: none; }
.mdl-c:hover > .mdl-cands, .mdl-c:focus > .mdl-cands { display: block; }
.mdl-canvas .mdl-rejected, .mdl-legend .mdl-rejected { color: #D55E00; background: rgba(213, 94, 0, .14);
  text-decoration: line-through; text-decoration-thickness: 2px; font-style: italic; }
.dark .mdl-canvas .mdl-rejected, .dark .mdl-legend .mdl-rejected { color: #F08A4B; }
.mdl-cmp-table table { border-collapse: collapse; font-size: 1rem; }
.mdl-cmp-table th, .mdl-cmp-table td { padding: .2rem .7rem; text-align: right; }
.mdl-cmp-table th:first-child, .mdl-cmp-table td:first-child { text-align: left; }
.mdl-heatmap svg { width: 100%; max-width: 640px; height: auto; }
.mdl-caveat { font-size: .95rem; color: #D55E00; margin: .2rem 0; }
.mdl-pred .mdl-hit { background: rgba(0, 158, 115, .32); }
.mdl-pred .mdl-miss { background: rgba(204, 121, 167, .45); }
.mdl-pred .mdl-always { text-decoration: underline dotted; }
.mdl-pred-rows { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: .9rem;
  max-height: 16em; overflow-y: auto; margin: .3rem 0; padding-left: 2.2rem; }
.mdl-pred-sum { font-size: 1.05rem; margin: .2rem 0 .4rem 0; }
.mdl-attention svg { width: 100%; max-width: 200px; height: auto; }
.mdl-attention-caption { font-size: .95rem; margin: .2rem 0; }
.mdl-canvas .mdl-c[data-pos] { cursor: pointer; }
.mdl-canvas .mdl-marked { outline: 3px solid #CC79A7; outline-offset: -1px; background: rgba(204, 121, 167, .3); }
.mdl-suggested { outline: 2px dashed #009E73; outline-offset: -2px; }
.mdl-trajectory svg { width: 100%; max-width: 560px; height: auto; }
.mdl-diff-label { font-size: .95rem; margin: .3rem 0 .1rem 0; }
.mdl-diff-text { min-height: 0; }
.mdl-differ { background: #E69F00; color: #000; }
/* projector mode: large type, high contrast, the canvas across the whole width (controls below it) */
.mdl-projector .mdl-canvas { font-size: 2.7rem; line-height: 1.55; border: 2px solid #000; }
.mdl-projector .mdl-canvas .mdl-gen, .mdl-projector .mdl-canvas .mdl-ch { opacity: 1 !important; color: #000; }
.mdl-projector .mdl-canvas { background: #fff; color: #000; }
.mdl-projector .mdl-mask { color: #000; background: #bdbdbd; }
.mdl-projector .mdl-prompt { color: #003f66; }
.mdl-projector #mdl-status, .mdl-projector .mdl-legend { font-size: 1.6rem; }
#mdl-gen-row.mdl-projector { flex-wrap: wrap; }
.mdl-projector #mdl-screen { order: -1; flex: 1 1 100% !important; min-width: 100% !important; }
"""
