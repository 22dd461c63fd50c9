"""The Generate tab's controls for driving a run by hand (handlers: hand.py), its keyboard and clicks.

    Hold / Next step / Continue / Step back     space = hold or continue, → = next step, ← = step back
    click a mask: mark it for "Reveal these"; click any character: its position (Edit, its chart)
    Projector mode: a CSS class on the page (large type, high contrast, the canvas across the width)
"""
from __future__ import annotations

import gradio as gr

from .hand import continue_run, diff, edit, hold, next_step, reveal, step_back, trajectory

# Run once when the page loads (Blocks.launch(js=...)): the keyboard, and clicks on the canvas that
# fill in the position box (#mdl-pos) and toggle a mask's mark (class mdl-marked, listed in #mdl-marks).
BROWSER_JS = """() => {
  const box = (id) => document.querySelector(`#${id} textarea, #${id} input`);
  const put = (el, value) => { if (!el) return; el.value = value;
    el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); };
  document.addEventListener('click', (e) => {
    const c = e.target.closest && e.target.closest('#mdl-canvas .mdl-c[data-pos]');
    if (!c) return;
    const pos = c.dataset.pos;
    if (c.classList.contains('mdl-mask')) {
      const marks = new Set((box('mdl-marks').value || '').split(/[ ,]+/).filter(Boolean));
      if (marks.has(pos)) { marks.delete(pos); c.classList.remove('mdl-marked'); }
      else { marks.add(pos); c.classList.add('mdl-marked'); }
      put(box('mdl-marks'), [...marks].sort((a, b) => a - b).join(', '));
    }
    put(document.querySelector('#mdl-pos input'), pos);
  });
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    const typing = t && (/^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(t.tagName) || t.isContentEditable);
    if (e.altKey || e.ctrlKey || e.metaKey || typing) return;
    const click = (id) => { const b = document.getElementById(id); if (b) { e.preventDefault(); b.click(); } };
    if (e.key === ' ') {
      const status = document.querySelector('#mdl-status');
      click(status && /Paused/.test(status.innerText) ? 'mdl-continue' : 'mdl-hold');
    } else if (e.key === 'ArrowRight') click('mdl-next');
    else if (e.key === 'ArrowLeft') click('mdl-back');
  });
}"""

# on the Generate tab's row (inside the app's container, which Gradio scopes custom CSS to) and the body
PROJECTOR_JS = """(on) => { for (const el of [document.body, document.getElementById('mdl-gen-row')]) {
  if (el) el.classList.toggle('mdl-projector', !!on); } return []; }"""


def drive_views() -> dict:
    """Under the rewind slider: hold and step, reveal by hand, edit, a position's chart, the comparison."""
    with gr.Row(equal_height=True):
        hold_btn = gr.Button("⏸ Hold", elem_id="mdl-hold", min_width=70)
        next_btn = gr.Button("Next step ▷", elem_id="mdl-next", min_width=70)
        cont = gr.Button("Continue ▶", elem_id="mdl-continue", min_width=70)
        back = gr.Button("◁ Step back", elem_id="mdl-back", min_width=70)
        projector = gr.Checkbox(False, label="Projector mode", elem_id="mdl-projector", min_width=70)
    with gr.Accordion("Drive the run by hand (space: hold / continue · →: next step · ←: step back)", open=True):
        with gr.Row(equal_height=True):
            marks = gr.Textbox(label="Masks to reveal", placeholder="click masks on the paused canvas, e.g. 12, 15",
                               elem_id="mdl-marks", max_lines=1, scale=2)
            char = gr.Textbox(label="Character(s)", max_lines=1, elem_id="mdl-char", scale=1,
                              info="empty: the model's guess (Reveal) / mask again (Edit)")
            pos = gr.Number(None, label="Position (click a character)", precision=0, elem_id="mdl-pos", scale=1)
        with gr.Row():
            reveal_btn = gr.Button("Reveal these", elem_id="mdl-reveal")
            edit_btn = gr.Button("Edit the character at the position", elem_id="mdl-edit")
            diff_btn = gr.Button("Compare with the original", elem_id="mdl-diff")
        chart = gr.HTML("", elem_id="mdl-trajectory", label="How this character made up its mind")
        compared = gr.HTML("", elem_id="mdl-diff-view")
    return dict(hold=hold_btn, next=next_btn, cont=cont, back=back, projector=projector, marks=marks, char=char,
                pos=pos, reveal=reveal_btn, edit=edit_btn, diff=diff_btn, trajectory=chart, compared=compared)


def wire_drive(v: dict, c: dict, run, delay_ms, play_event):
    """The events of drive_views; returns Continue's (Stop cancels it like a run)."""
    outputs = [c["canvas"], c["chart"], v["scrub"], c["heatmap"], c["status"], c["final"]]
    quiet = dict(show_progress="hidden", concurrency_limit=None)
    v["hold"].click(hold, inputs=run, outputs=c["status"], api_name="hold", **quiet)
    v["next"].click(next_step, inputs=run, outputs=outputs, api_name="next_step", show_progress="hidden",
                    concurrency_id="model", cancels=[play_event])
    v["back"].click(step_back, inputs=[v["scrub"], run],
                    outputs=[c["canvas"], c["chart"], c["status"], c["heatmap"], v["scrub"]], api_name="step_back",
                    cancels=[play_event], **quiet)
    v["reveal"].click(reveal, inputs=[v["marks"], v["char"], v["scrub"], run], outputs=[*outputs, v["marks"]],
                      api_name="reveal", show_progress="hidden", concurrency_id="model")
    v["edit"].click(edit, inputs=[v["pos"], v["char"], v["scrub"], run], outputs=outputs, api_name="edit",
                    show_progress="hidden", concurrency_id="model")
    v["diff"].click(diff, inputs=run, outputs=v["compared"], api_name="diff", **quiet)
    v["pos"].change(trajectory, inputs=[v["pos"], run], outputs=v["trajectory"], api_name="trajectory", **quiet)
    v["projector"].change(None, inputs=v["projector"], js=PROJECTOR_JS, api_visibility="private")
    return v["cont"].click(continue_run, inputs=[delay_ms, run], outputs=outputs, api_name="continue_run",
                           show_progress="hidden", concurrency_id="model", cancels=[play_event])
