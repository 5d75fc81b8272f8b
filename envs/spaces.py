"""Action spaces: the MultiDiscrete layout, its validation, and exact prices and sizes.

An action is a flat ``MultiDiscrete`` vector: ``n_orders`` groups of child-order
choices (each group a few dimensions, e.g. venue, aggressiveness, size) followed
by one cancel choice. Discrete choices map to exact integer ticks and lots by
rules written here once (no rounding ambiguity), and MaskablePPO can mask them.

Aggressiveness levels (``level``), the same in every env; each is a price and a
time in force (:class:`~orderbook.spec.codes.TimeInForce`):

====  =============================================================
0     no order
1     market order: walks the book up to the venue's protection
      band; what it does not fill in its arrival step is cancelled
2     limit at the far touch (buy at the ask, sell at the bid), GTD
3     limit at the near touch (buy at the bid, sell at the ask), GTD
4     limit at the far touch, IOC: takes what the book shows up to
      that price on arrival, the rest is cancelled at once
5     limit at the near touch, post-only: rests as a maker, never
      takes (rejected if the book moved through it on arrival)
6+j   limit ``passive_bps[j]`` behind the near touch, rounded away
      from the touch to a whole tick, at least one tick, GTD
====  =============================================================

GTD orders live for the env's ``ttl_ms`` (0: the venue's default TTL).

Cancel choices: 0 none, 1 the oldest cancellable order, 2 every cancellable order
(cancellable: PENDING, OPEN or PARTIAL on a venue that is not known to be down).

Reservations are computed exactly as the core locks them
(:func:`orderbook.engine.portfolio.required_reservation`): a buy locks its notional at
its limit (or collar) price plus the worst fee rounded up to the atom; a sell
locks its base.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from gymnasium import spaces
from gymnasium.error import InvalidAction

from orderbook.engine.lifecycle import CANCELLABLE_TABLE
from orderbook.engine.tif import band_prices_ticks
from orderbook.spec import codes as c

LEVEL_NONE, LEVEL_MARKET, LEVEL_FAR, LEVEL_NEAR, LEVEL_IOC_FAR, LEVEL_POST_NEAR, LEVEL_PASSIVE0 = 0, 1, 2, 3, 4, 5, 6
CANCEL_NONE, CANCEL_OLDEST, CANCEL_ALL = 0, 1, 2
N_CANCEL = 3
E8 = 100_000_000


def level_names(passive_bps: tuple[float, ...]) -> list[str]:
    return ["none", "market", "limit@far", "limit@near", "ioc@far", "post-only@near"] + [f"limit@near-{d:g}bps" for d in passive_bps]


def level_tif(level: np.ndarray) -> np.ndarray:
    """The time in force a level sends: IOC at ``LEVEL_IOC_FAR``, POST_ONLY at ``LEVEL_POST_NEAR``, else GTD
    (a market order is IOC whatever it carries)."""
    return np.where(level == LEVEL_IOC_FAR, c.TIF_IOC, np.where(level == LEVEL_POST_NEAR, c.TIF_POST_ONLY, c.TIF_GTD)).astype(np.int64)


@dataclass(frozen=True)
class ActionLayout:
    """``n_orders`` groups of ``dims`` (name, choices), then the cancel choice."""

    dims: tuple[tuple[str, int], ...]
    n_orders: int

    @property
    def nvec(self) -> np.ndarray:
        per = [n for _, n in self.dims]
        return np.asarray(per * self.n_orders + [N_CANCEL], dtype=np.int64)

    @cached_property
    def _nvec(self) -> np.ndarray:  # validate's copy, never handed out
        return self.nvec

    @property
    def names(self) -> list[str]:
        out = [f"order{g}.{name}" for g in range(self.n_orders) for name, _ in self.dims]
        return out + ["cancel"]

    def space(self) -> spaces.MultiDiscrete:
        return spaces.MultiDiscrete(self.nvec, dtype=np.int64)

    def validate(self, action: object, n_lanes: int | None) -> np.ndarray:
        """A checked ``(B, n)`` int64 copy of ``action``; raises InvalidAction saying what was expected.

        ``n_lanes=None`` is the single env: the action has shape ``(n,)``.
        """
        nvec = self._nvec
        shape = (len(nvec),) if n_lanes is None else (n_lanes, len(nvec))
        if type(action) is np.ndarray and action.dtype == np.int64 and action.shape == shape:  # the common case, fast
            if ((action >= 0) & (action < nvec)).all():
                return action.reshape(-1, len(nvec)).copy()
        expected = f"an integer array of shape {shape} with entries in [0, nvec) for nvec={nvec.tolist()}"
        if action is None:
            raise InvalidAction(f"action must be {expected}, got None")
        try:
            arr = np.asarray(action)
        except Exception as exc:  # ragged sequences and the like
            raise InvalidAction(f"action must be {expected}, got {action!r}") from exc
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                raise InvalidAction(f"action must be {expected}, got non-finite values (NaN or inf): {arr!r}")
            raise InvalidAction(f"action must be {expected}, got dtype {arr.dtype}: {arr!r}")
        if arr.dtype.kind not in "iu":
            raise InvalidAction(f"action must be {expected}, got dtype {arr.dtype}: {arr!r}")
        if arr.shape != shape:
            raise InvalidAction(f"action must be {expected}, got shape {arr.shape}")
        bad = (arr < 0) | (arr >= nvec)
        if bad.any():
            idx = tuple(int(j) for j in np.argwhere(bad)[0])
            raise InvalidAction(f"action{list(idx)} ({self.names[idx[-1]]}) must be in [0, {nvec[idx[-1]]}), got {arr[idx]}")
        return arr.astype(np.int64).reshape(-1, len(nvec))

    def group(self, actions: np.ndarray, g: int) -> dict[str, np.ndarray]:
        """The choices of order group ``g`` as ``{dim name: (B,) int64}``."""
        start = g * len(self.dims)
        return {name: actions[:, start + j] for j, (name, _) in enumerate(self.dims)}

    def cancel(self, actions: np.ndarray) -> np.ndarray:
        return actions[:, -1]

    def flat_mask(self, dim_masks: dict[str, np.ndarray], cancel_mask: np.ndarray) -> np.ndarray:
        """The flat ``(B, sum(nvec))`` mask MaskablePPO expects; the same mask for every order group."""
        group = np.concatenate([dim_masks[name] for name, _ in self.dims], axis=1)
        return np.concatenate([group] * self.n_orders + [cancel_mask], axis=1)


def at(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``x[b, idx[b, ...]]`` for a ``(B, n)`` array and ``(B,)`` or ``(B, m)`` indices."""
    lanes = np.arange(x.shape[0]).reshape((-1,) + (1,) * (idx.ndim - 1))
    return x[lanes, idx]


def limit_price_ticks(level: np.ndarray, side: np.ndarray, bid: np.ndarray, ask: np.ndarray, passive_bps: np.ndarray) -> np.ndarray:
    """Limit price in ticks of ``level`` (>= LEVEL_FAR) for ``side``, from the touch (exact integers)."""
    buy = side == c.BUY
    far = np.where(buy, ask, bid)
    near = np.where(buy, bid, ask)
    j = np.clip(level - LEVEL_PASSIVE0, 0, max(len(passive_bps) - 1, 0))
    bps = passive_bps[j] if len(passive_bps) else np.zeros_like(near, dtype=np.float64)
    behind = np.maximum(np.ceil(near * bps * 1e-4).astype(np.int64), 1)
    passive = np.where(buy, near - behind, near + behind)
    price = np.where((level == LEVEL_FAR) | (level == LEVEL_IOC_FAR), far, np.where((level == LEVEL_NEAR) | (level == LEVEL_POST_NEAR), near, passive))
    return np.maximum(price, 1).astype(np.int64)


def collar_ticks(cc, inst: np.ndarray, side: np.ndarray, bid: np.ndarray, ask: np.ndarray) -> np.ndarray:
    """The price a market order reserves at: its protection band, clamped into the instrument's price
    range, by the core's own definition (:func:`orderbook.engine.tif.band_price_ticks`)."""
    inst, side, bid, ask = np.broadcast_arrays(*(np.asarray(x, dtype=np.int64) for x in (inst, side, bid, ask)))
    flat = [np.ascontiguousarray(x).reshape(-1) for x in (inst, side, bid, ask)]
    i, s, bid_f, ask_f = flat
    out = np.empty(i.shape[0], dtype=np.int64)
    band_prices_ticks(bid_f, ask_f, np.ascontiguousarray(cc.collar_bps[cc.inst_venue[i]]), np.ascontiguousarray(cc.min_price_ticks[i]),
                      np.ascontiguousarray(cc.max_price_ticks[i]), s, out)
    return out.reshape(inst.shape)


def worst_fee_atoms(notional: np.ndarray, rate_e8: np.ndarray) -> np.ndarray:
    """``ceil(notional x rate_e8 / 1e8)`` exactly, without int64 overflow."""
    hi, lo = np.divmod(notional, E8)
    x = lo * rate_e8
    return hi * rate_e8 + x // E8 + (x % E8 > 0)


def reservation_atoms(cc, inst: np.ndarray, side: np.ndarray, price: np.ndarray, lots: np.ndarray) -> np.ndarray:
    """What the core locks for a new order: quote atoms for a buy, base atoms for a sell."""
    notional = price * lots * cc.quote_atoms_per_tick_lot[inst]
    rate = np.maximum(cc.maker_fee_e8[inst], cc.taker_fee_e8[inst])
    buy_need = notional + worst_fee_atoms(notional, rate)
    return np.where(side == c.BUY, buy_need, lots * cc.base_atoms_per_lot[inst])


def lots_within(cc, inst: np.ndarray, side: np.ndarray, price: np.ndarray, budget_atoms: np.ndarray) -> np.ndarray:
    """The most lots whose reservation fits in ``budget_atoms`` (0 when none does)."""
    budget = np.maximum(budget_atoms, 0)
    per_lot = np.maximum(price * cc.quote_atoms_per_tick_lot[inst], 1)
    rate = np.maximum(cc.maker_fee_e8[inst], cc.taker_fee_e8[inst])
    buy = np.floor(budget / (per_lot * (1.0 + rate / E8))).astype(np.int64)
    # The fee rounds up by less than one atom, so the estimate overshoots by at most one lot
    # (a second pass covers float rounding of the division); step back until it fits exactly.
    for _ in range(2):
        need = buy * per_lot + worst_fee_atoms(buy * per_lot, rate)
        buy = np.where((buy > 0) & (need > budget), buy - 1, buy)
    sell = budget // cc.base_atoms_per_lot[inst]
    return np.maximum(np.where(side == c.BUY, buy, sell), 0).astype(np.int64)


def order_ok(cc, inst: np.ndarray, price: np.ndarray, lots: np.ndarray) -> np.ndarray:
    """Lots at least one, no more than the maximum, notional at least the minimum (the core's rules)."""
    notional = price * lots * cc.quote_atoms_per_tick_lot[inst]
    return (lots >= 1) & (lots <= cc.max_qty_lots[inst]) & (notional >= cc.min_notional_atoms[inst])


def venue_down_next(lanes) -> np.ndarray:
    """``(B, V)``: venues that will still be down during the next step.

    The core decrements ``outage_steps_left`` at the start of a step, before orders
    and cancels are sent, so a venue with 1 step left is up again next step; a new
    outage can start without warning (it is random).
    """
    return lanes.outage_steps_left > 1


def cancellable(orders, cc, down: np.ndarray) -> np.ndarray:
    """``(B, K)``: live slots a cancel can reach (PENDING/OPEN/PARTIAL on a venue not known down)."""
    s = orders.status
    live = CANCELLABLE_TABLE[s]
    return live & ~at(down, cc.inst_venue[orders.instrument])


def cancel_mask_from_choice(choice: np.ndarray, orders, can: np.ndarray) -> np.ndarray:
    """The core's ``(B, K)`` cancel mask for cancel choices ``(B,)``."""
    ids = np.where(can, orders.order_id, np.iinfo(np.int64).max)
    oldest = np.zeros_like(can)
    k = np.argmin(ids, axis=1)
    oldest[np.arange(can.shape[0]), k] = True
    oldest &= can
    return np.where((choice == CANCEL_ALL)[:, None], can, np.where((choice == CANCEL_OLDEST)[:, None], oldest, False))


def cancel_choice_mask(can: np.ndarray) -> np.ndarray:
    """``(B, 3)`` mask of the cancel dimension: none always, the others when something is cancellable."""
    anything = can.any(axis=1)
    return np.stack([np.ones_like(anything), anything, anything], axis=1)


def ensure_choice(mask: np.ndarray) -> np.ndarray:
    """Every row keeps at least one valid choice (a row with none becomes all True: the dimension is
    irrelevant then, because the aggressiveness dimension only allows 'none')."""
    return np.where(mask.any(axis=1, keepdims=True), mask, True)
