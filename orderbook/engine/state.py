"""Mutable state: structs of arrays, batch first. Shapes in the field comments.

``B`` lanes, ``K`` order slots per lane, ``I`` instruments, ``V`` venues, ``A``
assets, ``L`` book levels. State is plain data; kernels in :mod:`orderbook.engine.step`
and :mod:`orderbook.market.synthetic` change it, nothing else does.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from orderbook.spec import codes as c
from orderbook.spec.bounds import NEVER_NS  # noqa: F401  (a time that never comes: lost acks, no cancel, GTC)


class Orders(NamedTuple):
    """The live order table: one row per slot; terminal rows stay until the slot is reused."""

    order_id: np.ndarray  # (B, K) int64, 0 = never used
    instrument: np.ndarray  # (B, K) int64
    side: np.ndarray  # (B, K) int8 Side
    kind: np.ndarray  # (B, K) uint8 OrderKind
    tif: np.ndarray  # (B, K) uint8 TimeInForce
    status: np.ndarray  # (B, K) uint8 Status
    reason: np.ndarray  # (B, K) uint8 Reason of the last rejection/cancel/expiry
    price_ticks: np.ndarray  # (B, K) int64 limit price, or the collar of a market order
    qty_lots: np.ndarray  # (B, K) int64
    filled_lots: np.ndarray  # (B, K) int64
    filled_notional_atoms: np.ndarray  # (B, K) int64 quote atoms
    fee_atoms: np.ndarray  # (B, K) int64 quote atoms paid so far
    fee_acc_whole: np.ndarray  # (B, K) int64 exact fee accumulator: whole atoms ...
    fee_acc_frac: np.ndarray  # (B, K) int64 ... and 1e-8 fractions of an atom
    reserved_atoms: np.ndarray  # (B, K) int64 locked for this order (quote for buys, base for sells)
    submit_ns: np.ndarray  # (B, K) int64
    ack_ns: np.ndarray  # (B, K) int64 when the ack arrives (NEVER_NS if lost)
    expiry_ns: np.ndarray  # (B, K) int64 submit + time to live (saturating), NEVER_NS for GTC
    cancel_ack_ns: np.ndarray  # (B, K) int64 when the cancel lands (NEVER_NS if none)
    decision_mid_x2: np.ndarray  # (B, K) int64 bid + ask (half ticks) when the order was decided
    arrival_mid_x2: np.ndarray  # (B, K) int64 bid + ask when the order reached the venue
    queue_ahead_lots: np.ndarray  # (B, K) int64 volume that trades before this order's turn
    acked_step: np.ndarray  # (B, K) int64 step in which the ack arrived (-1 before)
    last_make_ns: np.ndarray  # (B, K) int64 path time of this order's last maker fill (0 before): a lane's queue at one price
    history_row: np.ndarray  # (B, K) int64 the order's row in the history's order log, counted across clears (orderbook.history.logs)


class Lanes(NamedTuple):
    """Per-lane clocks, seeds and venue status."""

    market_seed: np.ndarray  # (B,) uint64
    fault_seed: np.ndarray  # (B,) uint64
    episode: np.ndarray  # (B,) int64 episodes started in this lane (history key, never restarts)
    rng_episode: np.ndarray  # (B,) int64 episodes since the lane was last seeded (randomness key)
    step: np.ndarray  # (B,) int64 steps taken in this episode
    time_ns: np.ndarray  # (B,) int64 market time at the start of the next step
    next_order_id: np.ndarray  # (B,) int64
    outage_steps_left: np.ndarray  # (B, V) int64, 0 = venue up
    error_burst: np.ndarray  # (B, V) bool the venue's broker errors are in a burst this step
    sent_this_step: np.ndarray  # (B, V) int64 orders sent this step (rate limit)
    active: np.ndarray  # (B,) bool lanes that take this step (others wait, e.g. for an autoreset)


class Bars(NamedTuple):
    """The market as the lane sees it: the bar of this step and the quotes around it."""

    ref_bid_ticks: np.ndarray  # (B, I) int64 quotes when the step began (decision prices)
    ref_ask_ticks: np.ndarray  # (B, I) int64
    open_ticks: np.ndarray  # (B, I) int64 the bar traded during the step
    high_ticks: np.ndarray  # (B, I) int64
    low_ticks: np.ndarray  # (B, I) int64
    close_ticks: np.ndarray  # (B, I) int64
    volume_lots: np.ndarray  # (B, I) int64
    bid_ticks: np.ndarray  # (B, I) int64 quotes at the bar's close
    ask_ticks: np.ndarray  # (B, I) int64
    impact_ticks: np.ndarray  # (B, I) float64 the lane's accumulated permanent impact
    depth_used_lots: np.ndarray  # (B, I, 2, L) int64 scratch: depth taken this step, by the side it was taken from (book.side_of_depth)
    volume_used_lots: np.ndarray  # (B, I) int64 scratch: bar volume taken by limit fills this step
    flow_lots: np.ndarray  # (B, I) int64 scratch: market flow this step (temporary impact)
    depth_used_ns: np.ndarray  # (B, I) int64 scratch: when depth_used_lots last decayed (resilience, orderbook.engine.queues)
    point_used_lots: np.ndarray  # (B, I, N + 1) int64 scratch: volume of each path point the lane's limits took this step
    path_ticks: np.ndarray  # (B, I, N + 1) int64 the path inside the bar: N = path_points intervals (orderbook.market.path)
    path_sigma_ticks: np.ndarray  # (B, I) float64 sd of the path's Brownian part over the bar (refines it between points)
    path_low_ticks: np.ndarray  # (B, I, N + 1) int64 the continuous path's minimum in the interval ending at each point (0: point 0)
    path_high_ticks: np.ndarray  # (B, I, N + 1) int64 its maximum there (orderbook.market.path.interval_extremes)
    typical_volume_lots: np.ndarray  # (B, I) float64 running typical bar volume of the episode (depth of quiet bars)


class Accounts(NamedTuple):
    """Balances per lane, venue and asset, in atoms."""

    free_atoms: np.ndarray  # (B, V, A) int64
    locked_atoms: np.ndarray  # (B, V, A) int64
    value_numeraire: np.ndarray  # (B,) float64 free + locked valued at the latest mids


# Online statistics: Welford (count, mean, M2) per lane for each of these.
STAT_SLIPPAGE_ARRIVAL_BPS = 0
STAT_SLIPPAGE_DECISION_BPS = 1
STAT_ACK_LATENCY_MS = 2
STAT_TIME_TO_FILL_MS = 3
STAT_NAMES = ("slippage_arrival_bps", "slippage_decision_bps", "ack_latency_ms", "time_to_fill_ms")

# Counters per lane.
CNT_ORDERS = 0
CNT_FILLS = 1
CNT_FILLED_ORDERS = 2
CNT_EXPIRED = 3
CNT_CANCELLED = 4
CNT_CANCEL_LOST_RACE = 5
CNT_VENUE_CANCELS = 6
CNT_FILLED_LOTS = 7
CNT_ORDERED_LOTS = 8
COUNTER_NAMES = (
    "orders",
    "fills",
    "filled_orders",
    "expired",
    "cancelled",
    "cancel_lost_race",
    "venue_cancels",
    "filled_lots",
    "ordered_lots",
)


class Stats(NamedTuple):
    """Online execution statistics of the current episode, per lane."""

    welford: np.ndarray  # (B, S, 3) float64: count, mean, M2 of STAT_NAMES
    counters: np.ndarray  # (B, C) int64 COUNTER_NAMES
    rejects_by_reason: np.ndarray  # (B, N_REASON) int64


def new_orders(n_lanes: int, n_slots: int) -> Orders:
    shape = (n_lanes, n_slots)
    cols = {}
    for name, typ in Orders.__annotations__.items():
        del typ
        cols[name] = np.zeros(shape, dtype=np.int64)
    cols["side"] = np.zeros(shape, dtype=np.int8)
    for name in ("kind", "tif", "status", "reason"):
        cols[name] = np.zeros(shape, dtype=np.uint8)
    return Orders(**cols)


def new_lanes(n_lanes: int, n_venues: int) -> Lanes:
    return Lanes(
        market_seed=np.zeros(n_lanes, dtype=np.uint64),
        fault_seed=np.zeros(n_lanes, dtype=np.uint64),
        episode=np.full(n_lanes, -1, dtype=np.int64),
        rng_episode=np.zeros(n_lanes, dtype=np.int64),
        step=np.zeros(n_lanes, dtype=np.int64),
        time_ns=np.zeros(n_lanes, dtype=np.int64),
        next_order_id=np.ones(n_lanes, dtype=np.int64),
        outage_steps_left=np.zeros((n_lanes, n_venues), dtype=np.int64),
        error_burst=np.zeros((n_lanes, n_venues), dtype=np.bool_),
        sent_this_step=np.zeros((n_lanes, n_venues), dtype=np.int64),
        active=np.ones(n_lanes, dtype=np.bool_),
    )


def new_bars(n_lanes: int, n_instruments: int, n_levels: int, n_path_points: int) -> Bars:
    shape = (n_lanes, n_instruments)
    cols = {name: np.zeros(shape, dtype=np.int64) for name in Bars._fields}
    cols["impact_ticks"] = np.zeros(shape, dtype=np.float64)
    cols["path_ticks"] = np.zeros(shape + (n_path_points + 1,), dtype=np.int64)
    cols["path_sigma_ticks"] = np.zeros(shape, dtype=np.float64)
    cols["path_low_ticks"] = np.zeros(shape + (n_path_points + 1,), dtype=np.int64)
    cols["path_high_ticks"] = np.zeros(shape + (n_path_points + 1,), dtype=np.int64)
    cols["typical_volume_lots"] = np.zeros(shape, dtype=np.float64)
    cols["depth_used_lots"] = np.zeros(shape + (2, n_levels), dtype=np.int64)
    cols["point_used_lots"] = np.zeros(shape + (n_path_points + 1,), dtype=np.int64)
    return Bars(**cols)


def new_accounts(n_lanes: int, n_venues: int, n_assets: int) -> Accounts:
    shape = (n_lanes, n_venues, n_assets)
    return Accounts(np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64), np.zeros(n_lanes))


def new_stats(n_lanes: int) -> Stats:
    return Stats(
        welford=np.zeros((n_lanes, len(STAT_NAMES), 3)),
        counters=np.zeros((n_lanes, len(COUNTER_NAMES)), dtype=np.int64),
        rejects_by_reason=np.zeros((n_lanes, c.N_REASON), dtype=np.int64),
    )


def copy_state(state: tuple) -> tuple:
    """A deep copy of a NamedTuple of arrays (for snapshots in tests and rollbacks)."""
    return type(state)(*(np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in state))
