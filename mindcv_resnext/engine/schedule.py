"""Learning rate per optimizer step: linear warmup, then cosine, step, multi-step or constant.

The whole run's schedule is one array, indexed by the optimizer's global step, so a resumed run (which restores
the global step) continues at the same position. Closed forms:
    warmup:       lr * (warmup_factor + (1 - warmup_factor) * step / warmup_steps)
    cosine_decay: min_lr + (lr - min_lr) * (1 + cos(pi * t / T)) / 2, t = steps since warmup, T = decay steps
    step_decay:   lr * decay_rate ** floor(e / decay_epochs)
    multi_step:   lr * decay_rate ** (number of milestones <= e)
with e the epochs since warmup: as in MindCV, every schedule starts where the warmup ends (milestones 30, 60 after
a 3-epoch warmup fall at epochs 33 and 63).
"""
import math

import numpy as np

from ..config import SCHEMA_BY_NAME

SCHEDULERS = SCHEMA_BY_NAME["scheduler"].choices


def learning_rates(scheduler, lr, steps_per_epoch, epochs, min_lr=0.0, warmup_epochs=0.0, warmup_factor=0.0,
                   decay_epochs=None, decay_rate=0.1, milestones=(), epoch_stair=False):
    """float32 array of the lr at every optimizer step of the run."""
    if scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}")
    total = steps_per_epoch * epochs
    steps = np.arange(total, dtype=np.float64)
    if epoch_stair:
        steps = np.floor(steps / steps_per_epoch) * steps_per_epoch
    warmup_steps = int(round(warmup_epochs * steps_per_epoch))
    epoch = np.maximum(steps - warmup_steps, 0) / steps_per_epoch  # epochs since the warmup ended
    if scheduler in ("cosine_decay", "warmup_cosine_decay"):
        decay_steps = decay_epochs * steps_per_epoch if decay_epochs else total - warmup_steps
        t = np.clip(steps - warmup_steps, 0, decay_steps)
        rates = min_lr + (lr - min_lr) * 0.5 * (1 + np.cos(math.pi * t / max(decay_steps, 1)))
    elif scheduler == "step_decay":
        rates = lr * decay_rate ** np.floor(epoch / (decay_epochs or 100))  # MindCV's default period
    elif scheduler == "multi_step_decay":
        rates = lr * decay_rate ** np.searchsorted(np.sort(milestones), epoch, side="right")
    else:
        rates = np.full(total, lr, np.float64)
    if warmup_steps:
        ramp = lr * (warmup_factor + (1 - warmup_factor) * steps / warmup_steps)
        rates = np.where(steps < warmup_steps, ramp, rates)
    return rates.astype(np.float32)


def schedule_from_config(config, steps_per_epoch, lr):
    """The schedule a resolved recipe asks for, at the (already batch-scaled) peak `lr`."""
    return learning_rates(config.scheduler, lr, steps_per_epoch, config.epoch_size, min_lr=min(config.min_lr, lr),
                          warmup_epochs=config.warmup_epochs, warmup_factor=config.warmup_factor,
                          decay_epochs=config.decay_epochs, decay_rate=config.decay_rate,
                          milestones=config.multi_step_decay_milestones, epoch_stair=config.lr_epoch_stair)
