"""The data pipeline on small files made here: sources, transforms, mixing, sharding, order, bad data, scripts."""
import io
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mindcv_resnext.data import DataError, ImageLoader, TransformSettings, create_loader, load_samples, mix_batch
from mindcv_resnext.data.demo import make_demo_dataset
from mindcv_resnext.data.image_check import is_complete_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ["ant", "bee", "cat"]


def write_image(path, seed, size=(40, 30), fmt=None):
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path, fmt)


def write_image_folder(root, num_classes, per_split, size=(20, 20), prefix="class"):
    """root/<split>/<prefix><k>/<i>.jpg for each split and count in per_split, every image from its own seed."""
    for label in range(num_classes):
        for split_index, (split, count) in enumerate(per_split.items()):
            for i in range(count):
                write_image(os.path.join(root, split, f"{prefix}{label}", f"{i}.jpg"),
                            seed=label * 1000 + split_index * 500 + i, size=size)
    return str(root)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 classes; train: 8 images each (JPEG, one .JPG, PNG, BMP, WebP) + a text file; val: 3 JPEGs each."""
    root = tmp_path_factory.mktemp("imagefolder")
    for label, name in enumerate(CLASSES):
        for i in range(8):
            ext = [".jpg", ".jpeg", ".JPG", ".png", ".bmp", ".webp", ".jpg", ".jpg"][i]
            write_image(str(root / "train" / name / f"{i}{ext}"), seed=label * 100 + i,
                        fmt={".JPG": "JPEG", ".webp": "WEBP"}.get(ext))
        for i in range(3):
            write_image(str(root / "val" / name / f"{i}.jpg"), seed=1000 + label * 100 + i)
        (root / "train" / name / "notes.txt").write_text("not an image")
    return str(root)


def small_settings(**changes):
    return TransformSettings(**{"image_resize": 24, **changes})


# --- sources -----------------------------------------------------------------------------------------------------

def test_image_folder_classes_are_sorted_folders_and_images_go_by_extension(folder):
    samples = load_samples("imagefolder", folder, "train")
    assert samples.class_names == CLASSES
    assert len(samples) == 24 and np.bincount(samples.labels).tolist() == [8, 8, 8]
    assert not any(p.endswith(".txt") for p in samples.items)
    assert load_samples("imagenet", folder, "val").class_names == CLASSES  # MindCV's dataset name


def test_missing_data_dir_names_the_path_and_the_layout(tmp_path):
    with pytest.raises(DataError, match=r"data_dir not found: .*nowhere \(expected DATA_DIR/<split>/<class name>"):
        load_samples("imagefolder", str(tmp_path / "nowhere"), "train")


def test_missing_split_is_named(tmp_path):
    write_image(str(tmp_path / "train" / "a" / "0.jpg"), 0)
    with pytest.raises(DataError, match=r"data split not found: .*validation"):
        load_samples("imagefolder", str(tmp_path), "val", val_split="validation")


def test_empty_class_folder_is_named(tmp_path):
    write_image(str(tmp_path / "train" / "a" / "0.jpg"), 0)
    os.makedirs(tmp_path / "train" / "b")
    with pytest.raises(DataError, match=r"hold no images \(b\)"):
        load_samples("imagefolder", str(tmp_path), "train")


def test_train_and_val_with_different_classes_are_an_error_naming_them(tmp_path):
    for split, names in (("train", ["a", "b"]), ("val", ["a", "c"])):
        for name in names:
            write_image(str(tmp_path / split / name / "0.jpg"), 0)
    with pytest.raises(DataError, match=r"different classes: only in train: \['b'\], only in the other: \['c'\]"):
        load_samples("imagefolder", str(tmp_path), "train")


def cifar_records(count, num_classes, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 3, 32, 32), dtype=np.uint8), rng.integers(0, num_classes, count)


def write_cifar(root, dataset, form, seed=0):
    """Few-record CIFAR files in the binary or python version; returns {split: (CHW images, labels)}."""
    os.makedirs(root, exist_ok=True)
    num_classes = 10 if dataset == "cifar10" else 100
    files = {"train": [f"data_batch_{i}" for i in range(1, 6)], "val": ["test_batch"]} if dataset == "cifar10" \
        else {"train": ["train"], "val": ["test"]}
    expected = {}
    for split, names in files.items():
        parts = []
        for k, name in enumerate(names):
            images, labels = cifar_records(3, num_classes, seed + 10 * k + (split == "val"))
            parts.append((images, labels))
            if form == "binary":
                label_bytes = labels[:, None] if dataset == "cifar10" else np.stack([labels // 5, labels], 1)
                records = np.concatenate([label_bytes.astype(np.uint8), images.reshape(3, -1)], axis=1)
                records.tofile(os.path.join(root, name + ".bin"))
            else:
                key = b"labels" if dataset == "cifar10" else b"fine_labels"
                with open(os.path.join(root, name), "wb") as f:
                    pickle.dump({b"data": images.reshape(3, -1), key: labels.tolist()}, f)
        expected[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    if dataset == "cifar10" and form == "binary":
        with open(os.path.join(root, "batches.meta.txt"), "w") as f:
            f.write("\n".join(f"name{i}" for i in range(10)) + "\n\n")
    return expected


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
@pytest.mark.parametrize("form", ["binary", "python"])
def test_cifar_records_are_read_as_written(tmp_path, dataset, form):
    subfolder = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}[dataset]
    root = str(tmp_path / subfolder) if form == "python" else str(tmp_path)  # the archive's folder is found too
    expected = write_cifar(root, dataset, form)
    for split in ("train", "val"):
        samples = load_samples(dataset, str(tmp_path), split)
        images, labels = expected[split]
        np.testing.assert_array_equal(samples.items, images.transpose(0, 2, 3, 1))  # CHW records -> HWC
        np.testing.assert_array_equal(samples.labels, labels)
        assert len(samples.class_names) == (10 if dataset == "cifar10" else 100)
    if dataset == "cifar10" and form == "binary":
        assert samples.class_names[3] == "name3"


def test_cifar_file_of_the_wrong_size_is_an_error(tmp_path):
    write_cifar(str(tmp_path), "cifar10", "binary")
    with open(tmp_path / "data_batch_2.bin", "ab") as f:
        f.write(b"\0" * 7)
    with pytest.raises(DataError, match="data_batch_2.bin is not a CIFAR binary file"):
        load_samples("cifar10", str(tmp_path), "train")


def test_missing_cifar_files_are_an_error_saying_what_was_expected(tmp_path):
    with pytest.raises(DataError, match=r"no CIFAR100 files in .*expected train\(.bin\)"):
        load_samples("cifar100", str(tmp_path), "train")


def test_num_samples_keeps_a_fixed_subset_of_every_class(folder):
    first = load_samples("imagefolder", folder, "train", num_samples=10)
    again = load_samples("imagefolder", folder, "train", num_samples=10)
    assert len(first) == 10 and first.items == again.items and len(set(first.labels)) > 1


# --- transforms ------------------------------------------------------------------------------------------------------

def all_batches(loader, epoch=0):
    batches = list(loader.epoch(epoch))
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


@pytest.mark.parametrize("changes", [
    {}, {"color_jitter": 0.4, "vflip": 0.5}, {"auto_augment": "randaug-m9-n2"}, {"auto_augment": "autoaug"},
    {"auto_augment": "trivialaugwide", "interpolation": "bicubic"}, {"re_prob": 1.0},
])
def test_imagenet_train_transform_shapes_dtypes_and_ranges(folder, changes):
    settings = small_settings(**changes)
    images, labels = all_batches(create_loader("imagefolder", folder, "train", settings, batch_size=8))
    assert images.shape == (24, 3, 24, 24) and images.dtype == np.float32
    assert labels.dtype == np.int32 and set(labels) <= {0, 1, 2}
    unit = 255.0 if max(settings.mean) > 1 else 1.0  # the schema's default mean/std are MindCV's 0-255 values
    low = (0 - np.array(settings.mean) / unit) / (np.array(settings.std) / unit)
    high = (1 - np.array(settings.mean) / unit) / (np.array(settings.std) / unit)
    per_channel = images.transpose(1, 0, 2, 3).reshape(3, -1)
    assert (per_channel.min(1) >= low - 1e-4).all() and (per_channel.max(1) <= high + 1e-4).all()


def test_eval_transform_is_deterministic_and_resizes_then_centre_crops(folder):
    loader = create_loader("imagefolder", folder, "val", small_settings(crop_pct=0.75), batch_size=4)
    first, labels = all_batches(loader, epoch=0)
    second, _ = all_batches(loader, epoch=5)
    np.testing.assert_array_equal(first, second)
    assert first.shape == (9, 3, 24, 24) and labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert loader.settings.eval_resize_size() == 32  # 24 / 0.75: the short side, before the 24-pixel centre crop


def test_cifar_eval_transform_is_exact_normalisation(tmp_path):
    expected = write_cifar(str(tmp_path), "cifar10", "binary")
    settings = TransformSettings(image_resize=32, mean=(125.3, 123.0, 113.9), std=(63.0, 62.1, 66.7))  # MindCV: 0-255
    images, labels = all_batches(create_loader("cifar10", str(tmp_path), "val", settings, batch_size=2))
    reference = (expected["val"][0] - np.array(settings.mean)[:, None, None]) / np.array(settings.std)[:, None, None]
    np.testing.assert_allclose(images, reference, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(labels, expected["val"][1])


def test_cifar_train_transform_is_a_padded_crop_of_the_record(tmp_path):
    expected = write_cifar(str(tmp_path), "cifar10", "binary")
    settings = TransformSettings(image_resize=32, hflip=0.0, color_jitter=None, mean=(0, 0, 0),
                                 std=(1 / 255,) * 3)  # raw pixels
    loader = create_loader("cifar10", str(tmp_path), "train", settings, batch_size=5)
    images, labels = all_batches(loader)
    order = loader.shard_order(0)
    for image, index in zip(images, order):
        padded = np.pad(expected["train"][0][index], ((0, 0), (4, 4), (4, 4)))
        assert any(np.array_equal(image, padded[:, y:y + 32, x:x + 32]) for y in range(9) for x in range(9))


@pytest.mark.parametrize("changes, message", [
    ({"hflip": 2}, "hflip"), ({"scale": (0.5, 0.1)}, "scale"), ({"interpolation": "lanczos"}, "interpolation"),
    ({"crop_pct": 0}, "crop_pct"), ({"mean": (0.5, 0.5)}, "mean"), ({"label_smoothing": 1.0}, "label_smoothing"),
])
def test_invalid_transform_settings_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        TransformSettings(**changes)


def test_unknown_auto_augment_policy_is_rejected(folder):
    with pytest.raises(ValueError, match="auto_augment 'augmix' is not known"):
        list(create_loader("imagefolder", folder, "train", small_settings(auto_augment="augmix"), 8).epoch(0))


# --- mixup / cutmix --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [dict(mixup=0.8), dict(cutmix=1.0), dict(mixup=0.8, cutmix=1.0)])
def test_mixed_targets_sum_to_one_and_match_the_mixed_pixels(mode):
    settings = TransformSettings(label_smoothing=0.1, **mode)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((6, 3, 16, 16)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 4, 1], np.int32)  # sample 0 is mixed with sample 5 (reversed batch)
    for _ in range(10):
        mixed, targets = mix_batch(images, labels, settings, 5, rng)
        assert targets.shape == (6, 5) and targets.dtype == np.float32
        np.testing.assert_allclose(targets.sum(1), 1, rtol=1e-6)
        lam = (targets[0, 0] - 0.02) / 0.9  # smoothing 0.1 over 5 classes: 0.92 on, 0.02 off
        assert np.isclose(targets[0, 1], lam * 0.02 + (1 - lam) * 0.92, atol=1e-6)
        blended = np.allclose(mixed[0], lam * images[0] + (1 - lam) * images[-1], atol=1e-5)
        pasted = np.isclose(mixed[0], images[0]).mean(), np.isclose(mixed[0], images[-1]).mean()
        assert blended if "cutmix" not in mode else (blended or np.allclose(pasted, (lam, 1 - lam), atol=1e-6))
        if mode == dict(cutmix=1.0):
            assert np.allclose(pasted, (lam, 1 - lam), atol=1e-6)


def test_loader_gives_soft_targets_when_mixing(folder):
    settings = small_settings(mixup=0.2, cutmix=1.0, label_smoothing=0.1)
    images, targets = all_batches(create_loader("imagefolder", folder, "train", settings, batch_size=8))
    assert targets.shape == (24, 3) and np.allclose(targets.sum(1), 1)


def test_mixing_in_the_workers_is_the_same_whichever_worker_mixes_and_differs_by_epoch(folder):
    """The batches are mixed in the pipeline's workers, each with a generator of (seed, epoch, shard, batch): the
    mixed targets (which samples, lam) do not depend on the number of workers, a rerun gives the same batches, and
    another epoch mixes otherwise. (The images' own random crops do depend on the worker count: MindSpore's.)"""
    settings = small_settings(mixup=0.8, cutmix=1.0, cutmix_prob=1.0)

    def batches(workers, epoch=0):
        return all_batches(create_loader("imagefolder", folder, "train", settings, batch_size=8,
                                         num_workers=workers), epoch)
    one, two, again = batches(1), batches(2), batches(2)
    np.testing.assert_array_equal(one[1], two[1])
    np.testing.assert_array_equal(two[0], again[0])
    np.testing.assert_array_equal(two[1], again[1])
    assert not (one[1] == one[1].max(1, keepdims=True)).all()  # soft: the targets were mixed
    assert not np.array_equal(np.sort(one[1], 0), np.sort(batches(2, epoch=1)[1], 0))


# --- sharding and order ----------------------------------------------------------------------------------------------

def test_training_shards_are_equal_and_cover_the_set_with_minimal_padding(folder):
    samples = load_samples("imagefolder", folder, "train", num_samples=23)
    shards = [ImageLoader(samples, small_settings(), 4, True, num_shards=3, shard_id=r, seed=7) for r in range(3)]
    orders = [s.shard_order(2) for s in shards]
    assert [len(o) for o in orders] == [8, 8, 8]  # 23 padded to 24 so every rank takes the same steps
    assert set(np.concatenate(orders)) == set(range(23))
    assert len(set(np.concatenate(orders))) == 23 and len(np.concatenate(orders)) == 24


def test_validation_covers_every_sample_once_also_when_sharded(folder):
    samples = load_samples("imagefolder", folder, "train", num_samples=23)
    seen = []
    for rank in range(2):
        loader = ImageLoader(samples, small_settings(), 4, training=False, num_shards=2, shard_id=rank)
        seen.append(all_batches(loader)[1])
        assert len(seen[-1]) == loader.shard_size()
    assert sorted(np.concatenate([loader.shard_order(0) for loader in
                                  [ImageLoader(samples, None, 4, False, 2, r) for r in range(2)]])) == list(range(23))
    assert sum(len(s) for s in seen) == 23


def test_eval_shuffle_in_a_recipe_reaches_the_validation_loader(folder):
    from mindcv_resnext.config import resolve_config
    from mindcv_resnext.builders import split_loader
    loader = split_loader(resolve_config(["--dataset", "imagefolder", "--data_dir", folder, "--eval_shuffle", "true",
                                          "--num_parallel_workers", "1"]), "val")
    assert loader.eval_shuffle and sorted(loader.shard_order(0)) == list(range(9))
    assert list(loader.shard_order(0)) != list(range(9))


def test_eval_shuffle_reorders_validation_and_still_covers_every_sample_once(folder):
    samples = load_samples("imagefolder", folder, "train", num_samples=23)
    shards = [ImageLoader(samples, None, 4, False, 2, rank, seed=5, eval_shuffle=True) for rank in range(2)]
    orders = np.concatenate([loader.shard_order(0) for loader in shards])
    assert sorted(orders) == list(range(23)) and list(orders) != sorted(orders)
    assert np.array_equal(shards[0].shard_order(0), ImageLoader(samples, None, 4, False, 2, 0, seed=5,
                                                               eval_shuffle=True).shard_order(0))  # from the seed


def test_same_seed_and_epoch_give_the_same_batches_and_a_new_epoch_reshuffles(folder):
    make = lambda: create_loader("imagefolder", folder, "train", small_settings(color_jitter=0.4), 8, seed=3)  # noqa
    first, labels_first = all_batches(make(), epoch=4)
    again, labels_again = all_batches(make(), epoch=4)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(labels_first, labels_again)
    assert not np.array_equal(make().shard_order(4), make().shard_order(5))


# --- bad data --------------------------------------------------------------------------------------------------------

def test_is_complete_image_rejects_every_truncation():
    for fmt in ("JPEG", "PNG", "BMP"):
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(buffer, fmt)
        data = buffer.getvalue()
        assert is_complete_image(data)
        assert not any(is_complete_image(data[:n]) for n in range(len(data)))
    assert not is_complete_image(b"GIF89a" + b"\0" * 100)


def encoded(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_is_complete_image_accepts_the_jpeg_variants_decoders_accept():
    pixels = np.random.default_rng(3).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    rgb = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x010F] = "camera"
    variants = [encoded(rgb, "JPEG", progressive=True), encoded(rgb, "JPEG", exif=exif.tobytes()),
                encoded(rgb.convert("CMYK"), "JPEG"), encoded(rgb.convert("L"), "JPEG")]
    plain = encoded(rgb, "JPEG")
    variants.append(plain[:20] + b"\0\0" + plain[20:])  # stray bytes after APP0: libjpeg warns and decodes
    for data in variants:
        Image.open(io.BytesIO(data)).load()
        assert is_complete_image(data)


def test_truncated_bmp_with_no_declared_size_is_rejected():
    data = bytearray(encoded(Image.new("RGB", (20, 10)), "BMP"))
    data[2:6] = bytes(4)  # some writers leave the file size at 0
    assert is_complete_image(bytes(data)) and not is_complete_image(bytes(data[:100]))


def test_more_shards_than_samples_still_gives_every_shard_a_sample(folder):
    samples = load_samples("imagefolder", folder, "train", num_samples=1)
    orders = [ImageLoader(samples, small_settings(), 1, True, num_shards=4, shard_id=r).shard_order(0)
              for r in range(4)]
    assert [o.tolist() for o in orders] == [[0], [0], [0], [0]]


CORRUPT_RUN = """
import sys
from mindcv_resnext.data import create_loader, TransformSettings
loader = create_loader("imagefolder", sys.argv[1], "train", TransformSettings(image_resize=24), batch_size=4)
print("images", sum(len(labels) for _, labels in loader.epoch(0)), "skipped", len(loader.skipped))
"""


def test_corrupt_images_are_skipped_named_and_counted_without_ending_the_run(folder, tmp_path):
    root = tmp_path / "bad"
    for split in ("train", "val"):
        for name in CLASSES:
            os.makedirs(root / split / name)
            for i, src in enumerate(sorted(os.listdir(os.path.join(folder, split, name)))[:3]):
                data = open(os.path.join(folder, split, name, src), "rb").read()
                (root / split / name / f"{i}_{src}").write_bytes(data)
    good = (root / "train" / "ant" / "0_0.jpg").read_bytes()
    (root / "train" / "ant" / "header_cut.jpg").write_bytes(good[:300])  # crashed MindSpore's decoder (SIGFPE)
    (root / "train" / "bee" / "garbage.jpg").write_bytes(b"not a jpeg at all" * 10)
    (root / "train" / "cat" / "empty.png").write_bytes(b"")
    result = subprocess.run([sys.executable, "-c", CORRUPT_RUN, str(root)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, GLOG_v="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    warning = [line for line in result.stdout.splitlines() if line.startswith("warning")]
    assert len(warning) == 1 and "skipped 3 unreadable image(s)" in warning[0]
    for name in ("header_cut.jpg", "garbage.jpg", "empty.png"):
        assert name in warning[0]
    # 12 files, 3 unreadable: 2 full batches and 1 image; the third batch is topped up so that every rank of a
    # data-parallel run still takes len(loader) = 3 steps.
    assert "images 12 skipped 3" in result.stdout


def test_check_dataset_lists_classes_counts_and_unreadable_files(folder, tmp_path):
    root = tmp_path / "check"
    for name in CLASSES:
        write_image(str(root / "train" / name / "a.jpg"), 1)
    (root / "train" / "bee" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 40)
    result = subprocess.run([sys.executable, "scripts/check_dataset.py", "--data_dir", str(root), "--workers", "1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "train: 4 images in 3 classes" in result.stdout and "  bee: 2" in result.stdout
    assert "unreadable: " in result.stdout and "broken.jpg" in result.stdout
    assert result.stdout.strip().endswith("1 unreadable file(s)")


# --- demo data and the benchmark --------------------------------------------------------------------------------------

def test_demo_data_is_deterministic_and_complete(tmp_path):
    for root in ("a", "b"):
        assert make_demo_dataset(str(tmp_path / root), train_per_class=2, val_per_class=1, size=32, seed=5)
    assert not make_demo_dataset(str(tmp_path / "a"), train_per_class=2, val_per_class=1, size=32, seed=5)
    samples = load_samples("imagefolder", str(tmp_path / "a"), "train")
    assert len(samples) == 20 and len(samples.class_names) == 10
    for path in samples.items:
        assert open(path, "rb").read() == open(path.replace(os.sep + "a" + os.sep, os.sep + "b" + os.sep),
                                               "rb").read()


def test_benchmark_script_prints_one_json_line_with_both_rates():
    result = subprocess.run([sys.executable, "scripts/benchmark_data.py", "--generate", "40", "--epochs", "1",
                             "--batch_size", "8", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, GLOG_v="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert row["img_per_s"] > 0 and row["pillow_img_per_s"] > 0 and row["images"] == 40
