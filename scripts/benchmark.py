"""Steady-state images/s, compile seconds and peak memory of a training or inference step, ours beside the others.

    python scripts/benchmark.py --model resnext50_32x4d --batch_size 8 --task train --compare mindcv,torch
    python scripts/benchmark.py --model resnext50_32x4d --batch_size 8 --task infer --runtime mindspore,onnxruntime \\
        --compare mindcv,torch --json
    python scripts/benchmark.py --task loop --model resnext14_2x16d --batch_size 64    # the loop vs its bare step

What each row times, on the same random input (seeded, identical for every row):
- mindcv_resnext, train: one call of our TrainStep (forward, cross-entropy, backward, momentum SGD update with weight
  decay), as the trainer calls it; infer: the eval forward of the network with BatchNorm folded into the
  convolutions, compiled (mindspore) or exported to ONNX by export.py and run by onnxruntime (--runtime onnxruntime).
- mindcv: MindCV's network of the same name in MindSpore's nn.TrainOneStepCell, the cell mindspore.Model trains it
  with (MindCV's train.py) when no loss scale is updated; infer: its eval forward in the same mode.
- torch, torch_channels_last: a PyTorch eager ResNeXt of the same architecture (tests/torch_reference.py), in NCHW
  and in channels_last, PyTorch's fastest CPU layout; train: forward, loss, backward, SGD step; infer: under
  torch.inference_mode.
- onnxruntime (infer): that PyTorch network exported to ONNX and run by onnxruntime.
- loop: our whole training loop (trainer.train_one_epoch: data pipeline, step, progress, loss read-back) over an
  epoch of the demo data (the demo recipe, generated in a temp folder; image_size defaults to its 48), beside the
  bare compiled step called as many times on one batch; loop_vs_bare is their ratio of images/s, data_wait the
  share of the loop's time spent waiting for a batch. After a warm-up epoch, --rounds epochs (5) alternate with as
  many bare runs; the best of each is reported.

Every row runs in a fresh process (spawned), so that one framework's threads, caches and memory do not touch
another's; with --repeat N every row is measured N times, the rows in turn, and each row's fastest run is kept (on a
shared machine single runs move by 20-50%). img_per_s = batch_size / the median of the timed steps after warm-up; compile_s = the first call's time
less a steady step (the graph compile, or onnxruntime's session set-up, or ~0 for eager PyTorch); peak_mem_mb = the
process's peak resident memory (framework and input included). mindcv, torch and onnxruntime are optional,
benchmark-only packages (requirements-dev.txt); a row whose package is missing is left out with a note.
With --json the last stdout line is the JSON list of rows.
"""
import json
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("GLOG_v", "3")
import numpy as np  # noqa: E402

from mindcv_resnext.cli import run_main  # noqa: E402
from mindcv_resnext.config import ConfigError, Key, parse_command_line  # noqa: E402

COMPARE = ("mindcv", "torch")
RUNTIMES = ("mindspore", "onnxruntime")
DEMO_RECIPE = os.path.join(ROOT, "configs/demo/resnext_demo_cpu.yaml")
OPTIONS = (Key("model", "str", "resnext50_32x4d", "the network (any name create_model builds)"),
           Key("batch_size", "int", 8, "images per step", low=1),
           Key("task", "str", "train", "train: a whole training step; infer: an eval forward; loop: the training "
               "loop on demo data vs its bare step", choices=("train", "infer", "loop")),
           Key("image_size", "int", None, "input height and width (default: the model's, 224 or 32)", low=8,
               optional=True),
           Key("amp_level", "str", "O0", "our network's mixed precision (MindSpore amp levels)",
               choices=("O0", "O1", "O2", "O3")),
           Key("mode", "str", "graph", "MindSpore execution mode, ours and MindCV's", choices=("graph", "pynative")),
           Key("runtime", "str", "mindspore", "how our network runs for --task infer: mindspore, onnxruntime, or "
               "both (comma-separated)"),
           Key("compare", "str", "", f"also measure: {', '.join(COMPARE)} (comma-separated; empty for ours alone)"),
           Key("recompute", "bool", False, "recompute each block's activations in the backward (less memory)"),
           Key("native_kernels", "bool", True, "our grouped 3x3 convolutions on the CPU: the C++ kernels (true) or "
               "MindSpore's own (false)"),
           Key("steps", "int", 10, "timed steps (their median is reported)", low=1),
           Key("warmup", "int", 2, "untimed steps after the first call", low=0),
           Key("repeat", "int", 1, "train/infer: measure every row this many times, in turn, each in a fresh process, "
               "and keep each row's fastest", low=1),
           Key("rounds", "int", 5, "loop: epochs of the loop alternated with as many bare runs (the best of each)",
               low=1),
           Key("json", "bool", False, "print the rows as one JSON list on the last line"))


def names(text, allowed, what):
    """A comma-separated option as a list of known words."""
    words = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in words if w not in allowed]
    if unknown:
        raise ConfigError(f"unknown {what} {unknown[0]!r}: choose from {', '.join(allowed)} (comma-separated)")
    return words


def example_batch(batch_size, image_size, num_classes):
    """The input every row gets: the same seeded images (N, 3, S, S) and labels."""
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch_size, 3, image_size, image_size), dtype=np.float32)
    return images, rng.integers(0, num_classes, batch_size).astype(np.int32)


def peak_memory_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def time_steps(step, steps, warmup):
    """(seconds of the first call, median seconds of `steps` timed calls after `warmup` more); `step` must return
    only when its work is done (it reads a result back)."""
    started = time.perf_counter()
    step()
    first = time.perf_counter() - started
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return first, statistics.median(times)


# --- the step of each implementation: built in its own process, returned as a function of no arguments ----------

def set_mindspore_mode(mode):
    import mindspore as ms
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)


def ours(args, images, labels, runtime):
    import mindspore as ms
    from mindcv_resnext import create_model, kernels
    from mindcv_resnext.engine.loss import CrossEntropy
    from mindcv_resnext.engine.optim import create_optimizer
    from mindcv_resnext.engine.step import TrainStep, cast_network, recompute_blocks
    from mindcv_resnext.commands import onnxruntime_network
    from mindcv_resnext.export import for_deployment
    from mindcv_resnext.runtime import jit
    set_mindspore_mode(args.mode)
    kernels.set_enabled(args.native_kernels)
    model = create_model(args.model)
    x, y = ms.Tensor(images), ms.Tensor(labels)
    if args.task == "train":
        model.set_train(True)
        if args.recompute:
            recompute_blocks(model)
        optimizer = create_optimizer(model.trainable_params(), "momentum", 0.01, momentum=0.9, weight_decay=1e-4)
        step = TrainStep(cast_network(model, args.amp_level), CrossEntropy(model.num_classes), optimizer,
                         low_precision=args.amp_level != "O0")
        return lambda: step(x, y)[0].asnumpy()
    if runtime == "onnxruntime":  # what infer.py --runtime onnxruntime runs
        network = onnxruntime_network(model, images.shape)
        return lambda: network(images)
    network = cast_network(for_deployment(model)[0], args.amp_level)
    forward = jit(network.construct) if args.mode == "graph" else network
    return lambda: forward(x).asnumpy()


def mindcv(args, images, labels):
    import mindcv as mindcv_package
    import mindspore as ms
    from mindspore import nn
    set_mindspore_mode(args.mode)
    network = mindcv_package.create_model(args.model)
    x, y = ms.Tensor(images), ms.Tensor(labels)
    if args.task == "train":
        optimizer = nn.Momentum(network.trainable_params(), 0.01, 0.9, weight_decay=1e-4)
        step = nn.TrainOneStepCell(nn.WithLossCell(network, nn.CrossEntropyLoss()), optimizer)
        step.set_train(True)
        return lambda: step(x, y).asnumpy()
    network.set_train(False)
    return lambda: network(x).asnumpy()


def torch_model(args, num_classes):
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from mindcv_resnext import model_card
    from torch_reference import ResNeXt
    card = model_card(args.model)
    return ResNeXt(card.stage_blocks, card.cardinality, card.base_width, num_classes)


def torch_step(args, images, labels, channels_last):
    import torch
    model = torch_model(args, _num_classes(args))
    x, y = torch.from_numpy(images), torch.from_numpy(labels).long()
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    if args.task == "train":
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        loss_fn = torch.nn.CrossEntropyLoss()

        def train_step():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            return loss.item()
        return train_step
    model.eval()

    def infer_step():
        with torch.inference_mode():
            return model(x).numpy()
    return infer_step


def torch_onnxruntime(args, images):
    import torch
    model = torch_model(args, _num_classes(args)).eval()
    path = os.path.join(tempfile.mkdtemp(), "torch.onnx")
    torch.onnx.export(model, torch.from_numpy(images), path, dynamo=False)
    from mindcv_resnext.export import OnnxRuntimeNetwork
    network = OnnxRuntimeNetwork(path)
    return lambda: network(images)


def _num_classes(args):
    from mindcv_resnext import model_card
    return model_card(args.model).num_classes


def loop_row(args):
    """Our training loop over one epoch of demo data, and its bare step as many times on one batch."""
    from mindcv_resnext.config import resolve_config
    from mindcv_resnext.data.demo import make_demo_dataset
    from mindcv_resnext.engine.trainer import build_run, train_one_epoch
    from mindcv_resnext.runtime import setup_runtime, waits_for_each_step
    import mindspore as ms
    folder = tempfile.mkdtemp()
    make_demo_dataset(folder, train_per_class=max(30 * args.batch_size // 10, args.batch_size), val_per_class=1,
                      size=args.image_size)
    config = resolve_config(["-c", DEMO_RECIPE, "--data_dir", folder,
                             "--ckpt_save_dir", os.path.join(folder, "out"), "--model", args.model, "--batch_size",
                             str(args.batch_size), "--image_resize", str(args.image_size), "--val_while_train",
                             "false", "--mode", "0" if args.mode == "graph" else "1", "--amp_level", args.amp_level,
                             "--log_interval", "10", "--native_kernels", str(args.native_kernels).lower(),
                             "--epoch_size", str(1 + 2 * args.rounds)])  # the schedule covers the bare steps too
    setup_runtime(config)
    run = build_run(config, 0, 1, None, lambda line: None)
    train_one_epoch(run, 1)  # compiles the step and warms the pipeline
    images, labels = next(iter(run.train_loader.epoch(0)))
    x, y = ms.Tensor(images), ms.Tensor(labels)
    steps, loop, bare, waits = run.steps_per_epoch, [], [], []
    wait_each_step = waits_for_each_step()
    for epoch in range(2, 2 + args.rounds):  # alternated, the best of each: a busy neighbour slows both alike
        record = train_one_epoch(run, epoch)
        loop.append(record["seconds"])
        waits.append(record["data_wait"])
        started = time.perf_counter()
        for _ in range(steps):  # waits for each step where the loop does
            loss = run.step(x, y)[0]
            if wait_each_step:
                loss.asnumpy()
        loss.asnumpy()
        bare.append(time.perf_counter() - started)
    loop_speed, bare_speed = steps * args.batch_size / min(loop), steps * args.batch_size / min(bare)
    return dict(impl="mindcv_resnext", runtime="mindspore", task="loop", model=args.model,
                batch_size=args.batch_size, image_size=args.image_size, img_per_s=round(loop_speed, 1),
                bare_img_per_s=round(bare_speed, 1), loop_vs_bare=round(loop_speed / bare_speed, 3),
                data_wait=round(statistics.median(waits), 3), steps=steps, rounds=args.rounds,
                peak_mem_mb=round(peak_memory_mb()))


def build_step(impl, args, images, labels):
    if impl == "mindcv_resnext":
        return ours(args, images, labels, "mindspore")
    if impl == "mindcv_resnext_onnxruntime":
        return ours(args, images, labels, "onnxruntime")
    if impl == "mindcv":
        return mindcv(args, images, labels)
    if impl in ("torch", "torch_channels_last"):
        return torch_step(args, images, labels, channels_last=impl == "torch_channels_last")
    if impl == "onnxruntime":
        return torch_onnxruntime(args, images)
    raise ValueError(impl)


def measure(impl, args, queue):
    """In a child process: build the step of `impl`, time it, and put its row (or the reason it has none). Its
    temporary files (exported networks, demo data) go to a folder removed when it is done."""
    with tempfile.TemporaryDirectory() as scratch:
        tempfile.tempdir = scratch
        queue.put(measured_row(impl, args))


def measured_row(impl, args):
    try:
        if args.task == "loop":
            return loop_row(args)
        images, labels = example_batch(args.batch_size, args.image_size, _num_classes(args))
        step = build_step(impl, args, images, labels)
        first, median = time_steps(step, args.steps, args.warmup)
        runtime = "onnxruntime" if impl in ("mindcv_resnext_onnxruntime", "onnxruntime") else \
            "torch" if impl.startswith("torch") else "mindspore"
        return dict(impl="mindcv_resnext" if impl.startswith("mindcv_resnext") else impl, runtime=runtime,
                    task=args.task, model=args.model, batch_size=args.batch_size, image_size=args.image_size,
                    img_per_s=round(args.batch_size / median, 2), step_ms=round(median * 1000, 1),
                    compile_s=round(max(first - median, 0.0), 2), peak_mem_mb=round(peak_memory_mb()))
    except ImportError as err:
        return dict(impl=impl, skipped=f"{err.name or err} is not installed")
    except Exception as err:  # one row's failure is reported, the others still run
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return dict(impl=impl, skipped=f"{type(err).__name__}: {reason}")


def run_isolated(impl, args):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=measure, args=(impl, args, queue))
    process.start()
    process.join()
    return queue.get() if not queue.empty() else dict(impl=impl, skipped=f"its process died (exit {process.exitcode})")


def implementations(args):
    """The rows to measure, ours first."""
    rows = []
    if args.task == "loop":
        return ["mindcv_resnext"]
    runtimes = names(args.runtime, RUNTIMES, "runtime")
    if args.task == "train" or "mindspore" in runtimes:
        rows.append("mindcv_resnext")
    if args.task == "infer" and "onnxruntime" in runtimes:
        rows.append("mindcv_resnext_onnxruntime")
    compare = names(args.compare, COMPARE, "implementation to compare")
    if "mindcv" in compare:
        rows.append("mindcv")
    if "torch" in compare:
        rows += ["torch", "torch_channels_last"] + (["onnxruntime"] if args.task == "infer" else [])
    return rows


def main(argv):
    _, args = parse_command_line(argv, OPTIONS, settings=(), prog="benchmark.py", description=__doc__)
    from mindcv_resnext import model_card
    card = model_card(args.model)
    args["image_size"] = args.image_size or (48 if args.task == "loop" else card.input_size)
    impls = implementations(args)
    fastest = {}  # a busy neighbour only slows a run down: of several runs of a row, the fastest is the row
    for _ in range(1 if args.task == "loop" else args.repeat):
        for impl in impls:
            row = run_isolated(impl, args)
            print(json.dumps(row) if not args.json else "", file=sys.stderr if args.json else sys.stdout, flush=True)
            if impl not in fastest or row.get("img_per_s", 0) > fastest[impl].get("img_per_s", 0):
                fastest[impl] = dict(row, runs=args.repeat) if "img_per_s" in row else row
    rows = [fastest[impl] for impl in impls]
    measured = [r for r in rows if "img_per_s" in r]
    ours_row = next((r for r in measured if r["impl"] == "mindcv_resnext"), None)
    if not args.json and args.task == "loop":
        print("\n".join(f"{key:>15}: {value}" for key, value in rows[0].items()))
    elif not args.json:
        print(table(measured, ours_row))
        for r in rows:
            if "skipped" in r:
                print(f"{r['impl']}: not measured ({r['skipped']})")
    else:
        print(json.dumps(measured))
    return 0


def table(rows, ours_row):
    lines = ["impl                        runtime      img/s   step ms  compile s  peak MB  ours is"]
    for r in rows:
        ratio = f"{ours_row['img_per_s'] / r['img_per_s']:.2f}x" if ours_row else ""
        lines.append(f"{r['impl']:<27} {r['runtime']:<11} {r['img_per_s']:>6} {r['step_ms']:>9} {r['compile_s']:>10} "
                     f"{r['peak_mem_mb']:>8}  {ratio}")
    return "\n".join(lines)


if __name__ == "__main__":
    run_main(main)
