"""The grouped 3x3 convolution of a ResNeXt block: an nn.Conv2d (same parameters, same checkpoints, same export)
whose float32 forward and backward run the native CPU kernels of mindcv_resnext/kernels where they apply, and
MindSpore's convolution everywhere else (other devices, fp16, groups the kernels do not cover, export)."""
from mindspore import dtype as mstype
from mindspore import nn, ops

from .. import kernels

MAX_GROUP_WIDTH = 32  # channels per group the kernels cover (a multiple of 4); wider groups run well in oneDNN


def native_ops(channels, groups, stride, has_bias=False):
    """The forward custom op, its backward attached, for this convolution: (x, w) -> y, or (x, w, b) -> y + b with
    a bias (BatchNorm folded, for inference); None where the kernels do not apply."""
    group_width = channels // groups
    if not (groups > 1 and group_width % 4 == 0 and group_width <= MAX_GROUP_WIDTH and stride in (1, 2)):
        return None
    if not kernels.enabled():
        return None
    path = kernels.library()

    def output_shape(x, w, *bias):
        return [x[0], w[0], (x[2] - 1) // stride + 1, (x[3] - 1) // stride + 1]

    def like_first(*types):
        return types[0]

    backward_input = ops.Custom(f"{path}:GroupedConv3x3BackwardInput{stride}", lambda dy, w, x: x, like_first,
                                func_type="aot")
    backward_weight = ops.Custom(f"{path}:GroupedConv3x3BackwardWeight{stride}", lambda dy, x, w: w, like_first,
                                 func_type="aot")

    def backward(x, w, out, dout):
        return backward_input(dout, w, x), backward_weight(dout, x, w)

    def backward_with_bias(x, w, b, out, dout):
        return backward_input(dout, w, x), backward_weight(dout, x, w), dout.sum(axis=(0, 2, 3))

    if has_bias:
        return ops.Custom(f"{path}:GroupedConv3x3ForwardBias{stride}", output_shape, like_first, func_type="aot",
                          bprop=backward_with_bias)
    return ops.Custom(f"{path}:GroupedConv3x3Forward{stride}", output_shape, like_first, func_type="aot",
                      bprop=backward)


class GroupedConv3x3(nn.Conv2d):
    """3x3 convolution with `groups` groups, padding 1, equal input and output channels (ResNeXt's grouped conv)."""

    def __init__(self, channels, groups, stride=1, has_bias=False, weight_init=None):
        super().__init__(channels, channels, 3, stride=stride, pad_mode="pad", padding=1, group=groups,
                         has_bias=has_bias, weight_init=weight_init)
        self.native = native_ops(channels, groups, stride, has_bias)

    def use_native(self, enabled):
        """Switch the kernels off (export: a file must hold MindSpore's own operators) or back on where they apply."""
        self.native = native_ops(self.in_channels, self.group, self.stride[0], self.has_bias) if enabled else None

    def construct(self, x):
        if self.native is None or x.dtype != mstype.float32 or self.weight.dtype != mstype.float32:
            return super().construct(x)
        if self.has_bias:
            return self.native(x, self.weight, self.bias)
        return self.native(x, self.weight)

