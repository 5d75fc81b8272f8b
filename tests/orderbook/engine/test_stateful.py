"""Hypothesis state machine over the Exchange: every invariant asserted after every step.

Each invariant is its own ``@invariant`` so a failure names the one that broke.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import orderbook as ob
from orderbook.analytics import audit as au
from orderbook.engine.intents import empty_intents
from orderbook.spec import codes as c
from tests.orderbook.helpers import small_config

N_LANES = 2
CONFIG = small_config(faults=ob.FaultSpec.high())

order_st = st.tuples(
    st.integers(0, N_LANES - 1),  # lane
    st.integers(0, len(CONFIG.instruments) - 1),  # instrument
    st.sampled_from([c.BUY, c.SELL]),
    st.sampled_from([c.MARKET, c.LIMIT]),
    st.integers(-60, 60),  # limit offset from mid, in ticks x 10
    st.integers(1, 40_000),  # lots (up to 4 BTC: funds run out)
    st.sampled_from([0, 1, 30_000, 120_000, 900_000]),  # ttl ms
    st.sampled_from(list(c.TimeInForce)),  # made valid below: no ttl for GTC/IOC/FOK, no post-only market
)


class ExchangeMachine(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 2**31))
    def start(self, seed):
        self.ex = ob.Exchange(CONFIG, n_lanes=N_LANES)
        self.ex.reset(seed=seed)
        self.prefix = None

    @rule(orders=st.lists(order_st, max_size=4), cancel_bits=st.integers(0, 2 ** (N_LANES * CONFIG.slots) - 1))
    def step(self, orders, cancel_bits):
        ex = self.ex
        intents = empty_intents(N_LANES, CONFIG.max_new_orders)
        used = [0] * N_LANES
        for lane, inst, side, kind, offset, lots, ttl_ms, tif in orders:
            m = used[lane]
            if m >= CONFIG.max_new_orders:
                continue
            used[lane] += 1
            mid = (ex.bars.bid_ticks[lane, inst] + ex.bars.ask_ticks[lane, inst]) // 2
            intents.instrument[lane, m] = inst
            intents.side[lane, m] = side
            intents.kind[lane, m] = kind
            intents.price_ticks[lane, m] = max(mid + offset * 10, 1)
            intents.qty_lots[lane, m] = lots
            tif = c.TIF_IOC if kind == c.MARKET and tif == c.TIF_POST_ONLY else int(tif)
            intents.tif[lane, m] = tif
            intents.ttl_ns[lane, m] = 0 if tif in (c.TIF_GTC, c.TIF_IOC, c.TIF_FOK) else ttl_ms * 1_000_000
        bits = np.array([(cancel_bits >> j) & 1 for j in range(N_LANES * CONFIG.slots)], dtype=bool)
        self.prefix = {name: log.columns() for name, log in self._logs()}
        ex.step(intents, bits.reshape(N_LANES, CONFIG.slots))

    @rule(lane=st.integers(0, N_LANES - 1))
    def reset_one_lane(self, lane):
        mask = np.zeros(N_LANES, dtype=bool)
        mask[lane] = True
        self.prefix = {name: log.columns() for name, log in self._logs()}
        self.ex.reset(mask=mask)

    def _logs(self):
        h = self.ex.history
        return (("events", h.events), ("ledger", h.ledger), ("market", h.market))

    @invariant()
    def balances_equal_ledger_sums(self):
        assert au._balances_vs_ledger(self.ex, pl.DataFrame(self.ex.history.ledger.columns())) == []

    @invariant()
    def no_negative_free_balance(self):
        assert (self.ex.accounts.free_atoms >= 0).all()

    @invariant()
    def locked_equals_open_reservations(self):
        assert au._locked_vs_reserved(self.ex) == []

    @invariant()
    def filled_never_exceeds_quantity(self):
        o = self.ex.orders
        assert (o.filled_lots <= o.qty_lots).all()
        assert (o.filled_lots >= 0).all()

    @invariant()
    def events_absorb_have_one_terminal_and_match_the_table(self):
        assert au._event_checks(self.ex, self.ex.history.events_frame()) == []

    @invariant()
    def history_prefix_never_changes(self):
        if self.prefix is None:
            return
        for name, log in self._logs():
            now = log.columns()
            for col, before in self.prefix[name].items():
                assert len(now[col]) >= len(before), f"{name}.{col} shrank"
                np.testing.assert_array_equal(now[col][: len(before)], before, err_msg=f"{name}.{col} prefix changed")


TestExchangeMachine = ExchangeMachine.TestCase
TestExchangeMachine.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)
