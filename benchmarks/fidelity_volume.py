"""Fidelity fact of volume: busy hours stay busy (fact 9), the correlation of log volume between two bars of one hour.

A row of ``benchmarks/fidelity.py``'s table per lag (see its docstring for the table's
columns and the markets); public APIs only, through :mod:`benchmarks.fidelity_setup`.

One estimator on both sides (:func:`window_autocorrelation`): windows of
``WINDOW_BARS`` one-minute bars (an episode of the simulator, an hour of the data), the
log volumes of the traded bars, every pair of bars ``lag`` apart inside one window,
their Pearson correlation over all windows' pairs (around the pooled means: the part of
the correlation a window's own level makes is kept). Its standard error is clustered by
window (lanes are independent) or, on the data, by day (neighbouring hours of one day
correlate: 0.41 at lag 60).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import polars as pl

from benchmarks.fidelity_setup import TOL, Market, Row, ci, row, start
from orderbook.market.bars import load_bars
from orderbook.presets import binance_us_sources

LAGS = (1, 10, 30)  # bars apart
WINDOW_BARS = 60  # an hour of one-minute bars: an episode of the simulator, a window of the data
DAY_BARS = 1440  # the data's clusters for the standard error


def window_autocorrelation(log_volume: np.ndarray, valid: np.ndarray, lag: int, cluster: np.ndarray | None = None) -> tuple[float, float, int]:
    """The correlation of ``(x[w, t], x[w, t + lag])`` over every window ``w`` and ``t`` where both bars are valid.

    ``log_volume`` and ``valid`` are ``(W, T)``: per window and bar, the log volume and
    whether it counts (a traded bar; the log of a zero volume is not a number). The
    pairs of all windows are pooled and correlated around their pooled means (Pearson),
    so a level shared by the bars of a window shows as correlation; a pair never spans
    two windows. The standard error is the delta method's (the influence of each pair,
    ``u v - r (u^2 + v^2) / 2`` on the standardised pair) summed per cluster, clusters
    independent: ``cluster`` labels each window (default: a cluster per window).
    Returns (correlation, standard error, number of pairs); nan when fewer than 2
    pairs (or 2 clusters, for the error) or a side does not vary.
    """
    x = np.asarray(log_volume, dtype=np.float64)
    ok = np.asarray(valid, dtype=bool)
    if x.ndim != 2 or x.shape != ok.shape:
        raise ValueError(f"log_volume and valid must have one shape (W, T), got {x.shape} and {ok.shape}")
    if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or not 1 <= lag < x.shape[1]:
        raise ValueError(f"lag must be an int in [1, {x.shape[1] - 1}] for windows of {x.shape[1]} bars, got {lag!r}")
    labels = np.arange(x.shape[0]) if cluster is None else np.asarray(cluster)
    if labels.shape != (x.shape[0],):
        raise ValueError(f"cluster must label each of the {x.shape[0]} windows, got shape {labels.shape}")
    pair = ok[:, :-lag] & ok[:, lag:]
    a, b = x[:, :-lag][pair], x[:, lag:][pair]
    n = a.size
    if n < 2 or a.std() == 0 or b.std() == 0:
        return float("nan"), float("nan"), n
    u, v = (a - a.mean()) / a.std(), (b - b.mean()) / b.std()
    r = float(np.mean(u * v))
    influence = u * v - r * (u * u + v * v) / 2
    _, pair_cluster = np.unique(np.broadcast_to(labels[:, None], pair.shape)[pair], return_inverse=True)
    per_cluster = np.bincount(pair_cluster, weights=influence)
    c = per_cluster.size
    se = math.sqrt(c / (c - 1) * float(np.sum(per_cluster**2))) / n if c >= 2 else float("nan")
    return r, se, n


@functools.cache
def binance_us_hours() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The packaged Binance.US BTC/USD bars as hours: ``(log volume, traded, day of each hour)``, whole hours only."""
    bars = load_bars(binance_us_sources())
    s = bars.column("binance_us", "BTC/USD")
    n = bars.volume.shape[0] // WINDOW_BARS * WINDOW_BARS
    volume = bars.volume[:n, s].reshape(-1, WINDOW_BARS)
    traded = (volume > 0) & bars.present[:n, s].reshape(-1, WINDOW_BARS)
    day = np.arange(volume.shape[0]) * WINDOW_BARS // DAY_BARS
    return np.log(np.where(traded, volume, 1.0)), traded, day


def simulated_hours(m: Market, n_lanes: int, seed: int, **market) -> tuple[np.ndarray, np.ndarray]:
    """``(log volume, traded)`` of ``n_lanes`` episodes of ``WINDOW_BARS`` bars on ``m`` (no orders; ``market`` overrides the spec)."""
    cfg = m.config(**market)
    ex = start(cfg, n_lanes, seed)
    for _ in range(WINDOW_BARS):
        ex.step()
    mk = ex.history.market_frame().filter((pl.col("instrument") == m.instrument(cfg)) & (pl.col("step") >= 1)).sort("lane", "step")
    volume = mk["volume_lots"].to_numpy().reshape(n_lanes, WINDOW_BARS)
    return np.log(np.maximum(volume, 1)), volume > 0


def volume_clustering(m: Market, n_lanes: int, seed: int, lags: tuple[int, ...] = LAGS, **market) -> list[Row]:
    """Fact 9. Log-volume autocorrelation within an hour at ``lags``: the simulator's episodes vs the Binance.US hours.

    Real one-minute volume is persistent (busy hours stay busy): on the data the
    correlation is 0.65 at lag 1 and decays slowly (0.52 at 10, 0.47 at 30). The
    synthetic market gives ``level^2 / (level^2 + sigma^2)`` at every lag (its
    episode's volume level, :class:`~orderbook.SyntheticMarket`); 0 without a level.
    Holds when the simulator's 95% interval meets the data's value ± 30% (the
    issues' tolerance): wide enough for a level flat in the lag calibrated to the
    data's plateau (0.5: -23% at lag 1, +7% at lag 30), far too narrow for no level.
    """
    sim_x, sim_ok = simulated_hours(m, n_lanes, seed, **market)
    data_x, data_ok, day = binance_us_hours()
    spec = m.config(**market).market
    level, sigma = spec.volume_level_sigma, spec.volume_sigma
    model = level**2 / (level**2 + sigma**2) if level + sigma > 0 else float("nan")
    rows = []
    for k in lags:
        r, se, n = window_autocorrelation(sim_x, sim_ok, k)
        d, d_se, d_n = window_autocorrelation(data_x, data_ok, k, cluster=day)
        lo, hi = (1 - TOL) * d, (1 + TOL) * d
        rows.append(row("9 volume clustering: log-volume autocorr. in an hour", m.name,
                        f"lag {k} bars, {n_lanes} episodes of {WINDOW_BARS} bars, {n} pairs; level sd {level:g}, bar sd {sigma:g}: model {model:.3f}",
                        ci(r, se, 3), f"{d:.3f} ± {1.96 * d_se:.3f} (Binance.US, {data_x.shape[0]} hours, {d_n} pairs, by day)",
                        "± 30% of the data's", bool(r + 1.96 * se >= lo and r - 1.96 * se <= hi)))
    return rows
