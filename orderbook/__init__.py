"""orderbook: a batched, exact, faulty order-management simulator.

The core of orderbook-gym. No Gymnasium or torch dependency: numpy, numba, polars.
"""

from orderbook.engine import lifecycle, state  # noqa: F401  (``ob.lifecycle``, ``ob.state``: read by the envs, agents and tests)
from orderbook.engine.config import ExchangeConfig, default_config
from orderbook.engine.exchange import Exchange
from orderbook.engine.intents import Order, OrderIntents, empty_intents
from orderbook.engine.lifecycle import IllegalTransition
from orderbook.market.replay import ReplayMarket
from orderbook.market.synthetic import DepegSpec, SyntheticMarket
from orderbook.presets import binance_us_config
from orderbook.spec.codes import Event, LedgerCause, Liquidity, OrderKind, Reason, Side, Status, TimeInForce
from orderbook.spec.specs import Asset, BookSpec, FaultSpec, FillSpec, ImpactSpec, Instrument, LatencySpec, Venue

__all__ = [
    "Asset", "BookSpec", "DepegSpec", "Event", "Exchange", "ExchangeConfig", "FaultSpec", "FillSpec",
    "IllegalTransition", "ImpactSpec", "Instrument", "LatencySpec", "LedgerCause", "Liquidity", "Order",
    "OrderIntents", "OrderKind", "Reason", "ReplayMarket", "Side", "Status", "SyntheticMarket", "TimeInForce", "Venue",
    "binance_us_config", "default_config", "empty_intents",
]

__version__ = "0.1.0"
