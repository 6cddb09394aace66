"""The networks run: shapes in graph mode, graph equals PyNative, a training step, grouped conv, stochastic depth."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from conftest import copy_weights, execution_mode, random_images
from mindcv_resnext import create_model
from mindcv_resnext.models import Bottleneck


def test_cifar_family_output_shape(cifar_net):
    assert tuple(cifar_net(random_images((2, 3, 32, 32))).shape) == (2, 10)


def test_imagenet_family_output_shape(imagenet_net):
    assert tuple(imagenet_net(random_images((2, 3, 64, 64))).shape) == (2, 1000)
    assert tuple(imagenet_net.forward_features(random_images((1, 3, 64, 64))).shape) == (1, 2048, 2, 2)
    assert tuple(imagenet_net.forward_head(random_images((1, 2048, 2, 2)), pre_logits=True).shape) == (1, 2048)


@pytest.mark.parametrize("name, size", [("resnext50_32x4d", 64), ("resnext29_8x64d", 32)])
def test_published_variants_run_in_graph_mode(name, size):
    net = create_model(name, num_classes=7, in_channels=1)
    net.set_train(False)
    logits = net(random_images((1, 1, size, size)))
    assert tuple(logits.shape) == (1, 7) and np.isfinite(logits.asnumpy()).all()


@pytest.mark.parametrize("train", [False, True])
def test_graph_mode_equals_pynative(cifar_net, train):
    ms.set_seed(1)
    net = copy_weights(cifar_net, create_model("resnext11_2x16d"))
    net.set_train(train)  # train mode normalises with the batch statistics
    x = random_images((3, 3, 32, 32), seed=2)
    graph = net(x).asnumpy()
    with execution_mode(ms.PYNATIVE_MODE):
        pynative = net(x).asnumpy()
    np.testing.assert_allclose(graph, pynative, rtol=1e-4, atol=1e-5)


def test_backward_and_one_optimizer_step_in_graph_mode_change_every_weight():
    ms.set_seed(0)
    net = create_model("resnext11_2x16d", num_classes=4, drop_path_rate=0.1, drop_rate=0.1)
    net.set_train(True)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = nn.Momentum(net.trainable_params(), learning_rate=0.1, momentum=0.9)

    def forward(x, y):
        return loss_fn(net(x), y)

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

    @ms.jit
    def train_step(x, y):
        loss, grads = grad_fn(x, y)
        optimizer(grads)
        return loss

    before = {p.name: p.asnumpy().copy() for p in net.trainable_params()}
    loss = train_step(random_images((4, 3, 16, 16)), ms.Tensor(np.array([0, 1, 2, 3], np.int32)))
    assert np.isfinite(loss.asnumpy())
    unchanged = [p.name for p in net.trainable_params() if np.array_equal(p.asnumpy(), before[p.name])]
    assert not unchanged, f"not updated by the step: {unchanged}"


def test_grouped_conv_equals_separate_convs_per_group():
    ms.set_seed(0)
    conv = Bottleneck(64, 64, stride=2, cardinality=8, base_width=4).conv2  # 32 channels in 8 groups, stride 2
    x = random_images((2, 32, 9, 9))
    weight = conv.weight
    per_group = [ops.conv2d(x[:, g * 4:(g + 1) * 4], weight[g * 4:(g + 1) * 4], stride=2, pad_mode="pad", padding=1)
                 for g in range(8)]
    np.testing.assert_allclose(conv(x).asnumpy(), ops.cat(per_group, axis=1).asnumpy(), rtol=1e-5, atol=1e-5)


def test_drop_path_is_identity_in_eval_mode_and_drops_in_train_mode(cifar_net):
    ms.set_seed(0)
    dropping = copy_weights(cifar_net, create_model("resnext11_2x16d", drop_path_rate=0.5))
    keeping = copy_weights(cifar_net, create_model("resnext11_2x16d"))
    x = random_images((8, 3, 32, 32), seed=4)
    for net in (dropping, keeping):
        net.set_train(False)
    np.testing.assert_array_equal(dropping(x).asnumpy(), keeping(x).asnumpy())
    for net in (dropping, keeping):
        net.set_train(True)
    assert not np.allclose(dropping(x).asnumpy(), keeping(x).asnumpy(), atol=1e-3)


def test_keyed_dropout_masks_are_a_function_of_the_key_and_drop_at_the_rate():
    from mindcv_resnext.models.resnext import Dropout
    dropout = Dropout(0.3, salt=7)
    x = ms.Tensor(np.ones((64, 256), np.float32))
    key = ms.Tensor(12345, ms.int64)
    dropout.set_train(True)
    first, again = dropout(x, key).asnumpy(), dropout(x, key).asnumpy()
    other = dropout(x, ms.Tensor(12346, ms.int64)).asnumpy()
    np.testing.assert_array_equal(first, again)  # the same key, the same mask: what makes resume exact
    assert (first != other).mean() > 0.3
    assert abs((first == 0).mean() - 0.3) < 0.01 and set(np.unique(first)) == {0.0, np.float32(1 / 0.7)}
    assert (Dropout(0.3, salt=8)(x, key).asnumpy() != first).mean() > 0.3  # each layer draws its own
    dropout.set_train(False)
    np.testing.assert_array_equal(dropout(x, key).asnumpy(), x.asnumpy())


def test_drop_path_rate_grows_linearly_over_the_blocks():
    net = create_model("resnext29_8x64d", drop_path_rate=0.2)
    rates = [cell.drop_path.drop_prob if cell.drop_path is not None else 0.0
             for name, cell in net.cells_and_names() if isinstance(cell, Bottleneck)]
    np.testing.assert_allclose(rates, np.linspace(0, 0.2, 9))
