"""engine: the state and one transition of the order system.

Owns ``config`` (ExchangeConfig and its compiled arrays), ``state`` (structs of
arrays, batch first), ``intents`` (new orders and cancels as arrays), ``lifecycle``
(the status table and the live/terminal sets), ``step`` (one transition as named
phases) with ``book``, ``matching``, ``tif`` (times in force), ``stp`` (self-trade
prevention), ``broker``, ``portfolio``, ``records`` and
``stats``, and ``exchange`` (the Python object that owns it all).
May import: ``compile``, ``spec``, ``history``, ``market``.
"""
