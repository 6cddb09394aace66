"""Build resnext50_32x4d in graph mode and classify one generated image (random weights until training lands)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402
import mindspore as ms  # noqa: E402

from mindcv_resnext import count_params, create_model  # noqa: E402


def generated_image(size, seed=0):
    """An RGB image in [0, 1]: a colour gradient with a bright disc, HWC float32."""
    ys, xs = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(seed)
    image = np.stack([xs, ys, 1 - xs * ys], axis=-1)
    cx, cy, r = rng.uniform(0.3, 0.7, size=3) * (1, 1, 0.5)
    image[(xs - cx) ** 2 + (ys - cy) ** 2 < r ** 2] = rng.uniform(0.5, 1, size=3)
    return image.astype(np.float32)


def main():
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_seed(0)
    model = create_model("resnext50_32x4d")
    model.set_train(False)
    card = model.card
    image = (generated_image(card.input_size) - np.array(card.mean, np.float32)) / np.array(card.std, np.float32)
    batch = ms.Tensor(image.transpose(2, 0, 1)[None])
    start = time.perf_counter()
    logits = model(batch).asnumpy()[0]
    first = time.perf_counter() - start
    start = time.perf_counter()
    model(batch)
    steady = time.perf_counter() - start
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    top5 = np.argsort(-probs)[:5]
    print(f"{card.name}: {count_params(model):,} parameters, input 1x3x{card.input_size}x{card.input_size}, "
          f"logits {tuple(logits.shape)}")
    print(f"graph mode: first call (compile + run) {first:.1f} s, next call {steady * 1000:.0f} ms")
    print("top-5 classes (random weights): " + ", ".join(f"{i} ({probs[i]:.2%})" for i in top5))


if __name__ == "__main__":
    main()
