"""Audit: every invariant of DESIGN.md checked against the live state and the history.

``audit(exchange)`` returns a list of violations (empty when all hold); tests
assert it is empty after every step, users can call it after a run. Each check is
direct, not a broad consistency sum, so a failure names what broke:

- ``ledger``: free and locked balances equal the sum of their ledger rows in the
  lane's current episode (deposits included), to the atom;
- ``free>=0`` and ``locked>=0``;
- ``locked=reserved``: locked equals the sum of reservations of live orders that
  lock that (venue, asset);
- ``filled<=qty`` and ``reserved>=0`` on every slot;
- ``absorbing``: after an order's first terminal status, its only events are
  CANCEL_REJECT rows that keep that status;
- ``one-terminal``: no order has two terminal statuses; an order without a
  terminal status is live in the table;
- ``latest=live``: the latest status of each order in the table, from its
  events, equals the table's status;
- ``balance<=bound``: every balance (free + locked, summed with Python ints) is
  at most its proven bound ``Compiled.balance_bound_atoms`` (:mod:`orderbook.spec.bounds`);
- ``fill=price x qty x atoms``: for a sample of fill rows (up to
  ``FILL_SAMPLE`` rows, evenly spread, the last one always in), recomputed
  exactly with Python ints: the notional is ``price_x_lots x
  quote_atoms_per_tick_lot`` for a whole ``price_x_lots`` (the sum of each
  level's price x lots) within ``lots x [min_price_ticks, max_price_ticks]``,
  and no worse than the order's price (a buy at most ``lots x price``, a sell at
  least); the lots at most ``max_qty_lots``; the fee in ``[0, notional + 1]``.
  A product that wrapped around int64 cannot pass.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from orderbook.engine.lifecycle import LIVE_TABLE, TERMINAL_STATUSES
from orderbook.spec import codes as c

_TERMINAL = [s.name for s in TERMINAL_STATUSES]
FILL_SAMPLE = 2_000


def _balances_vs_ledger(ex, ledger: pl.DataFrame) -> list[str]:
    out = []
    current = pl.DataFrame({"lane": np.arange(ex.n_lanes, dtype=np.int32), "episode": ex.lanes.episode.astype(np.int32)})
    sums = (
        ledger.join(current, on=["lane", "episode"], how="semi")
        .group_by("lane", "venue", "asset")
        .agg(pl.col("delta_free").sum(), pl.col("delta_locked").sum())
    )
    free = np.zeros_like(ex.accounts.free_atoms)
    locked = np.zeros_like(ex.accounts.locked_atoms)
    if sums.height:
        idx = (sums["lane"].to_numpy(), sums["venue"].to_numpy(), sums["asset"].to_numpy())
        free[idx] = sums["delta_free"].to_numpy()
        locked[idx] = sums["delta_locked"].to_numpy()
    for name, live, expect in (("free", ex.accounts.free_atoms, free), ("locked", ex.accounts.locked_atoms, locked)):
        bad = np.argwhere(live != expect)
        if len(bad):
            b, v, a = bad[0]
            out.append(f"ledger: lane {b} venue {v} asset {a} {name} {live[b, v, a]} != ledger sum {expect[b, v, a]}")
    return out


def _locked_vs_reserved(ex) -> list[str]:
    cc, o = ex.compiled, ex.orders
    live = LIVE_TABLE[o.status]
    inst = o.instrument
    asset = np.where(o.side == c.BUY, cc.inst_quote[inst], cc.inst_base[inst])
    venue = cc.inst_venue[inst]
    lanes = np.broadcast_to(np.arange(ex.n_lanes)[:, None], o.status.shape)
    expect = np.zeros_like(ex.accounts.locked_atoms)
    np.add.at(expect, (lanes[live], venue[live], asset[live]), o.reserved_atoms[live])
    bad = np.argwhere(expect != ex.accounts.locked_atoms)
    if len(bad):
        b, v, a = bad[0]
        return [f"locked=reserved: lane {b} venue {v} asset {a} locked {ex.accounts.locked_atoms[b, v, a]} != reserved {expect[b, v, a]}"]
    return []


def _table_checks(ex) -> list[str]:
    o, out = ex.orders, []
    if (ex.accounts.free_atoms < 0).any():
        out.append(f"free>=0: {np.argwhere(ex.accounts.free_atoms < 0)[0].tolist()} is {ex.accounts.free_atoms.min()}")
    if (ex.accounts.locked_atoms < 0).any():
        out.append(f"locked>=0: {np.argwhere(ex.accounts.locked_atoms < 0)[0].tolist()}")
    used = o.status != c.EMPTY
    if (used & (o.filled_lots > o.qty_lots)).any():
        out.append(f"filled<=qty: slot {np.argwhere(used & (o.filled_lots > o.qty_lots))[0].tolist()}")
    if (o.reserved_atoms < 0).any():
        out.append(f"reserved>=0: slot {np.argwhere(o.reserved_atoms < 0)[0].tolist()}")
    return out


def _event_checks(ex, events: pl.DataFrame) -> list[str]:
    out = []
    ev = events.select("seq", "lane", "episode", "order_id", "event", "status").with_columns(
        pl.col("status").cast(pl.String), pl.col("event").cast(pl.String)
    )
    terminal = pl.col("status").is_in(_TERMINAL)
    first_terminal = ev.filter(terminal).group_by("lane", "episode", "order_id").agg(pl.col("seq").min().alias("t_seq"), pl.col("status").first().alias("t_status"), pl.col("status").n_unique().alias("n_terminal"))
    two = first_terminal.filter(pl.col("n_terminal") > 1)
    if two.height:
        out.append(f"one-terminal: {two.row(0, named=True)}")
    after = ev.join(first_terminal, on=["lane", "episode", "order_id"]).filter(
        (pl.col("seq") > pl.col("t_seq")) & ((pl.col("event") != "CANCEL_REJECT") | (pl.col("status") != pl.col("t_status")))
    )
    if after.height:
        out.append(f"absorbing: {after.row(0, named=True)}")
    latest = ev.group_by("lane", "episode", "order_id").agg(pl.col("status").sort_by("seq").last())
    o = ex.orders
    used = np.argwhere(o.order_id > 0)
    table = pl.DataFrame(
        {
            "lane": used[:, 0].astype(np.int32),
            "episode": ex.lanes.episode[used[:, 0]].astype(np.int32),
            "order_id": o.order_id[used[:, 0], used[:, 1]],
            "table_status": [c.Status(s).name for s in o.status[used[:, 0], used[:, 1]]],
        }
    ).filter(pl.col("table_status") != "EMPTY")
    joined = table.join(latest, on=["lane", "episode", "order_id"], how="left")
    mismatch = joined.filter(pl.col("status").is_null() | (pl.col("status") != pl.col("table_status")))
    if mismatch.height:
        out.append(f"latest=live: {mismatch.row(0, named=True)}")
    in_table = table.select("lane", "episode", "order_id")
    current = pl.DataFrame({"lane": np.arange(ex.n_lanes, dtype=np.int32), "episode": ex.lanes.episode.astype(np.int32)})
    open_not_live = (
        latest.join(current, on=["lane", "episode"], how="semi")
        .filter(~pl.col("status").is_in(_TERMINAL))
        .join(in_table, on=["lane", "episode", "order_id"], how="anti")
    )
    if open_not_live.height:
        out.append(f"one-terminal: order not terminal and not live: {open_not_live.row(0, named=True)}")
    return out


def _bound_checks(ex) -> list[str]:
    cc, acct = ex.compiled, ex.accounts
    total = acct.free_atoms.astype(object) + acct.locked_atoms.astype(object)  # Python ints: the sum cannot wrap
    bound = cc.balance_bound_atoms.astype(object)[None]
    bad = np.argwhere((total < 0) | (total > bound))
    if len(bad):
        b, v, a = (int(x) for x in bad[0])
        return [f"balance<=bound: lane {b} venue {v} asset {a} free + locked = {total[b, v, a]} is outside [0, {bound[0, v, a]}]"]
    return []


def _fill_checks(ex, events: pl.DataFrame) -> list[str]:
    cc = ex.compiled
    fills = events.filter(pl.col("fill_lots") != 0).select("seq", "instrument", "side", "price_ticks", "fill_lots", "fill_notional_atoms", "fee_atoms")
    n = fills.height
    if n == 0:
        return []
    rows = np.unique(np.linspace(0, n - 1, min(n, FILL_SAMPLE)).astype(np.int64))
    for seq, i, side, price, lots, notional, fee in fills[rows].iter_rows():
        atoms = int(cc.quote_atoms_per_tick_lot[i])
        lo, hi, max_qty = int(cc.min_price_ticks[i]), int(cc.max_price_ticks[i]), int(cc.max_qty_lots[i])
        px_lots, rest = divmod(notional, atoms)
        worse = px_lots > lots * price if side == "BUY" else px_lots < lots * price
        if rest or not (0 < lots <= max_qty) or not (lots * lo <= px_lots <= lots * hi) or worse or not (0 <= fee <= notional + 1):
            return [
                f"fill=price x qty x atoms: event seq {seq} ({side}, instrument {i}, order price {price} ticks): {lots} lots for "
                f"{notional} atoms is not a whole price x lots within {lots} x [{lo}, {hi}] ticks x {atoms} atoms, no worse than "
                f"the order's price (fee {fee})"
            ]
    return []


def audit(exchange) -> list[str]:
    """Every invariant violation of ``exchange`` now (empty list when all hold)."""
    frames = exchange.history
    events = frames.events_frame()
    ledger = pl.DataFrame(frames.ledger.columns())
    return (
        _table_checks(exchange)
        + _balances_vs_ledger(exchange, ledger)
        + _locked_vs_reserved(exchange)
        + _event_checks(exchange, events)
        + _bound_checks(exchange)
        + _fill_checks(exchange, events)
    )
