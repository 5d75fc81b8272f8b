"""Ready-made exchange configurations: an account on replayed Binance.US bars.

:func:`replay_config` builds an :class:`~orderbook.engine.config.ExchangeConfig` over any
aligned bars (one venue per data venue, or several fed by the same bars);
:func:`binance_us_config` is the Binance.US sample of March 2023 (the shared CSVs, or the
Parquet copy shipped in the package). These sit above ``market/`` and ``engine/``: they
put a replayed market and the specs together.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orderbook.engine.config import ExchangeConfig
from orderbook.market.bars import AlignedBars, BarSource, load_bars
from orderbook.market.replay import ReplayMarket
from orderbook.spec.specs import Asset, FaultSpec, Instrument, LatencySpec, Venue

BINANCE_US_QUOTES = ("USD", "USDT", "USDC")
# The time split of the Binance.US sample (UTC, half-open): episodes of one never use a bar of the other.
BINANCE_US_SPLITS = {"train": ("2023-03-01", "2023-03-15"), "test": ("2023-03-15", "2023-03-22")}


def default_shared_dir() -> Path:
    """The project's shared folder: ``$ORDERBOOK_SHARED``, else ``<repo>/../shared``."""
    env = os.environ.get("ORDERBOOK_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared"


def packaged_data_dir() -> Path:
    """The Binance.US sample shipped in the package: the shared CSVs as zstd Parquet, equal bar for bar."""
    return Path(__file__).resolve().parent / "data" / "binance_us"


def binance_us_sources(shared: str | os.PathLike[str] | None = None, venue: str = "binance_us") -> list[BarSource]:
    """BarSources of the Binance.US 1-minute BTC/USD, BTC/USDT and BTC/USDC bars (March 2023).

    ``shared`` given, or ``$ORDERBOOK_SHARED`` set: the CSV files in
    ``<shared>/data/binance_us``. Neither: the same bars as Parquet shipped in the
    package (:func:`packaged_data_dir`), so an installed package needs no data folder.
    """
    if shared is None and not os.environ.get("ORDERBOOK_SHARED"):
        folder, suffix = packaged_data_dir(), "parquet"
        if not folder.is_dir():
            raise ValueError(f"no packaged Binance.US data at {folder}; expected the package's data/binance_us "
                             "folder (reinstall orderbook-gym, or pass shared_dir / set ORDERBOOK_SHARED)")
    else:
        folder, suffix = Path(shared if shared is not None else default_shared_dir()) / "data" / "binance_us", "csv"
        if not folder.is_dir():
            raise ValueError(f"no Binance.US data folder at {folder}; expected shared/data/binance_us (set ORDERBOOK_SHARED or pass shared_dir)")
    return [BarSource(venue, f"BTC/{q}", str(folder / f"BTC{q}_1m_*.{suffix}")) for q in BINANCE_US_QUOTES]


def _venue_pairs(market: ReplayMarket) -> list[tuple[str, str, str]]:
    """Every (venue, base, quote) the market replays, venues renamed or fanned out by its ``venue_map``, in data order."""
    mapping = market.venue_map or {}
    pairs: list[tuple[str, str, str]] = []
    for venue, symbol in market.data.keys:
        base, _, quote = symbol.partition("/")
        if not base or not quote:
            raise ValueError(f"replay_config: symbol {symbol!r} of venue {venue!r} must be BASE/QUOTE")
        for name in mapping.get(venue, (venue,)):
            pairs.append((name, base, quote))
    return pairs


def replay_config(
    data: AlignedBars | Sequence[BarSource] | ReplayMarket,
    *,
    episode_steps: int = 240,
    start: Any = "random",
    venue_map: dict[str, str | tuple[str, ...]] | None = None,
    window: tuple[Any, Any] | None = None,
    faults: FaultSpec | None = None,
    latency: dict[str, LatencySpec] | None = None,
    taker_fee_bps: dict[str, float] | None = None,
    initial_balances: dict[tuple[str, str], Any] | None = None,
    tick_size: str = "0.01",
    lot_size: str = "0.0001",
    base_decimals: int = 8,
    quote_decimals: int = 6,
    **overrides: Any,
) -> ExchangeConfig:
    """An account trading every (venue, BASE/QUOTE) pair of ``data`` on replayed bars.

    ``data`` is aligned bars, bar sources (loaded here) or a ready ReplayMarket.
    ``window=(start, end)`` keeps every episode inside that half-open period (:class:`ReplayMarket`).
    Venues are the data's (renamed or fanned out by ``venue_map``), each with the
    default broker faults (or ``faults``), its ``latency`` and taker fee if given.
    Every pair gets ``tick_size`` and ``lot_size``; bases have ``base_decimals``,
    quotes ``quote_decimals``. Balances per venue: 1 of each base and 100,000 of
    each quote, unless ``initial_balances`` is given. The numeraire is USD when a
    quote is USD, else the first quote. ``overrides`` go to ExchangeConfig.
    """
    if isinstance(data, ReplayMarket):
        if window is not None:
            raise ValueError("replay_config: window= applies to bars; a ReplayMarket carries its own window (ReplayMarket(window=...))")
        market = data
    else:
        market = ReplayMarket(data, episode_steps=episode_steps, start=start, venue_map=venue_map, window=window)
    pairs = _venue_pairs(market)
    venue_names = tuple(dict.fromkeys(v for v, _, _ in pairs))
    bases = tuple(dict.fromkeys(b for _, b, _ in pairs))
    quotes = tuple(dict.fromkeys(q for _, _, q in pairs))
    fault_spec = faults if faults is not None else FaultSpec()
    latency = latency or {}
    venues = tuple(Venue(v, latency=latency.get(v, LatencySpec(median_ms=50.0)), faults=fault_spec) for v in venue_names)
    fees = taker_fee_bps or {}
    instruments = tuple(
        Instrument(v, b, q, tick_size=tick_size, lot_size=lot_size, min_notional="10", maker_fee_bps=1.0, taker_fee_bps=fees.get(v, 5.0))
        for v, b, q in pairs
    )
    if initial_balances is None:
        initial_balances = {(v, a): ("1" if a in bases else "100000") for v in venue_names for a in bases + quotes}
    kwargs: dict[str, Any] = dict(
        assets=tuple(Asset(b, base_decimals) for b in bases) + tuple(Asset(q, quote_decimals) for q in quotes),
        venues=venues,
        instruments=instruments,
        numeraire="USD" if "USD" in quotes else quotes[0],
        initial_balances=initial_balances,
        step_ms=int(market.data.step_ns // 1_000_000),
        market=market,
    )
    kwargs.update(overrides)
    return ExchangeConfig(**kwargs)


def binance_us_config(
    shared_dir: str | os.PathLike[str] | None = None,
    second_venue: bool = False,
    *,
    episode_steps: int = 240,
    start: Any = "random",
    faults: FaultSpec | None = None,
    initial_balances: dict[tuple[str, str], Any] | None = None,
    split: str | None = None,
    window: tuple[Any, Any] | None = None,
    **overrides: Any,
) -> ExchangeConfig:
    """An account on Binance.US replayed from its 1-minute bars of March 2023 (:func:`binance_us_sources`:
    the CSVs of ``shared_dir`` or ``$ORDERBOOK_SHARED``, else the Parquet sample shipped in the package).

    Venue ``binance_us`` lists BTC/USD, BTC/USDT and BTC/USDC (tick 0.01, lot
    0.0001 BTC, min notional 10, maker 1 bps, taker 5 bps, latency median 50 ms);
    with ``second_venue`` the same files also feed ``binance_us_2`` (taker 10 bps,
    latency median 150 ms). Assets: BTC with 8 decimals, USD/USDT/USDC with 6, so
    tick x lot = 1e-6 = one quote atom. Balances per venue: 1 BTC, 100,000 USD,
    50,000 USDT and USDC, unless ``initial_balances`` is given. ``faults`` (a
    FaultSpec) applies to every venue; ``overrides`` go to ExchangeConfig.

    ``split`` (``"train"`` or ``"test"``, :data:`BINANCE_US_SPLITS`) or ``window=(start, end)``
    keeps every episode, start to last bar, inside that period (out-of-sample evaluation).
    """
    window = split_window(split, window)
    names = ("binance_us", "binance_us_2") if second_venue else ("binance_us",)
    if initial_balances is None:
        initial_balances = {(v, a): amt for v in names for a, amt in (("BTC", "1"), ("USD", "100000"), ("USDT", "50000"), ("USDC", "50000"))}
    return replay_config(
        load_bars(binance_us_sources(shared_dir)),
        episode_steps=episode_steps,
        start=start,
        venue_map={"binance_us": names},
        faults=faults,
        latency={"binance_us": LatencySpec(median_ms=50.0), "binance_us_2": LatencySpec(median_ms=150.0)},
        taker_fee_bps={"binance_us": 5.0, "binance_us_2": 10.0},
        initial_balances=initial_balances,
        window=window,
        **overrides,
    )


def split_window(split: str | None, window: tuple[Any, Any] | None = None) -> tuple[Any, Any] | None:
    """The window of the Binance.US split ``split`` (:data:`BINANCE_US_SPLITS`), or ``window`` when no split is
    named; ValueError for an unknown name or both given."""
    if split is None:
        return window
    if not isinstance(split, str) or split not in BINANCE_US_SPLITS:
        raise ValueError(f"split must be one of {tuple(BINANCE_US_SPLITS)} (Binance.US periods {BINANCE_US_SPLITS}), got {split!r}")
    if window is not None:
        raise ValueError(f"pass split={split!r} or window={window!r}, not both (a split is a named window)")
    return BINANCE_US_SPLITS[split]


__all__ = ["BINANCE_US_QUOTES", "BINANCE_US_SPLITS", "binance_us_config", "binance_us_sources", "default_shared_dir", "packaged_data_dir", "replay_config", "split_window"]
