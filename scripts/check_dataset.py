"""Scan a dataset before training: classes, image counts per split and class, and every unreadable file.

    python scripts/check_dataset.py DATA_DIR [--train_split train] [--val_split val] [--workers 2]

Every image is fully decoded (Pillow) and checked as the training pipeline checks it. Exit code 1 when a file is
unreadable or the layout is wrong, so the scan can gate a job.
"""
import argparse
import multiprocessing
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from PIL import Image  # noqa: E402

from mindcv_resnext.data.image_check import is_complete_image  # noqa: E402
from mindcv_resnext.data.sources import DataError, image_folder  # noqa: E402


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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir")
    parser.add_argument("--train_split", default="train")
    parser.add_argument("--val_split", default="val")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    splits = [s for s in (args.train_split, args.val_split) if os.path.isdir(os.path.join(args.data_dir, s))]
    if not splits:
        sys.exit(f"error: neither {args.train_split}/ nor {args.val_split}/ in {args.data_dir} "
                 "(expected DATA_DIR/<split>/<class name>/<image files>)")
    bad = []
    try:
        for split in splits:
            samples = image_folder(args.data_dir, "train" if split == args.train_split else "val", args.train_split,
                                   args.val_split)
            counts = [int((samples.labels == i).sum()) for i in range(len(samples.class_names))]
            print(f"{split}: {len(samples)} images in {len(samples.class_names)} classes "
                  f"(per class: min {min(counts)}, max {max(counts)})")
            for name, count in zip(samples.class_names, counts):
                print(f"  {name}: {count}")
            with multiprocessing.Pool(max(1, args.workers)) as pool:
                for path, reason in zip(samples.items, pool.imap(problem_with, samples.items, chunksize=64)):
                    if reason:
                        bad.append(path)
                        print(f"unreadable: {path}: {reason}")
    except DataError as err:
        sys.exit(f"error: {err}")
    print(f"{len(bad)} unreadable file(s)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
