"""The eager fast path of the order queries against the windowed reference (the lazy path).

``open_orders``, ``latest_order_state`` and ``latest_events`` answer an eager frame with two
compiled passes over a flat table of orders (``queries._place_orders``); a LazyFrame, or a
frame the table does not fit, takes the windowed expressions. Both must give the same
answer on any frame of the events schema, not only on histories the core wrote: keys are
scrambled here so orders interleave across lanes, episodes and runs, rows are shuffled,
statuses need not follow the lifecycle.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from orderbook.analytics import queries as q
from tests.orderbook.analytics.test_queries import run_exchange

ORDER_KEY = ["lane", "episode", "order_id"]
PAIRS = (
    (q.open_orders, q._windowed_open_orders),
    (q.latest_order_state, q._windowed_latest_order_state),
    (q.latest_events, q._windowed_latest_events),
)


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    ex = run_exchange(seed=3, n_steps=60, n_lanes=5, reset_at=25, max_lots=40, slow_acks=True)
    return ex.history.events_frame()


def assert_same_answers(frame: pl.DataFrame, fast_expected: bool = True) -> None:
    assert (q._place_orders(frame) is not None) == fast_expected
    key = (["run"] if "run" in frame.columns else []) + ORDER_KEY
    for fast, windowed in PAIRS:
        got, want = fast(frame), windowed(frame)
        assert isinstance(got, pl.DataFrame) and got.height == want.height, fast.__name__
        cols = key + ([] if fast is not q.latest_events else ["seq"])
        assert_frame_equal(got.sort(cols), want.sort(cols))
        lazy = fast(frame.lazy())
        assert isinstance(lazy, pl.LazyFrame)
        assert_frame_equal(lazy.collect().sort(cols), want.sort(cols))


def test_fast_path_equals_windows_on_a_core_history(events):
    assert events["lane"].n_unique() == 5 and events["episode"].n_unique() > 1
    assert q.open_orders(events).height > 0  # live orders at the end: the filter is exercised
    assert_same_answers(events)


def test_fast_path_takes_shuffled_rows_by_seq_not_by_position(events):
    shuffled = events.sample(fraction=1.0, shuffle=True, seed=11)
    assert not shuffled["seq"].is_sorted()
    assert_same_answers(shuffled)


def test_fast_path_keeps_runs_apart_with_the_same_seq(events):
    two = pl.concat([events.with_columns(pl.lit("a").alias("run")), events.with_columns(pl.lit("b").alias("run"))])
    assert_same_answers(two.select("run", pl.exclude("run")))
    assert q.open_orders(two).height == 2 * q.open_orders(events).height


def test_frames_the_table_does_not_fit_take_the_windows(events):
    tie = pl.concat([events, events.tail(1)])  # two latest rows of an order (same seq): the windows keep both
    assert_same_answers(tie, fast_expected=False)
    assert_same_answers(pl.concat([events, events.head(3)]))  # a repeated row that is not the latest: summed twice by both
    sparse = events.with_columns(pl.when(pl.col("order_id") == 1).then(pl.lit(2**50)).otherwise(pl.col("order_id")).alias("order_id"))
    assert_same_answers(sparse, fast_expected=False)
    extreme = events.with_columns(
        pl.when(pl.col("order_id") == 1).then(pl.lit(-(2**62))).when(pl.col("order_id") == 2).then(pl.lit(2**62)).otherwise(pl.col("order_id")).alias("order_id"))
    assert_same_answers(extreme, fast_expected=False)  # an id range past int64 is measured without overflow
    far_episodes = events.with_columns((pl.col("episode") * 1_000_000).alias("episode"))
    assert_same_answers(far_episodes, fast_expected=False)
    assert q.open_orders(events.clear()).height == 0


@settings(max_examples=40)
@given(
    n_lanes=st.integers(1, 4),
    n_episodes=st.integers(1, 3),
    n_ids=st.integers(1, 12),
    id0=st.integers(-3, 5),
    shuffle=st.booleans(),
    runs=st.integers(1, 2),
    seed=st.integers(0, 2**32 - 1),
)
def test_fast_path_equals_windows_on_scrambled_keys(events, n_lanes, n_episodes, n_ids, id0, shuffle, runs, seed):
    """Keys drawn at random over the core's rows: orders of many rows, interleaved, with any statuses."""
    rng = np.random.default_rng(seed)
    n = events.height
    statuses = events["status"].dtype.categories.to_list()
    frame = events.with_columns(
        pl.Series("lane", rng.integers(0, n_lanes, n), dtype=pl.Int32),
        pl.Series("episode", rng.integers(0, n_episodes, n) + 7, dtype=pl.Int32),
        pl.Series("order_id", rng.integers(id0, id0 + n_ids, n), dtype=pl.Int64),
        pl.Series("status", rng.choice(statuses, n), dtype=events["status"].dtype),
    )
    if runs > 1:
        frame = frame.with_columns(pl.Series("run", rng.choice(["x", "y"], n))).select("run", pl.exclude("run"))
    if shuffle:
        frame = frame.sample(fraction=1.0, shuffle=True, seed=seed % 1000)
    assert_same_answers(frame)


def test_fast_path_on_a_store_read_with_flushes_equals_the_lazy_scan(tmp_path):
    from orderbook.analytics.store import EpisodeStore

    ex = run_exchange(seed=4, n_steps=1, n_lanes=3, reset_at=-1, slow_acks=True)
    store = EpisodeStore(tmp_path)
    rng = np.random.default_rng(4)
    from tests.orderbook.helpers import random_cancels, random_intents

    for t in range(30):
        ex.step(random_intents(rng, ex), random_cancels(rng, ex, 0.1))
        if t % 7 == 6:
            store.write_history("r1", ex.history, clear=True)  # episodes in progress span several part files
    store.write_history("r1", ex.history, clear=True)
    eager = store.read("events")
    assert eager["seq"].dtype == pl.Int64 and "run" in eager.columns
    assert_same_answers(eager)
    scan = store.scan("events")
    for fast, _ in PAIRS:
        cols = ["run", *ORDER_KEY] + ([] if fast is not q.latest_events else ["seq"])
        assert_frame_equal(fast(scan).collect().sort(cols), fast(eager).sort(cols))
