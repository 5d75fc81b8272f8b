"""history: the append-only columnar logs the engine writes as it steps.

Owns ``column_log`` (preallocated, doubling columns), ``event_log`` (order events)
and ``logs`` (the ledger and market logs, and ``History``, the three together with
their schemas and Polars frames). Nothing here reads the order table.
May import: ``compile``, ``spec``.
"""
