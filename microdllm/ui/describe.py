"""What the app says and draws about a model: the selector's choices, the line under it, its attention,
and the ways its network writes."""
from __future__ import annotations

from .. import card, render
from ..checkpoint import BUNDLED_MODELS, read_config
from ..config import ModelConfig
from ..model import attention_pattern
from ..sampling import MODES
from ..sampling.config import VERIFY_DEFAULT

# How a network writes (SamplerConfig.mode), as the Writing control and the Compare tab name it.
WRITING_LABELS = dict(zip(MODES, ("Block diffusion", "Draft and verify", "Left to right")))


def writing_modes(model_config) -> tuple[str, ...]:
    """The ways this network writes: a block model whose clean half is causal (an autoregressive model
    inside it) denoises, drafts and verifies, or writes with that half alone; any other only denoises
    (an autoregressive model's denoise is left to right)."""
    return MODES if getattr(model_config, "clean_causal", False) else ("denoise",)


def model_choices() -> list[tuple[str, str]]:
    """The bundled models, each labelled with what it is (the default first)."""
    choices = []
    for i, path in enumerate(BUNDLED_MODELS):
        if (path / "config.json").is_file():
            label = card.kind_label(ModelConfig.from_dict(read_config(path)["model"]))
            choices.append((label[:1].upper() + label[1:] + (" · the default" if i == 0 else ""), str(path)))
    return choices


def model_note(model_config) -> str:
    """One line under the model selector: how this model writes, and what it cannot do."""
    kind, block = model_config.kind, model_config.attn_block
    if len(writing_modes(model_config)) > 1:
        return (f"Writes blocks of {block} characters left to right. By default it drafts a few characters at "
                f"once (a window of {VERIFY_DEFAULT.draft_window} inside the block, its characters tied together by "
                "a character n-gram of the training text where the checkpoint has one) and checks the draft with its "
                "own left-to-right half, "
                "which keeps the draft up to its first "
                "disagreement and adds a character of its own (the text that half would write, in fewer "
                "evaluations); it can also denoise each block from masks (steps are per block), or write with "
                "that half alone (Writing, below). It cannot fill in blanks.")
    if kind == "block diffusion":
        return (f"Writes blocks of {block} characters left to right; inside a block, diffusion "
                "fills the masks in parallel. Steps are per block. It cannot fill in blanks (choose the full-"
                "sequence model for that).")
    if kind == "autoregressive":
        return "Writes left to right, one character per step: the strategy, steps and blocks do not apply."
    return "Writes everywhere at once and can fill in blanks."


def attention_html(model_config) -> str:
    """The model's attention pattern, drawn from the mask it applies: its first 16 positions (32 for big blocks)."""
    n = min(model_config.block_size, 32 if (model_config.attn_block or 0) > 8 else 16)
    return render.attention_svg(attention_pattern(model_config, n), model_config.kind, model_config.attn_block)
