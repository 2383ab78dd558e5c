"""Evaluation and the pages that show it."""
