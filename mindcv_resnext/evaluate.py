"""Top-1 / top-5 accuracy and loss over a dataset, counted (not averaged per batch or per shard), so the result is
exact whatever the batch size, the last partial batch, or the number of shards."""
import dataclasses

import mindspore as ms
import numpy as np
from mindspore import ops

from .distributed import all_reduce_sum
from .engine.loss import CrossEntropy
from .runtime import jit


@dataclasses.dataclass
class Counts:
    correct1: float = 0.0
    correct5: float = 0.0
    loss_sum: float = 0.0
    num_samples: float = 0.0

    def add(self, other):
        return Counts(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    def metrics(self, num_classes):
        n = max(self.num_samples, 1)
        result = dict(top1=self.correct1 / n, loss=self.loss_sum / n, num_samples=int(self.num_samples))
        if num_classes >= 5:
            result["top5"] = self.correct5 / n
        return result


def batch_counts_fn(network, num_classes):
    """A compiled function: (images, labels) -> (correct@1, correct@5, summed loss), float32."""
    loss_fn = CrossEntropy(num_classes)
    k = min(5, num_classes)

    @jit
    def counts(images, labels):
        logits = ops.cast(network(images), ms.float32)
        _, top = ops.topk(logits, k)
        hits = ops.cast(top == labels.view(-1, 1), ms.float32)
        return hits[:, 0].sum(), hits.sum(), loss_fn(logits, labels) * labels.shape[0]

    return counts


def evaluate(network, loader, counts_fn=None, world_size=1):
    """Counts over every batch of an evaluation loader (network put in eval mode), summed over all ranks when the
    loader is one shard of a data-parallel run: the result equals one process scoring the whole set."""
    network.set_train(False)
    counts_fn = counts_fn or batch_counts_fn(network, loader.num_classes)
    total = Counts()
    for images, labels in loader.epoch(0):
        c1, c5, loss = counts_fn(ms.Tensor(images), ms.Tensor(labels.astype(np.int32)))
        total = total.add(Counts(float(c1.asnumpy()), float(c5.asnumpy()), float(loss.asnumpy()), len(labels)))
    return Counts(*(float(v) for v in all_reduce_sum(dataclasses.astuple(total), world_size)))
