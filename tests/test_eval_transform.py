"""The eval tensor our loader makes from real photographs equals torchvision's and timm's (Pillow, antialiased) when
eval_antialias is on; OpenCV's resize, without antialiasing, is grey levels away (docs/eval-transform.md)."""
import importlib.util
import os
import shutil

import matplotlib
import numpy as np
import pytest
from PIL import Image

from mindcv_resnext.data import TransformSettings, create_loader

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def photographs():
    """Photographs that imaging packages bundle: matplotlib's (a requirement) and scikit-image's (test-only)."""
    found = [os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", "grace_hopper.jpg")]
    spec = importlib.util.find_spec("skimage")  # its data folder, without importing the package
    if spec is not None:
        folder = os.path.join(spec.submodule_search_locations[0], "data")
        found += [os.path.join(folder, name) for name in ("astronaut.png", "chelsea.png", "coffee.png",
                                                          "motorcycle_left.png", "rocket.jpg", "retina.jpg",
                                                          "hubble_deep_field.jpg")]
    return [path for path in found if os.path.isfile(path)]


def torchvision_eval(path, resize, crop, interpolation):
    """transforms.Resize(resize, interpolation) -> CenterCrop(crop) -> ToTensor -> Normalize, written out in Pillow
    as torchvision does it (the long side int(resize * long / short); the crop offset rounded)."""
    image = Image.open(path).convert("RGB")
    width, height = image.size
    short, long = sorted((width, height))
    size = (resize, int(resize * long / short)) if width <= height else (int(resize * long / short), resize)
    image = image.resize(size, interpolation)
    top, left = int(round((size[1] - crop) / 2.0)), int(round((size[0] - crop) / 2.0))
    pixels = np.asarray(image.crop((left, top, left + crop, top + crop)), np.float64) / 255
    return ((pixels - MEAN) / STD).transpose(2, 0, 1)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    paths = photographs()
    root = tmp_path_factory.mktemp("photos")
    for i, path in enumerate(paths):
        os.makedirs(root / "val" / f"c{i}")
        shutil.copy(path, root / "val" / f"c{i}" / os.path.basename(path))
    return str(root), paths


# torchvision V1 and mmpretrain; torchvision V2; timm's test size for its RSB weights
@pytest.mark.parametrize("resize,crop,interpolation", [(256, 224, "bilinear"), (232, 224, "bilinear"),
                                                       (288, 288, "bicubic")])
def test_the_antialiased_eval_transform_equals_torchvisions_on_photographs(photo_folder, resize, crop, interpolation):
    root, paths = photo_folder
    pillow = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[interpolation]
    expected = np.stack([torchvision_eval(path, resize, crop, pillow) for path in paths])

    def grey_levels_away(antialias):
        settings = TransformSettings(image_resize=crop, eval_resize=resize, interpolation=interpolation,
                                     eval_antialias=antialias)
        loader = create_loader("imagefolder", root, "val", settings, batch_size=len(paths), num_workers=1)
        images, labels = next(loader.epoch(0))
        assert list(labels) == list(range(len(paths)))  # one photograph a class: the batch is in `paths` order
        return (np.abs(images - expected) * STD[:, None, None] * 255).mean(axis=(1, 2, 3))

    ours = grey_levels_away(True)
    assert ours.max() < 1e-3, dict(zip(map(os.path.basename, paths), ours.round(3)))
    if len(paths) > 1:  # the control: OpenCV's resize (MindCV's eval) makes measurably other tensors
        assert grey_levels_away(False).mean() > ours.mean() + 0.2
