"""`python -m microdllm generate` and `sample-eval`: the commands that write text, through the one sampler
stream (`sampling.denoise`), and the sampler flags they share. Registered by cli.py's parser."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from .checkpoint import BUNDLED_AR_DIR
from .cli import _add_progress_flag, _progress, _utf8_text, positive_int


def _add_sampler_args(p):
    from .sampling import REMASKING_CHOICES, SAMPLER_PRESETS

    p.add_argument("--int8", action="store_true", help="int8 weights for the Linear layers (CPU)")
    p.add_argument("--compile", action="store_true",
                   help="the full-sequence model's evaluations through torch.compile (faster after a warm-up of "
                        "seconds); KV-cached ones (block and autoregressive models) run eager, and unpacked: "
                        "slower than without it (docs/performance.md, stop 21)")
    p.add_argument("--preset", choices=list(SAMPLER_PRESETS), default="default",
                   help="classic = the original sampler (100 steps, low_confidence, full re-masking, t=0 pass)")
    p.add_argument("--steps", type=int)
    p.add_argument("--temperature", type=float)
    p.add_argument("--remasking", choices=REMASKING_CHOICES)
    p.add_argument("--remask-ratio", type=float)
    p.add_argument("--gen-len", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--top-k", type=int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--block-len", type=int)
    p.add_argument("--threshold", type=float, help="also reveal every masked character this confident (1 = off)")
    p.add_argument("--polish", type=int, help="passes that re-read the finished draft and fix typos (0 = off)")
    p.add_argument("--entropy-bound", type=float,
                   help="also reveal the surest masks of a step while their entropies, less the largest, sum to at "
                        "most this many nats (EB-sampler; off by default)")
    p.add_argument("--reveal-schedule", help="masks left after each step: cosine, linear, loglinear, or model "
                                             "(the training schedule)")
    p.add_argument("--no-lookahead", dest="lookahead", action="store_false", default=None,
                   help="a block-diffusion model: never look a block ahead on a guess (the same text, more evaluations)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--verify", dest="mode", action="store_const", const="verify",
                      help="a clean-causal block model: draft a block at once and check it with the model's causal "
                           "half (the text follows that half; greedy: exactly its text)")
    mode.add_argument("--left-to-right", dest="mode", action="store_const", const="left-to-right",
                      help="write one character a step with the network's left-to-right (causal) half; an "
                           "autoregressive checkpoint writes so anyway")
    mode.add_argument("--denoise", dest="mode", action="store_const", const="denoise",
                      help="write from masks (the default, where a model's defaults do not say otherwise)")
    p.add_argument("--no-merge", dest="merge", action="store_false", default=None,
                   help="--verify: draft and check in evaluations of their own (two a round) instead of one")
    p.add_argument("--draft-window", type=int,
                   help="--verify: the window a draft is written in, the checked character first (default: the "
                        "model's; --block-len overrides it)")
    p.add_argument("--outcome-windows", type=int,
                   help="--verify: how many ways a check can end get a draft of their own in the same evaluation, "
                        "besides the likeliest (0 = only the likeliest does)")
    p.add_argument("--draft-tree", type=int,
                   help="--verify: check a tree of this many drafted characters, the window's likeliest paths, in "
                        "place of one path drawn from it (0 = a path); more characters a round for more positions")
    p.add_argument("--copula", type=float,
                   help="--verify: how strongly the checkpoint's character n-gram (ngram.safetensors) ties a draft's "
                        "characters together (0 = off; default 0.75); the text is the verifier's either way")


def _add_generate(sub):
    p = sub.add_parser("generate", help="write text by iterative denoising")
    p.add_argument("--checkpoint", help="directory or Hub repo id (default: the bundled model)")
    p.add_argument("--prompt", default="", help="text to continue (empty: unconditional)")
    p.add_argument("--infill", action="store_true", help="treat the prompt as a template: fill its _ masks")
    _add_sampler_args(p)
    p.add_argument("--trace", action="store_true", help="print every state's text")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--gif", help="write the trace as an animated GIF")
    p.add_argument("--mp4", help="write the trace as an MP4 video")
    p.add_argument("--trace-every", type=int, default=1)
    p.add_argument("--frame-ms", type=int, default=180)
    p.set_defaults(func=cmd_generate)


def sampler_config(args, model_config=None, ngram=True):
    """The preset (`default`: the defaults for this kind of model) with the flags given on top. ngram: whether
    the checkpoint has an n-gram to tie drafts with (without one the copula is off, and --copula refused)."""
    from .sampling import SAMPLER_PRESETS, defaults_for, switches

    cfg = defaults_for(model_config) if args.preset == "default" else SAMPLER_PRESETS[args.preset]
    names = {"steps": "steps", "temperature": "temperature", "remasking": "remasking", "remask_ratio": "remask_ratio",
             "gen_len": "gen_len", "seed": "seed", "top_k": "top_k", "top_p": "top_p", "block_len": "block_len",
             "threshold": "threshold", "reveal_schedule": "reveal_schedule", "polish": "polish",
             "lookahead": "lookahead", "mode": "mode", "merge": "merge",
             "draft_window": "draft_window", "outcome_windows": "outcome_windows", "draft_tree": "draft_tree",
             "copula": "copula", "entropy_bound": "entropy_bound"}
    given = {field: getattr(args, arg) for arg, field in names.items() if getattr(args, arg) is not None}
    knobs = switches(given.pop("threshold", cfg.threshold), given.pop("reveal_schedule", cfg.reveal_schedule))
    if not ngram:
        if given.get("copula"):
            raise ValueError("--copula ties drafts with the checkpoint's ngram.safetensors, and this checkpoint has "
                             "none (python -m microdllm ngram --checkpoint DIR --data TRAINING_TEXT writes one)")
        knobs["copula"] = 0.0
    return cfg.replace(**given, **knobs)


def cmd_generate(args):
    from .sampling import denoise
    from .serving import serve_checkpoint

    for flag, path in (("--gif", args.gif), ("--mp4", args.mp4)):
        if path and Path(path).is_dir():
            raise ValueError(f"{path}: a directory; {flag} takes the file to write")
    ck = serve_checkpoint(_infilling_checkpoint(args), int8=args.int8, compile=args.compile)
    cfg = sampler_config(args, ck.model_config, ngram=ck.ngram is not None)
    keep_all = bool(args.gif or args.mp4)
    states, last = [], None
    for state in denoise(ck.model, ck.tokenizer, args.prompt, cfg, infill=args.infill, schedule=ck.schedule, ngram=ck.ngram):
        last = state
        if keep_all:
            states.append(state)
        if args.trace and not args.json and (state.step % max(1, args.trace_every) == 0 or state.done):
            print(f"--- step {state.step}/{state.total_steps}  masks {state.num_masked}  nfe {state.nfe}")
            print(state.text)
    if args.gif or args.mp4:
        from . import viz
        if args.gif:
            viz.write_gif(states, args.gif, frame_ms=args.frame_ms, every=args.trace_every)
        if args.mp4:
            viz.write_mp4(states, args.mp4, frame_ms=args.frame_ms, every=args.trace_every)
    if args.json:
        print(json.dumps({"text": last.text, "prompt": args.prompt, "steps": last.step, "nfe": last.nfe,
                          "seconds": round(last.elapsed, 4), "checkpoint": ck.source,
                          "settings": dataclasses.asdict(cfg)}))
    elif not args.trace:
        print(last.text)
    for path in (args.gif, args.mp4):
        if path and not args.json:
            print(f"wrote {path}", file=sys.stderr)


def _infilling_checkpoint(args):
    """The checkpoint asked for; for --infill with one that writes left to right (block or autoregressive),
    the bundled full-sequence model instead, said on stderr."""
    from .checkpoint import BUNDLED_DIFFUSION_DIR, load_checkpoint

    ck = load_checkpoint(args.checkpoint)
    if args.infill and (ck.model_config.causal or ck.model_config.attn_block):
        print(f"{ck.source} writes left to right ({ck.model_config.kind}), so it cannot fill in blanks; "
              f"filling them in with the bundled full-sequence model {BUNDLED_DIFFUSION_DIR.name}", file=sys.stderr)
        ck = load_checkpoint(BUNDLED_DIFFUSION_DIR)
    return ck


def _add_sample_eval(sub):
    from .data import CORPUS_TRAIN, CORPUS_VALID

    p = sub.add_parser("sample-eval", help="generate from fixed story openings and score the text")
    p.add_argument("--checkpoint", help="directory or Hub repo id (default: the bundled model)")
    p.add_argument("--n", type=positive_int, default=64, help="stories to generate")
    p.add_argument("--words-from", default=CORPUS_TRAIN,
                   help=f"training text for the word list (default: {CORPUS_TRAIN}, relative to the current directory)")
    p.add_argument("--ar-checkpoint", default=str(BUNDLED_AR_DIR),
                   help="autoregressive baseline for generative bits/char (default: the bundled one; 'none': skip)")
    p.add_argument("--reference", help=f"validation text: real stories scored the same way (default: {CORPUS_VALID}, "
                                       f"relative to the current directory, when it exists; else none)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--verbose", action="store_true", help="print the start of every story as it is written (on stderr)")
    _add_progress_flag(p)
    _add_sampler_args(p)
    p.set_defaults(func=cmd_sample_eval)


def cmd_sample_eval(args):
    from .checkpoint import load_checkpoint
    from .quality import sample_eval
    from .serving import serve_checkpoint

    known, refs = _sample_eval_texts(args)
    ck = serve_checkpoint(load_checkpoint(args.checkpoint), int8=args.int8, compile=args.compile)
    ar = None if args.ar_checkpoint in (None, "", "none") else load_checkpoint(args.ar_checkpoint)
    if ar is not None and not ar.model_config.causal:
        raise ValueError(f"{args.ar_checkpoint}: not an autoregressive (causal) checkpoint")
    cfg = sampler_config(args, ck.model_config, ngram=ck.ngram is not None)
    seed = 0 if args.seed is None else args.seed
    result = sample_eval(ck, known, cfg, n=args.n, seed=seed, ar=ar, reference_texts=refs, progress=_progress(args),
                         verbose=args.verbose)
    result.update(checkpoint=ck.source, settings=dataclasses.asdict(cfg), int8=args.int8,
                  compiled=args.compile)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_sample_eval(result, ck.source, cfg, causal=ck.model_config.causal)


def _sample_eval_texts(args) -> tuple[set[str], list[str] | None]:
    """The training text's word list and the reference stories (from the default file when it is here),
    checked before any model loads."""
    from .data import CORPUS_VALID, read_text_files
    from .quality import reference_stories, vocabulary

    for path, flag, what in ((args.words_from, "--words-from", "the word list comes from the training text"),
                             (args.reference, "--reference", "the real stories to compare with")):
        if path and not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file ({what}; pass {flag} FILE)")
    reference = args.reference or (CORPUS_VALID if Path(CORPUS_VALID).is_file() else None)
    with _utf8_text(args.words_from, "the training text for the word list"):
        known = vocabulary(read_text_files([args.words_from]))
    with _utf8_text(reference, "the reference stories"):
        return known, reference_stories(reference, args.n) if reference else None


def _print_sample_eval(result: dict, source: str, cfg, causal: bool = False):
    """The sample-eval metrics as a table, each target met or not, then the first samples."""
    from .quality import TARGETS

    how = {"verify": f"draft and verify ({'merged' if cfg.merge else 'unmerged'}, window "
                     f"{cfg.block_len or cfg.draft_window or 'the block'}, {cfg.outcome_windows} outcome windows"
                     f"{f', a tree of {cfg.draft_tree}' if cfg.draft_tree else ''}"
                     f"{f', tied by the n-gram at {cfg.copula}' if cfg.copula else ''})",
           "left-to-right": "left to right"}.get(cfg.mode, f"{cfg.remasking} remasking, {cfg.steps} steps")
    how = "left to right" if causal else how
    print(f"{source}: {result['n']} continuations, {how}, T={cfg.temperature}")
    for key in ("word_share", "real_word_share", "distinct_2", "gen_bpc", "real_bpc", "gen_over_real",
                "mean_nfe", "chars_per_nfe", "mean_seconds", "chars_per_second"):
        if key in result:
            target = ""
            if key in result["targets_met"]:
                op, bound = TARGETS[key]
                target = f"   target {op} {bound}: {'met' if result['targets_met'][key] else 'NOT met'}"
            print(f"  {key:<16} {result[key]:.4f}{target}")
    for sample in result["samples"]:
        print("---\n" + sample)
