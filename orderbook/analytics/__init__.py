"""analytics: questions asked of the history and the live state.

Owns ``queries`` with ``queries_base``, ``queries_balances`` and ``queries_fast``
(latest-state questions over the logs), ``live`` (the same answers from the
order table), ``audit`` (every invariant checked against a replay of the rows),
``store`` with ``store_layout``, ``store_read``, ``store_lock``,
``store_compact``, ``store_runs`` and ``store_sql`` (the Parquet episode store),
and ``retention`` (what a front-end keeps in memory and flushes to a store).
May import: ``compile``, ``spec``, ``history``, ``engine``.
"""
