"""How runs report: one logger, `mindcv_resnext`, on stdout; each line starts with the rank in a data-parallel run
(msrun interleaves nothing then: every worker has its log, and each line says whose it is); train.log beside the
checkpoints keeps rank 0's lines with their time."""
import logging
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


def log_to_file(path):
    """Also write every line, with its time, to `path`; returns the handler (remove and close it when done)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    LOGGER.setLevel(logging.INFO)
    LOGGER.addHandler(handler)
    return handler
