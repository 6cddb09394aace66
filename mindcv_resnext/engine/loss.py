"""Cross-entropy on hard labels (with label smoothing) or on soft targets (mixup/cutmix), in one formula."""
from mindspore import nn, ops
import mindspore as ms


class CrossEntropy(nn.Cell):
    """mean over the batch of -sum(target * log_softmax(logits)); int labels become smoothed one-hot targets."""

    def __init__(self, num_classes, label_smoothing=0.0):
        super().__init__()
        self.num_classes = num_classes
        self.on_value = 1.0 - label_smoothing + label_smoothing / num_classes
        self.off_value = label_smoothing / num_classes

    def construct(self, logits, labels):
        logits = ops.cast(logits, ms.float32)
        if labels.ndim == 1:
            labels = ops.one_hot(labels, self.num_classes, ms.Tensor(self.on_value, ms.float32),
                                 ms.Tensor(self.off_value, ms.float32))
        return -(labels * ops.log_softmax(logits, -1)).sum(-1).mean()
