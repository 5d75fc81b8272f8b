"""``gym.make`` / ``gym.make_vec`` of a registered id with the reference task in place of the compiled one."""

from __future__ import annotations

import dataclasses

import gymnasium as gym

import envs  # noqa: F401  (registers the ids)
from tests.envs.oracle.execution_reference import ExecutionReferenceEnv, ExecutionReferenceVectorEnv
from tests.envs.oracle.trading_reference import TradingReferenceEnv, TradingReferenceVectorEnv

REFERENCE_ENVS = {
    "orderbook/Execution-v0": (ExecutionReferenceEnv, ExecutionReferenceVectorEnv),
    "orderbook/Trading-v0": (TradingReferenceEnv, TradingReferenceVectorEnv),
}


def reference_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of ``env_id`` (same wrappers, limits and kwargs) with the reference env classes."""
    single, vector = REFERENCE_ENVS[env_id]
    return dataclasses.replace(gym.spec(env_id), entry_point=single, vector_entry_point=vector)


def make_reference(env_id: str, **kwargs) -> gym.Env:
    """``gym.make(env_id, **kwargs)`` over the reference task."""
    return gym.make(reference_spec(env_id), **kwargs)


def make_vec_reference(env_id: str, num_envs: int, **kwargs) -> gym.vector.VectorEnv:
    """``gym.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point", **kwargs)`` over the reference task."""
    return gym.make_vec(reference_spec(env_id), num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
