"""What a run writes reads back as the user meant: checkpoints of every mixed-precision level (validated, fine-tuned
from, resumed exactly, loaded by MindCV), validate.py on the whole split, a linear probe that changes the head alone,
the colour jitter that reaches the pipeline, and a misfit checkpoint that names what it holds."""
import json
import os

import mindspore as ms
import numpy as np
import pytest
from mindspore.dataset import vision

from conftest import random_images
from mindcv_resnext import create_model
from mindcv_resnext.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from mindcv_resnext.cli import run_guarded
from mindcv_resnext.commands import validate_command
from mindcv_resnext.config import resolve_config
from mindcv_resnext.engine.step import cast_network
from mindcv_resnext.builders import split_loader
from mindcv_resnext.engine.trainer import train
from test_data import write_image_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINING_STATE = ("opt.", "ema.", "scaler.", "accum.")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """3 classes x 16 train + 4 val images of 20x20 JPEGs."""
    return write_image_folder(tmp_path_factory.mktemp("tiny"), 3, {"train": 16, "val": 4})


def flags(data_dir, save_dir, *extra):
    return ["--model", "resnext11_2x16d", "--dataset", "imagefolder", "--data_dir", str(data_dir), "--image_resize",
            "16", "--crop_pct", "1", "--batch_size", "8", "--epoch_size", "2", "--lr", "0.05", "--warmup_epochs", "0",
            "--val_while_train", "true", "--num_parallel_workers", "1", "--ckpt_save_dir", str(save_dir),
            "--seed", "3", *extra]


def run(*args, log=lambda line: None):
    return train(resolve_config(list(args)), log=log)


class Killed(Exception):
    pass


def killed_in_epoch_2(line):
    if line.startswith("epoch 2/2 step"):
        raise Killed  # after epoch 1's checkpoints were written


def network_entries(path):
    """The network's tensors in a checkpoint file (training state and metadata left out), as numpy."""
    return {name: value.asnumpy() for name, value in read_checkpoint(str(path)).items()
            if hasattr(value, "asnumpy") and not name.startswith(TRAINING_STATE)}


def validate(capsys, *args):
    assert run_guarded(validate_command, [*args, "--json"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out.strip().splitlines()
    return out[-2], json.loads(out[-1])


# --- mixed precision: every level writes the plain network's names -------------------------------------------------

@pytest.mark.parametrize("amp_level", ["O0", "O1", "O2", "O3"])
def test_a_checkpoint_of_every_amp_level_validates_fine_tunes_and_resumes_exactly(amp_level, tiny, tmp_path,
                                                                                  monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # O1's graph rewrite writes rewritten_network/*.py into the working directory
    amp = ("--amp_level", amp_level, "--loss_scale", "128")
    straight = run(*flags(tiny, tmp_path / "straight", *amp))
    with pytest.raises(Killed):
        run(*flags(tiny, tmp_path / "run", *amp, "--log_interval", "2"), log=killed_in_epoch_2)
    latest = tmp_path / "run" / "latest.ckpt"
    plain_names = set(create_model("resnext11_2x16d", num_classes=3).parameters_dict())
    assert set(network_entries(latest)) == plain_names  # bn1.gamma, never bn1._backbone.gamma

    resumed = run(*flags(tiny, tmp_path / "run", *amp, "--resume", "auto"))
    assert resumed.epochs_run == 1 and straight.epochs_run == 2
    expected, got = network_entries(tmp_path / "straight" / "latest.ckpt"), network_entries(latest)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)

    line, metrics = validate(capsys, "--ckpt_path", str(latest))
    assert metrics["num_samples"] == metrics["split_samples"] == 12 and "on 12 of 12 samples" in line

    two_classes = write_image_folder(tmp_path / "two", 2, {"train": 8, "val": 2}, prefix="kind")
    lines = []
    tuned = run(*flags(two_classes, tmp_path / "tuned", *amp, "--ckpt_path", str(latest), "--epoch_size", "1"),
                log=lines.append)
    assert tuned.epochs_run == 1 and any("skipped classifier.weight" in line for line in lines)


def test_mindcv_loads_a_checkpoint_written_at_o2_and_computes_the_same_logits(tmp_path):
    mindcv = pytest.importorskip("mindcv")
    ms.set_seed(0)
    ours = create_model("resnext50_32x4d", stem_pool_pad="same")  # MindCV's stem pooling
    cast_network(ours, "O2")  # wraps every BatchNorm in place, as a training run at O2 does
    path = str(tmp_path / "o2.ckpt")
    save_checkpoint(path, ours, {"model": "resnext50_32x4d"})
    theirs = mindcv.create_model("resnext50_32x4d")
    missing, _ = ms.load_param_into_net(theirs, ms.load_checkpoint(path), strict_load=True)
    assert missing == []
    plain = create_model("resnext50_32x4d", stem_pool_pad="same", checkpoint_path=path)
    plain.set_train(False)
    theirs.set_train(False)
    x = random_images((2, 3, 64, 64), seed=5)
    np.testing.assert_allclose(plain(x).asnumpy(), theirs(x).asnumpy(), rtol=1e-4, atol=1e-4)


# --- validate.py scores the whole split; a linear probe changes the head alone ---------------------------------------

@pytest.fixture(scope="module")
def subset_run(tiny, tmp_path_factory):
    """One epoch trained on 8 of 48 training images (and validated on 8 of 12)."""
    save_dir = tmp_path_factory.mktemp("subset")
    summary = run(*flags(tiny, save_dir, "--num_samples", "8", "--epoch_size", "1"))
    assert summary.last["num_samples"] == 8
    return save_dir / "latest.ckpt"


def test_validate_scores_the_whole_split_of_a_run_trained_on_a_subset(subset_run, capsys):
    line, metrics = validate(capsys, "--ckpt_path", str(subset_run))
    assert (metrics["num_samples"], metrics["split_samples"]) == (12, 12) and "on 12 of 12 samples" in line
    line, limited = validate(capsys, "--ckpt_path", str(subset_run), "--num_samples", "5")
    assert (limited["num_samples"], limited["split_samples"]) == (5, 12)
    assert "on 5 of 12 samples" in line and "limited by num_samples 5" in line
    _, half = validate(capsys, "--ckpt_path", str(subset_run), "--val_amp_level", "O3")  # MindCV's key: fp16 eval
    assert half["num_samples"] == 12 and half["loss"] == pytest.approx(metrics["loss"], abs=0.05)
    assert half["loss"] != metrics["loss"]  # computed in fp16, not the fp32 of O0


def test_resume_opt_with_ckpt_path_continues_the_run_as_mindcv_resumes(subset_run, tiny, tmp_path):
    lines = []
    summary = run(*flags(tiny, tmp_path, "--num_samples", "8", "--ckpt_path", str(subset_run), "--resume_opt",
                         "true"), log=lines.append)
    assert summary.epochs_run == 1 and any(line.startswith(f"resumed from {subset_run}: epoch 1 done, global "
                                                              "step 1") for line in lines)


def test_a_checkpoint_written_with_the_old_o2_cell_paths_still_loads(subset_run, tmp_path):
    import mindspore as ms
    state = read_checkpoint(str(subset_run))
    old = [{"name": name.replace("bn1.", "bn1._backbone."), "data": value} for name, value in state.items()
           if hasattr(value, "asnumpy")]
    ms.save_checkpoint(old, str(tmp_path / "old.ckpt"))
    assert any("._backbone." in entry["name"] for entry in old)
    model = create_model("resnext11_2x16d", num_classes=3, checkpoint_path=str(tmp_path / "old.ckpt"))
    np.testing.assert_array_equal(model.bn1.gamma.asnumpy(), state["bn1.gamma"].asnumpy())


def test_a_linear_probe_leaves_every_backbone_entry_byte_equal(subset_run, tiny, tmp_path):
    lines = []
    run(*flags(tiny, tmp_path, "--ckpt_path", str(subset_run), "--freeze_backbone", "true", "--epoch_size", "1",
               "--lr", "0.5", "--drop_path_rate", "0.2"), log=lines.append)
    assert any(line.startswith("linear probe: the backbone is frozen and runs in inference mode") and
               "training classifier.weight, classifier.bias" in line for line in lines)
    before, after = network_entries(subset_run), network_entries(tmp_path / "latest.ckpt")
    assert before.keys() == after.keys()
    backbone = [name for name in before if not name.startswith("classifier.")]
    assert any("moving_mean" in name for name in backbone)
    for name in backbone:
        assert before[name].tobytes() == after[name].tobytes(), name
    assert not np.array_equal(before["classifier.weight"], after["classifier.weight"])


def test_a_checkpoint_of_another_model_says_which_model_it_holds(subset_run, tiny, tmp_path):
    with pytest.raises(CheckpointError, match="holds resnext11_2x16d with 3 classes, the network is "
                                              "resnext14_2x16d with 3"):
        run(*flags(tiny, tmp_path, "--model", "resnext14_2x16d", "--ckpt_path", str(subset_run)))
    assert not os.path.exists(tmp_path / "latest.ckpt")


# --- the colour jitter that reaches the pipeline --------------------------------------------------------------------

def jitter_factors(op, draws=40):
    """(brightness, contrast, saturation) factors of `draws` applications of a RandomColorAdjust, read back from
    the images: brightness scales the mean, contrast the grey spread about it, saturation the colour differences."""
    rng = np.random.default_rng(0)
    image = rng.integers(40, 90, (32, 32, 3)).astype(np.uint8)  # mid-range values: no clipping at x2.7

    def stats(img):
        img = img.astype(np.float64)
        grey = img @ [0.299, 0.587, 0.114]
        return grey.mean(), grey.std(), np.abs(img - grey[..., None]).mean()

    mean0, spread0, colour0 = stats(image)
    factors = []
    for seed in range(draws):
        ms.dataset.config.set_seed(seed)
        mean, spread, colour = stats(op(image))
        contrast = (spread / mean) / (spread0 / mean0)
        factors.append((mean / mean0, contrast, (colour / mean) / (colour0 / mean0) / contrast))
    return np.array(factors)


def colour_jitter_ops(config):
    return [op for op in split_loader(config, "train").image_ops() if isinstance(op, vision.RandomColorAdjust)]


def test_one_colour_jitter_value_reaches_the_pipeline_as_brightness_contrast_and_saturation(tiny):
    recipe = os.path.join(ROOT, "configs", "resnext", "resnext50_32x4d_cpu.yaml")  # color_jitter: 0.4, MindCV's
    config = resolve_config(["-c", recipe, "--data_dir", tiny, "--num_classes", "3", "--batch_size", "8"])
    [op] = colour_jitter_ops(config)
    assert (op.brightness, op.contrast, op.saturation, op.hue) == ((0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (0.0, 0.0))
    spread = jitter_factors(op).std(axis=0)
    assert (spread > 0.1).all(), spread  # each of the three varies (uniform on [0.6, 1.4]: std 0.23)

    [brightness_only] = colour_jitter_ops(resolve_config(["-c", recipe, "--data_dir", tiny, "--num_classes", "3",
                                                          "--batch_size", "8", "--color_jitter", "0.4,0,0"]))
    spread = jitter_factors(brightness_only).std(axis=0)
    assert spread[0] > 0.1 and (spread[1:] < 0.02).all(), spread  # the measurement tells them apart


def test_a_plain_mindcv_checkpoint_is_built_with_mindcvs_pooling_and_gives_mindcvs_logits(tmp_path, capsys):
    mindcv = pytest.importorskip("mindcv")
    ms.set_seed(3)
    theirs = mindcv.create_model("resnext50_32x4d")
    path = str(tmp_path / "resnext50_32x4d-mindcv.ckpt")
    ms.save_checkpoint(theirs, path)  # as MindCV publishes its weights: no metadata of ours
    ours = create_model("resnext50_32x4d", checkpoint_path=path)
    assert "read as MindCV's (stem_pool_pad 'same'" in capsys.readouterr().out
    assert ours.card.name == "resnext50_32x4d"
    ours.set_train(False)
    theirs.set_train(False)
    x = random_images((2, 3, 64, 64), seed=7)
    np.testing.assert_allclose(ours(x).asnumpy(), theirs(x).asnumpy(), rtol=1e-4, atol=1e-4)
