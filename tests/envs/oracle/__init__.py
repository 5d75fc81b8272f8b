"""The numpy reference of the env tasks' steps: the oracle the compiled step is checked against.

The product runs each task's step as compiled kernels only (:mod:`envs.core`). These
subclasses put back the readable numpy specification of every part a kernel
computes (decode, evaluate, the features, the info figures, the episode start),
as gymnax keeps its reference with its tests; ``tests/envs/test_compiled_step.py``
and ``test_compiled_trading.py`` compare the two bit for bit.
"""
