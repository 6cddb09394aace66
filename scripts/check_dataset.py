"""Scan a dataset before training: classes, image counts per split and class, and every unreadable file.

    python scripts/check_dataset.py --data_dir DATA_DIR [--train_split train] [--val_split val] [--workers 2]

Every image is fully decoded (Pillow) and checked as the training pipeline checks it. Exit code 1 when a file is
unreadable or the layout is wrong, so the scan can gate a job.
"""
import multiprocessing
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from PIL import Image  # noqa: E402

from mindcv_resnext.cli import run_main  # noqa: E402
from mindcv_resnext.config import Key, parse_command_line  # noqa: E402
from mindcv_resnext.data.image_check import is_complete_image  # noqa: E402
from mindcv_resnext.data.sources import DataError, image_folder  # noqa: E402

OPTIONS = (Key("workers", "int", os.cpu_count() or 1, "decoding processes", low=1),)


def problem_with(path):
    """None when the image decodes; otherwise a short reason."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        if not path.lower().endswith(".webp") and not is_complete_image(data):
            return "truncated or not a JPEG/PNG/BMP"
        with Image.open(path) as image:
            image.convert("RGB").load()
        return None
    except Exception as err:
        return f"{type(err).__name__}: {err}"


def main(argv):
    config, args = parse_command_line(argv, OPTIONS, settings=("data_dir", "train_split", "val_split"),
                                      prog="check_dataset.py", description=__doc__)
    splits = [s for s in (config.train_split, config.val_split) if os.path.isdir(os.path.join(config.data_dir, s))]
    if not splits:
        raise DataError(f"neither {config.train_split}/ nor {config.val_split}/ in {config.data_dir} "
                        "(expected DATA_DIR/<split>/<class name>/<image files>)")
    bad = []
    for split in splits:
        samples = image_folder(config.data_dir, "train" if split == config.train_split else "val", config.train_split,
                               config.val_split)
        counts = [int((samples.labels == i).sum()) for i in range(len(samples.class_names))]
        print(f"{split}: {len(samples)} images in {len(samples.class_names)} classes "
              f"(per class: min {min(counts)}, max {max(counts)})")
        for name, count in zip(samples.class_names, counts):
            print(f"  {name}: {count}")
        with multiprocessing.Pool(args["workers"]) as pool:
            for path, reason in zip(samples.items, pool.imap(problem_with, samples.items, chunksize=64)):
                if reason:
                    bad.append(path)
                    print(f"unreadable: {path}: {reason}")
    print(f"{len(bad)} unreadable file(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    run_main(main)
