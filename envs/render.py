"""``rgb_array`` pictures of a lane's episode so far, drawn from the core's history.

Top panel: the mid price of each instrument the env observes (one line per
venue) with the lane's orders on it: submitted (triangles up for buys, down for
sells, at the limit price or the decision mid for market orders), fills (dots at
the fill price), cancels (x), expiries (squares), rejects (grey dots). Bottom
panel: the task's progress (filled fraction of the parent, or portfolio value).
Matplotlib is imported here, lazily, with the Agg canvas (no display, no pyplot
global state).
"""

from __future__ import annotations

import numpy as np
import polars as pl

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 6.0, 80


def _episode(frame: pl.DataFrame, lane: int, episode: int) -> pl.DataFrame:
    return frame.filter((pl.col("lane") == lane) & (pl.col("episode") == episode))


def render_lane(task, lane: int) -> np.ndarray:
    """A ``(480, 640, 3)`` uint8 picture of lane ``lane``'s current episode."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ex = task.exchange
    episode = int(ex.lanes.episode[lane])
    minutes = 60e9
    market = _episode(ex.history.market_frame(), lane, episode)
    events = _episode(ex.history.events_frame(), lane, episode)
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    shown = set(int(i) for i in task.obs_instruments)
    for i in sorted(shown):
        rows = market.filter(pl.col("instrument") == i)
        inst = task.config.instruments[i]
        top.plot(rows["time_ns"].to_numpy() / minutes, rows["mid"].to_numpy(), lw=1.0, label=f"{inst.venue}:{inst.symbol}")
    ev = events.filter(pl.col("instrument").is_in(list(shown)))
    t = lambda f: f["time_ns"].to_numpy() / minutes  # noqa: E731
    submits = ev.filter(pl.col("event") == "SUBMIT").with_columns(
        pl.when(pl.col("kind") == "LIMIT").then(pl.col("price")).otherwise(pl.col("decision_mid")).alias("px"))
    for side, marker, color in (("BUY", "^", "tab:green"), ("SELL", "v", "tab:red")):
        s = submits.filter(pl.col("side") == side)
        top.scatter(t(s), s["px"].to_numpy(), marker=marker, s=18, color=color, label=f"{side.lower()} sent")
    marks = (("FILL", "o", "black", "fill_price", "fill"), ("CANCEL_ACK", "x", "tab:purple", "price", "cancel"),
             ("EXPIRE", "s", "tab:orange", "price", "expiry"), ("REJECT", ".", "grey", "decision_mid", "reject"))
    for name, marker, color, col, label in marks:
        s = ev.filter(pl.col("event") == name)
        top.scatter(t(s), s[col].to_numpy(), marker=marker, s=14, color=color, label=label)
    top.set_ylabel("price (quote units)")
    top.legend(loc="upper left", fontsize=6, ncol=3)
    trace = np.asarray([x[lane] for x in task.trace[task.trace_start[lane]:]]) if task.trace else np.zeros(0)
    step_min = task.config.step_ms / 60_000.0
    bottom.plot(np.arange(len(trace)) * step_min, trace, color="tab:blue")
    bottom.set_ylabel(getattr(task, "trace_label", "progress"), fontsize=8)
    bottom.set_xlabel("market time (minutes)")
    fig.suptitle(f"{task.name}  lane {lane}  episode {episode}  step {int(ex.lanes.step[lane])}", fontsize=10)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
