"""Moving models out of genloom: Hugging Face GPT-2 checkpoints (export/gpt2.py) and ONNX graphs sampled by ONNX
Runtime (export/onnx.py)."""
from .onnx import OnnxModel, export_onnx

__all__ = ["OnnxModel", "export_onnx"]
