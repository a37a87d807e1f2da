"""Which device a run uses, and how many CPU threads."""

from __future__ import annotations

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
