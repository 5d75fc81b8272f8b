"""The portfolio: free and locked balances in atoms, reservations, exact settlement.

Invariants kept (each asserted by the property tests):
- every balance equals the sum of its ledger rows (deposits included), to the atom:
  every change goes through :func:`move`, which writes the ledger row;
- no free balance goes negative: an order is sent only if its reservation fits;
- the locked balance of (venue, asset) equals the sum of ``reserved_atoms`` of the
  live orders that lock that asset on that venue.

Reservations. A sell locks its remaining base. A buy locks its remaining notional
``R`` at its limit (or collar) price plus the worst fee still to pay,
``ceil((acc + R x max_rate) / 1e8) - fee_paid``, where ``acc`` is the exact fee
accumulator (notional x rate, kept in whole atoms and 1e-8 fractions so it never
overflows). A fill at a price at or better than the limit therefore always costs
no more than the reservation it frees (proof in ``docs``: the release is
``(R - R' - notional) + ceil((acc + R r)/1e8) - ceil((acc' + R' r)/1e8) >= 0``).
Fees are paid in the quote asset and round up to the atom over the order's life.
Every product here (notional, reservation, fee accumulator, balance) fits int64:
the configuration's price range and maximum quantity bound it (proof in
:mod:`orderbook.spec.bounds`).
"""

from __future__ import annotations

import numpy as np

from orderbook.compile.jit import kernel
from orderbook.history.logs import append_ledger
from orderbook.spec import codes as c

E8 = 100_000_000


@kernel(inline=True)
def mul_rate(notional, rate_e8):
    """``notional x rate_e8 / 1e8`` exactly, as (whole atoms, 1e-8 fraction)."""
    hi = notional // E8
    lo = notional % E8
    x = lo * rate_e8
    return hi * rate_e8 + x // E8, x % E8


@kernel(inline=True)
def add_e8(w1, f1, w2, f2):
    f = f1 + f2
    return w1 + w2 + f // E8, f % E8


@kernel(inline=True)
def ceil_e8(whole, frac):
    return whole + (1 if frac > 0 else 0)


@kernel
def max_fee_rate(cc, i):
    return max(cc.maker_fee_e8[i], cc.taker_fee_e8[i])


@kernel
def required_reservation(cc, orders, b, k):
    """What slot ``k`` must lock now, from its price, what is left and fees so far."""
    i = orders.instrument[b, k]
    remaining = orders.qty_lots[b, k] - orders.filled_lots[b, k]
    if remaining <= 0:
        return np.int64(0)
    if orders.side[b, k] == c.SELL:
        return remaining * cc.base_atoms_per_lot[i]
    notional = orders.price_ticks[b, k] * remaining * cc.quote_atoms_per_tick_lot[i]
    w, f = mul_rate(notional, max_fee_rate(cc, i))
    w, f = add_e8(orders.fee_acc_whole[b, k], orders.fee_acc_frac[b, k], w, f)
    return notional + ceil_e8(w, f) - orders.fee_atoms[b, k]


@kernel
def locked_asset(cc, orders, b, k):
    """Index of the asset slot ``k`` locks: quote for buys, base for sells."""
    i = orders.instrument[b, k]
    return cc.inst_quote[i] if orders.side[b, k] == c.BUY else cc.inst_base[i]


@kernel
def move(acct, ledger, lanes, b, t_ns, venue, asset, d_free, d_locked, cause, order_id):
    """Change one balance and write its ledger row; the only way balances change."""
    acct.free_atoms[b, venue, asset] += d_free
    acct.locked_atoms[b, venue, asset] += d_locked
    append_ledger(
        ledger, b, lanes.episode[b], lanes.step[b], t_ns, venue, asset, d_free, d_locked,
        acct.free_atoms[b, venue, asset], acct.locked_atoms[b, venue, asset], cause, order_id,
    )


@kernel
def lock_reservation(cc, orders, acct, ledger, lanes, b, k, t_ns):
    """Lock slot ``k``'s reservation if free funds allow; False when they do not."""
    need = required_reservation(cc, orders, b, k)
    v = cc.inst_venue[orders.instrument[b, k]]
    a = locked_asset(cc, orders, b, k)
    if need > acct.free_atoms[b, v, a]:
        return False
    orders.reserved_atoms[b, k] = need
    if need > 0:
        move(acct, ledger, lanes, b, t_ns, v, a, -need, need, c.CAUSE_LOCK, orders.order_id[b, k])
    return True


@kernel
def release_all(cc, orders, acct, ledger, lanes, b, k, t_ns):
    """Give back everything slot ``k`` still locks (the order reached a terminal status)."""
    r = orders.reserved_atoms[b, k]
    if r > 0:
        v = cc.inst_venue[orders.instrument[b, k]]
        a = locked_asset(cc, orders, b, k)
        move(acct, ledger, lanes, b, t_ns, v, a, r, -r, c.CAUSE_RELEASE, orders.order_id[b, k])
    orders.reserved_atoms[b, k] = 0


@kernel
def settle_fill(cc, orders, acct, ledger, lanes, b, k, t_ns, lots, notional, fee_rate_e8):
    """Settle a fill of ``lots`` for ``notional`` quote atoms; returns the fee paid.

    Updates the order's filled quantities and fee accumulator, frees the part of
    the reservation the fill used, and moves base and quote exactly.
    """
    i = orders.instrument[b, k]
    v = cc.inst_venue[i]
    base, quote = cc.inst_base[i], cc.inst_quote[i]
    oid = orders.order_id[b, k]
    w, f = mul_rate(notional, fee_rate_e8)
    w, f = add_e8(orders.fee_acc_whole[b, k], orders.fee_acc_frac[b, k], w, f)
    fee = ceil_e8(w, f) - orders.fee_atoms[b, k]
    orders.fee_acc_whole[b, k], orders.fee_acc_frac[b, k] = w, f
    orders.fee_atoms[b, k] += fee
    orders.filled_lots[b, k] += lots
    orders.filled_notional_atoms[b, k] += notional
    before = orders.reserved_atoms[b, k]
    after = required_reservation(cc, orders, b, k)
    orders.reserved_atoms[b, k] = after
    base_atoms = lots * cc.base_atoms_per_lot[i]
    if orders.side[b, k] == c.BUY:
        # locked quote pays notional and fee; any excess of the freed reservation returns to free
        move(acct, ledger, lanes, b, t_ns, v, quote, before - after - notional, -(before - after), c.CAUSE_FILL, oid)
        if fee > 0:
            move(acct, ledger, lanes, b, t_ns, v, quote, -fee, 0, c.CAUSE_FEE, oid)
        move(acct, ledger, lanes, b, t_ns, v, base, base_atoms, 0, c.CAUSE_FILL, oid)
    else:
        move(acct, ledger, lanes, b, t_ns, v, base, before - after - base_atoms, -(before - after), c.CAUSE_FILL, oid)
        move(acct, ledger, lanes, b, t_ns, v, quote, notional, 0, c.CAUSE_FILL, oid)
        if fee > 0:
            move(acct, ledger, lanes, b, t_ns, v, quote, -fee, 0, c.CAUSE_FEE, oid)
    return fee


@kernel
def deposit_initial(cc, acct, ledger, lanes, b, t_ns):
    """Empty lane ``b``'s balances and deposit the configured initial ones (ledger rows)."""
    for v in range(acct.free_atoms.shape[1]):
        for a in range(acct.free_atoms.shape[2]):
            acct.free_atoms[b, v, a] = 0
            acct.locked_atoms[b, v, a] = 0
            amount = cc.initial_free_atoms[v, a]
            if amount != 0:
                move(acct, ledger, lanes, b, t_ns, v, a, amount, 0, c.CAUSE_DEPOSIT, 0)


@kernel(inline=True)
def asset_value(cc, bars, b, v, a):
    """Value of one unit of asset ``a`` held on venue ``v`` in the numeraire, from mids."""
    value = 1.0
    for t in range(2):
        i = cc.valuation_inst[v, a, t]
        if i < 0:
            continue
        mid = 0.5 * (bars.bid_ticks[b, i] + bars.ask_ticks[b, i]) * cc.tick_size[i]
        if cc.valuation_power[v, a, t] > 0:
            value *= mid
        else:
            value /= mid
    return value


@kernel
def value_lane(cc, bars, acct, b):
    """Portfolio value of lane ``b`` in the numeraire: free plus locked, all venues."""
    total = 0.0
    for v in range(acct.free_atoms.shape[1]):
        for a in range(acct.free_atoms.shape[2]):
            atoms = acct.free_atoms[b, v, a] + acct.locked_atoms[b, v, a]
            if atoms != 0:
                total += atoms / cc.atoms_per_unit[a] * asset_value(cc, bars, b, v, a)
    return total
