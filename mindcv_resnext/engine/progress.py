"""What a person sees of an epoch: a tqdm bar on a terminal; plain lines everywhere else (msrun worker logs, CI,
train.log), one every log_interval steps and one when the epoch ends, with its time."""
import sys
import time

import numpy as np
from tqdm import tqdm


def duration(seconds):
    """3.2 s, 4m05s, 2h13m: rounded for people."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


class EpochProgress:
    """Feed it every step (`step`) and, every log_interval steps and at the end, the losses of the steps since
    (`losses_read`: the loop reads them back from the device only then); then `finish` it. It keeps the curve points
    of the epoch: (global step, mean train loss of the last log_interval steps) at each read."""

    def __init__(self, epoch, epochs, steps, log_interval, log, interactive=None):
        self.epoch, self.epochs, self.steps, self.log_interval, self.log = epoch, epochs, steps, log_interval, log
        interactive = sys.stderr.isatty() and sys.stdout.isatty() if interactive is None else interactive
        self.bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", unit="step", dynamic_ncols=True,
                        leave=False) if interactive else None
        self.done, self.losses, self.images, self.data_seconds, self.points = 0, [], 0, 0.0, []
        self.recent, self.lr, self.resumed_at = None, None, 0
        self.started = time.perf_counter()

    def resume(self, done, losses, points):
        """Continue an epoch a stopped run left after `done` steps, with the losses and curve points it had read."""
        self.done = self.resumed_at = done
        self.losses, self.points = list(losses), [tuple(point) for point in points]
        if self.bar is not None:
            self.bar.update(done)

    def status(self):
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        loss = f"loss {self.recent:.4f}, lr {self.lr:.4g}, " if self.recent is not None else ""
        return f"{loss}{self.images / elapsed:.1f} img/s, {self.data_seconds / elapsed:.0%} waiting for data"

    def step(self, images, data_seconds):
        """One step done: `images` trained on after `data_seconds` spent waiting for the batch."""
        self.done += 1
        self.images += images
        self.data_seconds += data_seconds
        if self.bar is not None:
            self.bar.set_postfix_str(self.status(), refresh=False)
            self.bar.update()

    def losses_read(self, global_step, losses, lr):
        """The losses of the steps since the last read; logs a line every log_interval steps (without a bar)."""
        self.losses += list(losses)
        self.recent, self.lr = float(np.mean(self.losses[-self.log_interval:])), lr
        self.points.append((global_step, round(self.recent, 5)))
        if self.bar is None and self.done % self.log_interval == 0:
            eta = (time.perf_counter() - self.started) / (self.done - self.resumed_at) * (self.steps - self.done)
            self.log(f"epoch {self.epoch}/{self.epochs} step {self.done}/{self.steps}: {self.status()}, "
                     f"epoch ETA {duration(eta)}")

    def finish(self, mean_loss, epochs_left):
        """Close the bar and log the epoch's line; returns its seconds."""
        seconds = time.perf_counter() - self.started
        if self.bar is not None:
            self.bar.close()
        loss = f"train loss {mean_loss:.4f}" if mean_loss is not None else "no training step"
        self.log(f"epoch {self.epoch}/{self.epochs}: {loss}, {duration(seconds)}, "
                 f"{self.images / max(seconds, 1e-9):.1f} img/s, {self.data_seconds / max(seconds, 1e-9):.0%} "
                 f"waiting for data" + (f", about {duration(seconds * epochs_left)} to go" if epochs_left else ""))
        return seconds
