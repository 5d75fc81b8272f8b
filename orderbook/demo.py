"""Demo: a batch of lanes working baseline orders on the synthetic market.

    python -m orderbook.demo --lanes 64 --steps 240      # or: orderbook-demo --lanes 64

Every lane works the same two baseline strategies with all faults on: a TWAP of
market child orders buying on venue ``alpha``, and a passive seller that quotes
a limit one tick inside the ask on ``beta`` and cancels what is still open after
a few steps. The summary is computed from the history frames with Polars.

The first run after installing compiles the kernels (a minute or two; a notice on
stderr says so); the time it takes is reported apart from the stepping time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

import orderbook as ob
from orderbook.analytics.audit import audit
from orderbook.compile import compile_notice
from orderbook.engine.intents import empty_intents
from orderbook.spec import codes as c


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
        live = (ex.orders.status == c.OPEN) | (ex.orders.status == c.PARTIAL)  # acknowledged, no cancel in flight
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


def _count(low: int, high: int):
    """An argparse type: an int in ``[low, high]`` (else one line and exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer in [{low}, {high}], got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer in [{low}, {high}], got {value}")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit code 2, without the usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="orderbook-demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lanes", type=_count(1, 1 << 16), default=64, metavar="N", help="lanes (accounts) in the batch (default: 64)")
    p.add_argument("--steps", type=_count(1, 1 << 20), default=240, metavar="N", help="steps of one minute each (default: 240)")
    p.add_argument("--seed", type=_count(0, (1 << 63) - 1), default=0, metavar="N", help="seed of lane 0; lane b gets seed + b (default: 0)")
    return p


def main(argv: list[str] | None = None) -> None:
    """``python -m orderbook.demo`` and the ``orderbook-demo`` console script."""
    args = parser().parse_args(argv)
    compile_notice.install()  # before the exchange is built: its first kernels compile there on a cold run

    cfg = ob.default_config(quotes=("USD", "USDT", "USDC"))
    t0, compile0 = time.perf_counter(), compile_notice.compile_seconds()
    ex = ob.Exchange(cfg, n_lanes=args.lanes)
    ex.reset(seed=args.seed)
    t_ready, compile_ready = time.perf_counter(), compile_notice.compile_seconds()
    for step in range(args.steps):
        ex.step(*baseline_intents(ex, step, twap_lots=20, quote_lots=50))
    t_done, compile_done = time.perf_counter(), compile_notice.compile_seconds()
    compile_notice.finish()
    start_s = t_ready - t0 - (compile_ready - compile0)
    step_s = max(t_done - t_ready - (compile_done - compile_ready), 1e-9)
    compiled = f"compiling kernels {compile_done - compile0:.1f} s (first run only, cached afterwards), " if compile_done > compile0 else ""
    frames = ex.history.to_polars()
    events = frames["events"]
    print(f"orderbook-gym demo: {args.lanes} lanes x {args.steps} steps on the synthetic market, all faults on")
    print(f"  {compiled}start {start_s:.2f} s, stepping {step_s:.2f} s "
          f"({args.lanes * args.steps / step_s:,.0f} env-steps/s), {len(ex.history.events):,} events")
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
