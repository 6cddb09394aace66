"""Published ImageNet weights: where they are, how they were scored, and a cache of their converted checkpoints.

    path = pretrained_checkpoint("resnext50_32x4d")              # the model's best published weights
    path = pretrained_checkpoint("resnext50_32x4d", "resnext50_32x4d.mindcv_in1k")

The first call downloads the file (resumable, hash-checked, atomic) into the cache folder ($MINDCV_RESNEXT_HOME, else
~/.cache/mindcv_resnext), converts it once (convert.py) with the eval transform its publisher scored it with and
the ImageNet class names, and returns the checkpoint; later calls return the cached file. Without network, the
error names the URL and where to put the file by hand.
"""
import dataclasses
import hashlib
import os
import re
import urllib.error
import urllib.request

from .checkpoint import CheckpointError


PRETRAINED_WEIGHTS_ALONE = "pretrained_weights is set but pretrained is false: add --pretrained to start from them"


class PretrainedError(CheckpointError):
    """Published weights that cannot be had: unknown, not downloadable, or damaged."""


def _eval(resize, crop=224, interpolation="bilinear", antialias=True):
    """An eval transform: short side `resize`, centre crop `crop` (torchvision: antialiased Pillow resize)."""
    return dict(image_resize=crop, eval_resize=resize, crop_pct=min(1.0, crop / resize),
                interpolation=interpolation, eval_antialias=antialias)


@dataclasses.dataclass(frozen=True)
class PublishedWeights:
    tag: str              # model.recipe_dataset, as timm names weights
    model: str
    source: str           # torchvision, timm, mmpretrain or mindcv: how convert.py reads the names
    url: str
    top1: float           # ImageNet-1k validation accuracy (%) reported by the publisher, with eval_transform
    top5: float           # None where the publisher gives none
    eval_transform: dict
    sha256: str = ""      # the whole hash where known; otherwise the prefix in the file name is checked

    @property
    def file_name(self):
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self):
        """The sha256 (or its leading hex digits, as torch.hub, mmpretrain and MindCV name their files)."""
        match = re.search(r"-([0-9a-f]{8,64})(?=[-.])", self.file_name)
        return self.sha256 or (match.group(1) if match else "")


TV, MM = "https://download.pytorch.org/models/", "https://download.openmmlab.com/mmclassification/v0/resnext/"
MS = "https://download.mindspore.cn/toolkits/mindcv/resnext/"
PUBLISHED = [PublishedWeights(*row) for row in (
    # torchvision: V1 reproduces the paper; V2 is its 2021 recipe, scored at resize 232 (torchvision's weights docs)
    ("resnext50_32x4d.tv_in1k", "resnext50_32x4d", "torchvision", TV + "resnext50_32x4d-7cdf4587.pth",
     77.618, 93.698, _eval(256)),
    ("resnext50_32x4d.tv2_in1k", "resnext50_32x4d", "torchvision", TV + "resnext50_32x4d-1a0047aa.pth",
     81.198, 95.340, _eval(232)),
    ("resnext101_32x8d.tv_in1k", "resnext101_32x8d", "torchvision", TV + "resnext101_32x8d-8ba56ff5.pth",
     79.312, 94.526, _eval(256)),
    ("resnext101_32x8d.tv2_in1k", "resnext101_32x8d", "torchvision", TV + "resnext101_32x8d-110c445d.pth",
     82.834, 96.228, _eval(232)),
    ("resnext101_64x4d.tv_in1k", "resnext101_64x4d", "torchvision", TV + "resnext101_64x4d-173b62eb.pth",
     83.246, 96.454, _eval(232)),
    # timm: ResNet-strikes-back A1 recipe, scored at its test size 288 with crop_pct 1.0, bicubic
    ("resnext50_32x4d.a1h_in1k", "resnext50_32x4d", "timm",
     "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-rsb-weights/"
     "resnext50_32x4d_a1h-0146ab0a.pth", 81.14, None, _eval(288, 288, "bicubic")),
    # mmpretrain: its ResNeXt configs resize with Pillow (imagenet_bs32_pil_resize), 256 then crop 224
    ("resnext50_32x4d.mmpretrain_in1k", "resnext50_32x4d", "mmpretrain",
     MM + "resnext50_32x4d_b32x8_imagenet_20210429-56066e27.pth", 77.90, 93.66, _eval(256)),
    ("resnext101_32x4d.mmpretrain_in1k", "resnext101_32x4d", "mmpretrain",
     MM + "resnext101_32x4d_b32x8_imagenet_20210506-e0fa3dd5.pth", 78.61, 94.17, _eval(256)),
    ("resnext101_32x8d.mmpretrain_in1k", "resnext101_32x8d", "mmpretrain",
     MM + "resnext101_32x8d_b32x8_imagenet_20210506-23a247d5.pth", 79.27, 94.58, _eval(256)),
    ("resnext152_32x4d.mmpretrain_in1k", "resnext152_32x4d", "mmpretrain",
     MM + "resnext152_32x4d_b32x8_imagenet_20210524-927787be.pth", 78.88, 94.33, _eval(256)),
    # MindCV: OpenCV resize without antialiasing (its eval transform), stem max-pool padded bottom/right
    ("resnext50_32x4d.mindcv_in1k", "resnext50_32x4d", "mindcv",
     "https://download-mindspore.osinfra.cn/toolkits/mindcv/resnext/resnext50_32x4d-988f75bc-910v2.ckpt",
     78.64, 94.18, _eval(256, antialias=False)),
    ("resnext101_32x4d.mindcv_in1k", "resnext101_32x4d", "mindcv", MS + "resnext101_32x4d-3c1e9c51.ckpt",
     79.83, 94.80, _eval(256, antialias=False)),
    ("resnext101_64x4d.mindcv_in1k", "resnext101_64x4d", "mindcv", MS + "resnext101_64x4d-8929255b.ckpt",
     80.30, 94.82, _eval(256, antialias=False)),
    ("resnext152_64x4d.mindcv_in1k", "resnext152_64x4d", "mindcv", MS + "resnext152_64x4d-3aba275c.ckpt",
     80.52, 95.00, _eval(256, antialias=False)),
)]


def published_weights(model=None):
    """The table's entries, of one model or all."""
    return [entry for entry in PUBLISHED if model in (None, entry.model)]


def find_weights(model, tag=None):
    """The entry `tag` (which must be of `model`), or the model's best by reported top-1."""
    if tag:
        entry = next((e for e in PUBLISHED if e.tag == tag), None)
        if entry is None:
            raise PretrainedError(f"no published weights are called {tag!r}; those of {model}: "
                                  f"{', '.join(e.tag for e in published_weights(model)) or 'none'}")
        if entry.model != model:
            raise PretrainedError(f"{tag} are weights of {entry.model}, not of {model}")
        return entry
    entries = published_weights(model)
    if not entries:
        listed = sorted({e.model for e in PUBLISHED})
        raise PretrainedError(f"no published ImageNet weights for {model} (there are for {', '.join(listed)}): "
                              "train it, or give ckpt_path")
    return max(entries, key=lambda e: e.top1)


def cache_dir():
    return os.environ.get("MINDCV_RESNEXT_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "mindcv_resnext")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url, path, hash_prefix, log=print):
    """Fetch `url` to `path`: into `path`.part first (a later call resumes it with an HTTP Range request), then,
    when its sha256 starts with `hash_prefix`, renamed into place; a file with another hash is deleted."""
    from tqdm import tqdm  # a progress bar on a terminal
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    part = path + ".part"
    start = os.path.getsize(part) if os.path.exists(part) else 0
    by_hand = f"download it elsewhere and place it at {path}"
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as err:
        if err.code != 416:  # 416: nothing left past `start`: the .part file is whole
            raise PretrainedError(f"cannot download {url}: HTTP {err.code} {err.reason}; {by_hand}") from None
        response = None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise PretrainedError(f"cannot download {url} ({reason}): no network here? {by_hand}") from None
    if response is not None:
        with response:
            if start and response.status != 206:  # the server ignored the range: start over
                start = 0
            size = response.headers.get("Content-Length")
            total = start + int(size) if size is not None else None
            log(f"downloading {url} to {path}" + (f" (resuming at {start / 2**20:.1f} MB)" if start else ""))
            try:
                with open(part, "ab" if start else "wb") as f, \
                        tqdm(total=total, initial=start, unit="B", unit_scale=True, leave=False) as bar:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        f.write(chunk)
                        bar.update(len(chunk))
            except OSError as err:
                raise PretrainedError(f"the download of {url} broke off ({err}): run again to resume it, or "
                                      f"{by_hand}") from None
            if total is not None and os.path.getsize(part) < total:
                raise PretrainedError(f"the download of {url} broke off at {os.path.getsize(part)} of {total} "
                                      "bytes: run again to resume it")
    digest = sha256_of(part)
    if not digest.startswith(hash_prefix):
        os.remove(part)
        raise PretrainedError(f"{url} has sha256 {digest[:16]}..., not the published {hash_prefix}...: the file is "
                              "damaged or was replaced, and was deleted; run again, or " + by_hand)
    os.replace(part, path)
    return path


def pretrained_checkpoint(model, tag=None, log=print):
    """The path of our checkpoint of published weights of `model` (`tag`, or the model's best), downloading and
    converting them on first use. Under msrun the ranks take turns on a lock: one downloads, the others wait."""
    entry = find_weights(model, tag)
    folder = cache_dir()
    output = os.path.join(folder, f"{entry.tag}.ckpt")
    if os.path.exists(output):
        return output
    os.makedirs(folder, exist_ok=True)
    import fcntl
    with open(os.path.join(folder, f".{entry.tag}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(output):  # another rank made it while this one waited
            return output
        source = os.path.join(folder, "downloads", entry.file_name)
        if os.path.exists(source):  # downloaded before, or placed by hand
            if not sha256_of(source).startswith(entry.hash_prefix):
                raise PretrainedError(f"{source} does not have the published sha256 ({entry.hash_prefix}...): "
                                      f"delete it, and download {entry.url} again")
        else:
            download(entry.url, source, entry.hash_prefix, log)
        from .convert import convert, read_weights
        log(f"converting {entry.tag} ({entry.source}, top-1 {entry.top1} reported) once, into {output}")
        convert(read_weights(source), model, output, entry.source, entry.eval_transform, log=log,
                extra_meta=dict(pretrained=entry.tag))
    return output
