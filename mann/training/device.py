"""Which device a run uses, how many CPU threads, and how the C allocator keeps freed memory."""

from __future__ import annotations

import ctypes
import ctypes.util

import torch

from episodes.errors import UsageError


def resolve_device(name: str) -> torch.device:
    """'auto' → cuda when available, else cpu; UsageError for cuda without a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: no CUDA GPU is visible here; use --device cpu or auto")
    return torch.device(name)


def set_threads(threads: int | None) -> None:
    """torch's CPU threads for this process (None: leave torch's choice); UsageError below 1."""
    if threads is None:
        return
    if threads < 1:
        raise UsageError(f"--threads {threads}: use 1 or more")
    torch.set_num_threads(threads)


# glibc mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Have glibc's malloc reuse freed blocks instead of handing them back to the OS.

    By default blocks over a (moving) threshold are mmap'ed and unmapped on free,
    and the heap's top is trimmed, so a loop allocating the same activations
    every step page-faults them in afresh: a 20-way MAML meta-update on the
    CPU (16 MiB activations) took ~220,000 minor faults per step and a third
    longer here. The mmap threshold cannot be raised past 32 MiB, and larger
    activations (a 60-way 5-shot ProtoNets episode, a 20-way 5-shot MAML batch)
    were still mapped afresh each step, so mmap is switched off as well
    (M_MMAP_MAX = 0): a 20-way 5-shot MAML-CNN meta-update (16 tasks, 5 inner
    steps, 2 threads, training paused) went from 16-19 s to 8.5-10 s, its system
    time from 12-14 s to under 2 s, its resident memory levelling off at 5.1 GiB
    (tests/test_freed_memory.py counts the faults). The process keeps its peak
    heap. Returns False where there is no glibc (nothing changed).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return all(bool(mallopt(option, value)) for option, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_MMAP_MAX, 0)))
