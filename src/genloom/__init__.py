"""genloom: train, sample and evaluate generative models on images, tables and text."""
__version__ = "0.1.0"

from .data import Dataset, load_data  # noqa: E402
from .errors import GenloomError  # noqa: E402
from .model import Model, load  # noqa: E402
from .evaluate import evaluate  # noqa: E402

__all__ = ["Dataset", "GenloomError", "Model", "__version__", "evaluate", "load", "load_data"]
