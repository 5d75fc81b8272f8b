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
#
# `ORDERBOOK_NOTEBOOK_SMALL=1` shrinks the grid (CI); `ORDERBOOK_NOTEBOOK_OUT`
# names a folder for the figures and the dataset.

# %%
import os
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

import orderbook as ob
from orderbook import queries as q
from orderbook.demo import baseline_intents
from orderbook.store import EpisodeStore

SMALL = os.environ.get("ORDERBOOK_NOTEBOOK_SMALL") == "1"
OUT = Path(os.environ.get("ORDERBOOK_NOTEBOOK_OUT", "notebook_figures"))
OUT.mkdir(parents=True, exist_ok=True)
LANES, STEPS, EPISODES = (8, 40, 2) if SMALL else (64, 120, 3)
LATENCIES_MS = (20.0, 500.0, 3000.0)
ERROR_RATES = (0.0, 0.05, 0.2)


def save(fig, name):
    fig.savefig(OUT / f"many_{name}.png", dpi=80, bbox_inches="tight")
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

# %%
events = store.scan("events")
quality = q.execution_quality(events, by=["run", "venue", "kind"])
settings = store.runs_table().select(
    "run", pl.col("config").str.json_decode(pl.Struct({"latency_ms": pl.Int64, "error_pct": pl.Int64})).struct.unnest()
)
summary = (
    quality["summary"]
    .join(settings.lazy(), on="run")
    .collect()
    .sort("latency_ms", "error_pct", "venue")
)
print(summary.select("latency_ms", "error_pct", "venue", "kind", "orders", "fill_ratio", "reject_rate", "expiry_rate", "slippage_arrival_bps_mean"))

# %% [markdown]
# ## Fill ratio and slippage by venue and fault setting

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for venue, kind, marker in (("alpha", "MARKET", "o"), ("beta", "LIMIT", "s")):
    part = summary.filter((pl.col("venue") == venue) & (pl.col("kind") == kind))
    for error_pct in sorted(part["error_pct"].unique()):
        row = part.filter(pl.col("error_pct") == error_pct).sort("latency_ms")
        label = f"{venue} {kind.lower()}, errors {error_pct}%"
        axes[0].plot(row["latency_ms"], row["fill_ratio"], marker=marker, label=label)
        axes[1].plot(row["latency_ms"], row["slippage_arrival_bps_mean"], marker=marker, label=label)
for ax, title in zip(axes, ("fill ratio", "mean slippage vs arrival (bps)")):
    ax.set_xscale("log")
    ax.set_xlabel("median ack latency (ms)")
    ax.set_title(title)
axes[0].legend(fontsize=7)
save(fig, "fill_and_slippage")

# %% [markdown]
# ## Reject reasons and expiry rates

# %%
rejects = (
    quality["rejects"]
    .group_by("run", "reason")
    .agg(pl.col("rejects").sum())
    .collect()
    .pivot(on="reason", index="run", values="rejects")
    .fill_null(0)
    .sort("run")
)
print(rejects)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
reasons = [c for c in rejects.columns if c != "run"]
bottom = None
for reason in reasons:
    values = rejects[reason].to_numpy()
    axes[0].bar(rejects["run"], values, bottom=bottom, label=reason)
    bottom = values if bottom is None else bottom + values
axes[0].tick_params(axis="x", rotation=60)
axes[0].set_title("rejects by reason")
axes[0].legend(fontsize=7)
expiry = summary.group_by("latency_ms", "error_pct").agg(pl.col("expired").sum() / pl.col("sent").sum()).sort("latency_ms")
for error_pct in sorted(expiry["error_pct"].unique()):
    row = expiry.filter(pl.col("error_pct") == error_pct)
    axes[1].plot(row["latency_ms"], row["expired"], marker="o", label=f"errors {error_pct}%")
axes[1].set_xscale("log")
axes[1].set_xlabel("median ack latency (ms)")
axes[1].set_title("expiry rate (of sent orders)")
axes[1].legend()
save(fig, "rejects_expiries")

# %% [markdown]
# The pandas view of the same data, for those who want it:

# %%
print(store.scan("ledger").head(5).collect().to_pandas())
