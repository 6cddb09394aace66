"""Score a checkpoint: top-1, top-5, loss and sample count over the validation split.

    python validate.py --ckpt_path ckpt/best.ckpt [--data_dir D] [-c RECIPE] [--ema] [--json]
"""
from mindcv_resnext.cli import run_main
from mindcv_resnext.commands import validate_command

if __name__ == "__main__":
    run_main(validate_command)
