"""Print the model table: parameters, multiply-adds, input size and feature maps of each listed ResNeXt.

    python scripts/model_info.py                      # the published variants
    python scripts/model_info.py --group paper        # the paper's complexity-matched ResNeXt-50 table
    python scripts/model_info.py --models 'resnext101*' --json
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import mindspore as ms  # noqa: E402

from mindcv_resnext import count_macs, count_params, create_model, list_models  # noqa: E402
from mindcv_resnext.cli import run_main  # noqa: E402
from mindcv_resnext.config import ConfigError, Key, parse_command_line  # noqa: E402

OPTIONS = (Key("models", "str", "*", "shell-style pattern over the listed names"),
           Key("group", "str", "published", "which list", choices=("published", "paper", "small", "all")),
           Key("json", "bool", False, "print one JSON object per model instead of a table"))


def model_row(name):
    """One row of the table: the figures of `name` with its card's head and input size."""
    model = create_model(name)
    card = model.card
    return dict(model=name, group=card.group, num_classes=card.num_classes, params=count_params(model),
                gmacs=round(count_macs(model, (card.input_size, card.input_size)) / 1e9, 2),
                input_size=card.input_size,
                features=[dict(channels=f["num_chs"], stride=f["reduction"]) for f in model.feature_info])


def main(argv):
    _, args = parse_command_line(argv, OPTIONS, settings=(), prog="model_info.py", description=__doc__)
    ms.set_device("CPU")
    names = list_models(args["models"], group=None if args["group"] == "all" else args["group"])
    if not names:
        raise ConfigError(f"no listed model matches {args['models']!r} in group {args['group']!r}; "
                          f"listed: {', '.join(list_models())}")
    print(f"{'model':<18} {'params':>12} {'GMACs':>6} {'classes':>7} {'input':>5}  feature maps (channels/stride)",
          file=sys.stderr if args["json"] else sys.stdout)
    for name in names:
        row = model_row(name)
        if args["json"]:
            print(json.dumps(row))
        else:
            features = " ".join(f"{f['channels']}/{f['stride']}" for f in row["features"])
            print(f"{name:<18} {row['params']:>12,} {row['gmacs']:>6.2f} {row['num_classes']:>7} "
                  f"{row['input_size']:>5}  {features}")


if __name__ == "__main__":
    run_main(main)
