"""Data: loaders, built-in data sets, and the codecs that turn data into tensors and back (import the modules)."""
