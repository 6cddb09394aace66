"""Device, execution mode, compile level and the native-kernel switch from a resolved config, applied once per
process before any network is built; and `jit`, the one place that compiles a function, so every compiled graph gets
the recipe's level.

Compile levels in MindSpore 2.7: `mindspore.jit` takes jit_level O0 or O1 on its own backend ("ms_backend", every
device), and backend="GE" for the whole-graph Ascend path that MindCV calls jit level O2 (it compiles with
`set_context(jit_config={"jit_level": "O2"})`, which reaches Cell graphs; our steps are `ms.jit` functions, so the
level is passed to each). O2 therefore needs Ascend; `auto` picks it there in graph mode, as MindCV does, and O0
elsewhere.
"""
import dataclasses

import mindspore as ms

from . import kernels
from .config import ConfigError
from .logs import LOGGER

@dataclasses.dataclass(frozen=True)
class Runtime:
    device: str      # Ascend, GPU or CPU
    mode: int        # 0 graph, 1 PyNative
    jit_level: str   # O0, O1 or O2


_jit_options = {}  # mindspore.jit arguments for this process's compile level, set by setup_runtime


def available_devices():
    """The devices this MindSpore build can drive on this machine, in the order `device_target: auto` tries them:
    Ascend, GPU, then the CPU, always there.

    Asked through mindspore.device_context before any device is set, so a missing GPU or NPU is found without the
    driver errors that set_device prints when its plugin cannot load.
    """
    from mindspore import device_context
    found = []
    for name, context in (("Ascend", device_context.ascend), ("GPU", device_context.gpu)):
        try:
            if context.is_available() and context.device_count() > 0:
                found.append(name)
        except Exception:  # a plugin that loads but finds no driver or device
            continue
    return found + ["CPU"]


def resolve_device(requested, available=None):
    """`auto` -> the first available of Ascend, GPU, CPU; a named device must be available."""
    available = available or available_devices()
    if requested == "auto":
        return available[0]
    if requested not in available:
        raise ConfigError(f"device_target {requested} is not available: this machine and MindSpore {ms.__version__} "
                          f"build can use {', '.join(available)} (set device_target auto, or one of those)")
    return requested


def resolve_jit_level(requested, device, mode):
    """`auto` -> O2 on Ascend in graph mode (MindCV's level), O0 elsewhere; O2 elsewhere is an error."""
    if requested == "auto":
        return "O2" if device == "Ascend" and mode == 0 else "O0"
    if requested == "O2" and device != "Ascend":
        raise ConfigError(f"jit_level O2 (the GE whole-graph backend) exists on Ascend only; this run uses {device}: "
                          "set jit_level auto, O0 or O1")
    if requested == "O2" and mode != 0:
        raise ConfigError("jit_level O2 compiles whole graphs: it needs mode 0 (graph mode), not PyNative")
    return requested


def jit_options(level):
    """mindspore.jit arguments for a compile level."""
    return {"backend": "GE"} if level == "O2" else {"jit_level": level, "backend": "ms_backend"}


def jit(function):
    """Compile `function` as a graph at this process's level (MindSpore's defaults before setup_runtime)."""
    return ms.jit(function, **_jit_options)


def setup_runtime(config):
    """Device, graph/PyNative mode, compile level, seed and native kernels from the config; returns what was
    chosen."""
    device = resolve_device(config.device_target)
    level = resolve_jit_level(config.jit_level, device, config.mode)
    try:
        ms.set_device(device)
    except Exception as err:  # a device that is listed but fails to start
        raise ConfigError(f"cannot use device_target {device}: {str(err).splitlines()[0]} "
                          "(set --device_target to one this machine has, or auto)") from err
    ms.set_context(mode=ms.GRAPH_MODE if config.mode == 0 else ms.PYNATIVE_MODE, jit_config={"jit_level": level})
    _jit_options.clear()
    _jit_options.update(jit_options(level))
    ms.set_seed(config.seed)
    kernels.set_enabled(config.native_kernels)
    if config.native_kernels and device == "CPU" and kernels.library() is None:
        LOGGER.info(f"native kernels off: {kernels.unavailable_reason()}; the grouped convolutions and BatchNorm "
                    "run MindSpore's own operators (slower, docs/performance.md)")
    return Runtime(device, config.mode, level)


def current_runtime():
    """What this process runs on (for run.json and the start line), as set by setup_runtime or MindSpore's defaults."""
    level = "O2" if _jit_options.get("backend") == "GE" else _jit_options.get("jit_level", "O0")
    return Runtime(ms.get_context("device_target"), ms.get_context("mode"), level)


def waits_for_each_step():
    """Whether a training loop should wait for each step to finish before launching the next. On the CPU the
    "device" is the host's own cores: a step launched while the last still runs slows both (640 vs 300 ms a step on
    2 cores, docs/performance.md). An accelerator runs ahead of the host, and a wait would idle it."""
    return ms.get_context("device_target") == "CPU"
