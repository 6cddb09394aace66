"""Batches for one rank and one epoch, in an order that depends only on (seed, epoch).

Every epoch builds its pipeline anew, with the sample order and the augmentation seed derived from (seed, epoch):
a run resumed at epoch e sees exactly the batches and augmentations the uninterrupted run would have seen. Training
shards are a strided slice of one permutation padded to a multiple of the number of shards (every rank takes the
same number of steps; the union is the whole set); evaluation shards are disjoint and cover every sample once.

Unreadable images never end a run: the file bytes are read in Python and decoded by MindSpore's C++ ops with
`ErrorSamplesMode.SKIP`, and the sample index travels with each image, so the files that were dropped are found at
the end of the epoch, named in a warning and counted.
"""
import math

import numpy as np
import mindspore.dataset as ds

from .sources import DataError, limit_samples, load_samples
from .transforms import TransformSettings, eval_image_ops, mix_batch, train_image_ops


class _Reader:
    """GeneratorDataset source: (image, label, sample index) in a given order."""

    def __init__(self, samples, order):
        self.samples, self.order = samples, order

    def __len__(self):
        return len(self.order)

    def __getitem__(self, position):
        index = int(self.order[position])
        return self.samples.read(index), self.samples.labels[index], np.int64(index)


class ImageLoader:
    """Batches of one split for one shard: `for images, labels in loader.epoch(e)`.

    Training: shuffled per epoch, full batches only, labels int32 (N,) or, with mixup/cutmix (mixed in the
    pipeline's workers), float32 soft targets (N, num_classes). Evaluation: every sample of the shard once, in a fixed order (shuffled by seed with
    eval_shuffle, MindCV's option), the last batch may be smaller.
    """

    def __init__(self, samples, settings=None, batch_size=32, training=True, num_shards=1, shard_id=0, seed=0,
                 num_workers=2, log=print, eval_shuffle=False, split_size=None):
        if not 0 <= shard_id < num_shards:
            raise ValueError(f"shard_id must be in 0..{num_shards - 1}, got {shard_id}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.samples, self.settings = samples, settings or TransformSettings()
        self.batch_size, self.training = batch_size, training
        self.num_shards, self.shard_id, self.seed = num_shards, shard_id, seed
        self.num_workers, self.log, self.eval_shuffle = num_workers, log, eval_shuffle
        self.split_size = split_size or len(samples)  # the whole split, before any num_samples cap
        self.class_names = samples.class_names
        self.num_classes = len(samples.class_names)
        self.skipped = []  # (epoch, file) of every image that could not be decoded
        if training and self.shard_size() < batch_size:
            raise DataError(f"a training shard holds {self.shard_size()} samples, fewer than one batch of "
                             f"{batch_size}: lower batch_size or add data")

    def shard_size(self):
        n = len(self.samples)
        return math.ceil(n / self.num_shards) if self.training else len(range(self.shard_id, n, self.num_shards))

    def __len__(self):
        """Batches per epoch (before any unreadable file is dropped)."""
        size = self.shard_size()
        return size // self.batch_size if self.training else math.ceil(size / self.batch_size)

    def shard_order(self, epoch):
        """Sample indices this shard reads in `epoch` (0, 1, ...), in reading order."""
        if epoch < 0:
            raise ValueError(f"epoch must be 0 or more, got {epoch}")
        n = len(self.samples)
        if not self.training:
            order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.eval_shuffle else np.arange(n)
            return order[self.shard_id::self.num_shards]
        order = np.random.default_rng([self.seed, epoch]).permutation(n)
        padded = np.resize(order, self.num_shards * math.ceil(n / self.num_shards))  # repeats from the start
        return padded[self.shard_id::self.num_shards]

    def image_ops(self):
        """The per-image transforms this loader's pipeline applies."""
        return (train_image_ops if self.training else eval_image_ops)(self.settings, self.samples.pixel_size)

    def pipeline(self, order, epoch):
        # Augmentation randomness per (seed, epoch, shard). MindSpore's set_seed also reseeds Python's `random` and
        # numpy's global generator; nothing here draws from those.
        ds.config.set_seed(int(np.random.SeedSequence([self.seed, epoch, self.shard_id]).generate_state(1)[0]))
        ds.config.set_error_samples_mode(ds.config.ErrorSamplesMode.SKIP)
        data = ds.GeneratorDataset(_Reader(self.samples, order), ["image", "label", "index"], shuffle=False,
                                   python_multiprocessing=False)
        data = data.map(self.image_ops(), input_columns="image", num_parallel_workers=self.num_workers)
        if not (self.training and self.settings.mixes):
            return data.batch(self.batch_size, drop_remainder=False)
        # Mixup/CutMix in the pipeline's workers, ahead of the step, with a generator per (seed, epoch, shard,
        # batch): the same mix whichever worker runs it, and for a resumed run.
        settings, num_classes, seeds = self.settings, self.num_classes, [self.seed, epoch, self.shard_id, 1]

        def mix(images, labels, batch_info):
            rng = np.random.default_rng([*seeds, batch_info.get_batch_num()])
            return mix_batch(np.stack(images), np.stack(labels), settings, num_classes, rng)
        return data.batch(self.batch_size, drop_remainder=False, input_columns=["image", "label"],
                          per_batch_map=mix, num_parallel_workers=self.num_workers)

    def epoch(self, epoch):
        """Yield (images float32 (N, 3, H, W), labels) for `epoch`; report unreadable files when it ends."""
        order = self.shard_order(epoch)
        seen, full_batches, partial, last = [], 0, None, None
        for images, labels, indices in self.pipeline(order, epoch).create_tuple_iterator(output_numpy=True,
                                                                                          num_epochs=1):
            seen.append(indices)
            if self.training and len(labels) < self.batch_size:
                partial = (images, labels)  # a partial batch would recompile the graph: held back
                continue
            last, full_batches = (images, labels), full_batches + 1
            yield images, labels
        # Unreadable files can leave fewer full batches than len(self); every rank must take the same number of
        # steps, so the missing ones are made from the held-back partial batch topped up with the last full one.
        while self.training and full_batches < len(self) and (partial or last):
            parts = [p for p in (partial, last) if p is not None]
            images = np.concatenate([p[0] for p in parts])[:self.batch_size]
            labels = np.concatenate([p[1] for p in parts])[:self.batch_size]
            partial, full_batches = None, full_batches + 1
            yield images, labels
        dropped = np.setdiff1d(order, np.concatenate(seen) if seen else [])
        if len(dropped):
            files = [self.samples.describe(i) for i in dropped]
            self.skipped += [(epoch, f) for f in files]
            self.log(f"warning: epoch {epoch + 1}: skipped {len(files)} unreadable image(s) "
                     f"({len(self.skipped)} so far): {', '.join(files)}")


def create_loader(dataset, data_dir, split, settings=None, batch_size=32, num_samples=None, train_split="train",
                  val_split="val", num_shards=1, shard_id=0, seed=0, num_workers=2, log=print, eval_shuffle=False):
    """An ImageLoader over one split ("train" shuffles and augments, "val" evaluates) of an ImageFolder or CIFAR,
    capped at `num_samples` (a fixed subset; the loader's split_size keeps the whole split's size)."""
    samples = load_samples(dataset, data_dir, split, train_split, val_split)
    check_some_are_readable(samples)
    return ImageLoader(limit_samples(samples, num_samples, seed), settings, batch_size, split == "train", num_shards,
                       shard_id, seed, num_workers, log, eval_shuffle, split_size=len(samples))


def check_some_are_readable(samples, probes=16):
    """Read `probes` samples spread over the split; if not one of them can be decoded, the split is unusable, and a
    run must say so before it writes or compiles anything (the pipeline would skip every image and train nothing)."""
    picks = sorted({int(i) for i in np.linspace(0, len(samples) - 1, min(probes, len(samples)))})
    if picks and all(samples.read(i).size == 0 for i in picks):
        raise DataError(f"none of the {len(picks)} images checked in {samples.root} can be read, e.g. "
                        f"{samples.describe(picks[0])}: damaged, or not JPEG/PNG/BMP/WebP (python "
                        "scripts/check_dataset.py lists every bad file)")
