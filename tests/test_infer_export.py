"""infer.py and its Python API on a converted checkpoint give PyTorch's top-5 on a photograph; export.py writes MINDIR
and ONNX files, BatchNorm folded, that reproduce the network's outputs."""
import json
import os

import mindspore as ms
import numpy as np
import pytest
from PIL import Image

from conftest import execution_mode
from mindcv_resnext import create_model
from mindcv_resnext.cli import run_guarded
from mindcv_resnext.commands import export_command, infer_command
from mindcv_resnext.convert import convert, imagenet_class_names
from mindcv_resnext.inference import Classifier
from test_eval_transform import photographs, torchvision_eval

torch = pytest.importorskip("torch")
from torch_reference import ResNeXt, randomized  # noqa: E402


def run(command, argv):
    with execution_mode(ms.GRAPH_MODE):  # the commands set PyNative for themselves: the other tests keep graph mode
        return run_guarded(command, argv)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A 1000-class PyTorch ResNeXt in torchvision's layout (random weights, non-trivial BN statistics), converted
    as torchvision weights (resize 256, crop 224, antialiased); and the PyTorch model."""
    folder = tmp_path_factory.mktemp("converted")
    torch.manual_seed(4)
    reference = randomized(ResNeXt((1, 1, 1, 1), 2, 4)).eval()
    torch.save(reference.state_dict(), folder / "w.pth")
    from mindcv_resnext.convert import read_torch_file
    convert(read_torch_file(str(folder / "w.pth")), "resnext14_2x4d", str(folder / "ours.ckpt"), log=lambda line: None)
    return str(folder / "ours.ckpt"), reference


def torch_top5(reference, photo):
    with torch.no_grad():
        logits = reference(torch.from_numpy(torchvision_eval(photo, 256, 224, Image.BILINEAR)[None].astype(np.float32)))
    probabilities = torch.softmax(logits.double(), 1)[0].numpy()
    return [(int(i), float(probabilities[i])) for i in np.argsort(-probabilities)[:5]]


def test_infer_prints_pytorchs_top5_with_imagenet_names(converted, tmp_path, capsys):
    path, reference = converted
    photo = photographs()[0]  # matplotlib's grace_hopper.jpg
    assert run(infer_command, ["--ckpt_path", path, photo, "--topk", "5"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    names = imagenet_class_names()
    expected = torch_top5(reference, photo)
    assert line == f"{photo}: " + ", ".join(f"{names[i]} {p:.1%}" for i, p in expected)


def test_the_onnxruntime_runtime_gives_the_same_predictions_with_a_padded_last_batch(converted, tmp_path, capsys):
    """--runtime onnxruntime: BatchNorm folded, exported, run by onnxruntime; 3 images in batches of 2 (the last
    padded to the file's fixed batch) give mindspore's top-5 to the printed digit."""
    path, _ = converted
    photo = photographs()[0]
    for i in range(3):
        Image.open(photo).rotate(90 * i).save(tmp_path / f"{i}.png")
    printed = {}
    for runtime in ("mindspore", "onnxruntime"):
        assert run(infer_command, ["--ckpt_path", path, str(tmp_path), "--json", "--batch_size", "2",
                                   "--runtime", runtime]) == 0
        printed[runtime] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(printed["onnxruntime"]) == 3
    for ours, theirs in zip(printed["mindspore"], printed["onnxruntime"]):
        assert [p["label"] for p in ours["top"]] == [p["label"] for p in theirs["top"]]
        np.testing.assert_allclose([p["probability"] for p in ours["top"]],
                                   [p["probability"] for p in theirs["top"]], atol=1e-5)


def test_infer_reads_folders_in_batches_reports_and_skips_unreadable_images(converted, tmp_path, capsys):
    path, reference = converted
    photo = photographs()[0]
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for i in range(3):
        Image.open(photo).rotate(90 * i).save(folder / "sub" / f"{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (folder / "notes.txt").write_text("not an image")
    assert run(infer_command, ["--ckpt_path", path, str(folder), "--json", "--batch_size", "2"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [row["image"] for row in rows] == [str(folder / "sub" / f"{i}.png") for i in range(3)]
    assert all(len(row["top"]) == 5 and set(row["top"][0]) == {"label", "name", "probability"} for row in rows)
    assert f"skipped {folder / 'broken.jpg'}: cannot read it as an image" in err
    assert run(infer_command, ["--ckpt_path", path, str(folder / "broken.jpg")]) == 1  # nothing readable: an error
    assert "error: none of the 1 image(s) could be read" in capsys.readouterr().err
    assert run(infer_command, ["--ckpt_path", path, str(tmp_path / "missing.jpg")]) == 1
    assert capsys.readouterr().err.strip() == f"error: no such image or folder: {tmp_path / 'missing.jpg'}"


def test_the_python_api_takes_paths_pillow_images_and_arrays(converted):
    path, reference = converted
    photo = photographs()[0]
    with execution_mode(ms.GRAPH_MODE):
        classifier = Classifier.from_checkpoint(path)
        image = Image.open(photo)
        by_path, by_image, by_array = classifier.predict([photo, image, np.asarray(image.convert("RGB"))])
    assert [p.label for p in by_path] == [i for i, _ in torch_top5(reference, photo)]
    for other in (by_image, by_array):  # the same pixels (float rounding differs with the row of the batch)
        assert [p.label for p in other] == [p.label for p in by_path]
        np.testing.assert_allclose([p.probability for p in other], [p.probability for p in by_path], rtol=1e-6)


def test_infer_reads_a_plain_mindcv_file_with_mindcvs_pooling(tmp_path, capsys):
    ms.set_seed(5)
    source = create_model("resnext14_2x16d", num_classes=1000, stem_pool_pad="same")
    ms.save_checkpoint(source, str(tmp_path / "mindcv.ckpt"))  # MindCV's files: weights only
    photo = photographs()[0]
    assert run(infer_command, ["--ckpt_path", str(tmp_path / "mindcv.ckpt"), "--model", "resnext14_2x16d",
                               "--topk", "1", "--json", photo]) == 0
    out = capsys.readouterr().out
    assert "read as MindCV's (stem_pool_pad 'same'" in out
    with execution_mode(ms.PYNATIVE_MODE):
        source.set_train(False)
        classifier = Classifier(source, Classifier.from_checkpoint(tmp_path / "mindcv.ckpt",
                                                                   ["--model", "resnext14_2x16d"]).settings,
                                imagenet_class_names())
        expected = classifier.predict([photo], topk=1)[0][0]
    assert json.loads(out.strip().splitlines()[-1])["top"][0]["label"] == expected.label
    assert run(export_command, ["--ckpt_path", str(tmp_path / "mindcv.ckpt"), "--model", "resnext14_2x16d",
                                "--file_format", "ONNX"]) == 0  # MindCV's pooling ("same") exports too
    assert "reproduces the network's outputs" in capsys.readouterr().out


@pytest.mark.parametrize("file_format", ["MINDIR", "ONNX"])
def test_export_folds_batchnorm_and_the_file_reproduces_the_network(converted, tmp_path, capsys, file_format):
    path, _ = converted
    output = tmp_path / f"model.{file_format.lower()}"
    assert run(export_command, ["--ckpt_path", path, "--file_format", file_format, "--output", str(output),
                                "--batch_size", "2"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"to {output}: {file_format}, input (2, 3, 224, 224) float32" in line
    assert "17 BatchNorms folded; reproduces the network's outputs" in line  # stem, 4 blocks x 3, 4 shortcuts
    assert sorted(os.listdir(tmp_path)) == [output.name]  # no temporary file left


def test_an_export_that_differs_is_deleted_and_air_is_ascend_only(converted, tmp_path, capsys, monkeypatch):
    path, _ = converted
    import mindcv_resnext.commands as commands
    real = commands.run_exported
    monkeypatch.setattr(commands, "run_exported", lambda *args: real(*args) + 1e-2)
    assert run(export_command, ["--ckpt_path", path, "--file_format", "ONNX", "--output",
                                str(tmp_path / "m.onnx")]) == 1
    assert "gives other outputs than the network" in capsys.readouterr().err and os.listdir(tmp_path) == []
    assert run(export_command, ["--ckpt_path", path, "--file_format", "AIR"]) == 2
    assert "AIR files are made on Ascend only (this is CPU)" in capsys.readouterr().err
