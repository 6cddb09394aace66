"""Shared set-up: quiet MindSpore, CPU, graph mode, and small networks compiled once for the whole session."""
import contextlib
import os

os.environ.setdefault("GLOG_v", "3")  # before mindspore is imported

import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mindcv_resnext import create_model  # noqa: E402

ms.set_device("CPU")
ms.set_context(mode=ms.GRAPH_MODE)


@contextlib.contextmanager
def execution_mode(mode):
    """Run a block in GRAPH_MODE or PYNATIVE_MODE, then restore the mode it had."""
    previous = ms.get_context("mode")
    ms.set_context(mode=mode)
    try:
        yield
    finally:
        ms.set_context(mode=previous)


def random_images(shape, seed=0):
    return ms.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def seeded_eval_net(name):
    ms.set_seed(0)
    net = create_model(name)
    net.set_train(False)
    return net


@pytest.fixture(scope="session")
def cifar_net():
    """resnext11_2x16d: the CIFAR stem and three stages of one block, 10 classes, in eval mode."""
    return seeded_eval_net("resnext11_2x16d")


@pytest.fixture(scope="session")
def imagenet_net():
    """resnext14_2x16d: the ImageNet stem and four stages of one block, 1000 classes, in eval mode."""
    return seeded_eval_net("resnext14_2x16d")

def copy_weights(source, target):
    """Load a copy of `source`'s parameters (BN statistics included) into `target`."""
    ms.load_param_into_net(target, {name: ms.Parameter(value.asnumpy(), name=name)
                                    for name, value in source.parameters_dict().items()}, strict_load=True)
    return target
