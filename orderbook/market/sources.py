"""Market sources behind one small interface: ``reset(lanes, bars, mask)`` and
``advance(lanes, bars)``.

``advance`` is the clock: it moves every lane one step (``lanes.step += 1``),
keeps the quotes the agent decided on (``ref_bid/ref_ask``) and writes the new
bar and the quotes at its close. ``reset`` writes the starting quotes of the
masked lanes (and, for replayed data, their start time).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from orderbook.compile.jit import parallel_blocks
from orderbook.compile.packed import Call
from orderbook.market.synthetic import (
    SyntheticMarket,
    compile_synthetic,
    new_synthetic_state,
    synthetic_advance,
    synthetic_advance_parallel,
    synthetic_reset,
)
from orderbook.spec.bounds import MAX_TIME_NS


class MarketSource(Protocol):
    def reset(self, lanes, bars, mask: np.ndarray) -> None: ...

    def advance(self, lanes, bars) -> None: ...

    def advance_call(self, lanes, bars) -> Call:
        """The kernel call ``advance`` makes, for a :class:`~orderbook.compile.packed.PackedCall` (no checks)."""
        ...

    def reset_call(self, lanes, bars, mask: np.ndarray) -> Call:
        """The kernel call ``reset`` makes, for a :class:`~orderbook.compile.packed.PackedCall`."""
        ...

    def check_advance(self, lanes) -> None:
        """Raise before anything changes if ``advance`` would refuse these lanes."""
        ...


class SyntheticSource:
    """The embedded synthetic market (:class:`~orderbook.market.synthetic.SyntheticMarket`)."""

    def __init__(self, spec: SyntheticMarket, config, compiled, n_lanes: int):
        names = [a.name for a in config.assets]
        self.params = compile_synthetic(spec, names, config.instruments, config.numeraire)
        self.state = new_synthetic_state(n_lanes, len(names), len(config.instruments))
        self.compiled = compiled
        self.last_start_ns = MAX_TIME_NS - config.step_ns  # a lane's clock never passes MAX_TIME_NS
        self.step_ns = config.step_ns
        self.checks = 0  # check_advance calls: times checks x step_ns bounds every lane's clock (0 at reset)

    def reset(self, lanes, bars, mask: np.ndarray) -> None:
        synthetic_reset(self.compiled, self.params, self.state, lanes, bars, mask)

    def advance(self, lanes, bars) -> None:
        synthetic_advance(self.compiled, self.params, self.state, lanes, bars)

    def advance_call(self, lanes, bars) -> Call:
        blocks = parallel_blocks(lanes.step.shape[0])
        if blocks:
            return Call(synthetic_advance_parallel, (self.compiled, self.params, self.state, lanes, bars, blocks))
        return Call(synthetic_advance, (self.compiled, self.params, self.state, lanes, bars))

    def reset_call(self, lanes, bars, mask: np.ndarray) -> Call:
        return Call(synthetic_reset, (self.compiled, self.params, self.state, lanes, bars, mask))

    def check_advance(self, lanes) -> None:
        """A synthetic market never runs out of bars, but its clock (0 at reset) stops at ``MAX_TIME_NS``.

        The arrays are read only once ``checks x step_ns`` could have passed the bound
        (never, at a 1-minute step, before 5e10 steps): a step pays a Python increment.
        """
        self.checks += 1
        if self.checks * self.step_ns > self.last_start_ns and lanes.time_ns.max() > self.last_start_ns:
            over = np.flatnonzero(lanes.active & (lanes.time_ns > self.last_start_ns)).tolist()
            if over:
                raise ValueError(
                    f"lane(s) {over} are at market time > MAX_TIME_NS - step = {self.last_start_ns} ns, the end of the "
                    f"int64 clock (orderbook.spec.bounds); expected them reset before stepping further"
                )


def make_source(config, compiled, n_lanes: int) -> MarketSource:
    """The source for ``config.market``; refuses anything that is not a known market spec."""
    market = config.market
    if isinstance(market, SyntheticMarket):
        return SyntheticSource(market, config, compiled, n_lanes)
    make = getattr(market, "make_source", None)
    if make is None:
        raise ValueError(
            f"ExchangeConfig.market must be a SyntheticMarket or a ReplayMarket, got {type(market).__name__}"
        )
    return make(config, compiled, n_lanes)
