# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # One episode, end to end
#
# One account works baseline orders on the synthetic two-venue market with broker
# faults turned up (so every kind of event shows): a TWAP of market buys on `alpha`,
# a passive seller on `beta` that quotes $8 above the ask and reprices every five
# minutes (cancels what still rests, sends a new quote). Everything below is computed from the episode's history (Polars
# frames): the lifecycle of every order over the quotes, fills on the price chart,
# slippage, balances per venue and asset, and the portfolio value in USD.
#
# The figures show inline (the notebook leaves matplotlib's backend to Jupyter).
# `ORDERBOOK_NOTEBOOK_SMALL=1` shrinks the episode (CI); `ORDERBOOK_NOTEBOOK_OUT`
# names a folder where the figures are also written as PNG files.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

import orderbook as ob
from orderbook.analytics import queries as q
from orderbook.demo import baseline_intents

SMALL = os.environ.get("ORDERBOOK_NOTEBOOK_SMALL") == "1"
OUT = Path(os.environ.get("ORDERBOOK_NOTEBOOK_OUT", "notebook_figures"))
OUT.mkdir(parents=True, exist_ok=True)
STEPS = 60 if SMALL else 240
plt.rcParams.update({"figure.dpi": 72, "savefig.dpi": 80, "font.size": 9})  # small PNGs in the committed notebook


def save(fig, name):
    fig.savefig(OUT / f"episode_{name}.png", bbox_inches="tight")
    plt.show()


# %% [markdown]
# ## Run the episode
# USDC can depeg in this market (a `DepegSpec`), so the account's USDC moves its USD value.
# Faults: 5% broker errors, 3% lost acks (the order expires after a 3 s ack timeout),
# venue cancels of resting orders 5% per step, a one-in-fifty chance per step of an outage.

# %%
market = ob.SyntheticMarket(depeg={"USDC": ob.DepegSpec(start_prob=0.01, size_mean=0.05, half_life_steps=60)})
faults = ob.FaultSpec(broker_error_prob=0.05, lost_ack_prob=0.03, ack_timeout_ms=3_000.0, outage_start_prob=0.02,
                      unsolicited_cancel_prob=0.05)
config = ob.default_config(market=market, faults=faults)
ex = ob.Exchange(config, n_lanes=1)
ex.reset(seed=7)
value_usd = [float(ex.portfolio_value()[0])]
AWAY_TICKS = 800  # the passive quote sits $8 (800 ticks) above the ask: some fill, some wait, some are cancelled
for step in range(STEPS):
    intents, cancels = baseline_intents(ex, step, twap_lots=20, quote_lots=50)
    intents.price_ticks[:, 1] += AWAY_TICKS * (intents.qty_lots[:, 1] > 0)
    ex.step(intents, cancels)
    value_usd.append(float(ex.portfolio_value()[0]))
frames = ex.history.to_polars()
events, ledger, mkt = frames["events"], frames["ledger"], frames["market"]
T0_NS = int(mkt["time_ns"].min())
minutes = lambda col: (pl.col(col) - T0_NS) / 60e9  # noqa: E731
print(f"{events.height} events, {ledger.height} ledger rows, {mkt.height} market rows")
counts = events.group_by("event").len().sort("len", descending=True)
print(", ".join(f"{n} {e}" for e, n in counts.iter_rows()))

# %% [markdown]
# ## The order system's questions
# Open orders (an order is open only if its *latest* event leaves it live), latest
# balances across venues, locked balances on one venue, and totals per venue in USD.

# %%
with pl.Config(tbl_rows=8, tbl_width_chars=120, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
    print(q.open_orders(events).select("order_id", "venue", "symbol", "side", "kind", "status", "quantity", "filled_quantity"))
    print(q.latest_balances(ledger, lane=0).select("venue_name", "asset_name", "free_atoms", "locked_atoms"))
    print(q.locked_balances(ledger, "beta", lane=0).select("venue_name", "asset_name", "locked_atoms"))
    print(q.total_by_venue(ledger, mkt, config=config, lane=0))

# %% [markdown]
# ## Order lifecycles over the quotes
# Half an hour of the episode (the one with the most kinds of event), one panel per venue: the bid and ask of BTC/USD
# (grey band), and every order on its price (limits at their limit, market orders at
# what they paid) from submission to its end, green for buys and red for sells, with a
# marker for each event. A market order lives for its ack latency (tens of ms), so its
# events stack on one spot; the next figure spreads them out in time.

# %%
WINDOW_MIN = 20 if SMALL else 30
EVENT_STYLE = {  # event: (marker, size, filled, label)
    "SUBMIT": ("o", 18, False, "submit"),
    "ACK": ("|", 60, True, "ack"),
    "FILL": ("o", 30, True, "fill (at its price)"),
    "CANCEL_REQUEST": ("4", 60, True, "cancel sent"),
    "CANCEL_ACK": ("x", 45, True, "cancelled"),
    "VENUE_CANCEL": ("D", 30, False, "venue cancel"),
    "TIF_CANCEL": ("s", 30, False, "IOC / protection cancel"),
    "CANCEL_REJECT": ("1", 60, True, "cancel too late"),
    "EXPIRE": ("v", 40, True, "expired"),
    "REJECT": ("X", 50, True, "rejected"),
}
SIDE_COLOR = {"BUY": "tab:green", "SELL": "tab:red"}

ev = events.with_columns(minutes("time_ns").alias("t_min"))
order_y = ev.group_by("order_id").agg(  # where an order sits on the price axis
    pl.when(pl.col("kind").first() == "LIMIT").then(pl.col("price").first())
    .otherwise(pl.coalesce(pl.col("fill_price").drop_nulls().mean(), pl.col("decision_mid").first())).alias("y"),
    pl.col("t_min").min().alias("start"), pl.col("t_min").max().alias("end"),
)
ev = ev.join(order_y, on="order_id")
starts = range(0, max(STEPS - WINDOW_MIN, 0) + 1, 5)  # show the window with the most kinds of event
kinds_in = [ev.filter(pl.col("start").is_between(a, a + WINDOW_MIN, closed="left"))["event"].n_unique() for a in starts]
W0 = starts[int(np.argmax(kinds_in))]
ev = ev.filter(pl.col("start").is_between(W0, W0 + WINDOW_MIN, closed="left"))

fig, axes = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
for ax, venue in zip(axes, ("alpha", "beta")):
    quotes = mkt.filter((pl.col("venue") == venue) & (pl.col("symbol") == "BTC/USD")).with_columns(minutes("time_ns").alias("t_min"))
    quotes = quotes.filter(pl.col("t_min").is_between(W0 - 1, W0 + WINDOW_MIN + 1))
    ax.fill_between(quotes["t_min"], quotes["bid"], quotes["ask"], step="post", color="0.85", label="bid-ask")
    ax.step(quotes["t_min"], quotes["bid"], where="post", color="0.5", lw=0.8)
    ax.step(quotes["t_min"], quotes["ask"], where="post", color="0.5", lw=0.8)
    mine = ev.filter(pl.col("venue") == venue)
    spans = mine.group_by("order_id").agg(pl.col("start", "end", "y", "side").first())
    for side, color in SIDE_COLOR.items():
        s = spans.filter(pl.col("side") == side)
        ax.hlines(s["y"], s["start"], s["end"].clip(upper_bound=W0 + WINDOW_MIN + 1), color=color, lw=1.2, alpha=0.7)
    for name, (marker, size, filled, label) in EVENT_STYLE.items():
        rows = mine.filter(pl.col("event") == name)
        if rows.height == 0:
            continue
        y = rows["fill_price"] if name == "FILL" else rows["y"]
        colors = [SIDE_COLOR[s] for s in rows["side"]]
        style = dict(facecolors=colors if filled else "none", edgecolors=colors) if marker in "oXvD" else dict(c=colors)
        ax.scatter(rows["t_min"], y, marker=marker, s=size, linewidths=1, label=f"{label} ({rows.height})", zorder=3, **style)
    kinds = ", ".join(f"{k.lower()} {s.lower()}s" for k, s in mine.select("kind", "side").unique().sort("kind").iter_rows())
    ax.set_title(f"{venue} BTC/USD: {kinds}")
    ax.set_ylabel("USD")
    ax.legend(loc="upper left", fontsize=7, ncol=5, framealpha=0.9)
axes[-1].set_xlim(W0 - 0.2, W0 + WINDOW_MIN + 0.5)
axes[-1].set_xlabel("minutes since the episode began (green: buy, red: sell)")
fig.tight_layout()
save(fig, "lifecycle")

# %% [markdown]
# ## When each event comes, after its order was sent
# Every order of the episode: milliseconds from submission to each of its events (log
# scale). Acks and taker fills come after the venue's latency; maker fills wait for the
# market to trade through the quote; acks that never come end at the ack timeout. Orders
# refused before sending (venue down, rate limited) sit at the left edge.

# %%
after = events.with_columns(((pl.col("time_ns") - pl.col("time_ns").min().over("order_id")) / 1e6).alias("ms_after"))
after = after.filter(pl.col("event") != "SUBMIT").with_columns(pl.col("ms_after").clip(lower_bound=0.5))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharex=True)
for ax, (venue, kind) in zip(axes, (("alpha", "MARKET"), ("beta", "LIMIT"))):
    part = after.filter((pl.col("venue") == venue) & (pl.col("kind") == kind))
    for name, (marker, size, _, label) in EVENT_STYLE.items():
        rows = part.filter(pl.col("event") == name)
        if rows.height:
            ax.scatter(rows["ms_after"], rows["order_id"], marker=marker, s=size * 0.6, label=f"{label} ({rows.height})")
    ax.set_xscale("log")
    ax.set_title(f"{venue}: {kind.lower()} orders")
    ax.set_xlabel("ms after submission")
    ax.legend(fontsize=7)
axes[0].set_ylabel("order id")
fig.tight_layout()
save(fig, "event_times")

# %% [markdown]
# ## Fills on the price, with the resting quotes
# The whole episode per venue: bid and ask at each step's close, every fill at its
# price (size by quantity), and the passive seller's limit quotes as segments from
# their ack to their end (filled, cancelled, expired).

# %%
fills = events.filter(pl.col("event") == "FILL").with_columns(minutes("time_ns").alias("t_min"))
resting = (
    events.filter(pl.col("kind") == "LIMIT")
    .group_by("order_id")
    .agg(pl.col("venue").first(), pl.col("price").first(), pl.col("side").first(),
         minutes("time_ns").filter(pl.col("event") == "ACK").min().alias("live_from"), minutes("time_ns").max().alias("until"))
    .drop_nulls("live_from")
)
fig, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
for ax, venue in zip(axes, ("alpha", "beta")):
    quotes = mkt.filter((pl.col("venue") == venue) & (pl.col("symbol") == "BTC/USD")).with_columns(minutes("time_ns").alias("t_min"))
    ax.fill_between(quotes["t_min"], quotes["bid"], quotes["ask"], step="post", color="0.8", label="bid-ask")
    r = resting.filter(pl.col("venue") == venue)
    if r.height:
        ax.hlines(r["price"], r["live_from"], r["until"], color="tab:orange", lw=2, label=f"resting limit quotes ({r.height})")
    vf = fills.filter(pl.col("venue") == venue)
    for side, color in SIDE_COLOR.items():
        sf = vf.filter(pl.col("side") == side)
        if sf.height:
            ax.scatter(sf["t_min"], sf["fill_price"], s=4 + 4000 * sf["fill_quantity"], color=color, alpha=0.7, zorder=3,
                       label=f"{side.lower()} fills ({sf.height})")
    ax.set_title(venue)
    ax.set_ylabel("USD")
    ax.legend(loc="upper left", fontsize=7)
axes[-1].set_xlabel("minutes since the episode began")
fig.tight_layout()
save(fig, "fills")

# %% [markdown]
# ## Slippage of every fill, against the arrival mid
# The same bins for both kinds of order, each on its own count axis, so the few limit
# fills are as readable as the many market fills (the 1% most extreme fills are drawn
# in the edge bins). Negative slippage is a gain (a maker
# earns the half spread).

# %%
slips = {kind: fills.filter(pl.col("kind") == kind)["slippage_arrival_bps"].drop_nulls().to_numpy() for kind in ("MARKET", "LIMIT")}
every = np.concatenate(list(slips.values()))
low, high = np.percentile(every, [0.5, 99.5]) if len(every) else (-1.0, 1.0)
bins = np.linspace(low, high, 41)  # one set of bins for both kinds; the rare outliers land in the edge bins
means = {kind: x.mean() if len(x) else float("nan") for kind, x in slips.items()}
slips = {kind: np.clip(x, low, high) for kind, x in slips.items()}
fig, axes = plt.subplots(2, 1, figsize=(8, 4.5), sharex=True)
for ax, (kind, color) in zip(axes, (("MARKET", "tab:blue"), ("LIMIT", "tab:purple"))):
    x = slips[kind]
    ax.hist(x, bins=bins, color=color, alpha=0.8)
    ax.axvline(0, color="black", lw=0.8)
    if len(x):
        ax.axvline(np.clip(means[kind], low, high), color=color, ls="--", lw=1)
    ax.set_ylabel("fills")
    ax.set_title(f"{kind.lower()} orders: {len(x)} fills, mean {means[kind]:+.2f} bps", fontsize=9)
axes[-1].set_xlabel("slippage vs arrival mid (bps, positive = cost)")
fig.tight_layout()
save(fig, "slippage")

# %% [markdown]
# ## Balances per venue and asset
# Free plus locked (blue, left axis) and the locked part (orange, right axis:
# reservations of orders in flight or resting), as time-weighted means over each minute,
# for the assets that moved; the assets that never moved are listed in the title. A
# market buy locks its protection band for its ~50 ms of latency (next to nothing on average); the
# seller's quotes lock BTC for as long as they rest. Buys on `alpha` turn USD into BTC
# and lock USD while in flight; the seller on `beta` locks BTC while its quote rests.

# %%
atoms = {a.name: a.atoms_per_unit for a in config.assets}
rows = ledger.filter(pl.col("cause") != "DEPOSIT")
moved = rows.select("venue_name", "asset_name").unique()
moved_assets = [a for a in atoms if a in set(moved["asset_name"].cast(pl.Utf8))]
still = ledger.filter(pl.col("cause") == "DEPOSIT").join(moved, on=["venue_name", "asset_name"], how="anti")
grid_ns = T0_NS + 5_000_000 + np.arange(STEPS * 6_000) * 10_000_000  # every 10 ms of the episode
legend_done = False
fig, axes = plt.subplots(len(moved_assets), 2, figsize=(11, 2.6 * len(moved_assets)), sharex=True, squeeze=False)
for i, asset in enumerate(moved_assets):
    for j, venue in enumerate(("alpha", "beta")):
        ax = axes[i, j]
        b = ledger.filter((pl.col("asset_name") == asset) & (pl.col("venue_name") == venue)).sort("seq")
        # time-weighted means per minute (sampled every 10 ms): a market order locks funds for its
        # ~50 ms of latency, a resting quote for minutes; drawn row by row, both would look alike
        row = np.searchsorted(b["time_ns"].to_numpy(), grid_ns, side="right") - 1
        free = (b["free_after"].to_numpy()[row] / atoms[asset]).reshape(STEPS, -1).mean(axis=1)
        locked = (b["locked_after"].to_numpy()[row] / atoms[asset]).reshape(STEPS, -1).mean(axis=1)
        total = np.append(free + locked, (b["free_after"][-1] + b["locked_after"][-1]) / atoms[asset])
        locked = np.append(locked, locked[-1])
        t = np.arange(STEPS + 1)
        ax.step(t, total, where="post", color="tab:blue", lw=1.5, label="free + locked")
        ax.fill_between(t, total.min(), total, step="post", color="tab:blue", alpha=0.15)
        if locked.max() > 0:
            twin = ax.twinx()
            twin.fill_between(t, 0, locked, step="post", color="tab:orange", alpha=0.6, label="locked (right axis)")
            twin.set_ylabel("locked", color="tab:orange", fontsize=7)
            twin.set_ylim(0, locked.max() * 3)  # locked fills the lower third of the panel
            twin.tick_params(axis="y", labelcolor="tab:orange", labelsize=7)
        fmt = "{:,.4f}" if atoms[asset] >= 10**8 else "{:,.2f}"
        start = (b["free_after"][0] + b["locked_after"][0]) / atoms[asset]  # the deposit
        change = total[-1] - start
        note = "" if locked.max() > 0 else ", never locked"
        ax.set_title(f"{asset} on {venue}: {fmt.format(start)} -> {fmt.format(total[-1])} "
                     f"({'+' if change >= 0 else ''}{fmt.format(change)}){note}", fontsize=9)
        if j == 0:
            ax.set_ylabel(asset)
        if locked.max() > 0 and not legend_done:
            handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
            ax.legend(handles=handles, loc="upper center", fontsize=7)
            legend_done = True
for ax in axes[-1]:
    ax.set_xlabel("minutes since the episode began")
unchanged = ", ".join(f"{r['asset_name']} {r['free_after'] / atoms[str(r['asset_name'])]:,.0f} on {r['venue_name']}" for r in still.iter_rows(named=True))
fig.suptitle(f"unchanged: {unchanged}" if unchanged else "every balance moved", fontsize=9)
fig.tight_layout()
save(fig, "balances")

# %% [markdown]
# ## Portfolio value in USD (free plus locked, latest mids; USDC at its own price)

# %%
fig, ax = plt.subplots(figsize=(8, 3))
ax.plot(range(len(value_usd)), value_usd)
ax.set_xlabel("step")
ax.set_ylabel("USD")
save(fig, "value")
totals = q.total_by_venue(ledger, mkt, config=config, lane=0)
print("value from the history:", round(float(totals["value"].sum()), 2), " live:", round(value_usd[-1], 2))
