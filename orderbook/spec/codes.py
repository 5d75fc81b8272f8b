"""Integer codes of the order system: sides, kinds, times in force, statuses, events, reasons.

Every code is a small integer stored in a ``uint8``/``int8`` column of the order
table and of the history. The enums here are the single source of those numbers;
kernels import the plain ``int`` constants below them (numba freezes module-level
ints as compile-time constants).

Invariant kept: the numbers never change meaning within a history schema version
(``HISTORY_SCHEMA_VERSION`` in :mod:`orderbook.history.logs`); new codes are appended.
"""

from __future__ import annotations

from enum import IntEnum


class Side(IntEnum):
    """Direction of an order; the sign multiplies quantities into position changes."""

    BUY = 1
    SELL = -1


class OrderKind(IntEnum):
    """MARKET walks the book up to its price-protection band, never rests; LIMIT rests at its price."""

    MARKET = 0
    LIMIT = 1


class Status(IntEnum):
    """Status of an order slot. EMPTY is a slot that never held an order."""

    EMPTY = 0
    PENDING = 1
    OPEN = 2
    PARTIAL = 3
    PENDING_CANCEL = 4
    FILLED = 5
    CANCELLED = 6
    EXPIRED = 7
    REJECTED = 8


class Event(IntEnum):
    """What happened to an order; each event row records one of these."""

    SUBMIT = 0  # order accepted for sending (-> PENDING) or refused before sending (-> REJECTED)
    ACK = 1  # venue acknowledged: the order is live
    REJECT = 2  # venue or broker refused the order after it was sent
    FILL = 3  # a (partial) fill
    CANCEL_REQUEST = 4  # the user asked to cancel
    CANCEL_ACK = 5  # the venue confirmed the cancel
    CANCEL_REJECT = 6  # a cancel that could not be done (status unchanged)
    EXPIRE = 7  # time to live passed, or the ack never came
    VENUE_CANCEL = 8  # the venue cancelled a resting order on its own
    # the venue cancelled at once what the order's time in force or price protection does not let rest:
    # an IOC's unfilled remainder, an FOK it could not fill whole, a market order's part beyond its band;
    # and self-trade prevention's cancels at an order's arrival (reason SELF_TRADE)
    TIF_CANCEL = 9


class Reason(IntEnum):
    """Why an order was rejected, cancelled or expired (NONE for other events)."""

    NONE = 0
    INSUFFICIENT_FUNDS = 1
    BAD_TICK = 2  # limit price outside the venue's price band around the mid
    BAD_LOT = 3  # quantity above the instrument's maximum order size
    BELOW_MIN_NOTIONAL = 4
    NO_FREE_SLOT = 5
    RATE_LIMITED = 6
    VENUE_DOWN = 7
    BROKER_ERROR = 8
    TIMEOUT = 9  # time to live passed
    ACK_TIMEOUT = 10  # the acknowledgement never came
    CANCEL_TOO_LATE = 11  # the order was already done when the cancel arrived
    UNSOLICITED = 12  # the venue cancelled a resting order on its own
    USER_CANCEL = 13  # the cancel the user asked for
    PRICE_OUT_OF_RANGE = 14  # limit price outside the instrument's [min_price, max_price]
    BALANCE_LIMIT = 15  # the balance the order would credit is at the accounting bound (orderbook.spec.bounds)
    IOC_REMAINDER = 16  # unfilled remainder of an immediate-or-cancel order (market orders are IOC)
    PRICE_PROTECTION = 17  # the part of a market order the book only offers beyond its protection band
    POST_ONLY_WOULD_TAKE = 18  # a post-only limit that was marketable on arrival
    FOK_NOT_FILLABLE = 19  # a fill-or-kill order the book could not fill whole on arrival
    SELF_TRADE = 20  # self-trade prevention: the order would have traded with one of the lane's own (orderbook.engine.stp)


class TimeInForce(IntEnum):
    """How long an order may rest; one arm per rule, decided where the order is written.

    GTD (0, the default of every intent row): good till its time to live, the order's
    own ``ttl_ns`` or, when that is 0, the venue's ``default_ttl_ms`` (the order
    system's rule that drops lingering orders). GTC: good till cancelled, never
    expires by time (its ``ttl_ns`` must be 0). IOC: immediate or cancel, whatever
    the taker phase at its arrival does not fill is cancelled at once
    (``IOC_REMAINDER``). FOK: fill or kill, fills whole at its arrival or is cancelled
    whole, nothing filled (``FOK_NOT_FILLABLE``). IOC and FOK never rest (``ttl_ns``
    must be 0). POST_ONLY: a limit that only rests as a maker, rejected on arrival if
    it is marketable there (``POST_ONLY_WOULD_TAKE``); it expires as a GTD does.

    Market orders are IOC whatever their ``tif`` (GTD, GTC or IOC): they never rest
    past their arrival step; a market FOK is all or nothing; a market POST_ONLY is
    refused at validation.
    """

    GTD = 0
    GTC = 1
    IOC = 2
    FOK = 3
    POST_ONLY = 4


class Liquidity(IntEnum):
    """Role of a fill: MAKER rested in the book, TAKER crossed the spread."""

    NONE = 0
    MAKER = 1
    TAKER = 2


class LedgerCause(IntEnum):
    """Why a balance changed; every ledger row carries one."""

    DEPOSIT = 0  # initial balance at episode start
    LOCK = 1  # reservation for a new order (free -> locked)
    RELEASE = 2  # reservation given back (locked -> free)
    FILL = 3  # settlement of a fill (locked or free -> the counter asset)
    FEE = 4  # fee paid on a fill


# Plain ints for numba kernels (IntEnum members are not numba constants).
BUY = int(Side.BUY)
SELL = int(Side.SELL)
MARKET = int(OrderKind.MARKET)
LIMIT = int(OrderKind.LIMIT)

EMPTY = int(Status.EMPTY)
PENDING = int(Status.PENDING)
OPEN = int(Status.OPEN)
PARTIAL = int(Status.PARTIAL)
PENDING_CANCEL = int(Status.PENDING_CANCEL)
FILLED = int(Status.FILLED)
CANCELLED = int(Status.CANCELLED)
EXPIRED = int(Status.EXPIRED)
REJECTED = int(Status.REJECTED)
N_STATUS = len(Status)

EV_SUBMIT = int(Event.SUBMIT)
EV_ACK = int(Event.ACK)
EV_REJECT = int(Event.REJECT)
EV_FILL = int(Event.FILL)
EV_CANCEL_REQUEST = int(Event.CANCEL_REQUEST)
EV_CANCEL_ACK = int(Event.CANCEL_ACK)
EV_CANCEL_REJECT = int(Event.CANCEL_REJECT)
EV_EXPIRE = int(Event.EXPIRE)
EV_VENUE_CANCEL = int(Event.VENUE_CANCEL)
EV_TIF_CANCEL = int(Event.TIF_CANCEL)
N_EVENT = len(Event)

R_NONE = int(Reason.NONE)
R_INSUFFICIENT_FUNDS = int(Reason.INSUFFICIENT_FUNDS)
R_BAD_TICK = int(Reason.BAD_TICK)
R_BAD_LOT = int(Reason.BAD_LOT)
R_BELOW_MIN_NOTIONAL = int(Reason.BELOW_MIN_NOTIONAL)
R_NO_FREE_SLOT = int(Reason.NO_FREE_SLOT)
R_RATE_LIMITED = int(Reason.RATE_LIMITED)
R_VENUE_DOWN = int(Reason.VENUE_DOWN)
R_BROKER_ERROR = int(Reason.BROKER_ERROR)
R_TIMEOUT = int(Reason.TIMEOUT)
R_ACK_TIMEOUT = int(Reason.ACK_TIMEOUT)
R_CANCEL_TOO_LATE = int(Reason.CANCEL_TOO_LATE)
R_UNSOLICITED = int(Reason.UNSOLICITED)
R_USER_CANCEL = int(Reason.USER_CANCEL)
R_PRICE_OUT_OF_RANGE = int(Reason.PRICE_OUT_OF_RANGE)
R_BALANCE_LIMIT = int(Reason.BALANCE_LIMIT)
R_IOC_REMAINDER = int(Reason.IOC_REMAINDER)
R_PRICE_PROTECTION = int(Reason.PRICE_PROTECTION)
R_POST_ONLY_WOULD_TAKE = int(Reason.POST_ONLY_WOULD_TAKE)
R_FOK_NOT_FILLABLE = int(Reason.FOK_NOT_FILLABLE)
R_SELF_TRADE = int(Reason.SELF_TRADE)
N_REASON = len(Reason)

TIF_GTD = int(TimeInForce.GTD)
TIF_GTC = int(TimeInForce.GTC)
TIF_IOC = int(TimeInForce.IOC)
TIF_FOK = int(TimeInForce.FOK)
TIF_POST_ONLY = int(TimeInForce.POST_ONLY)
N_TIF = len(TimeInForce)

LIQ_NONE = int(Liquidity.NONE)
LIQ_MAKER = int(Liquidity.MAKER)
LIQ_TAKER = int(Liquidity.TAKER)

CAUSE_DEPOSIT = int(LedgerCause.DEPOSIT)
CAUSE_LOCK = int(LedgerCause.LOCK)
CAUSE_RELEASE = int(LedgerCause.RELEASE)
CAUSE_FILL = int(LedgerCause.FILL)
CAUSE_FEE = int(LedgerCause.FEE)
