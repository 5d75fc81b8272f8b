"""The balance and price questions over the ledger and market frames: latest prices, latest and locked
balances, and totals per venue valued in a numeraire as the core values them.

Part of :mod:`orderbook.analytics.queries` (which re-exports every name here and
says the choices they share). Keeps true: a balance is the ``free_after`` /
``locked_after`` of its (venue, asset)'s latest ledger row; a price the latest bar
of its instrument; a total is valued with the core's plan and order of
operations, so it equals ``Exchange.portfolio_value()`` bit for bit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from orderbook.analytics.queries_base import (
    BALANCE_SCHEMA,
    PRICE_SCHEMA,
    TOTAL_SCHEMA,
    Frame,
    _for_lane,
    _latest,
    _lazily,
    key_columns,
)


# ------------------------------------------------------------------- market
@_lazily
def latest_prices(market: Frame, lane: int | None = None) -> Frame:
    """Latest bid, ask, mid and last (close) per venue and instrument (``PRICE_SCHEMA``)."""
    market = _for_lane(market, lane)
    keys = key_columns(market)
    return (
        market.filter(_latest("step", keys + ["instrument"]))
        .with_columns(pl.col("close").alias("last"))
        .select(*keys[:-2], *PRICE_SCHEMA)
    )


# ------------------------------------------------------------------- ledger
@_lazily
def latest_balances(ledger: Frame, lane: int | None = None) -> Frame:
    """Latest free and locked atoms per venue and asset (``BALANCE_SCHEMA`` + names).

    From ``free_after``/``locked_after`` of each (venue, asset)'s latest ledger
    row. Balances that are zero (free and locked) are left out, as in
    ``Exchange.balances``: an asset never held and one spent to zero read the same.
    """
    ledger = _for_lane(ledger, lane)
    keys = key_columns(ledger)
    return (
        ledger.filter(_latest("seq", keys + ["venue", "asset"]))
        .rename({"free_after": "free_atoms", "locked_after": "locked_atoms"})
        .filter((pl.col("free_atoms") != 0) | (pl.col("locked_atoms") != 0))
        .select(*keys[:-2], *BALANCE_SCHEMA, "venue_name", "asset_name")
    )


@_lazily
def locked_balances(ledger: Frame, venue: str | int, lane: int | None = None) -> Frame:
    """Open (locked) balances on ``venue`` (its name or index): rows with locked atoms."""
    on_venue = pl.col("venue_name").cast(pl.String) == venue if isinstance(venue, str) else pl.col("venue") == venue
    return latest_balances(ledger.filter(on_venue), lane).filter(pl.col("locked_atoms") != 0)


def valuation_frame(config, numeraire: str | None = None) -> pl.DataFrame:
    """How one unit of each (venue, asset) is valued in ``numeraire``: the core's plan.

    Columns venue, asset, atoms_per_unit, inst0, pow0, inst1, pow1: the value is
    ``mid(inst0) ** pow0 * mid(inst1) ** pow1`` (missing factors are 1), taken
    from ``Compiled.valuation_inst/valuation_power`` so totals agree with
    ``Exchange.portfolio_value()``.
    """
    if numeraire is not None and numeraire != config.numeraire:
        config = dataclasses.replace(config, numeraire=numeraire)
    cc = config.compile()
    n_v, n_a = cc.valuation_inst.shape[:2]
    v, a = np.meshgrid(np.arange(n_v), np.arange(n_a), indexing="ij")
    return pl.DataFrame(
        {
            "venue": v.ravel().astype(np.int32),
            "asset": a.ravel().astype(np.int32),
            "atoms_per_unit": cc.atoms_per_unit[a.ravel()],
            "inst0": cc.valuation_inst[:, :, 0].ravel().astype(np.int32),
            "pow0": cc.valuation_power[:, :, 0].ravel(),
            "inst1": cc.valuation_inst[:, :, 1].ravel().astype(np.int32),
            "pow1": cc.valuation_power[:, :, 1].ravel(),
        }
    )


def _apply_factor(value: pl.Expr, mid: str, power: str) -> pl.Expr:
    # the kernel's order of operations (value *= mid or value /= mid), so floats agree bit for bit
    return pl.when(pl.col(power) > 0).then(value * pl.col(mid)).when(pl.col(power) < 0).then(value / pl.col(mid)).otherwise(value)


@_lazily
def total_by_venue(ledger: Frame, market: Frame, numeraire: str | None = None, *, config, lane: int | None = None) -> Frame:
    """Free plus locked balances per venue, valued in ``numeraire`` at the latest mids.

    Each asset is valued as ``orderbook.engine.config`` plans it (a quote asset through
    a shared base: USDC in USD is mid(BTC/USD) / mid(BTC/USDC) on that venue);
    ``numeraire`` defaults to the config's. ``value`` is null for a venue holding
    an asset with no recorded price (a history without market rows).
    """
    balances = latest_balances(ledger, lane)
    keys = key_columns(balances)
    plan = valuation_frame(config, numeraire)
    if isinstance(balances, pl.LazyFrame):
        plan = plan.lazy()
    mids = latest_prices(market, lane).select(*keys, pl.col("instrument"), pl.col("mid"))
    with_mid = lambda frame, t: frame.join(  # noqa: E731
        mids.rename({"instrument": f"inst{t}", "mid": f"mid{t}"}), on=[*keys, f"inst{t}"], how="left"
    )
    valued = with_mid(with_mid(balances.join(plan, on=["venue", "asset"], how="left"), 0), 1)
    unit_value = _apply_factor(_apply_factor(pl.lit(1.0), "mid0", "pow0"), "mid1", "pow1")
    atoms = (pl.col("free_atoms") + pl.col("locked_atoms")).cast(pl.Float64)
    value = atoms / pl.col("atoms_per_unit") * unit_value
    return (
        valued.with_columns(value.alias("value"))
        .group_by(*keys, "venue", "venue_name")
        .agg(pl.when(pl.col("value").is_null().any()).then(None).otherwise(pl.col("value").sum()).alias("value"))
        .select(*keys[:-2], *TOTAL_SCHEMA, "venue_name")
    )
