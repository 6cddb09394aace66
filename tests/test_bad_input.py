"""The bad-input battery: every way a user can hand the entry points a broken recipe, flag, data folder, checkpoint
or image ends in a non-zero exit code and one line on stderr that says what is wrong, where, and how to fix it, with
no traceback, and leaves no file in the run's output folder. README.md ("Reliability") gives the count of cases."""
import dataclasses
import os

import pytest

from mindcv_resnext import create_model
from mindcv_resnext.checkpoint import save_checkpoint
from mindcv_resnext.cli import run_guarded
from mindcv_resnext.commands import export_command, infer_command, train_command, validate_command
from test_data import write_image_folder


@dataclasses.dataclass
class Workspace:
    root: str

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def out(self, case):
        return self.path("out", case)

    def train(self, case, *extra, data="data"):
        return ["--model", "resnext11_2x16d", "--dataset", "imagefolder", "--data_dir", self.path(data),
                "--image_resize", "16", "--crop_pct", "1", "--batch_size", "4", "--epoch_size", "1",
                "--num_parallel_workers", "1", "--val_while_train", "true", "--warmup_epochs", "0",
                "--ckpt_save_dir", self.out(case), *extra]


def write(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(content, bytes) else "w") as f:
        f.write(content)
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """Good and broken data folders, recipes, checkpoints and images, and one trained checkpoint."""
    w = Workspace(str(tmp_path_factory.mktemp("battery")))
    write_image_folder(w.path("data"), 3, {"train": 4, "val": 2})
    write_image_folder(w.path("two_classes"), 2, {"train": 4, "val": 2})
    write_image_folder(w.path("no_val"), 3, {"train": 4})
    write_image_folder(w.path("mismatch"), 3, {"train": 4})
    write_image_folder(w.path("mismatch", "val"), 3, {".": 2}, prefix="other")
    write(w.path("no_images", "train", "class0", "notes.txt"), "not an image")
    for i in range(3):
        write(w.path("corrupt", "train", "class0", f"{i}.jpg"), b"\xff\xd8\xff\xe0 this is not a JPEG")
    os.makedirs(w.path("empty_folder"))
    write(w.path("a_file"), "just a file")
    # recipes
    write(w.path("recipes", "empty.yaml"), "")
    write(w.path("recipes", "binary.yaml"), b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    write(w.path("recipes", "not_yaml.yaml"), "lr: [0.1\nbatch_size: 8\n")
    write(w.path("recipes", "a_list.yaml"), "- lr\n- 0.1\n")
    write(w.path("recipes", "unknown_key.yaml"), "batchsize: 8\n")
    write(w.path("recipes", "wrong_type.yaml"), "lr: fast\n")
    write(w.path("recipes", "out_of_range.yaml"), "batch_size: 0\n")
    write(w.path("recipes", "loop_a.yaml"), "_base_: loop_b.yaml\nlr: 0.1\n")
    write(w.path("recipes", "loop_b.yaml"), "_base_: loop_a.yaml\n")
    write(w.path("recipes", "missing_base.yaml"), "_base_: ../_base_/nowhere.yaml\n")
    # checkpoints
    assert run_guarded(train_command, w.train("trained")) == 0
    good = w.path("out", "trained", "latest.ckpt")
    with open(good, "rb") as f:
        data = f.read()
    write(w.path("ckpts", "truncated.ckpt"), data[:len(data) // 2])
    write(w.path("ckpts", "empty.ckpt"), b"")
    write(w.path("ckpts", "text.ckpt"), "model: resnext11_2x16d\n")
    os.makedirs(w.path("ckpts", "folder.ckpt"))
    save_checkpoint(w.path("ckpts", "other_model.ckpt"), create_model("resnext14_2x16d", num_classes=3),
                    {"model": "resnext14_2x16d", "num_classes": 3})
    write(w.path("images", "broken.jpg"), b"GIF89a broken")
    return w


GOOD = ("out", "trained", "latest.ckpt")

# (case, command, arguments from the workspace, exit code, what the one line must say)
CASES = [
    # recipes
    ("recipe missing", train_command, lambda w: ["-c", w.path("recipes", "nowhere.yaml")], 2, "nowhere.yaml"),
    ("recipe is a folder", train_command, lambda w: ["-c", w.path("recipes")], 2, "is a folder"),
    ("recipe empty", train_command, lambda w: ["-c", w.path("recipes", "empty.yaml")], 2, "empty.yaml is empty"),
    ("recipe binary", train_command, lambda w: ["-c", w.path("recipes", "binary.yaml")], 2, "is not a text file"),
    ("recipe not YAML", train_command, lambda w: ["-c", w.path("recipes", "not_yaml.yaml")], 2, "is not valid YAML"),
    ("recipe not a mapping", train_command, lambda w: ["-c", w.path("recipes", "a_list.yaml")], 2, "must be a mapping"),
    ("recipe unknown key", train_command, lambda w: ["-c", w.path("recipes", "unknown_key.yaml")],
     2, "unknown key 'batchsize'"),
    ("recipe wrong type", train_command, lambda w: ["-c", w.path("recipes", "wrong_type.yaml")],
     2, "lr must be a number"),
    ("recipe out of range", train_command, lambda w: ["-c", w.path("recipes", "out_of_range.yaml")], 2,
     "batch_size must be in [1, inf], got 0"),
    ("recipe _base_ loop", train_command, lambda w: ["-c", w.path("recipes", "loop_a.yaml")],
     2, "_base_ includes itself"),
    ("recipe _base_ missing", train_command, lambda w: ["-c", w.path("recipes", "missing_base.yaml")], 2,
     "nowhere.yaml"),
    ("unknown flag", train_command, lambda w: w.train("flag", "--batch", "8"), 2, "did you mean 'batch_size'"),
    ("flag without value", train_command, lambda w: w.train("flag_value", "--lr"), 2, "--lr needs a value"),
    ("unknown model", train_command, lambda w: w.train("model", "--model", "resnext99_1x1d"),
     2, "unknown model 'resnext99_1x1d'"),
    ("device this machine lacks", train_command, lambda w: w.train("device", "--device_target", "Ascend"), 2,
     "device_target Ascend is not available"),
    # data folders
    ("data missing", train_command, lambda w: w.train("d_missing", data="nowhere"), 1, "data_dir not found"),
    ("data is a file", train_command, lambda w: w.train("d_file", data="a_file"), 1, "a_file is a file, not a folder"),
    ("data empty", train_command, lambda w: w.train("d_empty", data="empty_folder"), 1, "empty_folder/train"),
    ("data without images", train_command, lambda w: w.train("d_no_images", data="no_images"), 1, "hold no images"),
    ("data only corrupt images", train_command, lambda w: w.train("d_corrupt", data="corrupt"), 1, "can be read"),
    ("no val split while validating", train_command, lambda w: w.train("d_no_val", data="no_val"), 1, "no_val/val"),
    ("train/val classes differ", train_command, lambda w: w.train("d_mismatch", data="mismatch"),
     1, "have different classes"),
    ("head smaller than the data", train_command, lambda w: w.train("d_head", "--num_classes", "2"), 2,
     "num_classes is 2 but"),
    # checkpoints
    ("validate: checkpoint missing", validate_command, lambda w: ["--ckpt_path", w.path("ckpts", "nowhere.ckpt")], 1,
     "checkpoint not found"),
    ("validate: checkpoint is a folder", validate_command, lambda w: ["--ckpt_path", w.path("ckpts", "folder.ckpt")],
     1, "is a folder"),
    ("validate: checkpoint empty", validate_command, lambda w: ["--ckpt_path", w.path("ckpts", "empty.ckpt")], 1,
     "is empty"),
    ("validate: checkpoint truncated", validate_command, lambda w: ["--ckpt_path", w.path("ckpts",
                                                                                          "truncated.ckpt")], 1,
     "is damaged"),
    ("validate: not a checkpoint", validate_command, lambda w: ["--ckpt_path", w.path("ckpts", "text.ckpt")], 1,
     "not a MindSpore checkpoint"),
    ("validate: data of other classes", validate_command, lambda w: ["--ckpt_path", w.path(*GOOD), "--data_dir",
                                                                     w.path("two_classes")], 1, "2 vs 3 classes"),
    ("train: checkpoint of another model", train_command,
     lambda w: w.train("c_other", "--ckpt_path", w.path("ckpts", "other_model.ckpt")), 1, "holds resnext14_2x16d"),
    ("train: checkpoint truncated", train_command,
     lambda w: w.train("c_truncated", "--ckpt_path", w.path("ckpts", "truncated.ckpt")), 1, "is damaged"),
    ("resume: another class count", train_command,
     lambda w: w.train("c_classes", "--resume", w.path(*GOOD), data="two_classes"),
     1, "with 3 classes, the network is resnext11_2x16d with 2"),
    ("resume: file missing", train_command, lambda w: w.train("r_missing", "--resume", w.path("nowhere.ckpt")), 1,
     "checkpoint not found"),
    ("resume: file damaged", train_command,
     lambda w: w.train("r_damaged", "--resume", w.path("ckpts", "truncated.ckpt")), 1, "is damaged"),
    ("resume: a folder", train_command, lambda w: w.train("r_folder", "--resume", w.path("ckpts", "folder.ckpt")), 1,
     "is a folder"),
    ("output folder under a file", train_command,
     lambda w: w.train("o_file", "--ckpt_save_dir", w.path("a_file", "run")), 1, "a_file is a file, not a folder"),
    # images for inference and export
    ("infer: image missing", infer_command, lambda w: ["--ckpt_path", w.path(*GOOD), w.path("images", "nowhere.jpg")],
     1, "no such image or folder"),
    ("infer: image unreadable", infer_command, lambda w: ["--ckpt_path", w.path(*GOOD), w.path("images",
                                                                                               "broken.jpg")], 1,
     "broken.jpg: damaged, or not an image format"),
    ("export: checkpoint not a checkpoint", export_command,
     lambda w: ["--ckpt_path", w.path("ckpts", "text.ckpt"), "--output", w.out("export") + "/model.mindir"], 1,
     "not a MindSpore checkpoint"),
]


def test_the_battery_has_at_least_30_cases_and_the_readme_gives_the_count():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()
    assert len(CASES) >= 30 and f"{len(CASES)} cases" in readme
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case, command, argv, code, says", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_and_a_non_zero_exit_leaving_no_file(case, command, argv, code, says, ws, capsys,
                                                                   tmp_path, monkeypatch):
    arguments = argv(ws)
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory either (MindSpore's decoder writes
    assert run_guarded(command, arguments) == code  # what it cannot decode there: unsupported_image.gif)
    assert os.listdir(tmp_path) == []
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.strip()]
    assert "Traceback" not in captured.err + captured.out
    assert len(errors) == 1 and errors[0].startswith("error: "), captured.err
    assert says in errors[0], errors[0]
    out = arguments[arguments.index("--ckpt_save_dir") + 1] if "--ckpt_save_dir" in arguments else None
    for folder in filter(None, [out, ws.out("export")]):  # os.walk of a folder that is not there yields nothing
        assert [os.path.join(d, f) for d, _, files in os.walk(folder) for f in files] == []
