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
# # Many episodes: how execution quality moves with latency and broker errors
#
# A grid of fault settings (ack latency x broker-error rate), each run as a batch
# of accounts working the same baseline orders on the same markets (common random
# numbers: the same seeds in every run). Every run's history is written to a
# Parquet dataset partitioned by run and episode, then read back lazily with
# `scan_parquet`, so the same analysis works on more data than fits in memory.
# Intervals are 95%, over lane-episodes (each episode of each account is one
# observation), and never leave the range their figure can take.
#
# The figures show inline (the notebook leaves matplotlib's backend to Jupyter).
# `ORDERBOOK_NOTEBOOK_SMALL=1` shrinks the grid (CI); `ORDERBOOK_NOTEBOOK_OUT`
# names a folder for the figures (also written as PNG files) and the dataset.

# %%
import os
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

import orderbook as ob
from orderbook.analytics import queries as q
from orderbook.analytics.store import EpisodeStore
from orderbook.demo import baseline_intents

SMALL = os.environ.get("ORDERBOOK_NOTEBOOK_SMALL") == "1"
OUT = Path(os.environ.get("ORDERBOOK_NOTEBOOK_OUT", "notebook_figures"))
OUT.mkdir(parents=True, exist_ok=True)
LANES, STEPS, EPISODES = (8, 40, 2) if SMALL else (64, 120, 3)
LATENCIES_MS = (20.0, 500.0, 3000.0)
ERROR_RATES = (0.0, 0.05, 0.2)
plt.rcParams.update({"figure.dpi": 72, "savefig.dpi": 80, "font.size": 9})  # small PNGs in the committed notebook


def save(fig, name):
    fig.savefig(OUT / f"many_{name}.png", bbox_inches="tight")
    plt.show()


# %% [markdown]
# ## Run the grid and write the dataset

# %%
root = OUT / "episodes"
shutil.rmtree(root, ignore_errors=True)
store = EpisodeStore(root)
for latency_ms in LATENCIES_MS:
    for error_rate in ERROR_RATES:
        faults = ob.FaultSpec(broker_error_prob=error_rate, ack_timeout_ms=2_500.0)
        latency = ob.LatencySpec(median_ms=latency_ms, sigma=0.5)
        config = ob.default_config(faults=faults, slots=16)
        config = ob.ExchangeConfig(**{**config.__dict__, "venues": tuple(v.replace(latency=latency) for v in config.venues)})
        ex = ob.Exchange(config, n_lanes=LANES)
        ex.reset(seed=0)  # the same markets in every run
        for episode in range(EPISODES):
            if episode:
                ex.reset()
            for step in range(STEPS):
                ex.step(*baseline_intents(ex, step, twap_lots=20, quote_lots=50))
        run = f"lat{int(latency_ms)}_err{int(error_rate * 100)}"
        store.write_history(run, ex.history, clear=True)
        # the runs table says what each run is, so nothing is parsed back out of its name
        store.describe_run(run, config={"latency_ms": int(latency_ms), "error_pct": int(error_rate * 100)},
                           seeds=list(range(LANES)))
print(store.runs(), len(store.files()), "files")
print(store.runs_table())

# %% [markdown]
# ## Read lazily and ask the questions
# The settings come back as numbers from the runs table (each run's `config`), so tables and
# axes follow latency and error rate in numeric order.

# %%
settings = store.runs_table().select(
    "run", pl.col("config").str.json_decode(pl.Struct({"latency_ms": pl.Int64, "error_pct": pl.Int64})).struct.unnest()
)
events = store.scan("events").join(settings.lazy(), on="run")
SETTING = ["latency_ms", "error_pct"]
quality = q.execution_quality(events, by=[*SETTING, "venue", "kind"])
summary = quality["summary"].collect().sort(*SETTING, "venue")
with pl.Config(tbl_rows=20, tbl_cols=9, tbl_width_chars=120, float_precision=3, tbl_hide_dataframe_shape=True,
               tbl_hide_column_data_types=True):
    print(summary.select(*SETTING, "venue", "kind", "orders", "fill_ratio", "reject_rate", "expiry_rate", "slippage_arrival_bps_mean"))

# %% [markdown]
# One row per lane-episode, venue and kind of order: the unit the intervals are taken over.

# %%
ev = pl.col("event")
per_episode = (
    events.group_by(*SETTING, "venue", "kind", "run", "lane", "episode")
    .agg(
        (pl.col("fill_lots").sum() / pl.col("qty_lots").filter(ev == "SUBMIT").sum()).alias("fill_ratio"),
        pl.col("slippage_arrival_bps").filter(ev == "FILL").mean().alias("slippage_bps"),
        (ev == "SUBMIT").sum().alias("submitted"),
        (ev == "EXPIRE").sum().alias("expired"),
        ((ev == "REJECT") & (pl.col("reason") == "BROKER_ERROR")).sum().alias("broker_errors"),
        ((ev == "REJECT") & (pl.col("reason") != "BROKER_ERROR")).sum().alias("refused"),
    )
    .collect()
)


def mean_ci(frame, value, by, low=-np.inf, high=np.inf):
    """Mean of ``value`` per group with a normal 95% interval over its rows, clipped to ``[low, high]``."""
    x = pl.col(value).drop_nans().drop_nulls()
    half = 1.96 * x.std() / x.count().sqrt()
    return (
        frame.group_by(by)
        .agg(x.mean().alias("mean"), (x.mean() - half).clip(low, high).alias("lo"), (x.mean() + half).clip(low, high).alias("hi"),
             x.count().alias("n"))
        .sort(by)
    )


def wilson(k, n, z=1.96):
    """The Wilson 95% interval of a rate ``k / n``: always inside [0, 1], sensible at 0 and n."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


# %% [markdown]
# ## Fill ratio and slippage by venue and fault setting
# Latency past the ack timeout (2.5 s) costs fills: the acks of slow orders never come in
# time. Broker errors cost fills at any latency. Neither moves the slippage of what does
# fill (the three error rates lie on each other).

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for venue, kind, marker, shift in (("alpha", "MARKET", "o", 0.97), ("beta", "LIMIT", "s", 1.03)):
    part = per_episode.filter((pl.col("venue") == venue) & (pl.col("kind") == kind))
    for ax, value, bounds in ((axes[0], "fill_ratio", (0.0, 1.0)), (axes[1], "slippage_bps", (-np.inf, np.inf))):
        stats = mean_ci(part, value, SETTING, *bounds)
        for color, error_pct in zip(("tab:blue", "tab:orange", "tab:red"), sorted(stats["error_pct"].unique())):
            row = stats.filter(pl.col("error_pct") == error_pct)
            x = row["latency_ms"].to_numpy() * shift  # side by side, not on top of each other
            yerr = np.vstack([row["mean"] - row["lo"], row["hi"] - row["mean"]])
            ax.errorbar(x, row["mean"], yerr=yerr, marker=marker, color=color, capsize=3, ls="-" if kind == "MARKET" else "--",
                        label=f"{venue} {kind.lower()}, errors {error_pct}%")
for ax, title in zip(axes, ("fill ratio per lane-episode", "mean slippage vs arrival (bps) per lane-episode")):
    ax.set_xscale("log")
    ax.set_xticks(LATENCIES_MS, [f"{x:g}" for x in LATENCIES_MS])
    ax.set_xlabel("median ack latency (ms)")
    ax.set_title(title)
axes[0].set_ylim(0, 1.02)
axes[0].legend(fontsize=7)
fig.tight_layout()
save(fig, "fill_and_slippage")

# %% [markdown]
# ## Rejects and expiries
# Rejects per lane-episode by cause (broker errors learned at the ack, and orders refused
# before sending: venue down, rate limited), settings in numeric order; expiries as a
# share of the orders sent, with Wilson intervals.

# %%
rejects = mean_ci(per_episode.group_by(*SETTING, "run", "lane", "episode").agg(pl.col("broker_errors", "refused").sum())
                  .unpivot(index=[*SETTING, "run", "lane", "episode"], variable_name="cause"), "value", [*SETTING, "cause"], low=0.0)
with pl.Config(float_precision=2, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
    print(rejects.pivot(on="cause", index=SETTING, values="mean"))
settings = rejects.select(SETTING).unique().sort(SETTING)
labels = [f"{lat} ms\n{err}%" for lat, err in settings.iter_rows()]
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
width = 0.4
for i, (cause, color) in enumerate((("broker_errors", "tab:red"), ("refused", "tab:gray"))):
    row = settings.join(rejects.filter(pl.col("cause") == cause), on=SETTING, how="left")
    x = np.arange(settings.height) + (i - 0.5) * width
    yerr = np.vstack([row["mean"] - row["lo"], row["hi"] - row["mean"]])
    axes[0].bar(x, row["mean"], width, yerr=yerr, capsize=2, color=color, label=cause.replace("_", " "))
axes[0].set_xticks(np.arange(settings.height), labels, fontsize=7)
axes[0].set_xlabel("median ack latency / broker-error rate")
axes[0].set_title("rejects per lane-episode (95% interval, never below 0)")
axes[0].legend(fontsize=7)
sent = per_episode.group_by(SETTING).agg(pl.col("expired", "submitted").sum()).sort(SETTING)
for color, error_pct in zip(("tab:blue", "tab:orange", "tab:red"), sorted(sent["error_pct"].unique())):
    row = sent.filter(pl.col("error_pct") == error_pct)
    rate = (row["expired"] / row["submitted"]).to_numpy()
    lo, hi = wilson(row["expired"], row["submitted"])
    axes[1].errorbar(row["latency_ms"].to_numpy() * (0.95 + 0.05 * (error_pct > 0) + 0.05 * (error_pct > 5)), rate,
                     yerr=np.vstack([rate - lo, hi - rate]), marker="o", capsize=3, color=color, label=f"errors {error_pct}%")
axes[1].set_xscale("log")
axes[1].set_xticks(LATENCIES_MS, [f"{x:g}" for x in LATENCIES_MS])
axes[1].set_xlabel("median ack latency (ms)")
axes[1].set_ylim(0, 1)
axes[1].set_title("expiry rate of sent orders (Wilson 95%)")
axes[1].legend(fontsize=7)
fig.tight_layout()
save(fig, "rejects_expiries")

# %% [markdown]
# The pandas view of the same data, for those who want it:

# %%
print(store.scan("ledger").select("run", "lane", "episode", "venue_name", "asset_name", "cause", "delta_free").head(5).collect().to_pandas())
