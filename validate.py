"""Score a checkpoint: top-1, top-5, loss and sample count over the validation split.

    python validate.py --ckpt_path ckpt/best.ckpt [--data_dir D] [-c RECIPE] [--ema] [--json]
"""
import sys

from mindcv_resnext.commands import run_guarded, validate_command

if __name__ == "__main__":
    sys.exit(run_guarded(validate_command, sys.argv[1:]))
