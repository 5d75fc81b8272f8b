"""The DuckDB route over the episode store: its views give the Polars queries' answers."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from orderbook.analytics import queries as q
from orderbook.analytics import store_sql
from orderbook.analytics.store import EpisodeStore
from tests.orderbook.analytics.test_store_layout import EPISODES, new_store, old_layout_store
from tests.orderbook.analytics.test_store_scale import flushed_store


def _strings(frame: pl.DataFrame) -> pl.DataFrame:
    """Enums as strings (DuckDB reads Parquet dictionaries as VARCHAR)."""
    return frame.with_columns(pl.col(pl.Enum).cast(pl.String))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = flushed_store(tmp_path_factory.mktemp("sql"), runs=("a", "b"))
    store.describe_run("a", env_id="orderbook/Execution-v0", seeds=[0])
    return store


def test_the_views_answer_as_the_polars_queries(store):
    con = store.sql()
    key = ["run", "lane", "episode", "order_id"]
    for view, query in (("open_orders", q.open_orders), ("order_state", q.latest_order_state)):
        got = con.sql(f"SELECT * EXCLUDE (submit_utc) FROM {view}").pl().sort(key)
        want = _strings(query(store.scan("events")).collect()).sort(key)
        assert got.height > 0
        assert_frame_equal(got, want)
    got = con.sql("SELECT * FROM latest_balances").pl()
    balance_key = ["run", "lane", "episode", "venue", "asset"]
    assert_frame_equal(got.sort(balance_key), _strings(q.latest_balances(store.scan("ledger")).collect()).sort(balance_key))
    by = ["run", "lane", "episode", "venue", "kind"]
    got = con.sql("SELECT * FROM execution_quality").pl().sort(by)
    want = _strings(q.execution_quality(store.scan("events"))["summary"].collect()).select(got.columns).sort(by)
    assert_frame_equal(got, want, check_dtypes=False, rel_tol=1e-9)


def test_partition_keys_and_times_have_their_types_and_runs_are_a_table(store):
    con = store_sql.connect(store, duckdb.connect())
    types = dict(con.sql("SELECT column_name, column_type FROM (DESCRIBE events)").fetchall())
    assert types["episode"] == "INTEGER" and types["run"] == "VARCHAR"
    assert types["time_utc"] == "TIMESTAMP WITH TIME ZONE" and types["time_ns"] == "BIGINT"
    assert con.execute("SELECT count(*) FROM events").fetchall()[0][0] == store.read("events").height
    runs = con.sql("SELECT run, env_id, seeds FROM runs ORDER BY run").fetchall()
    assert runs == [("a", "orderbook/Execution-v0", [0]), ("b", None, None)]


def test_a_compaction_shows_at_the_next_query_with_the_same_answers(store, tmp_path):
    con = store.sql()
    before = con.sql("SELECT * FROM open_orders ORDER BY ALL").pl()
    store.compact()
    assert_frame_equal(con.sql("SELECT * FROM open_orders ORDER BY ALL").pl(), before)



@pytest.mark.parametrize("layout", ["padded", "unpadded"])
def test_duckdb_reads_integer_episodes_from_either_layout(tmp_path, layout):
    if layout == "padded":
        store = new_store(tmp_path)
    else:
        old_layout_store(tmp_path)
        store = EpisodeStore(tmp_path)
    files = f"'{store.root}/events/run=*/episode=*/part-*.parquet'"
    typed = duckdb.sql(f"SELECT episode, typeof(episode), min(tag) FROM read_parquet({files}, hive_partitioning = true, "
                       "hive_types = {'run': VARCHAR, 'episode': INTEGER}) GROUP BY ALL ORDER BY episode").fetchall()
    assert typed == [(e, "INTEGER", e) for e in EPISODES]  # what store.sql()'s views read
    inferred = duckdb.sql(f"SELECT DISTINCT episode, typeof(episode) FROM read_parquet({files}, hive_partitioning = true) "
                          "ORDER BY episode").fetchall()
    if layout == "padded":  # DuckDB's own inference keeps zero-padded keys as text (sorting as the episodes): type them
        assert inferred == [(f"{e:010d}", "VARCHAR") for e in EPISODES]
    else:
        assert inferred == [(e, "BIGINT") for e in EPISODES]
