"""The ResNeXt networks, their registry of names, and their size and cost counters."""
from .complexity import count_macs, count_params
from .registry import ModelCard, UnknownModelError, create_model, list_models, model_card
from .resnext import Bottleneck, DropPath, ResNeXt, bottleneck_width

__all__ = ["ResNeXt", "Bottleneck", "DropPath", "bottleneck_width", "create_model", "list_models", "model_card",
           "ModelCard", "UnknownModelError", "count_params", "count_macs"]
