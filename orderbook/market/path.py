"""The path inside a bar: prices and traded volume at times inside the step, keyed and reproducible.

For every lane ``b`` and instrument ``i``, the bar of a step ``[t0, t0 + step)`` is a
path of ``n = ExchangeConfig.path_points`` intervals: point ``j = 0..n`` lies at
``t0 + j x step / n`` (:func:`point_time_ns`, exact integers) with its price in
ticks in ``bars.path_ticks[b, i, j]``. Market sources write the points with the bar
(:func:`bridge_from_open_to_close` for the synthetic market, :func:`bridge_through_extremes`
for replayed bars); the matching reads them.

What it keeps true:

- point ``n`` is the bar's close. Synthetic bars start at their open and every
  point lies in ``[low, high]`` (and so in the instrument's price range); a
  replayed bar's high and low are points of its path.
- Synthetic bars derive from their path: the latent process draws the close, the
  path is a Brownian bridge from the open to it with the bar's own volatility
  (``sigma_ticks``, scaled by ``SyntheticMarket.range_scale``), and the bar's high
  and low are the continuous path's maximum and minimum: the largest and smallest
  interval extremes (below), not only the points' (which fall short of the range
  by about ``0.58 sigma / sqrt(n)`` at each end). So the price at time ``t`` into the
  bar moves from the open with variance ``sigma^2 x t / step`` (exactly, at the points).
- Between two points the path goes on: every interval (points ``j - 1, j``) has
  its minimum and maximum in ``bars.path_low_ticks[b, i, j]`` /
  ``path_high_ticks[b, i, j]`` (:func:`interval_extremes`), drawn exactly as a
  Brownian bridge's between the two points with the interval's variance
  ``sigma^2 / n`` (min and max drawn independently, an approximation), rounded to
  the nearest tick as the points are (so at most both points, at least both).
  Synthetic extremes are clamped into the instrument's price range, replayed ones
  into the bar's ``[low, high]`` (the data's range; the first interval's widened to
  the path's start, as :func:`price_at_ns` does). The matching reads them: a
  resting limit that a brief dip between two points trades through fills
  (:func:`orderbook.engine.queues.make`).
- Replayed bars keep their OHLC, and their path is a quote (mid) path from the mid
  the decision saw: point 0 is the previous bar's close as the market showed it
  (the centre of the quotes the agent decided on), not the bar's open, a trade
  print off that mid by the bid-ask bounce. Points ``1..n`` lie in ``[low, high]``;
  a start outside it (a gap) is the only point off the range, and the first
  interval joins it to the range. Which extreme comes first and where each sits
  are drawn from the key as first passages of a Brownian path (an extreme that is
  the start or the close sits there; far extremes come late, near ones early), and
  Brownian bridges join start, extremes and close, clamped into ``[low, high]``
  (:func:`bridge_through_extremes`).
- Volume is spread evenly along the path: the interval ending at point ``j``
  (``1..n``) carries ``volume // n`` lots, one more for the first ``volume % n``
  intervals (:func:`interval_volume_lots`). So "how much traded at or through price
  ``p`` after time ``t``" is the sum over the points after ``t`` whose price is at or
  through ``p``; the intervals sum to the bar's volume exactly.
- Between two points the price is refined on demand (:func:`price_at_ns`): dyadic
  Brownian midpoints, ``2**FINE_LEVELS`` sub-points per interval, each keyed by its
  position (not by who asks), so a time always gives the same price, the refined
  path passes through the points, and its increments keep the variance
  ``sigma^2 x dt / step``. Refined prices are clamped into ``[low, high]`` (in the
  first interval, into that range widened to the path's start).
- Every draw is keyed by the lane's market seed, episode, step, instrument and
  point (:class:`orderbook.spec.rng.Purpose` ``PATH_*``): the same seed gives the
  same path whatever the batch size or the orders sent.

Cost (DESIGN "Speed"): ``n`` quick normals (one hash each,
:func:`orderbook.spec.rng.quick_normal_at`) and ``n`` interval extremes (one hash,
two logs and two square roots each, :func:`orderbook.spec.rng.uniform_pair_at`)
per lane, instrument and step, drawn with the bar (the synthetic bar no longer draws its two range normals, which cost
more); ``FINE_LEVELS`` quick normals per message that arrives inside the bar. The
default ``n = 16`` is 3.75 s at one-minute bars, refined to 59 ms for arrivals: the
points decide when a resting order fills, so a finer ``n`` times fills finer and
costs linearly in the market's advance and in the scan of each resting order.
Measured with ``benchmarks/throughput.py --core-only --lanes 4096`` (default config,
6 instruments, all faults on), interleaved with the commit before the path: 17.7 ->
21.2 ms per step (medians of 3 runs, 1.20x). The interval extremes, with the share of
an interval's volume a resting limit meets (:func:`share_at_or_through`, in the
matching), took the same core from 18.2 to 23.3 ms (1.28x; ``benchmarks/RESULTS.md``,
"Fidelity: maker fills between the path's points").

Calibration of the replayed path (``REPLAY_*``, on the packaged Binance.US BTC/USD
one-minute bars of March 2023, every bar from the previous close): the variance of
the path's price ``t`` into a bar against its start should grow like
``sigma_bar^2 x t / step``, ``sigma_bar^2`` the variance of the bars' one-minute log
returns (77.6 bps^2). The passage unit places the extremes (larger: earlier), the
rest's share pulls the first extreme earlier and the second later for the same
journey (a journey kept inside the range is quicker than a free passage, whose
heavy tail made the middle of the bar stray: +35% at 10 to 50 s), the fine scale
sets the first interval (at half the bar's sigma the 1 s row had half its
variance). Chosen by a grid over the four scales; at 1 / 5 / 10 / 20 / 30 / 40 /
50 s the path's added variance is -2 / +10 / +9 / +20 / +25 / +26 / +22% over all
30,239 bars (two key sets differ by about 6 points); the market orders of
``tests/orderbook/engine/test_path_fills.py`` (4,096 lanes) +8 / +9 / +8 / +10% at
1 / 10 / 30 / 50 s. A bar's path visits both its extremes, so the middle of the
bar keeps some excess whatever the placement.

Known limits: volume is spread evenly in time, not by price movement; the
refined prices between two points (:func:`price_at_ns`, what an arrival meets) are
drawn apart from the interval's extremes and may pass them by a little (both are
clamped into the bar's range); an order that arrives inside an interval meets its
whole extreme, which may have come before it arrived; jumps of the
synthetic market are spread over the bar like its drift; the replayed bars' path
is calibrated on the packaged Binance.US bars (above) and on the variance of its
price only, not on when real extremes happen (one-minute bars do not say); the
replayed bar's open is not on its path (the path is a quote path; the open, a
trade, stays in the bar and the market log); a replayed bar's quotes at a gap's
start lie outside its range (:func:`orderbook.engine.book.quotes_at`).
"""

from __future__ import annotations

import math

import numpy as np

from orderbook.compile.jit import kernel
from orderbook.spec import rng

FINE_LEVELS = 6  # an interval between two points refines into 2**6 sub-points
FINE_PER_POINT = 1 << FINE_LEVELS
MIN_PATH_POINTS = 4  # the extremes of a replayed bar need two distinct interior points
MAX_PATH_POINTS = 4096  # keys hold a point in 16 bits
DEFAULT_PATH_POINTS = 16
REPLAY_SIGMA_PER_RANGE = 0.6006  # Parkinson: sigma = (high - low) / sqrt(4 ln 2)
REPLAY_PASSAGE_PER_RANGE = 1.1  # unit of the first passages that place a replayed bar's extremes, per range (calibrated)
REPLAY_REST_PER_PASSAGE = 0.5  # placing the first extreme, the rest of the journey (kept in the range) counts this share of its distance (calibrated)
REPLAY_BRIDGE_SCALE = 0.5  # sd of the bridges between a replayed bar's start, extremes and close, per sigma (calibrated)
REPLAY_FINE_SCALE = 1.0  # sd of the refinement between a replayed bar's points, per sigma (calibrated)


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
def interval_lots(per_interval_lots, extra_lots, j):
    """Lots traded in the interval that ends at point ``j`` of a bar whose volume splits into ``n`` intervals as
    ``(volume // n, volume % n)`` (none at point 0): the first ``volume % n`` intervals carry one lot more. For a
    caller that walks many intervals of one bar and splits its volume once."""
    if j <= 0:
        return np.int64(0)
    extra = 1 if j <= extra_lots else 0
    return per_interval_lots + extra


@kernel(inline=True)
def interval_volume_lots(volume_lots, n, j):
    """Lots traded in the interval that ends at point ``j`` (none at point 0)."""
    return interval_lots(volume_lots // n, volume_lots % n, j)


@kernel(inline=True)
def interval_variance_ticks2(bars, b, i, n):
    """Variance (ticks^2) of the path over one of the bar's ``n`` intervals: the one the refinement
    (:func:`price_at_ns`), the intervals' extremes (:func:`interval_extremes`) and the volume a limit meets
    there (:func:`share_at_or_through`, through :mod:`orderbook.engine.queues`) all use."""
    return bars.path_sigma_ticks[b, i] ** 2 / n


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
        bars.path_low_ticks[b, i, j] = price_ticks
        bars.path_high_ticks[b, i, j] = price_ticks
    bars.path_sigma_ticks[b, i] = 0.0


@kernel
def interval_extremes(bars, b, i, key, n, lo, hi, first_lo, first_hi):
    """The continuous path's minimum and maximum inside every interval: ``path_low_ticks`` / ``path_high_ticks``.

    Entry ``j`` (``1..n``) is the interval from point ``j - 1`` to point ``j``, entry 0
    point 0 itself. Between two points ``x0, x1`` the path is a Brownian bridge with
    the interval's variance ``v = path_sigma_ticks**2 / n`` (the one
    :func:`price_at_ns` refines with); its minimum is drawn exactly,
    ``(x0 + x1 - sqrt((x1 - x0)**2 - 2 v ln U)) / 2``, its maximum likewise with a
    second uniform (both from one key, :func:`orderbook.spec.rng.uniform_pair_at`;
    the two are drawn independently, an approximation: a bridge's min and max are
    slightly dependent). Rounded to the nearest tick, as the points are (rounding
    is monotone, so the nearest tick of the continuous minimum is the lowest tick the
    path shows; rounding down instead would put it half a tick too low and turn
    every point at a price into a trade through it), which keeps the minimum at
    most both points and the maximum at least both (the points are whole ticks);
    then clamped into ``[lo, hi]`` (``[first_lo, first_hi]`` for the first interval;
    the clamps contain the points). ``v = 0`` gives the points' own min and max.
    """
    var = interval_variance_ticks2(bars, b, i, n)
    x0 = bars.path_ticks[b, i, 0]
    bars.path_low_ticks[b, i, 0] = x0
    bars.path_high_ticks[b, i, 0] = x0
    for j in range(1, n + 1):
        x1 = bars.path_ticks[b, i, j]
        u_lo, u_hi = rng.uniform_pair_at(key, (i << 16) | j, rng.P_PATH_EXTREMES)
        floor_ticks, ceil_ticks = (first_lo, first_hi) if j == 1 else (lo, hi)
        d2 = float(x1 - x0) ** 2
        m = np.round(0.5 * (float(x0 + x1) - np.sqrt(d2 - 2.0 * var * np.log(u_lo))))
        top = np.round(0.5 * (float(x0 + x1) + np.sqrt(d2 - 2.0 * var * np.log(u_hi))))
        low = np.int64(min(max(m, float(floor_ticks)), float(ceil_ticks)))
        high = np.int64(min(max(top, float(floor_ticks)), float(ceil_ticks)))
        bars.path_low_ticks[b, i, j] = min(max(low, floor_ticks), min(x0, x1))
        bars.path_high_ticks[b, i, j] = max(min(high, ceil_ticks), max(x0, x1))
        x0 = x1


# Gauss-Legendre nodes and weights (8 points) on [0, 1]: the expected time below a level to ~0.2% of the share
_GL_X = (0.019855071751231912, 0.10166676129318664, 0.2372337950418355, 0.4082826787521751,
         0.5917173212478248, 0.7627662049581645, 0.8983332387068134, 0.9801449282487681)
_GL_W = (0.05061426814518853, 0.11119051722668721, 0.15685332293894344, 0.18134189168918083,
         0.18134189168918083, 0.15685332293894344, 0.11119051722668721, 0.05061426814518853)
_FAR_SD = 6.0  # both points this many of the bridge's largest sd through a level: all of its time is (to 1e-9)
_SQRT2 = 1.4142135623730951
_ERFC_TWO_AT_OR_BELOW = -8.0  # erfc(x) rounds to exactly 2.0 here (2 - 1e-29 at -8): the node counts whole, no erfc called
_ERFC_ZERO_AT_OR_ABOVE = 40.0  # erfc(x) underflows to exactly 0.0 here (1e-697 at 40): the node counts nothing


@kernel(inline=True)
def _node_scale(var, s):
    """``sqrt(var s (1 - s)) x sqrt(2)``: the bridge's sd at node ``s`` times ``sqrt(2)``, as :func:`_time_below` divides by it."""
    return np.sqrt(var * s * (1.0 - s)) * _SQRT2


@kernel(inline=True)
def bridge_scales(var):
    """What :func:`_time_below` needs of a variance ``var``: ``(far, scales)``, computed once per interval variance.

    ``far`` is ``_FAR_SD`` of the bridge's largest sd, ``scales[k]`` the bridge's sd at
    Gauss-Legendre node ``k`` times ``sqrt(2)``. Every interval of a bar has the same
    variance (:func:`interval_variance_ticks2`), so a caller that asks for many of a
    bar's intervals (:func:`orderbook.engine.queues.make`) computes these 9 square
    roots once; the values are the very floats :func:`_time_below` computed per call.
    """
    scales = (_node_scale(var, _GL_X[0]), _node_scale(var, _GL_X[1]), _node_scale(var, _GL_X[2]),
              _node_scale(var, _GL_X[3]), _node_scale(var, _GL_X[4]), _node_scale(var, _GL_X[5]),
              _node_scale(var, _GL_X[6]), _node_scale(var, _GL_X[7]))
    return _FAR_SD * 0.5 * np.sqrt(var), scales


@kernel(inline=True)
def _time_below(x0, x1, far, scales, level):
    """Expected share of an interval's time a Brownian bridge from ``x0`` to ``x1`` spends below ``level``.

    ``far, scales = bridge_scales(var)`` for the bridge's variance ``var``:
    ``integral over s in (0, 1) of Phi((level - x0 - s (x1 - x0)) / sqrt(var s (1 - s)))``, by
    8-point Gauss-Legendre (within 0.2% of the share over bridges that reach the
    level, against adaptive quadrature); 1 when both points lie ``_FAR_SD`` of the
    bridge's largest sd below it. ``var = 0`` is the straight line (a point at the
    level counts half). A node whose ``erfc`` argument lies where ``erfc`` is exactly
    2 or exactly 0 adds its whole weight or nothing without calling it: the same sum,
    bit for bit (``tests/orderbook/market/test_path_extremes.py`` checks both ends).
    """
    if max(x0, x1) < level - far:
        return 1.0
    total = 0.0
    for k in range(8):
        s = _GL_X[k]
        mean = x0 + s * (x1 - x0)
        scale = scales[k]
        if scale > 0.0:
            z = (mean - level) / scale
            if z <= _ERFC_TWO_AT_OR_BELOW:
                total += _GL_W[k]  # _GL_W[k] * 0.5 * 2.0, exactly
            elif z < _ERFC_ZERO_AT_OR_ABOVE:
                total += _GL_W[k] * 0.5 * math.erfc(z)
        elif mean < level:
            total += _GL_W[k]
        elif mean == level:
            total += 0.5 * _GL_W[k]
    return total


@kernel(inline=True)
def share_with_scales(x0, x1, var, far, scales, price, sign):
    """:func:`share_at_or_through` given ``far, scales = bridge_scales(var)`` (the same value, bit for bit)."""
    a, b, p = sign * float(x0), sign * float(x1), sign * float(price)
    occupied = _time_below(a, b, far, scales, p)
    if min(a, b) < p + 0.5:
        reach = 1.0
    elif var > 0.0:
        reach = np.exp(-2.0 * (a - p - 0.5) * (b - p - 0.5) / var)
    else:
        reach = 0.0
    if occupied >= reach:
        return 1.0 if reach > 0.0 else 0.0
    return occupied / reach


@kernel
def share_at_or_through(x0, x1, var, price, sign):
    """The share of an interval's volume a limit at ``price`` meets, given that the interval reached the price.

    ``sign`` is +1 for a buy (through is below the price), -1 for a sell. The
    interval (points ``x0, x1``, whole ticks, the continuous path between them a
    Brownian bridge of variance ``var``) traded through ``price`` for a share of its
    time (below ``price - 0.5`` the path shows the next tick) and at it for another
    (the tick's band, ``price -+ 0.5``), which a touch counts half: together, to
    first order in the band, the time the path spent below ``price`` itself, which is
    what is computed. Volume is spread evenly in time, so that share of the volume
    went there. The share is its expectation given that the path reached the
    price's tick (its extreme toward the limit rounds to ``price`` or through it, as
    :func:`interval_extremes` draws it with exactly this probability):
    ``E[time through] / P(reached)``. So the volume a limit meets is, in expectation,
    the continuous path's whatever ``path_points`` (a coarser path has fewer, longer
    intervals reaching the price, each offering what it spent there). In [0, 1].
    """
    far, scales = bridge_scales(var)
    return share_with_scales(x0, x1, var, far, scales, price, sign)


@kernel
def bridge_from_open_to_close(cc, bars, b, i, key, n, sigma_ticks):
    """Synthetic bars: the path from the open to the close (both set), its interval extremes, then the bar's high and low.

    ``sigma_ticks`` is the sd of the bar's Brownian part over the whole step. The
    bar's high and low are the largest and smallest interval extremes
    (:func:`interval_extremes`, clamped into the instrument's price range): the
    continuous path's range, not only its points'.
    """
    lo, hi = cc.min_price_ticks[i], cc.max_price_ticks[i]
    o, c = bars.open_ticks[b, i], bars.close_ticks[b, i]
    bars.path_ticks[b, i, 0] = o
    bars.path_ticks[b, i, n] = c
    _bridge(bars, b, i, key, 0, float(o), n, float(c), sigma_ticks / np.sqrt(n), lo, hi)
    bars.path_sigma_ticks[b, i] = sigma_ticks
    interval_extremes(bars, b, i, key, n, lo, hi, lo, hi)
    top, bottom = o, o
    for j in range(1, n + 1):
        top, bottom = max(top, bars.path_high_ticks[b, i, j]), min(bottom, bars.path_low_ticks[b, i, j])
    bars.high_ticks[b, i] = top
    bars.low_ticks[b, i] = bottom


@kernel(inline=True)
def _log_passage(d, t):
    """Log of the first-passage density of a Brownian motion (sd 1 per bar) to distance ``d > 0`` at time ``t``, up to a constant."""
    return np.log(d) - 1.5 * np.log(t) - d * d / (2.0 * t)


@kernel
def _passage_point(key, i, purpose, n, j_from, j_to, j_start, j_end, a, bb):
    """A point ``j`` in ``[j_from, j_to]`` drawn (keyed) with weight ``f_a(t_j - t_start) f_bb(t_end - t_j)``.

    ``f_d`` is the first-passage density to distance ``d`` (:func:`_log_passage`),
    times are fractions of the bar: where a Brownian path that leaves ``j_start``
    and must still travel ``bb`` by ``j_end`` first reaches a level ``a`` away.
    """
    top = -np.inf
    for j in range(j_from, j_to + 1):
        top = max(top, _log_passage(a, (j - j_start) / n) + _log_passage(bb, (j_end - j) / n))
    total = 0.0
    for j in range(j_from, j_to + 1):
        total += np.exp(_log_passage(a, (j - j_start) / n) + _log_passage(bb, (j_end - j) / n) - top)
    u = rng.uniform_at(key, i, purpose) * total
    acc = 0.0
    for j in range(j_from, j_to + 1):
        acc += np.exp(_log_passage(a, (j - j_start) / n) + _log_passage(bb, (j_end - j) / n) - top)
        if acc > u:
            return np.int64(j)
    return np.int64(j_to)


@kernel
def _through_extremes(bars, b, i, key, n, o, h, lo, c, sigma):
    """Points ``1..n-1`` of a replayed bar that moves (``h > lo``): :func:`bridge_through_extremes` without its ends."""
    unit = REPLAY_PASSAGE_PER_RANGE * float(h - lo)
    r = float(h - lo) / unit
    d1 = abs(float(h - o)) / unit + r + float(c - lo) / unit
    d2 = abs(float(o - lo)) / unit + r + float(h - c) / unit
    w1, w2 = d1 * np.exp(-0.5 * d1 * d1), d2 * np.exp(-0.5 * d2 * d2)
    high_first = rng.uniform_at(key, i, rng.P_PATH_ORDER) * (w1 + w2) < w1
    x1, x2 = (h, lo) if high_first else (lo, h)
    a, bb = abs(float(x1 - o)) / unit, abs(float(c - x2)) / unit
    last = n if bb == 0.0 else n - 1  # the second extreme needs a point of its own unless it is the close
    j1 = np.int64(0) if a == 0.0 else _passage_point(key, i, rng.P_PATH_FIRST_AT, n, 1, last - 1, 0, n, a,
                                                           REPLAY_REST_PER_PASSAGE * (r + bb))
    j2 = np.int64(n) if bb == 0.0 else _passage_point(key, i, rng.P_PATH_SECOND_AT, n, j1 + 1, n - 1, j1, n, r, bb)
    bars.path_ticks[b, i, j1] = x1
    bars.path_ticks[b, i, j2] = x2
    sd = REPLAY_BRIDGE_SCALE * sigma / np.sqrt(n)
    _bridge(bars, b, i, key, 0, float(o), j1, float(x1), sd, lo, h)
    _bridge(bars, b, i, key, j1, float(x1), j2, float(x2), sd, lo, h)
    _bridge(bars, b, i, key, j2, float(x2), n, float(c), sd, lo, h)


@kernel
def bridge_through_extremes(bars, b, i, key, n, start_ticks):
    """Replayed bars: a quote path from ``start_ticks`` (the decision's mid) to the close through the high and the low (all set).

    Point 0 is ``start_ticks``, the mid the decision saw (the previous bar's close as
    the market showed it), not the bar's open: the open is a trade print off that
    mid by the bid-ask bounce, and a path starting there would cross an order
    priced on the decision's quotes at its arrival. Points ``1..n`` lie in
    ``[low, high]``. A gap (``start_ticks`` outside ``[low, high]``: about one bar in
    five of the packaged Binance.US bars, by a median 0.7 bps) leaves only point 0
    outside; the path enters the bar's range within its first interval.

    Where the extremes sit: a path from the start to the close that visits both
    travels ``d1 = |high - start| + range + (close - low)`` if the high comes first,
    ``d2 = |start - low| + range + (high - close)`` if the low does. First-passage
    times add, so (distances in units of ``REPLAY_PASSAGE_PER_RANGE x range``) the
    high comes first with probability ``f_d1(1) / (f_d1(1) + f_d2(1))``, the first
    extreme sits where the passage to it and the rest of the journey (its distance
    counted at ``REPLAY_REST_PER_PASSAGE``) meet (:func:`_passage_point`), the second
    likewise after it; a gap's distance to the range counts like any other. An extreme at zero
    distance (the start is the first, the close the second) sits there. Between
    start, extremes and close, Brownian bridges of sd ``REPLAY_BRIDGE_SCALE x sigma``
    (``sigma``: the bar's Parkinson volatility), clamped into ``[low, high]``; between
    points :func:`price_at_ns` refines with sd ``REPLAY_FINE_SCALE x sigma``. The
    scales are calibrated on the packaged Binance.US bars (module docstring,
    Calibration) so that the variance of the price ``t`` into the bar against the
    start grows like ``sigma_bar^2 x t`` (``tests/orderbook/engine/test_path_fills.py``).
    """
    h, lo, c = bars.high_ticks[b, i], bars.low_ticks[b, i], bars.close_ticks[b, i]
    o = start_ticks
    sigma = REPLAY_SIGMA_PER_RANGE * float(h - lo)
    bars.path_ticks[b, i, 0] = o
    bars.path_ticks[b, i, n] = c
    bars.path_sigma_ticks[b, i] = REPLAY_FINE_SCALE * sigma
    if h == lo:
        for j in range(1, n):
            bars.path_ticks[b, i, j] = c
    else:
        _through_extremes(bars, b, i, key, n, o, h, lo, c, sigma)
    interval_extremes(bars, b, i, key, n, lo, h, min(lo, o), max(h, o))


@kernel
def price_at_ns(bars, b, i, n, t0, step_ns, t, key):
    """The path's price (ticks) at time ``t`` of the bar starting at ``t0``: a point, or refined between two.

    ``key`` is the lane's market ``rng.step_key`` of this step. Times before the bar
    read its point 0 (the open, or a replayed bar's start), after it its close.
    """
    if t <= t0:
        return bars.path_ticks[b, i, 0]
    if t - t0 >= step_ns:
        return bars.path_ticks[b, i, n]
    f = min(np.int64(float(t - t0) / step_ns * n * FINE_PER_POINT), n * FINE_PER_POINT - 1)
    j, r = f >> FINE_LEVELS, f & (FINE_PER_POINT - 1)
    if r == 0:
        return bars.path_ticks[b, i, j]
    var_point = interval_variance_ticks2(bars, b, i, n)
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
    if j == 0:  # a replayed bar's path may start outside its range (a gap): the first interval joins the two
        start = bars.path_ticks[b, i, 0]
        lo, hi = min(lo, start), max(hi, start)
    p = np.int64(np.round(min(max(x, float(lo)), float(hi))))
    return min(max(p, lo), hi)
