"""market: where the bars come from.

Owns ``synthetic`` (the built-in market: random walk, depegs, spreads), ``bars`` with
``bars_source``, ``bars_read`` and ``bars_validate`` (loading OHLCV files into
aligned bars, with checks that say what was expected and found), ``replay`` (replaying aligned bars per lane) and
``sources`` (the bound market source the exchange advances each step).
May import: ``compile``, ``spec``.
"""
