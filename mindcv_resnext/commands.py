"""What train.py, validate.py, infer.py and export.py do (each run by cli.run_main: its errors are one line and an
exit code)."""
import importlib.util
import json
import os
import sys
import tempfile

import mindspore as ms
import numpy as np
from tqdm import tqdm

from .builders import model_options, split_loader, transform_settings
from .checkpoint import CheckpointError, checkpoint_meta, load_state, read_checkpoint, stem_pool_pad_of
from .convert import imagenet_class_names
from .config import ConfigError, Key, parse_command_line
from .data import DataError
from .distributed import grad_reducer_factory, init_distributed
from .engine.ema import EMA
from .engine.step import cast_network
from .engine.trainer import train
from .evaluate import batch_counts_fn, evaluate
from .export import FORMATS, OnnxRuntimeNetwork, export_network, for_deployment, run_exported
from .inference import Classifier, image_files
from .logs import setup_logging
from .models import create_model
from .pretrained import pretrained_checkpoint
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


PRETRAINED_OPTION = Key("pretrained", "bool", False, "use the published weights of --model (pretrained_weights "
                        "picks which) instead of --ckpt_path")


def checkpoint_command_line(argv, options=(), prog=None, description=None, positional=None, base=None,
                            saved_keys=()):
    """For the commands that use a checkpoint (validate.py, infer.py, export.py): (config, options, path, state,
    meta). The checkpoint is --ckpt_path, or the published weights of --model with --pretrained; the config starts
    from `base`, then the file's `saved_keys` (of its saved config) and eval transform, then the recipe and flags."""
    options = (*options, PRETRAINED_OPTION)  # a recipe's pretrained is how its run started: not read here
    config, own = parse_command_line(argv, options, prog=prog, description=description, positional=positional)
    if own.ckpt_path and own.pretrained:
        raise ConfigError("give --ckpt_path or --pretrained (the published weights of --model), not both")
    path = pretrained_checkpoint(config.model, config.pretrained_weights) if own.pretrained else own.ckpt_path
    if not path:
        raise ConfigError("--ckpt_path is required: the checkpoint to use (or --model NAME --pretrained)")
    state = read_checkpoint(path)
    meta = checkpoint_meta(state)
    saved = {key: value for key, value in (meta.get("config") or {}).items() if key in saved_keys}
    config, own = parse_command_line(argv, options, base={**(base or {}), **saved,
                                                          **(meta.get("eval_transform") or {})},
                                     positional=positional)
    return config, own, path, state, meta


def model_from_checkpoint(config, path, state, meta, ema=False):
    """The network a checkpoint holds, with its weights (its EMA weights with `ema`). Our checkpoints say which
    network; for a plain file (MindCV's) the config's model is built, with MindCV's stem pooling, and the head's
    size is read from the file."""
    head = state.get("classifier.weight")
    num_classes = meta.get("num_classes") or config.num_classes or (head.shape[0] if head is not None else None)
    if num_classes is None:
        raise ConfigError(f"{path} does not say its number of classes: give --num_classes")
    options = meta.get("model_options") or dict(model_options(config), stem_pool_pad=stem_pool_pad_of(state, path))
    model = create_model(meta.get("model") or config.model, num_classes=num_classes, **options)
    load_state(model, EMA.weights_in(state, path) if ema else state, path)
    return model


def class_names_of(meta, num_classes):
    """The checkpoint's class names; ImageNet's for a plain 1000-class file; else class 0, class 1, ..."""
    if meta.get("class_names"):
        return meta["class_names"]
    return imagenet_class_names() if num_classes == 1000 else [f"class {i}" for i in range(num_classes)]


def validate_command(argv):
    """python validate.py --ckpt_path P [--data_dir D] [-c RECIPE] [--ema] [--json] [--key value ...]"""
    config, options, ckpt_path, state, meta = checkpoint_command_line(
        argv, VALIDATE_OPTIONS, "validate.py", VALIDATE_DESCRIPTION, saved_keys=DATA_LOCATION_KEYS)
    setup_runtime(config)
    use_ema, as_json = options.ema, options.json
    model = model_from_checkpoint(config, ckpt_path, state, meta, use_ema)
    num_classes = model.num_classes
    loader = split_loader(config, "val")
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


INFER_DESCRIPTION = """Classify images: the top-k classes of each, with names and probabilities.

  python infer.py --ckpt_path ckpt/best.ckpt photo.jpg more_photos/ [--topk 5] [--json]
  python infer.py --model resnext50_32x4d --pretrained photo.jpg        # published ImageNet weights

The class names and the eval transform are the checkpoint's; a folder is read recursively, in batches; an image that
cannot be read is reported and skipped. --json prints one JSON line per image instead of text."""
INFER_OPTIONS = (
    Key("ckpt_path", "str", "", "the checkpoint (or --model NAME --pretrained)"),
    Key("topk", "int", 5, "classes shown per image", low=1),
    Key("json", "bool", False, "one JSON line per image: {image, top: [{label, name, probability}, ...]}"),
    Key("batch_size", "int", 16, "images per forward pass", low=1),
    Key("runtime", "str", "mindspore", "mindspore, or onnxruntime: the network with BatchNorm folded, exported to "
        "ONNX and run by onnxruntime (the faster CPU path; needs the onnxruntime package)",
        choices=("mindspore", "onnxruntime")),
)


def load_classifier(argv, positional=None):
    """(Classifier, options) of an infer.py command line (also Classifier.from_checkpoint's)."""
    config, options, path, state, meta = checkpoint_command_line(
        argv, INFER_OPTIONS, "infer.py", INFER_DESCRIPTION, positional,
        base=dict(mode=1))  # PyNative: no graph compile for a handful of images
    setup_runtime(config)
    model = model_from_checkpoint(config, path, state, meta)
    settings, class_names = transform_settings(config), class_names_of(meta, model.num_classes)
    if options.runtime == "onnxruntime":
        return Classifier(model, settings, class_names, forward=onnxruntime_network(
            model, (options.batch_size, model.conv1.in_channels, config.image_resize, config.image_resize))), options
    return Classifier(cast_network(model, config.val_amp_level), settings, class_names), options


def onnxruntime_network(model, input_shape):
    """`model` with BatchNorm folded, exported to ONNX (a temporary file) and opened by onnxruntime."""
    if importlib.util.find_spec("onnxruntime") is None:  # optional: only this runtime needs it
        raise ConfigError("--runtime onnxruntime needs the onnxruntime package (pip install onnxruntime), or use "
                          "--runtime mindspore")
    network, _ = for_deployment(model)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "network.onnx")
        export_network(network, path, "ONNX", input_shape)
        return OnnxRuntimeNetwork(path)


def infer_command(argv):
    """python infer.py --ckpt_path P IMAGE_OR_FOLDER... [--topk 5] [--json]"""
    classifier, options = load_classifier(argv, positional=("IMAGE", "image files or folders"))
    files = image_files(options.image)
    if not files:
        raise ConfigError("give the images to classify: infer.py --ckpt_path P IMAGE_OR_FOLDER ...")
    skipped = []  # (file, reason): reported after the results, or as the error when no image could be read

    def report_error(file, reason):
        skipped.append((file, reason))

    with tqdm(total=len(files), unit="image", leave=False, disable=len(files) <= options.batch_size or None) as bar:
        for file, top in classifier.predict_files(files, options.topk, options.batch_size, report_error, bar.update):
            if options.json:
                print(json.dumps(dict(image=file, top=[p._asdict() for p in top])))
            else:
                print(f"{file}: " + ", ".join(f"{p.name} {p.probability:.1%}" for p in top))
    if len(skipped) == len(files):
        raise DataError(f"none of the {len(files)} image(s) could be read: {skipped[0][0]}: {skipped[0][1]}")
    for file, reason in skipped:
        print(f"skipped {file}: cannot read it as an image ({reason})", file=sys.stderr)
    return 0


EXPORT_DESCRIPTION = """Export a checkpoint's network for deployment, BatchNorm folded into the convolutions.

  python export.py --ckpt_path ckpt/best.ckpt --file_format ONNX --output resnext.onnx [--batch_size 1]

The input is (batch_size, 3, image_resize, image_resize) float32, normalised as the checkpoint's eval transform
says; the output is the logits. The exported file is run once (MINDIR through nn.GraphCell, ONNX through onnxruntime
where it is installed) and must reproduce the network's outputs to 1e-4, or it is deleted. AIR is Ascend-only."""
EXPORT_OPTIONS = (
    Key("ckpt_path", "str", "", "the checkpoint (or --model NAME --pretrained)"),
    Key("file_format", "str", "MINDIR", "MINDIR (MindSpore Lite, nn.GraphCell), ONNX, or AIR (Ascend only)",
        choices=tuple(FORMATS)),
    Key("output", "str", "", "the file to write (default: the checkpoint's path with the format's extension)"),
    Key("batch_size", "int", 1, "the fixed batch of the exported input", low=1),
)


def export_command(argv):
    """python export.py --ckpt_path P --file_format MINDIR|ONNX|AIR --output F [--batch_size N]"""
    config, options, path, state, meta = checkpoint_command_line(argv, EXPORT_OPTIONS, "export.py",
                                                                 EXPORT_DESCRIPTION, base=dict(mode=1))
    runtime = setup_runtime(config)
    if options.file_format == "AIR" and runtime.device != "Ascend":
        raise ConfigError(f"AIR files are made on Ascend only (this is {runtime.device}): use --file_format MINDIR "
                          "or ONNX here")
    output = options.output or os.path.splitext(path)[0] + FORMATS[options.file_format]
    model = model_from_checkpoint(config, path, state, meta)
    model.set_train(False)  # the reference outputs, before folding
    shape = (options.batch_size, model.conv1.in_channels, config.image_resize, config.image_resize)
    images = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    expected = model(ms.Tensor(images)).asnumpy()
    network, folded = for_deployment(model)
    export_network(network, output, options.file_format, shape)
    try:
        got = run_exported(output, options.file_format, images)
    except Exception:  # a file that cannot even be run is not kept either
        os.remove(output)
        raise
    if got is None:
        check = f"not run here ({'Ascend-only' if options.file_format == 'AIR' else 'onnxruntime is not installed'})"
    else:
        difference = float(np.abs(got - expected).max())
        if difference > 1e-4 * max(1.0, float(np.abs(expected).max())):
            os.remove(output)
            raise CheckpointError(f"the exported {options.file_format} gives other outputs than the network (max "
                                  f"|difference| {difference:.2e}): not kept. Run again with --debug and report it")
        check = f"reproduces the network's outputs on a random batch (max |difference| {difference:.1e})"
    print(f"exported {path} to {output}: {options.file_format}, input {shape} float32 (normalised images), "
          f"{folded} BatchNorms folded; {check}")
    return 0
