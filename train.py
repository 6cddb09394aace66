"""Train or fine-tune a ResNeXt.

    python train.py -c configs/resnext/resnext50_32x4d_cpu.yaml --data_dir /data/imagenet
    python train.py -c RECIPE --ckpt_path pretrained.ckpt --num_classes 5 --data_dir my_photos   # fine-tune
    python train.py -c RECIPE --resume auto                                                      # continue
"""
from mindcv_resnext.cli import run_main
from mindcv_resnext.commands import train_command

if __name__ == "__main__":
    run_main(train_command)
