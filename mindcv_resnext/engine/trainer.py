"""The training run, from a resolved config to checkpoints: read it top to bottom.

    train(config):
        build_run        data, model (fresh, fine-tuned from ckpt_path, or a linear probe), lr schedule,
                         optimizer, EMA, compiled step
        resume_run       weights, optimizer, EMA and loss scale of a checkpoint; the metrics so far; the batch
                         within the epoch where a stopped run stopped
        start_run        config.yaml, run.json, train.log and a short summary
        for each epoch:  train_one_epoch -> validate_epoch -> save_epoch
    SIGTERM or Ctrl-C:   the step finishes, save_position writes where the run is, TrainingStopped (exit 75)
"""
import dataclasses
import glob
import json
import os
import time

import mindspore as ms
import numpy as np

from ..builders import EVAL_TRANSFORM_KEYS, model_from_config, model_options, split_loader
from ..checkpoint import (HEAD_PREFIX, check_writable_folder, load_training_state, load_weights_for_finetuning,
                          read_checkpoint, remove_stale_temporaries, save_checkpoint, stem_pool_pad_of)
from ..config import ConfigError, scale_learning_rate
from ..data import DataError
from ..distributed import all_reduce_sum, average_batchnorm_statistics
from ..evaluate import batch_counts_fn, evaluate
from ..logs import LOGGER, log_to_file, log_to_memory
from ..pretrained import PRETRAINED_WEIGHTS_ALONE, pretrained_checkpoint
from ..runtime import current_runtime, waits_for_each_step
from .curves import draw_curves
from .ema import EMA
from .loss import CrossEntropy
from .optim import create_optimizer
from .progress import EpochProgress, duration
from .schedule import schedule_from_config
from .step import TrainStep, cast_network, loss_scaling, recompute_blocks
from .stopping import NonFiniteLossError, StopSignals, TrainingStopped

HEAD_CELLS = ("dropout", "classifier")  # what a linear probe trains; every other cell of the model is the backbone


@dataclasses.dataclass
class Run:
    """Everything one training run is made of, built once by build_run."""
    config: dict
    rank: int
    world_size: int
    log: object
    train_loader: object
    val_loader: object          # None without val_while_train
    num_classes: int
    model: object               # the plain network: what checkpoints hold and validation scores
    optimizer: object
    step: TrainStep
    ema: EMA                    # None without ema
    schedule: np.ndarray        # the lr of every optimizer step
    steps_per_epoch: int
    lr: float                   # the peak lr for this run's global batch
    global_batch: int
    lr_factor: float
    dynamic_loss_scale: bool
    loss_scale: float
    counts_fn: object = None    # the compiled evaluation of a batch
    records: list = dataclasses.field(default_factory=list)  # one metrics dict per epoch, resumed ones included
    best_top1: float = None
    resumed_from: str = None
    stop: StopSignals = dataclasses.field(default_factory=StopSignals)  # train() listens for the signals
    nonfinite_streak: int = 0   # consecutive steps whose loss or gradients were not finite, across epochs

    @property
    def is_main(self):
        return self.rank == 0

    def path(self, name):
        return os.path.join(self.config.ckpt_save_dir, name)

    def global_step(self):
        return int(self.optimizer.global_step.asnumpy()[0])


@dataclasses.dataclass
class RunSummary:
    """What train() returns."""
    epochs_run: int = 0
    best_top1: float = None
    last: dict = None           # the last epoch's metrics
    overflow_steps: int = 0
    seconds: float = 0.0
    latest: str = None          # latest.ckpt, on the rank that wrote it
    model: object = None
    checksum: float = None      # sum of the trainable weights: the same on every rank of a data-parallel run


def train(config, rank=0, world_size=1, grad_reducer_factory=None, log=None):
    """Train as the config says; returns a RunSummary. Every line goes to the `mindcv_resnext` logger (the console,
    train.log) and, when given, to `log` as well."""
    def say(line):
        LOGGER.info(line)
        if log is not None:
            log(line)

    early = log_to_memory()  # the lines before the output folder is written to: train.log starts with them
    file_log = None
    try:
        with StopSignals() as stop:
            if rank == 0:  # before any data is read or graph compiled
                check_writable_folder(config.ckpt_save_dir)
            run = build_run(config, rank, world_size, grad_reducer_factory, say)
            run.stop = stop
            start_epoch, partial = resume_run(run)
            start_run(run, start_epoch)
            if run.is_main:
                file_log = log_to_file(run.path("train.log"), early)
            summary, started = RunSummary(best_top1=run.best_top1), time.perf_counter()
            for epoch in range(start_epoch + 1, config.epoch_size + 1):  # epochs count from 1
                record = train_one_epoch(run, epoch, partial if epoch == start_epoch + 1 else None)
                if record.get("stopped_at"):
                    stop_mid_epoch(run, epoch, record)
                improved = validate_epoch(run, epoch, record)
                run.records.append(record)
                if run.is_main:
                    save_epoch(run, epoch, record, improved)
                summary.epochs_run += 1
                summary.overflow_steps += record["overflow_steps"]
                summary.last = record
                if epoch < config.epoch_size and stop.requested(world_size):
                    raise TrainingStopped(stopped_line(run, f"after epoch {epoch}"))
        summary.seconds = time.perf_counter() - started
        if run.is_main:  # the run's result, once
            best = f", best val top-1 {run.best_top1:.4f}" if run.best_top1 is not None else ""
            run.log(f"done: {summary.epochs_run} epoch(s) in {duration(summary.seconds)}{best}; checkpoints in "
                    f"{config.ckpt_save_dir}")
    finally:
        for handler in (early, file_log):
            if handler is not None:
                LOGGER.removeHandler(handler)
                handler.close()
    summary.best_top1, summary.model = run.best_top1, run.model
    summary.latest = run.path("latest.ckpt") if run.is_main and summary.epochs_run else None
    summary.checksum = float(sum(np.asarray(p.asnumpy(), np.float64).sum() for p in run.model.trainable_params()))
    if world_size > 1:  # the ranks' weights must agree: a check a user can read in each worker's log
        run.log(f"weights fingerprint (sum of the trainable weights, the same on every rank): {summary.checksum:.6f}")
    return summary


# --- building ---------------------------------------------------------------------------------------------------

def initial_checkpoint(config, log):
    """The checkpoint a run starts from: ckpt_path, or the published weights `pretrained` asks for (downloaded and
    converted once, into the cache); '' for random weights."""
    if config.pretrained_weights and not config.pretrained:
        raise ConfigError(PRETRAINED_WEIGHTS_ALONE)
    return pretrained_checkpoint(config.model, config.pretrained_weights, log) if config.pretrained else \
        config.ckpt_path


def build_run(config, rank, world_size, grad_reducer_factory, log):
    """Data, model (random, or from ckpt_path / pretrained), schedule, optimizer, EMA and the compiled step of a run,
    before any resume checkpoint is read."""
    train_loader = split_loader(config, "train", rank, world_size, log)
    val_loader = split_loader(config, "val", rank, world_size, log) if config.val_while_train else None
    num_classes = config.num_classes or train_loader.num_classes
    if num_classes != train_loader.num_classes:
        raise ConfigError(f"num_classes is {num_classes} but {config.data_dir} has {train_loader.num_classes} "
                          "classes: set num_classes to match the data (or leave it out)")

    ms.set_seed(config.seed)  # the same initial weights on every rank
    init_path = initial_checkpoint(config, log)
    state = read_checkpoint(init_path) if init_path else None
    if state is not None:  # weights were trained with a stem pooling: the one their file records (a plain: MindCV's)
        pool = stem_pool_pad_of(state, init_path, log)
        if pool != config.stem_pool_pad:
            log(f"stem_pool_pad {pool!r}, as {init_path} was trained (the recipe says {config.stem_pool_pad!r})")
            config["stem_pool_pad"] = pool  # what the run's checkpoints and config.yaml record
    model = model_from_config(config, num_classes)
    if state is not None:
        load_weights_for_finetuning(model, init_path, log, state=state)
        log(f"initialised from {init_path}")
    if config.freeze_backbone:
        freeze_backbone(model, log)
    set_training_mode(model, config.freeze_backbone)  # before the step is compiled: the graph keeps these modes
    if config.recompute:
        recompute_blocks(model)

    lr, global_batch, factor = scale_learning_rate(config, world_size)
    steps_per_epoch = len(train_loader) // config.gradient_accumulation_steps
    if steps_per_epoch < 1:
        raise ConfigError(f"an epoch holds {len(train_loader)} batches, fewer than gradient_accumulation_steps "
                          f"({config.gradient_accumulation_steps})")
    schedule = schedule_from_config(config, steps_per_epoch, lr)
    if config.decay_epochs and "cosine" in config.scheduler and \
            config.warmup_epochs + config.decay_epochs > config.epoch_size:
        log(f"warning: warmup_epochs + decay_epochs ({config.warmup_epochs:g} + {config.decay_epochs}) is more than "
            f"epoch_size ({config.epoch_size}): the cosine stops at lr {schedule[-1]:.4g}, not min_lr (as in MindCV); "
            "leave decay_epochs out to decay until the last epoch")
    optimizer = optimizer_from_config(config, model.trainable_params(), schedule)
    dynamic_scale, loss_scale = loss_scaling(config.loss_scale_type, config.loss_scale, config.amp_level)
    network = cast_network(model, config.amp_level)
    ema = EMA(network, config.ema_decay) if config.ema else None
    step = TrainStep(network, CrossEntropy(num_classes, config.label_smoothing), optimizer, loss_scale, dynamic_scale,
                     config.clip_value if config.clip_grad else None, config.gradient_accumulation_steps, ema,
                     grad_reducer_factory(optimizer.parameters) if grad_reducer_factory else None,
                     config.drop_overflow_update, low_precision=config.amp_level != "O0",
                     noise_seed=config.seed if config.drop_rate or config.drop_path_rate else None)
    return Run(config, rank, world_size, log, train_loader, val_loader, num_classes, model, optimizer, step, ema,
               schedule, steps_per_epoch, lr, global_batch, factor, dynamic_scale, loss_scale,
               counts_fn=batch_counts_fn(model, num_classes) if val_loader else None)


def optimizer_from_config(config, params, schedule):
    """The recipe's optimizer over `params`, its lr following `schedule` (one value per optimizer step)."""
    return create_optimizer(params, config.opt, schedule, config.momentum, config.weight_decay, config.use_nesterov,
                            config.weight_decay_filter, config.eps)


def freeze_backbone(model, log):
    """Linear probe: only the head's parameters train (the backbone's BatchNorm is fixed by set_training_mode)."""
    for param in model.trainable_params():
        param.requires_grad = param.name.startswith(HEAD_PREFIX)
    head = [p.name for p in model.trainable_params()]
    log(f"linear probe: the backbone is frozen and runs in inference mode (weights and BatchNorm statistics fixed, "
        f"no drop-path); training {', '.join(head)} ({sum(p.size for p in model.trainable_params()):,} values)")


def set_training_mode(model, frozen_backbone):
    """Train mode for the whole model, or, for a linear probe, for the head alone: a frozen backbone runs as in
    inference, so its BatchNorm layers normalise with their moving statistics and never update them."""
    model.set_train(True)
    if frozen_backbone:
        for name, cell in model.name_cells().items():
            if name not in HEAD_CELLS:
                cell.set_train(False)


# --- resuming and starting ----------------------------------------------------------------------------------------

def resume_run(run):
    """Load a checkpoint's training state when the config resumes; returns the last epoch done (0 for a new run) and,
    for a run stopped mid-epoch, what it had done of the next (see save_position; else None).

    The optimizer's global step places the lr; EMA and loss scale continue; the data order follows the epoch."""
    path = find_resume_checkpoint(run.config, run.log) if run.config.resume else None
    if not path:
        return 0, None
    meta = load_training_state(path, run.model, run.step.state())
    if meta.get("partial_epoch"):
        check_same_layout(run, meta["partial_epoch"], meta["epoch"] + 1, path)
    run.step.micro_step = meta["global_step"] * run.config.gradient_accumulation_steps  # dropout keys follow it
    run.best_top1, run.resumed_from = meta.get("best_top1"), path
    metrics = run.path("metrics.jsonl")
    if os.path.isfile(metrics):
        with open(metrics) as f:
            run.records = [r for r in map(json.loads, f) if r["epoch"] <= meta["epoch"]]
    partial = meta.get("partial_epoch")
    within = f", and {partial['batches']} batches of epoch {meta['epoch'] + 1}" if partial else ""
    run.log(f"resumed from {path}: epoch {meta['epoch']} done{within}, global step {meta['global_step']}")
    return meta["epoch"], partial


def find_resume_checkpoint(config, log):
    """--resume PATH, or --resume auto: latest.ckpt in ckpt_save_dir when there is one (else a fresh start)."""
    if config.resume != "auto":
        return config.resume
    latest = os.path.join(config.ckpt_save_dir, "latest.ckpt")
    if os.path.isfile(latest):
        return latest
    log(f"resume auto: no checkpoint in {config.ckpt_save_dir} yet, starting from scratch")
    return None


def start_run(run, start_epoch):
    """Rank 0 writes config.yaml (every setting) and run.json (what was resolved) and prints a short summary; every
    rank says which shard it reads."""
    config, runtime = run.config, current_runtime()
    where = f"graph mode, jit level {runtime.jit_level}" if runtime.mode == 0 else "PyNative mode"
    run.log(f"this process: {runtime.device} ({where}), reading {run.train_loader.shard_size()} of "
            f"{len(run.train_loader.samples)} training samples")
    if not run.is_main:
        return
    os.makedirs(config.ckpt_save_dir, exist_ok=True)
    remove_stale_temporaries(config.ckpt_save_dir)
    with open(run.path("config.yaml"), "w") as f:
        f.write(config.to_yaml())
    record = dict(device_target=runtime.device, mode=runtime.mode, jit_level=runtime.jit_level,
                  amp_level=config.amp_level, mindspore=ms.__version__, recipe=config.get("config"),
                  devices=run.world_size, batch_size=config.batch_size, accumulation=config.gradient_accumulation_steps,
                  global_batch=run.global_batch, lr=run.lr, lr_factor=run.lr_factor, lr_rule=config.lr_scale,
                  lr_base_batch=config.lr_base_batch, steps_per_epoch=run.steps_per_epoch,
                  train_samples=len(run.train_loader.samples), num_classes=run.num_classes,
                  loss_scale_type="dynamic" if run.dynamic_loss_scale else "fixed", loss_scale=run.loss_scale,
                  linear_probe=config.freeze_backbone, resumed_from=run.resumed_from)
    with open(run.path("run.json"), "w") as f:
        json.dump(record, f, indent=1)
    start = f"from {config.ckpt_path}" if config.ckpt_path else \
        f"from published weights ({config.pretrained_weights or 'the best'})" if config.pretrained else "from scratch"
    run.log(f"{config.model}, {run.num_classes} classes, {start}; data {config.data_dir} ({config.dataset}): "
            f"{len(run.train_loader.samples)} training" +
            (f", {len(run.val_loader.samples)} validation samples" if run.val_loader else " samples"))
    run.log(f"{run.world_size} x {runtime.device}, global batch {run.global_batch} ({config.batch_size} per device"
            + (f" x {config.gradient_accumulation_steps} accumulated" if config.gradient_accumulation_steps > 1 else "")
            + f"), lr {run.lr:.4g} ({config.lr:g} x {run.lr_factor:.4g}), {config.scheduler}, "
            f"{run.steps_per_epoch} steps an epoch")
    if start_epoch >= config.epoch_size:
        run.log(f"nothing to train: the run has done its {config.epoch_size} epochs (raise --epoch_size to go on)")
    else:
        run.log(f"epochs {start_epoch + 1} to {config.epoch_size}; checkpoints, train.log and curves in "
                f"{config.ckpt_save_dir} (every setting in config.yaml and run.json)")


# --- one epoch ------------------------------------------------------------------------------------------------------

def train_one_epoch(run, epoch, resumed=None):
    """The epoch's steps (whole accumulation windows only); returns its metrics record. The train loss is the mean
    over every rank's batches. `resumed` (from a checkpoint save_position wrote) holds what a stopped run had done of
    this epoch: its batches are drawn again, so that the rest come in the same order with the same augmentation, but
    not trained on. A stop request ends the epoch early: the record then says where (`stopped_at`, a batch count)."""
    config = run.config
    set_training_mode(run.model, config.freeze_backbone)
    batches = run.steps_per_epoch * config.gradient_accumulation_steps
    progress = EpochProgress(epoch, config.epoch_size, batches, config.log_interval, run.log,
                             interactive=None if run.is_main else False)
    skip = resumed["batches"] if resumed else 0
    if resumed:
        progress.resume(skip, resumed["losses"], resumed["points"])
    # The loss and the finite flag of each step stay on the device; the host reads them back every log_interval
    # steps (and at the end), so an accelerator is never made to wait on them. The global step is counted here.
    # On the CPU alone the loop waits for each step to finish (runtime.waits_for_each_step says why).
    accumulation = config.gradient_accumulation_steps
    first_step = run.global_step() - skip // accumulation
    wait_each_step = waits_for_each_step()
    pending, overflowed = [], resumed["overflow_steps"] if resumed else 0

    def read_back(steps_done):
        """Read the pending losses and flags from the device; returns how many steps were not finite."""
        global_step = first_step + steps_done // accumulation
        lr = float(run.schedule[min(max(global_step - 1, 0), len(run.schedule) - 1)])  # the last step's
        losses = [float(loss.asnumpy()) for loss, _ in pending]
        finite = [bool(flag.asnumpy()) for _, flag in pending]
        pending.clear()
        progress.losses_read(global_step, losses, lr)
        check_nonfinite_streak(run, finite, global_step, lr)
        return finite.count(False)

    i, stopped_at, waited = 0, None, time.perf_counter()
    for i, (images, labels) in enumerate(run.train_loader.epoch(epoch - 1), start=1):
        if i > batches:
            i = batches
            break
        if i <= skip:  # trained before the run was stopped
            waited = time.perf_counter()
            continue
        data_seconds = time.perf_counter() - waited
        pending.append(run.step(ms.Tensor(images), ms.Tensor(labels)))
        if wait_each_step:
            pending[-1][0].asnumpy()
        progress.step(len(labels), data_seconds)
        read_now = i % config.log_interval == 0
        if read_now:
            overflowed += read_back(i)
        # A stop is agreed at a step boundary: with one process after any step, with several where they all read
        # back (the agreement is a collective).
        if i % accumulation == 0 and i < batches and (read_now or run.world_size == 1) and \
                run.stop.requested(run.world_size):
            stopped_at = i
            break
        waited = time.perf_counter()
    if pending:
        overflowed += read_back(i)
    if progress.done == skip and run.train_loader.skipped:  # the pipeline dropped every batch
        raise DataError(f"epoch {epoch} trained on nothing: its images could not be read (e.g. "
                        f"{run.train_loader.skipped[-1][1]}); python scripts/check_dataset.py lists every bad file")
    losses = progress.losses
    if stopped_at:
        return dict(epoch=epoch, stopped_at=stopped_at, batches=batches, losses=losses, points=progress.points,
                    overflow_steps=overflowed)
    loss_sum, loss_count = all_reduce_sum([np.sum(losses), len(losses)], run.world_size)
    train_loss = float(loss_sum / loss_count) if loss_count else None
    seconds = progress.finish(train_loss, config.epoch_size - epoch)
    if overflowed:
        run.log(f"epoch {epoch}: {overflowed} step(s) with overflowed gradients " +
                ("skipped" if config.drop_overflow_update or run.dynamic_loss_scale else
                 "applied (drop_overflow_update is false)"))
    return dict(epoch=epoch, train_loss=train_loss, train_curve=progress.points,
                lr=float(run.schedule[min(epoch * run.steps_per_epoch - 1, len(run.schedule) - 1)]),
                overflow_steps=overflowed, unreadable_images=len(run.train_loader.skipped),
                seconds=round(seconds, 2), data_wait=round(progress.data_seconds / max(seconds, 1e-9), 4))


def check_nonfinite_streak(run, finite, global_step, lr):
    """Count consecutive non-finite steps (`finite`: the flags of the steps just read, in order); stop the run when
    max_nonfinite_steps of them follow each other. Dynamic loss scaling expects them: it skips each and adjusts."""
    config = run.config
    limit = config.max_nonfinite_steps
    for ok in finite:
        run.nonfinite_streak = 0 if ok else run.nonfinite_streak + 1
    if run.dynamic_loss_scale or not limit or run.nonfinite_streak < limit:
        return
    latest = run.path("latest.ckpt")
    raise NonFiniteLossError(
        f"{run.nonfinite_streak} consecutive steps up to global step {global_step} (lr {lr:.4g}) had a non-finite loss "
        f"or gradients (max_nonfinite_steps {limit}): stopped, nothing saved; the last good checkpoint is " +
        (latest if os.path.isfile(latest) else "none (no epoch finished)") +
        ". Lower lr, set clip_grad true, check the data, or resume from it with --resume auto")


def stop_mid_epoch(run, epoch, record):
    """A stop request inside an epoch: write the exact position, then raise TrainingStopped."""
    if run.is_main:
        save_position(run, epoch, record)
    all_reduce_sum([0.0], run.world_size)  # the other ranks wait for the save: a launcher stops the job when one exits
    raise TrainingStopped(stopped_line(run, f"at epoch {epoch} batch {record['stopped_at']}/{record['batches']}"))


def stopped_line(run, where):
    return (f"stopped by {run.stop.received or 'another rank'} {where} (global step {run.global_step()}); "
            f"{run.path('latest.ckpt')} holds this position: run the same command with --resume auto to continue")


def validate_epoch(run, epoch, record):
    """Every val_interval epochs (and the last): top-1, top-5 and loss over the whole validation split, exact
    across ranks, and the EMA's top-1, into `record`; BatchNorm statistics are first made the same on every rank.
    Returns whether top-1 is the best so far."""
    config = run.config
    if not config.freeze_backbone:  # frozen statistics are equal on every rank already
        average_batchnorm_statistics(run.model, run.world_size)  # one model on every rank: validated and saved
    if not run.val_loader or (epoch % config.val_interval and epoch != config.epoch_size):
        return False
    record.update(evaluate(run.model, run.val_loader, run.counts_fn, run.world_size).metrics(run.num_classes))
    if run.ema is not None:
        with run.ema.applied(run.model):
            ema = evaluate(run.model, run.val_loader, run.counts_fn, run.world_size).metrics(run.num_classes)
        record["ema_top1"] = ema["top1"]
    improved = run.best_top1 is None or record["top1"] > run.best_top1
    run.best_top1 = record["top1"] if improved else run.best_top1
    if run.is_main:
        run.log(f"epoch {epoch}/{config.epoch_size}: val top-1 {record['top1']:.4f}" +
                (f", top-5 {record['top5']:.4f}" if "top5" in record else "") + f", loss {record['loss']:.4f}" +
                (f", EMA top-1 {record['ema_top1']:.4f}" if "ema_top1" in record else "") +
                (" (best so far)" if improved else f" (best {run.best_top1:.4f})"))
    return improved


# --- saving ---------------------------------------------------------------------------------------------------------

def save_epoch(run, epoch, record, improved):
    """latest.ckpt every epoch, best.ckpt when top-1 improved, epoch_NNNN.ckpt every ckpt_save_interval (keeping
    keep_checkpoint_max of them), metrics.jsonl and curves.png."""
    config = run.config
    meta = checkpoint_metadata(config, run.train_loader.class_names, epoch, run.global_step(), run.best_top1, record)
    every_n = config.keep_checkpoint_max and epoch % config.ckpt_save_interval == 0
    save_weights(run, [run.path("latest.ckpt")] + [run.path("best.ckpt")] * improved +
                 [run.path(f"epoch_{epoch:04d}.ckpt")] * bool(every_n), meta)
    if every_n:
        prune_epoch_checkpoints(config.ckpt_save_dir, config.keep_checkpoint_max, config.ckpt_save_policy,
                                run.records)
    with open(run.path("metrics.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in run.records)
    draw_curves(run.records, run.schedule, run.steps_per_epoch, run.path("curves.png"))


def save_position(run, epoch, record):
    """latest.ckpt for a run stopped inside `epoch`: the epoch before it is done, and `partial_epoch` says what was
    done of this one (batches, their losses and curve points, overflowed steps) so that resume takes it from there.
    best.ckpt and epoch checkpoints are left as they are."""
    previous = run.records[-1] if run.records else {}
    meta = checkpoint_metadata(run.config, run.train_loader.class_names, epoch - 1, run.global_step(), run.best_top1,
                               previous)
    meta["partial_epoch"] = dict(batches=record["stopped_at"], losses=record["losses"], points=record["points"],
                                 overflow_steps=record["overflow_steps"], layout=epoch_layout(run, record["batches"]))
    save_weights(run, [run.path("latest.ckpt")], meta)


def epoch_layout(run, batches):
    """What a batch count inside an epoch means: the same count is the same place only with the same batches."""
    return dict(batch_size=run.config.batch_size, devices=run.world_size, batches=batches)


def check_same_layout(run, partial, epoch, path):
    """A mid-epoch position resumes exactly only where the epoch is cut into the same batches; elsewhere it does not
    exist, and going on would train on other images than the stopped run had left."""
    saved = partial.get("layout")
    now = epoch_layout(run, run.steps_per_epoch * run.config.gradient_accumulation_steps)
    if saved is None or saved == now:
        return
    raise ConfigError(f"{path} holds a position inside epoch {epoch} (batch {partial['batches']} of "
                      f"{saved['batches']}, batch_size {saved['batch_size']} on {saved['devices']} device(s)); this "
                      f"run has batch_size {now['batch_size']} on {now['devices']} device(s) ({now['batches']} "
                      f"batches an epoch), where that position does not exist: resume with batch_size "
                      f"{saved['batch_size']} on {saved['devices']} device(s), or with --resume and an epoch "
                      f"checkpoint (epoch {epoch - 1} or earlier) to start epoch {epoch} anew")


def save_weights(run, paths, meta):
    """The model and training state to each of `paths` (atomically), unless a weight is not finite: then none is
    written, the files there are kept, and the run stops."""
    bad = [p.name for p in run.model.get_parameters() if not np.isfinite(p.asnumpy()).all()]
    if bad:
        raise NonFiniteLossError(f"{len(bad)} weight tensor(s) are not finite ({', '.join(bad[:3])}) at global step "
                                 f"{meta['global_step']}: not saved; the last good checkpoint is "
                                 f"{run.path('latest.ckpt')} (if written). Lower lr or set clip_grad true")
    state = run.step.state()
    for path in paths:
        save_checkpoint(path, run.model, meta, state)


def checkpoint_metadata(config, class_names, epoch, global_step, best_top1, metrics):
    """What validate.py and inference need to rebuild the model and its eval transform, and resume needs."""
    return dict(model=config.model, num_classes=len(class_names), class_names=list(class_names),
                model_options=model_options(config),
                eval_transform={key: config[key] for key in EVAL_TRANSFORM_KEYS},
                epoch=epoch, global_step=global_step, best_top1=best_top1,
                metrics={k: v for k, v in metrics.items() if k != "train_curve"},
                config={k: list(v) if isinstance(v, tuple) else v for k, v in config.items()})


def prune_epoch_checkpoints(save_dir, keep, policy, records):
    """Keep `keep` epoch_*.ckpt files: the newest (latest_k) or the best by val top-1 (top_k)."""
    files = sorted(glob.glob(os.path.join(save_dir, "epoch_*.ckpt")))
    if policy == "top_k":
        top1 = {r["epoch"]: r.get("top1") or 0.0 for r in records}
        files.sort(key=lambda f: top1.get(int(os.path.basename(f)[6:-5]), 0.0))
    for path in files[:max(len(files) - keep, 0)]:
        os.remove(path)


__all__ = ["train", "Run", "RunSummary"]
