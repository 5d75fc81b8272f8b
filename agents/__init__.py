"""Agents for the orderbook envs: the SB3 adapter, classical baselines, training and evaluation CLIs.

``python -m agents.main`` trains PPO briefly on ``orderbook/Execution-v0`` and compares it with
the baselines; see ``agents/README.md``. Submodules are imported on demand (torch is heavy).
"""
