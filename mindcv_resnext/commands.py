"""What train.py and validate.py do (each run by cli.run_main: its errors are one line and an exit code)."""
import json
import os

from .builders import model_options, split_loader
from .checkpoint import checkpoint_meta, load_state, read_checkpoint, stem_pool_pad_of
from .config import ConfigError, Key, parse_command_line
from .data import DataError
from .distributed import grad_reducer_factory, init_distributed
from .engine.ema import EMA
from .engine.step import cast_network
from .engine.trainer import train
from .evaluate import batch_counts_fn, evaluate
from .logs import setup_logging
from .models import create_model
from .runtime import setup_runtime

TRAIN_DESCRIPTION = """Train or fine-tune a ResNeXt.

  python train.py -c configs/resnext/resnext50_32x4d_cpu.yaml --data_dir /data/imagenet
  python train.py -c RECIPE --ckpt_path pretrained.ckpt --num_classes 5 --data_dir my_photos   # fine-tune
  python train.py -c RECIPE --resume auto                                                      # continue

Every setting below can be a recipe key or a flag; flags override the recipe (configs/README.md)."""
VALIDATE_DESCRIPTION = """Score a checkpoint: top-1, top-5 and loss over the whole validation split.

  python validate.py --ckpt_path ckpt/best.ckpt [--data_dir D] [-c RECIPE] [--ema] [--json]

The model, its classes and its eval transform come from the checkpoint (and where its data lay, unless --data_dir
says otherwise); --ema scores the EMA weights it holds; a recipe or flags may change any setting below."""

# What validate.py takes from a training checkpoint's saved config besides its model, classes and eval transform:
# where its data lies (a default the command line can change). Never the run's limits (num_samples) or machine.
DATA_LOCATION_KEYS = ("dataset", "data_dir", "train_split", "val_split")
VALIDATE_OPTIONS = (  # from the command line only: a recipe's ckpt_path is what a run started from, its ema a setting
    Key("ckpt_path", "str", "", "the checkpoint to score (required)"),
    Key("ema", "bool", False, "score the EMA weights the checkpoint holds"),
    Key("json", "bool", False, "also print the result as one JSON line"),
)


def train_command(argv):
    """python train.py -c RECIPE [--key value ...]"""
    config, _ = parse_command_line(argv, prog="train.py", description=TRAIN_DESCRIPTION)
    setup_runtime(config)
    rank, world_size = init_distributed(config.distribute)
    setup_logging(rank, world_size)
    try:
        train(config, rank, world_size, grad_reducer_factory(world_size))
    except KeyboardInterrupt:
        raise KeyboardInterrupt("the last checkpoint written is intact; continue with --resume auto") from None
    return 0


def validate_command(argv):
    """python validate.py --ckpt_path P [--data_dir D] [-c RECIPE] [--ema] [--json] [--key value ...]"""
    ckpt_path = parse_command_line(argv, VALIDATE_OPTIONS, prog="validate.py",
                                   description=VALIDATE_DESCRIPTION)[1].ckpt_path
    if not ckpt_path:
        raise ConfigError("--ckpt_path is required: the checkpoint to score")
    state = read_checkpoint(ckpt_path)
    meta = checkpoint_meta(state)
    # The checkpoint's eval transform and data location, then the recipe and flags.
    saved = {k: v for k, v in (meta.get("config") or {}).items() if k in DATA_LOCATION_KEYS}
    config, options = parse_command_line(argv, VALIDATE_OPTIONS, base={**saved, **(meta.get("eval_transform") or {})})
    setup_runtime(config)
    use_ema, as_json = options.ema, options.json
    num_classes = meta.get("num_classes") or config.num_classes
    if num_classes is None:
        raise ConfigError(f"{ckpt_path} does not say its number of classes: give --num_classes")
    options = meta.get("model_options") or dict(model_options(config),
                                                stem_pool_pad=stem_pool_pad_of(state, ckpt_path))
    model = create_model(meta.get("model") or config.model, num_classes=num_classes, **options)
    load_state(model, EMA.weights_in(state, ckpt_path) if use_ema else state, ckpt_path)
    loader = split_loader(config, "val")
    # Converted ImageNet weights name their classes in words (class_set imagenet-1k), an ImageNet folder by synset.
    if meta.get("class_names") and not meta.get("class_set") and loader.class_names != meta["class_names"]:
        raise DataError(f"the classes of {config.data_dir} differ from those {ckpt_path} was trained on "
                        f"({len(loader.class_names)} vs {len(meta['class_names'])} classes, or other names)")
    if loader.num_classes > num_classes:
        raise DataError(f"{config.data_dir} has {loader.num_classes} classes, the model only {num_classes}")
    network = cast_network(model, config.val_amp_level)
    metrics = evaluate(network, loader, batch_counts_fn(network, num_classes)).metrics(num_classes)
    if metrics["num_samples"] == 0:
        raise DataError(f"no image of {config.data_dir} could be scored: all {loader.split_size} failed to decode or "
                        f"to transform (is the eval crop, {config.image_resize}, larger than the resized image?)")
    notes = [f"limited by num_samples {config.num_samples}"] if len(loader.samples) < loader.split_size else []
    notes += [f"{len(loader.skipped)} unreadable"] if loader.skipped else []
    print(f"{ckpt_path}{' (EMA)' if use_ema else ''}: top-1 {metrics['top1']:.4f}" +
          (f", top-5 {metrics['top5']:.4f}" if "top5" in metrics else "") +
          f", loss {metrics['loss']:.4f} on {metrics['num_samples']} of {loader.split_size} samples of "
          f"{config.data_dir}" + (f" ({', '.join(notes)})" if notes else ""))
    if as_json:
        print(json.dumps(dict(top1=metrics["top1"], top5=metrics.get("top5"), loss=metrics["loss"],
                              num_samples=metrics["num_samples"], split_samples=loader.split_size,
                              ckpt=os.path.abspath(ckpt_path))))
    return 0
