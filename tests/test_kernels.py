"""The native kernels (mindcv_resnext/kernels): the grouped 3x3 convolution and training-mode BatchNorm (+ ReLU) give
MindSpore's numbers forward and backward, are used where they apply and only there, are switched by the recipe, and
fall back cleanly without a compiler."""
import logging

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from conftest import random_images
from mindcv_resnext import create_model, kernels
from mindcv_resnext.config import resolve_config
from mindcv_resnext.engine.loss import CrossEntropy
from mindcv_resnext.engine.step import TrainStep
from mindcv_resnext.logs import LOGGER
from mindcv_resnext.models.batch_norm import BatchNormAct2d
from mindcv_resnext.models.grouped_conv import GroupedConv3x3, native_ops
from mindcv_resnext.runtime import setup_runtime

pytestmark = pytest.mark.skipif(kernels.library() is None, reason=f"no native kernels: {kernels.unavailable_reason()}")


@pytest.fixture
def kernel_state():
    """Put the kernels' switch and build state back as they were after the test."""
    saved = dict(kernels._state)
    yield kernels._state
    kernels._state.update(saved)


def pair(channels, groups, stride, has_bias=False):
    """The same convolution twice, same weight (and bias): one on the native kernels, one on MindSpore's."""
    native = GroupedConv3x3(channels, groups, stride, has_bias=has_bias)
    plain = GroupedConv3x3(channels, groups, stride, has_bias=has_bias)
    plain.use_native(False)
    plain.weight.set_data(native.weight.data)
    if has_bias:
        native.bias.set_data(random_images((channels,), seed=2))
        plain.bias.set_data(native.bias.data)
    assert native.native is not None
    return native, plain


def output_and_gradients(cell, x, dy):
    """The output, and the gradients of sum(cell(x) * dy) for the input and the parameters, from one call."""
    def weighted_sum(images):
        y = cell(images)
        return (y * dy).sum(), y
    (_, y), (dx, dparams) = ms.jit(ms.value_and_grad(weighted_sum, grad_position=0, weights=cell.trainable_params(),
                                                     has_aux=True))(x)
    return [y.asnumpy(), dx.asnumpy()] + [d.asnumpy() for d in dparams]


@pytest.mark.parametrize("channels, groups, height, width, stride, has_bias", [
    (128, 32, 14, 14, 1, False),   # 4 channels per group (resnext50_32x4d's first stage, smaller map)
    (256, 32, 15, 14, 2, False),   # 8 per group, stride 2, odd height
    (64, 4, 7, 9, 1, False),       # 16 per group, the other kernel family
    (64, 2, 8, 5, 2, False),       # 32 per group, stride 2, odd width
    (96, 12, 11, 11, 1, False),    # 8 per group on a map wider than one vector, no power of two
    (128, 32, 1, 1, 2, False),     # a 1x1 map
    (48, 3, 33, 35, 2, False),     # 16 per group, more columns than one block of output positions
    (128, 32, 9, 9, 2, True),      # with a bias (BatchNorm folded), both kernel families
    (64, 4, 6, 6, 1, True),
])
def test_native_grouped_conv_equals_mindspores_forward_and_backward(channels, groups, height, width, stride,
                                                                    has_bias):
    native, plain = pair(channels, groups, stride, has_bias)
    x = random_images((3, channels, height, width))
    dy = random_images(native(x).shape, seed=1)
    for got, expected in zip(output_and_gradients(native, x, dy), output_and_gradients(plain, x, dy)):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("shape", [
    (3, 16, 14, 14),   # planes of whole vectors and a tail (196 = 12 * 16 + 4)
    (2, 8, 7, 9),      # a plane shorter than a vector and odd
    (4, 5, 1, 1),      # a 1x1 map: 4 values per channel (a small model's last stage)
    (2, 3, 33, 35),    # a plane of 72 vectors and a tail
])
def test_native_batch_norm_equals_mindspores_in_training_and_after(shape, relu):
    """Training mode, two calls: outputs, input, gamma and beta gradients, and the moving statistics MindSpore's
    BatchNorm keeps (the unbiased variance, momentum 0.9); inference afterwards runs MindSpore's on those statistics. The
    input has a mean far from 0 (the statistics' sums are shifted so the variance does not cancel), gamma and beta
    differ per channel."""
    channels = shape[1]
    cells = []
    for native in (True, False):
        bn = BatchNormAct2d(channels, eps=1e-5, momentum=0.9, relu=relu)
        bn.gamma.set_data(ms.Tensor(np.linspace(0.5, 1.5, channels, dtype=np.float32)))
        bn.beta.set_data(ms.Tensor(np.linspace(-0.3, 0.3, channels, dtype=np.float32)))
        bn.use_native(native)
        bn.set_train(True)
        cells.append(bn)
    assert cells[0].native is not None and cells[1].native is None
    x = ms.Tensor(random_images(shape).asnumpy() * 2 + 30)
    dy = random_images(shape, seed=1)
    trained = []
    for bn in cells:  # the second call moves the moving statistics on from the first's
        outputs = output_and_gradients(bn, x, dy)
        outputs += output_and_gradients(bn, x * 0.5 - 3, dy)
        trained.append(outputs + [bn.moving_mean.asnumpy(), bn.moving_variance.asnumpy()])
    for bn in cells:
        bn.set_train(False)
    inferred = [bn(x).asnumpy() for bn in cells]
    for got, expected in zip(trained[0] + [inferred[0]], trained[1] + [inferred[1]]):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5 * np.abs(expected).max())
    if relu:
        assert (trained[0][0] == 0).any() and (inferred[0] >= 0).all()


def test_the_kernels_apply_to_narrow_groups_on_the_cpu_in_float32_only(kernel_state):
    assert native_ops(128, 32, 1) is not None and native_ops(1024, 32, 2) is not None  # 4 and 32 per group
    assert native_ops(256, 2, 1) is None    # 128 per group: one large matrix product, oneDNN's strength
    assert native_ops(96, 16, 1) is None    # 6 per group: not a multiple of 4
    assert native_ops(64, 1, 1) is None     # not grouped
    conv = GroupedConv3x3(64, 16)
    half = conv.to_float(ms.float16)       # fp16 compute goes to MindSpore's convolution
    assert half(random_images((1, 64, 5, 5)).astype(ms.float16)).dtype == ms.float16
    kernels.set_enabled(False)
    assert native_ops(128, 32, 1) is None


def test_without_a_compiler_the_network_runs_mindspores_convolution_and_the_run_says_so(kernel_state, monkeypatch):
    monkeypatch.setattr(kernels.shutil, "which", lambda name: None)
    kernel_state.update(library=None, reason=None)
    said = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    LOGGER.addHandler(handler)
    monkeypatch.setattr(LOGGER, "level", logging.INFO)
    try:
        setup_runtime(resolve_config(["--device_target", "CPU"]))
    finally:
        LOGGER.removeHandler(handler)
    assert said == ["native kernels off: no C++ compiler (g++) on the PATH; the grouped convolutions and BatchNorm "
                    "run MindSpore's own operators (slower, docs/performance.md)"]
    net = create_model("resnext14_2x16d")
    assert all(cell.native is None for _, cell in net.cells_and_names()
               if isinstance(cell, (GroupedConv3x3, BatchNormAct2d)))
    assert net(random_images((1, 3, 32, 32))).shape == (1, 1000)


@pytest.mark.parametrize("switch", [True, False])
def test_the_recipe_key_decides_what_the_network_runs(switch, kernel_state, tmp_path):
    config = resolve_config(["--native_kernels", str(switch).lower(), "--device_target", "CPU"])
    setup_runtime(config)
    cells = [cell for _, cell in create_model("resnext14_2x16d").cells_and_names()]
    grouped = [cell for cell in cells if isinstance(cell, GroupedConv3x3)]
    covered = [cell.in_channels // cell.group <= 32 for cell in grouped]  # 16, 32, 64 and 128 channels per group
    assert covered == [True, True, False, False]
    assert [cell.native is not None for cell in grouped] == [switch and c for c in covered]
    batch_norms = [cell for cell in cells if isinstance(cell, BatchNormAct2d)]
    assert len(batch_norms) == 1 + 4 * 4 and all((cell.native is not None) == switch for cell in batch_norms)


def test_training_steps_on_the_kernels_follow_mindspores(kernel_state):
    """Two momentum-SGD steps of a whole network, native kernels against MindSpore's operators (the grouped
    convolutions, stride 1 and 2, and BatchNorm + ReLU, forward and backward, in a real step) end as close as
    MindSpore's own run ends to itself with its input changed by one float32 ulp. Batch statistics of 4 images
    amplify rounding: that ulp moves MindSpore's weights by ~1.5e-4 after two steps (the native run: ~1.9e-4). The
    per-operator tests above check the numbers to 1e-5; this one checks that the kernels are wired into a real step
    (bprop, stride, ReLU placement), which a mistake there would move far past that bound."""
    def two_steps(native, input_scale=1.0):
        kernels.set_enabled(native)
        ms.set_seed(0)
        net = create_model("resnext14_2x16d", num_classes=10)  # the same initial weights: the same seed
        net.set_train(True)
        step = TrainStep(net, CrossEntropy(10), nn.Momentum(net.trainable_params(), 0.01, 0.9))
        labels = ms.Tensor(np.arange(4, dtype=np.int32))
        losses = [float(step(random_images((4, 3, 32, 32), seed=s) * input_scale, labels)[0].asnumpy())
                  for s in range(2)]
        return losses + [p.asnumpy() for p in net.trainable_params()]

    def distance(run, reference):
        return max(float(np.abs(a - b).max()) for a, b in zip(run, reference))

    plain = two_steps(False)
    rounding = distance(two_steps(False, 1 + 2.0 ** -23), plain)
    assert 0 < rounding < 1e-3
    assert distance(two_steps(True), plain) <= 3 * rounding
