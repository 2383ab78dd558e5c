"""The training loop and what it needs: config, batches, EMA, checkpoints, devices (import the modules)."""
