"""Classify images with a checkpoint: per image, the top-k classes with names and probabilities.

    python infer.py --ckpt_path ckpt/best.ckpt photo.jpg more_photos/ [--topk 5] [--json]
    python infer.py --model resnext50_32x4d --pretrained photo.jpg
"""
from mindcv_resnext.cli import run_main
from mindcv_resnext.commands import infer_command

if __name__ == "__main__":
    run_main(infer_command)
