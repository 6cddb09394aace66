"""Weights from PyTorch ResNeXts (torchvision's layout, also timm's and mmpretrain's names) and MindCV convert to
checkpoints of ours with equal logits; the PyTorch files are read without torch (torch only makes them here)."""
import os

import mindspore as ms
import numpy as np
import pytest

from conftest import execution_mode
from mindcv_resnext import create_model
from mindcv_resnext.checkpoint import CheckpointError, checkpoint_meta, read_checkpoint
from mindcv_resnext.convert import convert, read_torch_file, read_weights

torch = pytest.importorskip("torch")
from torch_reference import ResNeXt, randomized  # noqa: E402

PUBLISHED = {"resnext50_32x4d": ((3, 4, 6, 3), 32, 4), "resnext101_32x4d": ((3, 4, 23, 3), 32, 4),
             "resnext101_32x8d": ((3, 4, 23, 3), 32, 8), "resnext101_64x4d": ((3, 4, 23, 3), 64, 4),
             "resnext152_32x4d": ((3, 8, 36, 3), 32, 4), "resnext152_64x4d": ((3, 8, 36, 3), 64, 4)}


def logits_of_ours(path, images):
    meta = checkpoint_meta(read_checkpoint(path))  # the file says which network, how many classes, which pooling
    model = create_model(meta["model"], num_classes=meta["num_classes"], checkpoint_path=path,
                         **meta["model_options"])
    model.set_train(False)
    with execution_mode(ms.PYNATIVE_MODE):  # no graph compile for six deep networks
        return model(ms.Tensor(images)).asnumpy()


@pytest.mark.parametrize("name", PUBLISHED)
def test_torchvision_weights_give_the_same_logits(name, tmp_path):
    torch.manual_seed(0)
    reference = randomized(ResNeXt(*PUBLISHED[name]))
    torch.save(reference.state_dict(), tmp_path / "weights.pth")
    images = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(images)).numpy()
    meta = convert(read_torch_file(str(tmp_path / "weights.pth")), name, str(tmp_path / "ours.ckpt"),
                   log=lambda line: None)
    assert (meta["source"], meta["model_options"]["stem_pool_pad"]) == ("torchvision", "symmetric")
    got = logits_of_ours(str(tmp_path / "ours.ckpt"), images)
    assert np.abs(got - expected).max() <= 1e-4
    np.testing.assert_array_equal(np.argsort(-got)[:, :5], np.argsort(-expected)[:, :5])


def test_a_whole_training_checkpoint_and_mmpretrain_names_are_read(tmp_path):
    torch.manual_seed(1)
    reference = randomized(ResNeXt((1, 1, 1, 1), 2, 4, num_classes=10))
    state = {("head." if name.startswith("fc.") else "backbone.") + name: value
             for name, value in reference.state_dict().items()}
    torch.save({"meta": {"epoch": 3}, "state_dict": state}, tmp_path / "mm.pth")  # as mmpretrain saves
    meta = convert(read_weights(str(tmp_path / "mm.pth")), "resnext14_2x4d", str(tmp_path / "ours.ckpt"),
                   log=lambda line: None)
    assert (meta["source"], meta["num_classes"]) == ("mmpretrain", 10)
    images = np.random.default_rng(2).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(images)).numpy()
    assert np.abs(logits_of_ours(str(tmp_path / "ours.ckpt"), images) - expected).max() <= 1e-4


def test_safetensors_files_are_read(tmp_path):
    from safetensors.numpy import save_file
    torch.manual_seed(3)
    reference = randomized(ResNeXt((1, 1, 1, 1), 2, 4, num_classes=10))
    save_file({name: value.numpy() for name, value in reference.state_dict().items()}, tmp_path / "w.safetensors")
    meta = convert(read_weights(str(tmp_path / "w.safetensors")), "resnext14_2x4d", str(tmp_path / "ours.ckpt"),
                   source="timm", log=lambda line: None)  # timm publishes safetensors, with torchvision's names
    assert meta["eval_transform"]["eval_antialias"] and meta["class_names"] is None
    images = np.random.default_rng(3).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(images)).numpy()
    assert np.abs(logits_of_ours(str(tmp_path / "ours.ckpt"), images) - expected).max() <= 1e-4
    (tmp_path / "bad.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(CheckpointError, match="cannot read .*bad.safetensors as safetensors"):
        read_weights(str(tmp_path / "bad.safetensors"))


def test_weights_that_do_not_fit_name_every_problem(tmp_path):
    state = {name: value.numpy() for name, value in randomized(ResNeXt((1, 1, 1, 1), 2, 4)).state_dict().items()}
    state["layer9.0.conv1.weight"] = np.zeros((1,), np.float32)
    del state["layer1.0.bn2.running_var"]
    with pytest.raises(CheckpointError, match=r"missing: layer1.0.bn2.moving_variance \(1\); unexpected: "
                                              r"layer9.0.conv1.weight \(1\)"):
        convert(state, "resnext14_2x4d", str(tmp_path / "x.ckpt"), log=lambda line: None)
    with pytest.raises(CheckpointError, match="wrong shape"):
        convert(state, "resnext14_2x8d", str(tmp_path / "x.ckpt"), source="torchvision", log=lambda line: None)
    assert not os.path.exists(tmp_path / "x.ckpt")


def test_the_unpickler_refuses_anything_but_tensors(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}, "evil": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="refusing to load posix.system"):
        read_torch_file(str(tmp_path / "evil.pth"))


def test_the_script_converts_a_file_that_validate_py_then_scores(tmp_path, capsys):
    import subprocess
    import sys
    from mindcv_resnext.cli import run_guarded
    from mindcv_resnext.commands import validate_command
    from test_data import write_image_folder
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    torch.manual_seed(2)
    torch.save(randomized(ResNeXt((1, 1, 1, 1), 2, 4, num_classes=3)).state_dict(), tmp_path / "w.pth")
    result = subprocess.run([sys.executable, "scripts/convert_weights.py", "--src", str(tmp_path / "w.pth"),
                             "--model", "resnext14_2x4d", "--output", str(tmp_path / "ours.ckpt"), "--eval_resize",
                             "40", "--interpolation", "bicubic"], cwd=root, capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, GLOG_v="3"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("converted ") and "(resnext14_2x4d, 3 classes, stem pooling 'symmetric'" in \
        result.stdout
    meta = checkpoint_meta(read_checkpoint(str(tmp_path / "ours.ckpt")))
    assert (meta["eval_transform"]["eval_resize"], meta["eval_transform"]["interpolation"]) == (40, "bicubic")
    data = write_image_folder(tmp_path / "data", 3, {"train": 1, "val": 2}, size=(48, 48))
    assert run_guarded(validate_command, ["--ckpt_path", str(tmp_path / "ours.ckpt"), "--data_dir", data,
                                          "--image_resize", "32", "--json"]) == 0  # 48 px images: crop 32 of 40
    assert '"num_samples": 6' in capsys.readouterr().out
    from mindcv_resnext.config import resolve_config  # and fine-tuning starts from it, with a new head
    from mindcv_resnext.engine.trainer import train
    lines = []
    train(resolve_config(["--model", "resnext14_2x4d", "--dataset", "imagefolder", "--data_dir", data,
                          "--image_resize", "32", "--batch_size", "3", "--epoch_size", "1", "--warmup_epochs", "0",
                          "--num_classes", "3", "--num_parallel_workers", "1", "--ckpt_path",
                          str(tmp_path / "ours.ckpt"), "--ckpt_save_dir", str(tmp_path / "tuned")]),
          log=lines.append)
    assert any(line.startswith(f"initialised from {tmp_path / 'ours.ckpt'}") for line in lines)


def test_a_published_file_is_known_by_its_name_and_validate_reads_its_eval_transform(tmp_path, monkeypatch, capsys):
    import importlib.util
    from mindcv_resnext import pretrained
    from mindcv_resnext.cli import run_guarded
    from mindcv_resnext.commands import VALIDATE_OPTIONS, checkpoint_command_line
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("convert_weights", os.path.join(root, "scripts", "convert_weights.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    entry = pretrained.PublishedWeights("resnext14_2x4d.tiny_in1k", "resnext14_2x4d", "timm",
                                        "https://example.org/tiny-0123abcd.pth", 1.0, 2.0,
                                        pretrained._eval(40, 32, "bicubic"))
    monkeypatch.setattr(pretrained, "PUBLISHED", [entry])
    torch.manual_seed(5)
    torch.save(randomized(ResNeXt((1, 1, 1, 1), 2, 4, num_classes=3)).state_dict(), tmp_path / entry.file_name)
    for name, extra in ((entry.file_name, []), ("renamed.pth", ["--weights", entry.tag])):  # by name, or said
        if name != entry.file_name:
            os.replace(tmp_path / entry.file_name, tmp_path / name)
        output = str(tmp_path / f"{name}.ckpt")
        assert run_guarded(script.main, ["--src", str(tmp_path / name), "--model", "resnext14_2x4d", "--output",
                                         output, *extra]) == 0
        assert capsys.readouterr().out.startswith(f"{name}: the published resnext14_2x4d.tiny_in1k")
        config, _, _, _, meta = checkpoint_command_line(["--ckpt_path", output], VALIDATE_OPTIONS)
        assert (meta["pretrained"], meta["source"]) == ("resnext14_2x4d.tiny_in1k", "timm")
        assert (config.image_resize, config.eval_resize, config.interpolation, config.eval_antialias) == \
            (32, 40, "bicubic", True)  # what validate.py's loader is built with
