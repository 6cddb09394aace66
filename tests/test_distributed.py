"""Data-parallel runs under msrun with CPU workers: identical weights, disjoint shards, scaled lr, exact validation,
two "nodes" on loopback, and a failing worker that fails the job. Each run takes ~20 s of MindSpore start-up."""
import json
import os
import re
import socket
import subprocess
import sys

import pytest

from mindcv_resnext.data import ImageLoader, load_samples
from test_data import write_image_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
ENV = dict(os.environ, GLOG_v="3", PATH=BIN + os.pathsep + os.environ.get("PATH", ""), BIND_CORE="False")
# A job whose rank dies ends when msrun's scheduler declares the rank lost: after ~30 s by default, 10 s here
# (MindSpore's MS_NODE_TIMEOUT; the jobs below that lose a rank take ~20 s less each).
LOSES_A_RANK = {"MS_NODE_TIMEOUT": "10"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """3 classes x 16 train images, and an odd-sized validation split (3 x 5 = 15)."""
    return write_image_folder(tmp_path_factory.mktemp("ddp"), 3, {"train": 16, "val": 5})


def train_flags(data_dir, save_dir, *extra):
    return ["--model", "resnext11_2x16d", "--dataset", "imagefolder", "--data_dir", data_dir, "--image_resize", "16",
            "--crop_pct", "1", "--batch_size", "4", "--epoch_size", "1", "--lr", "0.05", "--lr_base_batch", "4",
            "--warmup_epochs", "0", "--val_while_train", "true", "--num_parallel_workers", "1",
            "--ckpt_save_dir", str(save_dir), "--device_target", "CPU", *extra]


def launch(args, log_dir, nodes=None, timeout=300, env_extra=None):
    env = dict(ENV, LOG_DIR=str(log_dir), MASTER_PORT=str(free_port()), **(nodes or {}), **(env_extra or {}))
    return subprocess.run(["bash", "scripts/launch_train.sh", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def worker_logs(log_dir):
    names = sorted(n for n in os.listdir(log_dir) if n.startswith("worker_"))
    return [open(os.path.join(log_dir, n)).read() for n in names]


def checksum(log):
    return float(re.search(r"weights fingerprint \(sum of the trainable weights, the same on every rank\): (\S+)",
                           log).group(1))


@pytest.fixture(scope="module")
def two_workers(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run2")
    result = launch(["2", *train_flags(data, out / "ckpt", "--log_interval", "1")], out / "logs")
    return result, out


def test_two_workers_end_with_identical_weights_and_split_the_data(two_workers):
    result, out = two_workers
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    logs = worker_logs(out / "logs")
    assert len(logs) == 2
    assert checksum(logs[0]) == checksum(logs[1])
    for rank, log in enumerate(logs):
        assert f"[rank {rank}/2] this process: CPU (graph mode, jit level O0), reading 24 of 48 training samples" in log
    assert os.path.isfile(out / "ckpt" / "latest.ckpt")  # written by rank 0


def test_lr_is_scaled_for_the_doubled_global_batch(two_workers):
    _, out = two_workers
    assert "2 x CPU, global batch 8 (4 per device), lr 0.1 (0.05 x 2)" in worker_logs(out / "logs")[0]


def test_the_train_loss_in_metrics_is_the_mean_over_every_ranks_batches(two_workers):
    _, out = two_workers
    losses = [[float(v) for v in re.findall(r" step \d+/\d+: loss ([\d.]+),", log)]
              for log in worker_logs(out / "logs")]
    assert [len(rank) for rank in losses] == [6, 6]  # 24 samples a rank, batch 4, one line a step
    train_loss = json.loads(open(out / "ckpt" / "metrics.jsonl").read().splitlines()[-1])["train_loss"]
    assert train_loss == pytest.approx(sum(losses[0] + losses[1]) / 12, abs=1e-4)
    assert train_loss != pytest.approx(sum(losses[0]) / 6, abs=1e-4)  # not rank 0's alone


def test_shards_of_two_ranks_are_disjoint_and_cover_the_set(data):
    samples = load_samples("imagefolder", data, "train")
    orders = [ImageLoader(samples, None, 4, True, num_shards=2, shard_id=r, seed=42).shard_order(0) for r in (0, 1)]
    assert not set(orders[0]) & set(orders[1]) and set(orders[0]) | set(orders[1]) == set(range(48))


def test_distributed_validation_equals_one_process_on_an_odd_set(two_workers, data):
    result, out = two_workers
    distributed = json.loads(open(out / "ckpt" / "metrics.jsonl").read().splitlines()[-1])
    single = subprocess.run([sys.executable, "validate.py", "--ckpt_path", str(out / "ckpt" / "latest.ckpt"),
                             "--data_dir", data, "--batch_size", "4", "--json"], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    metrics = json.loads(single.stdout.strip().splitlines()[-1])
    assert metrics["num_samples"] == distributed["num_samples"] == 15  # 8 + 7 over two ranks, none twice
    assert distributed["top1"] == pytest.approx(metrics["top1"], abs=1e-9)
    assert distributed["loss"] == pytest.approx(metrics["loss"], rel=1e-5)  # a sum over samples: exact up to fp32


def test_two_nodes_on_loopback_run_the_same_job(data, tmp_path):
    # msrun starts the scheduler on every node that owns master_addr, and on one machine both "nodes" own
    # 127.0.0.1. Node 1 is given an `ip` command that lists no addresses, as a second host would see it.
    other_host = tmp_path / "other_host_bin"
    other_host.mkdir()
    (other_host / "ip").write_text("#!/bin/sh\necho '[]'\n")
    (other_host / "ip").chmod(0o755)
    port = free_port()
    runs = []
    for node in (0, 1):
        env = dict(ENV, LOG_DIR=str(tmp_path / f"logs{node}"), MASTER_PORT=str(port), NODES="2",
                   NODE_RANK=str(node), MASTER_ADDR="127.0.0.1")
        if node == 1:
            env["PATH"] = f"{other_host}{os.pathsep}{env['PATH']}"
        runs.append(subprocess.Popen(["bash", "scripts/launch_train.sh", "1",
                                      *train_flags(data, tmp_path / f"ckpt{node}")], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(o[-1500:] for o in outputs)
    sums = [checksum(worker_logs(tmp_path / f"logs{node}")[0]) for node in (0, 1)]
    assert sums[0] == sums[1]


def test_a_worker_that_fails_makes_the_launcher_fail(data, tmp_path):
    result = launch(["2", *train_flags(data, tmp_path / "ckpt", "--model", "resnext11_2x16d", "--data_dir",
                                       str(tmp_path / "missing"))], tmp_path / "logs", env_extra=LOSES_A_RANK)
    assert result.returncode != 0
    assert any("data_dir not found" in log for log in worker_logs(tmp_path / "logs"))


def test_distribute_without_a_launcher_is_a_one_line_error(data, tmp_path):
    result = subprocess.run([sys.executable, "train.py", *train_flags(data, tmp_path), "--distribute", "true"],
                            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error: distribute is true but this process")


def rank_processes(marker):
    """pid -> RANK_ID of the running train.py processes whose command line contains `marker`."""
    ranks = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
            environ = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "train.py" in cmdline and marker in cmdline and "MS_ROLE=MS_WORKER" in environ:
            ranks[int(pid)] = next(v[8:] for v in environ if v.startswith("RANK_ID="))
    return ranks


def signal_rank_1_after_epoch_1(flags, save_dir, log_dir, number):
    """Launch a 2-rank job, send rank 1 alone `number` once epoch 1's metrics are written; the job's exit code."""
    import time
    env = dict(ENV, LOG_DIR=str(log_dir), MASTER_PORT=str(free_port()), **LOSES_A_RANK)
    job = subprocess.Popen(["bash", "scripts/launch_train.sh", "2", *flags], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics, deadline = save_dir / "metrics.jsonl", time.time() + 240
    while not (metrics.exists() and metrics.read_text().strip()) and time.time() < deadline and job.poll() is None:
        time.sleep(0.2)
    victims = [pid for pid, rank in rank_processes(str(save_dir)).items() if rank == "1"]
    assert victims, "rank 1 was not running after the first epoch"
    os.kill(victims[0], number)
    return job.wait(timeout=300)


def test_a_rank_killed_mid_run_fails_the_job_and_resume_auto_continues(data, tmp_path):
    import signal
    save_dir, metrics = tmp_path / "ckpt", tmp_path / "ckpt" / "metrics.jsonl"
    flags = train_flags(data, save_dir, "--epoch_size", "3", "--batch_size", "2", "--lr_base_batch", "2")
    assert signal_rank_1_after_epoch_1(flags, save_dir, tmp_path / "logs", signal.SIGKILL) != 0
    from mindcv_resnext.checkpoint import checkpoint_meta, read_checkpoint
    epoch = checkpoint_meta(read_checkpoint(str(save_dir / "latest.ckpt")))["epoch"]  # intact and readable
    assert 1 <= epoch < 3
    resumed = launch(["2", *flags, "--resume", "auto"], tmp_path / "logs_resumed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    logs = worker_logs(tmp_path / "logs_resumed")
    assert f"resumed from {save_dir / 'latest.ckpt'}: epoch {epoch} done" in logs[0]
    assert checksum(logs[0]) == checksum(logs[1])
    assert json.loads(metrics.read_text().splitlines()[-1])["epoch"] == 3


def test_sigterm_to_one_rank_stops_every_rank_at_the_same_step_and_resume_continues(data, tmp_path):
    import signal
    save_dir, metrics = tmp_path / "ckpt", tmp_path / "ckpt" / "metrics.jsonl"
    flags = train_flags(data, save_dir, "--epoch_size", "3", "--batch_size", "2", "--lr_base_batch", "2",
                        "--log_interval", "2")
    # rank 1 alone, as a node's pre-emption would; both exit 75, so the job fails
    assert signal_rank_1_after_epoch_1(flags, save_dir, tmp_path / "logs", signal.SIGTERM) != 0
    logs = worker_logs(tmp_path / "logs")
    stops = [re.search(r"stopped by (\S+(?: rank)?) at epoch (\d+) batch (\d+)/\d+ \(global step (\d+)\)", log)
             for log in logs]
    assert all(stops), [log[-500:] for log in logs]
    assert stops[1].group(1) == "SIGTERM" and stops[0].group(1) == "another rank"
    assert stops[0].groups()[1:] == stops[1].groups()[1:]  # the same epoch, batch and global step on both
    from mindcv_resnext.checkpoint import checkpoint_meta, read_checkpoint
    meta = checkpoint_meta(read_checkpoint(str(save_dir / "latest.ckpt")))
    assert meta["global_step"] == int(stops[0].group(4)) and meta["partial_epoch"]["batches"] == int(stops[0].group(3))
    resumed = launch(["2", *flags, "--resume", "auto"], tmp_path / "logs_resumed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    logs = worker_logs(tmp_path / "logs_resumed")
    assert checksum(logs[0]) == checksum(logs[1])
    assert json.loads(metrics.read_text().splitlines()[-1])["epoch"] == 3
