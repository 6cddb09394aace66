"""Model names -> networks.

A name is `resnext{depth}_{C}x{d}d`: the depth picks the network (ImageNet stem and 4 stages, or CIFAR stem and 3
stages) and its blocks per stage, C is the cardinality and d the width of one group at the first stage. Any C and d
build; `list_models()` lists the names worth knowing: the published variants, the paper's complexity-matched
ResNeXt-50 table (1x64d is ResNet-50), and small networks for tests and demos.
"""
import dataclasses
import difflib
import fnmatch
import re

from ..checkpoint import load_weights, load_weights_for_finetuning, read_checkpoint, stem_pool_pad_of
from .resnext import ResNeXt

IMAGENET_STAGE_BLOCKS = {14: (1, 1, 1, 1), 26: (2, 2, 2, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                         152: (3, 8, 36, 3)}
CIFAR_STAGE_BLOCKS = {11: (1, 1, 1), 20: (2, 2, 2), 29: (3, 3, 3)}  # depth = 9 * blocks + 2

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# The CIFAR-10 statistics used by the ResNeXt-29 code: (125.3, 123.0, 113.9) / 255 and (63.0, 62.1, 66.7) / 255.
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4824, 0.4467), (0.2471, 0.2435, 0.2616)

LISTED = {
    "published": ("resnext50_32x4d", "resnext101_32x4d", "resnext101_32x8d", "resnext101_64x4d", "resnext152_32x4d",
                  "resnext152_64x4d", "resnext29_8x64d", "resnext29_16x64d"),
    "paper": ("resnext50_1x64d", "resnext50_2x40d", "resnext50_4x24d", "resnext50_8x14d"),
    "small": ("resnext11_2x16d", "resnext14_2x16d", "resnext26_8x8d"),
}
OPTIONS = ("in_channels", "drop_rate", "drop_path_rate", "zero_init_last", "stem_pool_pad", "features_only",
           "out_indices")
NAME_PATTERN = re.compile(r"^resnext(\d+)_(\d+)x(\d+)d$")


class UnknownModelError(ValueError):
    exit_code = 2


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """What a name means: the architecture, and the input and eval transform it is meant for."""
    name: str
    depth: int
    cardinality: int
    base_width: int
    stage_blocks: tuple
    dataset: str          # "imagenet" or "cifar": which stem, and the default head, input and normalisation
    group: str            # "published", "paper", "small" or "" (a valid name outside the list)
    num_classes: int
    input_size: int
    crop_pct: float
    interpolation: str
    mean: tuple
    std: tuple


def model_card(name):
    """Parse a model name; an unknown name raises UnknownModelError with the closest listed names."""
    match = NAME_PATTERN.match(name) if isinstance(name, str) else None
    if not match:
        close = difflib.get_close_matches(str(name), list_models(), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see list_models()"
        raise UnknownModelError(f"unknown model {name!r}: names are resnext{{depth}}_{{C}}x{{d}}d{hint}")
    depth, cardinality, base_width = (int(g) for g in match.groups())
    if depth in IMAGENET_STAGE_BLOCKS:
        dataset, blocks = "imagenet", IMAGENET_STAGE_BLOCKS[depth]
    elif depth in CIFAR_STAGE_BLOCKS:
        dataset, blocks = "cifar", CIFAR_STAGE_BLOCKS[depth]
    else:
        raise UnknownModelError(
            f"unknown model {name!r}: depth {depth} is not built; ImageNet depths are "
            f"{', '.join(map(str, IMAGENET_STAGE_BLOCKS))}, CIFAR depths {', '.join(map(str, CIFAR_STAGE_BLOCKS))}")
    if cardinality < 1 or base_width < 1:
        raise UnknownModelError(f"unknown model {name!r}: cardinality and width must be at least 1")
    group = next((g for g, names in LISTED.items() if name in names), "")
    if dataset == "imagenet":
        return ModelCard(name, depth, cardinality, base_width, blocks, dataset, group, num_classes=1000,
                         input_size=224, crop_pct=0.875, interpolation="bilinear", mean=IMAGENET_MEAN,
                         std=IMAGENET_STD)
    return ModelCard(name, depth, cardinality, base_width, blocks, dataset, group, num_classes=10, input_size=32,
                     crop_pct=1.0, interpolation="bilinear", mean=CIFAR_MEAN, std=CIFAR_STD)


def list_models(pattern="*", group=None):
    """Listed model names matching a shell-style pattern, optionally of one group ("published", "paper", "small")."""
    groups = [group] if group else list(LISTED)
    return [name for g in groups for name in LISTED[g] if fnmatch.fnmatch(name, pattern)]


def create_model(name, num_classes=None, checkpoint_path=None, pretrained=False, pretrained_weights=None, **options):
    """Build a ResNeXt by name.

    num_classes: size of the head; None takes the card's (1000 for ImageNet networks, 10 for CIFAR ones).
    checkpoint_path: a MindSpore checkpoint to load; a missing or mis-shaped parameter is an error. Unless
        stem_pool_pad is given, the file's own pooling is used (ours record it; a plain file is read as MindCV's).
    pretrained: start from the model's published ImageNet weights (pretrained_weights: which, by tag; see
        pretrained.py), downloaded and converted on first use; with another num_classes the head is new.
    options: in_channels, drop_rate, drop_path_rate, zero_init_last, stem_pool_pad ("symmetric" or "same" for
        MindCV's checkpoints), features_only, out_indices.
    """
    card = model_card(name)
    for key in options:
        if key not in OPTIONS:
            close = difflib.get_close_matches(key, OPTIONS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise TypeError(f"create_model() got an unknown option {key!r}: {hint}options are {', '.join(OPTIONS)}")
    if pretrained:
        if checkpoint_path is not None:
            raise ValueError("create_model(): give checkpoint_path or pretrained, not both")
        from ..pretrained import pretrained_checkpoint
        checkpoint_path = pretrained_checkpoint(name, pretrained_weights)
    state = read_checkpoint(checkpoint_path) if checkpoint_path is not None else None
    if state is not None and "stem_pool_pad" not in options and card.dataset == "imagenet":
        options["stem_pool_pad"] = stem_pool_pad_of(state, checkpoint_path)
    model = ResNeXt(card.stage_blocks, card.cardinality, card.base_width,
                    num_classes=card.num_classes if num_classes is None else num_classes, **options)
    model.card = card
    if pretrained and model.num_classes != card.num_classes:
        load_weights_for_finetuning(model, checkpoint_path, state=state)
    elif state is not None:
        load_weights(model, checkpoint_path, state=state)
    return model
