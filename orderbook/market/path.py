"""The path inside a bar: prices and traded volume at times inside the step, keyed and reproducible.

For every lane ``b`` and instrument ``i``, the bar of a step ``[t0, t0 + step)`` is a
path of ``n = ExchangeConfig.path_points`` intervals: point ``j = 0..n`` lies at
``t0 + j x step / n`` (:func:`point_time_ns`, exact integers) with its price in
ticks in ``bars.path_ticks[b, i, j]``. Market sources write the points with the bar
(:func:`bridge_from_open_to_close` for the synthetic market, :func:`bridge_through_extremes`
for replayed bars); the matching reads them.

What it keeps true:

- point 0 is the bar's open and point ``n`` its close; the high and the low are
  points of the path, and every point lies in ``[low, high]`` (and so in the
  instrument's price range).
- Synthetic bars derive from their path: the latent process draws the close, the
  path is a Brownian bridge from the open to it with the bar's own volatility
  (``sigma_ticks``, scaled by ``SyntheticMarket.range_scale``), and the bar's high
  and low are the path's maximum and minimum. So the price at time ``t`` into the
  bar moves from the open with variance ``sigma^2 x t / step`` (exactly, at the points).
- Replayed bars keep their OHLC: the path is a bridge through the extremes. The
  high and the low sit at two distinct interior points drawn from the key, and
  Brownian bridges with the bar's Parkinson volatility (``REPLAY_SIGMA_PER_RANGE x
  (high - low)``) join open, first extreme, second extreme and close, clamped into
  ``[low, high]``.
- Volume is spread evenly along the path: the interval ending at point ``j``
  (``1..n``) carries ``volume // n`` lots, one more for the first ``volume % n``
  intervals (:func:`interval_volume_lots`). So "how much traded at or through price
  ``p`` after time ``t``" is the sum over the points after ``t`` whose price is at or
  through ``p``; the intervals sum to the bar's volume exactly.
- Between two points the price is refined on demand (:func:`price_at_ns`): dyadic
  Brownian midpoints, ``2**FINE_LEVELS`` sub-points per interval, each keyed by its
  position (not by who asks), so a time always gives the same price, the refined
  path passes through the points, and its increments keep the variance
  ``sigma^2 x dt / step``. Refined prices are clamped into ``[low, high]``.
- Every draw is keyed by the lane's market seed, episode, step, instrument and
  point (:class:`orderbook.spec.rng.Purpose` ``PATH_*``): the same seed gives the
  same path whatever the batch size or the orders sent.

Cost (DESIGN "Speed"): ``n`` quick normals (one hash each,
:func:`orderbook.spec.rng.quick_normal_at`) per lane, instrument and step, drawn with
the bar (the synthetic bar no longer draws its two range normals, which cost
more); ``FINE_LEVELS`` quick normals per message that arrives inside the bar. The
default ``n = 16`` is 3.75 s at one-minute bars, refined to 59 ms for arrivals: the
points decide when a resting order fills, so a finer ``n`` times fills finer and
costs linearly in the market's advance and in the scan of each resting order.

Known limits: volume is spread evenly in time, not by price movement; jumps of the
synthetic market are spread over the bar like its drift.
"""

from __future__ import annotations

import numpy as np

from orderbook.compile.jit import kernel
from orderbook.spec import rng

FINE_LEVELS = 6  # an interval between two points refines into 2**6 sub-points
FINE_PER_POINT = 1 << FINE_LEVELS
MIN_PATH_POINTS = 4  # the extremes of a replayed bar need two distinct interior points
MAX_PATH_POINTS = 4096  # keys hold a point in 16 bits
DEFAULT_PATH_POINTS = 16
REPLAY_SIGMA_PER_RANGE = 0.6006  # Parkinson: sigma = (high - low) / sqrt(4 ln 2)


@kernel(inline=True)
def point_time_ns(t0, step_ns, n, j):
    """Time of point ``j`` of ``n`` in the bar starting at ``t0`` (exact: ``t0 + floor(j x step / n)``)."""
    return t0 + (step_ns // n) * j + ((step_ns % n) * j) // n


@kernel(inline=True)
def first_point_after(t0, step_ns, n, t):
    """The first point whose time is strictly after ``t`` (``n + 1`` if none)."""
    if t < t0:
        return 0
    j = np.int64(float(t - t0) / step_ns * n)  # a guess, corrected on exact times
    j = min(max(j, 0), n)
    while j > 0 and point_time_ns(t0, step_ns, n, j - 1) > t:
        j -= 1
    while j <= n and point_time_ns(t0, step_ns, n, j) <= t:
        j += 1
    return j


@kernel(inline=True)
def interval_volume_lots(volume_lots, n, j):
    """Lots traded in the interval that ends at point ``j`` (none at point 0)."""
    if j <= 0:
        return np.int64(0)
    extra = 1 if j <= volume_lots % n else 0
    return volume_lots // n + extra


@kernel(inline=True)
def _bridge(bars, b, i, key, j_from, x_from, j_to, x_to, sd_per_point, lo, hi):
    """Points ``j_from + 1 .. j_to`` of a Brownian bridge from ``x_from`` to ``x_to`` (float ticks), clamped and rounded.

    Sequential exact sampling: from ``x`` at ``j`` with ``m`` points left, the next
    point is ``x + (x_to - x) / m`` plus a normal of variance ``sd^2 x (m - 1) / m``.
    The caller writes the end point ``j_to`` (exact ticks).
    """
    x = x_from
    for j in range(j_from + 1, j_to):
        m = j_to - (j - 1)
        z = rng.quick_normal_at(key, (i << 16) | j, rng.P_PATH_STEP)
        x = x + (x_to - x) / m + sd_per_point * np.sqrt((m - 1) / m) * z
        t = np.int64(np.round(min(max(x, float(lo)), float(hi))))
        bars.path_ticks[b, i, j] = min(max(t, lo), hi)


@kernel
def flat_path(bars, b, i, n, price_ticks):
    """A bar that stays at ``price_ticks`` (the bar an episode starts on)."""
    for j in range(n + 1):
        bars.path_ticks[b, i, j] = price_ticks
    bars.path_sigma_ticks[b, i] = 0.0


@kernel
def bridge_from_open_to_close(cc, bars, b, i, key, n, sigma_ticks):
    """Synthetic bars: the path from the open to the close (both set), then the bar's high and low from it.

    ``sigma_ticks`` is the sd of the bar's Brownian part over the whole step.
    """
    lo, hi = cc.min_price_ticks[i], cc.max_price_ticks[i]
    o, c = bars.open_ticks[b, i], bars.close_ticks[b, i]
    bars.path_ticks[b, i, 0] = o
    bars.path_ticks[b, i, n] = c
    _bridge(bars, b, i, key, 0, float(o), n, float(c), sigma_ticks / np.sqrt(n), lo, hi)
    top, bottom = o, o
    for j in range(1, n + 1):
        p = bars.path_ticks[b, i, j]
        top, bottom = max(top, p), min(bottom, p)
    bars.high_ticks[b, i] = top
    bars.low_ticks[b, i] = bottom
    bars.path_sigma_ticks[b, i] = sigma_ticks


@kernel
def bridge_through_extremes(bars, b, i, key, n):
    """Replayed bars: a path through open, high, low and close (set), the extremes at keyed interior points."""
    o, h, lo, c = bars.open_ticks[b, i], bars.high_ticks[b, i], bars.low_ticks[b, i], bars.close_ticks[b, i]
    sigma = REPLAY_SIGMA_PER_RANGE * float(h - lo)
    bars.path_sigma_ticks[b, i] = sigma
    bars.path_ticks[b, i, 0] = o
    if h == lo:
        for j in range(1, n + 1):
            bars.path_ticks[b, i, j] = o
        return
    at_high = 1 + min(np.int64(rng.uniform_at(key, i, rng.P_PATH_HIGH_AT) * (n - 1)), n - 2)
    at_low = 1 + min(np.int64(rng.uniform_at(key, i, rng.P_PATH_LOW_AT) * (n - 2)), n - 3)
    if at_low >= at_high:
        at_low += 1
    j1, x1, j2, x2 = at_high, h, at_low, lo
    if at_low < at_high:
        j1, x1, j2, x2 = at_low, lo, at_high, h
    sd = sigma / np.sqrt(n)
    bars.path_ticks[b, i, j1] = x1
    bars.path_ticks[b, i, j2] = x2
    bars.path_ticks[b, i, n] = c
    _bridge(bars, b, i, key, 0, float(o), j1, float(x1), sd, lo, h)
    _bridge(bars, b, i, key, j1, float(x1), j2, float(x2), sd, lo, h)
    _bridge(bars, b, i, key, j2, float(x2), n, float(c), sd, lo, h)


@kernel
def price_at_ns(bars, b, i, n, t0, step_ns, t, key):
    """The path's price (ticks) at time ``t`` of the bar starting at ``t0``: a point, or refined between two.

    ``key`` is the lane's market ``rng.step_key`` of this step. Times before the bar
    read its open, after it its close.
    """
    if t <= t0:
        return bars.path_ticks[b, i, 0]
    if t - t0 >= step_ns:
        return bars.path_ticks[b, i, n]
    f = min(np.int64(float(t - t0) / step_ns * n * FINE_PER_POINT), n * FINE_PER_POINT - 1)
    j, r = f >> FINE_LEVELS, f & (FINE_PER_POINT - 1)
    if r == 0:
        return bars.path_ticks[b, i, j]
    var_point = bars.path_sigma_ticks[b, i] ** 2 / n
    lo_node, hi_node = 0, FINE_PER_POINT
    x_lo, x_hi = float(bars.path_ticks[b, i, j]), float(bars.path_ticks[b, i, j + 1])
    x = x_lo
    while True:
        mid = (lo_node + hi_node) >> 1
        sd = np.sqrt(var_point * (hi_node - lo_node) / FINE_PER_POINT / 4.0)
        x = 0.5 * (x_lo + x_hi) + sd * rng.quick_normal_at(key, (i << 32) | (j << 16) | mid, rng.P_PATH_FINE)
        if r == mid:
            break
        if r < mid:
            hi_node, x_hi = mid, x
        else:
            lo_node, x_lo = mid, x
    lo, hi = bars.low_ticks[b, i], bars.high_ticks[b, i]
    p = np.int64(np.round(min(max(x, float(lo)), float(hi))))
    return min(max(p, lo), hi)
