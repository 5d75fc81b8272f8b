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
# One account works baseline orders on the synthetic two-venue market with every
# broker fault on: a TWAP of market buys on `alpha`, a passive seller on `beta` that
# reprices every five minutes. Everything below is computed from the episode's
# history (Polars frames): the lifecycle of every order, fills on the price chart,
# slippage, balances per venue and asset, and the portfolio value in USD.
#
# `ORDERBOOK_NOTEBOOK_SMALL=1` shrinks the episode (CI); `ORDERBOOK_NOTEBOOK_OUT`
# names a folder for the figures as PNG files.

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

import orderbook as ob
from orderbook import queries as q
from orderbook.demo import baseline_intents

SMALL = os.environ.get("ORDERBOOK_NOTEBOOK_SMALL") == "1"
OUT = Path(os.environ.get("ORDERBOOK_NOTEBOOK_OUT", "notebook_figures"))
OUT.mkdir(parents=True, exist_ok=True)
STEPS = 60 if SMALL else 240


def save(fig, name):
    fig.savefig(OUT / f"episode_{name}.png", dpi=80, bbox_inches="tight")
    plt.show()


# %% [markdown]
# ## Run the episode
# USDC can depeg in this market (a `DepegSpec`), so the account's USDC moves its USD value.

# %%
market = ob.SyntheticMarket(depeg={"USDC": ob.DepegSpec(start_prob=0.01, size_mean=0.05, half_life_steps=60)})
config = ob.default_config(market=market)
ex = ob.Exchange(config, n_lanes=1)
ex.reset(seed=7)
value_usd = [float(ex.portfolio_value()[0])]
for step in range(STEPS):
    ex.step(*baseline_intents(ex, step, twap_lots=20, quote_lots=50))
    value_usd.append(float(ex.portfolio_value()[0]))
frames = ex.history.to_polars()
events, ledger, mkt = frames["events"], frames["ledger"], frames["market"]
print(f"{events.height} events, {ledger.height} ledger rows, {mkt.height} market rows")

# %% [markdown]
# ## The order system's questions
# Open orders (an order is open only if its *latest* event leaves it live), latest
# balances across venues, locked balances on one venue, and totals per venue in USD.

# %%
print(q.open_orders(events).select("order_id", "venue", "symbol", "side", "kind", "status", "quantity", "filled_quantity"))
print(q.latest_balances(ledger, lane=0).select("venue_name", "asset_name", "free_atoms", "locked_atoms"))
print(q.locked_balances(ledger, "beta", lane=0).select("venue_name", "asset_name", "locked_atoms"))
print(q.total_by_venue(ledger, mkt, config=config, lane=0))

# %% [markdown]
# ## Order lifecycle timeline
# Each order is a bar from its submission to its terminal status (or to now, if it
# is still live), coloured by how it ended.

# %%
orders = q.latest_order_state(events).sort("order_id")
end_ns = events.group_by("order_id").agg(pl.col("time_ns").max().alias("end_ns"))
orders = orders.join(end_ns, on="order_id")
colors = {"FILLED": "tab:green", "CANCELLED": "tab:orange", "EXPIRED": "tab:red", "REJECTED": "black"}
fig, ax = plt.subplots(figsize=(10, 5))
t0 = events["time_ns"].min()
for row in orders.iter_rows(named=True):
    start = (row["submit_ns"] - t0) / 60e9
    width = max((row["end_ns"] - row["submit_ns"]) / 60e9, 0.4)  # market orders live ~50 ms: keep them visible
    ax.barh(row["order_id"], width, left=start, color=colors.get(str(row["status"]), "tab:blue"), height=0.8)
ax.set_xlabel("minutes since the episode began")
ax.set_ylabel("order id")
ax.set_title("Order lifecycles (green filled, orange cancelled, red expired, black rejected, blue live)")
save(fig, "lifecycle")

# %% [markdown]
# ## Fills on the price chart, per venue

# %%
fills = events.filter(pl.col("event") == "FILL")
fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for ax, venue in zip(axes, ["alpha", "beta"]):
    prices = mkt.filter((pl.col("venue") == venue) & (pl.col("symbol") == "BTC/USD"))
    ax.plot(prices["step"], prices["mid"], color="gray", lw=1, label="mid BTC/USD")
    vf = fills.filter(pl.col("venue") == venue)
    for side, color in (("BUY", "tab:green"), ("SELL", "tab:red")):
        sf = vf.filter(pl.col("side") == side)
        ax.scatter(sf["step"], sf["fill_price"], s=8, color=color, label=f"{side.lower()} fills")
    ax.set_title(venue)
    ax.set_xlabel("step")
    ax.legend()
axes[0].set_ylabel("USD")
save(fig, "fills")

# %% [markdown]
# ## Slippage of every fill, against the arrival mid

# %%
fig, ax = plt.subplots(figsize=(8, 4))
for kind, color in (("MARKET", "tab:blue"), ("LIMIT", "tab:purple")):
    slip = fills.filter(pl.col("kind") == kind)["slippage_arrival_bps"].drop_nulls()
    if slip.len():
        ax.hist(slip.to_numpy(), bins=40, alpha=0.6, color=color, label=f"{kind.lower()} ({slip.len()} fills)")
ax.set_xlabel("slippage vs arrival mid (bps, positive = cost)")
ax.legend()
save(fig, "slippage")

# %% [markdown]
# ## Balances per venue and asset over time
# Free plus locked after every ledger row, carried forward to the end of each step.

# %%
balances = (
    ledger.with_columns(((pl.col("free_after") + pl.col("locked_after"))).alias("total_atoms"))
    .group_by("step", "venue_name", "asset_name")
    .agg(pl.col("total_atoms").sort_by("seq").last())
    .sort("step")
)
atoms = {a.name: a.atoms_per_unit for a in config.assets}
fig, axes = plt.subplots(1, len(atoms), figsize=(14, 3))
for ax, asset in zip(axes, atoms):
    for venue in ("alpha", "beta"):
        b = balances.filter((pl.col("asset_name") == asset) & (pl.col("venue_name") == venue))
        ax.step(b["step"], b["total_atoms"] / atoms[asset], where="post", label=venue)
    ax.set_title(asset)
    ax.set_xlabel("step")
axes[0].legend()
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
