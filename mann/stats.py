"""Accuracy summaries: mean and the half-width of a 95% confidence interval.

Over hundreds of test episodes the normal interval (1.96 · std / √n) is the field's
convention. Over a handful of seeds it is far too narrow (with 3 seeds the right
factor is 4.30, not 1.96), so seeds use Student's t.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

Z95 = 1.96
# Two-sided 95% quantiles of Student's t, t(0.975, df), for df = 1..30 (beyond: an expansion).
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def mean_ci95(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(mean, 1.96 · std / sqrt(n)) with the sample std (ddof=1); CI is 0 for n = 1."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("mean_ci95 needs at least one value")
    if x.size == 1:
        return float(x[0]), 0.0
    return float(x.mean()), float(Z95 * x.std(ddof=1) / math.sqrt(x.size))


def t975(df: int) -> float:
    """t(0.975, df): the 95% two-sided factor for a mean of df + 1 values."""
    if df < 1:
        raise ValueError(f"t975 needs df >= 1, got {df}")
    if df <= len(T975):
        return T975[df - 1]
    # Cornish-Fisher expansion around the normal quantile: within 1e-4 of the exact value from df = 30.
    z = Z95
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_ci95_t(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(mean, t(0.975, n-1) · std / sqrt(n)) with the sample std: for a few values, e.g. seeds."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size < 2:
        raise ValueError("mean_ci95_t needs at least two values")
    return float(x.mean()), float(t975(x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


def format_ci(mean: float, ci: float, percent: bool = True) -> str:
    """'78.4 ± 1.2' (percent) or '0.784 ± 0.012'."""
    if percent:
        return f"{100 * mean:.1f} ± {100 * ci:.1f}"
    return f"{mean:.3f} ± {ci:.3f}"
