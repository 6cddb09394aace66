"""A trained network for deployment: BatchNorm folded into the convolutions, exported to MINDIR or ONNX, and checked.

    network, folded = for_deployment(model)       # BatchNorm folded: the same outputs in eval mode
    export_network(network, "r50.onnx", "ONNX", (1, 3, 224, 224))
    outputs = run_exported("r50.onnx", "ONNX", images)              # to compare with model(images)

Folding: in eval mode BN(conv(x)) = conv'(x) with w' = w * g / sqrt(v + eps) per output channel and the bias
b' = beta - mean * g / sqrt(v + eps): every (convolution, BatchNorm) pair of the network becomes one convolution.
"""
import os

import mindspore as ms
import numpy as np
from mindspore import nn

from .models.grouped_conv import GroupedConv3x3
from .models.resnext import use_native_kernels

FORMATS = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}


def _folded_conv(conv, bn):
    """A biased copy of `conv` that computes bn(conv(x)) with bn's moving statistics."""
    scale = bn.gamma.asnumpy() / np.sqrt(bn.moving_variance.asnumpy() + bn.eps)
    weight = conv.weight.asnumpy() * scale.reshape(-1, 1, 1, 1)
    bias = bn.beta.asnumpy() - bn.moving_mean.asnumpy() * scale
    if isinstance(conv, GroupedConv3x3):
        folded = GroupedConv3x3(conv.in_channels, conv.group, stride=conv.stride[0], has_bias=True)
    else:
        folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                           pad_mode=conv.pad_mode, padding=conv.padding, dilation=conv.dilation, group=conv.group,
                           has_bias=True)
    folded.weight.set_data(ms.Tensor(weight.astype(np.float32)))
    folded.bias.set_data(ms.Tensor(bias.astype(np.float32)))
    return folded


def _pairs(cell):
    """(conv attribute, BN attribute) pairs of a cell: convN/bnN, and a [conv, BN] SequentialCell (down_sample)."""
    children = cell.name_cells()
    for name, child in children.items():
        if name.startswith("conv") and isinstance(child, nn.Conv2d):
            bn = "bn" + name[len("conv"):]
            if isinstance(children.get(bn), nn.BatchNorm2d):
                yield name, bn
        if isinstance(child, nn.SequentialCell) and len(child) == 2 and isinstance(child[0], nn.Conv2d) and \
                isinstance(child[1], nn.BatchNorm2d):
            yield name, None


def fold_batchnorm(model):
    """Fold every BatchNorm of `model` (a ResNeXt, changed in place and set to eval mode) into the convolution
    before it; returns the model and the number of BatchNorms folded."""
    model.set_train(False)
    folded = 0
    for _, cell in list(model.cells_and_names()):
        for conv_name, bn_name in list(_pairs(cell)):
            if bn_name is None:  # the shortcut's SequentialCell: replaced by the one folded convolution
                pair = getattr(cell, conv_name)
                setattr(cell, conv_name, _folded_conv(pair[0], pair[1]))
            else:
                setattr(cell, conv_name, _folded_conv(getattr(cell, conv_name), getattr(cell, bn_name)))
                setattr(cell, bn_name, nn.ReLU() if getattr(cell, bn_name).relu else nn.Identity())
            folded += 1
    for path, param in model.parameters_and_names():  # a cell set as an attribute names its parameters anew
        param.name = path
    return model, folded


def for_deployment(model):
    """`model` (changed in place) with BatchNorm folded; returns it and the number of BatchNorms folded. (Its stem
    pool, StemMaxPool, is already made of operators every export format knows; MindSpore's padded MaxPool2d exports
    as MaxPool3DWithArgmax, which its ONNX exporter does not know.)"""
    return fold_batchnorm(model)


def export_network(network, output, file_format, input_shape):
    """Write `network` for a float32 input of `input_shape` (N, C, H, W) to exactly `output`, atomically (MindSpore
    appends its own extension: the file is written under a temporary name, then renamed)."""
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{os.path.basename(output)}.{os.getpid()}.tmp")
    written = temporary + FORMATS[file_format]
    example = ms.Tensor(np.zeros(input_shape, np.float32))
    use_native_kernels(network, False)  # a file holds MindSpore's own operators, which every runtime knows
    try:
        ms.export(network, example, file_name=temporary, file_format=file_format)
        os.replace(written, output)
    finally:
        use_native_kernels(network, True)
        if os.path.exists(written):
            os.remove(written)


class OnnxRuntimeNetwork:
    """An exported ONNX file run by onnxruntime on the CPU, called like the network on an (N, C, H, W) float32
    batch; returns the logits as an array. The file's batch is fixed: a batch is run in pieces of that size, the
    last padded with zeros.

    A deployment path for CPU inference (infer.py --runtime onnxruntime): onnxruntime runs the folded network
    about 1.5-2x faster than MindSpore's CPU kernels (docs/benchmarks.md). onnxruntime is optional; without it
    this raises ImportError."""

    def __init__(self, path):
        import onnxruntime
        self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]
        self.batch_size = self.input.shape[0]

    def __call__(self, images):
        images = np.asarray(images, np.float32)
        outputs = []
        for start in range(0, len(images), self.batch_size):
            piece = images[start:start + self.batch_size]
            padding = np.zeros((self.batch_size - len(piece), *piece.shape[1:]), np.float32)
            outputs.append(self.session.run(None, {self.input.name: np.concatenate([piece, padding])})[0][:len(piece)])
        return np.concatenate(outputs)


def run_exported(path, file_format, images):
    """The outputs of an exported file on `images` (NCHW float32): MINDIR through nn.GraphCell, ONNX through
    onnxruntime (None when it is not installed)."""
    if file_format == "MINDIR":
        return nn.GraphCell(ms.load(path))(ms.Tensor(images)).asnumpy()
    if file_format != "ONNX":  # AIR runs on Ascend's own tools
        return None
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]
