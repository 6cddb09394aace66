"""Data: sources (ImageFolder, CIFAR-10/100, the demo set), recipe-driven transforms, and the sharded loader."""
from .demo import make_demo_dataset
from .loader import ImageLoader, create_loader
from .sources import DATASETS, DataError, Samples, load_samples
from .transforms import TransformSettings, mix_batch

__all__ = ["create_loader", "ImageLoader", "load_samples", "Samples", "DataError", "DATASETS", "TransformSettings",
           "mix_batch", "make_demo_dataset"]
