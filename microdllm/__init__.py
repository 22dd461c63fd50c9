"""micro-dLLM: a character-level masked-diffusion language model you can watch write."""
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, push_to_hub, save_checkpoint
from .config import PRESETS, ModelConfig, get_preset
from .model import Transformer
from .tokenizer import CharTokenizer, UnknownCharactersError

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "push_to_hub", "save_checkpoint",
           "PRESETS", "ModelConfig", "get_preset", "Transformer", "CharTokenizer", "UnknownCharactersError"]
__version__ = "0.1.0"
