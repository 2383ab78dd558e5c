"""Runs on disk: genloom run folders, LoRA adapters and GPT-2 checkpoints, read and written (import the
modules; record.py alone is light enough for `genloom info`)."""
