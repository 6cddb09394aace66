"""Where samples come from: an ImageFolder tree of files, or CIFAR-10/100 records as users download them.

A source is a plain list of samples (file paths, or decoded HWC uint8 arrays for CIFAR), their integer labels and the
class names, so that sharding, ordering and the pipeline can be written once for all of them. Bad layouts are
errors that name the path and the layout that was expected.
"""
import dataclasses
import io
import os
import pickle

import numpy as np
from PIL import Image

from ..config import SCHEMA_BY_NAME
from .image_check import is_complete_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
IMAGEFOLDER_LAYOUT = "expected DATA_DIR/<split>/<class name>/<image files> (the ImageNet layout)"


class DataError(ValueError):
    """A dataset that cannot be used as given: the message says what is wrong and what was expected."""
    exit_code = 1


@dataclasses.dataclass
class Samples:
    """One split of a dataset.

    items: file paths (ImageFolder: decoded later by the pipeline) or an (N, H, W, 3) uint8 array (CIFAR).
    labels: int32 array of class indices; class_names[i] names class i.
    """
    items: object
    labels: np.ndarray
    class_names: list
    root: str
    pixel_size: int = None  # the side of the stored pixel arrays (CIFAR: 32); None: image files still to decode

    def __len__(self):
        return len(self.labels)

    def read(self, index):
        """What the pipeline decodes: the file's bytes (empty when unreadable, see read_image_bytes), or the pixels."""
        return read_image_bytes(self.items[index]) if self.pixel_size is None else self.items[index]

    def describe(self, index):
        """A name for sample `index` that a user can find: the file, or the record number."""
        return self.items[index] if self.pixel_size is None else f"{self.root} record {index}"

    def subset(self, indices):
        items = [self.items[i] for i in indices] if self.pixel_size is None else self.items[indices]
        return dataclasses.replace(self, items=items, labels=self.labels[indices])


def read_image_bytes(path):
    """The file's bytes as uint8, WebP (which MindSpore cannot decode) re-encoded as BMP; empty when the file cannot
    be read or is not a whole JPEG/PNG/BMP, so that the decoder drops it and the epoch reports it."""
    try:
        if path.lower().endswith(".webp"):
            with Image.open(path) as image:
                buffer = io.BytesIO()
                image.convert("RGB").save(buffer, "BMP")
            data = buffer.getvalue()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except Exception:  # unreadable for any reason
        return np.empty(0, np.uint8)
    return np.frombuffer(data, np.uint8) if is_complete_image(data) else np.empty(0, np.uint8)


def limit_samples(samples, num_samples, seed=0):
    """Cap a split at `num_samples`, keeping a fixed random subset (the same for every epoch and every rank)."""
    if num_samples is None or num_samples >= len(samples):
        return samples
    if num_samples < 1:
        raise DataError(f"num_samples must be at least 1, got {num_samples}")
    keep = np.sort(np.random.RandomState(seed).permutation(len(samples))[:num_samples])
    return samples.subset(keep)


def scan_image_folder(split_dir):
    """Classes are the sorted sub-folder names; images are files with an image extension (any case), at any depth."""
    if not os.path.isdir(split_dir):
        raise DataError(f"data split not found: {split_dir} ({IMAGEFOLDER_LAYOUT})")
    class_names = sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith("."))
    if not class_names:
        raise DataError(f"no class folders in {split_dir} ({IMAGEFOLDER_LAYOUT})")
    paths, labels, empty = [], [], []
    for label, name in enumerate(class_names):
        found = []
        for folder, subfolders, files in os.walk(os.path.join(split_dir, name), followlinks=True):
            subfolders.sort()
            found += [os.path.join(folder, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
        if not found:
            empty.append(name)
        paths += found
        labels += [label] * len(found)
    if empty:
        raise DataError(f"{len(empty)} class folder(s) in {split_dir} hold no images ({', '.join(empty[:5])}); "
                        f"images are files ending in {', '.join(IMAGE_EXTENSIONS)}: add some or remove the folder")
    return Samples(paths, np.asarray(labels, np.int32), class_names, root=split_dir)


def image_folder(data_dir, split, train_split="train", val_split="val"):
    """The `split` ("train" or "val") of an ImageFolder dataset; train and val must have the same classes."""
    if not os.path.isdir(data_dir):
        raise DataError(f"data_dir {data_dir} is a file, not a folder ({IMAGEFOLDER_LAYOUT})" if
                        os.path.exists(data_dir) else f"data_dir not found: {data_dir} ({IMAGEFOLDER_LAYOUT})")
    samples = scan_image_folder(os.path.join(data_dir, train_split if split == "train" else val_split))
    other_dir = os.path.join(data_dir, val_split if split == "train" else train_split)
    if os.path.isdir(other_dir):
        other = sorted(e.name for e in os.scandir(other_dir) if e.is_dir() and not e.name.startswith("."))
        if other and other != samples.class_names:
            only_here = sorted(set(samples.class_names) - set(other))
            only_there = sorted(set(other) - set(samples.class_names))
            raise DataError(f"{train_split!r} and {val_split!r} in {data_dir} have different classes: "
                            f"only in {split}: {only_here[:5] or 'none'}, only in the other: {only_there[:5] or 'none'}"
                            " (both splits need the same class folders)")
    return samples


# CIFAR in both formats users download. Binary records: <label byte(s)><3072 bytes, CHW>.
CIFAR_FILES = {
    # dataset: (train files, test files, label bytes per record, label byte used, python label key, folder names)
    "cifar10": ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], 1, 0, b"labels",
                ("cifar-10-batches-bin", "cifar-10-batches-py")),
    "cifar100": (["train"], ["test"], 2, 1, b"fine_labels", ("cifar-100-binary", "cifar-100-python")),
}
CIFAR_META = {"cifar10": ("batches.meta.txt", "batches.meta", b"label_names"),
              "cifar100": ("fine_label_names.txt", "meta", b"fine_label_names")}


def _cifar_dir(data_dir, dataset):
    """The folder holding the CIFAR files: data_dir itself or the folder the archive unpacks to."""
    for folder in (data_dir, *(os.path.join(data_dir, name) for name in CIFAR_FILES[dataset][5])):
        names = set(os.listdir(folder)) if os.path.isdir(folder) else set()
        first_train = CIFAR_FILES[dataset][0][0]
        if any(os.path.isfile(os.path.join(folder, name)) for name in (first_train, first_train + ".bin")
               if name in names):
            return folder
    if not os.path.isdir(data_dir):
        raise DataError(f"data_dir not found: {data_dir} (expected the {dataset.upper()} binary or python files)")
    raise DataError(f"no {dataset.upper()} files in {data_dir}: expected {CIFAR_FILES[dataset][0][0]}(.bin) there or "
                    f"in {' or '.join(CIFAR_FILES[dataset][5])}/ (the binary or python version from the CIFAR page)")


def _read_cifar_binary(path, label_bytes, label_index):
    raw = np.fromfile(path, np.uint8)
    record = label_bytes + 3072
    if raw.size == 0 or raw.size % record:
        raise DataError(f"{path} is not a CIFAR binary file: {raw.size} bytes is not a multiple of {record}")
    raw = raw.reshape(-1, record)
    return raw[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), raw[:, label_index].astype(np.int32)


def _read_cifar_python(path, label_key):
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        images = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return images, np.asarray(batch[label_key], np.int32)
    except Exception as err:  # unpickling a damaged file can raise nearly anything
        raise DataError(f"{path} is not a CIFAR python batch ({type(err).__name__}: {err})") from err


def _cifar_class_names(folder, dataset, num_classes):
    text_name, pickle_name, key = CIFAR_META[dataset]
    text_path, pickle_path = os.path.join(folder, text_name), os.path.join(folder, pickle_name)
    if os.path.isfile(text_path):
        with open(text_path) as f:
            names = [line.strip() for line in f if line.strip()]
    elif os.path.isfile(pickle_path):
        try:
            with open(pickle_path, "rb") as f:
                names = [n.decode() for n in pickle.load(f, encoding="bytes")[key]]
        except Exception:  # damaged metadata: fall back to numbered class names
            names = []
    else:
        names = []
    return names if len(names) == num_classes else [str(i) for i in range(num_classes)]


def cifar(data_dir, split, dataset="cifar10"):
    """CIFAR-10 or CIFAR-100, binary or python version, from data_dir or the folder its archive unpacks to."""
    train_files, test_files, label_bytes, label_index, label_key, _ = CIFAR_FILES[dataset]
    folder = _cifar_dir(data_dir, dataset)
    images, labels = [], []
    for name in train_files if split == "train" else test_files:
        binary, python = os.path.join(folder, name + ".bin"), os.path.join(folder, name)
        if os.path.isfile(binary):
            part = _read_cifar_binary(binary, label_bytes, label_index)
        elif os.path.isfile(python):
            part = _read_cifar_python(python, label_key)
        else:
            raise DataError(f"{dataset.upper()} file missing: {binary} or {python}")
        images.append(part[0])
        labels.append(part[1])
    labels = np.concatenate(labels)
    num_classes = 10 if dataset == "cifar10" else 100
    if labels.min() < 0 or labels.max() >= num_classes:
        raise DataError(f"labels in {folder} run outside 0..{num_classes - 1}: is this {dataset.upper()}?")
    return Samples(np.ascontiguousarray(np.concatenate(images)), labels,
                   _cifar_class_names(folder, dataset, num_classes), root=folder, pixel_size=32)


DATASETS = SCHEMA_BY_NAME["dataset"].choices  # "imagenet" is MindCV's name for an ImageFolder


def load_samples(dataset, data_dir, split, train_split="train", val_split="val", num_samples=None, seed=0):
    """One split ("train" or "val") of `dataset` (imagefolder, cifar10, cifar100), capped at `num_samples`."""
    if dataset in ("imagefolder", "imagenet"):
        samples = image_folder(data_dir, split, train_split, val_split)
    elif dataset in ("cifar10", "cifar100"):
        samples = cifar(data_dir, split, dataset)
    else:
        raise DataError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    return limit_samples(samples, num_samples, seed)
