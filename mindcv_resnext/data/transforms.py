"""Image transforms set from the recipe, and Mixup/CutMix on batches.

Key names are MindCV's, so that its recipes set the same things here. Image files go through the ImageNet path
(fused random-resized-crop decode, ~1.8x faster than decoding then cropping); CIFAR records, already pixels, through
the CIFAR path (4-pixel padded random crop). Both end in Normalize + HWC->CHW, giving float32 (3, H, W).
"""
import dataclasses
import math
import re

import numpy as np
from mindspore.dataset import vision

from ..config import SCHEMA_BY_NAME, ConfigError, parse_key

INTERPOLATIONS = {"bilinear": vision.Inter.BILINEAR, "bicubic": vision.Inter.PILCUBIC,
                  "nearest": vision.Inter.NEAREST, "area": vision.Inter.AREA}
# On a Pillow image, MindSpore's Resize calls Image.resize with these (antialiased when shrinking, as Pillow is).
PILLOW_INTERPOLATIONS = {"bilinear": vision.Inter.BILINEAR, "bicubic": vision.Inter.BICUBIC,
                         "nearest": vision.Inter.NEAREST, "area": vision.Inter.AREA}


def _setting(name):
    """A field whose default (and, in __post_init__, whose type and range) is the schema key's."""
    return dataclasses.field(default=SCHEMA_BY_NAME[name].default, metadata={"help": SCHEMA_BY_NAME[name].help})


@dataclasses.dataclass
class TransformSettings:
    """The recipe keys that shape the images and targets: names, defaults, types and ranges are the schema's
    (config.py), checked by the same rules whether they come from a recipe or from code."""
    image_resize: int = _setting("image_resize")
    scale: tuple = _setting("scale")
    ratio: tuple = _setting("ratio")
    hflip: float = _setting("hflip")
    vflip: float = _setting("vflip")
    color_jitter: tuple = _setting("color_jitter")      # not applied when auto_augment is set (as timm)
    interpolation: str = _setting("interpolation")
    auto_augment: str = _setting("auto_augment")
    re_prob: float = _setting("re_prob")                # random erasing, after normalisation, erased to 0
    re_scale: tuple = _setting("re_scale")
    re_ratio: tuple = _setting("re_ratio")
    re_max_attempts: int = _setting("re_max_attempts")
    mean: tuple = _setting("mean")                      # in [0, 1], or MindCV's 0-255 values
    std: tuple = _setting("std")
    crop_pct: float = _setting("crop_pct")
    eval_resize: int = _setting("eval_resize")
    eval_antialias: bool = _setting("eval_antialias")
    cifar_padding: int = _setting("cifar_padding")
    mixup: float = _setting("mixup")
    cutmix: float = _setting("cutmix")
    cutmix_prob: float = _setting("cutmix_prob")
    mixup_switch_prob: float = _setting("mixup_switch_prob")
    label_smoothing: float = _setting("label_smoothing")

    def __post_init__(self):
        for field in dataclasses.fields(self):
            setattr(self, field.name, parse_key(SCHEMA_BY_NAME[field.name], getattr(self, field.name),
                                                "transform settings"))
        for key in ("scale", "ratio", "re_scale", "re_ratio"):
            low, high = getattr(self, key)
            if not 0 < low <= high:
                raise ConfigError(f"{key} must be two numbers 0 < low <= high, got {getattr(self, key)}")
        if self.auto_augment:
            auto_augment_op(self.auto_augment, vision.Inter.BILINEAR)  # an unknown policy fails here, not later

    @property
    def mixes(self):
        return (self.mixup > 0 or self.cutmix > 0) and self.cutmix_prob > 0

    def normalize_chw(self):
        """HWC->CHW on the uint8 pixels (4x fewer bytes to move than after), then Normalize to float32 CHW.

        mean/std may be given in [0, 1] or, as MindCV writes them, in 0-255.
        """
        unit = 1.0 if max(self.mean) > 1 or max(self.std) > 1 else 255.0
        return [vision.HWC2CHW(), vision.Normalize([m * unit for m in self.mean], [s * unit for s in self.std],
                                                   is_hwc=False)]

    def eval_resize_size(self):
        return int(self.eval_resize or math.floor(self.image_resize / self.crop_pct))


def auto_augment_op(policy, interpolation):
    """AutoAugment (ImageNet policy), RandAugment or TrivialAugmentWide from a timm/MindCV-style policy string."""
    if policy in ("autoaug", "autoaugment"):
        return vision.AutoAugment(vision.AutoAugmentPolicy.IMAGENET, interpolation)
    if policy in ("trivialaugwide", "trivialaugmentwide"):
        return vision.TrivialAugmentWide(interpolation=interpolation)
    match = re.fullmatch(r"randaug((?:-[mn]\d+)*)", policy or "")
    if match:
        parts = dict((p[0], int(p[1:])) for p in match.group(1).split("-") if p)
        return vision.RandAugment(num_ops=parts.get("n", 2), magnitude=parts.get("m", 9), interpolation=interpolation)
    raise ConfigError(f"auto_augment {policy!r} is not known: use autoaug, randaug-m9-n2 (magnitude, ops) or "
                     "trivialaugwide (MindSpore's RandAugment has no mstd/inc variants)")


def color_jitter_strengths(color_jitter):
    """(brightness, contrast, saturation, hue) from one number (the first three, as timm and MindCV), three or four."""
    values = [float(v) for v in np.atleast_1d(color_jitter)]
    if len(values) not in (1, 3, 4):
        raise ValueError(f"color_jitter takes 1, 3 or 4 values, got {len(values)}: {color_jitter}")
    if len(values) == 1:
        values *= 3
    return (*values[:3], values[3] if len(values) == 4 else 0.0)


def train_image_ops(settings, pixel_size=None):
    """Training ops for one image: encoded file bytes (pixel_size None: the ImageNet path) or HWC uint8 pixels of
    that side (the CIFAR path), resized only when the crop size differs from it."""
    size, inter = int(settings.image_resize), INTERPOLATIONS[settings.interpolation]
    if pixel_size is None:
        ops = [vision.RandomCropDecodeResize(size, tuple(settings.scale), tuple(settings.ratio), inter)]
    else:
        ops = [vision.Resize(size, inter)] if size != pixel_size else []
        ops.append(vision.RandomCrop(size, padding=settings.cifar_padding))
    if settings.hflip > 0:
        ops.append(vision.RandomHorizontalFlip(settings.hflip))
    if settings.vflip > 0:
        ops.append(vision.RandomVerticalFlip(settings.vflip))
    if settings.auto_augment:  # the augment ops take OpenCV's interpolations only, not Pillow's cubic
        ops.append(auto_augment_op(settings.auto_augment,
                                   vision.Inter.BICUBIC if settings.interpolation == "bicubic" else inter))
    if settings.color_jitter is not None and not settings.auto_augment:  # as timm: the policy replaces the jitter
        brightness, contrast, saturation, hue = color_jitter_strengths(settings.color_jitter)
        if brightness or contrast or saturation or hue:
            ops.append(vision.RandomColorAdjust(*[(max(0.0, 1 - j), 1 + j) for j in (brightness, contrast, saturation)],
                                                hue=(-hue, hue)))
    ops += settings.normalize_chw()
    if settings.re_prob > 0:
        ops.append(vision.RandomErasing(settings.re_prob, tuple(settings.re_scale), tuple(settings.re_ratio),
                                        max_attempts=settings.re_max_attempts))
    return ops


def eval_image_ops(settings, pixel_size=None):
    """Deterministic eval ops: decode a file (pixel_size None), resize the short side to image_resize / crop_pct
    (or eval_resize) and centre crop; pixel arrays already of the crop size are left as they are.

    With eval_antialias the image is decoded, resized and cropped by Pillow, as torchvision's and timm's eval
    transforms do: on photographs this equals their tensors exactly, where OpenCV's resize (no antialiasing when
    shrinking) is 1-13 grey levels away on average (docs/eval-transform.md).
    """
    size = int(settings.image_resize)
    pillow = settings.eval_antialias
    if pixel_size is None:
        ops = [vision.Decode(to_pil=pillow)]
    else:
        ops = [vision.ToPIL()] if pillow and pixel_size != size else []
    if pixel_size != size:  # MindSpore's Resize and CenterCrop run Pillow's own on a Pillow image
        inter = PILLOW_INTERPOLATIONS if pillow else INTERPOLATIONS
        ops += [vision.Resize(settings.eval_resize_size(), inter[settings.interpolation]), vision.CenterCrop(size)]
    return ops + settings.normalize_chw()


def smooth_one_hot(labels, num_classes, smoothing):
    off = smoothing / num_classes
    targets = np.full((len(labels), num_classes), off, np.float32)
    targets[np.arange(len(labels)), labels] = 1.0 - smoothing + off
    return targets


def mix_batch(images, labels, settings, num_classes, rng):
    """Mixup or CutMix one batch against its reverse (timm's batch mode); returns images and soft targets.

    A batch is mixed with probability cutmix_prob; with both on, CutMix is chosen with mixup_switch_prob. The targets
    are lam * y + (1 - lam) * y_reversed with label smoothing, lam corrected to the pasted area for CutMix.
    """
    targets = smooth_one_hot(labels, num_classes, settings.label_smoothing)
    if not settings.mixes or rng.random() >= settings.cutmix_prob:
        return images, targets
    use_cutmix = settings.cutmix > 0 and (settings.mixup <= 0 or rng.random() < settings.mixup_switch_prob)
    lam = float(rng.beta(settings.cutmix, settings.cutmix) if use_cutmix else rng.beta(settings.mixup, settings.mixup))
    if use_cutmix:
        height, width = images.shape[-2:]
        cut_h, cut_w = int(height * math.sqrt(1 - lam)), int(width * math.sqrt(1 - lam))
        cy, cx = rng.integers(height), rng.integers(width)
        y0, y1 = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
        x0, x1 = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
        mixed = images.copy()
        mixed[..., y0:y1, x0:x1] = images[::-1, ..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (height * width)
    else:
        mixed = lam * images + (1 - lam) * images[::-1]
    return mixed.astype(np.float32), (lam * targets + (1 - lam) * targets[::-1]).astype(np.float32)
