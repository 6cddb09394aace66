"""Loading MindSpore checkpoints into a network, strictly.

MindSpore's `load_param_into_net` skips a parameter that the file lacks without an error, even with
`strict_load=True`, so a typo'd or foreign checkpoint leaves random weights behind in silence. Here every parameter of
the network must be in the file with the same shape, or nothing is loaded and the error names what does not fit.
"""
import os

import mindspore as ms


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not fit the network."""


def _shape(value):
    return tuple(value.shape)


def read_checkpoint(path):
    """The checkpoint's name -> Parameter dict; a missing or unreadable file raises CheckpointError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path} (give the path of an existing .ckpt file)")
    try:
        return ms.load_checkpoint(path)
    except Exception as err:  # MindSpore raises ValueError/RuntimeError/TypeError for damaged files
        raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}: "
                              f"{str(err).strip().splitlines()[0] if str(err).strip() else 'unreadable'}") from err


def check_fit(network, state):
    """Names of network parameters absent from `state`, names whose shapes differ, and names the network lacks."""
    wanted = network.parameters_dict()
    missing = [name for name in wanted if name not in state]
    mismatched = [(name, _shape(state[name]), _shape(param)) for name, param in wanted.items()
                  if name in state and _shape(state[name]) != _shape(param)]
    unexpected = [name for name in state if name not in wanted]
    return missing, mismatched, unexpected


def load_weights(network, path, log=print):
    """Load every parameter of `network` from the checkpoint at `path`, or raise CheckpointError and load none.

    Entries of the file that the network does not have (optimizer state, a classifier when the network is a
    feature extractor) are left out and counted in one line. Returns the names that were left out.
    """
    state = read_checkpoint(path)
    missing, mismatched, unexpected = check_fit(network, state)
    if missing or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} parameter(s) missing from the file (first: {', '.join(missing[:3])})")
        if mismatched:
            name, got, want = mismatched[0]
            problems.append(f"{len(mismatched)} parameter(s) with the wrong shape (first: {name} is {got} in the "
                            f"file, {want} in the network)")
        raise CheckpointError(f"checkpoint {path} does not fit the network: {'; '.join(problems)}. "
                              "Check the model name and its options (num_classes, in_channels) against the file.")
    ms.load_param_into_net(network, {name: state[name] for name in network.parameters_dict()}, strict_load=True)
    if unexpected:
        log(f"checkpoint {path}: left out {len(unexpected)} entries the network does not have "
            f"(first: {', '.join(unexpected[:3])})")
    return unexpected
