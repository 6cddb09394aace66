"""Recipes: YAML files with `_base_` inheritance, overridden by `--key value` flags, checked against one schema.

Every setting is a flat key, named as MindCV names it where MindCV has the setting, with MindCV's meaning and default,
so a MindCV ResNeXt recipe runs here unchanged (the few defaults that differ, and why, are in configs/README.md). A
setting has one key that the code reads; other spellings (the ALIASES, and MindCV's resume_opt with ckpt_path) are
turned into that key as the recipe is resolved. YAML values and command-line strings go through the same parser:
types, ranges and choices are checked once, and an unknown key (in a file or on the command line) is an error that
suggests the closest key.

The command line of every entry point is built here from the schema (argparse, so --help lists every key by group
with its default and choices): `-c/--config RECIPE`, `--key value`, lists as `--scale 0.08 1.0` or `0.08,1.0`,
booleans as true/false/1/0/yes/no (a bare `--flag` is true), `none` for an optional key.

    config = resolve_config(["-c", "configs/resnext/resnext50_32x4d_cpu.yaml", "--batch_size", "16"])
    config.batch_size, config.scale          # 16, (0.08, 1.0)
    scaled = scale_learning_rate(config, world_size=8)   # lr for the global batch, by the recipe's rule
"""
import argparse
import dataclasses
import difflib
import itertools
import math
import os
import re

import yaml

TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "y", "on"), ("false", "0", "no", "n", "off")
NONE_WORDS = ("none", "null", "~", "")


class ConfigError(ValueError):
    """A recipe or flag that cannot be used: the message names the key and what it accepts."""
    exit_code = 2


class ShowHelp(Exception):
    """-h/--help was given: the entry point prints this text and exits 0."""


@dataclasses.dataclass(frozen=True)
class Key:
    name: str
    kind: str                 # int, float, str, bool, ints, floats
    default: object
    help: str
    choices: tuple = None
    low: float = None         # inclusive bounds for numbers (and for each item of a list)
    high: float = None
    optional: bool = False    # None (YAML null, or "none" on the command line) is allowed
    length: int = None        # required list length
    only: tuple = None        # the values supported here (MindCV keys accepted but not varied)
    inert: bool = False       # accepted for MindCV recipes, read by nothing here (also every key with `only`)
    group: str = ""           # the --help section


def _k(name, kind, default, help, **rules):
    return Key(name, kind, default, help, **rules)


def _section(title, *keys):
    return [dataclasses.replace(key, group=title) for key in keys]


SCHEMA = [
    *_section("system",
        _k("mode", "int", 0, "0: graph mode (compiled), 1: PyNative (for debugging)", choices=(0, 1)),
        _k("device_target", "str", "auto", "where to run; auto: Ascend, else GPU, else CPU, the first this MindSpore "
           "build and machine can use", choices=("auto", "Ascend", "GPU", "CPU")),
        _k("jit_level", "str", "auto", "graph compile level; auto: O2 on Ascend in graph mode (as MindCV), else O0; O2 "
           "(the whole-graph GE backend) exists on Ascend only", choices=("auto", "O0", "O1", "O2")),
        _k("native_kernels", "bool", True, "on the CPU, run the grouped 3x3 convolutions and training-mode "
           "BatchNorm (+ ReLU) with the C++ kernels of mindcv_resnext/kernels (built on first use with g++, for AVX-512 CPUs; without them MindSpore's own run); "
           "false: always MindSpore's own (the same numbers to float32 rounding, slower)"),
        _k("distribute", "bool", False, "data-parallel run under msrun"),
        _k("seed", "int", 42, "seed of weights, data order and augmentation", low=0),
        _k("val_while_train", "bool", False, "validate during training"),
        _k("val_interval", "int", 1, "validate every this many epochs", low=1),
        _k("log_interval", "int", 100, "print a progress line every this many steps", low=1),
        _k("num_parallel_workers", "int", 8, "data workers (capped at the CPU count)", low=1),
    ),
    *_section("data",
        _k("dataset", "str", "imagenet", "imagefolder (MindCV: imagenet), cifar10 or cifar100",
           choices=("imagefolder", "imagenet", "cifar10", "cifar100")),
        _k("data_dir", "str", "./", "dataset root"),
        _k("train_split", "str", "train", "training split folder of an ImageFolder"),
        _k("val_split", "str", "val", "validation split folder of an ImageFolder"),
        _k("dataset_download", "bool", False, "download the dataset (not done here: give data_dir)", only=(False,)),
        _k("shuffle", "bool", True, "shuffle training data every epoch", only=(True,)),
        _k("num_samples", "int", None, "use at most this many samples of each split", low=1, optional=True),
        _k("batch_size", "int", 128, "batch per device", low=1),
        _k("drop_remainder", "bool", True, "drop the last partial training batch", only=(True,)),
        _k("aug_repeats", "int", 0, "repeated augmentation (not supported: 0 or 1)", only=(0, 1)),
        _k("eval_shuffle", "bool", False, "shuffle the validation order (the counted metrics do not change)"),
    ),
    *_section("augmentation",
        _k("image_resize", "int", 224, "training and eval crop size", low=1),
        _k("scale", "floats", (0.08, 1.0), "random-resized-crop area range", length=2, low=0),
        _k("ratio", "floats", (0.75, 1.333), "random-resized-crop aspect range", length=2, low=0),
        _k("hflip", "float", 0.5, "horizontal flip probability", low=0, high=1),
        _k("vflip", "float", 0.0, "vertical flip probability", low=0, high=1),
        _k("color_jitter", "floats", (0.4,), "brightness/contrast/saturation(/hue) jitter: one value or 3-4",
           low=0, optional=True),
        _k("interpolation", "str", "bilinear", "resize interpolation", choices=("bilinear", "bicubic", "nearest",
                                                                                "area")),
        _k("auto_augment", "str", None, "autoaug, randaug-m{M}-n{N} or trivialaugwide", optional=True),
        _k("aug_splits", "int", 0, "MindCV's AugMix-style augmentation splits (with a JSD loss): not implemented here",
           only=(0,)),
        _k("re_prob", "float", 0.0, "random erasing probability", low=0, high=1),
        _k("re_scale", "floats", (0.02, 0.33), "random erasing area range", length=2, low=0),
        _k("re_ratio", "floats", (0.3, 3.3), "random erasing aspect range", length=2, low=0),
        _k("re_value", "int", 0, "random erasing fill (0 = the mean colour)", only=(0,)),
        _k("re_max_attempts", "int", 10, "random erasing attempts", low=1),
        _k("mean", "floats", (0.485 * 255, 0.456 * 255, 0.406 * 255), "normalisation mean, 0-255 or [0, 1]",
           length=3),
        _k("std", "floats", (0.229 * 255, 0.224 * 255, 0.225 * 255), "normalisation std, 0-255 or [0, 1]", length=3,
           low=0),
        _k("crop_pct", "float", 0.875, "eval: crop / resize ratio", low=0.01, high=1),
        _k("eval_resize", "int", None, "eval: short-side size before the centre crop (instead of crop_pct)", low=1,
           optional=True),
        _k("eval_antialias", "bool", False, "eval: decode and resize with Pillow, antialiased, as torchvision and timm "
           "scored their weights (false: OpenCV's resize, as MindCV)"),
        _k("cifar_padding", "int", 4, "CIFAR training: padding before the random crop", low=0),
        _k("mixup", "float", 0.0, "mixup Beta alpha (0: off)", low=0),
        _k("cutmix", "float", 0.0, "cutmix Beta alpha (0: off)", low=0),
        _k("cutmix_prob", "float", 1.0, "probability of mixing a batch when mixup/cutmix is on", low=0, high=1),
        _k("mixup_switch_prob", "float", 0.5, "with both on: probability of cutmix", low=0, high=1),
    ),
    *_section("model",
        _k("model", "str", "resnext50_32x4d", "model name, resnext{depth}_{C}x{d}d"),
        _k("num_classes", "int", None, "classes of the head (None: the dataset's)", low=1, optional=True),
        _k("in_channels", "int", 3, "input channels", low=1),
        _k("drop_rate", "float", 0.0, "dropout before the head (none: 0, as MindCV)", low=0, high=0.99, optional=True),
        _k("drop_path_rate", "float", 0.0, "stochastic depth of the last block (none: 0)", low=0, high=0.99,
           optional=True),
        _k("zero_init_last", "bool", False, "start each block's last BN gamma at 0"),
        _k("stem_pool_pad", "str", "symmetric", "stem max-pool padding (same: MindCV's checkpoints)",
           choices=("symmetric", "same")),
        _k("pretrained", "bool", False, "start from the published ImageNet weights of the model (downloaded once, "
           "cached; another num_classes re-makes the head)"),
        _k("pretrained_weights", "str", None, "which published weights pretrained takes, e.g. resnext50_32x4d.tv_in1k "
           "(none: the model's best; README 'Use published weights')", optional=True),
        _k("ckpt_path", "str", "", "initialise from this checkpoint (fine-tuning: another head is re-made)"),
        _k("freeze_backbone", "bool", False, "linear probe: the backbone runs in inference mode (weights and BatchNorm "
           "statistics fixed), only the head trains"),
        _k("resume", "str", "", "continue a run: a checkpoint path, or auto for the newest in ckpt_save_dir"),
        _k("resume_opt", "bool", False, "MindCV's way to resume: with ckpt_path, the same as resume: <ckpt_path>"),
        _k("keep_checkpoint_max", "int", 10, "old epoch checkpoints kept besides latest and best", low=0),
        _k("ckpt_save_dir", "str", "./ckpt", "where checkpoints, the resolved config and the logs go"),
        _k("ckpt_save_interval", "int", 1, "save every this many epochs", low=1),
        _k("ckpt_save_policy", "str", "latest_k", "which old checkpoints to keep", choices=("latest_k", "top_k")),
        _k("epoch_size", "int", 90, "epochs to train", low=1),
        _k("dataset_sink_mode", "bool", True, "MindCV's sink mode; the loop here feeds batches itself", inert=True),
        _k("ema", "bool", False, "keep an exponential moving average of the weights"),
        _k("ema_decay", "float", 0.9999, "EMA decay per step", low=0, high=1),
        _k("clip_grad", "bool", False, "clip gradients by global norm"),
        _k("clip_value", "float", 15.0, "global-norm bound when clip_grad", low=0),
        _k("recompute", "bool", False, "recompute each residual block's activations in the backward instead of keeping "
           "them: lower peak memory for large batches, for a second forward of every block"),
        _k("layer_decay", "float", None, "layer-wise lr decay (MindCV's ViT fine-tuning): not implemented for ResNeXt",
           optional=True, only=(None,)),
    ),
    *_section("optimizer",
        _k("opt", "str", "momentum", "optimizer", choices=("sgd", "momentum", "adamw")),
        _k("momentum", "float", 0.9, "momentum (SGD) or beta1 (AdamW)", low=0, high=1),
        _k("weight_decay", "float", 1e-6, "weight decay", low=0),
        _k("weight_decay_filter", "str", "disable", "parameters kept out of weight decay: disable (none, MindCV's "
           "default), auto (BN gamma and beta, MindSpore's own filter), norm_and_bias (BN parameters and biases)",
           choices=("disable", "auto", "norm_and_bias")),
        _k("use_nesterov", "bool", False, "Nesterov momentum"),
        _k("eps", "float", 1e-10, "AdamW epsilon", low=0),
        _k("gradient_accumulation_steps", "int", 1, "micro-batches per optimizer step", low=1),
        _k("lr_base_batch", "int", None, "the global batch `lr` was tuned for (None: lr is used as given)", low=1,
           optional=True),
        _k("lr_scale", "str", "linear", "how lr follows the global batch", choices=("linear", "sqrt", "none")),
    ),
    *_section("scheduler",
        _k("scheduler", "str", "cosine_decay", "learning-rate schedule, per step",
           choices=("constant", "cosine_decay", "warmup_cosine_decay", "step_decay", "multi_step_decay")),
        _k("lr", "float", 0.001, "peak learning rate (for lr_base_batch)", low=0),
        _k("min_lr", "float", 1e-6, "floor of the cosine schedule", low=0),
        _k("warmup_epochs", "float", 3, "linear warmup epochs", low=0),
        _k("warmup_factor", "float", 0.0, "warmup starts at lr x this", low=0, high=1),
        _k("decay_epochs", "int", None, "cosine: epochs of decay after warmup (None: to the end); step_decay: period "
           "(None: MindCV's 100)", low=1, optional=True),
        _k("decay_rate", "float", 0.9, "step schedules: lr factor at each step", low=0, high=1),
        _k("multi_step_decay_milestones", "ints", (30, 60, 90), "multi_step_decay: epochs where lr x decay_rate",
           low=1),
        _k("lr_epoch_stair", "bool", False, "hold the lr for a whole epoch"),
        _k("num_cycles", "int", 1, "cosine cycles", low=1, only=(1,)),
        _k("cycle_decay", "float", 1.0, "peak decay per cosine cycle", only=(1.0,)),
    ),
    *_section("loss",
        _k("loss", "str", "CE", "cross-entropy (soft targets with mixup/cutmix); MindCV's BCE is not implemented",
           only=("CE",)),
        _k("label_smoothing", "float", 0.0, "label smoothing", low=0, high=0.99),
        _k("aux_factor", "float", 0.0, "auxiliary-head loss weight: ResNeXt has no auxiliary head", only=(0.0,)),
        _k("reduction", "str", "mean", "loss reduction: the mean over the batch", only=("mean",)),
    ),
    *_section("mixed precision and loss scaling",
        _k("amp_level", "str", "O0", "mixed precision of training: O0 fp32, O1 listed ops fp16, O2 all but BatchNorm "
           "fp16, O3 all fp16", choices=("O0", "O1", "O2", "O3")),
        _k("val_amp_level", "str", "O0", "mixed precision of validate.py (validation during training runs at "
           "amp_level, as in MindCV)", choices=("O0", "O1", "O2", "O3")),
        _k("amp_cast_list", "str", None, "MindCV's own list of cells to cast: not implemented (amp_level picks them)",
           optional=True, only=(None,)),
        _k("loss_scale_type", "str", "fixed", "fixed; dynamic (halved on overflow, doubled after 2000 good steps); "
           "auto (MindSpore's amp default: dynamic at amp_level O2, else fixed)", choices=("fixed", "dynamic", "auto")),
        _k("loss_scale", "float", 1.0, "loss scale (1: none); the starting scale when dynamic", low=1),
        _k("drop_overflow_update", "bool", True, "skip the update of a step whose gradients overflowed (dynamic "
           "scaling always does); false applies it, as MindCV's default does"),
        _k("max_nonfinite_steps", "int", 10, "stop the run after this many consecutive steps whose loss or "
           "gradients are not finite (without dynamic loss scaling, which skips them and adjusts); 0: never stop",
           low=0),
    ),
]
SCHEMA_BY_NAME = {key.name: key for key in SCHEMA}


@dataclasses.dataclass(frozen=True)
class Alias:
    """Another spelling of a setting: read with its own type, then turned into the key that holds the setting."""
    key: Key
    means: object  # the parsed value -> {schema key: value}


ALIASES = {alias.key.name: alias for alias in [
    Alias(_k("filter_bias_and_bn", "bool", None, "true: weight_decay_filter norm_and_bias; false: disable (timm)"),
          lambda on: {"weight_decay_filter": "norm_and_bias" if on else "disable"}),
    Alias(_k("dynamic_loss_scale", "bool", None, "true: loss_scale_type dynamic; false: fixed"),
          lambda on: {"loss_scale_type": "dynamic" if on else "fixed"}),
]}


class Config(dict):
    """The resolved settings: a dict with attribute access (config.lr)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_yaml(self):
        """Every key as YAML, loadable again as a recipe (the recipe path itself becomes a comment)."""
        plain = {k: list(v) if isinstance(v, tuple) else v for k, v in self.items() if k in SCHEMA_BY_NAME}
        return (f"# resolved from {self.get('config') or 'defaults and flags'}\n"
                + yaml.safe_dump(plain, sort_keys=False, default_flow_style=None, width=120))


def _suggest(name):
    close = difflib.get_close_matches(name, [*SCHEMA_BY_NAME, *ALIASES], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else "; see configs/README.md for the keys"


def _scalar(key, value, source):
    """One value of `key` (a YAML value or a command-line string), converted to the key's item type."""
    kind = key.kind.rstrip("s") if key.kind in ("ints", "floats") else key.kind
    text = value.strip() if isinstance(value, str) else value
    try:
        if kind == "bool":
            if isinstance(text, bool):
                return text
            if isinstance(text, (int, str)) and str(text).lower() in TRUE_WORDS + FALSE_WORDS:
                return str(text).lower() in TRUE_WORDS
            raise ValueError
        if kind == "int":
            if isinstance(text, bool) or (isinstance(text, float) and not text.is_integer()):
                raise ValueError
            number = float(text) if isinstance(text, str) else text
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            return int(number)
        if kind == "float":
            if isinstance(text, bool):
                raise ValueError
            number = float(eval_product(text) if isinstance(text, str) else text)
            if not math.isfinite(number):
                raise ValueError
            return number
        return str(value)
    except (TypeError, ValueError):
        words = {"bool": "true/false/1/0/yes/no", "int": "a whole number", "float": "a number"}[kind]
        raise ConfigError(f"{source}: {key.name} must be {words}, got {value!r}") from None


def eval_product(text):
    """A number, or a product like 0.485*255 (as MindCV writes mean/std in YAML); nothing else is evaluated."""
    value = 1.0
    for factor in text.split("*"):
        value *= float(factor)
    return value


def parse_value(name, value, source="config"):
    """Check and convert `value` for key `name` (or an alias); `source` says where it came from, for the error."""
    key = lookup_key(name)
    if key is None:
        raise ConfigError(f"{source}: unknown key {name!r}{_suggest(name)}")
    return parse_key(key, value, source)


def parse_key(key, value, source):
    """Check and convert `value` by the rules of `key` (a schema key, an alias or an entry point's own option)."""
    name = key.name
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]  # one command-line word for a list key: "none", "0.4" or "0.08,1.0"
    if value is None or (isinstance(value, str) and value.strip().lower() in NONE_WORDS
                         and (key.kind != "str" or key.optional)):
        if key.optional:
            return None
        raise ConfigError(f"{source}: {name} needs a value")
    if key.kind in ("ints", "floats"):
        items = value if isinstance(value, (list, tuple)) else [value]
        items = [part for item in items for part in (item.split(",") if isinstance(item, str) else [item])
                 if not (isinstance(part, str) and not part.strip())]
        parsed = tuple(_scalar(key, item, source) for item in items)
        if key.length and len(parsed) != key.length:
            raise ConfigError(f"{source}: {name} takes {key.length} values, got {len(parsed)}: {value!r}")
        if name == "color_jitter" and len(parsed) not in (1, 3, 4):
            raise ConfigError(f"{source}: color_jitter takes 1, 3 or 4 values, got {len(parsed)}")
        checked = parsed
    elif isinstance(value, (list, tuple)):
        raise ConfigError(f"{source}: {name} takes one value, got {len(value)}: {value!r}")
    else:
        checked = (_scalar(key, value, source),)
    for item in checked:
        if key.choices is not None and item not in key.choices:
            raise ConfigError(f"{source}: {name} must be one of {', '.join(map(str, key.choices))}, got {item!r}")
        if key.low is not None and item < key.low or key.high is not None and item > key.high:
            raise ConfigError(f"{source}: {name} must be in [{key.low if key.low is not None else '-inf'}, "
                              f"{key.high if key.high is not None else 'inf'}], got {item}")
    result = checked if key.kind in ("ints", "floats") else checked[0]
    if key.only is not None and result not in key.only:
        raise ConfigError(f"{source}: {name}={result!r} is not supported here ({key.help})")
    return result


def lookup_key(name):
    """The Key of a schema key or of an alias; None for an unknown name."""
    return SCHEMA_BY_NAME.get(name) or (ALIASES[name].key if name in ALIASES else None)


def _assign(config, name, value, source):
    """Set one setting from a recipe or a flag; an alias sets the key it stands for."""
    value = parse_value(name, value, source)
    if name in ALIASES:
        config.update(ALIASES[name].means(value))
    else:
        config[name] = value


def load_recipe(path, _chain=()):
    """The flat key -> value dict of a YAML recipe, its `_base_` files (one or a list, relative to it) merged first."""
    path = os.path.abspath(path)
    if path in _chain:
        raise ConfigError(f"recipe {path}: _base_ includes itself ({' -> '.join(_chain + (path,))})")
    if os.path.isdir(path):
        raise ConfigError(f"recipe {path} is a folder: give a .yaml file (the recipes are in configs/)")
    if not os.path.isfile(path):
        raise ConfigError(f"recipe not found: {path}" + (f" (a _base_ of {_chain[-1]})" if _chain else ""))
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except UnicodeDecodeError as err:
        raise ConfigError(f"recipe {path} is not a text file (byte {err.start} is not UTF-8): give a YAML recipe") \
            from err
    except yaml.YAMLError as err:
        raise ConfigError(f"recipe {path} is not valid YAML: {str(err).splitlines()[0]}") from err
    if data is None:  # an empty file, or comments alone: most likely the wrong file
        raise ConfigError(f"recipe {path} is empty: it should set keys (model, data_dir, ...; see configs/)")
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path} must be a mapping of keys to values")
    bases = data.pop("_base_", None) or []
    merged = {}
    for base in [bases] if isinstance(bases, str) else bases:
        merged.update(load_recipe(os.path.join(os.path.dirname(path), base), _chain + (path,)))
    for name, value in data.items():
        if name in ALIASES:  # said as the key it stands for, so that a later file's key overrides it
            for key, meaning in ALIASES[name].means(parse_value(name, value, f"recipe {path}")).items():
                merged[key] = (meaning, path)
        else:
            merged[name] = (value, path)
    return merged


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are ConfigError (one line, exit code 2 from the entry point), not usage and exit, and
    that reads -1e-3 as a value (argparse's own test for a negative number knows no exponent)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message):
        missing = re.match(r"argument (\S+): expected (?:at least )?one argument", message)
        raise ConfigError(f"{missing.group(1)} needs a value" if missing else message)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def _format_args(self, action, default_metavar):
        if action.nargs == "+":  # the metavar says how many words (a setting takes one unless it is a list)
            return action.metavar
        return super()._format_args(action, default_metavar)


METAVARS = {"int": "N", "float": "X", "str": "TEXT", "ints": "N", "floats": "X"}


def _metavar(key):
    word = "{" + ",".join(map(str, key.choices)) + "}" if key.choices else METAVARS[key.kind]
    if key.kind in ("ints", "floats"):
        return " ".join([word] * key.length) if key.length else f"{word} [{word} ...]"
    return word


def _shown(value):
    """A default as --help shows it: lists as lists, floats rounded (0.229 * 255 is 58.395)."""
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _add_key(group, key, one_word=False):
    text = f"{key.help} (default: {_shown(key.default)})".replace("%", "%%")
    if key.kind == "bool":  # a bare --flag is true
        group.add_argument(f"--{key.name}", nargs="?", const="true", metavar="BOOL", help=text)
    elif one_word and key.kind not in ("ints", "floats"):  # the words after it are the command's positionals
        group.add_argument(f"--{key.name}", metavar=_metavar(key), help=text)
    else:  # every value word is kept, so that parse_key can say "takes one value" or split "0.08,1.0"
        group.add_argument(f"--{key.name}", nargs="+", metavar=_metavar(key), help=text)


def _bare_flags_true(argv, keys):
    """With positionals, `--json photo.jpg` is --json true, then photo.jpg: a boolean flag takes the next word
    only when it is a boolean word."""
    booleans = {f"--{key.name}" for key in keys if key.kind == "bool"} | {"--debug"}
    out = []
    for i, token in enumerate(argv):
        out.append(token)
        following = argv[i + 1] if i + 1 < len(argv) else "-"
        if token in booleans and not following.startswith("-") and \
                following.lower() not in TRUE_WORDS + FALSE_WORDS:
            out.append("true")
    return out


def command_parser(prog=None, description=None, options=(), settings=None, positional=None):
    """The argparse parser of an entry point: `options` (Keys of its own, parsed by the same rules) and the schema
    keys named in `settings` (None: all of them, by group, with their aliases and -c/--config for a recipe);
    `positional`, a (NAME, help) pair, takes any number of words that are not flags (infer.py's images)."""
    usage = f"{prog or '%(prog)s'} [-h]{' [-c RECIPE.yaml]' if settings is None else ''} [--key value ...]" + \
        (f" {positional[0]} [{positional[0]} ...]" if positional else "")
    parser = _Parser(prog=prog, usage=usage, description=description, allow_abbrev=False, add_help=False,
                     argument_default=argparse.SUPPRESS, formatter_class=_HelpFormatter)
    general = parser.add_argument_group("general")
    general.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    if settings is None:
        general.add_argument("-c", "--config", metavar="RECIPE.yaml",
                             help="a YAML recipe; its keys (and its _base_ files') set the defaults of the flags")
    general.add_argument("--debug", nargs="?", const="true", metavar="BOOL",
                         help="show the Python traceback of an error")
    if positional:
        general.add_argument(positional[0].lower(), nargs="*", metavar=positional[0], help=positional[1])
    if options:
        group = parser.add_argument_group(f"{prog or 'command'} options")
        for key in options:
            _add_key(group, key, one_word=bool(positional))
    own = {key.name for key in options}  # an option of the command replaces the setting of the same name
    keys = [key for key in (SCHEMA if settings is None else [SCHEMA_BY_NAME[name] for name in settings])
            if key.name not in own]
    for title, members in itertools.groupby(keys, key=lambda key: key.group):
        group = parser.add_argument_group(f"{title} settings")
        for key in members:
            _add_key(group, key, one_word=bool(positional))
    if settings is None:
        group = parser.add_argument_group("other spellings", "read as the key they stand for")
        for alias in ALIASES.values():
            _add_key(group, alias.key)
    return parser


def _unexpected(token):
    if token.startswith("--"):
        name = token[2:].split("=", 1)[0]
        return f"unknown flag --{name}{_suggest(name)}"
    return f"unexpected argument {token!r}: settings are given as --key value"


def parse_command_line(argv=(), options=(), settings=None, base=None, prog=None, description=None, positional=None):
    """(config, the entry point's own options) from a command line, both Configs (dicts with attribute access);
    the words of `positional` (see command_parser) are a list in the options, under its name in lower case.

    The config is the schema's defaults <- `base` (a saved config) <- the recipe of -c <- the flags; every value is
    checked by its key's rules. An option named like a setting is read from the command line alone (a recipe's value
    of that key goes to the config).

    Raises ShowHelp for -h/--help and ConfigError for anything that cannot be used.
    """
    parser = command_parser(prog, description, options, settings, positional)
    argv = [re.sub(r"^--([\w-]+)", lambda m: "--" + m.group(1).replace("-", "_"), token) for token in argv]
    if "-h" in argv or "--help" in argv:
        raise ShowHelp(parser.format_help())
    if positional:
        argv = _bare_flags_true(argv, [*options, *SCHEMA, *(alias.key for alias in ALIASES.values())])
    given, extras = parser.parse_known_intermixed_args(argv) if positional else parser.parse_known_args(argv)
    if extras:
        raise ConfigError(_unexpected(extras[0]))
    given = vars(given)
    own = Config({key.name: parse_key(key, _words(key, given.pop(key.name)), f"--{key.name}") if key.name in given
                  else key.default for key in options})
    if positional:
        own[positional[0].lower()] = given.pop(positional[0].lower(), [])
    recipe = given.pop("config", None)
    given.pop("debug", None)
    config = Config({key.name: key.default for key in SCHEMA})
    for name, value in (base or {}).items():
        if name in SCHEMA_BY_NAME:
            config[name] = parse_value(name, value, "saved config")
    if recipe:
        for name, (value, path) in load_recipe(recipe).items():
            _assign(config, name, value, f"recipe {path}")
    config["config"] = os.path.abspath(recipe) if recipe else None
    # Flags last; an alias before the key it stands for, so that the key's own flag wins when both are given.
    for name in sorted(given, key=lambda name: name not in ALIASES):
        _assign(config, name, _words(lookup_key(name), given[name]), f"--{name}")
    normalize(config)
    check_consistency(config)
    return config, own


def _words(key, words):
    """The value words of one flag as parse_key takes them: one word, or the list of a list key."""
    return words if key.kind in ("ints", "floats") or not isinstance(words, list) or len(words) != 1 else words[0]


def resolve_config(argv=(), recipe=None, base=None):
    """The settings of a command line (`-c RECIPE --key value ...`); `recipe` is used when argv names none."""
    argv = list(argv)
    if recipe and not any(token in ("-c", "--config") or token.startswith("--config=") for token in argv):
        argv = ["-c", recipe, *argv]
    return parse_command_line(argv, base=base)[0]


def normalize(config):
    """MindCV's ways of saying a thing, said the one way the code reads it."""
    if config.resume_opt:  # MindCV resumes with ckpt_path + resume_opt: true
        if not config.ckpt_path:
            raise ConfigError("resume_opt is true but ckpt_path is empty: give the checkpoint to resume with "
                              "--ckpt_path (MindCV's way), or use --resume PATH or --resume auto")
        if config.resume:
            raise ConfigError("give resume, or ckpt_path with resume_opt (MindCV's way), not both")
        config.update(resume=config.ckpt_path, ckpt_path="", resume_opt=False)
    for name in ("drop_rate", "drop_path_rate"):  # MindCV's None: no dropout
        config[name] = config[name] or 0.0


def check_consistency(config):
    """Rules between keys."""
    if config.min_lr > config.lr:
        raise ConfigError(f"min_lr ({config.min_lr}) is above lr ({config.lr})")
    if config.scale[0] > config.scale[1] or config.ratio[0] > config.ratio[1]:
        raise ConfigError(f"scale and ratio are ranges low, high: got scale {config.scale}, ratio {config.ratio}")
    if config.warmup_epochs >= config.epoch_size and config.scheduler != "constant":
        raise ConfigError(f"warmup_epochs ({config.warmup_epochs}) must be below epoch_size ({config.epoch_size}): "
                          "lower --warmup_epochs (the default is MindCV's 3)")
    if config.jit_level == "O2" and config.device_target not in ("Ascend", "auto"):
        raise ConfigError(f"jit_level O2 exists on Ascend only; on {config.device_target} use O0, O1 or auto")
    if config.loss_scale_type == "dynamic" and not config.drop_overflow_update:
        raise ConfigError("loss_scale_type dynamic always skips overflowed steps: drop_overflow_update false "
                          "contradicts it (use loss_scale_type fixed to apply them)")
    if config.resume and config.ckpt_path:
        raise ConfigError("give resume (continue a run) or ckpt_path (start from weights), not both")
    if config.pretrained and config.ckpt_path:
        raise ConfigError("pretrained and ckpt_path both give starting weights: set one of them")


def scale_learning_rate(config, world_size=1):
    """The lr for this run's global batch (batch_size x devices x accumulation) by the recipe's rule.

    Returns (lr, global_batch, factor). Without lr_base_batch, or with lr_scale none, the lr is used as given.
    """
    global_batch = config.batch_size * world_size * config.gradient_accumulation_steps
    if config.lr_base_batch is None or config.lr_scale == "none":
        factor = 1.0
    elif config.lr_scale == "linear":
        factor = global_batch / config.lr_base_batch
    else:
        factor = math.sqrt(global_batch / config.lr_base_batch)
    return config.lr * factor, global_batch, factor
