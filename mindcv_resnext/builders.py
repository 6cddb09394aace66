"""What a resolved config builds, for every entry point that needs it (train.py and validate.py today; infer.py and
export.py to come): the loader of a split, the transform settings, the model and the options a checkpoint records."""
import dataclasses
import os

from .config import SCHEMA_BY_NAME
from .data import TransformSettings, create_loader
from .models import create_model
from .models.registry import OPTIONS

MODEL_OPTIONS = tuple(name for name in OPTIONS if name in SCHEMA_BY_NAME)  # the registry's options a recipe sets
TRANSFORM_KEYS = tuple(field.name for field in dataclasses.fields(TransformSettings))
EVAL_TRANSFORM_KEYS = ("image_resize", "crop_pct", "eval_resize", "eval_antialias", "interpolation", "mean",
                       "std")  # in checkpoints


def transform_settings(config):
    return TransformSettings(**{key: config[key] for key in TRANSFORM_KEYS})


def split_loader(config, split, rank=0, world_size=1, log=print):
    """The loader of one split ("train" or "val") as the config describes it, for this rank's shard."""
    return create_loader(config.dataset, config.data_dir, split, transform_settings(config),
                         batch_size=config.batch_size, num_samples=config.num_samples,
                         train_split=config.train_split, val_split=config.val_split, num_shards=world_size,
                         shard_id=rank, seed=config.seed,
                         num_workers=min(config.num_parallel_workers, os.cpu_count() or 1), log=log,
                         eval_shuffle=config.eval_shuffle)


def model_options(config):
    """The options of create_model that a recipe sets (and a checkpoint records)."""
    return {key: config[key] for key in MODEL_OPTIONS}


def model_from_config(config, num_classes):
    return create_model(config.model, num_classes=num_classes, **model_options(config))
