"""Exact money that provably fits int64: configurations that could overflow are refused,
prices stay inside each instrument's range, and no order creates money (issue 11, item 1)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import orderbook as ob
from orderbook.analytics.audit import audit
from orderbook.engine.intents import empty_intents
from orderbook.spec import bounds
from orderbook.spec import codes as c

QUIET = ob.Venue("alpha", latency=ob.LatencySpec.zero(), faults=ob.FaultSpec.none())


def twelve_decimal_config(max_qty_lots: int = 1_000_000, max_price: str | None = None, quote: str = "1000000", slots: int = 8, **market) -> ob.ExchangeConfig:
    """The issue's account: a 12-decimal quote, BTC near 200,000, tick 0.01, lot 0.0001 (defaults as on main)."""
    rules = {} if max_price is None else {"max_price": max_price}
    return ob.ExchangeConfig(
        assets=(ob.Asset("BTC", 8), ob.Asset("USDX", 12)),
        venues=(QUIET,),
        instruments=(ob.Instrument("alpha", "BTC", "USDX", max_qty_lots=max_qty_lots, **rules),),
        numeraire="USDX",
        initial_balances={("alpha", "USDX"): quote, ("alpha", "BTC"): "1"},
        slots=slots,
        market=ob.SyntheticMarket(initial_prices={"BTC": 200_000.0}, **market),
    )


def test_the_issue_configuration_is_refused_naming_the_instrument_and_the_bound():
    # On main this config (built with main's arguments only) was accepted and a 95 BTC
    # market buy with 1M of funds wrapped the notional: the portfolio went from 1.0M to
    # 19.6M and the audit was clean. Now the default range (max_price 1,000,000) is refused.
    with pytest.raises(ValueError, match=r"instrument alpha:BTC/USDX: max_price \(100000000 ticks\) x max_qty_lots \(1000000\) x 1000000 quote atoms per tick x lot = 100000000000000000000 atoms exceeds the notional bound 2\*\*61 .*expected max_qty_lots <= 23058"):
        ob.Exchange(twelve_decimal_config())


def test_slots_times_the_largest_credit_is_bounded():
    # one order fits (N <= 2**61), but 4096 live ones could credit more than 2**62 to one balance
    with pytest.raises(ValueError, match=r"instrument alpha:BTC/USDX: slots \(4096\) x the most one order can credit \(\d+ atoms\) = \d+ exceeds 2\*\*63 - 1 - 2\*\*62"):
        ob.Exchange(twelve_decimal_config(max_qty_lots=20_000, slots=4096))


def test_a_bounded_twelve_decimal_account_refuses_the_95_btc_buy_and_creates_no_money():
    cfg = twelve_decimal_config(max_qty_lots=2_000, max_price="300000")
    ex = ob.Exchange(cfg)
    ex.reset(seed=0)
    value0 = ex.portfolio_value()[0]
    ex.step([ob.Order("alpha", "BTC/USDX", "buy", "95")])
    ev = ex.history.events_frame()
    assert ev["event"].to_list() == ["REJECT"] and ev["reason"].to_list() == ["BAD_LOT"]
    assert ex.balances()[("alpha", "USDX")] == (10**18, 0)  # 1,000,000 USDX, nothing locked
    for _ in range(3):
        ex.step()
    assert audit(ex) == []
    assert abs(ex.portfolio_value()[0] - value0) < 0.05 * value0  # only the BTC price moved


def test_a_limit_outside_the_price_range_is_refused_with_its_own_reason():
    ex = ob.Exchange(twelve_decimal_config(max_qty_lots=2_000, max_price="300000"))
    ex.reset(seed=0)
    before = ex.balances()
    ex.step([ob.Order("alpha", "BTC/USDX", "buy", "0.01", price="300000.01"), ob.Order("alpha", "BTC/USDX", "sell", "0.01", price="0.01")])
    ev = ex.history.events_frame()
    assert ev["reason"].to_list() == ["PRICE_OUT_OF_RANGE", "BAD_TICK"]  # 0.01 is in the range but outside the band
    assert ex.balances() == before
    assert ex.stats.rejects_by_reason[0, c.R_PRICE_OUT_OF_RANGE] == 1


def test_initial_balances_above_the_cap_are_refused():
    with pytest.raises(ValueError, match=r"initial balance alpha:USDX must be at most 2\*\*62 atoms .*got 4611687 = 4611687000000000000 atoms"):
        twelve_decimal_config(max_qty_lots=2_000, max_price="300000", quote="4611687").compile()


def test_a_balance_above_the_cap_takes_no_order_that_would_credit_it():
    cap_units = Decimal(bounds.BALANCE_CAP_ATOMS) / 10**12
    cfg = twelve_decimal_config(max_qty_lots=2_000, max_price="300000", quote=str(cap_units), volume_mean={"BTC": 50.0}, zero_volume_prob=0.0)
    ex = ob.Exchange(cfg)
    ex.reset(seed=1)
    ex.step([ob.Order("alpha", "BTC/USDX", "sell", "0.01")])  # credits USDX: allowed at the cap, pushes it above
    for _ in range(5):
        ex.step()
    usdx = sum(ex.balances()[("alpha", "USDX")])
    assert usdx > bounds.BALANCE_CAP_ATOMS
    ex.step([ob.Order("alpha", "BTC/USDX", "sell", "0.01"), ob.Order("alpha", "BTC/USDX", "buy", "0.01")])
    last = ex.history.events_frame().filter(pl.col("step") == int(ex.lanes.step[0]))
    assert last.filter(last["event"] == "REJECT")["reason"].to_list() == ["BALANCE_LIMIT"]
    assert last.filter((last["event"] == "SUBMIT") & (last["side"] == "BUY")).height == 1  # a buy credits BTC: fine
    assert audit(ex) == []


def test_synthetic_prices_stay_in_a_narrow_range_and_permanent_impact_is_clamped():
    # a huge permanent impact; the temporary one is small, since price protection lets no lot fill whose
    # impacted price passes the band (an eta of 1e9 would now fill nothing: it used to fill clipped at the collar)
    venue = ob.Venue("alpha", latency=ob.LatencySpec.zero(), faults=ob.FaultSpec.none(), fills=ob.FillSpec(impact=ob.ImpactSpec(model="linear", gamma=1e9, eta=1.0)))
    cfg = ob.ExchangeConfig(
        assets=(ob.Asset("BTC", 8), ob.Asset("USD", 6)),
        venues=(venue,),
        instruments=(ob.Instrument("alpha", "BTC", "USD", min_price="29000", max_price="31000"),),
        initial_balances={("alpha", "USD"): "1000000", ("alpha", "BTC"): "10"},
        market=ob.SyntheticMarket(vol_per_step=0.05, jump_prob=0.2, jump_sigma=0.5, volume_mean={"BTC": 50.0}, zero_volume_prob=0.0),
    )
    ex = ob.Exchange(cfg)
    ex.reset(seed=3)
    lo, hi = 2_900_000, 3_100_000
    for k in range(30):
        side = "buy" if k % 2 else "sell"
        ex.step([ob.Order("alpha", "BTC/USD", side, "0.5")])
        for name in ("open_ticks", "high_ticks", "low_ticks", "close_ticks"):
            x = getattr(ex.bars, name)
            assert ((lo <= x) & (x <= hi)).all(), (name, x)
        assert abs(ex.bars.impact_ticks[0, 0]) <= hi
    assert audit(ex) == []
    fills = ex.history.events_frame().filter(ex.history.events_frame()["fill_lots"] > 0)
    assert fills.height > 0
    assert ((fills["fill_notional_atoms"] >= fills["fill_lots"] * lo) & (fills["fill_notional_atoms"] <= fills["fill_lots"] * hi)).all()


def test_an_initial_price_outside_the_range_is_refused():
    with pytest.raises(ValueError, match=r"initial_prices\['BTC'\] = 200000.0 is outside the price range \[0.01, 150000\] of instrument alpha:BTC/USDX"):
        ob.Exchange(twelve_decimal_config(max_qty_lots=2_000, max_price="150000"))


# ---------------------------------------------------------------- property: near the bounds


@st.composite
def near_bound_configs(draw):
    """One BTC/Q instrument whose max_price x max_qty_lots x atoms sits just under a bound."""
    qd = draw(st.integers(0, 12))
    bd = draw(st.integers(0, 12))
    t = draw(st.integers(0, qd))  # tick = k x 10**-t
    lot_exp = draw(st.integers(max(0, t - qd), min(bd, qd - t)))  # lot = 10**-lot_exp, tick x lot a whole number of atoms
    k = draw(st.sampled_from([1, 5, 25]))
    tick = Decimal(k) / 10**t
    lot = Decimal(1) / 10**lot_exp
    atoms = int(tick * lot * 10**qd)
    unit = int(lot * 10**bd)
    init_ticks = draw(st.integers(2, 10**9))
    max_ticks = init_ticks * draw(st.integers(1, 8))  # 1: the market starts at the top of the range
    min_ticks = draw(st.one_of(st.just(1), st.just(init_ticks), st.integers(1, init_ticks)))  # init_ticks: at the bottom
    slots = draw(st.sampled_from([1, 4, 8]))
    room = min(bounds.NOTIONAL_MAX_ATOMS // (max_ticks * atoms), bounds.CREDIT_MAX_ATOMS // (slots * max_ticks * atoms), bounds.CREDIT_MAX_ATOMS // (slots * unit))
    assume(room >= 1)
    qty = max(1, room - draw(st.integers(0, 3)) if draw(st.booleans()) else draw(st.integers(1, room)))
    maker, taker = (draw(st.integers(0, 10_000)) / 100 for _ in range(2))  # bps, whole 1e-2
    balances = st.one_of(st.just(bounds.BALANCE_CAP_ATOMS), st.integers(bounds.BALANCE_CAP_ATOMS // 4, bounds.BALANCE_CAP_ATOMS), st.integers(0, bounds.BALANCE_CAP_ATOMS))
    quote_atoms, base_atoms = draw(balances), draw(balances)
    venue = ob.Venue("alpha", latency=ob.LatencySpec(median_ms=5_000.0), faults=draw(st.sampled_from([ob.FaultSpec.none(), ob.FaultSpec()])),
                     fills=ob.FillSpec(impact=draw(st.sampled_from([ob.ImpactSpec(), ob.ImpactSpec("linear", gamma=1e6, eta=1e6, epsilon=1.0), ob.ImpactSpec("sqrt", sqrt_coef=10.0)]))))
    cfg = ob.ExchangeConfig(
        assets=(ob.Asset("BTC", bd), ob.Asset("Q", qd)),
        venues=(venue,),
        instruments=(ob.Instrument("alpha", "BTC", "Q", tick_size=tick, lot_size=lot, min_notional="0", maker_fee_bps=maker, taker_fee_bps=taker, max_qty_lots=qty, min_price=tick * min_ticks, max_price=tick * max_ticks),),
        numeraire="Q",
        initial_balances={("alpha", "Q"): Decimal(quote_atoms) / 10**qd, ("alpha", "BTC"): Decimal(base_atoms) / 10**bd},
        slots=slots,
        max_new_orders=3,
        market=ob.SyntheticMarket(initial_prices={"BTC": float(tick * init_ticks)}, vol_per_step=0.2, jump_prob=0.1, jump_sigma=1.0,
                                  volume_mean={"BTC": float(lot) * qty * 3}, zero_volume_prob=0.0),
    )
    return cfg, init_ticks, max_ticks, qty


def exact_totals(ex) -> dict[int, int]:
    return {a: int(ex.accounts.free_atoms[0, 0, a]) + int(ex.accounts.locked_atoms[0, 0, a]) for a in range(2)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(spec=near_bound_configs(), seed=st.integers(0, 2**20), orders=st.lists(
    st.tuples(st.sampled_from([1, -1]), st.sampled_from([0, 1]), st.one_of(st.floats(0.9, 1.1), st.floats(0.0, 2.5).map(lambda x: -x)), st.floats(0.0, 1.2)),
    min_size=1, max_size=18))
def test_near_the_bounds_no_order_creates_money_or_raises_overflow(spec, seed, orders):
    cfg, init_ticks, max_ticks, qty = spec
    ex = ob.Exchange(cfg)
    ex.reset(seed=seed)
    start = exact_totals(ex)
    cc = ex.compiled
    for n in range(0, len(orders), 3):
        intents = empty_intents(1, 3)
        for m, (side, kind, px, size) in enumerate(orders[n : n + 3]):
            intents.instrument[0, m] = 0
            intents.side[0, m], intents.kind[0, m] = side, kind
            ticks = px * init_ticks if px > 0 else -px * max_ticks  # near the start price, or anywhere in and out of the range
            intents.price_ticks[0, m] = max(1, min(int(ticks), 2**40))
            intents.qty_lots[0, m] = max(1, min(int(size * qty), 2**40))  # up to 1.2 x max_qty_lots
        ex.step(intents)
        ex.step()
    assert audit(ex) == []
    ev = ex.history.events_frame()
    fills = ev.filter(ev["fill_lots"] > 0)
    # money: every atom of each asset is the deposit plus what the fills moved, in Python ints
    expect = dict(start)
    for side, lots, notional, fee in fills.select("side", "fill_lots", "fill_notional_atoms", "fee_atoms").iter_rows():
        sign = 1 if side == "BUY" else -1
        expect[0] += sign * lots * int(cc.base_atoms_per_lot[0])
        expect[1] += -sign * notional - fee
    assert exact_totals(ex) == expect
    # value: each fill paid between the range's ends per lot, so only price moves and fees change the value
    for lots, notional in fills.select("fill_lots", "fill_notional_atoms").iter_rows():
        atoms = int(cc.quote_atoms_per_tick_lot[0])
        assert lots * int(cc.min_price_ticks[0]) * atoms <= notional <= lots * int(cc.max_price_ticks[0]) * atoms
    refused = set(ev.filter(ev["event"] == "REJECT")["reason"].to_list())
    assert refused <= {"BAD_LOT", "PRICE_OUT_OF_RANGE", "BAD_TICK", "INSUFFICIENT_FUNDS", "BALANCE_LIMIT", "BROKER_ERROR", "VENUE_DOWN", "RATE_LIMITED", "NO_FREE_SLOT"}


def small_replay(prices: list[float], start_ns: int = 1_700_000_000 * 10**9, max_price: str = "1000000") -> ob.ExchangeConfig:
    from orderbook.market.bars import AlignedBars
    from orderbook.presets import replay_config

    n = len(prices)
    col = np.asarray(prices, dtype=np.float64)[:, None]
    data = AlignedBars(keys=(("x", "BTC/USD"),), time_ns=start_ns + 60 * 10**9 * np.arange(n), step_ns=60 * 10**9,
                       open=col, high=col, low=col, close=col, volume=np.ones((n, 1)), present=np.ones((n, 1), dtype=bool))
    cfg = replay_config(data, episode_steps=n - 1, start=0)
    inst = cfg.instruments[0]
    return ob.ExchangeConfig(**{**cfg.__dict__, "instruments": (ob.Instrument(inst.venue, inst.base, inst.quote, max_price=max_price),)})


def test_replayed_prices_outside_the_range_are_refused_at_load():
    ob.Exchange(small_replay([100.0, 200.0, 300.0], max_price="300"))  # the edge is in the range
    with pytest.raises(ValueError, match=r"bar 2 .*open 300.01 is not representable: expected a finite price in the instrument's range \[0.01, 300\]"):
        ob.Exchange(small_replay([100.0, 200.0, 300.01], max_price="300"))


def test_replayed_bar_times_that_could_wrap_are_refused():
    with pytest.raises(ValueError, match=r"bar times must lie in \[0, MAX_TIME_NS - step\]"):
        ob.Exchange(small_replay([100.0, 200.0], start_ns=bounds.MAX_TIME_NS))


def test_a_config_that_fits_exactly_at_the_bound_is_accepted():
    # max_price 300,000 = 3e7 ticks, 1e6 atoms per tick x lot: the largest max_qty_lots under 2**61
    fit = bounds.NOTIONAL_MAX_ATOMS // (30_000_000 * 10**6)
    cfg = twelve_decimal_config(max_qty_lots=fit, max_price="300000", slots=1)
    cc = cfg.compile()
    assert int(cc.max_price_ticks[0]) * int(cc.max_qty_lots[0]) * int(cc.quote_atoms_per_tick_lot[0]) <= 2**61
    with pytest.raises(ValueError, match=r"notional bound 2\*\*61"):
        twelve_decimal_config(max_qty_lots=fit + 1, max_price="300000", slots=1).compile()


def test_bad_price_ranges_are_refused():
    with pytest.raises(ValueError, match=r"max_price must be >= min_price \(100\) and >= tick_size \(0.01\), got 50"):
        ob.Instrument("alpha", "BTC", "USD", min_price="100", max_price="50")
    with pytest.raises(ValueError, match=r"min_price must be > 0, got 0"):
        ob.Instrument("alpha", "BTC", "USD", min_price="0")
