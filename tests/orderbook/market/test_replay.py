"""Tests of orderbook.market.replay: real bars from several venues and pairs drive the core.

The Binance.US files are read here a second time, independently of the loader
(``csv`` and ``Decimal``), so the market log is compared with the data itself.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import orderbook as ob
from orderbook.analytics.audit import audit
from orderbook.engine import state as ob_state
from orderbook.market.bars import AlignedBars, BarSource, ColumnMap, load_bars
from orderbook.market.replay import ReplayMarket
from orderbook.presets import binance_us_sources
from tests.orderbook.helpers import random_cancels, random_intents

SHARED = Path(os.environ.get("ORDERBOOK_SHARED", Path(__file__).resolve().parents[3].parent / "shared"))
DATA = SHARED / "data" / "binance_us"
QUOTES = ("USD", "USDT", "USDC")
FILES = {q: DATA / f"BTC{q}_1m_20230301_20230321.csv" for q in QUOTES}
needs_data = pytest.mark.skipif(not all(f.is_file() for f in FILES.values()), reason=f"no binance_us CSVs in {DATA}")
pytestmark = needs_data

STEP_NS = 60 * 10**9
TICK, LOT = Decimal("0.01"), Decimal("0.0001")


def iso_ns(text: str) -> int:
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (int(dt.timestamp()) * 10**6 + dt.microsecond) * 1000


@cache
def file_bars(quote: str) -> dict[str, np.ndarray]:
    """One file read with ``csv``; prices to ticks of 0.01 and volumes to lots of 0.0001 in exact decimals."""
    cols: dict[str, list[int]] = {k: [] for k in ("time_ns", "open", "high", "low", "close", "volume")}
    with open(FILES[quote], newline="") as f:
        for row in csv.DictReader(f):
            cols["time_ns"].append(iso_ns(row["open_time"]))
            for k in ("open", "high", "low", "close"):
                cols[k].append(int(Decimal(row[k]) / TICK))
            cols["volume"].append(int((Decimal(row["volume"]) / LOT).to_integral_value(rounding=ROUND_FLOOR)))
    return {k: np.asarray(v, dtype=np.int64) for k, v in cols.items()}


@pytest.fixture(scope="module")
def aligned() -> AlignedBars:
    return load_bars(binance_us_sources(SHARED))


@pytest.fixture(scope="module")
def base_config() -> ob.ExchangeConfig:
    return ob.binance_us_config(SHARED, episode_steps=200, faults=ob.FaultSpec.none())


def with_market(cfg: ob.ExchangeConfig, market, **changes) -> ob.ExchangeConfig:
    return dataclasses.replace(cfg, market=market, **changes)


def subset(bars: AlignedBars, columns: list[int], scale: float = 1.0) -> AlignedBars:
    return AlignedBars(
        keys=tuple(bars.keys[s] for s in columns), time_ns=bars.time_ns, step_ns=bars.step_ns,
        open=bars.open[:, columns] * scale, high=bars.high[:, columns] * scale, low=bars.low[:, columns] * scale,
        close=bars.close[:, columns] * scale, volume=bars.volume[:, columns], present=bars.present[:, columns],
    )


def run_random(ex: ob.Exchange, n_steps: int, seed: int = 0, check_every: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for t in range(n_steps):
        ex.step(random_intents(rng, ex), random_cancels(rng, ex))
        if check_every and (t + 1) % check_every == 0:
            assert audit(ex) == [], t


# ---------------------------------------------------------------- the data itself


def test_market_log_equals_the_files_on_two_venues_and_fills_stay_inside_the_bar_but_at_a_gaps_start():
    cfg = ob.binance_us_config(SHARED, second_venue=True, episode_steps=400, faults=ob.FaultSpec.none())
    ex = ob.Exchange(cfg, n_lanes=3)
    ex.reset(seed=21)
    run_random(ex, 400, seed=5)
    market = ex.history.market_frame()
    assert market.height == 3 * 401 * 6
    for inst_index, inst in enumerate(cfg.instruments):
        data = file_bars(inst.quote)
        for lane in range(3):
            rows = market.filter((pl.col("lane") == lane) & (pl.col("instrument") == inst_index)).sort("step")
            assert rows["step"].to_list() == list(range(401))
            # the market log's time is the close of the bar shown: bar k of the window opened one step earlier
            j = np.searchsorted(data["time_ns"], rows["time_ns"].to_numpy() - STEP_NS)
            np.testing.assert_array_equal(data["time_ns"][j], rows["time_ns"].to_numpy() - STEP_NS)
            np.testing.assert_array_equal(np.diff(j), 1)
            first = rows.row(0, named=True)
            assert first["open_ticks"] == first["high_ticks"] == first["low_ticks"] == first["close_ticks"] == data["close"][j[0]]
            assert first["volume_lots"] == 0
            for col in ("open", "high", "low", "close", "volume"):
                got = rows[f"{col}_ticks" if col != "volume" else "volume_lots"].to_numpy()[1:]
                np.testing.assert_array_equal(got, data[col][j[1:]], err_msg=f"{inst.venue}:{inst.symbol} lane {lane} {col}")
    # both venues replay the same files, and the windows of the lanes differ
    starts = market.filter(pl.col("step") == 0).group_by("lane").agg(pl.col("time_ns").first())["time_ns"]
    assert starts.n_unique() == 3

    fills = ex.history.events_frame().filter(pl.col("event") == "FILL")
    joined = fills.join(market, on=["lane", "episode", "step", "instrument"], how="left", suffix="_bar")
    assert joined["volume_lots"].null_count() == 0
    assert fills.height > 50 and fills["venue"].n_unique() == 2 and fills["symbol"].n_unique() == 3
    per_lot = ex.compiled.quote_atoms_per_tick_lot[joined["instrument"].to_numpy()]
    notional, lots = joined["fill_notional_atoms"].to_numpy(), joined["fill_lots"].to_numpy()
    # inside the bar's range, but for a taker meeting quotes where the path starts off the range (a gap from the
    # decision's mid, orderbook.market.path): between the decision's quotes and the range then, give or take a spread
    decided = market.select("lane", "episode", "instrument", (pl.col("step") + 1).alias("step"),
                            pl.col("bid_ticks").alias("decided_bid"), pl.col("ask_ticks").alias("decided_ask"))
    joined = joined.join(decided, on=["lane", "episode", "step", "instrument"], how="left")
    low, high, bid, ask = (joined[col].to_numpy() for col in ("low_ticks", "high_ticks", "decided_bid", "decided_ask"))
    spread = ask - bid
    inside = (notional >= low * lots * per_lot) & (notional <= high * lots * per_lot)
    assert (notional >= (np.minimum(low, bid) - spread) * lots * per_lot).all()
    assert (notional <= (np.maximum(high, ask) + spread) * lots * per_lot).all()
    assert (joined.filter(~pl.Series(inside))["liquidity"].cast(pl.Utf8) == "TAKER").all()
    assert inside.mean() > 0.7  # one bar in five gaps: orders arriving early in it meet the decision's quotes
    # a bar without trades still shows a book (takers fill against it), but makers fill only against trades
    makers = joined.filter(pl.col("liquidity") == "MAKER")
    assert makers.height > 0 and (makers["volume_lots"] > 0).all(), "a zero-volume bar filled a resting order"
    zero = market.filter((pl.col("volume_lots") == 0) & (pl.col("step") > 0))
    assert zero.height > 100  # BTC/USDC trades in fewer than 6 bars out of 10: the check above is not vacuous


def test_an_account_holding_usdc_loses_an_eighth_on_2023_03_11_and_recovers():
    cfg = ob.binance_us_config(
        SHARED, episode_steps=5760, start="2023-03-10T00:00:00Z", faults=ob.FaultSpec.none(),
        initial_balances={("binance_us", "USDC"): "10000"}, record_market=False,
    )
    ex = ob.Exchange(cfg)
    ex.reset(seed=0)
    assert ex.lanes.time_ns[0] == iso_ns("2023-03-10T00:01:00+00:00")  # the close of the window's first bar
    values, times = [ex.portfolio_value()[0]], [int(ex.lanes.time_ns[0])]
    for _ in range(5760):
        ex.step()
        values.append(ex.portfolio_value()[0])
        times.append(int(ex.lanes.time_ns[0]))
    usd_value, times = np.asarray(values), np.asarray(times)
    values = usd_value / usd_value[0]
    day = (times - STEP_NS).astype("datetime64[ns]").astype("datetime64[D]").astype(str)  # the day of the bar shown
    assert values[day == "2023-03-10"].min() > 0.99  # the peg held on the 10th (bar closes)
    low = int(np.argmin(values))
    assert day[low] == "2023-03-11"
    assert values[low] == pytest.approx(0.875, abs=0.02)
    assert values[day == "2023-03-12"][-1] > 0.98 and values[day == "2023-03-13"].min() > 0.98 and values[-1] > 0.98
    # the value follows the data: close(BTC/USD) / close(BTC/USDC) of the same bar, within the spreads
    usd, usdc = file_bars("USD"), file_bars("USDC")
    j = np.searchsorted(usd["time_ns"], times - STEP_NS)
    np.testing.assert_allclose(usd_value / 10_000, usd["close"][j] / usdc["close"][j], rtol=3e-4)


def test_prices_and_volumes_convert_by_rounding_to_the_tick_and_flooring_to_the_lot():
    frame = pl.DataFrame({
        "open_time": [0, 60, 120, 180, 300],  # the bar at 240 s is missing
        "open": [100.0, 100.004, 100.0, 100.0, 101.0],
        "high": [100.0, 100.025, 100.0, 100.5, 101.0],
        "low": [100.0, 99.995, 100.0, 100.0, 101.0],
        "close": [100.0, 100.015, 100.0, 100.5, 101.0],
        "volume": [1.0, 0.0003, 0.00019999, 0.0, 1.0],
    })
    source = BarSource("x", "BTC/USD", frame, ColumnMap(time_unit="s"))
    cfg = ob.ExchangeConfig(
        assets=(ob.Asset("BTC", 8), ob.Asset("USD", 6)), venues=(ob.Venue("x"),),
        instruments=(ob.Instrument("x", "BTC", "USD"),),
        market=ReplayMarket([source], episode_steps=5, start=0),
    )
    ex = ob.Exchange(cfg)
    ex.reset(seed=0)
    for _ in range(5):
        ex.step()
    m = ex.history.market_frame().sort("step")
    # nearest tick, decimal halves up: 100.004 -> 100.00, 100.025 -> 100.03, 99.995 -> 100.00, 100.015 -> 100.02
    assert [m[c][1] for c in ("open_ticks", "high_ticks", "low_ticks", "close_ticks")] == [10000, 10003, 10000, 10002]
    assert m["volume_lots"].to_list() == [0, 3, 1, 0, 0, 10000]  # floor: 0.0003 -> 3 lots, 0.00019999 -> 1
    # the missing bar: volume 0 (no trading), every price the previous close (valuation goes on)
    missing = m.row(4, named=True)
    assert [missing[c] for c in ("open_ticks", "high_ticks", "low_ticks", "close_ticks")] == [10050] * 4
    assert ex.source.present[:, 0].tolist() == [True, True, True, True, False, True]
    # hand-made AlignedBars: a bar flagged missing trades nothing whatever its volume says
    bars = cfg.market.data
    volume = np.where(bars.present, bars.volume, 7.0)
    market = ReplayMarket(dataclasses.replace(bars, volume=volume), episode_steps=5, start=0)
    np.testing.assert_array_equal(ob.Exchange(dataclasses.replace(cfg, market=market)).source.data.volume_lots[:, 0], [10000, 3, 1, 0, 0, 10000])


def test_the_lanes_own_permanent_impact_shifts_later_bars(base_config):
    venue = base_config.venues[0]
    fills = dataclasses.replace(venue.fills, impact=ob.ImpactSpec(model="linear", gamma=50.0))
    cfg = dataclasses.replace(
        base_config,
        venues=(venue.replace(fills=fills, latency=ob.LatencySpec.zero()),),
        market=ReplayMarket(base_config.market.data, episode_steps=20, start="2023-03-02T12:00"),
    )
    ex = ob.Exchange(cfg)
    ex.reset(seed=0)
    usd = cfg.instrument_index("binance_us", "BTC/USD")
    impact_before = [0.0]  # impact when each step's bar was drawn
    ex.step([ob.Order(lane=0, venue="binance_us", symbol="BTC/USD", side="buy", quantity="0.5")])
    for _ in range(10):
        impact_before.append(float(ex.bars.impact_ticks[0, usd]))
        ex.step()
    assert impact_before[-1] > 10  # 0.5 BTC x 50 USD/BTC = 25 USD = 2,500 ticks at most
    m = ex.history.market_frame().filter(pl.col("step") >= 1).sort("step")
    for quote in QUOTES:
        rows = m.filter(pl.col("symbol") == f"BTC/{quote}")
        data = file_bars(quote)
        j = np.searchsorted(data["time_ns"], rows["time_ns"].to_numpy() - STEP_NS)
        shift = np.round(impact_before).astype(np.int64) if quote == "USD" else 0
        for col in ("open", "high", "low", "close"):
            np.testing.assert_array_equal(rows[f"{col}_ticks"].to_numpy(), data[col][j] + shift, err_msg=f"{quote} {col}")


# ---------------------------------------------------------- windows and randomness


def market_of(cfg, seeds, n_steps, reset_at=None):
    ex = ob.Exchange(cfg, n_lanes=len(seeds))
    ex.reset(seed=np.asarray(seeds, dtype=np.int64))
    for t in range(n_steps):
        if t == reset_at:
            ex.reset()  # unseeded: the lane's next episode draws a new window
        ex.step()
    return ex.history.market_frame()


def test_random_windows_are_batch_size_invariant(base_config):
    cfg = with_market(base_config, ReplayMarket(base_config.market.data, episode_steps=30))
    seeds = np.arange(100, 116)
    big = market_of(cfg, seeds, 50, reset_at=25)
    for lane, seed in enumerate(seeds):
        one = market_of(cfg, [seed], 50, reset_at=25)
        assert big.filter(pl.col("lane") == lane).drop("lane").equals(one.drop("lane")), lane
    starts = big.filter(pl.col("step") == 0).group_by("lane", "episode").agg(pl.col("time_ns").first())
    assert starts.height == 32 and starts["time_ns"].n_unique() >= 30  # 30,210 windows: collisions are rare
    first, second = (starts.filter(pl.col("episode") == e).sort("lane")["time_ns"].to_numpy() for e in (0, 1))
    assert (first != second).sum() >= 15


def test_random_windows_seeds_0_0_1_give_equal_equal_different(base_config):
    cfg = with_market(base_config, ReplayMarket(base_config.market.data, episode_steps=10))
    a, b, c = (market_of(cfg, [s], 10) for s in (0, 0, 1))
    assert a.equals(b)
    assert a["time_ns"][0] != c["time_ns"][0] and not a.equals(c)


def test_random_windows_cover_the_data_and_stay_inside_it(aligned, base_config):
    steps = 1000
    cfg = with_market(base_config, ReplayMarket(aligned, episode_steps=steps), record_market=False)
    ex = ob.Exchange(cfg, n_lanes=2000)
    ex.reset(seed=0)
    start = ex.source.window_start_ns()
    assert start.min() >= aligned.time_ns[0] and start.max() <= aligned.time_ns[-1 - steps]
    quarters = np.histogram(start, bins=4, range=(aligned.time_ns[0], aligned.time_ns[-1 - steps] + 1))[0]
    assert (quarters > 400).all(), quarters


@pytest.mark.parametrize("start", [1440 * 9, "2023-03-10", "2023-03-10T00:00:30Z", datetime(2023, 3, 10), np.datetime64("2023-03-10T00:00")])
def test_a_fixed_start_gives_every_lane_the_same_window(base_config, start):
    cfg = with_market(base_config, ReplayMarket(base_config.market.data, episode_steps=5, start=start))
    ex = ob.Exchange(cfg, n_lanes=3)
    ex.reset(seed=[4, 8, 15])
    np.testing.assert_array_equal(ex.source.window_start_ns(), iso_ns("2023-03-10T00:00:00+00:00"))
    np.testing.assert_array_equal(ex.lanes.time_ns, iso_ns("2023-03-10T00:01:00+00:00"))


# -------------------------------------------------------------- bad configuration


def _no_usdc_source(base, aligned):
    return with_market(base, ReplayMarket(subset(aligned, [0, 1]), episode_steps=10))


def _venue_map_to_unknown_config_venue(base, aligned):
    return with_market(base, ReplayMarket(aligned, episode_steps=10, venue_map={"binance_us": "nowhere"}))


def _venue_map_from_unknown_data_venue(base, aligned):
    return with_market(base, ReplayMarket(aligned, episode_steps=10, venue_map={"kraken": "binance_us"}))


def _episode_longer_than_data(base, aligned):
    return with_market(base, ReplayMarket(aligned, episode_steps=aligned.time_ns.shape[0]))


def _start_after_data(base, aligned):
    return with_market(base, ReplayMarket(aligned, episode_steps=10, start="2023-04-01"))


def _start_before_data(base, aligned):
    return with_market(base, ReplayMarket(aligned, episode_steps=10, start=datetime(2023, 2, 28, 23, 59)))


def _start_window_runs_past_the_end(base, aligned):
    return with_market(base, ReplayMarket(aligned, episode_steps=10, start="2023-03-21T23:55Z"))


def _start_index_out_of_range(base, aligned):
    return with_market(base, ReplayMarket(aligned, episode_steps=10, start=aligned.time_ns.shape[0] - 5))


def _step_length_differs(base, aligned):
    return with_market(base, ReplayMarket(aligned, episode_steps=10), step_ms=30_000)


def _price_below_half_a_tick(base, aligned):
    return with_market(base, ReplayMarket(subset(aligned, [0, 1, 2], scale=1e-7), episode_steps=10))


def _symbol_without_a_quote(base, aligned):
    from orderbook.presets import replay_config

    bars = subset(aligned, [0])
    return replay_config(dataclasses.replace(bars, keys=(("binance_us", "BTCUSD"),)), episode_steps=10)


def _data_is_a_path_string(base, aligned):
    return with_market(base, ReplayMarket("BTCUSD.csv", episode_steps=10))


@pytest.mark.parametrize(
    "build, message",
    [
        (_no_usdc_source, r"no data for instrument\(s\) \['binance_us:BTC/USDC'\]; available after venue_map: \['binance_us:BTC/USD', 'binance_us:BTC/USDT'\]"),
        (_venue_map_to_unknown_config_venue, r"maps data venue 'binance_us' to 'nowhere', which is not a config venue; config venues: \['binance_us'\]"),
        (_venue_map_from_unknown_data_venue, r"names data venue 'kraken', which is not in the data; data venues: \['binance_us'\]"),
        (_episode_longer_than_data, r"episode_steps=30240 needs 30241 bars per window, but the data has 30240"),
        (_start_after_data, r"start=2023-04-01T00:00:00Z is outside the data's bars \(2023-03-01T00:00:00Z to 2023-03-21T23:59:00Z"),
        (_start_before_data, r"start=2023-02-28T23:59:00Z is outside the data's bars"),
        (_start_window_runs_past_the_end, r"leaves 5 bars, but a window needs 11 .*latest start is 2023-03-21T23:49:00Z"),
        (_start_index_out_of_range, r"start=30235 is outside the data: a window of 11 bars must start at a bar index in \[0, 30229\]"),
        (_step_length_differs, r"step_ms=30000 does not match the data's bar interval 60 s; expected step_ms=60000"),
        (_price_below_half_a_tick, r"BTC/USD, bar 0 \(2023-03-01T00:00:00Z\), open 0\.00231\d* is not representable: expected a finite price in the instrument's range \[0\.01, 1000000\]"),
        (_symbol_without_a_quote, r"replay_config: symbol 'BTCUSD' of venue 'binance_us' must be BASE/QUOTE"),
        (_data_is_a_path_string, r"ReplayMarket.data must be AlignedBars or a sequence of BarSource, got str"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(base_config, aligned, build, message):
    with pytest.raises(ValueError, match=message):
        ob.Exchange(build(base_config, aligned))


def test_stepping_past_the_window_raises_and_changes_nothing(base_config):
    cfg = with_market(base_config, ReplayMarket(base_config.market.data, episode_steps=3))
    ex = ob.Exchange(cfg, n_lanes=2)
    ex.reset(seed=0)
    for _ in range(3):
        ex.step()
    bars, rows = ob_state.copy_state(ex.bars), len(ex.history.market)
    with pytest.raises(ValueError, match=r"lane\(s\) \[0, 1\] are at step 3 = episode_steps, the last bar of their 4-bar window"):
        ex.step()
    assert ex.lanes.step.tolist() == [3, 3] and len(ex.history.market) == rows
    for name, before in zip(bars._fields, bars, strict=True):
        np.testing.assert_array_equal(getattr(ex.bars, name), before, err_msg=name)
    ex.reset(mask=np.array([True, False]))
    with pytest.raises(ValueError, match=r"lane\(s\) \[1\] are at step 3"):
        ex.step()
    ex.reset()
    ex.step()
    assert ex.lanes.step.tolist() == [1, 1]


def test_binance_us_config_names_the_missing_data_folder(tmp_path):
    with pytest.raises(ValueError, match=r"no Binance.US data folder at .*data/binance_us; expected shared/data/binance_us"):
        ob.binance_us_config(tmp_path)


# ---------------------------------------------------------------------- audit


def test_audit_holds_on_replayed_data_with_every_fault_turned_up():
    cfg = ob.binance_us_config(SHARED, second_venue=True, episode_steps=150, faults=ob.FaultSpec.high(), slots=16)
    ex = ob.Exchange(cfg, n_lanes=4)
    ex.reset(seed=3)
    run_random(ex, 150, seed=1, check_every=50)
    ex.reset()  # every window ends at 150 steps: the next episode draws new ones
    run_random(ex, 150, seed=2, check_every=50)
    events = ex.history.events_frame()
    assert events.filter(pl.col("event") == "FILL").height > 20
    assert events["reason"].n_unique() > 5  # the faults did happen
    assert audit(ex) == []
