"""Gymnasium front-ends of the order system: ``orderbook/Execution-v0`` and ``orderbook/Trading-v0``.

``import envs`` registers both ids (``gym.make("envs:orderbook/Execution-v0")``
imports this module itself). Each id has an ``entry_point`` (the single env) and a
``vector_entry_point`` (the native batched env, ``gym.make_vec(...,
vectorization_mode="vector_entry_point")``). Both run the same batched task
(:mod:`envs.core`): one implementation of action decoding, observation and reward
for a single lane and for thousands.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from envs.execution import ExecutionEnv, ExecutionTask, ExecutionVectorEnv
from envs.trading import TradingEnv, TradingTask, TradingVectorEnv

ENV_IDS = ("orderbook/Execution-v0", "orderbook/Trading-v0")

_SPECS = {
    "orderbook/Execution-v0": ("envs.execution:ExecutionEnv", "envs.execution:ExecutionVectorEnv", 60),
    "orderbook/Trading-v0": ("envs.trading:TradingEnv", "envs.trading:TradingVectorEnv", 240),
}

for _id, (_entry, _vector_entry, _steps) in _SPECS.items():
    if _id not in registry:
        register(id=_id, entry_point=_entry, vector_entry_point=_vector_entry, max_episode_steps=_steps)

__all__ = [
    "ENV_IDS", "ExecutionEnv", "ExecutionTask", "ExecutionVectorEnv", "TradingEnv", "TradingTask", "TradingVectorEnv",
]
