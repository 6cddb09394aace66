"""ResNeXt (Xie et al., CVPR 2017) in mindspore.nn.

One block, two stems, one network class. The layout is torchvision's "v1.5": the stride of a down-sampling block sits
on the grouped 3x3 convolution, the shortcut is a 1x1 convolution + BN projection where the shape changes, and ReLU
follows the addition. Parameter names follow MindCV (`down_sample`, `classifier`, BN `gamma/beta/moving_*`), so
MindCV's ResNeXt checkpoints load as they are; torchvision's names map onto them one to one.

Width of a block (written once, in `bottleneck_width`): the outer width is 4 * planes, the inner (grouped) width is
int(planes * base_width / 64) * cardinality. For the ImageNet stages planes = 64/128/256/512; for the CIFAR
ResNeXt-29 stages planes = 64/128/256 (outputs 256/512/1024), where the paper's "C * int(d * out / 256)" is the same
number.
"""
import math

from mindspore import dtype as mstype
from mindspore import nn, ops
from mindspore.common import initializer as init

from .batch_norm import BatchNormAct2d
from .grouped_conv import GroupedConv3x3

EXPANSION = 4
BN_EPS = 1e-5
BN_MOMENTUM = 0.9  # MindSpore's momentum keeps the old statistic: 0.9 here equals PyTorch's momentum=0.1.
STEM_POOL_PADS = ("symmetric", "same")


def bottleneck_width(planes, cardinality, base_width):
    """Channels of the grouped 3x3 convolution: int(planes * d / 64) * C (torchvision, timm and the Lua code)."""
    return int(planes * base_width / 64) * cardinality


def conv2d(in_channels, out_channels, kernel_size, stride=1, group=1):
    """Bias-free convolution with symmetric 'same-size' padding and He-normal (fan_out, relu) weights; the grouped
    3x3 one is a GroupedConv3x3 (an nn.Conv2d that runs native CPU kernels where they apply)."""
    weight_init = init.HeNormal(mode="fan_out", nonlinearity="relu")
    if group > 1 and kernel_size == 3 and in_channels == out_channels:
        return GroupedConv3x3(in_channels, group, stride=stride, weight_init=weight_init)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad",
                     padding=kernel_size // 2, group=group, has_bias=False, weight_init=weight_init)


def batch_norm(channels, zero_gamma=False, relu=False):
    """BatchNorm, followed by ReLU when `relu` is true: one native CPU pass in training where the kernels apply."""
    return BatchNormAct2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM, gamma_init="zeros" if zero_gamma else "ones",
                       relu=relu)


def use_native_kernels(network, enabled):
    """Set every grouped convolution and BatchNorm of `network` to the native kernels (where they apply) or to
    MindSpore's own operators."""
    for _, cell in network.cells_and_names():
        if isinstance(cell, (GroupedConv3x3, BatchNormAct2d)):
            cell.use_native(enabled)
    return network


_MASK32 = 0xFFFFFFFF


def _mix32(x):
    """A 32-bit integer hash (two multiply-xorshift rounds) of int64 values below 2**32; the result stays below it
    (every product fits in int64: the multipliers are below 2**31)."""
    x = ops.bitwise_and(x * 0x7FEB352D, _MASK32)
    x = ops.bitwise_xor(x, ops.floor_div(x, 1 << 15))
    x = ops.bitwise_and(x * 0x68E31DA5, _MASK32)
    return ops.bitwise_xor(x, ops.floor_div(x, 1 << 16))


def keyed_keep_mask(key, salt, shape, drop_prob, dtype):
    """Dropout's kept-and-scaled mask as a pure function of (key, salt, position): the training step passes a key
    that follows the step, so a resumed run draws the masks an uninterrupted one would. (MindSpore's Dropout draws
    from a generator inside the op, which starts again with the process and cannot be read or set on the CPU.)"""
    size = 1
    for dim in shape:
        size *= dim
    base = _mix32(ops.bitwise_and(key + salt * 0x9E3779B9, _MASK32))
    bits = _mix32(ops.bitwise_and(ops.arange(0, size, dtype=mstype.int64) + base, _MASK32))
    uniform = ops.cast(ops.bitwise_and(bits, 0xFFFFFF), mstype.float32) * (1.0 / (1 << 24))
    return ops.reshape(ops.cast(uniform >= drop_prob, dtype) / (1.0 - drop_prob), shape)


class Dropout(nn.Cell):
    """nn.Dropout, or, given a key (the training step's), dropout with keyed_keep_mask."""

    def __init__(self, drop_prob, salt=0):
        super().__init__()
        self.drop_prob, self.salt = drop_prob, salt
        self.dropout = nn.Dropout(p=drop_prob)

    def construct(self, x, key=None):
        if key is None:
            return self.dropout(x)
        if not self.training:
            return x
        return x * keyed_keep_mask(key, self.salt, x.shape, self.drop_prob, x.dtype)


class DropPath(nn.Cell):
    """Stochastic depth: zero a sample's residual branch with probability `drop_prob`, scale the rest by 1/keep.

    A dropout over a (batch, 1, 1, 1) mask, so it is the identity in eval mode like any dropout.
    """

    def __init__(self, drop_prob, salt=0):
        super().__init__()
        self.drop_prob = drop_prob
        self.dropout = Dropout(drop_prob, salt)

    def construct(self, x, key=None):
        mask = self.dropout(ops.ones((x.shape[0], 1, 1, 1), x.dtype), key)
        return x * mask


class StemMaxPool(nn.Cell):
    """The stem's 3x3/2 max-pool padded by 1 on every side (torchvision's), for an input that follows a ReLU.

    For inputs >= 0 zero padding equals a max-pool's -inf padding, and a pool padded only where a window reaches
    the pad (the top and left, the bottom and right of an odd side) is the same pool. Built that way, from zeros
    concatenated on and an unpadded MaxPool2d, it is 5x faster on the CPU than MindSpore's padded MaxPool2d (12 vs
    62 ms forward on 8x64x112x112; MindSpore's Pad op is slower still), and it exports to ONNX as Concat + MaxPool.
    """

    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="valid")

    def construct(self, x):
        n, c, h, w = x.shape
        row = ops.zeros((n, c, 1, w), x.dtype)
        x = ops.concat((row, x, row) if h % 2 else (row, x), 2)
        column = ops.zeros((n, c, x.shape[2], 1), x.dtype)
        x = ops.concat((column, x, column) if w % 2 else (column, x), 3)
        return self.pool(x)


class Bottleneck(nn.Cell):
    """1x1 reduce -> grouped 3x3 (carries the stride) -> 1x1 expand (x4), plus the shortcut, then ReLU. (bn1 and bn2
    end with their ReLU.)"""

    def __init__(self, in_channels, planes, stride=1, cardinality=1, base_width=64, drop_path=0.0,
                 zero_init_last=False, salt=0):
        super().__init__()
        width = bottleneck_width(planes, cardinality, base_width)
        out_channels = planes * EXPANSION
        self.conv1 = conv2d(in_channels, width, 1)
        self.bn1 = batch_norm(width, relu=True)
        self.conv2 = conv2d(width, width, 3, stride=stride, group=cardinality)
        self.bn2 = batch_norm(width, relu=True)
        self.conv3 = conv2d(width, out_channels, 1)
        self.bn3 = batch_norm(out_channels, zero_gamma=zero_init_last)
        self.relu = nn.ReLU()
        self.down_sample = None
        if stride != 1 or in_channels != out_channels:
            self.down_sample = nn.SequentialCell([conv2d(in_channels, out_channels, 1, stride=stride),
                                                  batch_norm(out_channels)])
        self.drop_path = DropPath(drop_path, salt) if drop_path > 0 else None

    def construct(self, x, key=None):
        identity = x
        out = self.bn1(self.conv1(x))
        out = self.bn2(self.conv2(out))
        out = self.bn3(self.conv3(out))
        if self.drop_path is not None:
            out = self.drop_path(out, key)
        if self.down_sample is not None:
            identity = self.down_sample(x)
        return self.relu(out + identity)


class ResNeXt(nn.Cell):
    """ResNeXt classifier or multi-scale feature extractor.

    Args:
        stage_blocks: blocks per stage; 4 stages build the ImageNet network (7x7/2 stem + 3x3/2 max-pool, outputs
            256..2048), 3 stages the CIFAR one (3x3 stem, no pool, outputs 256..1024).
        cardinality, base_width: C and d of the "CxDd" name.
        num_classes: size of the Dense head.
        in_channels: channels of the input image.
        drop_rate: dropout before the head.
        drop_path_rate: stochastic depth of the last block; it grows linearly from 0 over the blocks (as timm).
        zero_init_last: start each block's last BN gamma at 0, so that every block starts as the identity.
        stem_pool_pad: "symmetric" pads the stem max-pool by 1 on every side (torchvision, timm, mmpretrain);
            "same" pads bottom/right only, as MindCV's released checkpoints were trained.
        features_only: construct returns the stage maps picked by `out_indices` (0 = stem, 1.. = layer1..), and the
            network has no head. `feature_info` lists their channels and strides.
    """

    def __init__(self, stage_blocks, cardinality, base_width, num_classes=1000, in_channels=3, drop_rate=0.0,
                 drop_path_rate=0.0, zero_init_last=False, stem_pool_pad="symmetric", features_only=False,
                 out_indices=None):
        super().__init__()
        if len(stage_blocks) not in (3, 4):
            raise ValueError(f"stage_blocks must list 3 (CIFAR) or 4 (ImageNet) stages, got {stage_blocks}")
        if stem_pool_pad not in STEM_POOL_PADS:
            raise ValueError(f"stem_pool_pad must be one of {STEM_POOL_PADS}, got {stem_pool_pad!r}")
        if not features_only and int(num_classes) < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        for key, rate in (("drop_rate", drop_rate), ("drop_path_rate", drop_path_rate)):
            if not 0 <= rate < 1:
                raise ValueError(f"{key} must be in [0, 1), got {rate}")
        imagenet = len(stage_blocks) == 4

        # Stem: conv1/bn1 (which ends with the ReLU) (+ max_pool for ImageNet).
        self.conv1 = conv2d(in_channels, 64, 7 if imagenet else 3, stride=2 if imagenet else 1)
        self.bn1 = batch_norm(64, relu=True)
        if not imagenet:
            self.max_pool = nn.Identity()
        elif stem_pool_pad == "same":
            self.max_pool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="same")
        else:
            self.max_pool = StemMaxPool()
        stem_stride = 2 if imagenet else 1
        self.feature_info = [dict(num_chs=64, reduction=stem_stride, module="bn1")]

        # Stages layer1..layerN; block k of K total gets drop path drop_path_rate * k / (K - 1).
        total_blocks = sum(stage_blocks)
        block_index = 0
        in_ch, reduction = 64, stem_stride * (2 if imagenet else 1)
        stages = []
        for stage, blocks in enumerate(stage_blocks):
            planes, stride = 64 * 2 ** stage, 1 if stage == 0 else 2
            reduction *= stride
            cells = []
            for i in range(blocks):
                rate = drop_path_rate * block_index / max(total_blocks - 1, 1)
                cells.append(Bottleneck(in_ch, planes, stride if i == 0 else 1, cardinality, base_width, rate,
                                        zero_init_last, salt=block_index + 1))
                in_ch = planes * EXPANSION
                block_index += 1
            stages.append(nn.SequentialCell(cells))
            self.feature_info.append(dict(num_chs=in_ch, reduction=reduction, module=f"layer{stage + 1}"))
        self.layer1, self.layer2, self.layer3 = stages[:3]
        self.layer4 = stages[3] if imagenet else None
        self.num_features = in_ch

        # Feature-extraction mode: which stage maps construct returns.
        self.features_only = features_only
        if out_indices is None:
            out_indices = tuple(range(1, len(self.feature_info)))
        out_indices = tuple(int(i) for i in out_indices)
        if not out_indices or any(i < 0 or i >= len(self.feature_info) for i in out_indices):
            raise ValueError(f"out_indices must be within 0..{len(self.feature_info) - 1} "
                             f"(0 = stem, 1.. = layer1..), got {out_indices}")
        self.out_indices = out_indices
        if features_only:
            self.feature_info = [self.feature_info[i] for i in out_indices]

        # Head: global average pool -> dropout -> Dense (torchvision's default init: U(+-1/sqrt(fan_in))).
        self.num_classes = 0 if features_only else num_classes
        self.drop_rate = drop_rate
        self.dropout = Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.classifier = None
        if not features_only:
            bound = 1 / math.sqrt(self.num_features)
            self.classifier = nn.Dense(self.num_features, num_classes, weight_init=init.HeUniform(math.sqrt(5)),
                                       bias_init=init.Uniform(bound))

    def forward_intermediates(self, x, key=None):
        """The stem map and every stage map, in the order of `feature_info` before `out_indices` picks."""
        x = self.bn1(self.conv1(x))
        maps = (x,)
        x = self.run_stage(self.layer1, self.max_pool(x), key)
        maps += (x,)
        x = self.run_stage(self.layer2, x, key)
        maps += (x,)
        x = self.run_stage(self.layer3, x, key)
        maps += (x,)
        if self.layer4 is not None:
            x = self.run_stage(self.layer4, x, key)
            maps += (x,)
        return maps

    def run_stage(self, stage, x, key):
        """The blocks of a stage, each given the dropout key (see keyed_keep_mask) when there is one."""
        if key is None:
            return stage(x)
        for block in stage:
            x = block(x, key)
        return x

    def forward_features(self, x):
        """The last stage's feature map, (N, num_features, H/32, W/32) for ImageNet networks."""
        return self.forward_intermediates(x)[-1]

    def forward_head(self, x, pre_logits=False, key=None):
        """Global average pool, dropout and the classifier; `pre_logits` stops before the classifier."""
        x = ops.mean(x, (2, 3))
        x = self.dropout(x) if key is None or self.drop_rate == 0 else self.dropout(x, key)
        if pre_logits:
            return x
        return self.classifier(x)

    def construct(self, x, key=None):
        """`key` (an int64 scalar tensor that follows the training step) makes dropout and drop-path masks a
        function of the step, so that a resumed run draws what an uninterrupted one would; None: nn.Dropout's."""
        # One call of forward_intermediates: MindSpore's O1 rewrite wraps the cells of a method once per call site,
        # and a second site (two paths through the stem) made it generate a BatchNorm that fails to compile.
        maps = self.forward_intermediates(x, key)
        if self.features_only:
            picked = ()
            for i in self.out_indices:
                picked += (maps[i],)
            return picked
        return self.forward_head(maps[-1], key=key)

