"""Reliability: a run stopped by SIGTERM or Ctrl-C writes its exact position and resumes to the weights of a run that
was never stopped; so does a run killed (-9) mid-epoch, mid-validation or mid-save; a run whose loss stays non-finite
stops and never saves non-finite weights; an output folder that cannot be written is found before anything else; a
checkpoint write that fails keeps the previous file; a long run's memory does not grow."""
import json
import os
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest

from mindcv_resnext.checkpoint import CheckpointError, checkpoint_meta, read_checkpoint
from mindcv_resnext.config import ConfigError
from mindcv_resnext.engine.stopping import STOPPED_EXIT_CODE, NonFiniteLossError, TrainingStopped
from test_data import write_image_folder
from test_readback import ROOT, flags, network_entries, run

ENV = dict(os.environ, GLOG_v="3")


def signal_at(prefix, number=signal.SIGTERM):
    """A log callback that sends this process `number` when a line starts with `prefix`."""
    def log(line):
        if line.startswith(prefix):
            os.kill(os.getpid(), number)
    return log


def files_in(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def assert_same_weights(path, expected_path):
    expected, got = network_entries(expected_path), network_entries(path)
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """3 classes x 16 train + 4 val images of 20x20 JPEGs: 6 steps an epoch at batch 8."""
    return write_image_folder(tmp_path_factory.mktemp("tiny"), 3, {"train": 16, "val": 4})


def stochastic(data_dir, save_dir, *extra):
    """The runs that are stopped and resumed: with dropout and drop-path, whose masks must follow the step too."""
    return flags(data_dir, save_dir, "--drop_rate", "0.5", "--drop_path_rate", "0.3", *extra)


@pytest.fixture(scope="module")
def straight(tiny, tmp_path_factory):
    """Two epochs (6 steps each) never stopped."""
    out = tmp_path_factory.mktemp("straight")
    run(*stochastic(tiny, out, "--log_interval", "1"))
    return out


# --- SIGTERM and Ctrl-C ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_epoch_saves_the_exact_position_and_resume_ends_as_an_uninterrupted_run(number, straight, tiny,
                                                                                             tmp_path):
    with pytest.raises(TrainingStopped, match="--resume auto") as stopped:
        run(*stochastic(tiny, tmp_path, "--log_interval", "1"), log=signal_at("epoch 2/2 step 2/", number))
    # MindSpore relays a Ctrl-C that comes while it runs graphs as SIGTERM (engine/stopping.py)
    assert "stopped by SIGTERM at epoch 2 batch 2/6 (global step 8)" in str(stopped.value)
    assert "epoch_0002.ckpt" not in files_in(tmp_path) and not any(".tmp" in name for name in files_in(tmp_path))
    meta = checkpoint_meta(read_checkpoint(tmp_path / "latest.ckpt"))
    assert (meta["epoch"], meta["global_step"], meta["partial_epoch"]["batches"]) == (1, 8, 2)
    assert len(meta["partial_epoch"]["losses"]) == 2

    saved = (tmp_path / "latest.ckpt").read_bytes()  # elsewhere the position does not exist: an error, not a guess
    with pytest.raises(ConfigError, match=r"inside epoch 2 \(batch 2 of 6, batch_size 8 on 1 device\(s\)\); this run "
                                          r"has batch_size 4 on 1 device\(s\) \(12 batches an epoch\)"):
        run(*stochastic(tiny, tmp_path, "--log_interval", "1", "--resume", "auto", "--batch_size", "4"))
    assert (tmp_path / "latest.ckpt").read_bytes() == saved

    lines = []
    resumed = run(*stochastic(tiny, tmp_path, "--log_interval", "1", "--resume", "auto"), log=lines.append)
    assert any("epoch 1 done, and 2 batches of epoch 2, global step 8" in line for line in lines)
    assert resumed.epochs_run == 1
    # Bit for bit: the CPU kernels are deterministic, the data order and augmentation follow the epoch, the skipped
    # batches are drawn again (not trained on) so the rest come with the same random crops, and the dropout and
    # drop-path masks follow the step.
    assert_same_weights(tmp_path / "latest.ckpt", straight / "latest.ckpt")
    assert resumed.last["train_loss"] == pytest.approx(read_metrics(straight)[-1]["train_loss"], rel=1e-6)


def read_metrics(folder):
    with open(folder / "metrics.jsonl") as f:
        return [json.loads(line) for line in f]


def test_sigterm_to_train_py_exits_75_with_one_line_saying_how_to_resume(tiny, tmp_path):
    process = subprocess.Popen([sys.executable, "train.py", *flags(tiny, tmp_path, "--epoch_size", "20",
                                                                   "--log_interval", "1")],
                               cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith("epoch 2/20 step 3/"):
            process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == STOPPED_EXIT_CODE, "".join(output)
    last = output[-1].strip()
    assert last.startswith("interrupted: stopped by SIGTERM at epoch 2 batch ")
    assert last.endswith("--resume auto to continue")
    assert "Traceback" not in "".join(output)
    meta = checkpoint_meta(read_checkpoint(tmp_path / "latest.ckpt"))
    assert meta["epoch"] == 1 and 3 <= meta["partial_epoch"]["batches"] < 6


# --- kill -9 ---------------------------------------------------------------------------------------------------------

KILLER = """
import json, os, signal, sys
import mindspore as ms
from mindcv_resnext.cli import run_guarded
from mindcv_resnext.commands import train_command
from mindcv_resnext.engine import trainer

def die():
    os.kill(os.getpid(), signal.SIGKILL)

moment = sys.argv[1]
if moment == "mid-epoch":  # the 3rd step of epoch 2
    step = trainer.EpochProgress.step
    def counted(self, *args):
        step(self, *args)
        if self.epoch == 2 and self.done == 3:
            die()
    trainer.EpochProgress.step = counted
elif moment == "mid-validation":  # epoch 2's validation, after its first batch
    evaluate, calls = trainer.evaluate, []
    def killing(model, loader, *args):
        calls.append(1)
        if len(calls) == 2:
            epoch = loader.epoch
            def one_batch(e):
                yield next(iter(epoch(e)))
                die()
            loader.epoch = one_batch
        return evaluate(model, loader, *args)
    trainer.evaluate = killing
elif moment == "mid-checkpoint-write":  # epoch 2's latest.ckpt, half written
    save = ms.save_checkpoint
    def half(entries, path, append_dict=None, **options):
        save(entries, path, append_dict=append_dict, **options)
        if json.loads(append_dict["meta"])["epoch"] == 2:
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
            die()
    ms.save_checkpoint = half
sys.exit(run_guarded(train_command, sys.argv[2:]))
"""


@pytest.mark.parametrize("moment", ["mid-epoch", "mid-validation", "mid-checkpoint-write"])
def test_kill_9_at_any_moment_leaves_loadable_checkpoints_and_resume_ends_as_an_uninterrupted_run(moment, straight,
                                                                                                   tiny, tmp_path):
    killed = subprocess.run([sys.executable, "-c", KILLER, moment, *stochastic(tiny, tmp_path)], cwd=ROOT,
                            env=ENV, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    checkpoints = [name for name in files_in(tmp_path) if name.endswith(".ckpt") and not name.startswith(".")]
    assert "latest.ckpt" in checkpoints
    for name in checkpoints:  # every checkpoint a user can see loads, and is epoch 1's
        assert checkpoint_meta(read_checkpoint(tmp_path / name))["epoch"] == 1, name
    half_written = [name for name in files_in(tmp_path) if name.startswith(".")]
    assert bool(half_written) == (moment == "mid-checkpoint-write"), half_written
    resumed = run(*stochastic(tiny, tmp_path, "--resume", "auto"))
    assert resumed.epochs_run == 1
    assert_same_weights(tmp_path / "latest.ckpt", straight / "latest.ckpt")
    assert not [name for name in files_in(tmp_path) if name.startswith(".")]  # the half-written file is gone


# --- non-finite losses -----------------------------------------------------------------------------------------------

def test_consecutive_non_finite_steps_stop_the_run_naming_step_lr_and_checkpoint(tiny, tmp_path):
    with pytest.raises(NonFiniteLossError) as stopped:
        run(*flags(tiny, tmp_path, "--lr", "1e30", "--opt", "sgd", "--max_nonfinite_steps", "3",
                   "--log_interval", "1"))
    message = str(stopped.value)
    assert "3 consecutive steps up to global step 4 (lr 8.536e+29)" in message  # steps 2-4 overflowed
    assert "last good checkpoint is none" in message
    assert "latest.ckpt" not in files_in(tmp_path) and "best.ckpt" not in files_in(tmp_path)


def test_non_finite_weights_are_never_saved_and_the_last_checkpoint_stays(straight, tiny, tmp_path):
    out = tmp_path / "run"
    run(*flags(tiny, out, "--epoch_size", "1"))
    before = {name: (out / name).read_bytes() for name in ("latest.ckpt", "best.ckpt")}
    with pytest.raises(NonFiniteLossError, match="not finite .* not saved"):  # the updates are applied regardless
        run(*flags(tiny, out, "--resume", "auto", "--lr", "1e30", "--opt", "sgd", "--drop_overflow_update",
                   "false", "--max_nonfinite_steps", "0"))
    assert {name: (out / name).read_bytes() for name in before} == before
    assert all(np.isfinite(value).all() for value in network_entries(out / "latest.ckpt").values())


# --- disk and paths ----------------------------------------------------------------------------------------------

def test_an_output_folder_that_cannot_be_made_is_found_before_the_data(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(CheckpointError, match="a_file is a file, not a folder"):
        run(*flags(tmp_path / "no_data_here", blocker / "out"))  # the data folder does not exist either


def test_a_checkpoint_write_that_fails_keeps_the_previous_file_and_says_so(tiny, tmp_path):
    """A real failing write: the process's file-size limit (RLIMIT_FSIZE) below a checkpoint's size, as a full disk
    would fail it (EFBIG here, ENOSPC there: the same path through save_checkpoint)."""
    run(*flags(tiny, tmp_path, "--epoch_size", "1"))
    latest = tmp_path / "latest.ckpt"
    before = latest.read_bytes()
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write instead of a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) // 2, limits[1]))
    try:
        with pytest.raises(CheckpointError, match="the previous file there is unchanged"):
            run(*flags(tiny, tmp_path, "--resume", "auto"))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)
    assert latest.read_bytes() == before and not any(".tmp" in name for name in files_in(tmp_path))


# --- soak ------------------------------------------------------------------------------------------------------------

SOAK_EPOCHS, SOAK_GROWTH_MB = 60, 24

SOAKER = """
import json, sys
from mindcv_resnext.config import resolve_config
from mindcv_resnext.engine.trainer import train

def resident_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

resident = {}
def measure(line):
    if line.startswith("epoch ") and "train loss" in line:
        resident[int(line.split()[1].split("/")[0])] = resident_mb()

train(resolve_config(sys.argv[1:]), log=measure)
print(json.dumps(resident))
"""


def test_a_long_run_with_validation_and_checkpoints_every_epoch_does_not_grow_in_memory(tmp_path):
    """180 steps (60 epochs of 3), each epoch validated and checkpointed (latest, best, epoch files pruned to 2), in
    a process of its own as a user's run is: the resident memory after epoch 60 is within SOAK_GROWTH_MB of that
    after epoch 10, once every cache is warm."""
    data = write_image_folder(tmp_path / "data", 3, {"train": 8, "val": 2})
    soak = subprocess.run([sys.executable, "-c", SOAKER, *flags(data, tmp_path / "out", "--epoch_size",
                                                                 str(SOAK_EPOCHS), "--keep_checkpoint_max", "2",
                                                                 "--log_interval", "3")],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert soak.returncode == 0, soak.stderr[-2000:]
    resident = {int(epoch): mb for epoch, mb in json.loads(soak.stdout.strip().splitlines()[-1]).items()}
    assert len(resident) == SOAK_EPOCHS
    growth = resident[SOAK_EPOCHS] - resident[10]
    print(f"soak: RSS {resident[1]:.0f} MB after epoch 1, {resident[10]:.0f} after 10, {resident[SOAK_EPOCHS]:.0f} "
          f"after {SOAK_EPOCHS} (+{growth:.1f} MB)")
    assert growth < SOAK_GROWTH_MB, resident
    assert sorted(n for n in files_in(tmp_path / "out") if n.startswith("epoch_")) == \
        [f"epoch_{SOAK_EPOCHS - 1:04d}.ckpt", f"epoch_{SOAK_EPOCHS:04d}.ckpt"]
