"""Configuration is validated at construction with messages that say what was expected and found."""

from __future__ import annotations

import dataclasses

import pytest

import orderbook as ob
from tests.orderbook.helpers import small_config


def cfg_with(**kw):
    return small_config(**kw).compile()


BAD_SPECS = [
    (lambda: ob.Asset("BTC", 20), r"decimals must be an int in \[0, 12\], got 20"),
    (lambda: ob.Instrument("a", "BTC", "BTC"), r"base and quote must differ"),
    (lambda: ob.Instrument("a", "BTC", "USD", tick_size="0"), r"tick_size must be > 0, got 0"),
    (lambda: ob.Instrument("a", "BTC", "USD", lot_size="abc"), r"lot_size must be a decimal number, got 'abc'"),
    (lambda: ob.Instrument("a", "BTC", "USD", taker_fee_bps=float("nan")), r"taker_fee_bps must be in \[0, 10000\), got nan"),
    (lambda: ob.LatencySpec(kind="gamma"), r"kind must be one of \('constant', 'uniform', 'lognormal'\), got 'gamma'"),
    (lambda: ob.LatencySpec(low_ms=5, high_ms=1), r"low_ms must be <= high_ms, got 5 > 1"),
    (lambda: ob.FaultSpec(broker_error_prob=1.5), r"broker_error_prob must be a probability in \[0, 1\], got 1.5"),
    (lambda: ob.FaultSpec(rate_limit_per_step=-1), r"rate_limit_per_step must be an int >= 0"),
    (lambda: ob.FillSpec(participation=-0.1), r"participation must be a probability"),
    (lambda: ob.ImpactSpec(model="cubic"), r"model must be one of \('none', 'linear', 'sqrt'\), got 'cubic'"),
    (lambda: ob.BookSpec(depth_fractions=()), r"depth_fractions must be a non-empty tuple"),
    (lambda: ob.SyntheticMarket(process="ou"), r"process must be one of \('gbm', 'abm'\), got 'ou'"),
    (lambda: small_config(slots=0), r"slots must be an int in \[1, 4096\], got 0"),
    (lambda: small_config(step_ms=-1), r"step_ms must be an int in \[1, 1152921504606\] \(2\*\*60 ns\), got -1"),
    # cross-spec checks at compile
    (lambda: cfg_with(instruments=(ob.Instrument("alpha", "BTC", "USD", tick_size="0.0000001"),)), r"tick_size x lot_size must be a whole number of USD atoms \(1e-6\), got 0.00001"),
    (lambda: cfg_with(instruments=(ob.Instrument("alpha", "BTC", "USD", lot_size="0.000000001"),)), r"lot_size must be a whole number of BTC atoms \(1e-8\), got 0.1"),
    (lambda: cfg_with(instruments=(ob.Instrument("gamma", "BTC", "USD"),)), r"unknown venue 'gamma'; known venues: \['alpha', 'beta'\]"),
    (lambda: cfg_with(instruments=(ob.Instrument("alpha", "ETH", "USD"),)), r"unknown base asset 'ETH'"),
    (lambda: cfg_with(instruments=(ob.Instrument("alpha", "BTC", "USD"),) * 2), r"instrument alpha:BTC/USD is listed twice"),
    (lambda: cfg_with(numeraire="EUR"), r"numeraire 'EUR' is not an asset"),
    (lambda: cfg_with(initial_balances={("alpha", "BTC"): "0.000000001"}), r"initial balance alpha:BTC must be a whole number of atoms \(1e-8\)"),
    (lambda: cfg_with(initial_balances={("alpha", "BTC"): "-1"}), r"initial balance alpha:BTC must be >= 0"),
    (lambda: cfg_with(initial_balances={("delta", "BTC"): "1"}), r"unknown venue 'delta'"),
    (lambda: cfg_with(instruments=(ob.Instrument("alpha", "BTC", "USDT"),), initial_balances={("alpha", "USDT"): "1"}), r"cannot value BTC on alpha in numeraire USD"),
    (lambda: ob.Exchange(small_config(market=ob.SyntheticMarket(initial_prices={"ETH": 1.0}))), r"initial_prices names asset 'ETH'"),
    (lambda: ob.Exchange(small_config(market="binance")), r"market must be a SyntheticMarket or a ReplayMarket, got str"),
    (lambda: ob.Exchange(small_config(), n_lanes=0), r"n_lanes must be an int >= 1, got 0"),
]


@pytest.mark.parametrize("make,message", BAD_SPECS, ids=[m[:40] for _, m in BAD_SPECS])
def test_bad_specs_are_refused_with_a_clear_message(make, message):
    with pytest.raises((ValueError, KeyError), match=message):
        make()


def test_default_config_compiles_with_exact_units():
    cc = ob.default_config().compile()
    # 0.01 USD x 0.0001 BTC = 1e-6 USD = 1 atom of a 6-decimal quote
    assert cc.quote_atoms_per_tick_lot.tolist() == [1] * 6
    assert cc.base_atoms_per_lot.tolist() == [10_000] * 6
    assert cc.taker_fee_e8.tolist() == [50_000] * 6  # 5 bps = 5e-4 = 50,000 / 1e8


def test_quote_assets_are_valued_through_a_shared_base():
    cfg = ob.default_config()
    cc = cfg.compile()
    v, usdc = cfg.venue_index("alpha"), cfg.asset_index("USDC")
    factors = {(int(i), int(p)) for i, p in zip(cc.valuation_inst[v, usdc], cc.valuation_power[v, usdc])}
    assert factors == {(cfg.instrument_index("alpha", "BTC/USD"), 1), (cfg.instrument_index("alpha", "BTC/USDC"), -1)}


def test_venue_replace_keeps_validation():
    v = ob.Venue("alpha")
    with pytest.raises(ValueError, match="default_ttl_ms must be a finite duration > 0"):
        v.replace(default_ttl_ms=0)
    assert dataclasses.replace(v, name="beta").name == "beta"
