"""micro-dLLM: a character-level masked-diffusion language model you can watch write.

The names below load lazily, so `import microdllm.render` (pure HTML) does not pull in torch.
"""
import importlib

_EXPORTS = {
    "Checkpoint": "checkpoint", "CheckpointError": "checkpoint", "load_checkpoint": "checkpoint",
    "push_to_hub": "hub", "save_checkpoint": "checkpoint",
    "MODEL_PRESETS": "config", "ModelConfig": "config", "get_preset": "config",
    "Transformer": "model", "CharTokenizer": "tokenizer", "UnknownCharactersError": "tokenizer",
    "SamplerConfig": "sampling", "DenoiseState": "sampling", "denoise": "sampling", "SAMPLER_PRESETS": "sampling",
}
__all__ = list(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'microdllm' has no attribute {name!r}")
