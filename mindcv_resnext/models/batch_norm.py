"""The BatchNorm of a ResNeXt, optionally followed by its ReLU: an nn.BatchNorm2d (same parameters, same checkpoints,
kept in float32 by mixed precision like any BatchNorm, folded for export) whose float32 training-mode forward and
backward run the native CPU kernels of mindcv_resnext/kernels where they apply, and MindSpore's BatchNorm (+ ReLU)
everywhere else: inference, other devices, fp16 inputs, `native_kernels: false`."""
import mindspore as ms
from mindspore import dtype as mstype
from mindspore import nn, ops


def native_ops(relu):
    """The forward custom op, its backward attached: (x, gamma, beta, moving_mean, moving_variance, (eps, momentum))
    -> (y, batch mean, biased batch variance), the moving statistics updated in place (as MindSpore's BatchNorm
    kernel does; declared as a memory side effect, so the graph keeps and orders it); None where the kernels do not
    apply."""
    from .. import kernels
    if not kernels.enabled():
        return None
    name = f"{kernels.library()}:BatchNorm{'Relu' if relu else ''}"
    backward_op = ops.Custom(f"{name}Backward", lambda dy, x, gamma, *rest: (x, gamma, gamma),
                             lambda dy, *rest: (dy, dy, dy), func_type="aot")

    def backward(x, gamma, beta, moving_mean, moving_variance, settings, out, dout):
        # Only y reaches the loss: the moving statistics are assigned, not differentiated.
        dx, dgamma, dbeta = backward_op(dout[0], x, gamma, beta, out[1], out[2], settings)
        return (dx, dgamma, dbeta, ops.zeros_like(moving_mean), ops.zeros_like(moving_variance),
                ops.zeros_like(settings))

    forward = ops.Custom(f"{name}Forward", lambda x, gamma, *rest: (x, gamma, gamma), lambda x, *rest: (x, x, x),
                         func_type="aot", bprop=backward)
    forward.add_prim_attr("side_effect_mem", True)
    return forward


class BatchNormAct2d(nn.BatchNorm2d):
    """nn.BatchNorm2d, followed by ReLU when `relu` is true (one native pass instead of two operators). Named as
    timm's BatchNormAct2d; not BatchNorm2d, because MindSpore's O1 rewrite names its copies by class name, and
    two classes of one name break it."""

    def __init__(self, channels, eps, momentum, gamma_init="ones", relu=False):
        super().__init__(channels, eps=eps, momentum=momentum, gamma_init=gamma_init)
        self.relu = relu
        self.settings = ms.Tensor([eps, self.momentum], mstype.float32)  # self.momentum: the batch's weight
        self.native = native_ops(relu)
        self.recomputed = False  # set by engine.step.recompute_blocks: see recomputable_forward
        self.frozen_settings = ms.Tensor([eps, 0.0], mstype.float32)
        self.frozen_bn_train = ops.BatchNorm(is_training=True, epsilon=eps, momentum=0.0, data_format=self.format)

    def use_native(self, enabled):
        """Switch the kernels off or back on where they apply."""
        self.native = native_ops(self.relu) if enabled else None

    def construct(self, x):
        # MindSpore's own BatchNorm ops, called here rather than through super().construct: MindSpore's O1 rewrite
        # turns that call into an endless recursion.
        batch_statistics = self.training if self.use_batch_statistics is None else self.use_batch_statistics
        if not batch_statistics:
            y = self.bn_infer(x, self.gamma, self.beta, self.moving_mean, self.moving_variance)[0]
        elif self.recomputed:
            return self.recomputable_forward(x)
        elif self.native is None or x.dtype != mstype.float32 or self.gamma.dtype != mstype.float32:
            y = self.bn_train(x, self.gamma, self.beta, self.moving_mean, self.moving_variance)[0]
        else:  # the kernel updates the moving statistics, as MindSpore's does
            return self.native(x, self.gamma, self.beta, self.moving_mean, self.moving_variance, self.settings)[0]
        return ops.relu(y) if self.relu else y

    def recomputable_forward(self, x):
        """Training-mode BatchNorm for a block that the backward recomputes (`recompute`). MindSpore's recompute
        runs a recomputed block's operators again, side effects included, so a BatchNorm operator that updates its
        moving statistics (MindSpore's or our kernel) would update them twice a step. Here the operator runs with
        momentum 0 (its statistics stay as they are) and two Assigns, which the backward does not need and so the
        recompute does not repeat, update them from the batch's statistics."""
        if self.native is not None and x.dtype == mstype.float32 and self.gamma.dtype == mstype.float32:
            y, mean, variance = self.native(x, self.gamma, self.beta, self.moving_mean, self.moving_variance,
                                            self.frozen_settings)
        else:  # MindSpore's BatchNorm on this device, and the statistics from reductions (fast off the CPU)
            y = self.frozen_bn_train(x, self.gamma, self.beta, self.moving_mean, self.moving_variance)[0]
            y = ops.relu(y) if self.relu else y
            x = ops.cast(x, mstype.float32)
            mean = x.mean(axis=(0, 2, 3))
            centred = x - ops.reshape(mean, (1, -1, 1, 1))
            variance = (centred * centred).mean(axis=(0, 2, 3))
        count = x.shape[0] * x.shape[2] * x.shape[3]
        mean = ops.cast(ops.stop_gradient(mean), mstype.float32)
        variance = ops.cast(ops.stop_gradient(variance), mstype.float32) * (count / max(count - 1, 1))
        ops.assign(self.moving_mean, self.moving_mean * (1.0 - self.momentum) + mean * self.momentum)
        ops.assign(self.moving_variance, self.moving_variance * (1.0 - self.momentum) + variance * self.momentum)
        return y
