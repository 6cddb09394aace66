"""Model size and cost: trainable parameters and multiply-adds (MACs).

MACs count convolutions and Dense layers only, which is how torchvision's "GFLOPS" (4.23 for resnext50_32x4d) and
the paper's "FLOPs" are counted: BN, ReLU, pooling and the residual additions are left out.
"""
import numpy as np

import mindspore as ms
from mindspore import nn


def count_params(model, trainable_only=True):
    """Number of parameters; trainable only by default (BN moving statistics excluded, as torchvision counts)."""
    params = model.trainable_params() if trainable_only else model.get_parameters()
    return sum(int(p.size) for p in params)


def count_macs(model, input_size=(224, 224), in_channels=3):
    """Multiply-adds of one forward pass of one image, read off the layers as they run.

    Runs a single-image forward pass in PyNative mode with hooks on every Conv2d and Dense, so the count follows the
    real shapes; the execution mode and the model's train/eval state are restored afterwards.
    """
    macs = []

    def conv_hook(cell, inputs, output):
        kh, kw = cell.kernel_size
        macs.append(int(np.prod(output.shape[1:])) * (cell.in_channels // cell.group) * kh * kw)

    def dense_hook(cell, inputs, output):
        macs.append(cell.in_channels * cell.out_channels)

    handles = []
    for _, cell in model.cells_and_names():
        if isinstance(cell, nn.Conv2d):
            handles.append(cell.register_forward_hook(conv_hook))
        elif isinstance(cell, nn.Dense):
            handles.append(cell.register_forward_hook(dense_hook))
    mode, was_training = ms.get_context("mode"), model.training
    try:
        ms.set_context(mode=ms.PYNATIVE_MODE)
        model.set_train(False)
        model(ms.Tensor(np.zeros((1, in_channels, *input_size), np.float32)))
    finally:
        for handle in handles:
            handle.remove()
        model.set_train(was_training)
        ms.set_context(mode=mode)
    return sum(macs)
