"""spec: the vocabulary every layer shares, as frozen data.

Owns ``codes`` (statuses, events, reasons, sides, kinds, times in force as small
ints), ``specs`` (Asset, Venue, Instrument and the fault, latency, fill, book and
impact specs users write), ``bounds`` (the price, quantity, notional, balance and
time bounds that keep int64 money exact, with their proof) and ``rng`` (the keyed,
counter-based random draws and the one table of their purposes).
May import: ``compile``.
"""
