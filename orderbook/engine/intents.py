"""What an agent asks for in one step: new orders and cancels, validated at the edge.

:class:`OrderIntents` holds up to ``M`` new orders per lane as ``(B, M)`` integer
arrays (instrument ``-1`` = no order), each with its time in force (``tif``:
:class:`~orderbook.spec.codes.TimeInForce`, GTD by default, so a row's ``ttl_ns`` or the
venue's default TTL applies; GTC never expires by time; IOC, FOK and post-only are
decided on arrival, :mod:`orderbook.engine.tif`); cancels are a ``(B, K)`` boolean mask over
slots. :func:`validate_intents` and :func:`validate_cancels` check shapes, dtypes
and ranges and raise ``ValueError`` saying what was expected and what came,
before anything changes. :class:`Order` and :func:`intents_from_orders` take
human units (decimal price and quantity) and refuse prices off the tick and
quantities off the lot. A time to live is at most 2**60 ns (:mod:`orderbook.spec.bounds`).

What passes validation may still be refused by the broker (funds, rate limit,
venue down, min notional, price band, price range, balance limit): that is an
event, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, NamedTuple

import numpy as np

from orderbook.compile.jit import kernel
from orderbook.spec import codes as c
from orderbook.spec.bounds import MAX_DURATION_NS, check_duration_ms
from orderbook.spec.specs import to_decimal


class OrderIntents(NamedTuple):
    """New orders of one step, ``(B, M)`` each; ``instrument < 0`` marks an unused row."""

    instrument: np.ndarray  # (B, M) int64
    side: np.ndarray  # (B, M) int64 Side (+1 buy, -1 sell)
    kind: np.ndarray  # (B, M) int64 OrderKind
    price_ticks: np.ndarray  # (B, M) int64 limit price (ignored for market orders)
    qty_lots: np.ndarray  # (B, M) int64 > 0
    ttl_ns: np.ndarray  # (B, M) int64 time to live of a GTD order, 0 = the venue's default; 0 for GTC
    tif: np.ndarray | None = None  # (B, M) int64 TimeInForce; None (validation fills it in) = GTD everywhere


def empty_intents(n_lanes: int, max_new: int) -> OrderIntents:
    shape = (n_lanes, max_new)
    return OrderIntents(
        np.full(shape, -1, dtype=np.int64),
        np.ones(shape, dtype=np.int64),
        np.zeros(shape, dtype=np.int64),
        np.zeros(shape, dtype=np.int64),
        np.zeros(shape, dtype=np.int64),
        np.zeros(shape, dtype=np.int64),
        np.full(shape, c.TIF_GTD, dtype=np.int64),
    )


def _as_int_array(name: str, x: Any, shape: tuple[int, int]) -> np.ndarray:
    if type(x) is np.ndarray and x.dtype == np.int64 and x.shape == shape and x.flags.c_contiguous:
        return x  # the common case, checked by value in validate_intents
    arr = np.asarray(x)
    if arr.shape != shape:
        raise ValueError(f"intents.{name} must have shape {shape} (lanes, max_new_orders), got {arr.shape}")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            idx = tuple(int(j) for j in np.argwhere(bad)[0])
            raise ValueError(f"intents.{name} must be finite integers, got {arr[idx]} at {idx}")
        if (arr != np.round(arr)).any():
            idx = tuple(int(j) for j in np.argwhere(arr != np.round(arr))[0])
            raise ValueError(f"intents.{name} must be whole numbers, got {arr[idx]} at {idx}")
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"intents.{name} must be an integer array, got dtype {arr.dtype}")
    return arr.astype(np.int64)


# (field, what a valid entry is) of each check, in the order the first failure is reported
_CHECKS = (
    ("instrument", "an index in [0, {n}) or -1 for no order"),
    ("side", "+1 (buy) or -1 (sell)"),
    ("kind", "0 (market) or 1 (limit)"),
    ("qty_lots", "a quantity > 0 lots"),
    ("price_ticks", "a limit price > 0 ticks"),
    ("ttl_ns", "a time to live >= 0 ns (0 = venue default)"),
    ("qty_lots", "a quantity <= 2**40 lots"),
    ("price_ticks", "a price <= 2**40 ticks"),
    ("tif", "a TimeInForce: 0 (GTD), 1 (GTC), 2 (IOC), 3 (FOK) or 4 (POST_ONLY)"),
    ("ttl_ns", "a time to live <= 2**60 ns (36.5 years; GTC for no expiry)"),
    ("ttl_ns", "0 for a GTC, IOC or FOK order (GTC never expires by time; IOC and FOK never rest)"),
    ("tif", "a time in force other than 4 (POST_ONLY) for a market order (post-only is a limit that only rests)"),
)  # _row_check returns len(_CHECKS) = 12 for a row that passes them all
_PASS = len(_CHECKS)


@kernel(inline=True)
def _row_check(intents, n_instruments, b, m):
    """Index in :data:`_CHECKS` of the first check row ``(b, m)`` fails, or ``len(_CHECKS)``."""
    inst = intents.instrument[b, m]
    if inst >= n_instruments:
        return 0
    if inst < 0:
        return _PASS  # no order: nothing else is read
    side, kind, tif = intents.side[b, m], intents.kind[b, m], intents.tif[b, m]
    qty, price, ttl = intents.qty_lots[b, m], intents.price_ticks[b, m], intents.ttl_ns[b, m]
    if side != c.BUY and side != c.SELL:
        return 1
    if kind != c.MARKET and kind != c.LIMIT:
        return 2
    if qty <= 0:
        return 3
    if kind == c.LIMIT and price <= 0:
        return 4
    if ttl < 0:
        return 5
    if qty > 2**40:
        return 6
    if price > 2**40:
        return 7
    if tif < 0 or tif >= c.N_TIF:
        return 8
    if ttl > MAX_DURATION_NS:
        return 9
    if (tif == c.TIF_GTC or tif == c.TIF_IOC or tif == c.TIF_FOK) and ttl != 0:
        return 10
    if kind == c.MARKET and tif == c.TIF_POST_ONLY:
        return 11
    return _PASS


@kernel
def _first_bad_intent(intents, n_instruments, out):
    """``out = (check, b, m)`` of the first failing check of :data:`_CHECKS` (row-major within a check), or check -1.

    One pass over the rows: a row replaces the answer only with a strictly earlier check.
    """
    n_b, n_m = intents.instrument.shape
    out[0] = -1
    best = _PASS
    for b in range(n_b):
        for m in range(n_m):
            check = _row_check(intents, n_instruments, b, m)
            if check < best:
                best = check
                out[0], out[1], out[2] = check, b, m
                if check == 0:
                    return


def validate_intents(intents: OrderIntents, n_lanes: int, max_new: int, n_instruments: int) -> OrderIntents:
    """Checked int64 ``intents``; raises ValueError naming the first bad entry.

    Arrays that already are ``(n_lanes, max_new)`` int64 come back as they are (not
    copied: the exchange copies the checked intents into its own buffers).
    """
    if not isinstance(intents, OrderIntents):
        raise ValueError(f"intents must be an OrderIntents, got {type(intents).__name__}")
    shape = (n_lanes, max_new)
    if intents.tif is None:
        intents = intents._replace(tif=np.full(shape, c.TIF_GTD, dtype=np.int64))
    arr = OrderIntents(*(_as_int_array(name, x, shape) for name, x in zip(OrderIntents._fields, intents)))
    found = np.zeros(3, dtype=np.int64)
    _first_bad_intent(arr, n_instruments, found)
    if found[0] >= 0:
        check, b, m = (int(v) for v in found)
        name, expected = _CHECKS[check]
        raise ValueError(f"intents.{name}[{b}, {m}] must be {expected.format(n=n_instruments)}, got {getattr(arr, name)[b, m]}")
    return arr


def validate_cancels(cancels: Any, n_lanes: int, n_slots: int) -> np.ndarray:
    """A checked ``(B, K)`` bool copy of a cancel mask."""
    arr = np.asarray(cancels)
    if arr.shape != (n_lanes, n_slots):
        raise ValueError(f"cancels must have shape {(n_lanes, n_slots)} (lanes, slots), got {arr.shape}")
    if arr.dtype != np.bool_:
        if arr.dtype.kind not in "iu" or not np.isin(arr, (0, 1)).all():
            raise ValueError(f"cancels must be a boolean mask (or 0/1), got dtype {arr.dtype}")
    return arr.astype(np.bool_)


@dataclass(frozen=True)
class Order:
    """A new order in human units: ``quantity`` in base units, ``price`` in quote units.

    ``tif``: ``"GTD"`` (default: expires after ``ttl_ms``, or the venue's default TTL
    when ``ttl_ms`` is 0), ``"GTC"`` (never expires by time), ``"IOC"`` (what its
    arrival does not fill is cancelled at once), ``"FOK"`` (fills whole on arrival or
    not at all), ``"POST_ONLY"`` (a limit rejected if marketable on arrival; expires as
    a GTD). ``ttl_ms`` must be 0 for GTC, IOC and FOK. Market orders are IOC (see
    :class:`~orderbook.spec.codes.TimeInForce`); a market POST_ONLY is refused.
    """

    venue: str
    symbol: str
    side: str | int
    quantity: Decimal | str | float
    price: Decimal | str | float | None = None
    lane: int = 0
    ttl_ms: float = 0.0
    tif: str | int = "GTD"

    @property
    def kind(self) -> int:
        return c.MARKET if self.price is None else c.LIMIT


def _side_code(side: str | int) -> int:
    if isinstance(side, str):
        names = {"BUY": c.BUY, "SELL": c.SELL}
        if side.upper() not in names:
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        return names[side.upper()]
    if side not in (c.BUY, c.SELL):
        raise ValueError(f"side must be +1 (buy) or -1 (sell), got {side!r}")
    return int(side)


def _whole_units(value: Any, where: str, what: str, unit_name: str, unit: Decimal, units: str, bound: str) -> int:
    """``value`` (a quantity or a price) as a whole, positive number of ``unit`` (lots or ticks), at most 2**40."""
    amount = to_decimal(value, f"{where} {what}")
    n = amount / unit
    if n != n.to_integral_value() or n <= 0:
        raise ValueError(f"{where}: {what} must be a positive multiple of {unit_name} {unit}, got {amount}")
    if n > 2**40:
        raise ValueError(f"{where}: {what} must be at most 2**40 {units} of {unit} ({bound}), got {amount}")
    return int(n)


def _tif_code(tif: str | int) -> int:
    if isinstance(tif, str):
        name = tif.upper().replace("-", "_")
        if name not in c.TimeInForce.__members__:
            raise ValueError(f"tif must be one of {list(c.TimeInForce.__members__)}, got {tif!r}")
        return int(c.TimeInForce[name])
    if isinstance(tif, bool) or tif not in {int(t) for t in c.TimeInForce}:
        raise ValueError(f"tif must be a TimeInForce ({', '.join(f'{t.value} = {t.name}' for t in c.TimeInForce)}), got {tif!r}")
    return int(tif)


def intents_from_orders(config, n_lanes: int, orders: Iterable[Order]) -> OrderIntents:
    """OrderIntents from human-unit orders; refuses off-tick prices and off-lot quantities."""
    intents = empty_intents(n_lanes, config.max_new_orders)
    used = np.zeros(n_lanes, dtype=np.int64)
    for n, order in enumerate(orders):
        where = f"order {n} ({order.venue}:{order.symbol})"
        if not 0 <= order.lane < n_lanes:
            raise ValueError(f"{where}: lane must be in [0, {n_lanes}), got {order.lane}")
        i = config.instrument_index(order.venue, order.symbol)
        inst = config.instruments[i]
        lots = _whole_units(order.quantity, where, "quantity", "lot_size", inst.lot_size, "lots", f"max_qty_lots is {inst.max_qty_lots}")
        ticks = 0
        if order.price is not None:
            ticks = _whole_units(order.price, where, "price", "tick_size", inst.tick_size, "ticks", f"max_price is {inst.max_price}")
        ttl_ms = check_duration_ms(f"{where}: ttl_ms (0 = venue default)", order.ttl_ms, positive=False)
        tif = _tif_code(order.tif)
        if tif in (c.TIF_GTC, c.TIF_IOC, c.TIF_FOK) and ttl_ms != 0:
            raise ValueError(f"{where}: {c.TimeInForce(tif).name} orders take no time to live (GTC never expires by time; IOC and FOK never rest), so ttl_ms must be 0, got {order.ttl_ms}")
        if tif == c.TIF_POST_ONLY and order.price is None:
            raise ValueError(f"{where}: a post-only order is a limit that only rests, so it needs a price, got a market order (price None)")
        m = used[order.lane]
        if m >= config.max_new_orders:
            raise ValueError(f"{where}: lane {order.lane} has more than max_new_orders={config.max_new_orders} orders")
        used[order.lane] += 1
        b = order.lane
        intents.instrument[b, m] = i
        intents.side[b, m] = _side_code(order.side)
        intents.kind[b, m] = order.kind
        intents.price_ticks[b, m] = ticks
        intents.qty_lots[b, m] = int(lots)
        intents.ttl_ns[b, m] = min(int(ttl_ms * 1_000_000), MAX_DURATION_NS)
        intents.tif[b, m] = tif
    return intents
