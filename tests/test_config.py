"""Recipes and flags: inheritance, overrides, types, unknown keys, lr scaling (MindCV parity: test_mindcv_parity.py)."""
import glob
import math
import os

import pytest

from mindcv_resnext.config import ConfigError, Config, load_recipe, resolve_config, scale_learning_rate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True))
DEVICE_KEYS = {"device_target", "mode", "distribute", "batch_size", "amp_level", "loss_scale", "loss_scale_type",
               "num_parallel_workers"}


def recipe(name):
    return os.path.join(ROOT, "configs", name)


@pytest.mark.parametrize("path", RECIPES, ids=[os.path.relpath(p, ROOT) for p in RECIPES])
def test_every_recipe_resolves(path):
    config = resolve_config(["-c", path])
    assert config.config == path and config.batch_size >= 1


def test_every_published_variant_has_an_ascend_gpu_and_cpu_recipe():
    from mindcv_resnext import list_models
    for model in list_models("resnext[15]*", group="published"):
        for device in ("ascend", "gpu", "cpu"):
            assert resolve_config(["-c", recipe(f"resnext/{model}_{device}.yaml")]).model == model
    for model in ("resnext29_8x64d", "resnext29_16x64d"):
        for dataset, classes in (("cifar10", 10), ("cifar100", 100)):
            config = resolve_config(["-c", recipe(f"cifar/{model}_{dataset}.yaml")])
            assert (config.model, config.dataset, config.num_classes) == (model, dataset, classes)


def test_device_recipes_differ_only_in_what_the_device_changes():
    ascend, gpu, cpu = (resolve_config(["-c", recipe(f"resnext/resnext50_32x4d_{d}.yaml")]) for d in
                        ("ascend", "gpu", "cpu"))
    for other in (gpu, cpu):
        changed = {k for k in ascend if k != "config" and ascend[k] != other[k]}
        assert changed and changed <= DEVICE_KEYS


def test_cifar_recipe_is_the_papers():
    config = resolve_config(["-c", recipe("cifar/resnext29_8x64d_cifar10.yaml")])
    assert (config.use_nesterov, config.momentum, config.lr, config.lr_base_batch, config.weight_decay) == \
        (True, 0.9, 0.1, 128, 0.0005)
    assert (config.epoch_size, config.multi_step_decay_milestones, config.decay_rate) == (300, (150, 225), 0.1)


def write(path, text):
    path.write_text(text)
    return str(path)


def test_later_bases_and_the_file_itself_override_earlier_keys(tmp_path):
    write(tmp_path / "a.yaml", "lr: 0.1\nbatch_size: 8\nepoch_size: 3\nwarmup_epochs: 1\n")
    write(tmp_path / "b.yaml", "lr: 0.2\nseed: 5\n")
    top = write(tmp_path / "top.yaml", "_base_: [a.yaml, b.yaml]\nseed: 6\n")
    config = resolve_config(["-c", top])
    assert (config.lr, config.batch_size, config.seed, config.epoch_size) == (0.2, 8, 6, 3)
    assert resolve_config(["-c", top, "--seed", "7", "--lr=0.3"]).seed == 7


def test_base_cycles_and_missing_bases_are_errors(tmp_path):
    write(tmp_path / "x.yaml", "_base_: y.yaml\n")
    write(tmp_path / "y.yaml", "_base_: x.yaml\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_recipe(str(tmp_path / "x.yaml"))
    write(tmp_path / "z.yaml", "_base_: gone.yaml\n")
    with pytest.raises(ConfigError, match=r"recipe not found: .*gone.yaml \(a _base_ of .*z.yaml\)"):
        load_recipe(str(tmp_path / "z.yaml"))


@pytest.mark.parametrize("flags", [["--scale", "0.08", "1.0"], ["--scale", "0.08,1.0"], ["--scale=0.08,1.0"],
                                   ["--scale", "0.08,", "1"]])
def test_list_flags_take_spaces_or_commas(flags):
    assert resolve_config(flags).scale == (0.08, 1.0)


@pytest.mark.parametrize("word, value", [("true", True), ("False", False), ("1", True), ("0", False),
                                         ("yes", True), ("no", False)])
def test_boolean_words(word, value):
    assert resolve_config(["--val_while_train", word]).val_while_train is value


def test_none_clears_an_optional_list():
    assert resolve_config(["--color_jitter", "none"]).color_jitter is None
    assert resolve_config(["--color_jitter", "0.1", "0.2", "0.3"]).color_jitter == (0.1, 0.2, 0.3)


def test_a_bare_boolean_flag_means_true():
    assert resolve_config(["--ema", "--seed", "3"]).ema is True


@pytest.mark.parametrize("flags, message", [
    (["--batch_size", "abc"], "batch_size must be a whole number, got 'abc'"),
    (["--batch_size", "2.5"], "batch_size must be a whole number"),
    (["--lr", "-1"], r"lr must be in \[0, inf\], got -1.0"),
    (["--opt", "adam"], "opt must be one of sgd, momentum, adamw, got 'adam'"),
    (["--val_while_train", "maybe"], "must be true/false"),
    (["--scale", "0.08"], "scale takes 2 values, got 1"),
    (["--batch_size", "8", "16"], "batch_size takes one value"),
    (["--batch_size"], "--batch_size needs a value"),
    (["--batchsize", "8"], "unknown flag --batchsize; did you mean 'batch_size'"),
    (["--dataset_download", "true"], "dataset_download=True is not supported here"),
    (["--pretrained", "--ckpt_path", "a.ckpt"], "pretrained and ckpt_path both give starting weights"),
    (["--resume", "auto", "--ckpt_path", "a.ckpt"], "not both"),
    (["--jit_level", "O2", "--device_target", "CPU"], "O2 exists on Ascend only"),
    (["--min_lr", "0.5", "--lr", "0.1"], "min_lr"),
    (["--scale", "0.5", "0.1"], "scale and ratio are ranges low, high"),
    (["--warmup_epochs", "5", "--epoch_size", "5"], r"warmup_epochs \(5.0\) must be below epoch_size \(5\)"),
    (["--loss", "BCE"], "loss='BCE' is not supported here"),
    (["positional"], "settings are given as --key value"),
])
def test_bad_flags_are_errors_that_say_what_is_accepted(flags, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(flags)


def test_yaml_values_are_checked_like_flags(tmp_path):
    with pytest.raises(ConfigError, match=r"recipe .*bad.yaml: hflip must be in \[0, 1\], got 1.5"):
        resolve_config(["-c", write(tmp_path / "bad.yaml", "hflip: 1.5\n")])
    with pytest.raises(ConfigError, match="unknown key 'learning_rate'"):
        resolve_config(["-c", write(tmp_path / "typo.yaml", "learning_rate: 0.1\n")])
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve_config(["-c", write(tmp_path / "broken.yaml", "lr: [0.1\n")])


@pytest.mark.parametrize("rule, world, accumulation, expected", [
    ("linear", 8, 1, 0.1), ("linear", 1, 1, 0.0125), ("linear", 2, 2, 0.05), ("sqrt", 2, 1, 0.1 * math.sqrt(0.25)),
    ("none", 1, 1, 0.1),
])
def test_learning_rate_follows_the_global_batch(rule, world, accumulation, expected):
    config = resolve_config(["--lr", "0.1", "--lr_base_batch", "256", "--lr_scale", rule, "--batch_size", "32",
                             "--gradient_accumulation_steps", str(accumulation)])
    lr, global_batch, _ = scale_learning_rate(config, world_size=world)
    assert global_batch == 32 * world * accumulation and lr == pytest.approx(expected)


def test_resolved_config_saved_as_yaml_loads_back_the_same(tmp_path):
    config = resolve_config(["-c", recipe("resnext/resnext50_32x4d_cpu.yaml"), "--scale", "0.2", "1"])
    saved = write(tmp_path / "resolved.yaml", config.to_yaml())
    again = resolve_config(["-c", saved])
    assert {k: v for k, v in again.items() if k != "config"} == {k: v for k, v in config.items() if k != "config"}
    assert isinstance(again, Config) and again.scale == (0.2, 1.0)
