"""Train or fine-tune a ResNeXt.

    python train.py -c configs/resnext/resnext50_32x4d_cpu.yaml --data_dir /data/imagenet
    python train.py -c RECIPE --ckpt_path pretrained.ckpt --num_classes 5 --data_dir my_photos   # fine-tune
    python train.py -c RECIPE --resume auto                                                      # continue
"""
import sys

from mindcv_resnext.commands import run_guarded, train_command

if __name__ == "__main__":
    sys.exit(run_guarded(train_command, sys.argv[1:]))
