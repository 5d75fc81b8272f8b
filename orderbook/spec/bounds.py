"""Bounds: every integer the core forms fits int64, provably, and times never wrap.

The configuration is checked once (:func:`check_money_bounds`, called by
``ExchangeConfig.compile``); the kernels keep the run-time half (prices clamped
into each instrument's range, one balance check per order, saturating time sums).

Money. Per instrument ``i``: prices lie in ``[p_min, P]`` ticks (``min_price`` and
``max_price``, as venues publish them), an order is at most ``Q = max_qty_lots``,
a tick x lot is ``A >= 1`` quote atoms and a lot ``U >= 1`` base atoms; fee rates
are ``r < 1e8`` per 1e8. ``K`` is the number of order slots of a lane. The
configuration is refused unless

1. ``N = P x Q x A <= NOTIONAL_MAX_ATOMS = 2**61`` (the largest notional of one order);
2. for every (venue ``v``, asset ``a``), ``K x C(v, a) <= CREDIT_MAX_ATOMS = 2**62 - 1``,
   where ``C(v, a)`` is the most one order can credit to ``a`` on ``v``: ``N`` for an
   instrument of ``v`` quoted in ``a`` (a sell), ``Q x U`` for one with base ``a``
   (a buy);
3. every initial balance is at most ``BALANCE_CAP_ATOMS = 2**62``.

Proof that nothing overflows, given 1-3:

- Every price an order can carry is in ``[p_min, P]``: a limit outside the range is
  refused (``PRICE_OUT_OF_RANGE``) before any product is formed; a market order's
  collar is clamped into the range. Every bar price is in the range: synthetic
  prices (drift, the lane's impact) are clamped into it, replayed data outside it
  is refused at load and the lane's impact shift is clamped into it. Fill prices
  come from the bar's range or the order's price (buys never above their price,
  sells never below), so every fill's ``price x lots`` is in
  ``[lots x p_min, lots x P]``.
- A fill's notional is ``px_lots x A <= lots x P x A``; an order's fills sum to at
  most ``Q`` lots, so its filled notional and fee accumulator (``notional x r /
  1e8 < notional``) are at most ``N``, and its reservation (remaining notional at
  its price plus ``ceil((acc + R x r) / 1e8) - paid``) at most ``2N <= 2**62``.
  :func:`orderbook.engine.portfolio.mul_rate` splits the product ``notional x r`` so no
  intermediate exceeds ``notional + 1e16``.
- Temporary impact is at most ``P`` ticks a lot (clamped), so ``px_lots +
  lots x shift <= 2 Q P <= 2N``; permanent impact is clamped into ``[-P, P]`` ticks.
  The minimum-notional check forms ``price x qty x A`` only after the quantity
  (``<= Q``) and price (in range) checks passed, so it is at most ``N``.
- Balances. Let ``total = free + locked`` of (lane, ``v``, ``a``) and ``owed`` the sum,
  over the lane's live orders that credit ``a`` on ``v``, of what their remaining
  quantity may still credit at most (remaining x ``P x A``, or remaining x ``U``).
  Invariant: ``total + owed <= BALANCE_CAP_ATOMS + K x C(v, a) <= 2**63 - 1``.
  It holds after the deposit (3). A new order that credits ``a`` is sent only when
  ``total <= BALANCE_CAP_ATOMS`` (else ``BALANCE_LIMIT``), and at most ``K - 1``
  other orders are live, so ``total + owed <= CAP + (K - 1) C + C``. A fill moves
  at most what it removes from ``owed`` into ``total`` (its price is at most
  ``P``); fees, debits, locks and releases never raise ``total``. So every balance,
  locked amount (``<= total``) and reservation fits int64.
- Quotes: a spread is at most ``max(min_spread_ticks, price)`` (``min_spread_ticks <=
  2**40``, ``spread_bps <= 10,000``), so quotes and mids (``bid + ask``) stay far
  inside int64; the book's depth is at most 100 x the bar volume, and volumes are
  capped at ``MAX_VOLUME_LOTS`` and only meet prices through lots already bounded
  by ``Q``. Valuations and slippage are floats.

Known limit: the statistics' lot counters (``CNT_ORDERED_LOTS``, ``CNT_FILLED_LOTS``)
sum over an episode and are not bounded here; they would need ``2**63 /
max_qty_lots`` orders of the largest size to wrap, and carry no money.

Time. Times are int64 ns. Every duration (time to live, default TTL, ack timeout,
latency draws, step length) is at most ``MAX_DURATION_NS = 2**60`` ns (36.5 years),
every clock at most ``MAX_TIME_NS = NEVER_NS - MAX_DURATION_NS`` (about year 2079
in epoch ns, 110 years from a synthetic start at 0: replayed bar times are checked
at load, a synthetic lane refuses to step past it), so a clock plus one duration is
at most ``NEVER_NS = 2**62``, the time that never comes. The kernels add times with
:func:`sat_add_ns` (saturating at ``NEVER_NS``) all the same, so even a value that
escaped validation can only reach "never", never wrap.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from orderbook.compile.jit import kernel

INT64_MAX = 2**63 - 1
NOTIONAL_MAX_ATOMS = 2**61  # the largest notional of one order (max_price x max_qty_lots)
BALANCE_CAP_ATOMS = 2**62  # a balance above this takes no new order that would credit it
CREDIT_MAX_ATOMS = INT64_MAX - BALANCE_CAP_ATOMS  # slots x the most one order can credit to one balance
MAX_VOLUME_LOTS = 2**53  # a bar's volume (synthetic draws are capped; replay refuses data above, as floats stay exact)

NEVER_NS = np.int64(2**62)  # a time that never comes (lost acks, no cancel, GTC expiry)
MAX_DURATION_NS = 2**60  # every duration: time to live, ack timeout, latency, step length
MAX_TIME_NS = int(NEVER_NS) - MAX_DURATION_NS  # every clock (a lane's market time), 3 x 2**60
NS_PER_MS = 1_000_000
MAX_DURATION_MS = MAX_DURATION_NS / NS_PER_MS


@kernel(inline=True)
def sat_add_ns(t_ns, d_ns):
    """``t_ns + d_ns`` for ``0 <= t_ns <= NEVER_NS`` and ``d_ns >= 0``, saturating at ``NEVER_NS``."""
    if d_ns >= NEVER_NS - t_ns:
        return NEVER_NS
    return t_ns + d_ns


def check_duration_ms(what: str, x: object, *, positive: bool) -> float:
    """``x`` as a finite duration in ms in ``(0, MAX]`` (``positive``) or ``[0, MAX]``; ValueError otherwise."""
    low = "> 0" if positive else ">= 0"
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and (x > 0 if positive else x >= 0) and x <= MAX_DURATION_MS
    if not ok:
        raise ValueError(f"{what} must be a finite duration {low} and <= {MAX_DURATION_MS:.0f} ms (2**60 ns, 36.5 years), got {x!r}")
    return float(x)


def price_range_ticks(name: str, tick_size: Decimal, min_price: Decimal, max_price: Decimal) -> tuple[int, int]:
    """``[p_min, P]`` in ticks: ``ceil(min_price / tick)`` (at least 1) and ``floor(max_price / tick)``."""
    lo = max(1, int((min_price / tick_size).to_integral_value(rounding="ROUND_CEILING")))
    hi = int((max_price / tick_size).to_integral_value(rounding="ROUND_FLOOR"))
    if hi < lo:
        raise ValueError(f"{name}: price range [{min_price}, {max_price}] holds no tick of {tick_size}; expected max_price >= min_price and >= tick_size")
    return lo, hi


def max_notional_atoms(name: str, max_price_ticks: int, max_qty_lots: int, quote_atoms_per_tick_lot: int) -> int:
    """``N = P x Q x A`` of an instrument (exact), refused above :data:`NOTIONAL_MAX_ATOMS`."""
    n = max_price_ticks * max_qty_lots * quote_atoms_per_tick_lot
    if n > NOTIONAL_MAX_ATOMS:
        fit_qty = NOTIONAL_MAX_ATOMS // (max_price_ticks * quote_atoms_per_tick_lot)
        raise ValueError(
            f"{name}: max_price ({max_price_ticks} ticks) x max_qty_lots ({max_qty_lots}) x {quote_atoms_per_tick_lot} quote atoms "
            f"per tick x lot = {n} atoms exceeds the notional bound 2**61 = {NOTIONAL_MAX_ATOMS} of int64 accounting; "
            f"expected max_qty_lots <= {fit_qty}, a lower max_price, or fewer quote decimals"
        )
    return n


def check_money_bounds(names, inst_venue, inst_base, inst_quote, notional, qty_base_atoms, slots: int, shape: tuple[int, int]) -> np.ndarray:
    """``(V, A)`` bound of every balance, ``BALANCE_CAP + K x C(v, a)``; ValueError naming the instrument that breaks rule 2.

    ``notional[i]`` is ``N`` and ``qty_base_atoms[i]`` is ``Q x U`` of instrument ``i`` (Python ints).
    """
    credit = [[0] * shape[1] for _ in range(shape[0])]
    who = [[""] * shape[1] for _ in range(shape[0])]
    for i, name in enumerate(names):
        v = int(inst_venue[i])
        for a, c_max in ((int(inst_quote[i]), notional[i]), (int(inst_base[i]), qty_base_atoms[i])):
            if c_max > credit[v][a]:
                credit[v][a], who[v][a] = c_max, name
    bound = np.zeros(shape, dtype=np.int64)
    for v in range(shape[0]):
        for a in range(shape[1]):
            total = slots * credit[v][a]
            if total > CREDIT_MAX_ATOMS:
                raise ValueError(
                    f"{who[v][a]}: slots ({slots}) x the most one order can credit ({credit[v][a]} atoms) = {total} "
                    f"exceeds 2**63 - 1 - 2**62 = {CREDIT_MAX_ATOMS}, so balances could overflow int64; "
                    f"expected max_qty_lots, max_price or slots lowered by a factor {math.ceil(total / CREDIT_MAX_ATOMS)}"
                )
            bound[v, a] = BALANCE_CAP_ATOMS + total
    return bound
