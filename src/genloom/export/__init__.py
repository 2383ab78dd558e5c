"""Moving models out of genloom: Hugging Face GPT-2 checkpoints (export/gpt2.py); import the modules."""
