"""Export a checkpoint's network (BatchNorm folded) to MINDIR or ONNX, checked against the network's outputs.

    python export.py --ckpt_path ckpt/best.ckpt --file_format ONNX --output resnext.onnx [--batch_size 1]
"""
from mindcv_resnext.cli import run_main
from mindcv_resnext.commands import export_command

if __name__ == "__main__":
    run_main(export_command)
