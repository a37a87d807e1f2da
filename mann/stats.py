"""Accuracy summaries: mean and the half-width of a normal 95% confidence interval."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

Z95 = 1.96


def mean_ci95(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(mean, 1.96 · std / sqrt(n)) with the sample std (ddof=1); CI is 0 for n = 1."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("mean_ci95 needs at least one value")
    if x.size == 1:
        return float(x[0]), 0.0
    return float(x.mean()), float(Z95 * x.std(ddof=1) / math.sqrt(x.size))


def format_ci(mean: float, ci: float, percent: bool = True) -> str:
    """'78.4 ± 1.2' (percent) or '0.784 ± 0.012'."""
    if percent:
        return f"{100 * mean:.1f} ± {100 * ci:.1f}"
    return f"{mean:.3f} ± {ci:.3f}"
