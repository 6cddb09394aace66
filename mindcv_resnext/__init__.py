"""ResNeXt for MindSpore: the model zoo, and (as it lands) data, training, checkpoints and inference."""
import os

# MindSpore reads GLOG_v once, when it is imported: quiet its C++ logs unless the user asked for them.
os.environ.setdefault("GLOG_v", "3")

from .models import ModelCard, UnknownModelError, count_macs, count_params, create_model, list_models, model_card  # noqa: E402

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "model_card", "ModelCard", "UnknownModelError", "count_params",
           "count_macs", "__version__"]
