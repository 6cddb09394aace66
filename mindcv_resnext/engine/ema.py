"""The exponential moving average of a network's weights, owned by one object from creation to checkpoint."""
import contextlib

import mindspore as ms
from mindspore import ops

from ..checkpoint import CheckpointError

PREFIX = "ema."  # how a checkpoint names the average of parameter `name`: ema.<name>


def clone_parameters(params, prefix, zeros=False):
    """Parameters holding a copy of `params` (or zeros of their shape), named prefix.name, not trainable."""
    return ms.ParameterTuple(ms.Parameter(ops.zeros_like(p) if zeros else p.value().copy(), name=f"{prefix}.{p.name}",
                                          requires_grad=False) for p in params)


class EMA:
    """average = decay * average + (1 - decay) * weight for every parameter of `network` (BatchNorm statistics
    included), after each optimizer step.

    `update` is called inside the compiled train step; `applied(network)` swaps the averages in for an evaluation
    and puts the weights back; `state()` is what a checkpoint saves and resume loads; `weights_in(state)` reads the
    averages of a checkpoint as the network's weights (validate.py --ema).
    """

    def __init__(self, network, decay):
        self.decay = decay
        self.sources = ms.ParameterTuple(network.get_parameters())
        self.averages = clone_parameters(self.sources, PREFIX.rstrip("."))
        averages, sources = self.averages, self.sources

        def update():  # compiled into the train step
            for average, source in zip(averages, sources):
                ops.assign(average, average * decay + source * (1 - decay))
            return True

        self.update = update

    def state(self):
        return {p.name: p for p in self.averages}

    @contextlib.contextmanager
    def applied(self, network):
        """The averages in the network's parameters for the block, then its own weights back.

        The swap uses ops.assign, which writes in place: after a graph has been compiled, Parameter.set_data (and
        assign_value) leave the compiled train step updating a buffer that the Parameter no longer shows.
        """
        own = {p.name: p.value().copy() for p in network.get_parameters()}
        averages = {p.name[len(PREFIX):]: p for p in self.averages}
        for param in network.get_parameters():
            ops.assign(param, averages[param.name])
        try:
            yield network
        finally:
            for param in network.get_parameters():
                ops.assign(param, own[param.name])

    @staticmethod
    def weights_in(state, path):
        """The EMA weights a checkpoint holds, named as the network's parameters."""
        weights = {name[len(PREFIX):]: value for name, value in state.items() if name.startswith(PREFIX)}
        if not weights:
            raise CheckpointError(f"{path} holds no EMA weights (train with --ema true), drop --ema")
        return weights
