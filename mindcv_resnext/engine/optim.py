"""Optimizers: momentum SGD (Nesterov option) and AdamW, with MindCV's weight_decay_filter choosing which
parameters decay."""
from mindspore import nn

WEIGHT_DECAY_FILTERS = {
    # MindCV's default: MindCV passes one group to MindSpore, which then decays every parameter in it.
    "disable": lambda param: True,
    # MindCV passes no groups, and MindSpore's own filter keeps BatchNorm's gamma and beta out (biases decay).
    "auto": lambda param: "gamma" not in param.name and "beta" not in param.name,
    # BatchNorm parameters and biases out: every 1-D parameter.
    "norm_and_bias": lambda param: param.ndim > 1,
}


def parameter_groups(params, weight_decay, weight_decay_filter="disable"):
    """Optimizer groups: the parameters that decay, and those that do not (as `weight_decay_filter` says)."""
    if weight_decay_filter not in WEIGHT_DECAY_FILTERS:
        raise ValueError(f"weight_decay_filter must be one of {', '.join(WEIGHT_DECAY_FILTERS)}, "
                         f"got {weight_decay_filter!r}")
    decays = WEIGHT_DECAY_FILTERS[weight_decay_filter]
    decay = [p for p in params if decays(p)]
    no_decay = [p for p in params if not decays(p)]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]] + [{"order_params": params}]


def create_optimizer(params, opt, learning_rate, momentum=0.9, weight_decay=0.0, use_nesterov=False,
                     weight_decay_filter="disable", eps=1e-10):
    """`learning_rate`: a number or the per-step array of the schedule (indexed by the optimizer's global step)."""
    groups = parameter_groups(list(params), weight_decay, weight_decay_filter)
    learning_rate = [float(v) for v in learning_rate] if not isinstance(learning_rate, float) else learning_rate
    if opt in ("momentum", "sgd"):
        return nn.Momentum(groups, learning_rate, momentum=momentum, use_nesterov=use_nesterov)
    if opt == "adamw":
        return nn.AdamWeightDecay(groups, learning_rate, beta1=momentum, beta2=0.999, eps=eps)
    raise ValueError(f"opt must be momentum, sgd or adamw, got {opt!r}")
