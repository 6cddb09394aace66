"""The training engine: schedules, loss, optimizer groups, the compiled step, and whole runs (checkpoints, resume,
fine-tuning, validate.py) on a tiny model and generated images."""
import json
import math
import os

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from conftest import random_images
from mindcv_resnext.checkpoint import CheckpointError, checkpoint_meta, read_checkpoint, save_checkpoint
from mindcv_resnext.cli import run_guarded
from mindcv_resnext.commands import validate_command
from mindcv_resnext.config import resolve_config
from mindcv_resnext.engine.ema import EMA
from mindcv_resnext.engine.loss import CrossEntropy
from mindcv_resnext.engine.optim import create_optimizer, parameter_groups
from mindcv_resnext.engine.schedule import learning_rates
from mindcv_resnext.engine.step import TrainStep
from mindcv_resnext.engine.trainer import train
from test_data import write_cifar, write_image_folder

# --- schedules ---------------------------------------------------------------------------------------------------


def test_cosine_with_warmup_follows_its_closed_form():
    rates = learning_rates("cosine_decay", 0.4, steps_per_epoch=10, epochs=5, min_lr=0.01, warmup_epochs=1,
                           warmup_factor=0.1)
    assert len(rates) == 50
    for step in range(10):
        assert rates[step] == pytest.approx(0.4 * (0.1 + 0.9 * step / 10))
    for step in range(10, 50):
        assert rates[step] == pytest.approx(0.01 + 0.39 * 0.5 * (1 + math.cos(math.pi * (step - 10) / 40)))


def test_step_schedules_start_where_the_warmup_ends_as_in_mindcv():
    multi = learning_rates("multi_step_decay", 0.1, 1, 40, warmup_epochs=3, milestones=(30,), decay_rate=0.1)
    assert multi[32] == pytest.approx(0.1) and multi[33] == pytest.approx(0.01)  # 30 epochs after a 3-epoch warmup
    step = learning_rates("step_decay", 1.0, 1, 110, warmup_epochs=2, decay_rate=0.5)
    assert step[101] == 1.0 and step[102] == 0.5  # MindCV's default period, 100 epochs


def test_step_multistep_constant_and_stair_schedules():
    step = learning_rates("step_decay", 1.0, 4, 9, decay_epochs=3, decay_rate=0.5)
    assert step[0] == 1.0 and step[12] == 0.5 and step[24] == 0.25 and step[35] == 0.25
    multi = learning_rates("multi_step_decay", 0.1, 2, 8, milestones=(3, 6), decay_rate=0.1)
    np.testing.assert_allclose(multi[[0, 5, 6, 11, 12, 15]], [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)
    assert (learning_rates("constant", 0.3, 3, 2) == np.float32(0.3)).all()
    stair = learning_rates("cosine_decay", 1.0, 5, 4, epoch_stair=True)
    assert len(set(stair[5:10])) == 1 and stair[5] < stair[4]


# --- loss and optimizer groups -------------------------------------------------------------------------------------

def test_cross_entropy_with_label_smoothing_and_soft_targets():
    logits = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    labels = np.array([0, 3, 4, 1], np.int32)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    targets = np.full((4, 5), 0.02, np.float32)
    targets[np.arange(4), labels] = 0.92
    expected = -(targets * log_p).sum(1).mean()
    loss = CrossEntropy(5, label_smoothing=0.1)
    assert float(loss(ms.Tensor(logits), ms.Tensor(labels)).asnumpy()) == pytest.approx(expected, rel=1e-5)
    assert float(loss(ms.Tensor(logits), ms.Tensor(targets)).asnumpy()) == pytest.approx(expected, rel=1e-5)


def test_no_weight_decay_on_bn_and_bias(cifar_net):
    groups = parameter_groups(cifar_net.trainable_params(), 1e-4, "norm_and_bias")
    decayed = {p.name for p in groups[0]["params"]}
    assert "layer1.0.conv2.weight" in decayed and "classifier.weight" in decayed
    assert not any(n.endswith(("gamma", "beta", "bias")) for n in decayed)
    assert {p.name for p in groups[1]["params"]} >= {"bn1.gamma", "classifier.bias"} and groups[1]["weight_decay"] == 0


# --- the compiled step --------------------------------------------------------------------------------------------

def dense_net(seed=0):
    ms.set_seed(seed)
    return nn.SequentialCell([nn.Dense(6, 8), nn.ReLU(), nn.Dense(8, 3)])


def plain_step(net, lr=0.1, **options):
    optimizer = create_optimizer(net.trainable_params(), "momentum", lr, momentum=0.0)
    return TrainStep(net, CrossEntropy(3), optimizer, **options), optimizer


def weights(net):
    return np.concatenate([p.asnumpy().ravel() for p in net.trainable_params()])


def test_loss_goes_down_on_a_small_set():
    ms.set_seed(0)
    from mindcv_resnext import create_model
    net = create_model("resnext11_2x16d", num_classes=3)
    optimizer = create_optimizer(net.trainable_params(), "momentum", 0.05, 0.9)
    step = TrainStep(net, CrossEntropy(3), optimizer)
    net.set_train(True)
    images, labels = random_images((12, 3, 16, 16)), ms.Tensor(np.arange(12) % 3, ms.int32)
    losses = [float(step(images, labels)[0].asnumpy()) for _ in range(8)]
    assert losses[-1] < 0.5 * losses[0]


def test_recomputed_blocks_train_to_the_same_weights():
    """recompute trades memory for a second forward: the losses, weights and BatchNorm moving statistics stay the
    same. (MindSpore's recompute runs a block's operators again: a BatchNorm that updates its statistics inside its
    operator updated them twice a step, 1.19 apart after two steps here, until recompute_blocks switched them.)"""
    from mindcv_resnext import create_model
    from mindcv_resnext.engine.step import recompute_blocks
    images, labels = random_images((4, 3, 16, 16)), ms.Tensor(np.arange(4) % 3, ms.int32)
    results = []
    for recompute in (False, True):
        ms.set_seed(0)
        net = create_model("resnext11_2x16d", num_classes=3)
        net.set_train(True)
        if recompute:
            recompute_blocks(net)
        step = TrainStep(net, CrossEntropy(3), create_optimizer(net.trainable_params(), "momentum", 0.05, 0.9))
        losses = [float(step(images, labels)[0].asnumpy()) for _ in range(2)]
        statistics = np.concatenate([p.asnumpy().ravel() for p in net.get_parameters() if "moving_" in p.name])
        results.append((losses, weights(net), statistics))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(results[1][2], results[0][2], rtol=1e-5, atol=1e-6)


def test_gradient_accumulation_equals_one_step_on_the_whole_batch():
    x = np.random.default_rng(1).standard_normal((8, 6)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1], np.int32)
    whole, _ = plain_step(whole_net := dense_net())
    whole(ms.Tensor(x), ms.Tensor(y))
    halves, _ = plain_step(halves_net := dense_net(), accumulation_steps=2)
    _, finite = halves(ms.Tensor(x[:4]), ms.Tensor(y[:4]))
    assert np.array_equal(weights(halves_net), weights(dense_net()))  # nothing applied after the first half
    halves(ms.Tensor(x[4:]), ms.Tensor(y[4:]))
    np.testing.assert_allclose(weights(halves_net), weights(whole_net), rtol=1e-5, atol=1e-6)


def assert_a_bad_batch_is_skipped(step, net, bad_value, at, then=lambda: None):
    """A batch with one bad value changes no weight and says finite False (then `then()` checks more); a good batch
    then trains."""
    before = weights(net)
    x = np.ones((4, 6), np.float32)
    x[at] = bad_value
    _, finite = step(ms.Tensor(x), ms.Tensor(np.zeros(4, np.int32)))
    assert not bool(finite.asnumpy())
    np.testing.assert_array_equal(weights(net), before)
    then()
    _, finite = step(ms.Tensor(np.ones((4, 6), np.float32)), ms.Tensor(np.zeros(4, np.int32)))
    assert bool(finite.asnumpy()) and not np.array_equal(weights(net), before)


def test_overflowed_steps_are_skipped_and_the_dynamic_scale_halves():
    net = dense_net()
    step, _ = plain_step(net, loss_scale=2.0 ** 16, dynamic_loss_scale=True)

    def scale_halved():
        assert float(step.scaler.scale_value.asnumpy()) == 2.0 ** 15
    assert_a_bad_batch_is_skipped(step, net, np.inf, (0, 0), then=scale_halved)


@pytest.mark.parametrize("low_precision", [False, True])
def test_a_non_finite_fp32_step_without_loss_scale_is_skipped(low_precision):
    """With no scale the fp32 step checks its loss and its first and last gradients, not every gradient (that
    cost 10% of a CPU step); low_precision (fp16 compute) checks them all. Either way a nan image, whose ReLU leaves
    the loss finite, changes no weight."""
    net = dense_net()
    step, _ = plain_step(net, low_precision=low_precision)
    assert_a_bad_batch_is_skipped(step, net, np.nan, (1, 2))


def test_drop_overflow_update_false_applies_an_overflowed_step_as_mindcv_does():
    x = np.ones((4, 6), np.float32)
    x[0, 0] = np.inf
    for drop, changed in ((True, False), (False, True)):
        net = dense_net()
        step, _ = plain_step(net, loss_scale=128.0, drop_overflow_update=drop)
        before = weights(net)
        _, finite = step(ms.Tensor(x), ms.Tensor(np.zeros(4, np.int32)))
        assert not bool(finite.asnumpy()) and (not np.array_equal(weights(net), before, equal_nan=True)) is changed


@pytest.mark.parametrize("flags, exempt", [
    ([], set()),                                                      # MindCV's default: everything decays
    (["--weight_decay_filter", "auto"], {"gamma", "beta"}),           # MindSpore's own filter: BN only
    (["--weight_decay_filter", "norm_and_bias"], {"gamma", "beta", "bias"}),
    (["--filter_bias_and_bn", "true"], {"gamma", "beta", "bias"}),    # the alias
])
def test_weight_decay_filter_decides_what_the_optimizer_decays(flags, exempt, cifar_net):
    from mindcv_resnext.engine.trainer import optimizer_from_config
    optimizer = optimizer_from_config(resolve_config(["--weight_decay", "1e-4", *flags]), cifar_net.trainable_params(),
                                      0.1)
    decayed = {p.name for p, flag in zip(optimizer.parameters, optimizer.decay_flags) if flag}
    names = {p.name for p in cifar_net.trainable_params()}
    assert decayed == {n for n in names if n.rsplit(".", 1)[1] not in exempt}
    assert "classifier.bias" in names and any(n.endswith("gamma") for n in names)


def test_clipping_bounds_the_update_and_ema_follows_the_weights():
    net = dense_net()
    step, _ = plain_step(net, lr=1.0, clip_norm=0.01, ema=EMA(net, 0.9))
    before = weights(net)
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32) * 100
    step(ms.Tensor(x), ms.Tensor(np.array([0, 1, 2, 0], np.int32)))
    assert np.linalg.norm(weights(net) - before) == pytest.approx(0.01, rel=1e-4)  # SGD, lr 1: the clipped gradient
    ema = np.concatenate([p.asnumpy().ravel() for p in step.ema.averages
                          if p.name[4:] in {q.name for q in net.trainable_params()}])
    np.testing.assert_allclose(ema, 0.9 * before + 0.1 * weights(net), rtol=1e-5, atol=1e-7)


# --- whole runs ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """3 classes x 16 train + 4 val images of 20x20 JPEGs; the class is the dominant colour, so it is learnable."""
    return write_image_folder(tmp_path_factory.mktemp("tiny"), 3, {"train": 16, "val": 4})


def run_config(data_dir, save_dir, *flags):
    return resolve_config(["--model", "resnext11_2x16d", "--dataset", "imagefolder", "--data_dir", data_dir,
                           "--image_resize", "16", "--crop_pct", "1", "--batch_size", "8", "--epoch_size", "2",
                           "--lr", "0.05", "--warmup_epochs", "1", "--val_while_train", "true",
                           "--num_parallel_workers", "1", "--ckpt_save_dir", str(save_dir), "--seed", "3",
                           "--ema", "true", "--ema_decay", "0.9", "--dynamic_loss_scale", "true",
                           "--loss_scale", "128", "--color_jitter", "0.3", *flags])


def final_state(save_dir):
    state = read_checkpoint(os.path.join(save_dir, "latest.ckpt"))
    return {k: v.asnumpy() for k, v in state.items() if hasattr(v, "asnumpy")}


@pytest.fixture(scope="module")
def straight_run(tiny_folder, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("straight")
    summary = train(run_config(tiny_folder, save_dir), log=lambda line: None)
    return save_dir, summary


def test_checkpoint_is_self_describing(straight_run):
    save_dir, summary = straight_run
    meta = checkpoint_meta(read_checkpoint(os.path.join(save_dir, "latest.ckpt")))
    assert (meta["model"], meta["num_classes"], meta["class_names"]) == ("resnext11_2x16d", 3,
                                                                           ["class0", "class1", "class2"])
    assert meta["eval_transform"]["image_resize"] == 16 and meta["eval_transform"]["crop_pct"] == 1.0
    assert (meta["epoch"], meta["global_step"]) == (2, 12)
    assert sorted(os.listdir(save_dir)) == ["best.ckpt", "config.yaml", "curves.png", "epoch_0001.ckpt",
                                            "epoch_0002.ckpt", "latest.ckpt", "metrics.jsonl", "run.json",
                                            "train.log"]
    records = [json.loads(line) for line in open(os.path.join(save_dir, "metrics.jsonl"))]
    assert [r["epoch"] for r in records] == [1, 2] and all(0 <= r["top1"] <= 1 for r in records)
    run = json.load(open(os.path.join(save_dir, "run.json")))  # what the recipe does not say, resolved
    assert (run["device_target"], run["jit_level"], run["devices"], run["global_batch"]) == ("CPU", "O0", 1, 8)
    assert (run["lr"], run["lr_factor"], run["steps_per_epoch"], run["loss_scale_type"]) == (0.05, 1.0, 6, "dynamic")


class Killed(Exception):
    pass


def test_resume_continues_exactly_where_the_run_stopped(straight_run, tiny_folder, tmp_path):
    save_dir, _ = straight_run

    def killed_during_epoch_2(line):
        if line.startswith("epoch 2/2 step"):
            raise Killed  # after epoch 1's checkpoint, in the middle of epoch 2

    with pytest.raises(Killed):
        train(run_config(tiny_folder, tmp_path, "--log_interval", "2"), log=killed_during_epoch_2)
    assert checkpoint_meta(read_checkpoint(os.path.join(tmp_path, "latest.ckpt")))["epoch"] == 1
    # --resume auto finds latest.ckpt and reads the epoch and step from it (not from a file name).
    summary = train(run_config(tiny_folder, tmp_path, "--resume", "auto"), log=lambda line: None)
    assert summary.epochs_run == 1
    straight, resumed = final_state(save_dir), final_state(tmp_path)
    assert straight.keys() == resumed.keys()
    for name in straight:
        np.testing.assert_allclose(resumed[name], straight[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_fine_tuning_replaces_the_head_and_freeze_backbone_keeps_the_rest(straight_run, tmp_path):
    save_dir, _ = straight_run
    two_classes = write_image_folder(tmp_path / "two", 2, {"train": 8, "val": 2}, prefix="kind")
    lines = []
    config = run_config(two_classes, tmp_path / "tuned", "--ckpt_path", os.path.join(save_dir, "latest.ckpt"),
                        "--freeze_backbone", "true", "--epoch_size", "1", "--warmup_epochs", "0", "--ema", "false")
    model = train(config, log=lines.append).model
    assert any("skipped classifier.weight" in line and "(3, 1024) in the file, (2, 1024)" in line for line in lines)
    source = final_state(save_dir)
    tuned = {p.name: p.asnumpy() for p in model.get_parameters()}
    assert tuned["classifier.weight"].shape == (2, 1024)
    for name in ("conv1.weight", "layer3.0.conv2.weight", "bn1.gamma"):
        np.testing.assert_array_equal(tuned[name], source[name])


def test_validate_scores_every_sample_and_matches_a_count_in_numpy(straight_run, tiny_folder, capsys):
    save_dir, _ = straight_run
    ckpt = os.path.join(save_dir, "best.ckpt")
    assert run_guarded(validate_command, ["--ckpt_path", ckpt, "--data_dir", tiny_folder, "--json",
                                          "--batch_size", "5"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["num_samples"] == 12 and result["top5"] is None  # 3 classes: no top-5

    from mindcv_resnext import create_model
    from mindcv_resnext.data import TransformSettings, create_loader
    model = create_model("resnext11_2x16d", num_classes=3, checkpoint_path=ckpt)
    model.set_train(False)
    loader = create_loader("imagefolder", tiny_folder, "val", TransformSettings(image_resize=16, crop_pct=1.0),
                           batch_size=12)
    images, labels = next(loader.epoch(0))
    predicted = model(ms.Tensor(images)).asnumpy().argmax(1)
    assert result["top1"] == pytest.approx((predicted == labels).mean())


def test_validate_that_scores_nothing_is_an_error(straight_run, tiny_folder, capsys):
    save_dir, _ = straight_run
    assert run_guarded(validate_command, ["--ckpt_path", os.path.join(save_dir, "latest.ckpt"), "--data_dir",
                                          tiny_folder, "--eval_resize", "8", "--image_resize", "200"]) == 1
    # (a crop of 200 from 8 pixels: MindSpore pads a crop up to 3x the image, no further)
    assert "error: no image of" in capsys.readouterr().err


def test_validate_with_a_missing_checkpoint_is_an_error_not_random_weights(tmp_path, capsys):
    assert run_guarded(validate_command, ["--ckpt_path", str(tmp_path / "nowhere.ckpt")]) == 1
    assert "error: checkpoint not found" in capsys.readouterr().err


def test_an_interrupted_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch, cifar_net):
    path = str(tmp_path / "latest.ckpt")
    save_checkpoint(path, cifar_net, {"epoch": 1})
    before = open(path, "rb").read()

    def dies_midway(entries, file_name, **kwargs):
        with open(file_name, "wb") as f:
            f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(ms, "save_checkpoint", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, cifar_net, {"epoch": 2})
    assert open(path, "rb").read() == before and os.listdir(tmp_path) == ["latest.ckpt"]


def test_resuming_from_a_weights_only_checkpoint_is_an_error(tmp_path, tiny_folder, cifar_net):
    plain = str(tmp_path / "plain.ckpt")
    ms.save_checkpoint(cifar_net, plain)
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        train(run_config(tiny_folder, tmp_path / "out", "--resume", plain, "--model", "resnext11_2x16d"),
              log=lambda line: None)


def test_cifar_records_feed_the_training_loop(tmp_path):
    write_cifar(str(tmp_path / "cifar"), "cifar100", "python")
    config = resolve_config(["--model", "resnext11_2x16d", "--dataset", "cifar100", "--data_dir",
                             str(tmp_path / "cifar"), "--image_resize", "32", "--batch_size", "3", "--epoch_size", "1",
                             "--warmup_epochs", "0", "--val_while_train", "true", "--num_parallel_workers", "1",
                             "--mean", "125.3,123.0,113.9", "--std", "63.0,62.1,66.7", "--crop_pct", "1",
                             "--mixup", "0.2", "--label_smoothing", "0.1", "--ckpt_save_dir", str(tmp_path / "out")])
    summary = train(config, log=lambda line: None)
    assert summary.epochs_run == 1 and summary.last["num_samples"] == 3
    assert checkpoint_meta(read_checkpoint(str(tmp_path / "out" / "latest.ckpt")))["num_classes"] == 100


# --- what the trainer's parts do ----------------------------------------------------------------------------------

def test_the_ema_is_swapped_in_for_evaluation_and_the_weights_come_back_and_keep_training():
    net = dense_net()
    ema = EMA(net, 0.5)
    step, _ = plain_step(net, lr=0.5, ema=ema)
    x, y = ms.Tensor(np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)), ms.Tensor(
        np.array([0, 1, 2, 0], np.int32))
    step(x, y)  # compiles the step: from here on, weights may only be written in place
    own, averages = weights(net), np.concatenate([p.asnumpy().ravel() for p in ema.averages])
    with ema.applied(net):
        np.testing.assert_array_equal(weights(net), averages)
    np.testing.assert_array_equal(weights(net), own)
    step(x, y)
    assert not np.array_equal(weights(net), own)  # the compiled step still updates the parameters it restored


def validate_json(capsys, *argv):
    assert run_guarded(validate_command, [*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_validate_ema_scores_the_average_the_run_scored(straight_run, tiny_folder, capsys):
    save_dir, summary = straight_run
    latest = os.path.join(save_dir, "latest.ckpt")
    ema = validate_json(capsys, "--ckpt_path", latest, "--data_dir", tiny_folder, "--ema")
    plain = validate_json(capsys, "--ckpt_path", latest, "--data_dir", tiny_folder)
    assert ema["top1"] == pytest.approx(summary.last["ema_top1"]) and plain["top1"] == summary.last["top1"]
    assert ema["loss"] != plain["loss"]


def test_validate_takes_the_checkpoint_and_ema_from_its_command_line_not_from_a_recipe(straight_run, tmp_path,
                                                                                       capsys):
    save_dir, _ = straight_run
    recipe = tmp_path / "config.yaml"  # the run's own resolved config (ema: true), with a resume in it
    recipe.write_text(open(os.path.join(save_dir, "config.yaml")).read().replace("resume: ''", "resume: auto"))
    latest = os.path.join(save_dir, "latest.ckpt")
    from_recipe = validate_json(capsys, "-c", str(recipe), "--ckpt_path", latest)
    plain = validate_json(capsys, "--ckpt_path", latest)  # the weights, not the EMA; the recipe's batch size (8)
    assert from_recipe.pop("loss") == pytest.approx(plain.pop("loss"), rel=1e-6)  # sums the loss in other batches
    assert from_recipe == plain
    assert run_guarded(validate_command, ["-c", str(recipe)]) == 2
    assert "--ckpt_path is required" in capsys.readouterr().err


@pytest.mark.parametrize("policy, kept", [("latest_k", [4, 5]), ("top_k", [2, 4])])
def test_epoch_checkpoints_are_pruned_by_policy(policy, kept, tmp_path):
    from mindcv_resnext.engine.trainer import prune_epoch_checkpoints
    top1 = {1: 0.1, 2: 0.9, 3: 0.2, 4: 0.8, 5: 0.3}
    for epoch in top1:
        (tmp_path / f"epoch_{epoch:04d}.ckpt").write_text("x")
    prune_epoch_checkpoints(str(tmp_path), 2, policy, [dict(epoch=e, top1=t) for e, t in top1.items()])
    assert sorted(int(p.name[6:10]) for p in tmp_path.iterdir()) == kept


def test_gradient_accumulation_through_the_trainer(tiny_folder, tmp_path):
    summary = train(run_config(tiny_folder, tmp_path, "--batch_size", "4", "--gradient_accumulation_steps", "2",
                               "--epoch_size", "1", "--warmup_epochs", "0", "--ema", "false"), log=lambda line: None)
    run = json.load(open(tmp_path / "run.json"))
    meta = checkpoint_meta(read_checkpoint(str(tmp_path / "latest.ckpt")))
    assert (run["global_batch"], run["steps_per_epoch"], meta["global_step"]) == (8, 6, 6)  # 12 batches of 4
    assert np.isfinite(summary.last["train_loss"])


def test_validate_refuses_data_with_other_classes(straight_run, tmp_path, capsys):
    save_dir, _ = straight_run
    other = write_image_folder(tmp_path / "other", 2, {"train": 1, "val": 2}, prefix="kind")
    assert run_guarded(validate_command, ["--ckpt_path", os.path.join(save_dir, "latest.ckpt"), "--data_dir",
                                          other]) == 1
    assert f"error: the classes of {other} differ from those" in capsys.readouterr().err


def test_a_run_writes_train_log_and_says_what_it_does(straight_run):
    save_dir, _ = straight_run
    log = open(os.path.join(save_dir, "train.log")).read()
    for line in ("resnext11_2x16d, 3 classes, from scratch", "global batch 8 (8 per device), lr 0.05",
                 "epoch 2/2: train loss", "epoch 2/2: val top-1", "done: 2 epoch(s) in"):
        assert line in log
