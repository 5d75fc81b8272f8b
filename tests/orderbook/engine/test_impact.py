"""Impact models against closed forms.

Almgren and Chriss (2000), "Optimal execution of portfolio transactions", J. Risk
3(2), section 2: trading ``n_k`` units in each of ``N`` intervals of length
``tau`` with permanent impact ``gamma`` per unit and temporary impact
``epsilon + eta n_k / tau`` per unit, under an arithmetic Brownian price, the
expected implementation shortfall of a buy is

    E[IS] = gamma/2 (X^2 - sum n_k^2) + epsilon X + eta/tau sum n_k^2,

which for the uniform (TWAP) schedule ``n_k = X / N`` is

    E[IS] = gamma X^2 / 2 (1 - 1/N) + epsilon X + eta X^2 / (N tau).

With a zero spread and a book deep enough that the walk never leaves the touch,
the simulator's only costs are those impacts, so the mean shortfall of TWAP
over many lanes must agree with the formula within Monte Carlo error.
"""

from __future__ import annotations

import numpy as np
import polars as pl

import orderbook as ob
from orderbook.engine.intents import empty_intents
from orderbook.spec import codes as c
from tests.orderbook.helpers import almgren_chriss_config

X_BTC, N_STEPS, TAU_S = 10.0, 10, 60.0
GAMMA, EPSILON, ETA, SIGMA = 0.5, 1.0, 300.0, 10.0


def ac_config(model: str = "linear", **impact) -> ob.ExchangeConfig:
    params = dict(gamma=GAMMA, epsilon=EPSILON, eta=ETA) if model == "linear" else impact
    return almgren_chriss_config(model, sigma=SIGMA, step_s=TAU_S, **params)


def twap_shortfall_usd(config: ob.ExchangeConfig, n_lanes: int = 1024, seed: int = 0) -> np.ndarray:
    ex = ob.Exchange(config, n_lanes=n_lanes)
    ex.reset(seed=seed)
    s0 = (ex.bars.bid_ticks[:, 0] + ex.bars.ask_ticks[:, 0]) / 2 * 0.01
    lots = int(X_BTC / N_STEPS / 0.0001)
    intents = empty_intents(n_lanes, config.max_new_orders)
    intents.instrument[:, 0], intents.side[:, 0], intents.kind[:, 0], intents.qty_lots[:, 0] = 0, c.BUY, c.MARKET, lots
    for _ in range(N_STEPS):
        ex.step(intents)
    fills = ex.history.events_frame().filter(pl.col("event") == "FILL")
    paid = fills.group_by("lane").agg((pl.col("fill_notional_atoms").sum() / 1e6).alias("paid"), pl.col("fill_lots").sum()).sort("lane")
    assert (paid["fill_lots"] == lots * N_STEPS).all()  # every child filled in its step
    return paid["paid"].to_numpy() - X_BTC * s0


def test_twap_shortfall_matches_almgren_chriss_linear_impact():
    expected = GAMMA * X_BTC**2 / 2 * (1 - 1 / N_STEPS) + EPSILON * X_BTC + ETA * X_BTC**2 / (N_STEPS * TAU_S)
    shortfall = twap_shortfall_usd(ac_config())
    se = shortfall.std(ddof=1) / np.sqrt(len(shortfall))
    assert abs(shortfall.mean() - expected) < 4 * se, (shortfall.mean(), expected, se)
    assert se < 0.2 * expected  # the comparison has power: the error bar is small next to the cost


def test_impact_past_the_default_band_is_never_clipped_and_matches_almgren_chriss_with_a_wide_band():
    """At 100 x eta a child's temporary impact (~170 bps) passes the default 50 bps band. With a wide band
    (5,000 bps) every child fills whole at its unclipped impact and the mean shortfall matches the closed
    form; with the default band the children fill in part (protection cancels the rest, never moves the
    price), so they can no longer come out cheap at the clipped price."""
    eta = 100 * ETA
    expected = GAMMA * X_BTC**2 / 2 * (1 - 1 / N_STEPS) + EPSILON * X_BTC + eta * X_BTC**2 / (N_STEPS * TAU_S)
    wide = almgren_chriss_config("linear", sigma=SIGMA, step_s=TAU_S, band_bps=5_000.0, gamma=GAMMA, epsilon=EPSILON, eta=eta)
    shortfall = twap_shortfall_usd(wide, n_lanes=512)
    se = shortfall.std(ddof=1) / np.sqrt(len(shortfall))
    assert abs(shortfall.mean() - expected) < 4 * se, (shortfall.mean(), expected, se)
    default = almgren_chriss_config("linear", sigma=SIGMA, step_s=TAU_S, gamma=GAMMA, epsilon=EPSILON, eta=eta)
    ex = ob.Exchange(default, n_lanes=64)
    ex.reset(seed=0)
    ex.step([ob.Order("alpha", "BTC/USD", "buy", str(X_BTC / N_STEPS), lane=b) for b in range(64)])
    ev = ex.history.events_frame()
    fills = ev.filter(pl.col("event") == "FILL")
    assert (fills["fill_price"] <= fills["price"] * (1 + 1e-12)).all()  # within the band, impact included
    assert (ex.orders.filled_lots[:, 0] < ex.orders.qty_lots[:, 0]).all() and (ex.orders.filled_lots[:, 0] > 0).all()
    ends = ev.filter(pl.col("event") == "TIF_CANCEL")
    assert ends.height == 64 and (ends["reason"] == "PRICE_PROTECTION").all() and (ends["step"] == 1).all()


def test_without_impact_twap_costs_nothing_on_average():
    shortfall = twap_shortfall_usd(ac_config(model="none"))
    se = shortfall.std(ddof=1) / np.sqrt(len(shortfall))
    assert abs(shortfall.mean()) < 4 * se


def test_square_root_impact_grows_with_the_square_root_of_size():
    """Temporary shift = coef x price x sqrt(q / V): 4x the child size costs 2x per unit."""
    def cost_per_btc(btc: float) -> float:
        cfg = ac_config(model="sqrt", sqrt_coef=0.01)
        cfg = ob.ExchangeConfig(**{**cfg.__dict__, "market": ob.SyntheticMarket(process="abm", abm_sigma_per_step=0.0, volume_mean={"BTC": 100.0}, zero_volume_prob=0.0, range_scale=0.0, depeg={})})
        ex = ob.Exchange(cfg)
        ex.reset(seed=0)
        s0 = ex.bars.ask_ticks[0, 0] * 0.01
        ex.step([ob.Order("alpha", "BTC/USD", "buy", str(btc))])
        fill = ex.history.events_frame().filter(pl.col("event") == "FILL")
        return float(fill["fill_notional_atoms"].sum() / 1e6 / btc - s0)

    small, large = cost_per_btc(0.25), cost_per_btc(1.0)
    assert small > 0
    assert abs(large / small - 2.0) < 0.02
