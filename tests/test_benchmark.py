"""scripts/benchmark.py end to end on a tiny network: the rows it promises, measured in their own processes."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROW_KEYS = {"impl", "task", "model", "batch_size", "img_per_s", "compile_s", "peak_mem_mb"}


def benchmark(*argv):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "benchmark.py"), *argv, "--json"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "GLOG_v": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("task, argv, impls", [
    ("train", ["--compare", "torch"], ["mindcv_resnext", "torch", "torch_channels_last"]),
    ("infer", ["--compare", "torch", "--runtime", "mindspore,onnxruntime"],
     ["mindcv_resnext", "mindcv_resnext", "torch", "torch_channels_last", "onnxruntime"]),
])
def test_the_rows_of_a_comparison(task, argv, impls):
    rows = benchmark("--model", "resnext11_2x16d", "--batch_size", "2", "--task", task, "--steps", "2",
                     "--warmup", "0", *argv)
    assert [row["impl"] for row in rows] == impls
    for row in rows:
        assert ROW_KEYS <= set(row) and row["task"] == task and row["batch_size"] == 2
        assert row["img_per_s"] > 0 and row["peak_mem_mb"] > 0 and row["compile_s"] >= 0
    if task == "infer":
        assert [row["runtime"] for row in rows][:2] == ["mindspore", "onnxruntime"]


def test_repeat_measures_the_rows_in_turn_and_keeps_each_ones_fastest(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("benchmark_script", os.path.join(ROOT, "scripts", "benchmark.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    speeds = iter([3.0, 5.0, 4.0, 2.0, 6.0, 1.0])  # ours, torch, torch_channels_last; then the same again
    measured = []

    def run_isolated(impl, args):
        measured.append(impl)
        return dict(impl=impl, runtime="x", img_per_s=next(speeds), step_ms=1.0, compile_s=0.0, peak_mem_mb=1)
    monkeypatch.setattr(script, "run_isolated", run_isolated)
    assert script.main(["--compare", "torch", "--repeat", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert measured == ["mindcv_resnext", "torch", "torch_channels_last"] * 2
    assert [(row["impl"], row["img_per_s"], row["runs"]) for row in rows] == [
        ("mindcv_resnext", 3.0, 2), ("torch", 6.0, 2), ("torch_channels_last", 4.0, 2)]


def test_an_unknown_comparison_is_an_error():
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "benchmark.py"), "--compare", "tensorflow"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "unknown implementation to compare 'tensorflow'" in done.stderr


def test_the_loop_row_times_the_trainer_beside_its_bare_step():
    """--task loop: the keys of its row (its speed claim lives in docs/benchmarks.md, not in a timed test)."""
    [row] = benchmark("--task", "loop", "--model", "resnext11_2x16d", "--batch_size", "8", "--image_size", "32",
                      "--rounds", "2")
    assert row["task"] == "loop" and row["steps"] == 30 and row["rounds"] == 2
    assert row["img_per_s"] > 0 and row["bare_img_per_s"] > 0 and 0 <= row["data_wait"] < 1
    assert row["loop_vs_bare"] == round(row["img_per_s"] / row["bare_img_per_s"], 3) or \
        abs(row["loop_vs_bare"] - row["img_per_s"] / row["bare_img_per_s"]) < 0.01
