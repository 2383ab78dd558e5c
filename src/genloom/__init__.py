"""genloom: train, sample and evaluate generative models on images, tables, text and molecules.

The public names load on first use, so that `import genloom` (and the `genloom` command) start without
torch, pandas or matplotlib."""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {"AnomalyDetector": "genloom.anomaly", "ContentSigner": "genloom.data.content_credentials",
           "Dataset": "genloom.data.dataset", "Detector": "genloom.detector",
           "GenloomError": "genloom.errors", "Model": "genloom.model", "augment": "genloom.augmentation",
           "evaluate": "genloom.evaluation", "finetune_reward": "genloom.reward", "load": "genloom.model",
           "load_data": "genloom.data.loaders", "train_detector": "genloom.detector"}
__all__ = [*sorted(_PUBLIC), "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'genloom' has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return __all__
