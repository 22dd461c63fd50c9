"""Hugging Face model cards (README.md with YAML metadata) for checkpoint directories."""
from __future__ import annotations

import json
from pathlib import Path

from .checkpoint import CheckpointError, atomic_write_bytes, read_config


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


def write_model_card(directory, *, title: str, hardware: str = "", samples: list[dict] | None = None,
                     evaluation: dict | None = None, notes: str = "") -> Path:
    """Write `directory/README.md` from its config.json plus evaluation results and samples."""
    directory = Path(directory)
    cfg = read_config(directory)
    m, tr = cfg["model"], cfg.get("training", {})
    tcfg = tr.get("config", {})
    params = tr.get("parameters", "?")
    ev = evaluation or {}
    lines = [
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
        "    - {type: nelbo_bpc, name: validation NELBO bits per character (upper bound), "
        f"value: {_fmt(ev.get('nelbo_bpc', float('nan')), 4)}}}",
        "---",
        "",
        f"# {title}",
        "",
        "A character-level **masked-diffusion language model** (MDLM / LLaDA recipe, shrunk), trained "
        "with micro-dLLM. It writes by starting from a fully masked block and un-masking characters "
        "over a few dozen denoising steps.",
        "",
        "## Model",
        "",
        "| | |",
        "|---|---|",
        f"| parameters | {params:,} |" if isinstance(params, int) else f"| parameters | {params} |",
        f"| layers / heads / width | {m['n_layer']} / {m['n_head']} / {m['n_embd']} |",
        f"| context | {m['block_size']} characters |",
        f"| vocabulary | {len(cfg['vocab'])} characters + 1 mask id |",
        f"| diffusion | T = {m['timesteps']}, {cfg['diffusion']['schedule']} survival schedule, "
        f"timestep embedding {'on' if m['time_embedding'] else 'off'} |",
        *(["| alignment | shifted: character i is read from position i - 1 (behind a learned start "
           "vector), as in a left-to-right model |"] if m.get("shift") else []),
        "",
        "## Training",
        "",
        "| | |",
        "|---|---|",
        f"| data | {', '.join(Path(d).name for d in tcfg.get('data', [])) or tcfg.get('dataset', '?')} |",
        f"| preset | {tcfg.get('preset', '?')} |",
        f"| optimizer | {tcfg.get('optimizer', '?')} (lr {tcfg.get('lr', '?')}, Muon lr {tcfg.get('muon_lr', '-')}) |",
        f"| loss | {tcfg.get('loss', '?')} |",
        f"| batch | {tcfg.get('batch_size', '?')} x {m['block_size']} characters |",
        f"| steps | {tr.get('step', '?'):,} |" if isinstance(tr.get("step"), int) else f"| steps | {tr.get('step', '?')} |",
        f"| tokens seen | {tr.get('tokens', 0):,} |",
        f"| wall time | {tr.get('seconds', 0) / 3600:.2f} h |",
        *_init_rows(tcfg.get("init_from"), tr),
        f"| hardware | {hardware or tr.get('device', '?')} |",
        "",
        "![loss curve](loss_curve.png)",
        "",
        "## Evaluation",
        "",
    ]
    if ev:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v, 4)} |" for k, v in ev.items() if isinstance(v, (int, float))]
        lines += ["", "The NELBO is an upper bound on the negative log-likelihood (bits per character)."]
    if samples:
        lines += ["", "## Uncurated samples", ""]
        for s in samples:
            lines += [f"Settings: `{s['settings']}`", "", "```text", s["text"], "```", ""]
    if notes:
        lines += ["", notes]
    lines += ["", "## Use", "", "```bash",
              "python -m microdllm generate --checkpoint <this repo id or directory> --prompt \"Once upon a time\"",
              "MICRODLLM_CHECKPOINT=<this repo id> python app.py", "```", ""]
    path = directory / "README.md"
    atomic_write_bytes(path, "\n".join(lines).encode())
    return path


SAMPLE_PROMPTS = ["Once upon a time, there was a little girl named Lily.", "One day, a boy named Tom went to the park.",
                  "The sun was shining and the birds were singing."]


def describe_checkpoint(directory, val_file, *, title: str, hardware: str = "", windows: int = 256,
                        timesteps: int = 16, notes: str = "") -> dict:
    """Evaluate a checkpoint on a validation file, draw three uncurated samples at the default
    sampler settings, and write its model card. Returns the evaluation metrics."""
    from .checkpoint import load_checkpoint
    from .data import validation_windows
    from .evaluate import evaluate
    from .sampling import DEFAULT, generate

    ck = load_checkpoint(directory)
    val, _ = validation_windows(val_file, ck.tokenizer, windows, ck.model_config.block_size, seed=0)
    metrics = evaluate(ck.model, val, ck.schedule, ck.tokenizer.mask_id, timesteps_per_window=timesteps)
    samples = []
    if not ck.model_config.causal:
        for seed, prompt in enumerate(SAMPLE_PROMPTS):
            cfg = DEFAULT.replace(seed=seed)
            prompt = ck.tokenizer.clean(prompt + " ")  # a model trained on other text may lack some characters
            text = generate(ck.model, ck.tokenizer, prompt, cfg, schedule=ck.schedule).text
            samples.append({"settings": f"prompt {prompt!r}, {cfg.remasking}, remask ratio {cfg.remask_ratio}, "
                                        f"threshold {cfg.threshold}, {cfg.reveal_schedule or 'training'} reveal "
                                        f"schedule, {cfg.steps} steps, {cfg.polish} polish passes, "
                                        f"temperature {cfg.temperature}, seed {seed}",
                            "text": text})
    evaluation = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    evaluation["data"] = Path(val_file).name
    config = read_config(directory)
    config["evaluation"] = evaluation  # the app's Model panel shows it
    atomic_write_bytes(Path(directory) / "config.json", (json.dumps(config, indent=2) + "\n").encode())
    write_model_card(directory, title=title, hardware=hardware, samples=samples, notes=notes,
                     evaluation={k: v for k, v in metrics.items() if isinstance(v, float)})
    return metrics
