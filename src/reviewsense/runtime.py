"""Where the code runs: process rank/world, threads, precision and the CPU's bf16 path.

The one home for these decisions, used by training, pre-training, distillation, inference and the
benchmarks alike:

- ``bf16_path()`` names how this CPU does bf16 matmuls: ``"amx"`` (Intel AMX tiles, ~7x fp32),
  ``"avx512_bf16"`` (AMD EPYC / older Xeon, ~2.3x fp32) or ``"none"``.
- ``resolve_precision("auto", device)`` picks bf16 where it is fast, else fp32 (fp16 on GPUs
  without bf16).
- ``default_threads()`` / ``set_threads(n)``: intra-op threads = ``REVIEWSENSE_NUM_THREADS``
  when set, else physical cores / processes (train, pretrain, distill, score --engine local).
- ``tune_allocator()``: glibc malloc keeps freed activation buffers instead of handing them back
  to the kernel and faulting them in again on the next step (training: ``set_threads`` calls it;
  batch inference: predict, evaluate, score).
- ``environment_facts()`` is what ``environment.json`` and every benchmark record.
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import sys
from functools import lru_cache
from pathlib import Path

from reviewsense.errors import ReviewsenseError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # training (train, pretrain, distill)
# what resolve_precision("auto") picks, for the --precision help of the training commands
AUTO_PRECISION = (
    "auto = bf16 where the CPU/GPU has a fast bf16 path, else fp32 (fp16 on a GPU without bf16)"
)
BF16_PATHS = ("amx", "avx512_bf16", "none")


# -- processes -----------------------------------------------------------------------------------
def world_info() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) for a plain process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return world_info()[0] == 0


# -- CPU -----------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    """(model name, flags) of the first CPU in /proc/cpuinfo; ("", {}) where there is none."""
    model, flags = "", frozenset()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
        if model and flags:
            break
    return model or platform.processor() or platform.machine(), flags


def cpu_model() -> str:
    return _cpuinfo()[0]


def bf16_path() -> str:
    """How this CPU multiplies bf16 matrices: "amx", "avx512_bf16" or "none"."""
    flags = _cpuinfo()[1]
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512_bf16"
    return "none"


def cpu_has_fast_bf16() -> bool:
    """True when bf16 matmuls beat fp32 on this CPU (AMX or avx512_bf16)."""
    return bf16_path() != "none"


# -- precision -----------------------------------------------------------------------------------
def bf16_available(device: str = "cpu") -> bool:
    """Whether bf16 is worth using on ``device`` ("cpu" or "cuda[:N]")."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_has_fast_bf16()


def default_device() -> str:
    """ "cuda" when a CUDA GPU is visible, else "cpu": where train and inference run by default."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_precision(requested: str, device: str | None = None) -> str:
    """Turn ``auto`` into fp32/bf16/fp16 for ``device`` (default: CUDA if present, else CPU).

    An explicit choice is kept, except fp16 on a CPU, which is refused with how to fix it.
    """
    import torch

    if requested not in PRECISIONS:
        raise ReviewsenseError(
            f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}"
        )
    if device is None:
        device = default_device()
    on_gpu = device.startswith("cuda")
    if requested != "auto":
        if requested == "fp16" and not on_gpu:
            raise ReviewsenseError("precision fp16 needs a CUDA GPU; use bf16 or fp32 on CPU")
        return requested
    if on_gpu:
        choice = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        log.info("precision auto -> %s (GPU %s)", choice, torch.cuda.get_device_name(0))
        return choice
    if cpu_has_fast_bf16():
        log.info("precision auto -> bf16 (CPU bf16 path: %s)", bf16_path())
        return "bf16"
    log.info("precision auto -> fp32 (CPU without fast bf16)")
    return "fp32"


# -- threads -------------------------------------------------------------------------------------
THREADS_DEFAULT = "REVIEWSENSE_NUM_THREADS, else physical cores / processes"  # --threads help


def configured_threads() -> int | None:
    """``REVIEWSENSE_NUM_THREADS`` per process (None when unset)."""
    from reviewsense.settings import get_settings

    return get_settings().num_threads


def default_threads() -> int:
    """Intra-op threads when none are requested: ``REVIEWSENSE_NUM_THREADS`` when set, else
    physical cores / processes on this machine (hyper-threads slow GEMMs down)."""
    import psutil

    configured = configured_threads()
    if configured is not None:
        return configured
    _, world = world_info()
    return max(1, (psutil.cpu_count(logical=False) or os.cpu_count() or 1) // world)


def resolve_threads(requested: int | None) -> int:
    """``requested`` (validated) or :func:`default_threads`: the thread count of a batch job."""
    if requested is not None and requested < 1:
        raise ReviewsenseError(f"threads must be at least 1, got {requested}")
    return requested or default_threads()


def set_threads(requested: int | None) -> int:
    """Set torch's intra-op threads to ``requested`` or the default; return the number used."""
    import torch

    n = resolve_threads(requested)
    torch.set_num_threads(n)
    tune_allocator()
    return n


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
ALLOCATOR_ENV = "REVIEWSENSE_MALLOC"  # settings.CoreSettings.malloc: "default" leaves glibc's as is


@lru_cache(maxsize=1)
def tune_allocator() -> bool:
    """Stop glibc malloc from unmapping freed tensors; True when the settings took effect.

    PyTorch's CPU allocator is plain malloc. glibc serves blocks over its mmap threshold (at most
    32 MiB) with ``mmap`` and returns them with ``munmap`` when freed, and trims the heap top
    above 128 KiB, so every training step faults its activations in afresh (MiniLM, batch 16,
    256 tokens: ~30,000 page faults a step). With mmap off and trimming off, freed blocks stay in
    the heap for the next step: 6x fewer faults, peak RSS unchanged; on an Intel Xeon with AMX
    ~10-20% shorter steps, on an AMD EPYC equal (1.00x; BENCHMARKS.md, "Where a training step
    goes", `bench_train.py --part process`). Inference faults in every batch's activations the
    same way; there the AMD EPYC gains too (bf16 MiniLM, ``bench_inference.py``: 90.2 instead of
    79.8 reviews/s; BENCHMARKS.md, "Inference attention"). The cost: the heap keeps its
    peak until the process exits, and a block size that recurs between other allocations can
    hold a few copies before it is reused (a 64 MiB tensor, ~6 copies: tests/test_runtime.py).
    Hence batch processes only: training (``set_threads``: train, pretrain, distill) and batch
    inference (predict, evaluate, score); the long-running service keeps glibc's defaults. Off
    with ``REVIEWSENSE_MALLOC=default``; a no-op where the C library has no ``mallopt`` (macOS,
    musl).
    """
    import ctypes

    from reviewsense.settings import get_settings

    if get_settings().malloc == "default":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    ok = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    log.debug("malloc: mmap off, heap trimming off (%s)", "applied" if ok else "refused")
    return ok


# -- measurements --------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def environment_facts(precision: str | None = None, threads: int | None = None) -> dict:
    """CPU model, bf16 path, threads, GPU and library versions: recorded with every figure."""
    import torch

    facts = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "bf16_path": bf16_path(),
        "cpu_fast_bf16": cpu_has_fast_bf16(),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "precision": precision,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "world_size": world_info()[1],
    }
    for lib in ("transformers", "accelerate", "datasets", "tokenizers", "onnxruntime", "numpy"):
        try:
            facts[lib] = __import__(lib).__version__
        except Exception:  # an optional library missing is a fact, not an error
            facts[lib] = None
    return facts
