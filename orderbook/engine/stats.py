"""Online execution statistics per lane: Welford moments and counters.

Updated by the step kernel as events happen, so ``info`` can report an episode's
execution quality without scanning the history. The same figures come from the
history frames (:mod:`orderbook.analytics.queries`); tests assert they agree.
"""

from __future__ import annotations

import numpy as np

from orderbook.compile.jit import kernel


@kernel
def observe(stats, b, which, x):
    """Add ``x`` to the Welford (count, mean, M2) of statistic ``which`` of lane ``b``."""
    w = stats.welford
    n = w[b, which, 0] + 1.0
    delta = x - w[b, which, 1]
    w[b, which, 0] = n
    w[b, which, 1] += delta / n
    w[b, which, 2] += delta * (x - w[b, which, 1])


@kernel
def count(stats, b, which, by=1):
    stats.counters[b, which] += by


@kernel
def count_reject(stats, b, reason):
    stats.rejects_by_reason[b, reason] += 1


@kernel
def reset_lane(stats, b):
    stats.welford[b, :, :] = 0.0
    stats.counters[b, :] = 0
    stats.rejects_by_reason[b, :] = 0


def welford_summary(welford: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, mean, sample std) arrays from a (..., 3) Welford block; NaN where undefined."""
    n = welford[..., 0]
    mean = np.where(n > 0, welford[..., 1], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.where(n > 1, np.sqrt(welford[..., 2] / np.maximum(n - 1, 1)), np.nan)
    return n, mean, std
