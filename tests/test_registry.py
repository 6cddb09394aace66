"""Names -> networks, checkpoint loading that fails loudly, and the model table script."""
import json
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest

from conftest import random_images
from mindcv_resnext import UnknownModelError, count_params, create_model, list_models, model_card
from mindcv_resnext.checkpoint import CheckpointError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLISHED = ["resnext50_32x4d", "resnext101_32x4d", "resnext101_32x8d", "resnext101_64x4d", "resnext152_32x4d",
             "resnext152_64x4d", "resnext29_8x64d", "resnext29_16x64d"]


def test_list_models_lists_the_published_variants_and_the_papers_table():
    assert list_models(group="published") == PUBLISHED
    assert {"resnext50_1x64d", "resnext50_2x40d", "resnext50_4x24d", "resnext50_8x14d"} <= set(list_models())
    assert list_models("resnext29*") == ["resnext29_8x64d", "resnext29_16x64d"]


@pytest.mark.parametrize("name", list_models())
def test_every_listed_name_has_a_card(name):
    card = model_card(name)
    assert card.name == name and card.group in ("published", "paper", "small")


@pytest.mark.parametrize("name, dataset, blocks, cardinality, width", [
    ("resnext50_32x4d", "imagenet", (3, 4, 6, 3), 32, 4),
    ("resnext101_64x4d", "imagenet", (3, 4, 23, 3), 64, 4),
    ("resnext152_32x4d", "imagenet", (3, 8, 36, 3), 32, 4),
    ("resnext29_16x64d", "cifar", (3, 3, 3), 16, 64),
    ("resnext50_3x7d", "imagenet", (3, 4, 6, 3), 3, 7),  # any C and d build
])
def test_name_grammar(name, dataset, blocks, cardinality, width):
    card = model_card(name)
    assert (card.dataset, card.stage_blocks, card.cardinality, card.base_width) == (dataset, blocks, cardinality,
                                                                                     width)


def test_default_heads_and_inputs_follow_the_dataset():
    assert (model_card("resnext50_32x4d").num_classes, model_card("resnext50_32x4d").input_size) == (1000, 224)
    assert (model_card("resnext29_8x64d").num_classes, model_card("resnext29_8x64d").input_size) == (10, 32)
    assert create_model("resnext11_2x16d").num_classes == 10
    assert create_model("resnext11_2x16d", num_classes=100).num_classes == 100


@pytest.mark.parametrize("name, message", [
    ("resnext50_32x4", "did you mean resnext50_32x4d"),
    ("resnet50_32x4d", "did you mean resnext50_32x4d"),
    ("resnext34_32x4d", "depth 34 is not built"),
    ("resnext50_0x4d", "at least 1"),
    ("vgg16", "see list_models"),
])
def test_unknown_names_are_errors_that_point_to_the_right_name(name, message):
    with pytest.raises(UnknownModelError, match=message):
        create_model(name)


def test_unknown_option_is_an_error_that_suggests_the_right_one():
    with pytest.raises(TypeError, match="did you mean 'drop_path_rate'"):
        create_model("resnext11_2x16d", drop_path=0.1)


@pytest.mark.parametrize("options", [dict(drop_rate=1.0), dict(drop_path_rate=-0.1), dict(num_classes=0)])
def test_out_of_range_options_are_rejected(options):
    with pytest.raises(ValueError):
        create_model("resnext11_2x16d", **options)


def test_in_channels_changes_only_the_stem():
    rgb, gray = create_model("resnext11_2x16d"), create_model("resnext11_2x16d", in_channels=1)
    assert count_params(rgb) - count_params(gray) == 2 * 64 * 3 * 3


@pytest.fixture(scope="module")
def saved_checkpoint(cifar_net, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ckpt") / "resnext11.ckpt")
    ms.save_checkpoint(cifar_net, path)
    return path


def test_checkpoint_round_trip_reproduces_the_outputs(cifar_net, saved_checkpoint):
    loaded = create_model("resnext11_2x16d", checkpoint_path=saved_checkpoint)
    loaded.set_train(False)
    x = random_images((2, 3, 32, 32), seed=5)
    np.testing.assert_array_equal(loaded(x).asnumpy(), cifar_net(x).asnumpy())


def test_checkpoint_with_the_wrong_head_is_an_error(saved_checkpoint):
    with pytest.raises(CheckpointError, match=r"wrong shape \(first: classifier.weight is \(10, 1024\)"):
        create_model("resnext11_2x16d", num_classes=5, checkpoint_path=saved_checkpoint)


def test_checkpoint_of_another_architecture_is_an_error(saved_checkpoint):
    with pytest.raises(CheckpointError, match="missing from the file"):
        create_model("resnext14_2x16d", checkpoint_path=saved_checkpoint)


def test_checkpoint_missing_one_parameter_is_an_error(cifar_net, tmp_path):
    path = str(tmp_path / "partial.ckpt")
    ms.save_checkpoint([{"name": k, "data": v} for k, v in cifar_net.parameters_dict().items()
                        if k != "layer2.0.bn2.moving_variance"], path)
    with pytest.raises(CheckpointError, match="1 parameter.s. missing from the file .first: layer2.0.bn2.moving_var"):
        create_model("resnext11_2x16d", checkpoint_path=path)


def test_missing_checkpoint_file_is_an_error_never_random_weights(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        create_model("resnext11_2x16d", checkpoint_path=str(tmp_path / "nowhere.ckpt"))


def test_corrupt_checkpoint_file_is_an_error(tmp_path):
    path = tmp_path / "corrupt.ckpt"
    path.write_bytes(os.urandom(2048))
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        create_model("resnext11_2x16d", checkpoint_path=str(path))


def test_feature_extractor_loads_a_classifier_checkpoint(saved_checkpoint, capsys):
    create_model("resnext11_2x16d", features_only=True, checkpoint_path=saved_checkpoint)
    assert "left out 2 entries" in capsys.readouterr().out


def test_model_info_script_prints_rows_as_json():
    env = dict(os.environ, GLOG_v="3")
    result = subprocess.run([sys.executable, "scripts/model_info.py", "--group", "small", "--models", "resnext11*",
                             "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["model"] for r in rows] == ["resnext11_2x16d"]
    assert rows[0]["params"] == count_params(create_model("resnext11_2x16d"))
    assert rows[0]["features"][-1] == {"channels": 1024, "stride": 4}


def test_model_info_script_rejects_an_empty_selection():
    result = subprocess.run([sys.executable, "scripts/model_info.py", "--models", "vgg*"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "no listed model matches 'vgg*'" in result.stderr
