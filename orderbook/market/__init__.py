"""market: where the bars come from.

Owns ``synthetic`` (the built-in market: random walk, depegs, spreads), ``bars`` with
``bars_source``, ``bars_read`` and ``bars_validate`` (loading OHLCV files into
aligned bars, with checks that say what was expected and found), ``path`` (the keyed
path of quotes and volume inside every bar), ``replay`` (replaying aligned bars per lane)
with ``replay_window`` (the venue map, window and start a replay may use, checked against
the data) and ``sources`` (the bound market source the exchange advances each step).
May import: ``compile``, ``spec``.
"""
