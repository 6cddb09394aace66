"""Write the built-in demo dataset (an ImageFolder of drawn shapes and textures) unless it is already there.

    python scripts/make_demo_data.py [--root data/demo] [--train_per_class 300] [--val_per_class 60] [--size 48]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mindcv_resnext.data.demo import CLASSES, make_demo_dataset  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/demo", help="folder to write train/ and val/ into")
    parser.add_argument("--train_per_class", type=int, default=300)
    parser.add_argument("--val_per_class", type=int, default=60)
    parser.add_argument("--size", type=int, default=48, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if min(args.train_per_class, args.val_per_class) < 1 or args.size < 16:
        sys.exit("error: --train_per_class and --val_per_class must be at least 1, --size at least 16")
    wrote = make_demo_dataset(args.root, args.train_per_class, args.val_per_class, args.size, args.seed)
    total = len(CLASSES) * (args.train_per_class + args.val_per_class)
    print(f"{'wrote' if wrote else 'already there:'} {total} images of {len(CLASSES)} classes in {args.root}")


if __name__ == "__main__":
    main()
