"""Data: loaders, built-in data sets, and the codecs that turn data into tensors and back."""
from ..layout import Layout
from .codec import CODECS, Codec
from .dataset import Dataset
from .image_codec import ImageCodec
from .loaders import load_data, load_source
from .table_codec import TabularCodec
from .text_codec import TextCodec

__all__ = ["CODECS", "Codec", "Dataset", "ImageCodec", "Layout", "TabularCodec", "TextCodec", "load_data", "load_source"]
