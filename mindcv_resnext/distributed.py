"""Data-parallel runs under msrun: start the communication group only when a launcher started this process, and sum
evaluation counts across ranks exactly.

`mindspore.communication.init()` raises when a plain `python train.py` calls it, so it is called only under a
launcher (msrun sets MS_ROLE). Gradients are averaged with nn.DistributedGradReducer inside the compiled
step (without it, ranks silently diverge); sums go through AllReduce in float32, which every backend supports (an
integer AllReduce fails on some, as MindCV found on CPU workers).
"""
import os

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from .config import ConfigError


def launched_by_msrun():
    """msrun starts every worker (MS_WORKER) and its scheduler (MS_SCHED) with the same command line; both must
    call init(), which the scheduler does not return from until the job ends."""
    return os.environ.get("MS_ROLE") in ("MS_WORKER", "MS_SCHED") and "MS_WORKER_NUM" in os.environ


def init_distributed(distribute):
    """(rank, world_size): (0, 1) for a single process; otherwise the communication group, in data-parallel mode.

    `distribute` (the recipe's key) asks for a launched run; a launcher's environment implies one.
    """
    if not (distribute or launched_by_msrun()):
        return 0, 1
    if not launched_by_msrun():
        raise ConfigError("distribute is true but this process was not started by msrun: launch it with "
                           "scripts/launch_train.sh (or msrun ... --join=True python train.py ...), or set "
                           "--distribute false for one process")
    from mindspore.communication import get_group_size, get_rank, init
    init()
    rank, world_size = get_rank(), get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=world_size)
    return rank, world_size


def grad_reducer_factory(world_size):
    """None for one process; else a builder of the gradient all-reduce (mean) for the optimizer's parameters."""
    if world_size == 1:
        return None
    return lambda params: nn.DistributedGradReducer(params, mean=True, degree=world_size)


def all_reduce_sum(values, world_size):
    """Element-wise sum over ranks of a float vector (float32 on the wire); the identity for one process."""
    values = np.asarray(values, np.float32)
    if world_size == 1:
        return values
    return ops.AllReduce()(ms.Tensor(values)).asnumpy()


def average_batchnorm_statistics(network, world_size):
    """Replace each rank's BN moving statistics with their mean over ranks (timm's distribute_bn "reduce").

    BatchNorm statistics are not synchronised during training, so without this each rank would validate a slightly
    different model, and the checkpoint (rank 0's) would not be the model that was scored. Written with ops.assign:
    set_data would detach the parameters from the compiled train step.
    """
    if world_size == 1:
        return
    for param in network.get_parameters():
        if not param.requires_grad and ("moving_mean" in param.name or "moving_variance" in param.name):
            ops.assign(param, ops.AllReduce()(param.value()) / world_size)
