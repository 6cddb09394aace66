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

INTERPOLATIONS = {"bilinear": vision.Inter.BILINEAR, "bicubic": vision.Inter.PILCUBIC,
                  "nearest": vision.Inter.NEAREST, "area": vision.Inter.AREA}


@dataclasses.dataclass
class TransformSettings:
    """The recipe keys that shape the images and targets (MindCV names)."""
    image_resize: int = 224                 # training crop and eval crop size
    scale: tuple = (0.08, 1.0)              # random-resized-crop area range
    ratio: tuple = (0.75, 1.333)            # random-resized-crop aspect range
    hflip: float = 0.5                      # probability of a horizontal flip
    vflip: float = 0.0
    color_jitter: object = None             # one number (brightness = contrast = saturation) or [b, c, s(, hue)];
                                            # not applied when auto_augment is set (as timm)
    interpolation: str = "bilinear"         # bilinear or bicubic (Pillow's): published weights differ by ~0.3 on it
    auto_augment: str = None                # "autoaug", "randaug-m{M}-n{N}", "trivialaugwide"
    re_prob: float = 0.0                    # random erasing probability (after normalisation, erased to 0)
    re_scale: tuple = (0.02, 0.33)
    re_ratio: tuple = (0.3, 3.3)
    mean: tuple = (0.485, 0.456, 0.406)     # in [0, 1], or MindCV's 0-255 values
    std: tuple = (0.229, 0.224, 0.225)
    crop_pct: float = 0.875                 # eval: resize the short side to image_resize / crop_pct, centre crop
    eval_resize: int = None                 # eval: an explicit short-side size instead of image_resize / crop_pct
    cifar_padding: int = 4                  # CIFAR training: pad, then random crop back to image_resize
    mixup: float = 0.0                      # Beta(alpha, alpha) of mixup; 0 turns it off
    cutmix: float = 0.0                     # Beta(alpha, alpha) of cutmix; 0 turns it off
    cutmix_prob: float = 1.0                # probability that a batch is mixed at all (when mixup or cutmix is on)
    mixup_switch_prob: float = 0.5          # with both on: probability of cutmix rather than mixup
    label_smoothing: float = 0.0

    def __post_init__(self):
        check_range("hflip", self.hflip, 0, 1)
        check_range("vflip", self.vflip, 0, 1)
        check_range("re_prob", self.re_prob, 0, 1)
        check_range("crop_pct", self.crop_pct, 0, 1, low_open=True)
        check_range("cutmix_prob", self.cutmix_prob, 0, 1)
        check_range("mixup_switch_prob", self.mixup_switch_prob, 0, 1)
        check_range("label_smoothing", self.label_smoothing, 0, 1, high_open=True)
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        if int(self.image_resize) < 1:
            raise ValueError(f"image_resize must be a positive size, got {self.image_resize}")
        for key in ("scale", "ratio", "re_scale", "re_ratio"):
            low, high = getattr(self, key)
            if not 0 < low <= high:
                raise ValueError(f"{key} must be two numbers 0 < low <= high, got {getattr(self, key)}")
        for key in ("mean", "std"):
            if len(getattr(self, key)) != 3:
                raise ValueError(f"{key} must list 3 values (R, G, B), got {getattr(self, key)}")
        if self.auto_augment:
            auto_augment_op(self.auto_augment, vision.Inter.BILINEAR)  # an unknown policy fails here, not later
        if self.color_jitter is not None:
            color_jitter_strengths(self.color_jitter)
        if self.mixup < 0 or self.cutmix < 0:
            raise ValueError(f"mixup and cutmix are Beta alphas >= 0, got {self.mixup}, {self.cutmix}")

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


def check_range(key, value, low, high, low_open=False, high_open=False):
    if value < low or value > high or (low_open and value == low) or (high_open and value == high):
        bounds = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{key} must be in {bounds}, got {value}")


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
    raise ValueError(f"auto_augment {policy!r} is not known: use autoaug, randaug-m9-n2 (magnitude, ops) or "
                     "trivialaugwide (MindSpore's RandAugment has no mstd/inc variants)")


def color_jitter_strengths(color_jitter):
    """(brightness, contrast, saturation, hue) from one number (the first three, as timm and MindCV), three or four."""
    values = [float(v) for v in np.atleast_1d(color_jitter)]
    if len(values) not in (1, 3, 4):
        raise ValueError(f"color_jitter takes 1, 3 or 4 values, got {len(values)}: {color_jitter}")
    if len(values) == 1:
        values *= 3
    return (*values[:3], values[3] if len(values) == 4 else 0.0)


def train_image_ops(settings, encoded):
    """Training ops for one image: encoded file bytes (ImageNet path) or HWC uint8 pixels (CIFAR path)."""
    size, inter = int(settings.image_resize), INTERPOLATIONS[settings.interpolation]
    if encoded:
        ops = [vision.RandomCropDecodeResize(size, tuple(settings.scale), tuple(settings.ratio), inter)]
    else:
        ops = [vision.Resize(size, inter)] if size != 32 else []
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
        ops.append(vision.RandomErasing(settings.re_prob, tuple(settings.re_scale), tuple(settings.re_ratio)))
    return ops


def eval_image_ops(settings, encoded):
    """Deterministic eval ops: resize the short side to image_resize / crop_pct (or eval_resize), centre crop."""
    size, inter = int(settings.image_resize), INTERPOLATIONS[settings.interpolation]
    ops = [vision.Decode()] if encoded else []
    if encoded or size != 32:
        ops += [vision.Resize(settings.eval_resize_size(), inter), vision.CenterCrop(size)]
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
