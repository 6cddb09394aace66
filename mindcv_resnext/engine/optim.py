"""Optimizers: momentum SGD (Nesterov option) and AdamW, with weight decay kept off BN parameters and biases."""
from mindspore import nn


def parameter_groups(params, weight_decay, filter_bias_and_bn=True):
    """Decay only weights of convolutions and Dense layers (ndim > 1) when filter_bias_and_bn."""
    if not filter_bias_and_bn or weight_decay == 0:
        return [{"params": params, "weight_decay": weight_decay}]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]] + [{"order_params": params}]


def create_optimizer(params, opt, learning_rate, momentum=0.9, weight_decay=0.0, use_nesterov=False,
                     filter_bias_and_bn=True, eps=1e-8):
    """`learning_rate`: a number or the per-step array of the schedule (indexed by the optimizer's global step)."""
    groups = parameter_groups(list(params), weight_decay, filter_bias_and_bn)
    learning_rate = [float(v) for v in learning_rate] if not isinstance(learning_rate, float) else learning_rate
    if opt in ("momentum", "sgd"):
        return nn.Momentum(groups, learning_rate, momentum=momentum, use_nesterov=use_nesterov)
    if opt == "adamw":
        return nn.AdamWeightDecay(groups, learning_rate, beta1=momentum, beta2=0.999, eps=eps)
    raise ValueError(f"opt must be momentum, sgd or adamw, got {opt!r}")
