"""Demo: a batch of lanes working baseline orders on the synthetic market.

    python -m orderbook.demo --lanes 64 --steps 240

Every lane works the same two baseline strategies with all faults on: a TWAP of
market child orders buying on venue ``alpha``, and a passive seller that quotes
a limit one tick inside the ask on ``beta`` and cancels what is still open after
a few steps. The summary is computed from the history frames with Polars.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

import orderbook as ob
from orderbook import codes as c
from orderbook.audit import audit
from orderbook.intents import empty_intents


def baseline_intents(ex: ob.Exchange, step: int, twap_lots: int, quote_lots: int) -> tuple[ob.OrderIntents, np.ndarray]:
    """TWAP market buys on alpha BTC/USD; a passive limit sell on beta BTC/USD every 5 steps."""
    cfg = ex.config
    intents = empty_intents(ex.n_lanes, cfg.max_new_orders)
    buy = cfg.instrument_index("alpha", "BTC/USD")
    sell = cfg.instrument_index("beta", "BTC/USD")
    intents.instrument[:, 0] = buy
    intents.side[:, 0] = c.BUY
    intents.kind[:, 0] = c.MARKET
    intents.qty_lots[:, 0] = twap_lots
    cancels = np.zeros((ex.n_lanes, cfg.slots), dtype=bool)
    if step % 5 == 0:
        intents.instrument[:, 1] = sell
        intents.side[:, 1] = c.SELL
        intents.kind[:, 1] = c.LIMIT
        intents.price_ticks[:, 1] = np.maximum(ex.bars.ask_ticks[:, sell] - 1, ex.bars.bid_ticks[:, sell] + 1)
        intents.qty_lots[:, 1] = quote_lots
        intents.ttl_ns[:, 1] = 10 * cfg.step_ns
        live = (ex.orders.status >= c.OPEN) & (ex.orders.status <= c.PARTIAL)
        cancels = live & (ex.orders.kind == c.LIMIT)  # reprice: cancel the old quote
    return intents, cancels


def summary(events: pl.DataFrame) -> pl.DataFrame:
    """Execution quality per venue and order kind, from the event log."""
    orders = events.group_by("lane", "episode", "order_id").agg(
        pl.col("venue").first(),
        pl.col("kind").first(),
        pl.col("quantity").first(),
        pl.col("fill_quantity").sum().alias("filled"),
        pl.col("status").sort_by("seq").last().alias("final"),
        (pl.col("time_ns").filter(pl.col("event") == "ACK").first() - pl.col("time_ns").first()).alias("ack_ns"),
    )
    fills = events.filter(pl.col("event") == "FILL").group_by("venue", "kind").agg(
        pl.col("slippage_arrival_bps").mean().alias("slip_mean_bps"),
        pl.col("slippage_arrival_bps").quantile(0.95).alias("slip_p95_bps"),
    )
    return (
        orders.group_by("venue", "kind")
        .agg(
            pl.len().alias("orders"),
            (pl.col("filled").sum() / pl.col("quantity").sum()).alias("fill_ratio"),
            (pl.col("final") == "REJECTED").mean().alias("reject_rate"),
            (pl.col("final") == "EXPIRED").mean().alias("expiry_rate"),
            (pl.col("ack_ns").mean() / 1e6).alias("ack_ms_mean"),
        )
        .join(fills, on=["venue", "kind"], how="left")
        .sort("venue", "kind")
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lanes", type=int, default=64, help="lanes (accounts) in the batch")
    parser.add_argument("--steps", type=int, default=240, help="steps of one minute each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    cfg = ob.default_config(quotes=("USD", "USDT", "USDC"))
    t0 = time.perf_counter()
    ex = ob.Exchange(cfg, n_lanes=args.lanes)
    ex.reset(seed=args.seed)
    t_ready = time.perf_counter()
    for step in range(args.steps):
        ex.step(*baseline_intents(ex, step, twap_lots=20, quote_lots=50))
    t_done = time.perf_counter()
    frames = ex.history.to_polars()
    events = frames["events"]
    print(f"orderbook-gym demo: {args.lanes} lanes x {args.steps} steps on the synthetic market, all faults on")
    print(f"  start {t_ready - t0:.2f} s, stepping {t_done - t_ready:.2f} s "
          f"({args.lanes * args.steps / (t_done - t_ready):,.0f} env-steps/s), {len(ex.history.events):,} events")
    with pl.Config(tbl_rows=20, tbl_cols=12, float_precision=3, tbl_width_chars=140):
        print(summary(events))
        print(events.filter(pl.col("reason") != "NONE").group_by("event", "reason").len().sort("len", descending=True))
    value = ex.portfolio_value()
    print(f"portfolio value (USD, free + locked): mean {value.mean():,.2f}, min {value.min():,.2f}, max {value.max():,.2f}")
    violations = audit(ex)
    print("audit: every invariant holds" if not violations else f"audit: {len(violations)} violations: {violations[:3]}")
    if violations:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
