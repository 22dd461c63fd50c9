"""Model cards: the README.md (YAML metadata + Markdown) of a checkpoint directory, and the short
Markdown summary of a loaded checkpoint that the app's Model tab shows.

It reads what config.json and the checkpoint's metadata say, and evaluates nothing itself
(except `describe_checkpoint`, which evaluates, samples, then writes the card).
"""
from __future__ import annotations

import json
from pathlib import Path

from .atomic import atomic_write
from .checkpoint import CheckpointError, read_config
from .config import ModelConfig
from .evaluate import METRIC_LABELS, headline_metric
from .ngram import NGRAM_NAME, load_ngram
from .sampling.config import VERIFY_DEFAULT

KIND_INTROS = {
    "diffusion": "A character-level **masked-diffusion language model** (MDLM / LLaDA recipe, shrunk), trained with "
                 "micro-dLLM. It writes by starting from a fully masked sequence and un-masking characters, "
                 "everywhere at once, over a few dozen denoising steps; it can fill in blanks.",
    "block diffusion": "A character-level **block-diffusion language model** (BD3-LM recipe, shrunk), trained with "
                       "micro-dLLM{origin}. It writes blocks of {B} characters left to "
                       "right; inside a block the characters are un-masked in parallel, diffusion-style, while "
                       "the blocks behind it come from a KV cache.",
    "autoregressive": "A character-level **autoregressive language model** (the same Transformer with causal "
                      "attention), trained with micro-dLLM as the baseline of its diffusion models. It writes "
                      "left to right, one character per model evaluation.",
}


# A block model whose clean half is causal holds an autoregressive model too (model.py, clean_causal).
CLEAN_CAUSAL_INTRO = (" Its clean half reads the text causally, so the same network is also an autoregressive "
                      "model: by default it drafts a few characters at once (windows of {W} inside the block of "
                      "{B}; the evaluation that checks a draft also drafts the next, for the {ends} likeliest "
                      "ways the check can end) and checks each draft with that half, keeping the agreeing part "
                      "(draft and verify); it can also write by denoising blocks, or left to right with that "
                      "half alone.")
# ... and where the checkpoint has the training text's n-gram (ngram.py), drafts are drawn with it.
NGRAM_NOTE = (" `ngram.safetensors` holds the training text's character n-gram (orders 1-{order}, counts only): "
              "draft and verify draws each draft's characters tied together by it, so more of each draft is "
              "kept; the text is the verifier's either way.")


ORIGINS = {"random": " from random weights", "autoregressive": " from its autoregressive baseline"}
MAX_STAGES = 8   # how far back a card follows init_from


def first_stage(cfg: dict) -> str:
    """Where a checkpoint's training began, following each stage's init_from back to its first:
    "random" (random weights), "autoregressive" (an autoregressive checkpoint) or "" (unknown: a
    stage that is not on this machine, or a chain longer than MAX_STAGES)."""
    for _ in range(MAX_STAGES):
        tcfg = cfg.get("training", {}).get("config", {})
        if cfg.get("model", {}).get("causal"):
            return "autoregressive"
        if not tcfg.get("init_from"):
            return "random" if tcfg else ""
        try:
            cfg = read_config(tcfg["init_from"])
        except CheckpointError:
            return ""
    return ""


def kind_intro(model_config, origin: str = "") -> str:
    """The model card's first paragraph: what kind of model it is, where its training began (`first_stage`)
    and how it writes."""
    intro = KIND_INTROS[model_config.kind]
    if getattr(model_config, "clean_causal", False):
        intro += CLEAN_CAUSAL_INTRO
    return intro.format(B=model_config.attn_block, W=VERIFY_DEFAULT.draft_window,
                        ends=1 + VERIFY_DEFAULT.outcome_windows, origin=ORIGINS.get(origin, ""))


def kind_label(model_config) -> str:
    """What a model is, in a few words: 'block diffusion, blocks of 4', 'full-sequence diffusion', ..."""
    kind = model_config.kind
    if kind == "block diffusion" and getattr(model_config, "clean_causal", False):
        return (f"block diffusion, blocks of {model_config.attn_block}, with a causal clean half (drafts a few "
                f"characters, checks them left to right)")
    if kind == "block diffusion":
        return f"block diffusion, blocks of {model_config.attn_block} (block by block, left to right)"
    return "full-sequence diffusion (all at once; fills in blanks)" if kind == "diffusion" else \
        "autoregressive (left to right)"


def _fmt(x, digits=3):
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _init_rows(source, tr: dict) -> list[str]:
    """Where the weights started, when they started from another checkpoint, and the budget of both."""
    if not source:
        return []
    try:
        src = read_config(source).get("training", {})
    except CheckpointError:  # a source that is not here (a Hub id) is still named
        return [f"| initialised from | `{source}` |"]
    kind = "autoregressive" if src.get("config", {}).get("causal") else "diffusion"
    tokens, seconds = src.get("tokens", 0), src.get("seconds", 0)
    return [f"| initialised from | `{source}` ({kind}: {src.get('step', '?'):,} steps, {tokens:,} characters, "
            f"{seconds / 3600:.2f} h) |",
            f"| both stages | {tokens + tr.get('tokens', 0):,} characters, "
            f"{(seconds + tr.get('seconds', 0)) / 3600:.2f} h |"]


def _front_matter(title: str, ev: dict) -> list[str]:
    """The Hub's YAML metadata: the headline validation metric (nan until the checkpoint is evaluated)."""
    try:
        key, value = headline_metric(ev)
    except KeyError:
        key, value = "nelbo_bpc", float("nan")
    name = {"nelbo_bpc": "validation NELBO bits per character (upper bound)",
            "bpc": "validation bits per character (exact)"}[key]
    return [
        "---",
        "language: en",
        "license: mit",
        "library_name: microdllm",
        "pipeline_tag: text-generation",
        "tags: [diffusion, masked-diffusion, character-level, tinystories, micro-dllm]",
        "datasets: [roneneldan/TinyStories]",
        "model-index:",
        f"- name: {json.dumps(title)}",
        "  results:",
        "  - task: {type: text-generation}",
        "    dataset: {name: TinyStories (validation sample), type: roneneldan/TinyStories}",
        "    metrics:",
        f"    - {{type: {key}, name: {name}, value: {_fmt(value, 4)}}}",
        "---",
    ]


def _model_table(cfg: dict) -> list[str]:
    m, params = cfg["model"], cfg.get("training", {}).get("parameters", "?")
    return [
        "## Model",
        "",
        "| | |",
        "|---|---|",
        f"| kind | {kind_label(ModelConfig.from_dict(m))} |",
        f"| parameters | {params:,} |" if isinstance(params, int) else f"| parameters | {params} |",
        f"| layers / heads / width | {m['n_layer']} / {m['n_head']} / {m['n_embd']} |",
        f"| context | {m['block_size']} characters |",
        f"| vocabulary | {len(cfg['vocab'])} characters + 1 mask id |",
        *([] if m.get("causal") else [f"| diffusion | T = {m['timesteps']}, {cfg['diffusion']['schedule']} survival "
                                      f"schedule, timestep embedding {'on' if m['time_embedding'] else 'off'} |"]),
        *(["| alignment | shifted: character i is read from position i - 1 (behind a learned start "
           "vector), as in a left-to-right model |"] if m.get("shift") else []),
    ]


def _training_table(cfg: dict, hardware: str) -> list[str]:
    m, tr = cfg["model"], cfg.get("training", {})
    tcfg = tr.get("config", {})
    step = tr.get("step", "?")
    return [
        "## Training",
        "",
        "| | |",
        "|---|---|",
        f"| data | {', '.join(Path(d).name for d in tcfg.get('data', [])) or tcfg.get('dataset', '?')} |",
        f"| preset | {tcfg.get('preset', '?')} |",
        f"| optimizer | {tcfg.get('optimizer', '?')} (lr {tcfg.get('lr', '?')}, Muon lr {tcfg.get('muon_lr', '-')}) |",
        f"| loss | {tcfg.get('loss', '?')} |",
        f"| batch | {tcfg.get('batch_size', '?')} x {m['block_size']} characters |",
        f"| steps | {step:,} |" if isinstance(step, int) else f"| steps | {step} |",
        f"| tokens seen | {tr.get('tokens', 0):,} |",
        f"| wall time | {tr.get('seconds', 0) / 3600:.2f} h |",
        *_init_rows(tcfg.get("init_from"), tr),
        f"| hardware | {hardware or tr.get('device', '?')} |",
    ]


def _evaluation(ev: dict) -> list[str]:
    lines = ["## Evaluation", ""]
    if ev:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v, 4)} |" for k, v in ev.items() if isinstance(v, (int, float))]
        if "nelbo_bpc" in ev:
            lines += ["", "The NELBO is an upper bound on the negative log-likelihood (bits per character)."]
        else:
            lines += ["", "Bits per character: the exact negative log-likelihood of the validation text."]
    return lines


def _samples(samples: list[dict] | None) -> list[str]:
    if not samples:
        return []
    lines = ["", "## Uncurated samples", ""]
    for s in samples:
        lines += [f"Settings: `{s['settings']}`", "", "```text", s["text"], "```", ""]
    return lines


def write_model_card(directory, *, title: str, hardware: str = "", samples: list[dict] | None = None,
                     evaluation: dict | None = None, notes: str = "") -> Path:
    """Write `directory/README.md` from its config.json plus evaluation results and samples."""
    directory = Path(directory)
    cfg = read_config(directory)
    ev = evaluation or {}
    model_config = ModelConfig.from_dict(cfg["model"])
    intro = kind_intro(model_config, first_stage(cfg))
    if (directory / NGRAM_NAME).is_file():
        intro += NGRAM_NOTE.format(order=load_ngram(directory / NGRAM_NAME, model_config.vocab_size).order)
    lines = [*_front_matter(title, ev), "", f"# {title}", "", intro, "", *_model_table(cfg), "",
             *_training_table(cfg, hardware), "", "![loss curve](loss_curve.png)", "", *_evaluation(ev),
             *_samples(samples), *(["", notes] if notes else [])]
    lines += ["", "## Use", "", "```bash",
              "python -m microdllm generate --checkpoint <this repo id or directory> --prompt \"Once upon a time\"",
              "MICRODLLM_CHECKPOINT=<this repo id> python app.py", "```", ""]
    return atomic_write(directory / "README.md", "\n".join(lines))


SAMPLE_PROMPTS = ["Once upon a time, there was a little girl named Lily.", "One day, a boy named Tom went to the park.",
                  "The sun was shining and the birds were singing."]


def _sample(ck, prompt: str, seed: int) -> dict:
    """One uncurated sample at this kind of model's default settings, and the settings in words."""
    from .sampling import defaults_for, generate

    cfg = defaults_for(ck.model_config).replace(seed=seed)
    prompt = ck.tokenizer.clean(prompt + " ")  # a model trained on other text may lack some characters
    text = generate(ck.model, ck.tokenizer, prompt, cfg, schedule=ck.schedule, ngram=ck.ngram).text
    draw = f"temperature {cfg.temperature}" + (f", top-p {cfg.top_p}" if cfg.top_p < 1 else "") + \
        (f", top-k {cfg.top_k}" if cfg.top_k else "")
    if ck.model_config.causal:
        settings = f"prompt {prompt!r}, left to right, {draw}, seed {seed}"
    elif cfg.mode == "verify":
        settings = (f"prompt {prompt!r}, draft and verify (windows of {cfg.draft_window}, the "
                    f"{1 + cfg.outcome_windows} likeliest ways a check can end"
                    f"{f', drafts tied by the n-gram at {cfg.copula}' if cfg.copula and ck.ngram else ''}), {draw}, "
                    f"seed {seed}")
    else:
        settings = (f"prompt {prompt!r}, {cfg.remasking}, remask ratio {cfg.remask_ratio}, threshold "
                    f"{cfg.threshold}, {cfg.reveal_schedule or 'training'} reveal schedule, {cfg.steps} steps"
                    f"{' per block' if ck.model_config.kind == 'block diffusion' else ''}, {cfg.polish} polish "
                    f"passes, {draw}, seed {seed}")
    return {"settings": settings, "text": text}


def describe_checkpoint(directory, val_file, *, title: str, hardware: str = "", windows: int = 256,
                        timesteps: int = 16, notes: str = "", reuse_evaluation: bool = False) -> dict:
    """Evaluate a checkpoint on a validation file, draw three uncurated samples at the default
    sampler settings, and write its model card. Returns the evaluation metrics.
    reuse_evaluation: keep the evaluation config.json already holds (new samples and card only)."""
    from .checkpoint import load_checkpoint
    from .data import validation_windows
    from .evaluate import evaluate

    ck = load_checkpoint(directory)
    saved = ck.config.get("evaluation") if reuse_evaluation else None
    if saved:
        metrics, val_file = {k: v for k, v in saved.items() if k != "data"}, saved.get("data", val_file)
    else:
        val, _ = validation_windows(val_file, ck.tokenizer, windows, ck.model_config.block_size, seed=0)
        metrics = evaluate(ck.model, val, ck.schedule, ck.tokenizer.mask_id, timesteps_per_window=timesteps)
    samples = [_sample(ck, prompt, seed) for seed, prompt in enumerate(SAMPLE_PROMPTS)]
    evaluation = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    evaluation["data"] = Path(val_file).name
    config = read_config(directory)
    config["evaluation"] = evaluation  # the app's Model panel shows it
    atomic_write(Path(directory) / "config.json", json.dumps(config, indent=2) + "\n")
    write_model_card(directory, title=title, hardware=hardware, samples=samples, notes=notes,
                     evaluation={k: v for k, v in metrics.items() if isinstance(v, float)})
    return metrics


# ---------------------------------------------------------------------------------------------
# The summary of a loaded checkpoint (the app's Model tab)

def _md(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _fmt_int(value) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return _md(value)


def _duration(seconds) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return _md(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _architecture_rows(ck) -> list[tuple[str, str]]:
    cfg, n = ck.model.config, ck.model.num_params()
    files = [] if str(ck.source).startswith("hf://") else [("Files", f"`{_md(ck.path)}`")]   # no cache paths
    return [("Checkpoint", f"`{_md(ck.source)}`"), *files,
            ("Parameters", f"{n / 1e6:.2f} M ({n:,})"),
            ("Weights", _weights(ck.model)),
            ("Kind", kind_label(cfg)),
            ("Architecture", f"{_attention(cfg)} "
                             f"Transformer: {cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd}-dim, RoPE"
                             f"{', timestep embedding' if cfg.time_embedding else ''}"
                             f"{', shifted (each character read from the position to its left)' if cfg.shift else ''}"),
            ("Context", f"{cfg.block_size} characters"),
            ("Vocabulary", f"{ck.tokenizer.vocab_size - 1} characters + the mask"),
            ("Diffusion", f"{getattr(ck.schedule, 'name', '?')} schedule, T = {cfg.timesteps} steps")]


def _weights(model) -> str:
    """How the served model holds its Linear weights (serving.serve_checkpoint)."""
    if getattr(model, "int8", False):
        return "int8 Linear layers, each input at a scale calibrated at load (`MICRODLLM_INT8=1`)"
    return str(next(model.parameters()).dtype).removeprefix("torch.")


def _attention(cfg) -> str:
    if cfg.causal:
        return "causal (autoregressive baseline)"
    if cfg.kind == "block diffusion":
        return f"block-causal (blocks of {cfg.attn_block}{'; clean text causal' if cfg.clean_causal else ''})"
    return "bidirectional"


def _training_rows(meta: dict) -> list[tuple[str, str]]:
    tcfg = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    data = tcfg.get("dataset") or tcfg.get("data")
    if isinstance(data, (list, tuple)):
        data = ", ".join(Path(str(d)).name for d in data)
    rows, trained = [("Training data", _md(data))] if data else [], []
    if meta.get("step") is not None:
        trained.append(f"{_fmt_int(meta['step'])} steps")
    if meta.get("tokens") is not None:
        trained.append(f"{_fmt_int(meta['tokens'])} characters")
    if meta.get("seconds") is not None:
        trained.append(_duration(meta["seconds"]))
    if meta.get("device"):
        trained.append(f"on {_md(meta['device'])}")
    return rows + ([("Training", ", ".join(trained))] if trained else [])


def _validation_rows(ck, meta: dict) -> list[tuple[str, str]]:
    """The final evaluation (describe_checkpoint) if there is one, else the last one during training."""
    final = ck.config.get("evaluation") if isinstance(ck.config.get("evaluation"), dict) else {}
    val = final or (meta.get("val") if isinstance(meta.get("val"), dict) else {})
    try:
        key, value = headline_metric(val)
    except KeyError:
        return []
    where = f" on {_md(final['data'])}, {_fmt_int(final.get('characters'))} characters" if final.get("data") else ""
    return [("Validation", f"{'≤ ' if key == 'nelbo_bpc' else ''}{value:.3f} {METRIC_LABELS[key]}{where}")]


def model_summary(ck) -> str:
    """Markdown table: which checkpoint, size, architecture, training and validation numbers."""
    meta = ck.metadata if isinstance(ck.metadata, dict) else {}
    rows = _architecture_rows(ck)
    try:
        rows += _training_rows(meta)
        rows += _validation_rows(ck, meta)
    except (TypeError, ValueError, AttributeError):
        pass  # metadata from an unknown source: show what we could read
    return "| Loaded model | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)
