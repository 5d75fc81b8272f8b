"""SQL over the episode store: DuckDB views answering the order system's questions.

    con = EpisodeStore("runs/history").sql()          # or store_sql.connect(store)
    con.sql("SELECT * FROM open_orders WHERE run = 'ppo-s0'").pl()

Views (each kind only when the store holds files of it):

| view | rows | same answer as |
|---|---|---|
| ``events``, ``ledger``, ``market`` | the Parquet files, ``run`` a VARCHAR and ``episode`` an INTEGER | ``EpisodeStore.scan`` |
| ``runs`` | the runs table, read when connecting | ``EpisodeStore.runs_table`` |
| ``order_state`` | one per order: its latest row, cumulative fills and fees, submit time, ending reason | ``queries.latest_order_state`` |
| ``open_orders`` | ``order_state`` rows whose status is live | ``queries.open_orders`` |
| ``latest_balances`` | free and locked atoms per venue and asset, zero balances left out | ``queries.latest_balances`` |
| ``execution_quality`` | per run, lane, episode, venue and kind: counts, rates, slippage mean/p50/p95 | ``queries.execution_quality(...)["summary"]`` |

Keeps true: the views read the files when queried (a new flush or a compaction
shows at the next query; ``runs`` is a snapshot taken at connect); "latest" is
the row with the greatest ``seq`` of its key, as in :mod:`orderbook.analytics.queries`.
Percentiles use ``quantile_cont`` (linear interpolation, as Polars' ``"linear"``).
Needs the ``sql`` extra (``pip install "orderbook-gym[sql]"``).
"""

from __future__ import annotations

from orderbook.analytics import queries as q

KEY = "run, lane, episode"
_TERMINAL = ", ".join(f"'{s}'" for s in q.TERMINAL)
_LIVE = ", ".join(f"'{s}'" for s in q.LIVE)

VIEWS = {
    "order_state": f"""
        SELECT {KEY}, order_id, venue, symbol, instrument, side, kind, status,
               coalesce(end_reason, 'NONE') AS reason, price_ticks, qty_lots, filled_lots, filled_notional_atoms,
               total_fee_atoms AS fee_atoms, submit_ns, to_timestamp(submit_ns // 1000 / 1e6) AS submit_utc,
               decision_mid_x2, arrival_mid_x2, price, quantity, filled_lots * lot_size AS filled_quantity
        FROM (
            SELECT *,
                   CAST(sum(fill_lots) OVER o AS BIGINT) AS filled_lots,
                   CAST(sum(fill_notional_atoms) OVER o AS BIGINT) AS filled_notional_atoms,
                   CAST(sum(fee_atoms) OVER o AS BIGINT) AS total_fee_atoms,
                   min(time_ns) OVER o AS submit_ns,
                   max(CASE WHEN status IN ({_TERMINAL}) AND event <> 'CANCEL_REJECT' THEN reason END) OVER o AS end_reason,
                   max(seq) OVER o AS last_seq
            FROM events
            WINDOW o AS (PARTITION BY {KEY}, order_id)
        )
        WHERE seq = last_seq""",
    "open_orders": f"SELECT * FROM order_state WHERE status IN ({_LIVE})",
    "latest_balances": f"""
        SELECT {KEY}, venue, asset, free_after AS free_atoms, locked_after AS locked_atoms, venue_name, asset_name
        FROM ledger
        QUALIFY seq = max(seq) OVER (PARTITION BY {KEY}, venue, asset)
                AND (free_after <> 0 OR locked_after <> 0)""",
    "execution_quality": f"""
        WITH counts AS (
            SELECT {KEY}, venue, kind,
                   count(*) FILTER (WHERE event = 'SUBMIT' OR (event = 'REJECT' AND reason NOT IN ('BROKER_ERROR', 'POST_ONLY_WOULD_TAKE'))) AS orders,
                   count(*) FILTER (WHERE event = 'SUBMIT') AS sent,
                   count(*) FILTER (WHERE event = 'FILL') AS fills,
                   count(*) FILTER (WHERE event = 'FILL' AND status = 'FILLED') AS filled_orders,
                   sum(fill_lots)::BIGINT AS filled_lots,
                   coalesce(sum(qty_lots) FILTER (WHERE event = 'SUBMIT'), 0)::BIGINT AS ordered_lots,
                   count(*) FILTER (WHERE event = 'EXPIRE') AS expired,
                   count(*) FILTER (WHERE event = 'REJECT') AS rejected,
                   avg(slippage_arrival_bps) FILTER (WHERE event = 'FILL') AS slippage_arrival_bps_mean,
                   quantile_cont(slippage_arrival_bps, 0.5) FILTER (WHERE event = 'FILL') AS slippage_arrival_bps_p50,
                   quantile_cont(slippage_arrival_bps, 0.95) FILTER (WHERE event = 'FILL') AS slippage_arrival_bps_p95,
                   avg(slippage_decision_bps) FILTER (WHERE event = 'FILL') AS slippage_decision_bps_mean
            FROM events
            GROUP BY ALL
        )
        SELECT *, filled_lots / ordered_lots AS fill_ratio, expired / sent AS expiry_rate, rejected / orders AS reject_rate
        FROM counts""",
}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(store, connection=None):
    """``connection`` (a new in-memory DuckDB one if None) with the views over ``store`` (an EpisodeStore)."""
    try:
        import duckdb
    except ImportError as err:
        raise ImportError('SQL over the episode store needs DuckDB: pip install "orderbook-gym[sql]"') from err
    con = duckdb.connect() if connection is None else connection
    kinds = [kind for kind in ("events", "ledger", "market") if store.files(kind)]
    for kind in kinds:
        files = _literal(str(store.root / kind / "run=*" / "episode=*" / "part-*.parquet"))
        con.execute(
            f"CREATE OR REPLACE VIEW {kind} AS SELECT * FROM read_parquet({files}, hive_partitioning = true, "
            "hive_types = {'run': VARCHAR, 'episode': INTEGER}, union_by_name = true)"
        )
    runs = store.runs_table().to_arrow()  # noqa: F841 (read by name below)
    con.execute("CREATE OR REPLACE TABLE runs AS SELECT * FROM runs")
    needs = {"order_state": "events", "open_orders": "events", "latest_balances": "ledger", "execution_quality": "events"}
    for name, sql in VIEWS.items():
        if needs[name] in kinds:
            con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    return con
