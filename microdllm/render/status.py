"""The status lines: where a run is, what it has cost, and how it ended (Markdown strings)."""
from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: importing the sampler would import torch
    from ..sampling import DenoiseState

WRITTEN = ("revealed", "text")  # the roles of generated characters that are on the page


def _written(state: DenoiseState) -> int:
    return sum(role in WRITTEN for role in state.roles)


def status_line(state: DenoiseState) -> str:
    """'Step k of N · m masks left · e model evaluations · c characters/s' (or a Done line).

    Characters per second count the sampler's own time (state.elapsed), not rendering or slow motion.
    """
    compute_s = state.elapsed
    rate = f"{_written(state) / compute_s:,.0f} characters/s" if compute_s > 0 else "… characters/s"
    ahead = _looked_ahead(state, " more")
    drafts = f" · {verify_line(state)}" if state.phase in ("draft", "verify") else ""
    if state.done:
        return (f"**Done.** {state.generated} characters in {state.step} steps · "
                f"{state.nfe} model evaluations{ahead} · {compute_s:.2f} s of compute · {rate}{drafts}")
    masks = state.num_masked
    left = f"{masks} mask{'s' * (masks != 1)} left" if masks or not state.step else "polishing the draft"
    if state.boundaries and state.block is not None and masks:
        left += f" · block {_block_number(state)} of {len(state.boundaries)}"
    left += drafts
    return (f"Step {state.step} of {state.total_steps} · {left} · "
            f"{state.nfe} model evaluation{'s' * (state.nfe != 1)}{ahead} · {rate}")


def per_evaluation(state: DenoiseState) -> str:
    """'3.1 characters an evaluation': the characters written so far over the model evaluations."""
    return f"{_written(state) / max(state.nfe, 1):.1f} characters an evaluation"


def _checked_this_step(state: DenoiseState) -> bool:
    """Whether this step checked a draft (so state.accepted[-1] is its round): a draft kept in part
    leaves rejected characters, one kept whole writes more than the checker's own character."""
    return state.phase == "verify" and bool(state.accepted) and (any(state.rejected) or sum(state.revealed) > 1)


def verify_line(state: DenoiseState) -> str:
    """A draft-and-verify step in words: 'draft and verify: kept 5 of 15 drafted this round; 3.1 characters
    an evaluation' (a run that is done: the drafts kept in all)."""
    if state.done:
        kept, drafted = (sum(k for k, _ in state.accepted), sum(d for _, d in state.accepted))
        what = f"kept {kept} of {drafted} drafted in all"
    elif state.phase == "draft":
        what = f"drafted {sum(bool(g) for g in state.guesses)} at once, to be checked next"
    elif _checked_this_step(state):
        what = "kept {} of {} drafted this round".format(*state.accepted[-1])
    else:
        what = "nothing drafted to check this round, the checker wrote one character"
    return f"draft and verify: {what}; {per_evaluation(state)}"


def _looked_ahead(state: DenoiseState, more: str = "") -> str:
    """' (k steps from look-aheads)': the steps a block model's look-ahead served without an evaluation."""
    return f" ({state.looked_ahead}{more} steps from look-aheads)" if state.looked_ahead else ""


def rewind_line(state: DenoiseState, last: DenoiseState, running: bool = False) -> str:
    """The status while the rewind slider shows an earlier step than the run's last."""
    where = f"the run is at step {last.step}" if running else f"the run ended at step {last.step}"
    masks = state.num_masked
    return (f"**Rewound to step {state.step}** of {last.step} ({where}) · {masks} mask{'s' * (masks != 1)} "
            f"left · {state.nfe} model evaluation{'s' * (state.nfe != 1)} by then · Branch continues from here")


def _block_number(state: DenoiseState) -> int:
    return sum(1 for b in state.boundaries if b <= state.block[0])


def stopped_line(status: str) -> str | None:
    """The status to show once a run has ended: None if it finished or failed (its line stays).

    A run that ended while its status still reads 'Step k of N ...' was stopped mid-way; the line says
    so, and keeps where it stopped.
    """
    if not status.startswith("Step "):
        return None
    return f"**Stopped** at step {status.removeprefix('Step ')}"


def compare_status(label: str, state: DenoiseState, mflops: float | None = None) -> str:
    """One side of the Compare tab: how far it got, at what cost (wall time, model evaluations, the
    positions the network processed and, given, their matrix-multiply MFLOPs)."""
    done = "**done** · " if state.done else ""
    work = f" · {state.positions_evaluated:,} positions evaluated" if state.positions_evaluated else ""
    flops = f" ({mflops:,.0f} MFLOP)" if mflops is not None else ""
    ahead = _looked_ahead(state)
    return (f"**{label}** · {done}{_written(state)} of {state.generated} characters · {state.nfe} model evaluations"
            f"{ahead} · {per_evaluation(state)}{work}{flops} · {state.elapsed:.2f} s")


def compare_table(rows: list[tuple[str, DenoiseState]]) -> str:
    """The Compare tab's race as a table (HTML): per racer, its model evaluations, characters per
    evaluation, positions the network processed and wall time (the sampler's own)."""
    head = ("", "model evaluations", "characters an evaluation", "positions evaluated", "wall time")
    cells = [(html.escape(name), f"{s.nfe:,}", f"{_written(s) / max(s.nfe, 1):.2f}", f"{s.positions_evaluated:,}",
              f"{s.elapsed:.2f} s" + (" ✓" if s.done else "")) for name, s in rows]
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells)
    return ('<div class="mdl-cmp-table"><table><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
            + f"</tr></thead><tbody>{body}</tbody></table></div>")
