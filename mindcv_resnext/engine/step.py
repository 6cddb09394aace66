"""One training step, compiled in graph mode: forward, loss scaling, gradient accumulation, all-reduce, clipping,
the optimizer update (skipped when a gradient overflowed), and the EMA of the weights.

Loss scaling uses `amp.DynamicLossScaler` / `amp.StaticLossScaler` with `amp.all_finite`, which run on every backend
(MindSpore's `TrainOneStepWithLossScaleCell` needs an NPU-only op and fails on CPU). The scale follows MindCV's
loss_scale_type and drop_overflow_update, with the factor and window of MindSpore's DynamicLossScaleManager (x2,
2000 steps).
"""
import mindspore as ms
import numpy as np
from mindspore import amp, ops

from ..runtime import jit
from .ema import clone_parameters

SCALE_FACTOR, SCALE_WINDOW = 2, 2000


def _no_ema():
    return True


class TrainStep:
    """`loss, finite = step(images, labels)`; call `network.set_train(True)` first.

    With `accumulation_steps` k, the optimizer steps on the k-th call with the mean gradient of the k micro-batches;
    the other calls only accumulate (and return finite=True). `finite` is False for a step whose gradients overflowed
    (in fp32 with no loss scale: whose loss, first or last gradient is not finite): its update is skipped, unless
    `drop_overflow_update` is False with a fixed scale (MindCV's default), which applies it. `low_precision`: the
    network computes in fp16 (amp O1-O3), so every gradient is checked. `noise_seed`: the network has dropout or
    drop-path; each call passes it a key made of the seed and the call's number (`micro_step`, which a resumed run
    sets), so that the masks follow the step, not the process (models/resnext.py: keyed_keep_mask).
    """

    def __init__(self, network, loss_fn, optimizer, loss_scale=1.0, dynamic_loss_scale=False, clip_norm=None,
                 accumulation_steps=1, ema=None, grad_reducer=None, drop_overflow_update=True, low_precision=False,
                 noise_seed=None):
        self.network, self.optimizer, self.noise_seed = network, optimizer, noise_seed
        self.accumulation_steps, self.micro_step = accumulation_steps, 0
        self.scaler = (amp.DynamicLossScaler(loss_scale, SCALE_FACTOR, SCALE_WINDOW) if dynamic_loss_scale
                       else amp.StaticLossScaler(loss_scale))
        drop_overflow = drop_overflow_update or dynamic_loss_scale
        self.ema = ema  # an EMA of the network's weights, updated after every optimizer step (or None)
        params = optimizer.parameters
        self.accumulated = clone_parameters(params, "accum", zeros=True) if accumulation_steps > 1 else None
        scaler, dynamic, k = self.scaler, dynamic_loss_scale, accumulation_steps
        scaled = dynamic or loss_scale != 1.0  # a constant: with a fixed scale of 1 nothing is scaled
        # Which values say whether a step is finite. Every gradient where fp16 compute or a loss scale can overflow
        # them, or ranks must agree. In fp32 with no scale: the loss, and the gradients of the first and the last
        # trainable parameter. A nan or inf anywhere in the backward flows down into the first layer's gradient (a
        # nan image whose activations a ReLU zeroes still makes it nan, with a finite loss); the head's covers a
        # frozen backbone. Checking all 161 of resnext50_32x4d (an isfinite and a boolean all-reduce each) took
        # 10% of its CPU step.
        # With a grad_reducer the reduced gradients are checked: every rank must make the same decision.
        check_gradients = scaled or low_precision or grad_reducer is not None
        accumulated, update_ema = self.accumulated, ema.update if ema is not None else _no_ema

        def forward(images, labels, key):
            loss = loss_fn(network(images) if key is None else network(images, key), labels)
            return scaler.scale(loss) if scaled else loss

        grad_fn = ms.value_and_grad(forward, None, params)

        @jit
        def accumulate(images, labels, key):
            scaled_loss, grads = grad_fn(images, labels, key)
            for buffer, grad in zip(accumulated, grads):
                ops.assign_add(buffer, grad)
            return scaler.unscale(scaled_loss) if scaled else scaled_loss

        @jit
        def apply(images, labels, key):
            scaled_loss, grads = grad_fn(images, labels, key)
            if k > 1:
                grads = tuple((buffer + grad) / k for buffer, grad in zip(accumulated, grads))
                for buffer in accumulated:
                    ops.assign(buffer, ops.zeros_like(buffer))
            if grad_reducer is not None:
                grads = grad_reducer(grads)
            if scaled:
                grads = scaler.unscale(grads)
            finite = amp.all_finite(grads if check_gradients else (scaled_loss, grads[0], grads[-1]))
            if dynamic:
                scaler.adjust(finite)
            if clip_norm is not None:
                grads = ops.clip_by_global_norm(grads, clip_norm)
            # The update sits under a condition on a device value even when it always runs: a jitted step that calls
            # the optimizer unconditionally ran 1.9x slower on the CPU (docs/performance.md).
            if finite if drop_overflow else ops.logical_or(finite, ops.logical_not(finite)):
                optimizer(grads)
            update_ema()
            return (scaler.unscale(scaled_loss) if scaled else scaled_loss), finite

        self._accumulate, self._apply = accumulate, apply

    def __call__(self, images, labels):
        key = None
        if self.noise_seed is not None:
            key = ms.Tensor(int(np.random.SeedSequence([self.noise_seed, self.micro_step]).generate_state(1)[0]),
                            ms.int64)
        self.micro_step += 1
        if self.micro_step % self.accumulation_steps:
            return self._accumulate(images, labels, key), ms.Tensor(True)
        return self._apply(images, labels, key)

    def state(self):
        """Parameters a resumed run needs besides the network: optimizer, loss scaler, EMA, accumulation buffers."""
        network_params = {p.name for p in self.optimizer.parameters}
        state = {f"opt.{name}": p for name, p in self.optimizer.parameters_and_names()
                 if p.name not in network_params and not name.startswith("learning_rate")}
        if isinstance(self.scaler, amp.DynamicLossScaler):
            state.update({"scaler.scale_value": self.scaler.scale_value, "scaler.counter": self.scaler.counter})
        state.update(self.ema.state() if self.ema is not None else {})
        state.update({p.name: p for p in self.accumulated or ()})
        return state


def recompute_blocks(model):
    """Keep only each residual block's input for the backward and recompute the rest there (MindSpore's
    Cell.recompute): lower peak memory for large batches, at the cost of a second forward of every block. The
    numbers are the same. Call it before the step is compiled."""
    from ..models.batch_norm import BatchNormAct2d
    from ..models.resnext import Bottleneck
    for _, cell in model.cells_and_names():
        if isinstance(cell, Bottleneck):
            cell.recompute()
            for _, inner in cell.cells_and_names():
                if isinstance(inner, BatchNormAct2d):
                    inner.recomputed = True  # its moving statistics must be updated once, not once per forward
    return model


def cast_network(network, amp_level):
    """Mixed precision O1-O3 (fp16 compute); O0 keeps fp32. The loss is always computed in fp32.

    MindSpore changes `network` in place (O2 wraps each BatchNorm, so its parameters' paths become
    `bn1._backbone.gamma`), but the Parameters keep their names (`bn1.gamma`): checkpoints are written and read by
    Parameter name, never by path.
    """
    if amp_level != "O0":
        network = amp.auto_mixed_precision(network, amp_level)
    return network


AUTO_DYNAMIC_SCALE = 2.0 ** 24  # the first scale of MindSpore's DynamicLossScaleManager, its O2 default


def loss_scaling(loss_scale_type, loss_scale, amp_level):
    """(dynamic, first scale) for MindCV's loss_scale_type. `auto` is what mindspore.Model does when MindCV passes it
    no manager: at O2 MindSpore's default dynamic manager (from 2**24, whatever loss_scale says), elsewhere none."""
    if loss_scale_type == "auto":
        return (True, AUTO_DYNAMIC_SCALE) if amp_level == "O2" else (False, 1.0)
    return loss_scale_type == "dynamic", loss_scale


__all__ = ["TrainStep", "cast_network", "loss_scaling", "recompute_blocks"]
