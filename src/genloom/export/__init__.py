"""Moving models out of (and into) genloom: Hugging Face GPT-2 checkpoints."""
from .gpt2 import load_gpt2, save_gpt2

__all__ = ["load_gpt2", "save_gpt2"]
