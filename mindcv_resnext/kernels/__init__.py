"""Native CPU kernels, compiled on first use with the machine's C++ compiler.

`grouped_conv3x3.cc` computes ResNeXt's grouped 3x3 convolution, forward and both gradients, 3-5x faster than
MindSpore 2.7's oneDNN path on the CPU; `batch_norm.cc` training-mode BatchNorm (+ ReLU), forward and backward, in
two passes over memory where MindSpore's four operators make about thirteen (their headers say why;
docs/performance.md has the measurements). The sources are built with `-march=native` into one library in a cache
folder whose file name is a hash of the source, the compiler and this CPU's flags,
so each machine runs code for its own CPU and a home folder shared between machines never hands one another's build.
The first build takes a few seconds; processes that build at once (msrun ranks) each write a temporary file and
rename it, so none reads a half-written library.

Without g++, on a CPU without AVX-512, on another device than the CPU, or with `native_kernels: false`, the network
runs MindSpore's own operators instead: the same numbers to float32 rounding, only slower.
"""
import hashlib
import os
import platform
import shutil
import subprocess

FOLDER = os.path.dirname(os.path.abspath(__file__))
SOURCES = ("grouped_conv3x3.cc", "batch_norm.cc")
HEADERS = ("parallel.h",)
COMPILE = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-pthread")
CACHE_ENV = "MINDCV_RESNEXT_KERNEL_CACHE"

_state = {"enabled": True, "library": None, "reason": None}


def set_enabled(enabled):
    """Whether networks built from now on use the native kernels (the `native_kernels` recipe key)."""
    _state["enabled"] = bool(enabled)


def cache_folder():
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "mindcv_resnext", "kernels")


def cpu_flags():
    """The instruction-set flags of this CPU (Linux), empty where /proc/cpuinfo does not say."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _compiler_version(compiler):
    return subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False).stdout


def _build(compiler, flags):
    """The library's path, compiled now unless a build for this source, compiler and CPU is in the cache."""
    key = hashlib.sha256()
    for name in SOURCES + HEADERS:
        with open(os.path.join(FOLDER, name), "rb") as source:
            key.update(source.read())
    key.update(" ".join(COMPILE).encode())
    key.update(_compiler_version(compiler).encode())
    key.update(" ".join(sorted(flags)).encode())
    folder = cache_folder()
    library = os.path.join(folder, f"kernels-{key.hexdigest()[:16]}.so")
    if os.path.exists(library):
        return library
    os.makedirs(folder, exist_ok=True)
    temporary = f"{library}.{os.getpid()}.tmp"
    try:
        result = subprocess.run([compiler, *COMPILE, "-o", temporary, *(os.path.join(FOLDER, name) for name in SOURCES)], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {result.stderr.strip().splitlines()[-1:]}")
        os.replace(temporary, library)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return library


def library():
    """Path of the compiled kernels, or None (then `unavailable_reason()` says why); built once per process."""
    if _state["library"] is None and _state["reason"] is None:
        compiler = shutil.which("g++")
        flags = cpu_flags()
        if platform.machine() not in ("x86_64", "AMD64"):
            _state["reason"] = f"the kernels are written for x86-64, this CPU is {platform.machine()}"
        elif "avx512f" not in flags:
            _state["reason"] = "this CPU has no AVX-512"
        elif compiler is None:
            _state["reason"] = "no C++ compiler (g++) on the PATH"
        else:
            try:
                _state["library"] = _build(compiler, flags)
            except (OSError, RuntimeError) as error:
                _state["reason"] = f"building {', '.join(SOURCES)} failed: {error}"
    return _state["library"]


def unavailable_reason():
    return _state["reason"]


def enabled():
    """Whether a network built now may use the kernels: switched on, running on the CPU, and built."""
    import mindspore as ms
    return _state["enabled"] and ms.get_context("device_target") == "CPU" and library() is not None
