"""The transition table: every edge is legal data, terminal statuses absorb, the rest raise."""

from __future__ import annotations

import numpy as np
import pytest

from orderbook.compile.jit import kernel
from orderbook.engine import lifecycle as lc
from orderbook.engine.lifecycle import (
    FILL_FULL,
    INVALID,
    LIVE_STATUSES,
    TERMINAL_STATUSES,
    TRANSITIONS,
    IllegalTransition,
    legal_edges,
    next_status,
)
from orderbook.spec import codes as c
from orderbook.spec.codes import Event, Status


def test_design_edges_are_in_the_table():
    expected = {
        (Status.PENDING, "ACK", Status.OPEN),
        (Status.PENDING, "REJECT", Status.REJECTED),
        (Status.OPEN, "FILL", Status.PARTIAL),
        (Status.PARTIAL, "FILL_FULL", Status.FILLED),
        (Status.OPEN, "CANCEL_REQUEST", Status.PENDING_CANCEL),
        (Status.PENDING_CANCEL, "CANCEL_ACK", Status.CANCELLED),
        (Status.PENDING_CANCEL, "FILL_FULL", Status.FILLED),
        (Status.OPEN, "EXPIRE", Status.EXPIRED),
        (Status.PARTIAL, "EXPIRE", Status.EXPIRED),
        (Status.OPEN, "VENUE_CANCEL", Status.CANCELLED),
    }
    assert expected <= set(legal_edges())


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_terminal_statuses_absorb(status):
    for edge in range(TRANSITIONS.shape[1]):
        target = next_status(int(status), edge)
        if edge == Event.CANCEL_REJECT:
            assert target == status  # a late cancel is recorded, status unchanged
        else:
            assert target == INVALID, f"{status.name} has an edge out: {edge}"


def test_every_live_status_can_reach_a_terminal_status():
    for status in LIVE_STATUSES:
        seen, frontier = set(), {int(status)}
        while frontier:
            s = frontier.pop()
            seen.add(s)
            frontier |= {int(t) for t in TRANSITIONS[s] if t != INVALID and int(t) not in seen}
        assert seen & {int(t) for t in TERMINAL_STATUSES}, status


def test_fills_split_by_what_is_left():
    assert next_status(c.OPEN, c.EV_FILL) == c.PARTIAL
    assert next_status(c.OPEN, FILL_FULL) == c.FILLED
    assert next_status(c.PENDING, c.EV_FILL) == INVALID  # no fill before the ack


def test_table_is_read_only():
    with pytest.raises(ValueError):
        TRANSITIONS[0, 0] = 3


def test_illegal_transition_message_names_lane_order_and_edge():
    err = IllegalTransition(3, 17, c.FILLED, c.EV_ACK)
    assert "lane 3" in str(err) and "order 17" in str(err) and "FILLED --ACK-->" in str(err)


def test_transit_refuses_an_illegal_edge_and_the_step_raises():
    """``transit`` leaves the status alone and reports lane, order and edge; the step raises."""
    import orderbook as ob
    from orderbook.engine.records import transit
    from tests.orderbook.helpers import small_config

    ex = ob.Exchange(small_config(faults=ob.FaultSpec.none()))
    ex.reset(seed=0)
    ex.orders.status[0, 2] = c.FILLED
    ex.orders.order_id[0, 2] = 41
    error = np.zeros(5, dtype=np.int64)
    assert transit(ex.orders, 0, 2, c.EV_ACK, error) == -1
    assert ex.orders.status[0, 2] == c.FILLED
    assert error.tolist() == [1, 0, 41, c.FILLED, c.EV_ACK]
    assert transit(ex.orders, 0, 2, c.EV_CANCEL_REJECT, error) == c.FILLED
    ex._error[:] = error  # as if the kernel had hit it during the step
    with pytest.raises(IllegalTransition, match="lane 0, order 41: FILLED --ACK-->"):
        ex.step()


@kernel
def _compiled_predicates(out):
    for s in range(out.shape[0]):
        status = np.uint8(s)
        out[s, 0] = lc.is_live(status)
        out[s, 1] = lc.is_fillable(status)
        out[s, 2] = lc.is_cancellable(status)
        out[s, 3] = lc.is_awaiting_ack(status)


def test_every_status_is_exactly_one_of_empty_live_or_terminal():
    """A new Status member lands in no set (or two) until lifecycle.py says which: this test fails."""
    for status in Status:
        homes = [status == Status.EMPTY, status in LIVE_STATUSES, status in TERMINAL_STATUSES]
        assert sum(homes) == 1, f"{status.name} is in {sum(homes)} of empty/live/terminal, expected exactly 1"
    assert max(Status) < 64, "the status bitmasks hold codes below 64"


def test_terminal_means_absorbing_and_live_means_an_edge_leaves():
    """The declared sets agree with the table: terminal statuses only self-loop, live ones move on."""
    for status in Status:
        moves = {int(t) for t in TRANSITIONS[int(status)] if t != INVALID} - {int(status)}
        if status in TERMINAL_STATUSES:
            assert not moves, status.name
        elif status in LIVE_STATUSES:
            assert moves, status.name


def test_narrow_sets_are_read_off_the_table_and_sit_inside_live():
    assert lc.FILLABLE_STATUSES == {Status.OPEN, Status.PARTIAL, Status.PENDING_CANCEL}
    assert lc.CANCELLABLE_STATUSES == {Status.PENDING, Status.OPEN, Status.PARTIAL}
    assert lc.AWAITING_ACK_STATUSES == {Status.PENDING, Status.PENDING_CANCEL}
    for narrow in (lc.FILLABLE_STATUSES, lc.CANCELLABLE_STATUSES, lc.AWAITING_ACK_STATUSES):
        assert narrow <= LIVE_STATUSES
    assert lc.LIVE_CODES == tuple(sorted(int(s) for s in LIVE_STATUSES))


def test_compiled_predicates_and_numpy_tables_agree_with_the_sets_for_every_status():
    out = np.zeros((c.N_STATUS, 4), dtype=np.bool_)
    _compiled_predicates(out)
    sets = (LIVE_STATUSES, lc.FILLABLE_STATUSES, lc.CANCELLABLE_STATUSES, lc.AWAITING_ACK_STATUSES)
    for status in Status:
        expected = [status in s for s in sets]
        assert out[int(status)].tolist() == expected, status.name
    codes = np.arange(c.N_STATUS, dtype=np.uint8)
    assert lc.LIVE_TABLE[codes].tolist() == [Status(s) in LIVE_STATUSES for s in codes]
    assert lc.FILLABLE_TABLE[codes].tolist() == [Status(s) in lc.FILLABLE_STATUSES for s in codes]
    assert lc.CANCELLABLE_TABLE[codes].tolist() == [Status(s) in lc.CANCELLABLE_STATUSES for s in codes]
