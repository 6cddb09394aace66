"""The training run, from a resolved config to checkpoints: read it top to bottom.

    data -> model (fresh, fine-tuned from ckpt_path, or resumed) -> lr schedule + optimizer -> compiled step
    -> for each epoch: train, validate every val_interval, write latest/best/epoch checkpoints, metrics, curves
"""
import dataclasses
import glob
import json
import os
import time

import mindspore as ms
import numpy as np
from mindspore import ops

from ..checkpoint import HEAD_PREFIX, load_training_state, load_weights_for_finetuning, save_checkpoint
from ..config import SCHEMA_BY_NAME, ConfigError, scale_learning_rate
from ..data import TransformSettings, create_loader
from ..distributed import all_reduce_sum, average_batchnorm_statistics
from ..evaluate import batch_counts_fn, evaluate
from ..models import create_model
from ..models.registry import OPTIONS
from ..runtime import current_runtime
from .curves import draw_curves
from .loss import CrossEntropy
from .optim import create_optimizer
from .schedule import schedule_from_config
from .step import TrainStep, cast_network, loss_scaling

MODEL_OPTIONS = tuple(name for name in OPTIONS if name in SCHEMA_BY_NAME)  # the registry's options a recipe sets
TRANSFORM_KEYS = [f.name for f in dataclasses.fields(TransformSettings)]
HEAD_CELLS = ("dropout", "classifier")  # what a linear probe trains; every other cell of the model is the backbone


def transform_settings(config):
    return TransformSettings(**{key: config[key] for key in TRANSFORM_KEYS})


def split_loader(config, split, rank=0, world_size=1, log=print):
    """The loader of one split ("train" or "val") as the config describes it, for this rank's shard."""
    return create_loader(config.dataset, config.data_dir, split, transform_settings(config),
                         batch_size=config.batch_size, num_samples=config.num_samples,
                         train_split=config.train_split, val_split=config.val_split, num_shards=world_size,
                         shard_id=rank, seed=config.seed,
                         num_workers=min(config.num_parallel_workers, os.cpu_count() or 1), log=log,
                         eval_shuffle=config.eval_shuffle)


def data_loaders(config, rank=0, world_size=1, log=print):
    """The training loader (this rank's shard) and, when validating, the validation loader."""
    train = split_loader(config, "train", rank, world_size, log)
    val = split_loader(config, "val", rank, world_size, log) if config.val_while_train else None
    return train, val


def checkpoint_metadata(config, class_names, epoch, global_step, best_top1, metrics):
    """What validate.py and inference need to rebuild the model and its eval transform, and resume needs."""
    return dict(model=config.model, num_classes=len(class_names), class_names=list(class_names),
                model_options={key: config[key] for key in MODEL_OPTIONS},
                eval_transform={key: config[key] for key in ("image_resize", "crop_pct", "eval_resize",
                                                             "interpolation", "mean", "std")},
                epoch=epoch, global_step=global_step, best_top1=best_top1, metrics=metrics,
                config={k: list(v) if isinstance(v, tuple) else v for k, v in config.items()})


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


def write_run_record(config, path, runtime, **facts):
    """run.json: what this run resolved that the recipe does not say (device, compile level, devices, global batch,
    effective lr, ...), beside config.yaml."""
    record = dict(device_target=runtime.device, mode=runtime.mode, jit_level=runtime.jit_level,
                  amp_level=config.amp_level, mindspore=ms.__version__, recipe=config.get("config"), **facts)
    with open(path, "w") as f:
        json.dump(record, f, indent=1)


def find_resume_checkpoint(config, log):
    """--resume PATH, or --resume auto: latest.ckpt in ckpt_save_dir when there is one (else a fresh start)."""
    if config.resume != "auto":
        return config.resume
    latest = os.path.join(config.ckpt_save_dir, "latest.ckpt")
    if os.path.isfile(latest):
        return latest
    log(f"resume auto: no checkpoint in {config.ckpt_save_dir} yet, starting from scratch")
    return None


def prune_epoch_checkpoints(save_dir, keep, policy, records):
    """Keep `keep` epoch_*.ckpt files: the newest (latest_k) or the best by val top-1 (top_k)."""
    files = sorted(glob.glob(os.path.join(save_dir, "epoch_*.ckpt")))
    if policy == "top_k":
        top1 = {r["epoch"]: r.get("top1") or 0.0 for r in records}
        files.sort(key=lambda f: top1.get(int(os.path.basename(f)[6:-5]), 0.0))
    for path in files[:max(len(files) - keep, 0)]:
        os.remove(path)


def train(config, rank=0, world_size=1, grad_reducer_factory=None, log=print):
    """Train as the config says; returns a summary dict (epochs run, last metrics, best top-1, checkpoint paths)."""
    is_main = rank == 0
    train_loader, val_loader = data_loaders(config, rank, world_size, log)
    num_classes = config.num_classes or train_loader.num_classes
    if num_classes != train_loader.num_classes:
        raise ConfigError(f"num_classes is {num_classes} but {config.data_dir} has {train_loader.num_classes} "
                          "classes: set num_classes to match the data (or leave it out)")

    # The model: fresh, or fine-tuned from a checkpoint's weights (a head of another size is made anew).
    ms.set_seed(config.seed)  # the same initial weights on every rank
    model = create_model(config.model, num_classes=num_classes, **{k: config[k] for k in MODEL_OPTIONS})
    if config.ckpt_path:
        load_weights_for_finetuning(model, config.ckpt_path, log)
        log(f"initialised from {config.ckpt_path}")
    if config.freeze_backbone:
        freeze_backbone(model, log)
    set_training_mode(model, config.freeze_backbone)  # before the step is compiled: the graph keeps these modes

    # Learning rate for the real global batch, the schedule per optimizer step, the optimizer and the step.
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
    step = TrainStep(cast_network(model, config.amp_level), CrossEntropy(num_classes, config.label_smoothing),
                     optimizer, loss_scale, dynamic_scale, config.clip_value if config.clip_grad else None,
                     config.gradient_accumulation_steps, config.ema_decay if config.ema else None,
                     grad_reducer_factory(optimizer.parameters) if grad_reducer_factory else None,
                     config.drop_overflow_update)

    # Resume: weights, optimizer (its global step places the lr), EMA and loss scale; the data order follows epoch.
    start_epoch, best_top1, records = 0, None, []
    resume_path = find_resume_checkpoint(config, log) if config.resume else None
    if resume_path:
        meta = load_training_state(resume_path, model, step.state())
        start_epoch, best_top1 = meta["epoch"], meta.get("best_top1")
        log(f"resumed from {resume_path}: epoch {start_epoch} done, global step {meta['global_step']}")
    metrics_path, runtime = os.path.join(config.ckpt_save_dir, "metrics.jsonl"), current_runtime()
    if is_main:
        os.makedirs(config.ckpt_save_dir, exist_ok=True)
        with open(os.path.join(config.ckpt_save_dir, "config.yaml"), "w") as f:
            f.write(config.to_yaml())
        write_run_record(config, os.path.join(config.ckpt_save_dir, "run.json"), runtime, devices=world_size,
                         batch_size=config.batch_size, accumulation=config.gradient_accumulation_steps,
                         global_batch=global_batch, lr=lr, lr_factor=factor, lr_rule=config.lr_scale,
                         lr_base_batch=config.lr_base_batch, steps_per_epoch=steps_per_epoch,
                         train_samples=len(train_loader.samples), num_classes=num_classes,
                         loss_scale_type="dynamic" if dynamic_scale else "fixed", loss_scale=loss_scale,
                         linear_probe=config.freeze_backbone, resumed_from=resume_path)
        if resume_path and os.path.isfile(metrics_path):
            with open(metrics_path) as f:
                records = [r for r in map(json.loads, f) if r["epoch"] <= start_epoch]
    where = f"graph mode, jit level {runtime.jit_level}" if runtime.mode == 0 else "PyNative mode"
    log(f"rank {rank}/{world_size} on {runtime.device} ({where}): {train_loader.shard_size()} of "
        f"{len(train_loader.samples)} training samples in this rank's shard")
    log(f"model {config.model} ({num_classes} classes), {world_size} device(s) x batch {config.batch_size} x "
        f"accumulation {config.gradient_accumulation_steps} = global batch {global_batch}; lr {config.lr} x "
        f"{factor:.4g} = {lr:.6g} ({config.lr_scale} rule, base batch {config.lr_base_batch}); "
        f"{steps_per_epoch} steps/epoch, epochs {start_epoch + 1}..{config.epoch_size}")

    counts_fn = batch_counts_fn(model, num_classes) if val_loader else None
    summary = dict(best_top1=best_top1, epochs_run=0, overflow_steps=0)
    for epoch in range(start_epoch, config.epoch_size):
        set_training_mode(model, config.freeze_backbone)
        losses, overflowed, started, seen = [], 0, time.perf_counter(), 0
        batches = steps_per_epoch * config.gradient_accumulation_steps  # whole accumulation windows only
        for i, (images, labels) in enumerate(train_loader.epoch(epoch), start=1):
            if i > batches:
                break
            loss, finite = step(ms.Tensor(images), ms.Tensor(labels))
            losses.append(float(loss.asnumpy()))
            overflowed += not bool(finite.asnumpy())
            seen += len(labels)
            if i % config.log_interval == 0 or i == len(train_loader):
                position = min(int(optimizer.global_step.asnumpy()[0]), len(schedule) - 1)
                log(f"epoch {epoch + 1}/{config.epoch_size} step {i}/{len(train_loader)} loss "
                    f"{np.mean(losses[-config.log_interval:]):.4f} lr {schedule[position]:.6f} "
                    f"{seen / (time.perf_counter() - started):.1f} img/s")
        loss_sum, loss_count = all_reduce_sum([np.sum(losses), len(losses)], world_size)  # every rank's batches
        record = dict(epoch=epoch + 1, train_loss=float(loss_sum / loss_count) if loss_count else None,
                      lr=float(schedule[min((epoch + 1) * steps_per_epoch - 1, len(schedule) - 1)]),
                      overflow_steps=overflowed, unreadable_images=len(train_loader.skipped),
                      seconds=round(time.perf_counter() - started, 2))
        if overflowed:
            log(f"epoch {epoch + 1}: {overflowed} step(s) with overflowed gradients "
                + ("skipped" if config.drop_overflow_update or dynamic_scale else
                   "applied (drop_overflow_update is false)"))
        summary["overflow_steps"] += overflowed

        if not config.freeze_backbone:  # frozen statistics are equal on every rank already
            average_batchnorm_statistics(model, world_size)  # one model on every rank: validated and saved
        if val_loader and ((epoch + 1) % config.val_interval == 0 or epoch + 1 == config.epoch_size):
            counts = evaluate(model, val_loader, counts_fn, world_size)
            record.update(counts.metrics(num_classes))
            if config.ema:
                record["ema_top1"] = evaluate_with_weights(model, step.ema, val_loader, counts_fn,
                                                           world_size).metrics(num_classes)["top1"]
            log(f"epoch {epoch + 1}: val top-1 {record['top1']:.4f}" +
                (f" top-5 {record['top5']:.4f}" if "top5" in record else "") + f" loss {record['loss']:.4f}" +
                (f" (EMA top-1 {record['ema_top1']:.4f})" if "ema_top1" in record else ""))
        records.append(record)
        summary.update(epochs_run=summary["epochs_run"] + 1, last=record)
        if not is_main:
            continue

        # Checkpoints: latest every epoch, best by top-1, epoch_N every ckpt_save_interval (keep_checkpoint_max).
        improved = "top1" in record and (best_top1 is None or record["top1"] > best_top1)
        best_top1 = record["top1"] if improved else best_top1
        meta = checkpoint_metadata(config, train_loader.class_names, epoch + 1,
                                   int(optimizer.global_step.asnumpy()[0]), best_top1, record)
        latest = os.path.join(config.ckpt_save_dir, "latest.ckpt")
        save_checkpoint(latest, model, meta, step.state())
        if improved:
            save_checkpoint(os.path.join(config.ckpt_save_dir, "best.ckpt"), model, meta, step.state())
        if config.keep_checkpoint_max and (epoch + 1) % config.ckpt_save_interval == 0:
            save_checkpoint(os.path.join(config.ckpt_save_dir, f"epoch_{epoch + 1:04d}.ckpt"), model, meta,
                            step.state())
            prune_epoch_checkpoints(config.ckpt_save_dir, config.keep_checkpoint_max, config.ckpt_save_policy,
                                    records)
        with open(metrics_path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
        draw_curves(records, os.path.join(config.ckpt_save_dir, "curves.png"))
        summary.update(best_top1=best_top1, latest=latest)
    # Trainable weights are identical on every rank of a data-parallel run; BN statistics are each rank's own.
    checksum = float(sum(np.asarray(p.asnumpy(), np.float64).sum() for p in model.trainable_params()))
    log(f"rank {rank}/{world_size}: final trainable weights checksum {checksum:.6f}")
    summary.update(model=model, checksum=checksum)
    return summary


def evaluate_with_weights(model, weights, loader, counts_fn, world_size=1):
    """Evaluate `model` with other weights (the EMA, named ema.<name>), then put its own weights back.

    The swap uses ops.assign, which writes in place: after a graph has been compiled, Parameter.set_data (and
    assign_value) leave the compiled train step updating a buffer that the Parameter no longer shows (MindSpore 2.7.1).
    """
    own = {p.name: p.value().copy() for p in model.get_parameters()}
    by_name = {p.name[len("ema."):]: p for p in weights}
    for param in model.get_parameters():
        ops.assign(param, by_name[param.name])
    try:
        return evaluate(model, loader, counts_fn, world_size)
    finally:
        for param in model.get_parameters():
            ops.assign(param, own[param.name])
