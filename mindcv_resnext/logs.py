"""How runs report: one logger, `mindcv_resnext`, on stdout; each line starts with the rank in a data-parallel run
(msrun interleaves nothing then: every worker has its log, and each line says whose it is); train.log beside the
checkpoints keeps rank 0's lines with their time."""
import logging
import logging.handlers
import sys

LOGGER = logging.getLogger("mindcv_resnext")


def setup_logging(rank=0, world_size=1):
    """Lines on stdout: the message, or `[rank R/N] message` when several processes train together."""
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False
    for handler in list(LOGGER.handlers):
        LOGGER.removeHandler(handler)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter(f"[rank {rank}/{world_size}] %(message)s" if world_size > 1
                                           else "%(message)s"))
    LOGGER.addHandler(console)


def log_to_memory():
    """Keep the lines from now on until log_to_file takes them: a run that fails before it writes its output folder
    leaves no train.log behind, one that starts has every line in it."""
    handler = logging.handlers.MemoryHandler(capacity=100_000, flushLevel=logging.CRITICAL + 1)
    LOGGER.setLevel(logging.INFO)
    LOGGER.addHandler(handler)
    return handler


def log_to_file(path, earlier=None):
    """Write every line, with its time, to `path` from now on, the lines kept by `earlier` (log_to_memory) first;
    returns the handler (remove and close it when done)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    if earlier is not None:
        earlier.setTarget(handler)
        earlier.flush()
        LOGGER.removeHandler(earlier)
    LOGGER.setLevel(logging.INFO)
    LOGGER.addHandler(handler)
    return handler
