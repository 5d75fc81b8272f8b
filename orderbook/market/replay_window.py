"""Where a replayed episode may run: the venue map, the window and the start of a :class:`orderbook.market.replay.ReplayMarket`.

Each function checks a user's argument against the data and says, when it refuses,
what was expected and what came (the data's first and last bars, the latest start a
window allows); none changes anything. ``ReplayMarket.__post_init__`` calls them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from orderbook.market.bars import AlignedBars
from orderbook.market.bars_validate import fmt_duration, fmt_ns


def normalise_venue_map(venue_map, data: AlignedBars) -> dict[str, tuple[str, ...]]:
    if venue_map is None:
        return {}
    if not isinstance(venue_map, dict):
        raise ValueError(f"ReplayMarket.venue_map must be a dict of data venue -> config venue(s), got {type(venue_map).__name__}")
    data_venues = sorted({v for v, _ in data.keys})
    out: dict[str, tuple[str, ...]] = {}
    for src, dst in venue_map.items():
        if src not in data_venues:
            raise ValueError(f"ReplayMarket.venue_map names data venue {src!r}, which is not in the data; data venues: {data_venues}")
        targets = (dst,) if isinstance(dst, str) else tuple(dst) if isinstance(dst, (tuple, list)) else None
        if not targets or not all(isinstance(t, str) and t for t in targets) or len(set(targets)) != len(targets):
            raise ValueError(f"ReplayMarket.venue_map[{src!r}] must be a venue name or a tuple of distinct names, got {dst!r}")
        out[src] = targets
    return out


def time_ns_of(value: Any) -> int | None:
    """UTC epoch ns of a datetime-like ``value`` (naive = UTC), or None if it is not one."""
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"ReplayMarket.start must be 'random', a bar index or an ISO 8601 time, got {value!r}") from exc
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        micros = (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        return int(micros) * 1000 + int(getattr(value, "nanosecond", 0))
    return None


def resolve_window(window: Any, data: AlignedBars, steps: int) -> tuple[int, int]:
    """Rows ``[first, end)`` of the bars lying wholly inside ``window`` (every row without one); ValueError
    unless it is a pair of times, start before end, holding a window of ``steps + 1`` bars."""
    n_bars, times, step_ns = data.time_ns.shape[0], data.time_ns, data.step_ns
    if window is None:
        return 0, n_bars
    if isinstance(window, (str, bytes)) or not isinstance(window, (tuple, list)) or len(window) != 2:
        raise ValueError(f"ReplayMarket.window must be None or a pair (start, end) of timestamps, got {window!r}")
    bounds = []
    for name, value in zip(("start", "end"), window):
        try:
            t = time_ns_of(value) if not isinstance(value, (bool, int, float, np.number)) else None
        except ValueError:  # an unreadable ISO string
            t = None
        if t is None:
            raise ValueError(f"ReplayMarket.window {name} must be a timestamp (datetime, date, ISO string, numpy.datetime64; "
                             f"naive = UTC), got {type(value).__name__} {value!r}")
        bounds.append(t)
    lo, hi = bounds
    if hi <= lo:
        raise ValueError(f"ReplayMarket.window must end after it starts, got {fmt_ns(lo)} to {fmt_ns(hi)}")
    first = int(np.searchsorted(times, lo, side="left"))  # the first bar opening at or after lo
    end = int(np.searchsorted(times, hi - step_ns, side="right"))  # one past the last bar closing by hi
    if end - first < steps + 1:
        raise ValueError(
            f"ReplayMarket.window {fmt_ns(lo)} to {fmt_ns(hi)} holds {max(end - first, 0)} bars of the data "
            f"({fmt_ns(int(times[0]))} to {fmt_ns(int(times[-1]))}), but an episode of episode_steps={steps} needs "
            f"{steps + 1}; expected a longer window or fewer steps"
        )
    return first, end


def resolve_start(start: Any, data: AlignedBars, steps: int, first: int = 0, end: int | None = None) -> int:
    """Index of the fixed window's first bar, or -1 for ``"random"``; ValueError if its ``steps + 1`` bars
    do not fit in rows ``[first, end)`` (the data, or its ``window``)."""
    n_bars, times = data.time_ns.shape[0], data.time_ns
    end = n_bars if end is None else end
    last_start = end - 1 - steps
    windowed = first > 0 or end < n_bars
    span = f"{fmt_ns(int(times[first]))} to {fmt_ns(int(times[end - 1]))}"
    where = "the window" if windowed else "the data"
    if isinstance(start, str) and start == "random":
        return -1
    if isinstance(start, (int, np.integer)) and not isinstance(start, bool):
        index = int(start)
        if not first <= index <= last_start:
            raise ValueError(
                f"ReplayMarket.start={index} is outside {where}: a window of {steps + 1} bars must start at a bar "
                f"index in [{first}, {last_start}] ({end - first} bars, {span})"
            )
        return index
    t = time_ns_of(start)
    if t is None:
        raise ValueError(f"ReplayMarket.start must be 'random', a bar index or a timestamp, got {type(start).__name__} {start!r}")
    if not times[first] <= t < times[end - 1] + data.step_ns:
        raise ValueError(f"ReplayMarket.start={fmt_ns(t)} is outside {where}'s bars ({span}, {fmt_duration(data.step_ns)} each)")
    index = int(np.searchsorted(times, t, side="right") - 1)  # the bar containing t
    if index > last_start:
        raise ValueError(
            f"ReplayMarket.start={fmt_ns(t)} leaves {end - index} bars{' of the window' if windowed else ''}, but a window needs {steps + 1} "
            f"(episode_steps={steps}); the latest start is {fmt_ns(int(times[last_start]))}"
        )
    return index
