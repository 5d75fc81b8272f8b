"""What a true market gives: the targets of ``benchmarks/fidelity.py``, as pure functions.

Each function computes a stylised fact's target from data (bars) or from a closed
form, never from the simulator, so the targets can be checked by hand on tiny
inputs (``tests/orderbook/test_fidelity_targets.py``) and stay the same when the
fill path changes. Also the small statistics the table reports (a mean or share
with its standard error, the standard error of a standard deviation).
"""

from __future__ import annotations

import math

import numpy as np


def latency_slippage_sd_bps(sd0_bps: float, sigma_bar_bps: float, latency_s: float, bar_s: float = 60.0) -> float:
    """Slippage sd against the decision mid of a market order arriving ``latency_s`` late.

    A true market moves while the order travels: over ``L`` seconds a price with
    return sd ``sigma_bar`` per bar of ``bar_s`` seconds moves by a variance
    ``sigma_bar^2 x L / bar_s`` (a diffusion's variance grows linearly in time), and
    that move is independent of the costs at zero latency (spread, book walk:
    variance ``sd0^2``), so the variances add.
    """
    if latency_s < 0 or bar_s <= 0:
        raise ValueError(f"latency_s must be >= 0 and bar_s > 0, got {latency_s}, {bar_s}")
    return math.sqrt(sd0_bps**2 + sigma_bar_bps**2 * latency_s / bar_s)


def log_return_sd_bps(close: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Sd (bps) of the one-bar log returns of a close series, over consecutive valid bars only.

    ``close`` is ``(T,)`` or ``(T, S)``; ``valid`` (same shape, default all True)
    marks real bars: a return counts only when both its bars are valid, so a
    carried-forward close (a missing bar) never adds a false zero return.
    """
    close = np.asarray(close, dtype=np.float64)
    valid = np.ones(close.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    r = np.diff(np.log(close), axis=0)
    ok = valid[1:] & valid[:-1]
    if ok.sum() < 2:
        raise ValueError(f"log_return_sd_bps needs at least 2 returns between valid bars, got {int(ok.sum())}")
    return float(np.std(r[ok], ddof=1) * 1e4)


def synthetic_sigma_bar_bps(vol_per_step: float, jump_prob: float, jump_sigma: float) -> float:
    """One-bar return sd (bps) of the synthetic GBM with jumps, from its spec.

    Diffusion variance ``vol^2`` plus compound jumps ``jump_prob x jump_sigma^2``
    per step (the basis between quotes is left out: it is stationary, not a walk).
    """
    return math.sqrt(vol_per_step**2 + jump_prob * jump_sigma**2) * 1e4


def cross_frequency(price: np.ndarray, low: np.ndarray, horizon: int, strict: bool) -> tuple[float, int]:
    """Share of decision bars whose buy price ``price[t]`` is traded through (``strict``) or touched within ``horizon`` bars.

    ``price`` and ``low`` are ``(N, T)``: per series (a lane's window) and bar, the
    buy limit's price at decision bar ``t`` and the bar's low (``inf`` for a bar
    that traded nothing: it crosses no price). For each ``t`` with
    ``t + horizon < T`` the next bars ``t+1 .. t+horizon`` cross when their lowest
    low is below the price (``strict``: a trade through, the level cleared) or at
    most the price (a touch). A resting buy limit in a true market can fill only
    when one of them happens, and fills for sure (whatever its queue) on a trade
    through, so these two frequencies bound its fill probability. Only the bars
    themselves are read. Returns (share, number of decision bars).
    """
    price, low = np.atleast_2d(np.asarray(price, dtype=np.float64)), np.atleast_2d(np.asarray(low, dtype=np.float64))
    if price.shape != low.shape:
        raise ValueError(f"price and low must have one shape (N, T), got {price.shape} and {low.shape}")
    t_count = price.shape[1]
    if horizon < 1 or horizon >= t_count:
        raise ValueError(f"horizon must be in [1, {t_count - 1}] for {t_count} bars, got {horizon}")
    hits = 0
    for t in range(t_count - horizon):
        lowest = low[:, t + 1 : t + 1 + horizon].min(axis=1)
        hits += int((lowest < price[:, t]).sum() if strict else (lowest <= price[:, t]).sum())
    count = price.shape[0] * (t_count - horizon)
    return hits / count, count


def ac_twap_shortfall(x: float, n_steps: int, tau_s: float, gamma: float, eta: float, epsilon: float) -> float:
    """Almgren and Chriss (2000) expected implementation shortfall of a TWAP buy of ``x`` units.

    ``N`` equal children of ``x/N`` in intervals of ``tau`` seconds, permanent impact
    ``gamma`` per unit, temporary ``epsilon + eta x rate``:
    ``E[IS] = gamma x^2 / 2 (1 - 1/N) + epsilon x + eta x^2 / (N tau)`` (quote units).
    """
    if n_steps < 1 or tau_s <= 0:
        raise ValueError(f"n_steps must be >= 1 and tau_s > 0, got {n_steps}, {tau_s}")
    return gamma * x**2 / 2 * (1 - 1 / n_steps) + epsilon * x + eta * x**2 / (n_steps * tau_s)


def mean_se(x: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error (nan for fewer than 2 values)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        return (float(x.mean()) if x.size else float("nan")), float("nan")
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def share_se(hits: int, n: int) -> tuple[float, float]:
    """A share and its binomial standard error."""
    if n <= 0:
        return float("nan"), float("nan")
    p = hits / n
    return p, math.sqrt(max(p * (1 - p), 0.0) / n)


def sd_se(x: np.ndarray) -> tuple[float, float]:
    """Sample sd and its standard error ``sd / sqrt(2 (n - 1))`` (normal approximation)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 3:
        return float("nan"), float("nan")
    sd = float(x.std(ddof=1))
    return sd, sd / math.sqrt(2 * (x.size - 1))


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a share (95% by default): honest at shares of 0 or 1, where ``p ± 1.96 se`` collapses to a point."""
    if n <= 0:
        return float("nan"), float("nan")
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)
