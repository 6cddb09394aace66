"""Weights of other ResNeXt implementations -> our self-describing checkpoints.

    state = read_torch_file("resnext50_32x4d-7cdf4587.pth")        # name -> numpy array, without torch installed
    convert(state, "resnext50_32x4d", "resnext50.ckpt", source="torchvision")

PyTorch files (torchvision, timm, mmpretrain) are read by a restricted unpickler: it rebuilds tensors as numpy arrays
from the zip archive `torch.save` writes and refuses every other object (these files come from the internet, and a
pickle can run any code). Names are mapped onto ours (MindCV's), every shape is checked against the network the
name builds, and the checkpoint records the eval transform and stem pooling that belong to the weights.
"""
import collections
import os
import pickle
import zipfile

import numpy as np

from .checkpoint import CheckpointError, read_checkpoint, save_checkpoint

# --- reading torch.save files without torch ------------------------------------------------------------------------

STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                  "BFloat16Storage": np.uint16, "LongStorage": np.int64, "IntStorage": np.int32,
                  "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class _Storage:
    """The type of a storage, as the pickle names it (torch.FloatStorage, ...)."""

    def __init__(self, name):
        self.name, self.dtype = name, STORAGE_DTYPES[name]


def _rebuild_tensor(storage, offset, size, stride, *unused):
    array, bfloat16 = storage
    view = np.array(np.lib.stride_tricks.as_strided(array[offset:], shape=tuple(size),
                                                    strides=tuple(s * array.itemsize for s in stride)))  # a copy
    if bfloat16:  # the upper half of a float32
        view = (view.astype(np.uint32) << 16).view(np.float32)
    return view


def _rebuild_parameter(data, *unused):
    return data


class _TorchUnpickler(pickle.Unpickler):
    ALLOWED = {("collections", "OrderedDict"): collections.OrderedDict,
               ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
               ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}

    def __init__(self, file, archive, prefix):
        super().__init__(file)
        self.archive, self.prefix, self.storages = archive, prefix, {}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _Storage(name)
        raise CheckpointError(f"refusing to load {module}.{name} from a PyTorch file: only tensors, dicts and "
                              "numbers are read (save the state_dict alone, or convert it where torch is installed)")

    def persistent_load(self, pid):
        kind, storage, key, *unused = pid
        if kind != "storage" or not isinstance(storage, _Storage):
            raise CheckpointError(f"unexpected persistent object {pid!r} in a PyTorch file")
        if key not in self.storages:
            raw = self.archive.read(f"{self.prefix}data/{key}")
            self.storages[key] = (np.frombuffer(raw, storage.dtype), storage.name == "BFloat16Storage")
        return self.storages[key]


def read_torch_file(path):
    """name -> numpy array from a `torch.save` file (the zip format of PyTorch >= 1.6); a dict holding `state_dict`
    or `model` is unwrapped, and a `module.` prefix (DataParallel) is dropped."""
    if not os.path.isfile(path):
        raise CheckpointError(f"weights file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a zip-format torch.save file (PyTorch >= 1.6): re-save it with "
                              "torch.save(model.state_dict(), path)")
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
        if not pickles:
            raise CheckpointError(f"{path} holds no data.pkl: not a torch.save file")
        prefix = pickles[0][:-len("data.pkl")]
        if f"{prefix}byteorder" in archive.namelist() and archive.read(f"{prefix}byteorder") != b"little":
            raise CheckpointError(f"{path} was saved on a big-endian machine: not supported")
        with archive.open(pickles[0]) as f:
            data = _TorchUnpickler(f, archive, prefix).load()
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a state dict (got {type(data).__name__})")
    return {name[len("module."):] if name.startswith("module.") else name: value for name, value in data.items()
            if isinstance(value, np.ndarray)}


# --- names ------------------------------------------------------------------------------------------------------

BN_NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
TRAINING_STATE = ("moments.", "accum.", "ema.", "opt.", "scaler.")  # what a MindSpore training checkpoint adds
SOURCES = ("torchvision", "timm", "mmpretrain", "mindcv")


def guess_source(names):
    names = set(names)
    if any(name.startswith("backbone.") for name in names):
        return "mmpretrain"
    if "bn1.gamma" in names or "classifier.weight" in names:
        return "mindcv"
    return "torchvision"  # timm's ResNeXt names are torchvision's


def our_name(name, source, ours):
    """The name of a source's tensor in our network (whose names are `ours`); None for what we do not keep."""
    if source == "mmpretrain":
        name = name[len("backbone."):] if name.startswith("backbone.") else name.replace("head.fc.", "fc.", 1)
    if source != "mindcv":
        name = name.replace("downsample", "down_sample")
        name = "classifier." + name[3:] if name.startswith("fc.") else name
        module, _, leaf = name.rpartition(".")
        if leaf == "num_batches_tracked":
            return None
        if leaf in BN_NAMES and f"{module}.{BN_NAMES[leaf]}" in ours:
            name = f"{module}.{BN_NAMES[leaf]}"
    return name


# --- converting ---------------------------------------------------------------------------------------------------

# The eval transform each source scores its weights with, unless the table of published weights (pretrained.py)
# knows the file: torchvision, timm and mmpretrain resize with Pillow (antialiased), MindCV with OpenCV.
EVAL_TRANSFORMS = {
    "torchvision": dict(image_resize=224, crop_pct=0.875, eval_resize=None, interpolation="bilinear",
                        eval_antialias=True),
    "timm": dict(image_resize=224, crop_pct=0.875, eval_resize=None, interpolation="bicubic", eval_antialias=True),
    "mmpretrain": dict(image_resize=224, crop_pct=0.875, eval_resize=None, interpolation="bilinear",
                       eval_antialias=True),
    "mindcv": dict(image_resize=224, crop_pct=0.875, eval_resize=None, interpolation="bilinear",
                   eval_antialias=False),
}
IMAGENET_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
IMAGENET_STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]


def read_safetensors(path):
    """name -> numpy array of a .safetensors file (the format timm publishes on the Hugging Face hub)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        state = load_file(path)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"cannot read {path} as safetensors: {err}") from None
    return {name: value.astype(np.float32) if value.dtype == np.float16 else value for name, value in state.items()}


def read_weights(path):
    """name -> numpy array of a PyTorch file, a .safetensors file or a MindSpore checkpoint (MindCV's)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"weights file not found: {path}")
    if path.endswith(".ckpt"):
        return {name: value.asnumpy() for name, value in read_checkpoint(path).items() if hasattr(value, "asnumpy")}
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    return read_torch_file(path)


def imagenet_class_names():
    """The 1000 ImageNet-1k class names in label order (torchvision's spelling), shipped with the package."""
    with open(os.path.join(os.path.dirname(__file__), "data", "imagenet_classes.txt"), encoding="utf-8") as f:
        return f.read().splitlines()


def convert(state, model_name, output, source=None, eval_transform=None, log=print, extra_meta=None):
    """Map `state` (name -> array) onto `model_name`, check every name and shape, and write our checkpoint to `output`
    with the eval transform and stem pooling of the source (and ImageNet's class names for a 1000-class head).
    Returns the metadata written."""
    from .models import create_model  # the network these weights must fit
    source = source or guess_source(state)
    if source not in SOURCES:
        raise CheckpointError(f"unknown source {source!r}: one of {', '.join(SOURCES)}")
    classes = next((value.shape[0] for name, value in state.items() if name.endswith(("fc.weight",
                                                                                      "classifier.weight"))), None)
    if classes is None:
        raise CheckpointError("the file has no classifier (fc.weight / head.fc.weight / classifier.weight)")
    pool = "same" if source == "mindcv" else "symmetric"  # MindCV's max-pool pads bottom/right only
    network = create_model(model_name, num_classes=classes, stem_pool_pad=pool)
    wanted = network.parameters_dict()
    mapped, unexpected = {}, []
    for name, value in state.items():
        target = our_name(name, source, wanted)
        if target in wanted:
            mapped[target] = value
        elif target is not None and not name.startswith(TRAINING_STATE) and "." in name:
            unexpected.append(name)
    missing = [name for name in wanted if name not in mapped]
    mismatched = [f"{name} {tuple(mapped[name].shape)} (network {tuple(wanted[name].shape)})" for name in wanted
                  if name in mapped and tuple(mapped[name].shape) != tuple(wanted[name].shape)]
    if missing or unexpected or mismatched:
        raise CheckpointError(f"the {source} weights do not fit {model_name}: " + "; ".join(
            f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''} ({len(names)})"
            for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched))
            if names))
    import mindspore as ms
    ms.load_param_into_net(network, {name: ms.Parameter(ms.Tensor(mapped[name].astype(np.float32)), name=name)
                                     for name in wanted}, strict_load=True)
    transform = dict(EVAL_TRANSFORMS[source], mean=IMAGENET_MEAN, std=IMAGENET_STD, **(eval_transform or {}))
    imagenet = classes == 1000  # named by ImageNet's classes, in torchvision's words rather than folder names
    meta = dict(model=model_name, num_classes=classes, class_names=imagenet_class_names() if imagenet else None,
                class_set="imagenet-1k" if imagenet else None, source=source,
                model_options=dict(in_channels=3, drop_rate=0.0, drop_path_rate=0.0, zero_init_last=False,
                                   stem_pool_pad=pool), eval_transform=transform, **(extra_meta or {}))
    save_checkpoint(output, network, meta)
    log(f"converted {len(mapped)} tensors of {source} weights into {output} ({model_name}, {classes} classes, "
        f"stem pooling {pool!r}, eval: resize {transform['eval_resize'] or 'by crop_pct ' + str(transform['crop_pct'])}"
        f", crop {transform['image_resize']}, {transform['interpolation']}"
        f"{', antialiased' if transform['eval_antialias'] else ''})")
    return meta
