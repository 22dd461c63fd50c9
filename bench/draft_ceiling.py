"""How many characters can a draft made in one pass keep? (issue #21: three characters an evaluation)

    python -m bench.draft_ceiling checkpoints/tinystories-tiny-block16 --own-text --text-marginals --plot out.png

A merged draft (sampling/verify.py) is made in one pass from masks, before the verifier's next character
is known. Its characters are drawn one per position, independently, and checked by speculative sampling.
So no drafter of that kind keeps more than one that knows the exact marginals m_j of the verifier's own
text at each position: each position right on its own, the positions independent (a mean-field draft).
For contexts of validation text (`--own-text`: cut from the model's own stories, the text it drafts
behind when it writes), at the sampler's settings (the model's default T and top-p), this estimates:

  - m_j by Monte Carlo, Rao-Blackwellised: the verifier's distribution at position j averaged over
    `--paths` continuations drawn from it (position 0 is the verifier's own next character);
  - kept = E[sum_k prod_{j<=k} min(1, p_j(d_j) / q_j(d_j))] for drafts d_j ~ q_j (j >= 1) behind a
    verifier character drawn from p_0, where p_j reads the context, that character and d_1 .. d_{j-1};
    for q = m (the ceiling), for q = the network's own window (what it drafts today), and with
    `--text-marginals` for the text's marginals (the verifier at T 1) tempered and filtered as a draft is;

and prints characters a round, 1 + kept, for drafts of 1 .. window - 1 characters. A merged round costs
one evaluation, so that is the most characters an evaluation this kind of draft can reach (with a window
for every way a check can end).

It reads the network's distributions directly rather than through the sampler's stream (`denoise`): it
needs whole distributions of many continuations at once, not text. The contexts of `--own-text` are
written by the stream (`generate`), and the distributions follow the sampler's rule (`target_distribution`).
"""
from __future__ import annotations

import argparse
import json
import random

import torch

from bench.right_context import windows
from microdllm.checkpoint import Checkpoint, load_checkpoint
from microdllm.data import read_text_files
from microdllm.model import KVCache
from microdllm.quality import OPENINGS
from microdllm.remasking import target_distribution
from microdllm.sampling import generate
from microdllm.sampling.config import defaults_for

COLUMNS = {"ceiling": "exact marginals (the ceiling)", "text": "the text's marginals, drafted at T and top-p",
           "network": "the network's window"}


def cut(texts: list[str], shortest: int, seed: int = 0) -> list[str]:
    """Each text cut to a random length of at least `shortest` characters (the context a draft is made behind)."""
    rng = random.Random(seed)
    return [t[:rng.randint(min(shortest, len(t)), len(t))] for t in texts]


def own_stories(ck: Checkpoint, n: int, length: int, seed: int = 0) -> list[str]:
    """The model's own stories (its default sampler, the sample-eval openings): the text a draft is made
    behind when it writes, rather than validation text."""
    cfg = defaults_for(ck.model.config)
    return [generate(ck.model, ck.tokenizer, OPENINGS[i % len(OPENINGS)] + " ",
                     cfg.replace(seed=seed + i, gen_len=length)).text for i in range(n)]


class Verifier:
    """The causal half of a clean-causal model (its plain forward) at the sampler's settings."""

    def __init__(self, model, cfg, mask_id: int):
        self.model, self.cfg, self.mask_id = model, cfg, mask_id

    @torch.inference_mode()
    def at(self, rows: torch.Tensor, first: int) -> torch.Tensor:
        """p for the characters at positions first .. len of each row (len: the one after the row), given
        the characters before: (R, len + 1 - first, V). With `shift` the input past the end is free, so a
        dummy one is appended."""
        logits = self.model(torch.cat([rows, rows[:, -1:]], 1))
        return target_distribution(logits[:, first:rows.size(1) + 1], self.cfg, self.mask_id)

    @torch.inference_mode()
    def marginals(self, context: torch.Tensor, window: int, paths: int, g: torch.Generator) -> torch.Tensor:
        """m_0 .. m_{window-1}: the verifier's distribution at each position behind the context, averaged
        over `paths` continuations drawn from it. (window, V)."""
        rows, m = context.expand(paths, -1), []
        for _ in range(window):
            p = self.at(rows, rows.size(1))[:, 0]
            m.append(p.mean(0))
            rows = torch.cat([rows, torch.multinomial(p, 1, generator=g)], 1)
        return torch.stack(m)


@torch.inference_mode()
def network_window(model, context: torch.Tensor, window: int, mask_id: int, cfg) -> torch.Tensor:
    """What the sampler drafts behind this context: the block half's window anchored at the text's end,
    its first position (the verifier's) masked; the same pass as `verify_and_draft` in a merged round.
    (window, V) distributions; row 0 is the verifier's position."""
    clean = torch.cat([torch.tensor([-1]), context])
    ids = torch.cat([context[-1:], torch.full((window - 1,), mask_id)])
    _, rows = model.verify_and_draft(clean, KVCache(model.config.n_layer), [(len(context), ids)])
    return target_distribution(rows[0], cfg, mask_id)


def expected_kept(verifier: Verifier, context: torch.Tensor, q: torch.Tensor, draws: int,
                  g: torch.Generator) -> torch.Tensor:
    """For drafts d_j ~ q_j (j >= 1) behind v ~ p_0: the expected characters kept of a draft of the first
    L characters, for L = 1 .. window - 1 (averaged over `draws` drafts). (window - 1,)."""
    p0 = verifier.at(context[None], len(context))[0, 0]
    v = torch.multinomial(p0, draws, replacement=True, generator=g)[:, None]
    d = torch.stack([torch.multinomial(qj, draws, replacement=True, generator=g) for qj in q[1:]], 1)
    rows = torch.cat([context.expand(draws, -1), v, d], 1)
    p = verifier.at(rows, len(context) + 1)[:, :d.size(1)]                          # p_1 .. p_{W-1}
    ratio = p.gather(-1, d[..., None])[..., 0] / q[1:][torch.arange(d.size(1)), d].clamp_min(1e-12)
    passes = ratio.clamp(max=1).cumprod(1)                     # P(the first j all pass)
    return passes.cumsum(1).mean(0)                            # E[kept] for drafts of 1, 2, ... characters


def measure(ck: Checkpoint, texts: list[str], window: int, paths: int, draws: int, temperature: float | None,
            seed: int = 0, text_marginals: bool = False, ceiling: bool = True, drafter=None) -> dict:
    """Mean characters kept, by draft length, for each drafter (module docstring); ceiling=False: only the
    network's window (one pass and one check a context: a quick way to follow a training run). `drafter`:
    another clean-causal network (same vocabulary) whose window drafts for this checkpoint's verifier."""
    model, tok = ck.model.eval(), ck.tokenizer
    drafter = model if drafter is None else drafter.eval()
    cfg = defaults_for(model.config)
    if temperature is not None:
        cfg = cfg.replace(temperature=temperature)
    verifier, g = Verifier(model, cfg, tok.mask_id), torch.Generator().manual_seed(seed)
    # the text's own marginals (the verifier untempered, unfiltered), drafted as the network drafts its own
    raw = Verifier(model, cfg.replace(temperature=1.0, top_p=1.0, top_k=0), tok.mask_id) if text_marginals else None
    drafters = [k for k, on in (("ceiling", ceiling), ("network", True), ("text", raw)) if on]
    kept, entropy = {k: torch.zeros(window - 1) for k in drafters}, torch.zeros(window)
    for text in texts:
        context = torch.tensor(tok.encode(tok.clean(text)))
        if ceiling:
            m = verifier.marginals(context, window, paths, g)
            kept["ceiling"] += expected_kept(verifier, context, m, draws, g)
            entropy += -(m * m.clamp_min(1e-12).log2()).sum(-1)
        kept["network"] += expected_kept(verifier, context, network_window(drafter, context, window, tok.mask_id, cfg),
                                         draws, g)
        if raw:
            text_m = raw.marginals(context, window, paths, g)
            as_drafted = target_distribution(text_m.clamp_min(1e-30).log(), cfg, tok.mask_id)
            kept["text"] += expected_kept(verifier, context, as_drafted, draws, g)
    n = len(texts)
    return {"contexts": n, "window": window, "paths": paths, "draws": draws,
            "temperature": cfg.temperature, "top_p": cfg.top_p, "marginal_entropy_bits": (entropy / n).tolist(),
            **{f"kept_{k}": (v / n).tolist() for k, v in kept.items()}}


def plot(r: dict, out: str, measured: float | None = None) -> None:
    """Characters a round against draft length, one line per drafter (and the sampler's measured rate)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from microdllm.atomic import atomic_write

    fig, ax = plt.subplots(figsize=(7, 4))
    for key in ("ceiling", "text", "network"):
        if f"kept_{key}" in r:
            kept = r[f"kept_{key}"]
            ax.plot(range(1, len(kept) + 1), [1 + k for k in kept], marker="o", label=COLUMNS[key])
    if measured:
        ax.axhline(measured, color="grey", ls=":", label=f"the default, measured ({measured:.2f}, drafts of 4)")
    ax.axhline(3, color="black", lw=0.8, label="the target: 3 characters an evaluation")
    ax.set_xlabel("characters drafted (the window less the verifier's position)")
    ax.set_ylabel("characters a round (1 + kept)")
    ax.set_title(f"{r['checkpoint']}: T {r['temperature']}, top-p {r['top_p']}, {r['contexts']} contexts")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    try:
        atomic_write(out, lambda p: fig.savefig(p, dpi=110, format="png"))
    finally:
        plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--contexts", type=int, default=32, help="contexts of validation text")
    p.add_argument("--shortest", type=int, default=32)
    p.add_argument("--longest", type=int, default=128)
    p.add_argument("--window", type=int, default=9, help="the verifier's position + up to window - 1 drafted")
    p.add_argument("--paths", type=int, default=64, help="continuations averaged into each marginal")
    p.add_argument("--draws", type=int, default=64, help="drafts checked per context")
    p.add_argument("--temperature", type=float, help="the verifier's (default: the model's default)")
    p.add_argument("--data", default="../shared/data/tinystories_valid.txt")
    p.add_argument("--own-text", action="store_true", help="contexts cut from the model's own stories")
    p.add_argument("--network-only", action="store_true", help="only the network's window (no ceiling: quick)")
    p.add_argument("--text-marginals", action="store_true",
                   help="also the text's exact marginals (the verifier at T 1), tempered and filtered as a draft is")
    p.add_argument("--drafter", help="draft with this checkpoint's window instead (the verifier stays CHECKPOINT's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    p.add_argument("--plot", help="draw characters a round against draft length (PNG)")
    p.add_argument("--measured", type=float, help="the sampler's measured characters an evaluation, for the plot")
    p.add_argument("--replot", metavar="JSON", help="only redraw --plot from a saved --json")
    args = p.parse_args(argv)
    if args.replot:
        with open(args.replot) as f:
            plot(json.load(f), args.plot, args.measured)
        return
    ck = load_checkpoint(args.checkpoint)
    if not ck.model.config.clean_causal:
        raise SystemExit(f"{args.checkpoint}: not a clean-causal model (it has no verifier to draft for)")
    drafter = load_checkpoint(args.drafter) if args.drafter else None
    if drafter and (not drafter.model.config.clean_causal or drafter.tokenizer.chars != ck.tokenizer.chars):
        raise SystemExit(f"{args.drafter}: not a clean-causal model with {args.checkpoint}'s vocabulary")
    if args.own_text:
        texts = own_stories(ck, args.contexts, args.longest, args.seed)
    else:
        texts = windows(read_text_files([args.data]), args.contexts, args.longest, args.seed)
    r = {"checkpoint": args.checkpoint,
         **measure(ck, cut(texts, args.shortest, args.seed), args.window, args.paths, args.draws, args.temperature,
                   args.seed, args.text_marginals, ceiling=not args.network_only,
                   drafter=drafter and drafter.model), "drafter": args.drafter or args.checkpoint}
    drafted_by = f", drafts by {args.drafter}" if args.drafter else ""
    print(f"{r['checkpoint']}: T {r['temperature']}, top-p {r['top_p']}, {r['contexts']} contexts{drafted_by}")
    columns = [k for k in ("ceiling", "text", "network") if f"kept_{k}" in r]
    print("| draft length | characters a round: " + " | ".join(COLUMNS[k] for k in columns) + " |")
    print("|---:|" + "---:|" * len(columns))
    for L, row in enumerate(zip(*(r[f"kept_{k}"] for k in columns)), 1):
        print(f"| {L} | " + " | ".join(f"{1 + v:.2f}" for v in row) + " |")
    if not args.network_only:
        print("marginal entropy (bits) at positions 0..:", " ".join(f"{e:.2f}" for e in r["marginal_entropy_bits"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), **r}, f, indent=2)
    if args.plot:
        plot(r, args.plot, args.measured)


if __name__ == "__main__":
    main()
