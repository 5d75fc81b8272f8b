"""Keyed randomness: every draw is a pure function of its key.

A draw is ``hash(seed, episode, step, index, purpose)`` through a SplitMix64-style
mixer, never a position in a shared stream. So a lane's draws do not depend on how
many lanes there are or what the other lanes did (batch-size invariance), the same
seed and actions replay bit for bit, and two policies see the same market and the
same faults (common random numbers).

``index`` is an order id, a slot, a venue or an instrument, whatever the purpose
is about; ``purpose`` is one of the ``P_*`` constants, so two draws for different
purposes never share a key. Market draws take the lane's market seed, broker draws
its fault seed.
"""

from __future__ import annotations

import numpy as np

from orderbook.jit import kernel

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV_2_53 = 1.0 / 9007199254740992.0

# Purposes (keep numbers stable: they are part of what a seed means).
P_LATENCY = 1
P_LATENCY_TAIL = 2
P_ACK_LOST = 3
P_BROKER_ERROR = 4
P_OUTAGE_START = 5
P_OUTAGE_LENGTH = 6
P_UNSOLICITED = 7
P_CANCEL_RACE = 8
P_CANCEL_LATENCY = 9
P_TOUCH_FILL = 10
P_FILL_PROB = 11
P_PRICE = 20  # normals take two purposes: n and n + 1
P_JUMP = 24
P_JUMP_SIZE = 26
P_VOLUME_ZERO = 28
P_VOLUME = 30
P_RANGE_HIGH = 32
P_RANGE_LOW = 36
P_BASIS = 38
P_DEPEG_START = 40
P_DEPEG_SIZE = 41
P_PEG_NOISE = 42
P_WINDOW = 50
P_LANE_SEED = 60


@kernel(inline=True)
def mix64(x):
    """SplitMix64 finaliser: a bijection on uint64 with full avalanche."""
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@kernel(inline=True)
def step_key(seed, episode, step):
    """The hash of ``(seed, episode, step)``: the part of a key shared by every draw of one lane's step.

    Kernels that draw many numbers in a step hash it once and finish each key with
    :func:`uniform_at` / :func:`normal_at` (two mixes instead of five, the same bits).
    """
    h = mix64(np.uint64(seed))
    h = mix64(h ^ np.uint64(episode))
    return mix64(h ^ np.uint64(step))


@kernel(inline=True)
def finish_key(prefix, index, purpose):
    h = mix64(prefix ^ np.uint64(index))
    return mix64(h ^ np.uint64(purpose))


@kernel(inline=True)
def key64(seed, episode, step, index, purpose):
    """Hash of a draw's key; each field is folded in through the mixer."""
    return finish_key(step_key(seed, episode, step), index, purpose)


@kernel(inline=True)
def uniform_at(prefix, index, purpose):
    """:func:`uniform` of ``(seed, episode, step, index, purpose)`` from ``prefix = step_key(seed, episode, step)``."""
    return float(finish_key(prefix, index, purpose) >> _S11) * _INV_2_53


@kernel(inline=True)
def normal_at(prefix, index, purpose):
    """:func:`normal` of ``(seed, episode, step, index, purpose)`` from ``prefix = step_key(seed, episode, step)``."""
    u1 = uniform_at(prefix, index, purpose)
    u2 = uniform_at(prefix, index, purpose + 1)
    r = np.sqrt(-2.0 * np.log(1.0 - u1))
    return r * np.cos(2.0 * np.pi * u2)


@kernel(inline=True)
def uniform(seed, episode, step, index, purpose):
    """A float64 in [0, 1) from the key (53 random bits)."""
    return float(key64(seed, episode, step, index, purpose) >> _S11) * _INV_2_53


@kernel(inline=True)
def normal(seed, episode, step, index, purpose):
    """A standard normal from the key (Box-Muller over purposes ``purpose`` and ``purpose + 1``)."""
    u1 = uniform(seed, episode, step, index, purpose)
    u2 = uniform(seed, episode, step, index, purpose + 1)
    r = np.sqrt(-2.0 * np.log(1.0 - u1))
    return r * np.cos(2.0 * np.pi * u2)


@kernel
def uniform_per_lane(seeds, episodes, step, index, purpose, out):
    """``out[b]`` = :func:`uniform` keyed by lane ``b``'s seed and episode (for front-ends)."""
    for b in range(seeds.shape[0]):
        out[b] = uniform(seeds[b], episodes[b], step, index, purpose)


def derive_seed(seed: int, purpose: int) -> int:
    """A 63-bit seed derived from ``seed`` for ``purpose`` (market vs fault seeds)."""
    return int(key64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF), 0, 0, 0, purpose) >> np.uint64(1))
