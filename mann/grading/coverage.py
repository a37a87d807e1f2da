"""What the distinct characters of a split's episodes say about the split's size.

The assignment's loader draws each N-way episode's characters with
``random.sample(folders, N)``: N distinct characters, uniformly from the
split's P, independently from episode to episode. The number D of distinct
characters seen in E such episodes then has an exact distribution (a Markov
chain: with d characters seen, the next episode's new ones follow the
hypergeometric law of N draws from P of which P - d are unseen), so the
grader can say which counts a split of the assignment's size produces, with
a stated probability, and reject the others. An episode may show another
number of characters than N (a buggy query row); the chain takes each
episode's own count:

>>> draws = (50,) * 30                          # 30 episodes of 50 distinct characters
>>> low, high = acceptance(1100, draws)         # (778, 877): a correct loader lands in it
>>> pass_probability(800, draws, low, high)     # with probability 1 - 2e-6; a split of 800, ~2e-38

The test cannot tell sizes apart whose counts overlap (1099 from 1100); the
generator's own folder lists, when it exposes them, give the exact size
(checks_data.split_judge).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

FALSE_FAIL = 1e-6  # per tail: a correct loader fails one split's count with probability <= 2e-6


def _log_choose(n: np.ndarray, k: np.ndarray, log_factorial: np.ndarray) -> np.ndarray:
    """log C(n, k) elementwise, -inf where k < 0 or k > n (int arrays broadcast together)."""
    n, k = np.broadcast_arrays(n, k)
    valid = (k >= 0) & (k <= n)
    out = np.full(n.shape, -np.inf)
    out[valid] = log_factorial[n[valid]] - log_factorial[k[valid]] - log_factorial[n[valid] - k[valid]]
    return out


@lru_cache(maxsize=64)
def distinct_distribution(size: int, draws: tuple[int, ...]) -> np.ndarray:
    """float64 [size + 1]: P(D = d), D the distinct characters of episodes that
    show draws[e] distinct characters each (N for the assignment's), drawn
    uniformly from a split of ``size`` characters (every draws[e] <= size)."""
    if not draws or not 1 <= min(draws) <= max(draws) <= size:
        raise ValueError(f"episodes of {sorted(set(draws))} characters cannot come from a split of {size}")
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, size + 1)))])
    seen = np.arange(size + 1)[:, None]
    steps = {}
    for ways in set(draws):
        new = np.arange(ways + 1)[None, :]
        # steps[N][d, j]: probability that an episode shows j new characters when d are seen
        steps[ways] = np.exp(_log_choose(size - seen, new, log_factorial)
                             + _log_choose(seen, ways - new, log_factorial)
                             - _log_choose(np.array(size), np.array(ways), log_factorial))
    p = np.zeros(size + 1)
    p[0] = 1.0
    for ways in draws:
        q = np.zeros(size + 1)
        for j in range(ways + 1):
            q[j:] += (p * steps[ways][:, j])[: size + 1 - j]
        p = q
    return p


def acceptance(size: int, draws: tuple[int, ...], alpha: float = FALSE_FAIL) -> tuple[int, int]:
    """(low, high): the distinct counts a split of ``size`` characters gives,
    with P(D < low) <= alpha and P(D > high) <= alpha."""
    p = distinct_distribution(size, tuple(draws))
    below = np.cumsum(p)                  # P(D <= d)
    above = np.cumsum(p[::-1])[::-1]      # P(D >= d)
    low = int(np.count_nonzero(below <= alpha))
    high = int(np.nonzero(above > alpha)[0].max())
    return low, high


def pass_probability(size: int, draws: tuple[int, ...], low: int, high: int) -> float:
    """P(low <= D <= high) for a split of ``size`` characters (0 when an episode shows more)."""
    if size < max(draws):
        return 0.0
    p = distinct_distribution(size, tuple(draws))
    return float(p[max(low, 0): min(high, size) + 1].sum())


def expected_distinct(size: float, draws: tuple[int, ...]) -> float:
    """E[D] = P·(1 - prod_e (1 - N_e/P)) for a split of P characters."""
    return size * (1.0 - float(np.prod(1.0 - np.asarray(draws, dtype=np.float64) / size)))


def estimate_size(distinct: int, draws: tuple[int, ...]) -> float:
    """The split size P whose expected count E[D] is ``distinct`` (moment
    estimate); inf when no character repeated (any large split fits), and
    ``distinct`` when that is no more than the largest episode's."""
    if distinct >= sum(draws):
        return math.inf
    if distinct <= max(draws):
        return float(distinct)
    low, high = float(distinct), float(distinct)
    while expected_distinct(high, draws) < distinct:
        high *= 2.0
    for _ in range(100):  # E[D] increases with P: bisect
        middle = (low + high) / 2
        if expected_distinct(middle, draws) < distinct:
            low = middle
        else:
            high = middle
    return (low + high) / 2
