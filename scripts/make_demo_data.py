"""Write the built-in demo dataset (an ImageFolder of drawn shapes and textures) unless it is already there.

    python scripts/make_demo_data.py [--root data/demo] [--train_per_class 300] [--val_per_class 60] [--size 48]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mindcv_resnext.cli import run_main  # noqa: E402
from mindcv_resnext.config import Key, parse_command_line  # noqa: E402
from mindcv_resnext.data.demo import CLASSES, make_demo_dataset  # noqa: E402

OPTIONS = (Key("root", "str", "data/demo", "folder to write train/ and val/ into"),
           Key("train_per_class", "int", 300, "training images per class", low=1),
           Key("val_per_class", "int", 60, "validation images per class", low=1),
           Key("size", "int", 48, "image side in pixels", low=16),
           Key("seed", "int", 0, "the same seed writes the same bytes", low=0))


def main(argv):
    _, args = parse_command_line(argv, OPTIONS, settings=(), prog="make_demo_data.py", description=__doc__)
    wrote = make_demo_dataset(args["root"], args["train_per_class"], args["val_per_class"], args["size"], args["seed"])
    total = len(CLASSES) * (args["train_per_class"] + args["val_per_class"])
    print(f"{'wrote' if wrote else 'already there:'} {total} images of {len(CLASSES)} classes in {args['root']}")
    return 0


if __name__ == "__main__":
    run_main(main)
