"""orderbook.rng: keyed draws are pure functions of their key, whichever way they are computed."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from orderbook import rng
from orderbook.jit import kernel

u63 = st.integers(0, 2**63 - 1)
small = st.integers(0, 2**31 - 1)


@kernel
def _draws(seed, episode, step, index, purpose, out):
    """Both routes to a draw: the full key, and the step key finished per draw."""
    prefix = rng.step_key(seed, episode, step)
    out[0] = rng.uniform(seed, episode, step, index, purpose)
    out[1] = rng.uniform_at(prefix, index, purpose)
    out[2] = rng.normal(seed, episode, step, index, purpose)
    out[3] = rng.normal_at(prefix, index, purpose)
    out[4] = rng.uniform(seed, episode, step + 1, index, purpose)
    out[5] = rng.uniform(seed, episode, step, index, purpose + 1)


@given(seed=u63, episode=small, step=small, index=small, purpose=st.integers(0, 100))
def test_step_key_route_gives_the_same_bits_as_the_full_key(seed, episode, step, index, purpose):
    out = np.zeros(6)
    _draws(seed, episode, step, index, purpose, out)
    assert out[0] == out[1]
    assert out[2] == out[3]
    assert 0.0 <= out[0] < 1.0 and np.isfinite(out[2])
    assert out[0] != out[4] and out[0] != out[5]  # another step or purpose is another draw


def test_uniforms_are_uniform_and_normals_normal():
    """10,000 draws over consecutive indices: mean, spread and tails where they belong."""
    n = 10_000
    u, z = np.zeros(n), np.zeros(n)
    out = np.zeros(6)
    for j in range(n):
        _draws(7, 0, 3, j, rng.P_PRICE, out)
        u[j], z[j] = out[0], out[2]
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / n)
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.std() - 1.0) < 0.03
    assert 0.0015 < (np.abs(z) > 3).mean() < 0.0045  # 0.27% beyond 3 sd
