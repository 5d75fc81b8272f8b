"""Observation features over ``(B, ...)`` arrays, and the Box they live in.

Every feature is a float computed from the core's live state (the shared ones
in one compiled call, :func:`envs.kernels.common_features`), scaled to a small
range and clipped to documented bounds (:class:`ObsLayout` keeps names and bounds
together, so the Box and the table in the env docstrings come from one place).
Non-finite values (a zero mid, an empty book) become 0 before clipping, so an
observation is always finite and inside its Box.

Float reductions run over the last, contiguous axis only, so a lane's features
are the same bits whatever the batch size (lane ``b`` of a vector env equals a
single env).
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


class ObsLayout:
    """Named blocks of features with their bounds; ``assemble`` clips and stacks them."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, list[str], float, float]] = []
        self._bounds: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, block: str, labels: list[str], low: float, high: float) -> None:
        self.blocks.append((block, list(labels), float(low), float(high)))
        self._bounds = None

    @property
    def labels(self) -> list[str]:
        return [f"{block}.{label}" for block, labels, _, _ in self.blocks for label in labels]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        if self._bounds is None:
            low = np.concatenate([np.full(len(labels), lo) for _, labels, lo, _ in self.blocks])
            high = np.concatenate([np.full(len(labels), hi) for _, labels, _, hi in self.blocks])
            self._bounds = (low.astype(np.float32), high.astype(np.float32))
        return self._bounds[0].copy(), self._bounds[1].copy()

    def space(self) -> spaces.Box:
        low, high = self.bounds()
        return spaces.Box(low, high, dtype=np.float32)

    def assemble(self, parts: list[np.ndarray]) -> np.ndarray:
        """A fresh ``(B, D)`` float32 observation from one ``(B, width)`` array per block."""
        got = sum(p.shape[1] for p in parts)
        if got != len(self.labels):
            raise AssertionError(f"observation parts have {got} features, the layout names {len(self.labels)}")
        x = np.concatenate(parts, axis=1)
        np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        self.bounds()
        np.clip(x, self._bounds[0], self._bounds[1], out=x)
        return x.astype(np.float32)

    def rows(self) -> list[tuple[int, int, str, float, float]]:
        """``(first index, last index, block, low, high)`` of every block (the docstring tables)."""
        out, start = [], 0
        for block, labels, lo, hi in self.blocks:
            out.append((start, start + len(labels) - 1, block, lo, hi))
            start += len(labels)
        return out


# ------------------------------------------------------------------ market
def mids(cc, bars) -> np.ndarray:
    """``(B, I)`` mid prices in quote units."""
    return (bars.bid_ticks + bars.ask_ticks) * 0.5 * cc.tick_size


def market_labels(names: list[str]) -> list[str]:
    """Per instrument: return of the last step (per 10 bps), return since the episode began (per
    100 bps), spread (per 10 bps), log(1 + bar volume in base units)."""
    return [f"{n}:{f}" for n in names for f in ("ret_10bps", "ret_since_start_100bps", "spread_10bps", "log1p_volume")]


# ---------------------------------------------------------------- balances
def unit_values(cc, bars) -> np.ndarray:
    """``(B, V, A)``: value in the numeraire of one unit of each asset on each venue (the core's plan)."""
    mid = mids(cc, bars)
    n_b = mid.shape[0]
    val = np.ones((n_b,) + cc.valuation_inst.shape[:2])
    for t in range(cc.valuation_inst.shape[2]):
        inst = cc.valuation_inst[:, :, t]
        m = mid[:, np.maximum(inst, 0)]
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(cc.valuation_power[:, :, t] > 0, val * m, val / m)
        val = np.where(inst >= 0, factor, val)
    return val


def balance_values(cc, acct, bars) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(free value, locked value, total value): ``(B, V, A)``, ``(B, V, A)``, ``(B,)`` in the numeraire."""
    unit = unit_values(cc, bars) / cc.atoms_per_unit
    free = acct.free_atoms * unit
    locked = acct.locked_atoms * unit
    total = (free + locked).reshape(free.shape[0], -1).sum(axis=1)
    return free, locked, total


def balance_labels(venue_names: list[str], asset_names: list[str]) -> list[str]:
    """Free and locked value of each (venue, asset) as a fraction of the portfolio value."""
    return [f"{v}:{a}:{k}" for v in venue_names for a in asset_names for k in ("free", "locked")]


# ------------------------------------------------------------------ orders
# share of slots in each live status, and free
ORDER_LABELS = ["pending", "open", "partial", "pending_cancel", "free_slots"]


# ------------------------------------------------------------------- stats
# fills, rejects, expiries of the last step (over 10, at most 1); the episode's reject, expiry and
# fill rates; its mean slippage against arrival (per 10 bps)
STAT_LABELS = ["fills_step", "rejects_step", "expiries_step", "reject_rate", "expiry_rate", "fill_ratio", "slippage_mean_10bps"]
