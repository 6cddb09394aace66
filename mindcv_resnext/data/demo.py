"""The built-in demo dataset: an ImageFolder of procedurally drawn shapes and textures, saved as JPEGs.

Ten classes, each drawn with a random foreground and background colour, position, scale, rotation and pixel noise,
so that a small ResNeXt has something real to learn and the demo exercises the real decode path. The same seed gives
the same files, byte for byte.
"""
import json
import math
import os

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "cross", "ring", "star", "stripes_horizontal", "stripes_vertical",
           "checkerboard", "dots")
MANIFEST = "demo_manifest.json"
VERSION = 2  # of the drawing code: a manifest of another version means the images are redrawn


def _polygon(cx, cy, radius, corners, angle, inner=None):
    """Vertices of a regular polygon (or a star when `inner` gives the inner radius)."""
    points = []
    steps = corners * (2 if inner else 1)
    for k in range(steps):
        r = inner if inner and k % 2 else radius
        theta = angle + 2 * math.pi * k / steps
        points.append((cx + r * math.cos(theta), cy + r * math.sin(theta)))
    return points


def draw_sample(label, size, rng):
    """One RGB image of class `label`, as a uint8 HWC array."""
    background = tuple(int(c) for c in rng.integers(0, 256, 3))
    foreground = tuple(int(c) for c in rng.integers(0, 256, 3))
    while sum(abs(a - b) for a, b in zip(background, foreground)) < 180:  # keep the shape visible
        foreground = tuple(int(c) for c in rng.integers(0, 256, 3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    radius = size * rng.uniform(0.3, 0.45)  # large enough to survive a ResNeXt stem's 4x down-sampling
    cx, cy = rng.uniform(radius, size - radius, 2)
    angle = rng.uniform(0, 2 * math.pi)
    name = CLASSES[label]
    period = max(3, int(size * rng.uniform(0.1, 0.2)))
    if name == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=foreground)
    elif name == "square":
        draw.polygon(_polygon(cx, cy, radius, 4, angle), fill=foreground)
    elif name == "triangle":
        draw.polygon(_polygon(cx, cy, radius, 3, angle), fill=foreground)
    elif name == "cross":
        width = radius * 0.35
        for a in (angle, angle + math.pi / 2):
            dx, dy = math.cos(a), math.sin(a)
            draw.line([cx - radius * dx, cy - radius * dy, cx + radius * dx, cy + radius * dy], fill=foreground,
                      width=max(2, int(width)))
    elif name == "ring":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], outline=foreground,
                     width=max(2, int(radius * 0.3)))
    elif name == "star":
        draw.polygon(_polygon(cx, cy, radius, 5, angle, inner=radius * 0.4), fill=foreground)
    elif name in ("stripes_horizontal", "stripes_vertical"):
        for start in range(int(rng.integers(period)) - period, size, period):
            box = [0, start, size, start + period // 2] if name == "stripes_horizontal" else \
                [start, 0, start + period // 2, size]
            draw.rectangle(box, fill=foreground)
    elif name == "checkerboard":
        for y in range(0, size, period):
            for x in range(0, size, period):
                if (x // period + y // period) % 2 == 0:
                    draw.rectangle([x, y, x + period - 1, y + period - 1], fill=foreground)
    else:  # dots
        dot = max(1.5, period * 0.3)
        for y in range(period // 2, size, period):
            for x in range(period // 2, size, period):
                draw.ellipse([x - dot, y - dot, x + dot, y + dot], fill=foreground)
    pixels = np.asarray(image, np.float32) + rng.normal(0, rng.uniform(4, 16), (size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def make_demo_dataset(root, train_per_class=300, val_per_class=60, size=48, seed=0):
    """Write root/train/<class>/*.jpg and root/val/<class>/*.jpg; skipped when the same set is already there."""
    settings = dict(train_per_class=train_per_class, val_per_class=val_per_class, size=size, seed=seed,
                    classes=list(CLASSES), version=VERSION)
    manifest = os.path.join(root, MANIFEST)
    if os.path.isfile(manifest):
        with open(manifest) as f:
            if json.load(f) == settings:
                return False
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for label, name in enumerate(CLASSES):
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            rng = np.random.default_rng([seed, label, 0 if split == "train" else 1])
            for i in range(count):
                Image.fromarray(draw_sample(label, size, rng)).save(os.path.join(folder, f"{name}_{i:04d}.jpg"),
                                                                    quality=90)
    with open(manifest, "w") as f:  # written last: its presence means the set is complete
        json.dump(settings, f)
    return True
