"""Classify images with a checkpoint: its network, its class names and the eval transform its weights were scored with.

    classifier = Classifier.from_checkpoint("ckpt/best.ckpt")
    classifier.predict(["cat.jpg", Image.open("dog.png"), pixels_hwc_uint8], topk=5)
    # -> [[Prediction(label=281, name='tabby', probability=0.91), ...], ...]

infer.py is the command line of the same (commands.infer_command).
"""
import collections
import os

import mindspore as ms
import numpy as np
from PIL import Image

from .data.image_check import is_complete_image
from .data.sources import IMAGE_EXTENSIONS, DataError, read_image_bytes
from .data.transforms import eval_image_ops

Prediction = collections.namedtuple("Prediction", "label name probability")

UNREADABLE = "damaged, or not an image format this reads (JPEG, PNG, BMP, WebP)"


class Classifier:
    """A network in eval mode with the class names and the eval TransformSettings that go with its weights.

    `forward` (batch array -> logits array) runs it another way, e.g. export.OnnxRuntimeNetwork; by default the
    MindSpore network itself."""

    def __init__(self, network, settings, class_names, forward=None):
        self.network, self.settings, self.class_names = network, settings, list(class_names)
        self.network.set_train(False)
        self.forward = forward or (lambda batch: self.network(ms.Tensor(batch)).asnumpy())
        self._file_ops = eval_image_ops(settings)  # encoded bytes -> normalised CHW float32
        self._pixel_ops = self._file_ops[1:]        # the same after decoding

    @staticmethod
    def from_checkpoint(path, argv=()):
        """The classifier of a checkpoint; `argv` may change its settings as on infer.py's command line. Like
        infer.py it sets MindSpore's device (device_target) and mode (PyNative unless --mode 0)."""
        from .commands import load_classifier
        return load_classifier(["--ckpt_path", os.fspath(path), *argv])[0]

    def preprocess(self, image):
        """One image (a file path, encoded bytes, a Pillow image or an HWC uint8 RGB array) -> CHW float32."""
        if isinstance(image, (str, os.PathLike)):
            image = read_image_bytes(os.fspath(image))  # WebP re-encoded; empty when not a whole image
        elif isinstance(image, bytes):
            image = np.frombuffer(image, np.uint8) if is_complete_image(image) else np.empty(0, np.uint8)
        if isinstance(image, np.ndarray) and image.ndim == 1:  # encoded: checked before MindSpore's decoder sees
            if image.size == 0:                                  # it (it writes what it cannot decode to the cwd)
                raise DataError(UNREADABLE)
            data, ops = image, self._file_ops
        else:
            data = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, np.uint8))
            data = data.convert("RGB")  # Pillow's own ops with eval_antialias, OpenCV's on the pixels otherwise
            data = data if self.settings.eval_antialias else np.asarray(data)
            ops = self._pixel_ops
        try:
            for op in ops:
                data = op(data)
        except RuntimeError as err:  # MindSpore's decoder says only "Exception thrown from dataset pipeline"
            if ops is self._file_ops:
                raise DataError(UNREADABLE) from err
            raise
        return np.asarray(data, np.float32)

    def probabilities(self, batch):
        logits = np.asarray(self.forward(batch), np.float64)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    def top(self, probabilities, topk):
        order = np.argsort(-probabilities, kind="stable")[:min(topk, len(self.class_names))]
        return [Prediction(int(i), self.class_names[i], float(probabilities[i])) for i in order]

    def predict(self, images, topk=5):
        """The top-k Predictions of each image, most probable first."""
        batch = np.stack([self.preprocess(image) for image in images])
        return [self.top(p, topk) for p in self.probabilities(batch)]

    def predict_files(self, paths, topk=5, batch_size=16, on_error=None, progress=None):
        """(path, Predictions) for each readable file, in batches; an unreadable one goes to on_error(path, reason)
        and is skipped. `progress(n)` is called with the number of files done after each batch."""
        for start in range(0, len(paths), batch_size):
            ready, batch = [], []
            for path in paths[start:start + batch_size]:
                try:
                    batch.append(self.preprocess(path))
                    ready.append(path)
                except Exception as err:  # a corrupt or truncated file, or one the transform cannot crop
                    if on_error is None:
                        raise
                    on_error(path, str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
            if batch:
                for path, probabilities in zip(ready, self.probabilities(np.stack(batch))):
                    yield path, self.top(probabilities, topk)
            if progress:
                progress(len(paths[start:start + batch_size]))


def image_files(inputs):
    """The image files named by `inputs`: files as given, folders walked (sorted) for image extensions."""
    files = []
    for path in inputs:
        if os.path.isdir(path):
            found = sorted(os.path.join(folder, name) for folder, _, names in os.walk(path) for name in names
                           if name.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise DataError(f"{path} holds no image ({', '.join(IMAGE_EXTENSIONS)})")
            files += found
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise DataError(f"no such image or folder: {path}")
    return files

