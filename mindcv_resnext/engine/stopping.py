"""Stopping a run early and safely: pre-emption (SIGTERM), Ctrl-C (SIGINT) and runs whose loss stays non-finite.

A signal is only remembered: the step that runs finishes, the loop stops at a step boundary (every rank at the same
one), writes a checkpoint of that exact position (mid-epoch: the batch within the epoch) and train() raises
TrainingStopped, whose exit code (75, EX_TEMPFAIL: "try again later") tells a scheduler that `--resume auto`
continues the run. A second signal aborts at once (exit 130); the checkpoint being written, if any, is either whole
or not there, as every save is atomic.

MindSpore's runtime installs its own SIGINT handler each time it runs a graph, and it turns a Ctrl-C into a SIGTERM
to the process: during training a Ctrl-C therefore arrives here, and is reported, as SIGTERM.
"""
import signal
import threading

from ..distributed import all_reduce_sum

STOPPED_EXIT_CODE = 75


class TrainingStopped(Exception):
    """The run stopped early, on purpose, and said why and how to go on."""
    exit_code = STOPPED_EXIT_CODE
    label = "interrupted"


class NonFiniteLossError(Exception):
    """max_nonfinite_steps consecutive steps had a non-finite loss: the run stopped without saving them."""
    exit_code = 1


class StopSignals:
    """A context manager that turns SIGTERM and SIGINT into a request to stop, read with `requested`."""
    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.received = None      # the name of the first signal received
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # Python handles signals in the main thread only
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number, frame):
        if self.received is not None:
            raise KeyboardInterrupt(f"a second stop signal ({signal.Signals(number).name}): stopped without a "
                                    "checkpoint of this position; --resume auto continues from the last one")
        self.received = self.received or signal.Signals(number).name

    def requested(self, world_size):
        """Whether to stop now. With several ranks it is a collective (the sum of the ranks' flags): call it at the
        same step on every rank, and every rank gets the same answer."""
        wanted = self.received is not None
        if world_size == 1:
            return wanted
        return bool(all_reduce_sum([float(wanted)], world_size)[0] > 0)
