"""The training loop and what it needs: config, batches, EMA, checkpoints, devices."""
from .config import TrainConfig
from .device import resolve_device
from .loop import METRICS_FILE, STATE_FILE, Trainer, read_metrics

__all__ = ["METRICS_FILE", "STATE_FILE", "TrainConfig", "Trainer", "read_metrics", "resolve_device"]
