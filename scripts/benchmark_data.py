"""Training-pipeline throughput, side by side with a plain Pillow loop over the same files in the same run.

    python scripts/benchmark_data.py --data_dir D [--json]     # an ImageFolder (its train split)
    python scripts/benchmark_data.py --generate 600 [--json]   # 600 generated 500x375 JPEGs in a temp folder

Both sides do the ImageNet training transform (random-resized-crop to 224, flip, normalise, HWC->CHW) on every
image; the pipeline also batches. Each side gets one warm-up pass, then `--epochs` timed passes. With --json the
last line is one JSON object: img_per_s, pillow_img_per_s, speedup and the settings.
"""
import json
import math
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from mindcv_resnext.cli import run_main  # noqa: E402
from mindcv_resnext.config import ConfigError, Key, parse_command_line  # noqa: E402
from mindcv_resnext.data import ImageLoader, TransformSettings, load_samples  # noqa: E402

OPTIONS = (Key("data_dir", "str", None, "an ImageFolder dataset; its train split is read", optional=True),
           Key("generate", "int", None, "or: generate N 500x375 JPEGs in a temp folder", low=1, optional=True),
           Key("num_samples", "int", None, "read at most this many images", low=1, optional=True),
           Key("batch_size", "int", 32, "images per batch", low=1),
           Key("image_resize", "int", 224, "training crop size", low=1),
           Key("num_workers", "int", 2, "pipeline decode/augment workers", low=1),
           Key("epochs", "int", 2, "timed passes after one warm-up pass", low=1),
           Key("json", "bool", False, "print one JSON object as the last line"))

MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def generate_jpegs(folder, count, seed=0):
    """Photo-like 500x375 JPEGs (smooth colour fields with texture and noise), in 10 class folders."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((500, 375), Image.BICUBIC)
        pixels = np.asarray(coarse, np.float32) + rng.normal(0, 12, (375, 500, 3))
        os.makedirs(os.path.join(folder, "train", f"class{i % 10}"), exist_ok=True)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            os.path.join(folder, "train", f"class{i % 10}", f"{i:05d}.jpg"), quality=90)


def random_resized_crop_box(width, height, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop parameters: (left, top, right, bottom)."""
    area = width * height
    for _ in range(10):
        target = area * random.uniform(*scale)
        aspect = math.exp(random.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            left, top = random.randint(0, width - w), random.randint(0, height - h)
            return left, top, left + w, top + h
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, (width + side) // 2, (height + side) // 2


def pillow_pass(paths, size):
    for path in paths:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image = image.resize((size, size), Image.BILINEAR, box=random_resized_crop_box(*image.size))
        if random.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        ((np.asarray(image, np.float32) - MEAN) / STD).transpose(2, 0, 1)


def timed(run, epochs, images_per_epoch):
    run(epochs)  # warm-up, on an epoch number the timed passes do not use
    start = time.perf_counter()
    for epoch in range(epochs):
        run(epoch)
    return images_per_epoch * epochs / (time.perf_counter() - start)


def main(argv):
    _, args = parse_command_line(argv, OPTIONS, settings=(), prog="benchmark_data.py", description=__doc__)
    if (args.data_dir is None) == (args.generate is None):
        raise ConfigError("give one of --data_dir D (an ImageFolder) or --generate N (generated JPEGs)")
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir
        if args.generate:
            data_dir = scratch
            generate_jpegs(scratch, args.generate)
        samples = load_samples("imagefolder", data_dir, "train", num_samples=args.num_samples)
        settings = TransformSettings(image_resize=args.image_resize, color_jitter=None)  # as the Pillow side
        loader = ImageLoader(samples, settings, batch_size=args.batch_size, training=True,
                             num_workers=args.num_workers, log=lambda line: print(line, file=sys.stderr))
        images_per_epoch = len(loader) * args.batch_size

        def pipeline_pass(epoch):
            for _ in loader.epoch(epoch):
                pass

        random.seed(0)
        result = dict(
            img_per_s=round(timed(pipeline_pass, args.epochs, images_per_epoch), 1),
            pillow_img_per_s=round(timed(lambda epoch: pillow_pass(samples.items, args.image_resize), args.epochs,
                                         len(samples)), 1),
            images=len(samples), mean_file_kb=round(np.mean([os.path.getsize(p) for p in samples.items]) / 1024, 1),
            first_image_size=list(Image.open(samples.items[0]).size), batch_size=args.batch_size,
            image_resize=args.image_resize, num_workers=args.num_workers, epochs=args.epochs,
            cpus=os.cpu_count(), data="generated" if args.generate else data_dir)
        result["speedup"] = round(result["img_per_s"] / result["pillow_img_per_s"], 2)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>18}: {value}")
    return 0


if __name__ == "__main__":
    run_main(main)
