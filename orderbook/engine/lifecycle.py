"""The order lifecycle as one transition table: ``(status, edge) -> status``.

The table is data (a ``uint8`` array); kernels look edges up and never encode
transitions in branches. An edge is an :class:`~orderbook.spec.codes.Event`, except that
a fill is split into ``FILL`` (quantity left) and ``FILL_FULL`` (nothing left).

Invariants kept:
- FILLED, CANCELLED, EXPIRED and REJECTED absorb: the only edge out of them is the
  ``CANCEL_REJECT`` self-edge (a cancel that arrives after the order was done).
- Every edge not listed is illegal; :func:`next_status` returns ``INVALID`` and the
  step raises :class:`IllegalTransition` naming lane, order and edge.
- Every status is exactly one of EMPTY, live (:data:`LIVE_STATUSES`) or terminal
  (:data:`TERMINAL_STATUSES`). Code asks "is it live?" through :func:`is_live` (compiled)
  or :data:`LIVE_TABLE` (numpy), never through a numeric range of codes, so a new
  live status is one line here. The narrower sets (may fill, may be cancelled, awaits
  its ack) are read off the table's edges, so they follow it.

Surprising edges are commented where they are listed.
"""

from __future__ import annotations

import numpy as np

from orderbook.compile.jit import kernel
from orderbook.spec import codes as c
from orderbook.spec.codes import Event, Status

INVALID = 255
FILL_FULL = c.N_EVENT  # a fill that leaves nothing to fill
N_EDGES = c.N_EVENT + 1

_EDGES: list[tuple[Status, int, Status]] = [
    # A new order: accepted for sending ...
    (Status.EMPTY, Event.SUBMIT, Status.PENDING),
    # ... or refused before sending (no funds, no slot, venue down, rate limit,
    # rule breach): nothing was locked, the order never reaches PENDING.
    (Status.EMPTY, Event.REJECT, Status.REJECTED),
    (Status.PENDING, Event.ACK, Status.OPEN),
    # broker error, learned at ack time; or a post-only limit marketable on arrival
    (Status.PENDING, Event.REJECT, Status.REJECTED),
    (Status.PENDING, Event.EXPIRE, Status.EXPIRED),  # the ack never came (ACK_TIMEOUT) or ttl passed
    # A cancel may be sent before the ack arrives; the venue then sees both.
    (Status.PENDING, Event.CANCEL_REQUEST, Status.PENDING_CANCEL),
    (Status.PENDING, Event.CANCEL_REJECT, Status.PENDING),  # venue down: cancel refused
    (Status.OPEN, Event.FILL, Status.PARTIAL),
    (Status.OPEN, FILL_FULL, Status.FILLED),
    (Status.OPEN, Event.CANCEL_REQUEST, Status.PENDING_CANCEL),
    (Status.OPEN, Event.CANCEL_REJECT, Status.OPEN),
    (Status.OPEN, Event.EXPIRE, Status.EXPIRED),
    (Status.OPEN, Event.VENUE_CANCEL, Status.CANCELLED),
    (Status.PARTIAL, Event.FILL, Status.PARTIAL),
    (Status.PARTIAL, FILL_FULL, Status.FILLED),
    (Status.PARTIAL, Event.CANCEL_REQUEST, Status.PENDING_CANCEL),
    (Status.PARTIAL, Event.CANCEL_REJECT, Status.PARTIAL),
    (Status.PARTIAL, Event.EXPIRE, Status.EXPIRED),  # filled quantity is kept
    (Status.PARTIAL, Event.VENUE_CANCEL, Status.CANCELLED),
    # The order was acked while its cancel was in flight: still live at the venue.
    (Status.PENDING_CANCEL, Event.ACK, Status.PENDING_CANCEL),
    (Status.PENDING_CANCEL, Event.REJECT, Status.REJECTED),  # as from PENDING: broker error or post-only
    # A fill gets there before the cancel: a partial fill keeps the cancel in
    # flight; a full fill wins the race and the cancel is rejected as too late.
    (Status.PENDING_CANCEL, Event.FILL, Status.PENDING_CANCEL),
    (Status.PENDING_CANCEL, FILL_FULL, Status.FILLED),
    (Status.PENDING_CANCEL, Event.CANCEL_ACK, Status.CANCELLED),
    (Status.PENDING_CANCEL, Event.EXPIRE, Status.EXPIRED),  # ttl passed before the cancel landed
    (Status.PENDING_CANCEL, Event.VENUE_CANCEL, Status.CANCELLED),
    # Time in force and price protection, decided in the arrival step (orderbook.engine.tif):
    # what an IOC, an FOK or a market order may not rest is cancelled at once, in the
    # step it arrived, whatever it filled (OPEN: nothing, PARTIAL: the filled part is
    # kept), and also when the user's own cancel is still in flight (PENDING_CANCEL).
    # Self-trade prevention (orderbook.engine.stp) cancels along the same edges at an
    # order's arrival: the arriving order just acked, or the lane's resting ones it crosses.
    (Status.OPEN, Event.TIF_CANCEL, Status.CANCELLED),
    (Status.PARTIAL, Event.TIF_CANCEL, Status.CANCELLED),
    (Status.PENDING_CANCEL, Event.TIF_CANCEL, Status.CANCELLED),
    # Cancels that arrive after the order is done: recorded, status unchanged.
    (Status.FILLED, Event.CANCEL_REJECT, Status.FILLED),
    (Status.CANCELLED, Event.CANCEL_REJECT, Status.CANCELLED),
    (Status.EXPIRED, Event.CANCEL_REJECT, Status.EXPIRED),
    (Status.REJECTED, Event.CANCEL_REJECT, Status.REJECTED),
]


def _build_table() -> np.ndarray:
    table = np.full((c.N_STATUS, N_EDGES), INVALID, dtype=np.uint8)
    for status, edge, target in _EDGES:
        if table[int(status), int(edge)] != INVALID:
            raise AssertionError(f"duplicate edge {Status(status).name} x {edge}")
        table[int(status), int(edge)] = int(target)
    table.setflags(write=False)
    return table


TRANSITIONS: np.ndarray = _build_table()  # (N_STATUS, N_EDGES) uint8


# A slot that holds an order the venue may still act on.
LIVE_STATUSES = frozenset({Status.PENDING, Status.OPEN, Status.PARTIAL, Status.PENDING_CANCEL})
# Done: absorbing statuses (only the late-cancel self-edge leaves them).
TERMINAL_STATUSES = frozenset({Status.FILLED, Status.CANCELLED, Status.EXPIRED, Status.REJECTED})


def _with_edge(edge: int) -> frozenset[Status]:
    return frozenset(Status(s) for s in range(c.N_STATUS) if TRANSITIONS[s, edge] != INVALID)


# Statuses an edge leaves from, read off the table (each is a subset of LIVE_STATUSES).
FILLABLE_STATUSES = _with_edge(Event.FILL)  # acknowledged at the venue: OPEN, PARTIAL, PENDING_CANCEL
CANCELLABLE_STATUSES = _with_edge(Event.CANCEL_REQUEST)  # live, no cancel in flight: PENDING, OPEN, PARTIAL
AWAITING_ACK_STATUSES = _with_edge(Event.ACK)  # sent, maybe not acknowledged yet: PENDING, PENDING_CANCEL

LIVE_CODES: tuple[int, ...] = tuple(sorted(int(s) for s in LIVE_STATUSES))  # ascending, for loops over statuses


def _bits(statuses: frozenset[Status]) -> int:
    return sum(1 << int(s) for s in statuses)


def _table(statuses: frozenset[Status]) -> np.ndarray:
    table = np.zeros(c.N_STATUS, dtype=np.bool_)
    table[[int(s) for s in statuses]] = True
    table.setflags(write=False)
    return table


# Bit s set iff status s is in the set: one shift and one and in a kernel (numba
# freezes the global as a constant). Status codes are < 64 (checked by the tests).
LIVE_BITS = _bits(LIVE_STATUSES)
FILLABLE_BITS = _bits(FILLABLE_STATUSES)
CANCELLABLE_BITS = _bits(CANCELLABLE_STATUSES)
AWAITING_ACK_BITS = _bits(AWAITING_ACK_STATUSES)

# ``LIVE_TABLE[status]``: the same sets for numpy arrays of statuses, ``(N_STATUS,)`` bool.
LIVE_TABLE: np.ndarray = _table(LIVE_STATUSES)
FILLABLE_TABLE: np.ndarray = _table(FILLABLE_STATUSES)
CANCELLABLE_TABLE: np.ndarray = _table(CANCELLABLE_STATUSES)


@kernel(inline=True)
def is_live(status):
    """Whether ``status`` is in :data:`LIVE_STATUSES`."""
    return (LIVE_BITS >> status) & 1 != 0


@kernel(inline=True)
def is_fillable(status):
    """Whether ``status`` is in :data:`FILLABLE_STATUSES` (acknowledged, may fill)."""
    return (FILLABLE_BITS >> status) & 1 != 0


@kernel(inline=True)
def is_cancellable(status):
    """Whether ``status`` is in :data:`CANCELLABLE_STATUSES` (live, no cancel in flight)."""
    return (CANCELLABLE_BITS >> status) & 1 != 0


@kernel(inline=True)
def is_awaiting_ack(status):
    """Whether ``status`` is in :data:`AWAITING_ACK_STATUSES` (an ack may still arrive)."""
    return (AWAITING_ACK_BITS >> status) & 1 != 0


def edge_name(edge: int) -> str:
    """Human name of an edge code (an Event name, or FILL_FULL)."""
    return "FILL_FULL" if edge == FILL_FULL else Event(edge).name


def next_status(status: int, edge: int) -> int:
    """Target of ``edge`` from ``status``; ``INVALID`` when the edge is illegal."""
    return int(TRANSITIONS[status, edge])


def legal_edges() -> list[tuple[Status, str, Status]]:
    """Every legal edge as ``(from, edge name, to)``, for docs and tests."""
    return [(Status(s), edge_name(int(e)), Status(t)) for s, e, t in _EDGES]


class IllegalTransition(RuntimeError):
    """An edge the table does not allow: always a bug in the core, never bad input."""

    def __init__(self, lane: int, order_id: int, status: int, edge: int):
        self.lane, self.order_id, self.status, self.edge = lane, order_id, status, edge
        super().__init__(
            f"illegal transition in lane {lane}, order {order_id}: "
            f"{Status(status).name} --{edge_name(edge)}--> (no such edge)"
        )
