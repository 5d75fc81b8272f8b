"""Building the core's :class:`~orderbook.ExchangeConfig` from ``gym.make`` keyword arguments.

Every env takes the same configuration arguments, so ``gym.make`` and
``gym.make_vec`` accept them alike:

- ``config``: a whole :class:`~orderbook.ExchangeConfig` (default: the env's own
  :func:`orderbook.default_config` call);
- ``venues``, ``quotes``: names for :func:`orderbook.default_config` (only without
  ``config``);
- ``faults`` (:class:`~orderbook.FaultSpec`), ``fills`` (:class:`~orderbook.FillSpec`),
  ``latency`` (:class:`~orderbook.LatencySpec`): replace that part of every venue;
- ``market``: a :class:`~orderbook.SyntheticMarket` or a replay source (the data);
- ``data``: real bars to trade instead of the synthetic market, without writing a
  config: ``"binance_us"`` (``../shared/data``), an :class:`~orderbook.bars.AlignedBars`,
  a list of :class:`~orderbook.bars.BarSource`, or a :class:`~orderbook.ReplayMarket`;
  the account trades every pair of the data (:func:`orderbook.replay.replay_config`)
  in windows of ``episode_steps`` bars (the env's horizon by default);
- ``exchange``: a dict of any other :class:`~orderbook.ExchangeConfig` fields
  (``slots``, ``step_ms``, ``initial_balances``, ``max_new_orders``, ...).

Pieces apply on top of ``config``, so ``config=my_cfg, faults=FaultSpec.high()``
is ``my_cfg`` with every venue's faults turned up.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orderbook as ob

DEFAULT_VENUES = ("alpha", "beta")


def build_config(
    config: ob.ExchangeConfig | None = None,
    *,
    venues: tuple[str, ...] | None = None,
    quotes: tuple[str, ...] | None = None,
    faults: ob.FaultSpec | None = None,
    fills: ob.FillSpec | None = None,
    latency: ob.LatencySpec | None = None,
    market: Any = None,
    exchange: dict[str, Any] | None = None,
    data: Any = None,
    episode_steps: int = 240,
    default_quotes: tuple[str, ...] = ("USD", "USDT", "USDC"),
) -> ob.ExchangeConfig:
    """The exchange configuration an env runs on (see the module docstring)."""
    if data is not None:
        if config is not None or market is not None or venues is not None or quotes is not None:
            raise ValueError("data=... builds the config from the data; pass it without config, market, venues or quotes")
        config = _config_from_data(data, episode_steps)
    for name, value, cls in (("faults", faults, ob.FaultSpec), ("fills", fills, ob.FillSpec), ("latency", latency, ob.LatencySpec)):
        if value is not None and not isinstance(value, cls):
            raise ValueError(f"{name} must be an orderbook.{cls.__name__}, got {type(value).__name__}")
    overrides = dict(exchange or {})
    if not isinstance(overrides, dict):
        raise ValueError(f"exchange must be a dict of ExchangeConfig fields, got {type(exchange).__name__}")
    known = {f.name for f in dataclasses.fields(ob.ExchangeConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"exchange has unknown ExchangeConfig fields {unknown}; known fields: {sorted(known)}")
    if market is not None:
        overrides["market"] = market
    if config is None:
        cfg = ob.default_config(
            venues=tuple(venues) if venues is not None else DEFAULT_VENUES,
            quotes=tuple(quotes) if quotes is not None else default_quotes,
            faults=faults,
            **overrides,
        )
    else:
        if not isinstance(config, ob.ExchangeConfig):
            raise ValueError(f"config must be an orderbook.ExchangeConfig, got {type(config).__name__}")
        if venues is not None or quotes is not None:
            raise ValueError("venues and quotes choose the default config; with config=... edit the config itself")
        cfg = dataclasses.replace(config, **overrides) if overrides else config
        if faults is not None:
            cfg = _replace_venues(cfg, faults=faults)
    if fills is not None:
        cfg = _replace_venues(cfg, fills=fills)
    if latency is not None:
        cfg = _replace_venues(cfg, latency=latency)
    return cfg


def _replace_venues(cfg: ob.ExchangeConfig, **changes: Any) -> ob.ExchangeConfig:
    return dataclasses.replace(cfg, venues=tuple(v.replace(**changes) for v in cfg.venues))


def _config_from_data(data: Any, episode_steps: int) -> ob.ExchangeConfig:
    from orderbook.bars import AlignedBars, BarSource
    from orderbook.replay import ReplayMarket, replay_config

    if isinstance(data, str):
        if data != "binance_us":
            raise ValueError(f"data as a name must be 'binance_us' (../shared/data/binance_us), got {data!r}")
        return ob.binance_us_config(episode_steps=episode_steps)
    if isinstance(data, (AlignedBars, ReplayMarket)) or (
        isinstance(data, (list, tuple)) and data and all(isinstance(x, BarSource) for x in data)
    ):
        return replay_config(data, episode_steps=episode_steps)
    raise ValueError(
        "data must be 'binance_us', an AlignedBars, a list of BarSource or a ReplayMarket, "
        f"got {type(data).__name__}"
    )
