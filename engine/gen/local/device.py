"""Which torch device and precision the local model runs on, how much memory it holds, and how to free it.

``[local] device = "auto"`` takes CUDA, else Apple's MPS, else the CPU; ``dtype = "auto"`` takes half
precision (float16) on a GPU, where it halves memory and roughly doubles speed, and float32 on the
CPU, where float16 kernels are slow or missing. Memory in use is what the VJ page shows: the CUDA
allocator's own count on an NVIDIA GPU, MPS's on a Mac, else the process's resident size.

Only this module and the worker's jobs touch torch's device APIs; importing it imports torch.
"""

from __future__ import annotations

import gc
from typing import Any

import psutil
import torch

from engine.config import Device, Dtype
from engine.gen.local.folder import LocalModelError

DTYPES: dict[str, torch.dtype] = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
OOM_WORDS = ("out of memory", "cuda_error_out_of_memory", "mps backend out of memory")


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def gpu_available() -> bool:
    """A CUDA or MPS device torch can use (what ``backend = "auto"`` needs to pick the local model)."""
    return bool(torch.cuda.is_available()) or mps_available()


def pick_device(wanted: Device) -> str:
    """``auto``: cuda, else mps, else cpu; an explicit device that is not there raises LocalModelError."""
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    if wanted == "cuda" and not torch.cuda.is_available():
        build = f"torch {torch.__version__}" + (" is a CPU-only build" if torch.version.cuda is None else
                                                 " sees no CUDA GPU (driver?)")
        raise LocalModelError(f'[local] device = "cuda" but {build}')
    if wanted == "mps" and not mps_available():
        raise LocalModelError('[local] device = "mps" but torch sees no Apple GPU here')
    return wanted


def pick_dtype(wanted: Dtype, device: str) -> torch.dtype:
    """``auto``: float16 on a GPU, float32 on the CPU."""
    if wanted == "auto":
        return torch.float32 if device == "cpu" else torch.float16
    return DTYPES[wanted]


def dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def memory_mb(device: str) -> float:
    """Memory the model holds: the GPU allocator's count, or this process's resident size on the CPU."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return float(torch.cuda.memory_allocated()) / 2**20
    if device == "mps" and mps_available():
        return float(torch.mps.current_allocated_memory()) / 2**20
    return float(psutil.Process().memory_info().rss) / 2**20


def free_memory(device: str) -> None:
    """Give back what a failed step left behind: Python's garbage first, then the GPU allocator's cache."""
    gc.collect()
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device == "mps" and mps_available():
        torch.mps.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    """torch.cuda.OutOfMemoryError, or a RuntimeError whose text says out of memory (MPS, older torch)."""
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and any(w in str(exc).lower() for w in OOM_WORDS)


def is_driver_error(exc: BaseException) -> bool:
    """An error from torch or the GPU driver (not out of memory): worth a reload after a few in a row."""
    return isinstance(exc, RuntimeError) and not is_out_of_memory(exc)
