"""Builders and checks shared by the env tests: snapshots, accounting invariants, baselines."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import polars as pl

import envs  # noqa: F401  (registers the ids)
from orderbook.engine.state import copy_state
from orderbook.spec import codes as c

EXEC, TRADE = envs.ENV_IDS


def make_vec(env_id: str, num_envs: int, **kwargs) -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)


def snapshot(env) -> dict:
    """Copies of every state array of the core and of the task, and the history sizes."""
    task = env.unwrapped.task
    ex = task.exchange
    core = {name: copy_state(getattr(ex, name)) for name in ("orders", "lanes", "bars", "accounts", "stats")}
    own = {k: np.array(v, copy=True) for k, v in vars(task).items() if isinstance(v, np.ndarray)}
    return {"core": core, "task": own, "history": ex.history.sizes(), "source": copy_state(getattr(ex.source, "state", ()))}


def assert_same(a: dict, b: dict) -> None:
    assert a["history"] == b["history"], f"history sizes changed: {a['history']} -> {b['history']}"
    for name, state in a["core"].items():
        for field, x, y in zip(state._fields, state, b["core"][name]):
            assert np.array_equal(x, y), f"core {name}.{field} changed"
    for k, x in a["task"].items():
        assert np.array_equal(x, b["task"][k]), f"task array {k} changed"
    for x, y in zip(a["source"], b["source"]):
        assert np.array_equal(x, y), "market source state changed"


def check_accounting(ex) -> None:
    """Every accounting invariant of DESIGN.md, for every lane, venue and asset of the current episodes."""
    acct, cc, o = ex.accounts, ex.compiled, ex.orders
    assert (acct.free_atoms >= 0).all(), f"negative free balance at {np.argwhere(acct.free_atoms < 0)[0].tolist()}"
    ledger = ex.history.to_polars()["ledger"]
    current = pl.DataFrame({"lane": np.arange(ex.n_lanes, dtype=np.int32), "episode": ex.lanes.episode.astype(np.int32)})
    sums = (
        ledger.join(current, on=["lane", "episode"], how="semi")
        .group_by("lane", "venue", "asset")
        .agg(pl.col("delta_free").sum(), pl.col("delta_locked").sum())
    )
    free, locked = np.zeros_like(acct.free_atoms), np.zeros_like(acct.locked_atoms)
    idx = (sums["lane"].to_numpy(), sums["venue"].to_numpy(), sums["asset"].to_numpy())
    free[idx], locked[idx] = sums["delta_free"].to_numpy(), sums["delta_locked"].to_numpy()
    bad = np.argwhere(free != acct.free_atoms)
    assert not len(bad), f"free != ledger sum at (lane, venue, asset) {bad[0].tolist()}"
    bad = np.argwhere(locked != acct.locked_atoms)
    assert not len(bad), f"locked != ledger sum at (lane, venue, asset) {bad[0].tolist()}"
    live = (o.status >= c.PENDING) & (o.status <= c.PENDING_CANCEL)
    asset = np.where(o.side == c.BUY, cc.inst_quote[o.instrument], cc.inst_base[o.instrument])
    lanes = np.broadcast_to(np.arange(ex.n_lanes)[:, None], o.status.shape)
    reserved = np.zeros_like(acct.locked_atoms)
    np.add.at(reserved, (lanes[live], cc.inst_venue[o.instrument][live], asset[live]), o.reserved_atoms[live])
    bad = np.argwhere(reserved != acct.locked_atoms)
    assert not len(bad), f"locked != reserved of live orders at (lane, venue, asset) {bad[0].tolist()}"


def twap_actions(info: dict, horizon: int, n_venues: int) -> np.ndarray:
    """TWAP baseline for Execution-v0 (default layout [venue, level, size, cancel]): a market child of
    one slice per step, alternating venues; the last step sends everything still open."""
    step = np.asarray(info["step"])
    venue = step % n_venues
    size = np.where(step >= horizon - 1, 4, 1)  # size 1 = 1.0 x slice, size 4 = everything open
    return np.stack([venue, np.ones_like(step), size, np.zeros_like(step)], axis=1).astype(np.int64)
