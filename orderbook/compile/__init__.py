"""compile: how kernels become machine code, and how a step becomes one call.

Owns ``jit`` (the ``kernel`` decorator: numba with the package's options, threading
layer chosen fork-safe), ``packed`` (a whole step's kernel calls packed into one
generated, cached function; pickles and copies by reloading) and ``compile_notice``
(the one stderr line a cold compile prints). Imports nothing else of ``orderbook``:
every other folder may import it.
"""
