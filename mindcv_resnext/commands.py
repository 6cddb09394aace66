"""What train.py and validate.py do, behind one error policy: a bad input is one line on stderr and a non-zero
exit code (2 for a bad recipe or flag, 1 for bad data or a checkpoint that does not fit), never a traceback."""
import json
import os
import sys

from .checkpoint import CheckpointError, checkpoint_meta, load_state, read_checkpoint
from .config import ConfigError, help_text, parse_value, resolve_config
from .data import DataError
from .distributed import grad_reducer_factory, init_distributed
from .engine.step import cast_network
from .engine.trainer import MODEL_OPTIONS, split_loader, train
from .evaluate import batch_counts_fn, evaluate
from .models import UnknownModelError, create_model
from .runtime import setup_runtime

EXIT_CODES = {ConfigError: 2, UnknownModelError: 2, DataError: 1, CheckpointError: 1}
# What validate.py takes from a training checkpoint's saved config besides its model, classes and eval transform:
# where its data lies (a default the command line can change). Never the run's limits (num_samples) or machine.
DATA_LOCATION_KEYS = ("dataset", "data_dir", "train_split", "val_split")


def run_guarded(command, argv):
    """Run `command(argv)`; known input errors become `error: ...` and their exit code."""
    try:
        return command(argv)
    except tuple(EXIT_CODES) as err:
        print(f"error: {err}", file=sys.stderr)
        return next(code for kind, code in EXIT_CODES.items() if isinstance(err, kind))
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint written is intact; continue with --resume auto", file=sys.stderr)
        return 130


def train_command(argv):
    """python train.py -c RECIPE [--key value ...]"""
    if any(a in ("-h", "--help") for a in argv):
        print(help_text())
        return 0
    config = resolve_config(argv)
    setup_runtime(config)
    rank, world_size = init_distributed(config.distribute)
    if rank == 0:
        print("resolved config:\n" + config.to_yaml(), end="")
    summary = train(config, rank, world_size, grad_reducer_factory(world_size))
    print(f"done: {summary['epochs_run']} epoch(s), best val top-1 {summary['best_top1']}, "
          f"checkpoints in {config.ckpt_save_dir}" + (" (written by rank 0)" if world_size > 1 else ""))
    return 0


def pop_flag(argv, name, is_bool=False):
    """Remove --name [value] (or --name=value) from argv and return the value; a boolean flag may stand alone.
    None when absent."""
    for i, token in enumerate(argv):
        if token == name or token.startswith(name + "="):
            if "=" in token:
                del argv[i]
                value = token.split("=", 1)[1]
            elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value = argv.pop(i + 1)
                del argv[i]
            elif is_bool:
                del argv[i]
                return True
            else:
                raise ConfigError(f"{name} needs a value")
            return parse_value("ema", value, name) if is_bool else value  # the same true/false words as recipes
    return None


def validate_command(argv):
    """python validate.py --ckpt_path P [--data_dir D] [-c RECIPE] [--ema] [--json] [--key value ...]"""
    argv = list(argv)
    ckpt_path = pop_flag(argv, "--ckpt_path")
    use_ema, as_json = bool(pop_flag(argv, "--ema", True)), bool(pop_flag(argv, "--json", True))
    if not ckpt_path:
        raise ConfigError("--ckpt_path is required: the checkpoint to score")
    state = read_checkpoint(ckpt_path)
    meta = checkpoint_meta(state)
    # The checkpoint's eval transform and data location, then the recipe and flags.
    saved = {k: v for k, v in (meta.get("config") or {}).items() if k in DATA_LOCATION_KEYS}
    config = resolve_config(argv, base={**saved, **(meta.get("eval_transform") or {})})
    setup_runtime(config)
    num_classes = meta.get("num_classes") or config.num_classes
    if num_classes is None:
        raise ConfigError(f"{ckpt_path} does not say its number of classes: give --num_classes")
    options = meta.get("model_options") or {key: config[key] for key in MODEL_OPTIONS}
    model = create_model(meta.get("model") or config.model, num_classes=num_classes, **options)
    if use_ema:
        ema = {name[len("ema."):]: value for name, value in state.items() if name.startswith("ema.")}
        if not ema:
            raise CheckpointError(f"{ckpt_path} holds no EMA weights (train with --ema true), drop --ema")
        state = ema
    load_state(model, state, ckpt_path)
    loader = split_loader(config, "val")
    if meta.get("class_names") and loader.class_names != meta["class_names"]:
        raise DataError(f"the classes of {config.data_dir} differ from those {ckpt_path} was trained on "
                        f"({len(loader.class_names)} vs {len(meta['class_names'])} classes, or other names)")
    if loader.num_classes > num_classes:
        raise DataError(f"{config.data_dir} has {loader.num_classes} classes, the model only {num_classes}")
    network = cast_network(model, config.val_amp_level)
    metrics = evaluate(network, loader, batch_counts_fn(network, num_classes)).metrics(num_classes)
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
