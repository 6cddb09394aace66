"""MindCV parity: MindCV's keys mean here what they mean there, its defaults are ours except where listed with a
reason, our Ascend recipes resolve to MindCV's recipes key by key except the deviations their comments list, and
MindCV's own recipe file trains and validates here as MindCV's README runs it.

The tables are MindCV's own values (mindspore-lab/mindcv at 51b0636: config.py and configs/resnext/*_ascend.yaml)."""
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from mindcv_resnext.config import ALIASES, SCHEMA_BY_NAME, ConfigError, lookup_key, resolve_config, \
    scale_learning_rate
from mindcv_resnext.engine.step import AUTO_DYNAMIC_SCALE, TrainStep, loss_scaling
from mindcv_resnext.runtime import available_devices, jit_options, resolve_device, resolve_jit_level
from test_data import write_image_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, GLOG_v="3")

MINDCV_DEFAULTS = {  # every argument of MindCV's config.py, with its default
    "mode": 0, "distribute": False, "val_while_train": False, "val_interval": 1, "log_interval": 100, "seed": 42,
    "device_target": "Ascend",
    "dataset": "imagenet", "data_dir": "./", "train_split": "train", "val_split": "val", "dataset_download": False,
    "num_parallel_workers": 8, "shuffle": True, "num_samples": None, "batch_size": 128, "drop_remainder": True,
    "image_resize": 224, "scale": (0.08, 1.0), "ratio": (0.75, 1.333), "hflip": 0.5, "vflip": 0.0,
    "color_jitter": 0.4, "interpolation": "bilinear", "auto_augment": None, "aug_splits": 0, "re_prob": 0.0,
    "re_scale": (0.02, 0.33), "re_ratio": (0.3, 3.3), "re_value": 0, "re_max_attempts": 10,
    "mean": [0.485 * 255, 0.456 * 255, 0.406 * 255], "std": [0.229 * 255, 0.224 * 255, 0.225 * 255],
    "crop_pct": 0.875, "mixup": 0.0, "cutmix": 0.0, "cutmix_prob": 1.0, "aug_repeats": 0,
    "model": "mobilenet_v2_035_224", "num_classes": None, "in_channels": 3, "drop_rate": None, "drop_path_rate": None,
    "pretrained": False, "ckpt_path": "", "resume_opt": False, "keep_checkpoint_max": 10, "ckpt_save_dir": "./ckpt",
    "ckpt_save_interval": 1, "ckpt_save_policy": "latest_k", "epoch_size": 90, "dataset_sink_mode": True,
    "ema": False, "ema_decay": 0.9999, "clip_grad": False, "clip_value": 15.0, "layer_decay": None,
    "gradient_accumulation_steps": 1,
    "opt": "adam", "momentum": 0.9, "weight_decay": 1e-6, "use_nesterov": False, "weight_decay_filter": "disable",
    "eps": 1e-10,
    "scheduler": "cosine_decay", "lr": 0.001, "min_lr": 1e-6, "warmup_epochs": 3, "warmup_factor": 0.0,
    "decay_epochs": 100, "decay_rate": 0.9, "multi_step_decay_milestones": [30, 60, 90], "lr_epoch_stair": False,
    "num_cycles": 1, "cycle_decay": 1.0,
    "loss": "CE", "label_smoothing": 0.0, "aux_factor": 0.0, "reduction": "mean",
    "amp_level": "O0", "val_amp_level": "O0", "amp_cast_list": None, "loss_scale_type": "fixed", "loss_scale": 1.0,
    "drop_overflow_update": False, "eval_shuffle": False,
}

# Our defaults that are not MindCV's, and why (configs/README.md says the same).
DEFAULT_DEVIATIONS = {
    "device_target": "auto",           # MindCV assumes Ascend; here the machine's best device is used
    "model": "resnext50_32x4d",        # the only family here
    "opt": "momentum",                 # MindCV's adam is not implemented here (momentum, sgd, adamw)
    "decay_epochs": None,              # MindCV's 100 stops the cosine early or late unless epoch_size is 100
    "drop_overflow_update": True,      # an overflowed fp16 step is skipped instead of written into the weights
}

MINDCV_RESNEXT_RECIPE = """\
# system
mode: 0
distribute: True
num_parallel_workers: 8
val_while_train: True

# dataset
dataset: "imagenet"
data_dir: "/path/to/imagenet"
shuffle: True
dataset_download: False
batch_size: 32
drop_remainder: True

# augmentation
image_resize: 224
scale: [0.08, 1.0]
ratio: [0.75, 1.333]
hflip: 0.5
interpolation: "bilinear"
crop_pct: 0.875

# model
model: "{model}"
num_classes: 1000
pretrained: False
ckpt_path: ""
keep_checkpoint_max: 30
ckpt_save_dir: "./ckpt"
epoch_size: 150
dataset_sink_mode: True
amp_level: "O2"

# loss
loss: "CE"
label_smoothing: 0.1

# lr scheduler
scheduler: "cosine_decay"
min_lr: 0.0
lr: 0.1
warmup_epochs: 0
decay_epochs: 150

# optimizer
opt: "momentum"
momentum: 0.9
weight_decay: 0.0001
loss_scale: 1024
use_nesterov: False
"""  # configs/resnext/{model}_ascend.yaml: the four files differ in `model` alone
MINDCV_RESNEXT_MODELS = ["resnext50_32x4d", "resnext101_32x4d", "resnext101_64x4d", "resnext152_64x4d"]


def ours_for(key, value):
    """A MindCV value as our resolved config holds it: lists as tuples, one jitter number as a 1-tuple, a None
    drop rate as 0 (no dropout, as MindCV means it)."""
    if key == "color_jitter" and isinstance(value, (int, float)):
        return (float(value),)
    if key in ("drop_rate", "drop_path_rate") and value is None:
        return 0.0
    return tuple(value) if isinstance(value, list) else value


def assert_same(key, ours, theirs):
    if isinstance(theirs, float) or (isinstance(theirs, tuple) and theirs and isinstance(theirs[0], float)):
        assert ours == pytest.approx(theirs), key
    else:
        assert ours == theirs, key


def mindcv_resolved(model):
    """What MindCV's train.py runs with for its recipe: its defaults, then the file."""
    return {**MINDCV_DEFAULTS, **yaml.safe_load(MINDCV_RESNEXT_RECIPE.format(model=model))}


def listed_deviations(path):
    """{key: (ours, MindCV's)} from the comments of a recipe and its bases: lines `#   - key: ours (MindCV x): why`."""
    with open(path) as f:
        text = f.read()
    found = {key: (yaml.safe_load(ours), yaml.safe_load(theirs)) for key, ours, theirs in
             re.findall(r"^#\s+- (\w+): (.+?) \(MindCV (.+?)\): \S", text, re.MULTILINE)}
    bases = yaml.safe_load(text).get("_base_") or []
    for base in [bases] if isinstance(bases, str) else bases:
        found.update(listed_deviations(os.path.join(os.path.dirname(path), base)))
    return found


# --- keys and defaults ------------------------------------------------------------------------------------------

def test_every_mindcv_key_is_read_here():
    assert [key for key in MINDCV_DEFAULTS if lookup_key(key) is None] == []


def test_our_defaults_are_mindcvs_but_for_the_listed_ones():
    for key, theirs in MINDCV_DEFAULTS.items():
        ours = SCHEMA_BY_NAME[key].default
        if key in DEFAULT_DEVIATIONS:
            assert ours == DEFAULT_DEVIATIONS[key] and ours != theirs, key
        else:
            assert_same(key, ours, ours_for(key, theirs))


@pytest.mark.parametrize("model", MINDCV_RESNEXT_MODELS)
def test_our_ascend_recipe_is_mindcvs_key_by_key_but_for_the_deviations_it_lists(model):
    path = os.path.join(ROOT, "configs", "resnext", f"{model}_ascend.yaml")
    ours, theirs, listed = resolve_config(["-c", path]), mindcv_resolved(model), listed_deviations(path)
    assert set(listed) == {"decay_epochs", "drop_overflow_update"}
    for key, value in theirs.items():
        if key in listed:
            assert (ours[key], value) == listed[key] and ours[key] != value, key
        else:
            assert_same(key, ours[key], ours_for(key, value))
    # What MindCV's train.py adds: graph mode compiles at O2 on Ascend; its lr 0.1 is for 8 cards x 32.
    assert resolve_jit_level(ours.jit_level, "Ascend", ours.mode) == "O2"
    assert scale_learning_rate(ours, world_size=8)[0] == theirs["lr"]


def test_mindcvs_own_recipe_file_resolves_to_its_settings_here(tmp_path):
    path = tmp_path / "resnext50_32x4d_ascend.yaml"
    path.write_text(MINDCV_RESNEXT_RECIPE.format(model="resnext50_32x4d"))
    ours = resolve_config(["-c", str(path)])
    for key, value in mindcv_resolved("resnext50_32x4d").items():
        expected = DEFAULT_DEVIATIONS[key] if key in ("device_target", "drop_overflow_update") else value
        assert_same(key, ours[key], ours_for(key, expected))


# --- MindCV's keys, with MindCV's meaning -------------------------------------------------------------------------

def test_resume_opt_with_ckpt_path_is_a_resume():
    config = resolve_config(["--ckpt_path", "ckpt/latest.ckpt", "--resume_opt", "true"])
    assert (config.resume, config.ckpt_path, config.resume_opt) == ("ckpt/latest.ckpt", "", False)
    with pytest.raises(ConfigError, match="resume_opt is true but ckpt_path is empty"):
        resolve_config(["--resume_opt", "true"])


@pytest.mark.parametrize("alias, value, key, meaning", [
    ("filter_bias_and_bn", "true", "weight_decay_filter", "norm_and_bias"),
    ("filter_bias_and_bn", "false", "weight_decay_filter", "disable"),
    ("dynamic_loss_scale", "true", "loss_scale_type", "dynamic"),
])
def test_an_alias_sets_the_one_key_that_holds_the_setting(alias, value, key, meaning, tmp_path):
    config = resolve_config([f"--{alias}", value])
    assert config[key] == meaning and alias not in config
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"{alias}: {value}\n")
    assert resolve_config(["-c", str(recipe)])[key] == meaning
    assert resolve_config(["-c", str(recipe), f"--{key}", "auto" if key == "weight_decay_filter" else "fixed"])[key] \
        in ("auto", "fixed")  # the later source wins, whichever spelling it uses
    assert alias in ALIASES


def test_a_key_in_the_recipe_beats_an_alias_in_a_later_base(tmp_path):
    (tmp_path / "a.yaml").write_text("weight_decay_filter: disable\n")
    (tmp_path / "b.yaml").write_text("filter_bias_and_bn: true\n")
    (tmp_path / "top.yaml").write_text("_base_: [a.yaml, b.yaml]\nweight_decay_filter: auto\n")
    assert resolve_config(["-c", str(tmp_path / "top.yaml")]).weight_decay_filter == "auto"
    (tmp_path / "top.yaml").write_text("_base_: [a.yaml, b.yaml]\n")
    assert resolve_config(["-c", str(tmp_path / "top.yaml")]).weight_decay_filter == "norm_and_bias"


def test_loss_scale_type_auto_is_mindspores_amp_default_in_the_step():
    from mindspore import amp, nn
    assert loss_scaling("auto", 1024.0, "O2") == (True, AUTO_DYNAMIC_SCALE)  # MindSpore's O2 manager, from 2**24
    assert loss_scaling("auto", 1024.0, "O0") == (False, 1.0) and loss_scaling("auto", 1024.0, "O3") == (False, 1.0)
    assert loss_scaling("dynamic", 128.0, "O0") == (True, 128.0)
    assert loss_scaling("fixed", 128.0, "O2") == (False, 128.0)
    net, (dynamic, scale) = nn.Dense(2, 2), loss_scaling("auto", 1.0, "O2")
    step = TrainStep(net, nn.MSELoss(), nn.Momentum(net.trainable_params(), 0.1, 0.9), scale, dynamic)
    assert isinstance(step.scaler, amp.DynamicLossScaler) and float(step.scaler.scale_value.asnumpy()) == 2.0 ** 24
    with pytest.raises(ConfigError, match="dynamic always skips overflowed steps"):
        resolve_config(["--loss_scale_type", "dynamic", "--drop_overflow_update", "false"])


@pytest.mark.parametrize("key, value, why", [
    ("aux_factor", "0.4", "ResNeXt has no auxiliary head"),
    ("layer_decay", "0.75", "not implemented for ResNeXt"),
    ("aug_splits", "3", "AugMix-style augmentation splits"),
    ("amp_cast_list", "[nn.Conv2d]", "amp_level picks them"),
])
def test_mindcv_keys_not_implemented_here_say_so_and_why(key, value, why):
    inert = MINDCV_DEFAULTS[key]  # MindCV's default, which does nothing, is accepted
    assert resolve_config([f"--{key}", "none" if inert is None else str(inert)])[key] == inert
    with pytest.raises(ConfigError, match=f"{key}=.* is not supported here .*{re.escape(why)}"):
        resolve_config([f"--{key}", value])


# --- device and compile level -------------------------------------------------------------------------------------

def test_device_auto_takes_the_first_device_this_machine_has():
    assert resolve_device("auto", ["Ascend", "GPU", "CPU"]) == "Ascend"
    assert resolve_device("auto", ["GPU", "CPU"]) == "GPU"
    here = available_devices()
    assert here[-1] == "CPU" and resolve_device("auto") == here[0]
    missing = next((device for device in ("Ascend", "GPU") if device not in here), None)
    if missing:
        with pytest.raises(ConfigError, match=f"device_target {missing} is not available: this machine and MindSpore "
                                              f".* can use {', '.join(here)}"):
            resolve_device(missing)


def test_jit_level_auto_is_mindcvs_o2_on_ascend_and_o0_elsewhere():
    assert resolve_jit_level("auto", "Ascend", 0) == "O2" and resolve_jit_level("auto", "Ascend", 1) == "O0"
    assert resolve_jit_level("auto", "CPU", 0) == "O0" and resolve_jit_level("O1", "GPU", 0) == "O1"
    with pytest.raises(ConfigError, match="O2 .* exists on Ascend only"):
        resolve_jit_level("O2", "CPU", 0)
    assert jit_options("O2") == {"backend": "GE"}  # what mindspore.jit needs for MindCV's O2
    assert jit_options("O1") == {"jit_level": "O1", "backend": "ms_backend"}


def test_the_compiled_step_gets_the_recipes_level(monkeypatch):
    import mindspore as ms
    from mindcv_resnext import runtime
    seen = []
    monkeypatch.setattr(runtime, "_jit_options", {})
    monkeypatch.setattr(ms, "jit", lambda function, **options: seen.append(options) or function)
    assert runtime.setup_runtime(resolve_config(["--jit_level", "O1"])) == runtime.Runtime("CPU", 0, "O1")
    from mindcv_resnext.engine.step import TrainStep
    from mindspore import nn
    net = nn.Dense(2, 2)
    TrainStep(net, nn.MSELoss(), nn.Momentum(net.trainable_params(), 0.1, 0.9))
    assert seen == [{"jit_level": "O1", "backend": "ms_backend"}] * 2  # accumulate and apply
    ms.set_context(jit_config={"jit_level": "O0"})  # as the other tests expect


def test_a_device_the_machine_lacks_is_one_line_without_driver_noise(tmp_path):
    missing = next((device for device in ("GPU", "Ascend") if device not in available_devices()), None)
    if missing is None:
        pytest.skip("this machine has every device")
    result = subprocess.run([sys.executable, "train.py", "-c", "configs/cifar/resnext29_8x64d_cifar10.yaml",
                             "--device_target", missing, "--data_dir", str(tmp_path)], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line
    assert result.stderr.startswith(f"error: device_target {missing} is not available")
    assert "cuda" not in result.stderr.lower()


# --- MindCV's recipe, run as its README runs it ---------------------------------------------------------------------

def test_mindcvs_resnext50_recipe_trains_and_validates_here_as_its_readme_runs_it(tmp_path):
    """README: `python train.py --config configs/resnext/resnext50_32x4d_ascend.yaml --data_dir DIR --distribute
    False`, then `python validate.py -c ... --data_dir DIR --ckpt_path CKPT`. The file is MindCV's; only the size
    of the run is cut to a test's: one epoch of 16 images of 2 classes, batch 8 (224 px, AMP O2, loss scale 1024
    as the file says)."""
    recipe = tmp_path / "resnext50_32x4d_ascend.yaml"
    recipe.write_text(MINDCV_RESNEXT_RECIPE.format(model="resnext50_32x4d"))
    data = write_image_folder(tmp_path / "data", 2, {"train": 8, "val": 3})
    size = ["--epoch_size", "1", "--batch_size", "8"]
    train = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--config", str(recipe), "--data_dir",
                            data, "--distribute", "False", "--num_classes", "2", *size], cwd=tmp_path, env=ENV,
                           capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-2000:]
    run = json.loads((tmp_path / "ckpt" / "run.json").read_text())  # ./ckpt, as the recipe says
    assert (run["device_target"], run["amp_level"], run["loss_scale"], run["lr"]) == \
        (available_devices()[0], "O2", 1024, 0.1)
    validate = subprocess.run([sys.executable, os.path.join(ROOT, "validate.py"), "-c", str(recipe), "--data_dir",
                               data, "--ckpt_path", str(tmp_path / "ckpt" / "latest.ckpt"), "--json"],
                              cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert validate.returncode == 0, validate.stderr[-2000:]
    assert json.loads(validate.stdout.strip().splitlines()[-1])["num_samples"] == 6
