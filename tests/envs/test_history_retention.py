"""What the history keeps (``history=`` of every front-end): exactly the rows each mode says, nothing
lost when a store is given, and a row count and capacity that stop growing in a plain loop."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderbook.analytics.retention import parse_keep
from orderbook.analytics.store import EpisodeStore
from tests.envs.helpers import EXEC, TRADE, make_vec

# Raw columns compared row for row (seq is a position in the log: it changes when rows are dropped).
COLUMNS = {
    "events": ["lane", "episode", "step", "time_ns", "order_id", "instrument", "price_ticks", "qty_lots", "fill_lots",
               "fill_notional_atoms", "fee_atoms", "arrival_mid_x2", "decision_mid_x2"],
    "ledger": ["lane", "episode", "step", "time_ns", "venue", "asset", "delta_free", "delta_locked", "free_after", "locked_after",
               "order_id"],
    "market": ["lane", "episode", "step", "time_ns", "instrument", "bid_ticks", "ask_ticks", "volume_lots"],
}
TEXT = {"events": ["event", "status", "reason", "kind", "side"], "ledger": ["cause"], "market": []}
LANES, STEPS = 6, 160


def rows(frames: dict[str, pl.DataFrame], kind: str) -> pl.DataFrame:
    """The comparable columns of one log, in log order (by seq where it has one)."""
    frame = frames[kind]
    if "seq" in frame.columns:
        frame = frame.sort("lane", "episode", "seq")
    else:
        frame = frame.sort("lane", "episode", "step", "instrument", maintain_order=True)
    return frame.select(*(pl.col(c).cast(pl.Int64) for c in COLUMNS[kind]), *(pl.col(c).cast(pl.String) for c in TEXT[kind]))


def step_rows(ex) -> int:
    """The most rows one step can write (what the exchange reserves before a step)."""
    k, m = ex.config.slots, ex.config.max_new_orders
    return ex.n_lanes * (18 * k + 3 * m + len(ex.config.instruments))


def episodes_of(frame: pl.DataFrame) -> set[tuple[int, int]]:
    return set(frame.select("lane", "episode").unique().iter_rows())


def run_vec(env_id: str, history, steps: int = STEPS, check=None, **kwargs):
    """A native vector env of LANES lanes under fixed random actions (lanes go out of phase: Execution's
    parents fill early at random); ``check(env, t)`` after every step."""
    env = make_vec(env_id, LANES, history=history, **kwargs)
    env.reset(seed=3)
    for t, action in enumerate(fixed_actions(env, steps)):
        env.step(action)
        if check is not None:
            check(env, t)
    return env


def fixed_actions(env, steps: int = STEPS) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    nvec = env.single_action_space.nvec
    return [rng.integers(0, nvec, size=(LANES, len(nvec))) for _ in range(steps)]


KW = {EXEC: {"horizon": 6, "max_episode_steps": 6, "quantity": "0.05"}, TRADE: {"max_episode_steps": 9}}


@pytest.fixture(scope="module")
def reference():
    """Every row of each id's run (history='all'), per (lane, episode)."""
    out = {}
    for env_id in (EXEC, TRADE):
        env = run_vec(env_id, "all", **KW[env_id])
        out[env_id] = env.unwrapped.exchange.history.to_polars()
    return out


def same_rows(kept: dict, ref: dict, keys: set[tuple[int, int]]) -> None:
    """The rows of these (lane, episode) keys are the same in both, in the same order."""
    key_frame = pl.DataFrame(sorted(keys), schema={"lane": pl.Int64, "episode": pl.Int64}, orient="row")
    for kind in COLUMNS:
        a = rows(kept, kind).join(key_frame, on=["lane", "episode"], how="semi", maintain_order="left")
        b = rows(ref, kind).join(key_frame, on=["lane", "episode"], how="semi", maintain_order="left")
        assert a.equals(b), f"{kind}: rows of the kept episodes differ from the run that keeps everything"


@pytest.mark.parametrize("env_id", [EXEC, TRADE])
@pytest.mark.parametrize("window", [1, 3])
def test_window_keeps_each_lanes_last_episodes_whole(env_id, window):
    twin = make_vec(env_id, LANES, history="all", **KW[env_id])  # the same run, every row kept
    twin.reset(seed=3)
    trims = 0

    def check(env, t):
        nonlocal trims
        task = env.unwrapped.task
        keeper, history = task.keeper, task.exchange.history
        twin.step(actions[t])
        if t == 0:  # a small least limit, so drops come on their own between the checks below
            keeper.min_rows = keeper.limit = 400
        assert keeper.rows() <= keeper.limit + step_rows(task.exchange)
        if t % 20 and t != STEPS - 1:
            return
        ref = twin.unwrapped.exchange.history.to_polars()
        frames = history.to_polars()
        held = set().union(*(episodes_of(f) for f in frames.values()))
        current = task.exchange.lanes.episode
        wanted = {(b, e) for b in range(LANES) for e in range(max(int(current[b]) - window + 1, 0), int(current[b]) + 1)}
        assert wanted <= held, f"step {t}: missing episodes {sorted(wanted - held)}"
        same_rows(frames, ref, held)  # every episode held is whole and exact (older ones linger until a drop)
        keeper.trim()
        trims += 1
        frames = history.to_polars()
        held = set().union(*(episodes_of(f) for f in frames.values()))
        assert held == wanted, f"after trim(): expected each lane's last {window} episodes, extra/missing {sorted(held ^ wanted)}"
        same_rows(frames, ref, held)

    actions = fixed_actions(twin)
    env = run_vec(env_id, window if window > 1 else "episode", check=check, **KW[env_id])
    assert env.unwrapped.task.keeper.drops > trims  # drops happened on their own, not only by trim()
    assert env.unwrapped.exchange.lanes.episode.min() > window + 2  # several episodes per lane went by


def test_none_keeps_nothing_and_all_keeps_everything(reference):
    def empty(env, t):
        assert env.unwrapped.exchange.history.sizes() == (0, 0, 0)

    run_vec(EXEC, "none", check=empty, **KW[EXEC])
    env = run_vec(EXEC, "all", **KW[EXEC])
    frames = env.unwrapped.exchange.history.to_polars()
    for kind in COLUMNS:
        assert rows(frames, kind).equals(rows(reference[EXEC], kind))


@pytest.mark.parametrize("env_id", [EXEC, TRADE])
def test_store_plus_memory_is_every_row(env_id, reference, tmp_path):
    ref = reference[env_id]
    env = make_vec(env_id, LANES, history="episode", history_store=tmp_path / "store", history_run="r1", **KW[env_id])
    keeper = env.unwrapped.task.keeper
    assert keeper.min_rows == 16 * (4096 + 256 * LANES)  # with a store: fewer, larger writes
    keeper.min_rows = keeper.limit = 2000  # drops (and writes) come within this short run
    env.reset(seed=3)
    for action in fixed_actions(env):
        env.step(action)
    assert keeper.drops > 0 and keeper.files_written > 0
    store = EpisodeStore(tmp_path / "store")
    in_memory = env.unwrapped.exchange.history.to_polars()
    for kind in COLUMNS:
        written = store.read(kind, run="r1").height
        assert written == keeper.rows_written[kind]
        assert written + in_memory[kind].height == ref[kind].height, f"{kind}: store + memory != every row"
    env.close()  # flushes the rest
    assert env.unwrapped.exchange.history.sizes() == (0, 0, 0)
    stored = {kind: store.read(kind, run="r1").drop("run") for kind in COLUMNS}
    for kind in COLUMNS:
        assert rows(stored, kind).equals(rows(ref, kind)), f"{kind}: the store's rows differ from the run that keeps everything"
    if "seq" in stored["events"].columns:
        assert stored["events"]["seq"].n_unique() == stored["events"].height  # seq stays unique across drops and flushes


def test_plain_single_env_loop_stays_bounded():
    """A plain gym.make loop (default history): rows held stay under the keeper's limit plus one step, and
    the logs' capacity stops growing; the current episode is always there, whole."""
    env = gym.make(TRADE, max_episode_steps=30)
    env.reset(seed=0)
    task = env.unwrapped.task
    history, keeper = task.exchange.history, task.keeper
    rng = np.random.default_rng(0)
    nvec = env.action_space.nvec
    capacity, most = None, 0
    for t in range(1500):
        _, _, terminated, truncated, _ = env.step(rng.integers(0, nvec))
        if terminated or truncated:
            env.reset()
        most = max(most, keeper.rows())
        assert keeper.rows() <= keeper.limit + step_rows(task.exchange)
        if t == 750:
            capacity = (history.events.capacity, history.ledger.capacity, history.market.capacity)
        frame = history.ledger_frame() if t % 100 == 0 else None
        if frame is not None:
            assert (frame["episode"] == int(task.exchange.lanes.episode[0])).any()
            assert frame.filter(pl.col("episode") == int(task.exchange.lanes.episode[0]))["cause"][0] == "DEPOSIT"
    assert keeper.drops > 5
    assert (history.events.capacity, history.ledger.capacity, history.market.capacity) == capacity
    assert most <= 2 * keeper.min_rows + step_rows(task.exchange)


def test_all_grows_and_episode_does_not():
    sizes = {}
    for history in ("all", "episode"):
        env = run_vec(EXEC, history, steps=400, **KW[EXEC])
        sizes[history] = sum(env.unwrapped.exchange.history.sizes())
    assert sizes["episode"] <= 2 * (4096 + 256 * LANES)  # twice the keeper's least limit, for short episodes
    assert sizes["all"] > 2 * sizes["episode"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"history": "some"}, r"history must be 'episode', 'all', 'none', or an int N >= 1 .*got 'some'"),
        ({"history": 0}, r"history must be .*got 0"),
        ({"history": True}, r"history must be .*got True"),
        ({"history": "none", "history_store": "x"}, r"history='none' keeps nothing to flush"),
        ({"history_store": 3}, r"history_store must be None, an orderbook.analytics.store.EpisodeStore or a folder path, got int"),
        ({"history_run": "a b"}, r"history_run must be 1-128 characters.*got 'a b'"),
    ],
)
def test_bad_history_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(EXEC, **kwargs)


def test_parse_keep():
    assert (parse_keep("episode"), parse_keep("all"), parse_keep("none"), parse_keep(4)) == (1, None, 0, 4)


def test_render_trace_of_a_vector_env_stays_bounded():
    """The render trace (one value per step) keeps what the lanes' current episodes need, not every step."""
    lengths = []
    env = run_vec(EXEC, "episode", render_mode="rgb_array", check=lambda env, t: lengths.append(len(env.unwrapped.task.trace)),
                  **KW[EXEC])
    task = env.unwrapped.task
    # a step appends one value and a step with autoresets another: a lane's episode spans at most 2 x 7 values,
    # and the trace is cut when more than half of it is older than every lane's episode
    assert max(lengths) <= 2 * (2 * 7) + 2
    assert len(lengths) == STEPS and sum(b < a for a, b in zip(lengths, lengths[1:])) >= STEPS // 14  # cut again and again
    assert (task.trace_start >= 0).all() and (task.trace_start < len(task.trace)).all()


@settings(max_examples=10)
@given(window=st.integers(1, 3), min_rows=st.integers(0, 600), steps=st.integers(10, 70), seed=st.integers(0, 2**32))
def test_property_any_window_and_limit_keep_whole_exact_episodes(window, min_rows, steps, seed):
    """Property: whatever the window, the least limit and the run, after every step each lane's last
    ``window`` episodes are held, and every episode held equals, row for row, the run that keeps all."""
    kw = {"horizon": 4, "max_episode_steps": 4, "quantity": "0.02"}
    envs_ = [make_vec(EXEC, 3, history=h, **kw) for h in ("all", window)]
    for env in envs_:
        env.reset(seed=seed % 1000)
    keeper = envs_[1].unwrapped.task.keeper
    keeper.min_rows = keeper.limit = min_rows
    rng = np.random.default_rng(seed)
    nvec = envs_[0].single_action_space.nvec
    for t in range(steps):
        action = rng.integers(0, nvec, size=(3, len(nvec)))
        for env in envs_:
            env.step(action)
        assert keeper.rows() <= max(keeper.limit, min_rows) + step_rows(envs_[1].unwrapped.exchange)
        if t % 9 and t != steps - 1:
            continue
        frames = envs_[1].unwrapped.exchange.history.to_polars()
        held = set().union(*(episodes_of(f) for f in frames.values()))
        current = envs_[1].unwrapped.exchange.lanes.episode
        wanted = {(b, e) for b in range(3) for e in range(max(int(current[b]) - window + 1, 0), int(current[b]) + 1)}
        assert wanted <= held
    same_rows(frames, envs_[0].unwrapped.exchange.history.to_polars(), held)
