"""Convert ResNeXt weights of torchvision, timm, mmpretrain or MindCV into a checkpoint of ours.

    python scripts/convert_weights.py --src resnext50_32x4d-7cdf4587.pth --model resnext50_32x4d --output r50.ckpt
    python scripts/convert_weights.py --src resnext50_32x4d-988f75bc-910v2.ckpt --model resnext50_32x4d \\
        --output r50_mindcv.ckpt --source mindcv

PyTorch files (.pth/.pt as torch.save writes them, or a dict holding state_dict/model) are read without torch, by an
unpickler that builds arrays and refuses anything else. Every name and shape is checked against the model; the
checkpoint records the eval transform of the source (override it with --crop_pct, --eval_resize, --interpolation)
and its stem pooling, and then validate.py, fine-tuning (--ckpt_path) and resume-free training read it.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mindcv_resnext.cli import run_main  # noqa: E402
from mindcv_resnext.config import SCHEMA_BY_NAME, ConfigError, Key, parse_command_line  # noqa: E402
from mindcv_resnext.convert import SOURCES, convert, read_weights  # noqa: E402

OPTIONS = (Key("src", "str", "", "the weights file: .pth/.pt (PyTorch) or .ckpt (MindCV)"),
           Key("model", "str", "", "our model name, e.g. resnext50_32x4d"),
           Key("output", "str", "", "the checkpoint to write"),
           Key("source", "str", "auto", "whose weights (auto: guessed from the names)", choices=("auto", *SOURCES)),
           Key("crop_pct", "float", None, "eval crop / resize ratio (default: the source's)", low=0.01, high=1,
               optional=True),
           Key("eval_resize", "int", None, "eval short side before the crop, e.g. 232 for torchvision's V2 weights",
               low=1, optional=True),
           Key("interpolation", "str", None, "eval resize interpolation (default: the source's)", optional=True,
               choices=SCHEMA_BY_NAME["interpolation"].choices))


def main(argv):
    _, args = parse_command_line(argv, OPTIONS, settings=(), prog="convert_weights.py", description=__doc__)
    for name in ("src", "model", "output"):
        if not args[name]:
            raise ConfigError(f"--{name} is required (see --help)")
    import mindspore as ms
    ms.set_device("CPU")
    overrides = {key: args[key] for key in ("crop_pct", "eval_resize", "interpolation") if args[key] is not None}
    convert(read_weights(args.src), args.model, args.output, None if args.source == "auto" else args.source,
            overrides)
    return 0


if __name__ == "__main__":
    run_main(main)
