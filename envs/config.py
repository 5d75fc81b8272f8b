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
  config: ``"binance_us"`` (the packaged Binance.US sample, or ``$ORDERBOOK_SHARED/data``), an :class:`~orderbook.market.bars.AlignedBars`,
  a list of :class:`~orderbook.market.bars.BarSource`, or a :class:`~orderbook.ReplayMarket`;
  the account trades every pair of the data (:func:`orderbook.presets.replay_config`)
  in windows of ``episode_steps`` bars (the env's horizon by default);
- ``exchange``: a dict of any other :class:`~orderbook.ExchangeConfig` fields
  (``slots``, ``step_ms``, ``initial_balances``, ``max_new_orders``, ...); ``initial_balances`` keys may be
  ``(venue, asset)`` pairs or, as JSON has them, ``"venue:asset"`` strings;
- ``split``: with the Binance.US data (``market``, ``config`` or ``data`` ``"binance_us"``),
  ``"train"`` (2023-03-01..14) or ``"test"`` (2023-03-15..21), UTC days: every episode,
  first bar to last, lies inside that period (:data:`orderbook.presets.BINANCE_US_SPLITS`);
  ``None`` (the default) uses every bar.

Pieces apply on top of ``config``, so ``config=my_cfg, faults=FaultSpec.high()``
is ``my_cfg`` with every venue's faults turned up.

Plain values, as the command lines take them (``agents.train --faults high
--market binance_us``), are accepted too, so an env's ``spec.kwargs`` can be plain
JSON and ``gym.make(EnvSpec.from_json(env.spec.to_json()))`` rebuilds the same env:

- ``faults``: ``"none"``, ``"default"`` or ``"high"`` (:data:`FAULT_LEVELS`);
  ``latency``: ``"default"`` or ``"zero"``; ``fills``: ``"default"``;
- ``config``: ``"default"`` or ``"binance_us"`` (:func:`orderbook.binance_us_config`, in windows of
  ``episode_steps`` bars as ``data="binance_us"``: an Execution episode of any horizon ends at its horizon,
  not at a fixed 240-bar window);
  ``market``: ``"synthetic"`` (the default market) or ``"binance_us"`` (the same as
  ``config="binance_us"``, as ``--market binance_us`` means on the command line);
- ``faults``, ``fills``, ``latency`` and a synthetic ``market`` as dicts of their
  fields (what ``EnvSpec.to_json`` writes for them). A whole ``ExchangeConfig`` or
  replayed data does not survive JSON: given as a dict, it is refused with a
  message saying what to pass instead.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from gymnasium.envs.registration import EnvSpec

import orderbook as ob
from orderbook.presets import split_window

DEFAULT_VENUES = ("alpha", "beta")
FAULTS = {"none": ob.FaultSpec.none, "default": ob.FaultSpec, "high": ob.FaultSpec.high}  # the CLI's --faults
LATENCIES = {"default": ob.LatencySpec, "zero": ob.LatencySpec.zero}
FILLS = {"default": ob.FillSpec}
FAULT_LEVELS = tuple(FAULTS)
CONFIG_NAMES = ("default", "binance_us")
MARKET_NAMES = ("synthetic", "binance_us")


def fault_spec(level: str) -> ob.FaultSpec:
    """``none``: every fault off; ``default``: ``FaultSpec()``; ``high``: ``FaultSpec.high()``."""
    return _part("faults", level, ob.FaultSpec, FAULTS)


def _spec_from_dict(cls: type, value: dict, name: str) -> Any:
    """``cls(**value)``, nested dataclass fields (and dicts of them) rebuilt too: the inverse of
    ``dataclasses.asdict`` for the flat specs (what ``EnvSpec.to_json`` writes)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - fields)
    if unknown:
        raise ValueError(f"{name} as a dict takes {cls.__name__} fields {sorted(fields)}, got unknown {unknown}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, item in value.items():
        hint = hints.get(key)
        args = typing.get_args(hint)
        if dataclasses.is_dataclass(hint) and isinstance(item, dict):
            item = _spec_from_dict(hint, item, f"{name}.{key}")
        elif typing.get_origin(hint) is dict and len(args) == 2 and dataclasses.is_dataclass(args[1]) and isinstance(item, dict):
            item = {k: _spec_from_dict(args[1], v, f"{name}.{key}[{k!r}]") if isinstance(v, dict) else v for k, v in item.items()}
        elif typing.get_origin(hint) is tuple and isinstance(item, list):
            item = tuple(item)
        kwargs[key] = item
    return cls(**kwargs)


def _part(name: str, value: Any, cls: type, names: dict[str, Any]) -> Any:
    """A venue part (``faults``, ``fills``, ``latency``) from a spec object, a name or a dict of fields."""
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, str):
        if value not in names:
            raise ValueError(f"{name} as a name must be one of {tuple(names)}, got {value!r}")
        return names[value]()
    if isinstance(value, dict):
        return _spec_from_dict(cls, value, name)
    raise ValueError(f"{name} must be an orderbook.{cls.__name__}, one of the names {tuple(names)} or a dict of its fields, "
                     f"got {type(value).__name__}")


def _named_config(config: Any, market: Any, split: str | None = None, episode_steps: int = 240) -> tuple[Any, Any]:
    """``config`` and ``market`` given by name (or as JSON dicts) resolved to objects, or refused clearly;
    ``split`` picks the period of the Binance.US data named so, whose windows are ``episode_steps`` bars
    (the env's episode: its horizon), as with ``data="binance_us"``."""
    if isinstance(config, dict):
        raise ValueError("config came as a dict (an EnvSpec read back from JSON?): an ExchangeConfig does not survive JSON; "
                         f"pass config by name {CONFIG_NAMES} and its parts as faults=, fills=, latency=, exchange={{...}}")
    if isinstance(config, str):
        if config not in CONFIG_NAMES:
            raise ValueError(f"config as a name must be one of {CONFIG_NAMES}, got {config!r}")
        config = None if config == "default" else ob.binance_us_config(split=split, episode_steps=episode_steps)
    if isinstance(market, str):
        if market not in MARKET_NAMES:
            raise ValueError(f"market as a name must be one of {MARKET_NAMES}, got {market!r}")
        if market == "binance_us":
            if config is not None:
                raise ValueError("market='binance_us' is the Binance.US config; pass it without config (or pass config='binance_us')")
            return ob.binance_us_config(split=split, episode_steps=episode_steps), None
        return config, None
    if isinstance(market, dict):
        if set(market) <= {f.name for f in dataclasses.fields(ob.SyntheticMarket)}:
            return config, _spec_from_dict(ob.SyntheticMarket, market, "market")
        raise ValueError("market came as a dict that is not a SyntheticMarket (an EnvSpec read back from JSON?): replayed "
                         f"data does not survive JSON; pass market by name {MARKET_NAMES} or data='binance_us'")
    return config, market


def build_config(
    config: ob.ExchangeConfig | str | None = None,
    *,
    venues: tuple[str, ...] | None = None,
    quotes: tuple[str, ...] | None = None,
    faults: ob.FaultSpec | str | dict | None = None,
    fills: ob.FillSpec | str | dict | None = None,
    latency: ob.LatencySpec | str | dict | None = None,
    market: Any = None,
    exchange: dict[str, Any] | None = None,
    data: Any = None,
    episode_steps: int = 240,
    default_quotes: tuple[str, ...] = ("USD", "USDT", "USDC"),
    split: str | None = None,
) -> ob.ExchangeConfig:
    """The exchange configuration an env runs on (see the module docstring)."""
    if split is not None:
        split_window(split)  # the name, before anything loads
        if not any(isinstance(v, str) and v == "binance_us" for v in (config, market, data)):
            named = {k: v for k, v in (("config", config), ("market", market), ("data", data)) if v is not None}
            raise ValueError(f"split={split!r} picks a period of the replayed Binance.US data: pass it with market='binance_us' "
                             f"(or config= / data='binance_us'), got {named or 'the synthetic market'}")
    if data is not None:
        if config is not None or market is not None or venues is not None or quotes is not None:
            raise ValueError("data=... builds the config from the data; pass it without config, market, venues or quotes")
        config = _config_from_data(data, episode_steps, split)
    config, market = _named_config(config, market, split, episode_steps)
    faults = _part("faults", faults, ob.FaultSpec, FAULTS)
    fills = _part("fills", fills, ob.FillSpec, FILLS)
    latency = _part("latency", latency, ob.LatencySpec, LATENCIES)
    overrides = dict(exchange or {})
    if not isinstance(overrides, dict):
        raise ValueError(f"exchange must be a dict of ExchangeConfig fields, got {type(exchange).__name__}")
    known = {f.name for f in dataclasses.fields(ob.ExchangeConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"exchange has unknown ExchangeConfig fields {unknown}; known fields: {sorted(known)}")
    if "initial_balances" in overrides:
        overrides["initial_balances"] = balance_keys(overrides["initial_balances"])
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


def balance_keys(balances: Any) -> Any:
    """``initial_balances`` with its JSON keys ``"venue:asset"`` turned into the config's ``(venue, asset)`` pairs
    (pairs stay as they are), so ``exchange={"initial_balances": {...}}`` can be plain JSON; a string key
    that is not ``venue:asset`` raises ValueError naming it. Anything else is left for the config's own checks."""
    if not isinstance(balances, dict):
        return balances
    out: dict[Any, Any] = {}
    for key, amount in balances.items():
        if isinstance(key, str):
            venue, sep, asset = key.partition(":")
            if not (sep and venue and asset and ":" not in asset):
                raise ValueError(f"exchange initial_balances keys must be (venue, asset) pairs or 'venue:asset' strings, got {key!r}")
            key = (venue, asset)
        out[key] = amount
    return out


_JSON_ADVICE = {
    "config": "pass config by name ('default', 'binance_us') and its parts as faults=, fills=, latency=, exchange={...}",
    "market": "pass market by name ('synthetic', 'binance_us'), a SyntheticMarket, or data='binance_us'",
    "data": "pass data='binance_us'",
}


class JsonCheckedSpec(EnvSpec):
    """An :class:`EnvSpec` whose ``to_json`` names the keyword argument that is not JSON and what to pass
    instead (Gymnasium's own message names only a type deep inside, such as ``Decimal``)."""

    def to_json(self) -> str:
        for key, value in self.kwargs.items():
            try:
                json.dumps(dataclasses.asdict(value) if dataclasses.is_dataclass(value) and not isinstance(value, type) else value)
            except (TypeError, ValueError) as e:
                advice = _JSON_ADVICE.get(key, "pass plain values (names, numbers, lists, dicts)")
                raise TypeError(f"{self.id}: the keyword argument {key}={type(value).__name__} cannot be written as JSON ({e}); "
                                f"to make the env spec JSON, {advice}") from None
        return super().to_json()


def json_checked(spec: EnvSpec | None) -> EnvSpec | None:
    """``spec`` as a :class:`JsonCheckedSpec` (the same fields), for an env's ``spec`` attribute."""
    if spec is None or isinstance(spec, JsonCheckedSpec):
        return spec
    return JsonCheckedSpec(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.init})


class JsonCheckedSpecMixin:
    """An env's ``spec`` stored as a :class:`JsonCheckedSpec`: its ``to_json`` names a keyword argument
    that is not JSON (and what to pass instead) rather than failing on the first Decimal."""

    @property
    def spec(self) -> EnvSpec | None:
        """What ``gym.make`` recorded."""
        return self.__dict__.get("_spec")

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        self._spec = json_checked(value)


def _replace_venues(cfg: ob.ExchangeConfig, **changes: Any) -> ob.ExchangeConfig:
    return dataclasses.replace(cfg, venues=tuple(v.replace(**changes) for v in cfg.venues))


def _config_from_data(data: Any, episode_steps: int, split: str | None = None) -> ob.ExchangeConfig:
    from orderbook.market.bars import AlignedBars, BarSource
    from orderbook.market.replay import ReplayMarket
    from orderbook.presets import replay_config

    if isinstance(data, str):
        if data != "binance_us":
            raise ValueError(f"data as a name must be 'binance_us' (the packaged Binance.US sample of March 2023), got {data!r}")
        return ob.binance_us_config(episode_steps=episode_steps, split=split)
    if isinstance(data, (AlignedBars, ReplayMarket)) or (
        isinstance(data, (list, tuple)) and data and all(isinstance(x, BarSource) for x in data)
    ):
        return replay_config(data, episode_steps=episode_steps)
    raise ValueError(
        "data must be 'binance_us', an AlignedBars, a list of BarSource or a ReplayMarket, "
        f"got {type(data).__name__}"
    )
