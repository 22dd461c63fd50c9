"""`python -m microdllm <command>`: train, eval, prepare-data, generate, sample-eval, model-card, bench, import-original."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import typing
from contextlib import contextmanager
from pathlib import Path

from .checkpoint import CheckpointError


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (argparse turns the ValueError into a usage error)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_progress_flag(p):
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (it is drawn on stderr only when stderr is a terminal)")


def _progress(args) -> bool | None:
    """tqdm's switch: None = only when stderr is a terminal; False with --no-progress."""
    return None if args.progress else False


@contextmanager
def _utf8_text(path, what: str):
    """Name the file when it is not UTF-8 text (Python's message does not)."""
    try:
        yield
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({what}): {e.reason} at byte {e.start}") from None


def _add_train(sub):
    from .train_config import TrainConfig

    # Defaults are suppressed so that only the options a user typed reach cmd_train (matters for --resume).
    p = sub.add_parser("train", help="train a model (also under torchrun --nproc_per_node K)",
                       argument_default=argparse.SUPPRESS)
    p.add_argument("--resume", metavar="DIR", help="continue exactly from the training state in DIR")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        _add_field_flag(p, f, hints[f.name])
    p.set_defaults(func=cmd_train)


def _add_field_flag(p, f: dataclasses.Field, hint):
    """One --flag-name per TrainConfig field, its help and choices from the field's metadata (train_config.option):
    a bool is a switch (--x, or --x/--no-x when on by default), a list takes one or more values."""
    flag = "--" + f.name.replace("_", "-")
    text = f.metadata["help"].replace("%", "%%")
    if hint is bool:
        action = argparse.BooleanOptionalAction if f.default else "store_true"
        p.add_argument(flag, action=action, help=text)
        return
    if f.default not in (None, dataclasses.MISSING):
        text += f" ({f.default})"
    kind, many = _flag_type(hint)
    extra = {k: f.metadata[k] for k in ("choices", "metavar", "nargs") if k in f.metadata}
    extra.setdefault("nargs", "+" if many else None)
    p.add_argument(flag, type=kind, help=text, **extra)


def _flag_type(hint) -> tuple[type, bool]:
    """(value type, takes several values) of a field annotation: int, `float | None`, list[str], ..."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is list:
        return args[0], True
    return (args[0] if args else hint), False


def cmd_train(args):
    from .train import train
    from .train_config import RESUMABLE, TrainConfig
    from .training_state import read_training_info

    given = {k: v for k, v in vars(args).items() if k not in ("func", "command", "resume")}
    if getattr(args, "resume", None):
        changed = sorted(set(given) - RESUMABLE)
        if changed:
            raise ValueError(f"--resume continues the saved recipe; these options cannot change: "
                             f"{', '.join('--' + k.replace('_', '-') for k in changed)}")
        saved = read_training_info(args.resume)["config"]
        given = {**saved, "out": args.resume, **given}
    cfg = TrainConfig(**given)
    trainer = train(cfg, resume=getattr(args, "resume", None))
    if trainer.rank == 0:
        print(f"checkpoint: {cfg.out} (step {trainer.step}, {trainer.tokens_seen():,} tokens)")


def _add_eval(sub):
    p = sub.add_parser("eval", help="validation NELBO (bits/char, upper bound), masked loss, accuracy")
    p.add_argument("--checkpoint", help="directory or Hub repo id (default: the bundled model)")
    p.add_argument("--data", required=True, help="validation text file")
    p.add_argument("--windows", type=positive_int, default=256, help="validation windows of one block each")
    p.add_argument("--timesteps", type=positive_int, default=16, help="stratified timesteps per window")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--block-len", type=positive_int, help="a block-diffusion model: evaluate at this block size "
                                                         "(default: its own)")
    p.add_argument("--json", action="store_true")
    _add_progress_flag(p)
    p.set_defaults(func=cmd_eval)


def cmd_eval(args):
    from .checkpoint import load_checkpoint
    from .data import validation_windows
    from .evaluate import evaluate, headline_metric, progress_bars

    ck = load_checkpoint(args.checkpoint)
    with _utf8_text(args.data, "the validation text"):
        windows, dropped = validation_windows(args.data, ck.tokenizer, args.windows, ck.model_config.block_size,
                                              seed=args.seed)
    t0 = time.perf_counter()
    with progress_bars(_progress(args)):
        metrics = evaluate(ck.model, windows, ck.schedule, ck.tokenizer.mask_id,
                           timesteps_per_window=args.timesteps, seed=args.seed, block=args.block_len)
    metrics.update(checkpoint=ck.source, data=args.data, dropped_characters=dropped,
                   seconds=round(time.perf_counter() - t0, 1))
    if args.json:
        print(json.dumps(metrics, indent=2))
        return
    key, value = headline_metric(metrics)
    if key == "bpc":
        print(f"{ck.source}: {value:.4f} bits/char (exact, autoregressive)")
        return
    print(f"{ck.source} on {args.data} ({metrics['characters']:,} characters, {args.timesteps} timesteps each)")
    print(f"  NELBO           {metrics['nelbo_bpc']:.4f} bits/char (an upper bound on the NLL)")
    print(f"  masked loss     {metrics['masked_loss']:.4f} nats (the original's metric)")
    print(f"  masked accuracy {metrics['masked_accuracy']:.3f}")
    print("  predictive entropy (bits) by timestep: " +
          ", ".join(f"{k} {v:.2f}" for k, v in metrics["entropy_bits_by_t"].items() if v is not None))


def _add_prepare(sub):
    from .data import DEFAULT_DATASET

    p = sub.add_parser("prepare-data", help="sample stories from a Hugging Face dataset (streaming) to a text file")
    p.add_argument("--dataset", default=DEFAULT_DATASET, help="Hub id, or a local json/jsonl/parquet/csv file")
    p.add_argument("--config")
    p.add_argument("--split", default="train")
    p.add_argument("--text-column", default="text")
    p.add_argument("--num-stories", type=int, default=100)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--shuffle-buffer", type=int, default=10_000)
    p.add_argument("--separator", default="\n\n")
    p.add_argument("--no-clean", action="store_true", help="keep the text as is (no mojibake repair)")
    p.add_argument("--output", default="data/stories.txt")
    p.set_defaults(func=cmd_prepare)


def cmd_prepare(args):
    from .data import stream_stories, write_stories

    stories = stream_stories(args.dataset, args.config, args.split, args.text_column, args.num_stories,
                             args.seed, args.shuffle_buffer, clean=not args.no_clean)
    out = write_stories(stories, args.output, args.separator.encode().decode("unicode_escape"))
    print(f"wrote {len(stories)} stories ({sum(map(len, stories)):,} characters) to {out}")


def _add_card(sub):
    p = sub.add_parser("model-card", help="evaluate a checkpoint, draw samples, and write its README.md model card")
    p.add_argument("--checkpoint", required=True, help="checkpoint directory")
    p.add_argument("--data", required=True, help="validation text file")
    p.add_argument("--title", default="micro-dLLM")
    p.add_argument("--hardware", default="")
    p.add_argument("--notes", default="")
    p.add_argument("--reuse-evaluation", action="store_true",
                   help="keep the evaluation already in config.json: new samples and card only")
    _add_progress_flag(p)
    p.set_defaults(func=cmd_card)


def cmd_card(args):
    from .card import SAMPLE_PROMPTS, describe_checkpoint
    from .evaluate import headline_metric, progress_bars

    if args.progress and sys.stderr.isatty():
        steps = "the saved evaluation" if args.reuse_evaluation else "evaluating"
        print(f"model-card: {steps}, then {len(SAMPLE_PROMPTS)} samples at the default settings", file=sys.stderr)
    with progress_bars(_progress(args)), _utf8_text(args.data, "the validation text"):
        m = describe_checkpoint(args.checkpoint, args.data, title=args.title, hardware=args.hardware,
                                notes=args.notes, reuse_evaluation=args.reuse_evaluation)
    key, value = headline_metric(m)
    print(f"wrote {Path(args.checkpoint) / 'README.md'} ({key} {value:.4f})")


def _add_bench(sub):
    p = sub.add_parser("bench", help="speed: sampling, training, matmul rate and model FLOP utilisation")
    p.add_argument("--checkpoint", help="directory or Hub repo id (default: the bundled model)")
    p.add_argument("--repeats", type=positive_int, default=3)
    p.add_argument("--train-batch", type=positive_int, default=16)
    p.add_argument("--no-sampling", action="store_true", help="skip the sampler timings")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd forward and training")
    p.add_argument("--race", action="store_true",
                   help="only the race: the bundled models (or --checkpoint against the autoregressive one) at "
                        "their defaults, in every way each writes, 200 characters each, round-robin")
    p.add_argument("--seeds", type=positive_int,
                   help="with --race: each run writes with this many seeds, seed i after sample-eval's opening i, "
                        "its row their sums (default 8, speed.RACE_SEEDS: a sampled draft is kept longer on some "
                        "draws, and one draw moves the ratio by 0.1; docs/experiments.md 6l)")
    p.add_argument("--int8", action="store_true",
                   help="with --race: every model, the autoregressive one too, with int8 Linear weights")
    p.add_argument("--no-pack", action="store_true",
                   help="with --race: float Linear weights as loaded, not also packed for oneDNN (packed.py): the "
                        "race as it ran before stop 21")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: torch's own)")
    p.add_argument("--device", help="with --race: run every model on this torch device, e.g. cuda (default: cpu)")
    p.add_argument("--json", dest="json_path", help="write the results as JSON")
    p.add_argument("--md", dest="md_path", help="write the Markdown table")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args):
    import torch

    from . import speed

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.race:
        if args.no_sampling:
            raise ValueError("--race times nothing but sampling: it cannot be run with --no-sampling")
        result = {"machine": speed.machine(), "packed": not args.no_pack,
                  "race": speed.bench_race(args.repeats, checkpoint=args.checkpoint, compile=args.compile,
                                           int8=args.int8, seeds=args.seeds or speed.RACE_SEEDS,
                                           device=args.device or "cpu", pack=not args.no_pack)}
    else:
        if args.int8 or args.seeds or args.device or args.no_pack:
            raise ValueError("--int8, --seeds, --device and --no-pack apply to the race (--race); the full bench "
                             "times the CPU, and int8 forwards already")
        result = speed.run(args.checkpoint, repeats=args.repeats, train_batch=args.train_batch,
                           sampling=not args.no_sampling, compile=args.compile)
    print(speed.save(result, args.json_path, args.md_path))


def _add_import(sub):
    p = sub.add_parser("import-original", help="convert an original micro-dllm model.pt to a safetensors checkpoint")
    p.add_argument("--checkpoint", required=True, help="the original torch.save file (read weights-only)")
    p.add_argument("--vocab-from", required=True, help="the text the original was trained on")
    p.add_argument("--out", required=True)
    p.add_argument("--block-size", type=int, default=256)
    p.set_defaults(func=cmd_import)


def _add_ngram(sub):
    p = sub.add_parser("ngram", help="count a checkpoint's training text into its ngram.safetensors (ties drafts)")
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (its vocabulary is used)")
    p.add_argument("--data", required=True, nargs="+", help="the text the model was trained on")
    p.add_argument("--order", type=positive_int, default=None, help="longest n-gram counted (default: ngram.ORDER)")
    p.set_defaults(func=cmd_ngram)


def cmd_ngram(args):
    from .checkpoint import parse_config, read_config
    from .data import read_text_files
    from .ngram import MAX_ORDER, NGRAM_NAME, ORDER, NGram
    from .tokenizer import normalise

    order = args.order or ORDER
    if order > MAX_ORDER:
        raise ValueError(f"--order must be at most {MAX_ORDER}, got {order}")
    _, tokenizer, _ = parse_config(read_config(args.checkpoint), f"{args.checkpoint}/config.json")
    with _utf8_text(args.data[0], "the training text"):
        text = tokenizer.clean(normalise(read_text_files(args.data)))
    ngram = NGram.from_ids(tokenizer.encode(text), tokenizer.vocab_size, order)
    path = ngram.save(Path(args.checkpoint) / NGRAM_NAME)
    print(f"wrote {path} (orders 1-{order}, {len(ngram.keys[-1]):,} distinct {order}-grams of {len(text):,} "
          f"characters, {path.stat().st_size / 1e6:.1f} MB)")


def cmd_import(args):
    from .original import import_original

    out = import_original(args.checkpoint, args.vocab_from, args.out, block_size=args.block_size)
    print(f"wrote {out}")


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (the usage itself is what --help is for)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m microdllm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from .cli_sampling import _add_generate, _add_sample_eval  # the commands that write text

    for add in (_add_train, _add_eval, _add_prepare, _add_generate, _add_sample_eval, _add_card, _add_bench, _add_import,
                _add_ngram):
        add(sub)
    return parser


def main(argv=None) -> int:
    """Run one command. Bad input (or anything else that goes wrong) is one line, `error: ...`, on stderr
    and exit status 2, never a traceback; MICRODLLM_TRACEBACK=1 shows the traceback of an unexpected error."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # the reader went away (`| head`): nothing left to say
        sys.stderr.close()
        return 0
    except (CheckpointError, ValueError, OSError, KeyError, RuntimeError) as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - a command never ends in a traceback
        if os.environ.get("MICRODLLM_TRACEBACK"):
            raise
        print(f"error: {type(e).__name__}: {_one_line(e)} (MICRODLLM_TRACEBACK=1 shows where)", file=sys.stderr)
        return 2
    return 0


def _one_line(e: BaseException) -> str:
    """An exception's message as one line: its first non-empty line (a KeyError's repr quotes dropped)."""
    text = e.args[0] if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str) else str(e)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__
