"""Convert ResNeXt weights of torchvision, timm, mmpretrain or MindCV into a checkpoint of ours.

    python scripts/convert_weights.py --src resnext50_32x4d-7cdf4587.pth --model resnext50_32x4d --output r50.ckpt
    python scripts/convert_weights.py --src resnext50_32x4d-988f75bc-910v2.ckpt --model resnext50_32x4d \\
        --output r50_mindcv.ckpt --source mindcv

Files: .pth/.pt as torch.save writes them (or a dict holding state_dict/model), read without torch by an unpickler
that builds arrays and refuses anything else; .safetensors; MindSpore .ckpt (MindCV). Every name and shape is
checked against the model. The checkpoint records the eval transform the weights were scored with (that of the
published file the name or --weights gives, see mindcv_resnext/pretrained.py, else the source's; override it with
--crop_pct, --eval_resize, --interpolation, --eval_antialias), the stem pooling and, for 1000 classes, ImageNet's
class names. validate.py, infer.py, export.py and fine-tuning (--ckpt_path) read it.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mindcv_resnext.cli import run_main  # noqa: E402
from mindcv_resnext.config import SCHEMA_BY_NAME, ConfigError, Key, parse_command_line  # noqa: E402
from mindcv_resnext.convert import SOURCES, convert, read_weights  # noqa: E402
from mindcv_resnext.pretrained import find_weights, published_weights  # noqa: E402

EVAL_OVERRIDES = ("crop_pct", "eval_resize", "interpolation", "eval_antialias")
OPTIONS = (Key("src", "str", "", "the weights file: .pth/.pt (PyTorch), .safetensors or .ckpt (MindCV)"),
           Key("model", "str", "", "our model name, e.g. resnext50_32x4d"),
           Key("output", "str", "", "the checkpoint to write"),
           Key("source", "str", "auto", "whose weights (auto: the published file's, else guessed from the names)",
               choices=("auto", *SOURCES)),
           Key("weights", "str", None, "which published weights the file holds, e.g. resnext50_32x4d.tv2_in1k (none: "
               "found by the file's name)", optional=True),
           *[Key(name, SCHEMA_BY_NAME[name].kind, None, SCHEMA_BY_NAME[name].help + "; none: the weights' own",
                 optional=True, low=SCHEMA_BY_NAME[name].low, high=SCHEMA_BY_NAME[name].high,
                 choices=SCHEMA_BY_NAME[name].choices) for name in EVAL_OVERRIDES])


def main(argv):
    _, args = parse_command_line(argv, OPTIONS, settings=(), prog="convert_weights.py", description=__doc__)
    for name in ("src", "model", "output"):
        if not args[name]:
            raise ConfigError(f"--{name} is required (see --help)")
    import mindspore as ms
    ms.set_device("CPU")
    entry = find_weights(args.model, args.weights) if args.weights else next(
        (e for e in published_weights(args.model) if e.file_name == os.path.basename(args.src)), None)
    source = args.source if args.source != "auto" else entry.source if entry else None
    transform = dict(entry.eval_transform if entry else {})
    transform.update({key: args[key] for key in EVAL_OVERRIDES if args[key] is not None})
    if entry:
        print(f"{os.path.basename(args.src)}: the published {entry.tag} (top-1 {entry.top1} reported)")
    convert(read_weights(args.src), args.model, args.output, source, transform,
            extra_meta=dict(pretrained=entry.tag) if entry else None)
    return 0


if __name__ == "__main__":
    run_main(main)
