"""Published weights: downloaded from a loopback HTTP server (no internet here), resumed, hash-checked, converted once
into the cache, and started from by create_model(pretrained=True) and by a training run's `pretrained: true`."""
import hashlib
import http.server
import os
import socket
import threading

import mindspore as ms
import numpy as np
import pytest

from conftest import random_images
from mindcv_resnext import create_model
from mindcv_resnext import pretrained
from mindcv_resnext.checkpoint import checkpoint_meta, read_checkpoint
from mindcv_resnext.convert import imagenet_class_names
from mindcv_resnext.pretrained import PretrainedError, PublishedWeights


class Server:
    """Serves `files` (name -> bytes) on 127.0.0.1 with HTTP Range support, and notes each request's Range."""

    def __init__(self, files):
        self.files, self.ranges = files, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                data = server.files.get(self.path.lstrip("/"))
                if data is None:
                    return self.send_error(404)
                server.ranges.append(self.headers.get("Range"))
                start = int(self.headers["Range"][len("bytes="):].rstrip("-")) if self.headers.get("Range") else 0
                if start >= len(data) and start:
                    return self.send_error(416)
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A MindCV-style checkpoint of resnext14_2x16d (1000 classes, plain MindSpore names, MindCV's stem pooling)
    named as MindCV names its files (the sha256 prefix), and the network it came from."""
    ms.set_seed(3)
    source = create_model("resnext14_2x16d", stem_pool_pad="same")
    path = tmp_path_factory.mktemp("published") / "weights.ckpt"
    ms.save_checkpoint(source, str(path))
    data = path.read_bytes()
    source.set_train(False)
    return f"resnext14_2x16d-{hashlib.sha256(data).hexdigest()[:8]}.ckpt", data, source


@pytest.fixture()
def table(published, tmp_path, monkeypatch):
    """The table of published weights holding one entry served from loopback; the cache in tmp_path."""
    name, data, _ = published
    server = Server({name: data})
    entry = PublishedWeights("resnext14_2x16d.test_in1k", "resnext14_2x16d", "mindcv", server.url + name, 70.0, 90.0,
                             pretrained._eval(36, 32, antialias=False))
    monkeypatch.setattr(pretrained, "PUBLISHED", [entry])
    monkeypatch.setenv("MINDCV_RESNEXT_HOME", str(tmp_path / "cache"))
    yield server, entry
    server.close()


def cache_files(tmp_path):
    return sorted(os.path.relpath(os.path.join(folder, f), tmp_path / "cache")
                  for folder, _, files in os.walk(tmp_path / "cache") for f in files if not f.endswith(".lock"))


def test_pretrained_downloads_converts_once_and_gives_the_publishers_outputs(published, table, tmp_path):
    name, _, source = published
    server, entry = table
    model = create_model("resnext14_2x16d", pretrained=True)
    assert cache_files(tmp_path) == [f"downloads/{name}", "resnext14_2x16d.test_in1k.ckpt"]
    model.set_train(False)
    images = random_images((2, 3, 64, 64))
    np.testing.assert_allclose(model(images).asnumpy(), source(images).asnumpy(), atol=1e-5)  # MindCV's pooling
    meta = checkpoint_meta(read_checkpoint(tmp_path / "cache" / "resnext14_2x16d.test_in1k.ckpt"))
    assert meta["pretrained"] == "resnext14_2x16d.test_in1k" and meta["model_options"]["stem_pool_pad"] == "same"
    assert meta["class_names"] == imagenet_class_names() and meta["class_names"][281] == "tabby"
    assert (meta["eval_transform"]["eval_resize"], meta["eval_transform"]["eval_antialias"]) == (36, False)
    create_model("resnext14_2x16d", pretrained=True)  # from the cache: the server sees no second request
    assert server.ranges == [None]
    tuned = create_model("resnext14_2x16d", num_classes=5, pretrained=True)  # fine-tuning: a new head, the rest kept
    assert tuned.classifier.weight.shape == (5, tuned.classifier.weight.shape[1])
    np.testing.assert_array_equal(tuned.conv1.weight.asnumpy(), source.conv1.weight.asnumpy())


def test_a_broken_off_download_resumes_where_it_stopped(published, table, tmp_path):
    name, data, _ = published
    server, entry = table
    part = tmp_path / "cache" / "downloads" / (name + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:len(data) // 3])
    pretrained.pretrained_checkpoint("resnext14_2x16d", log=lambda line: None)
    assert server.ranges == [f"bytes={len(data) // 3}-"]
    assert (tmp_path / "cache" / "downloads" / name).read_bytes() == data and not part.exists()


def test_a_file_with_another_hash_is_an_error_and_leaves_nothing(published, table, tmp_path, monkeypatch):
    name, data, _ = published
    server, entry = table
    server.files[name] = data[:-10] + b"0123456789"  # damaged, or replaced upstream
    with pytest.raises(PretrainedError, match=f"{entry.url} has sha256 .* not the published {entry.hash_prefix}"):
        create_model("resnext14_2x16d", pretrained=True)
    assert cache_files(tmp_path) == []


def test_no_network_names_the_url_and_where_to_put_the_file(table, tmp_path, monkeypatch):
    _, entry = table
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    offline = PublishedWeights(entry.tag, entry.model, entry.source, f"http://127.0.0.1:{port}/r-0123abcd.ckpt", 1, 1,
                               entry.eval_transform)
    monkeypatch.setattr(pretrained, "PUBLISHED", [offline])
    target = tmp_path / "cache" / "downloads" / "r-0123abcd.ckpt"
    with pytest.raises(PretrainedError, match=f"cannot download {offline.url} .*place it at {target}$"):
        pretrained.pretrained_checkpoint("resnext14_2x16d")
    assert cache_files(tmp_path) == []


def test_the_table_names_real_files_and_unknown_requests_say_what_exists():
    for entry in pretrained.PUBLISHED:
        assert len(entry.hash_prefix) >= 8 and entry.url.startswith("https://")
        assert entry.tag.startswith(entry.model + ".")
        create_model.__globals__["model_card"](entry.model)  # a name we build
    assert pretrained.find_weights("resnext50_32x4d").tag == "resnext50_32x4d.tv2_in1k"  # the best reported top-1
    with pytest.raises(PretrainedError, match="no published ImageNet weights for resnext29_8x64d"):
        pretrained.find_weights("resnext29_8x64d")
    with pytest.raises(PretrainedError, match="resnext50_32x4d.tv_in1k are weights of resnext50_32x4d, not of"):
        pretrained.find_weights("resnext101_32x8d", "resnext50_32x4d.tv_in1k")
    from mindcv_resnext.config import ConfigError, resolve_config
    from mindcv_resnext.engine.trainer import initial_checkpoint
    with pytest.raises(ConfigError, match="pretrained_weights is set but pretrained is false"):
        initial_checkpoint(resolve_config(["--pretrained_weights", "resnext50_32x4d.tv_in1k"]), print)


def test_a_training_run_starts_from_published_weights(published, table, tmp_path):
    from mindcv_resnext.config import resolve_config
    from mindcv_resnext.engine.trainer import train
    from test_data import write_image_folder
    data = write_image_folder(tmp_path / "data", 2, {"train": 2, "val": 1}, size=(40, 40))
    lines = []
    train(resolve_config(["--model", "resnext14_2x16d", "--dataset", "imagefolder", "--data_dir", data,
                          "--image_resize", "32", "--batch_size", "2", "--epoch_size", "1", "--warmup_epochs", "0",
                          "--num_parallel_workers", "1", "--pretrained", "--pretrained_weights",
                          "resnext14_2x16d.test_in1k", "--ckpt_save_dir", str(tmp_path / "run")]), log=lines.append)
    text = "\n".join(lines)
    assert "stem_pool_pad 'same', as" in text and "from published weights (resnext14_2x16d.test_in1k)" in text
    assert "fine-tuning: skipped classifier.weight" in text  # 1000 ImageNet classes -> 2
    meta = checkpoint_meta(read_checkpoint(tmp_path / "run" / "latest.ckpt"))
    assert meta["model_options"]["stem_pool_pad"] == "same"  # the run's own checkpoints keep the pooling
