"""Device and execution mode from a resolved config, applied once per process before any network is built."""
import mindspore as ms

from .config import ConfigError


def setup_runtime(config):
    """mindspore.set_device(device_target); graph mode (mode 0) or PyNative (1); the recipe's jit level."""
    try:
        ms.set_device(config.device_target)
    except Exception as err:  # e.g. Ascend asked for on a CPU-only MindSpore build
        raise ConfigError(f"cannot use device_target {config.device_target}: {str(err).splitlines()[0]} "
                           "(set --device_target CPU, GPU or Ascend to match this machine)") from err
    ms.set_context(mode=ms.GRAPH_MODE if config.mode == 0 else ms.PYNATIVE_MODE)
    if config.jit_level:
        ms.set_context(jit_config={"jit_level": config.jit_level})
    ms.set_seed(config.seed)
