"""Where, when and with what a result was made: the fields every result row carries."""

from __future__ import annotations

import platform
import time
from datetime import datetime, timezone

import numpy
import torch

import mann


def utc_timestamp(seconds: float | None = None) -> str:
    """'2026-12-02T09:30:00+00:00' for ``seconds`` since the epoch (default: now)."""
    moment = datetime.now(timezone.utc) if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)
    return moment.isoformat(timespec="seconds")


def versions() -> dict:
    """Package versions of this process (a Ray worker may differ from the driver)."""
    return {"mann_bench": mann.__version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()})"


def run_environment(device: torch.device, data_source: str) -> dict:
    """The fields of a result row that say where and with what it ran."""
    return {
        "device": device_name(device),
        "threads": torch.get_num_threads(),
        **versions(),
        "host": platform.node(),
        "data_source": data_source,
        "finished_at": utc_timestamp(),
    }


def wall_clock_start(elapsed: float) -> str:
    """The timestamp ``elapsed`` seconds ago."""
    return utc_timestamp(time.time() - elapsed)
