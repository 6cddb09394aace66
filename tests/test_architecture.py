"""The networks are ResNeXt as published: sizes to the unit, widths, names, feature maps, BN and initialisation."""
import math

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from conftest import execution_mode, random_images
from mindcv_resnext import count_macs, count_params, create_model
from mindcv_resnext.models import Bottleneck, bottleneck_width

# Trainable parameters; torchvision's figures for the ImageNet networks, the paper's 34.4M / 68.1M for ResNeXt-29.
PUBLISHED_PARAMS = [
    ("resnext50_32x4d", 1000, 25_028_904),
    ("resnext101_32x4d", 1000, 44_177_704),
    ("resnext101_32x8d", 1000, 88_791_336),
    ("resnext101_64x4d", 1000, 83_455_272),
    ("resnext152_32x4d", 1000, 59_951_400),
    ("resnext152_64x4d", 1000, 114_971_944),
    ("resnext50_1x64d", 1000, 25_557_032),  # ResNet-50
    ("resnext29_8x64d", 10, 34_426_698),
    ("resnext29_16x64d", 10, 68_155_210),
]


@pytest.mark.parametrize("name, num_classes, expected", PUBLISHED_PARAMS)
def test_trainable_parameter_counts_equal_the_published_ones(name, num_classes, expected):
    assert count_params(create_model(name, num_classes=num_classes)) == expected


def test_cifar100_head_adds_exactly_its_weights():
    # 90 more classes on a 1024-wide head: 90 * 1024 weights + 90 biases (34,518,948 as computed for C100).
    assert count_params(create_model("resnext29_8x64d", num_classes=100)) == 34_518_948


@pytest.mark.parametrize("name, size, gmacs", [("resnext50_32x4d", 224, 4.23), ("resnext29_8x64d", 32, 5.39)])
def test_multiply_adds_match_the_published_figures(name, size, gmacs):
    net = create_model(name)
    assert round(count_macs(net, (size, size)) / 1e9, 2) == gmacs
    assert ms.get_context("mode") == ms.GRAPH_MODE  # the counter restores the execution mode


def test_multiply_adds_of_a_small_network_by_hand():
    # resnext11_1x64d at 8x8: every conv and the head, counted from the layer shapes (stride 2 on conv2 of stages 2, 3).
    net = create_model("resnext11_1x64d", num_classes=10)

    def conv(cin, cout, k, hw, groups=1):
        return hw * hw * cout * (cin // groups) * k * k

    expected = conv(3, 64, 3, 8) + 10 * 1024
    for cin, width, cout, hw_in, stride in [(64, 64, 256, 8, 1), (256, 128, 512, 8, 2), (512, 256, 1024, 4, 2)]:
        hw = hw_in // stride
        expected += conv(cin, width, 1, hw_in) + conv(width, width, 3, hw) + conv(width, cout, 1, hw)
        expected += conv(cin, cout, 1, hw)  # projection shortcut: channels change in every first block
    assert count_macs(net, (8, 8)) == expected


@pytest.mark.parametrize("planes, cardinality, base_width, width", [
    (64, 32, 4, 128), (512, 32, 4, 1024),     # 32x4d: 128 .. 1024
    (64, 32, 8, 256), (64, 64, 4, 256),       # 32x8d and 64x4d: 256 .. 2048
    (64, 8, 64, 512), (128, 8, 64, 1024), (256, 8, 64, 2048),  # ResNeXt-29 8x64d: C * int(d * out / 256)
    (64, 2, 40, 80), (64, 4, 24, 96), (64, 8, 14, 112), (128, 8, 14, 224),  # the paper's Table 3 (int() floors)
])
def test_inner_width_formula(planes, cardinality, base_width, width):
    assert bottleneck_width(planes, cardinality, base_width) == width


@pytest.mark.parametrize("cardinality, base_width, shape", [(32, 4, (128, 4, 3, 3)), (32, 8, (256, 8, 3, 3)),
                                                            (64, 4, (256, 4, 3, 3))])
def test_grouped_conv_weight_shapes_are_torchvisions(cardinality, base_width, shape):
    block = Bottleneck(64, 64, 1, cardinality, base_width)
    assert tuple(block.conv2.weight.shape) == shape
    assert block.conv2.group == cardinality


def mindcv_parameter_names(stage_blocks, imagenet=True):
    """The parameter names of MindCV's ResNet/ResNeXt checkpoints, written out from its layer structure."""
    def bn(prefix):
        return [f"{prefix}.{p}" for p in ("moving_mean", "moving_variance", "gamma", "beta")]

    names = ["conv1.weight", *bn("bn1")]
    for stage, blocks in enumerate(stage_blocks, start=1):
        for i in range(blocks):
            block = f"layer{stage}.{i}"
            for j in (1, 2, 3):
                names += [f"{block}.conv{j}.weight", *bn(f"{block}.bn{j}")]
            if i == 0:  # the first block of every stage changes channels (layer1: 64 -> 256) or resolution
                names += [f"{block}.down_sample.0.weight", *bn(f"{block}.down_sample.1")]
    return names + ["classifier.weight", "classifier.bias"]


@pytest.mark.parametrize("name, stage_blocks", [("resnext50_32x4d", (3, 4, 6, 3)), ("resnext29_8x64d", (3, 3, 3))])
def test_parameter_names_are_mindcvs(name, stage_blocks):
    names = [n for n, _ in create_model(name).parameters_and_names()]
    assert sorted(names) == sorted(mindcv_parameter_names(stage_blocks))


def test_resnext50_has_torchvisions_320_state_dict_tensors_less_num_batches_tracked():
    # torchvision's state_dict holds 320 tensors for ResNeXt-50, 53 of them BN num_batches_tracked counters.
    assert len(create_model("resnext50_32x4d").parameters_dict()) == 320 - 53


@pytest.mark.parametrize("name, expected", [
    ("resnext50_32x4d", [(64, 2), (256, 4), (512, 8), (1024, 16), (2048, 32)]),
    ("resnext29_8x64d", [(64, 1), (256, 1), (512, 2), (1024, 4)]),
])
def test_feature_info_lists_channels_and_strides(name, expected):
    info = create_model(name, features_only=True, out_indices=range(len(expected))).feature_info
    assert [(f["num_chs"], f["reduction"]) for f in info] == expected


def test_feature_maps_have_the_listed_channels_and_strides():
    ms.set_seed(0)
    net = create_model("resnext14_2x16d", features_only=True, out_indices=(1, 2, 3, 4))
    net.set_train(False)
    maps = net(random_images((2, 3, 64, 64)))
    assert [tuple(m.shape) for m in maps] == [(2, c, 64 // s, 64 // s) for c, s in
                                              [(256, 4), (512, 8), (1024, 16), (2048, 32)]]
    assert [(f["num_chs"], f["reduction"]) for f in net.feature_info] == [(256, 4), (512, 8), (1024, 16), (2048, 32)]
    assert net.classifier is None


def test_picked_feature_maps_equal_the_full_networks_stages(imagenet_net):
    picker = create_model("resnext14_2x16d", features_only=True, out_indices=(0, 4))
    ms.load_param_into_net(picker, {k: v for k, v in imagenet_net.parameters_dict().items()
                                    if not k.startswith("classifier")})
    picker.set_train(False)
    x = random_images((1, 3, 64, 64), seed=3)
    stem, last = picker(x)
    assert tuple(stem.shape) == (1, 64, 32, 32)
    np.testing.assert_allclose(last.asnumpy(), imagenet_net.forward_features(x).asnumpy(), rtol=1e-5, atol=1e-5)


def test_out_indices_outside_the_stages_are_rejected():
    with pytest.raises(ValueError, match="out_indices"):
        create_model("resnext29_8x64d", features_only=True, out_indices=(4,))


def test_batchnorm_uses_pytorch_momentum_and_eps():
    """Behaviour, not attributes: moving stats move 10% towards the batch; eval divides by sqrt(var + 1e-5). (The
    stem's BatchNorm ends with the ReLU.)"""
    bns = [cell for _, cell in create_model("resnext11_2x16d").cells_and_names() if isinstance(cell, nn.BatchNorm2d)]
    assert len(bns) == 1 + 3 * 3 + 3  # stem, three per block, one per projection shortcut
    bn = bns[0]
    x = np.random.default_rng(0).standard_normal((4, 64, 5, 5)).astype(np.float32) * 3 + 1
    with execution_mode(ms.PYNATIVE_MODE):
        bn.set_train(True)
        bn(ms.Tensor(x))
        np.testing.assert_allclose(bn.moving_mean.asnumpy(), 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-6)
        bn.set_train(False)
        bn.moving_mean.set_data(ms.Tensor(np.zeros(64, np.float32)))
        bn.moving_variance.set_data(ms.Tensor(np.full(64, 1e-5, np.float32)))
        out = bn(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(out, np.maximum(x, 0) / np.sqrt(2e-5), rtol=1e-4)


def test_initialisation_is_torchvisions():
    ms.set_seed(0)
    net = create_model("resnext11_2x16d", zero_init_last=False)
    params = net.parameters_dict()
    conv = params["layer3.0.conv3.weight"].asnumpy()  # (1024, 128, 1, 1): He normal, fan_out = 1024
    assert abs(conv.std() / math.sqrt(2 / 1024) - 1) < 0.03
    stem = params["conv1.weight"].asnumpy()  # (64, 3, 3, 3): fan_out = 64 * 9
    assert abs(stem.std() / math.sqrt(2 / (64 * 9)) - 1) < 0.1
    bound = 1 / math.sqrt(1024)
    weight = np.abs(params["classifier.weight"].asnumpy())  # U(-bound, bound): 10,240 draws reach near the edge
    assert 0.99 * bound < weight.max() <= bound
    assert np.abs(params["classifier.bias"].asnumpy()).max() <= bound
    assert all((params[k].asnumpy() == 1).all() for k in params if k.endswith("gamma"))
    assert all((params[k].asnumpy() == 0).all() for k in params if k.endswith("beta"))


def test_zero_init_last_zeroes_only_the_last_bn_of_each_block():
    params = create_model("resnext11_2x16d", zero_init_last=True).parameters_dict()
    gammas = {k: params[k].asnumpy() for k in params if k.endswith("gamma")}
    assert all((v == 0).all() for k, v in gammas.items() if k.endswith("bn3.gamma"))
    assert all((v == 1).all() for k, v in gammas.items() if not k.endswith("bn3.gamma"))


def reference_max_pool(x, pads):
    """3x3/2 max-pool in numpy over an input padded with -inf by pads ((top, bottom), (left, right))."""
    n, c, h, w = x.shape
    (top, bottom), (left, right) = pads
    padded = np.full((n, c, h + top + bottom, w + left + right), -np.inf, np.float32)
    padded[:, :, top:top + h, left:left + w] = x
    out_h, out_w = (padded.shape[2] - 3) // 2 + 1, (padded.shape[3] - 3) // 2 + 1
    out = np.empty((n, c, out_h, out_w), np.float32)
    for i in range(out_h):
        for j in range(out_w):
            out[:, :, i, j] = padded[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(2, 3))
    return out


def same_pads(side):
    """TensorFlow's 'same' padding of a 3x3/2 pool: output ceil(side / 2), the padding that needs split with the
    odd one at the bottom/right."""
    total = max((-(-side // 2) - 1) * 2 + 3 - side, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("size", [(8, 8), (9, 7), (7, 10)])
@pytest.mark.parametrize("stem_pool_pad", ["symmetric", "same"])
def test_stem_pool_padding(stem_pool_pad, size):
    """torchvision pads the stem max-pool by 1 all round; MindCV's 'same' pads an even side at the bottom/right
    only. The pool follows a ReLU: its inputs are >= 0 (zeros among them)."""
    pool = create_model("resnext14_2x16d", stem_pool_pad=stem_pool_pad).max_pool
    x = np.maximum(np.random.default_rng(1).standard_normal((1, 2, *size)), 0).astype(np.float32)
    expected = reference_max_pool(x, ((1, 1), (1, 1)) if stem_pool_pad == "symmetric" else
                                  (same_pads(size[0]), same_pads(size[1])))
    np.testing.assert_array_equal(pool(ms.Tensor(x)).asnumpy(), expected)


def test_unknown_stem_pool_padding_is_rejected():
    with pytest.raises(ValueError, match="stem_pool_pad"):
        create_model("resnext14_2x16d", stem_pool_pad="valid")
