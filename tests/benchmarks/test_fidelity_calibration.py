"""The data side of the calibration table (``benchmarks/fidelity_calibration.py``), checked by hand."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.fidelity_calibration import data_frequencies
from orderbook.spec import codes as c


def test_volume_beyond_a_buy_is_the_bar_volume_spread_evenly_over_its_range():
    """Buy at 10; next bar 6..14 with 80 lots trades 80 x 4/8 = 40 below 10; then 9..13, 40 lots: 40 x 1/4 = 10."""
    price = np.array([[10, 10, 10]])
    low, high, volume = np.array([[0, 6, 9]]), np.array([[0, 14, 13]]), np.array([[0, 80, 40]])
    through, touch_only, by_size, n = data_frequencies(price, low, high, volume, c.BUY, 1, (10, 40, 41))
    assert (through, touch_only, n) == (1.0, 0.0, 2)
    assert by_size == [1.0, 0.5, 0.0]  # t=0: 40 lots beyond; t=1: 10 lots beyond
    through, _, by_size, n = data_frequencies(price, low, high, volume, c.BUY, 2, (50, 51))
    assert (through, by_size, n) == (1.0, [1.0, 0.0], 1)  # 40 + 10 over two bars


def test_a_sell_looks_above_and_a_bar_without_volume_crosses_nothing():
    price = np.array([[10, 10, 10]])
    low, high, volume = np.array([[0, 8, 0]]), np.array([[0, 12, 20]]), np.array([[0, 40, 0]])
    through, touch_only, by_size, n = data_frequencies(price, low, high, volume, c.SELL, 1, (20, 21))
    assert (through, touch_only, by_size, n) == (0.5, 0.0, [0.5, 0.0], 2)  # 40 x 2/4 = 20 above 10 at t=0; t=1's bar traded nothing


@given(st.lists(st.tuples(st.integers(1, 50), st.integers(0, 20), st.integers(0, 100)), min_size=3, max_size=12), st.integers(1, 2))
def test_the_volume_share_never_exceeds_the_trade_through_share(bars, horizon):
    """Volume beyond a price needs a trade through it; a larger size is reached no more often."""
    low = np.array([[b[0] for b in bars]])
    high, volume = low + np.array([[b[1] for b in bars]]), np.array([[b[2] for b in bars]])
    if horizon >= low.shape[1]:
        return
    price = np.full_like(low, 25)
    through, touch_only, by_size, _ = data_frequencies(price, low, high, volume, c.BUY, horizon, (1, 10, 100))
    assert by_size[0] <= through and by_size[0] >= by_size[1] >= by_size[2]
    assert 0.0 <= touch_only <= 1.0 - through  # a window is touched-only or traded through, never both


def test_touch_not_through_is_a_window_that_reaches_the_price_and_never_passes_it():
    """Buy at 10, one bar ahead: lows 10 (touch), 10 with no volume (nothing), 12 (away), 9 (through);
    two bars ahead: the window 10, then 12 only touches; 9 later makes it through."""
    price = np.full((1, 5), 10)
    low = np.array([[0, 10, 10, 12, 9]])
    high, volume = low + 4, np.array([[0, 5, 0, 5, 5]])
    through, touch_only, _, n = data_frequencies(price, low, high, volume, c.BUY, 1, (1,))
    assert (through, touch_only, n) == (0.25, 0.25, 4)
    through, touch_only, _, n = data_frequencies(price, low, high, volume, c.BUY, 2, (1,))
    assert (through, touch_only, n) == (1 / 3, 1 / 3, 3)  # t=0: 10, 10 (empty) touched; t=1: empty, 12; t=2: 12, 9
    sell_high = np.array([[0, 10, 12, 8, 11]])
    through, touch_only, _, _ = data_frequencies(price, sell_high - 4, sell_high, volume, c.SELL, 1, (1,))
    assert (through, touch_only) == (0.25, 0.25)  # t=0: high 10 touches; t=3: high 11 passes; a bar without volume neither
