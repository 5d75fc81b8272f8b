"""Keyed randomness: every draw is a pure function of its key.

A draw is ``hash(seed, episode, step, index, purpose)`` through a SplitMix64-style
mixer, never a position in a shared stream. So a lane's draws do not depend on how
many lanes there are or what the other lanes did (batch-size invariance), the same
seed and actions replay bit for bit, and two policies see the same market and the
same faults (common random numbers).

``index`` is an order id, a slot, a venue or an instrument, whatever the purpose
is about; ``purpose`` is a member of :class:`Purpose`, the one table of purposes
(the ``P_*`` constants are its values as plain ints, for kernels), so two draws for
different purposes never share a key. Market draws take the lane's market seed,
broker draws its fault seed.

A normal (Box-Muller) takes two uniforms: the first on ``purpose``, the second on
``purpose + SECOND_UNIFORM`` (a derived purpose above every number of the table), so
every uniform drawn has a key of its own and a normal never shares one with another
purpose's draw. (Before, the second uniform was ``purpose + 1``: the lognormal
latencies' tail roll and the touch-fill roll reused it; that changed what a seed means.)
"""

from __future__ import annotations

from enum import IntEnum, unique

import numpy as np

from orderbook.compile.jit import kernel

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV_2_53 = 1.0 / 9007199254740992.0


@unique
class Purpose(IntEnum):
    """Every purpose of a keyed draw, in one table (keep numbers stable: they are part of what a seed means).

    Numbers stay below :data:`SECOND_UNIFORM`: a normal's second uniform is keyed
    ``n + SECOND_UNIFORM`` (:data:`NORMALS`), a number no member may take.
    """

    # broker faults (fault seed; index: order id or venue)
    LATENCY = 1  # ack latency (uniform, or lognormal)
    LATENCY_TAIL = 2  # a latency takes its tail multiplier
    ACK_LOST = 3
    BROKER_ERROR = 4
    OUTAGE_START = 5
    OUTAGE_LENGTH = 6
    UNSOLICITED = 7  # the venue cancels a resting order
    CANCEL_RACE = 8  # a cancel loses the race to the bar's fills
    CANCEL_LATENCY = 9  # cancel latency (uniform, or lognormal)
    ERROR_BURST_START = 14  # a venue's broker errors enter a burst (index: venue)
    ERROR_BURST_END = 15  # a burst of broker errors ends (index: venue)
    # matching (fault seed; index: order id)
    TOUCH_FILL = 10
    FILL_PROB = 11
    # synthetic market (market seed; index: asset or instrument)
    PRICE = 20  # normal
    JUMP = 24
    JUMP_SIZE = 26  # normal
    VOLUME_ZERO = 28
    VOLUME = 30  # normal
    VOLUME_LEVEL = 29  # normal: an episode's volume level (step 0 of the episode; index: base asset)
    RANGE_HIGH = 32  # normal (retired: the synthetic range comes from the path since issue 13)
    RANGE_LOW = 36  # normal (retired, as RANGE_HIGH)
    BASIS = 38  # normal
    DEPEG_START = 40
    DEPEG_SIZE = 41
    PEG_NOISE = 42  # normal
    # the path inside a bar (market seed; orderbook.market.path)
    PATH_STEP = 44  # quick normal of a path point, synthetic or replayed (index: instrument << 16 | point)
    PATH_FINE = 45  # quick normal of a point refined between two path points (index: instrument << 32 | point << 16 | node)
    PATH_ORDER = 46  # replayed bars: whether the path visits the high or the low first (index: instrument)
    PATH_FIRST_AT = 47  # replayed bars: the point of the first extreme (index: instrument)
    PATH_SECOND_AT = 48  # replayed bars: the point of the second extreme (index: instrument)
    PATH_EXTREMES = 49  # the continuous path's min and max between two points (uniform pair; index: instrument << 16 | point)
    # replayed market (market seed): the episode's window
    WINDOW = 50
    LANE_SEED = 60  # reserved: no draw uses it today
    # env front-ends (market seed): a random parent side in the execution task
    ENV_SIDE = 70
    # seeds derived from the user's seed (:func:`derive_seed`)
    MARKET_SEED = 101
    FAULT_SEED = 102


# A normal's second uniform is keyed ``purpose + SECOND_UNIFORM``: above every member, so no key is shared.
SECOND_UNIFORM = 1 << 32
# Purposes drawn as normals (each also takes ``n + SECOND_UNIFORM``).
NORMALS = frozenset(
    {
        Purpose.LATENCY,
        Purpose.CANCEL_LATENCY,
        Purpose.PRICE,
        Purpose.JUMP_SIZE,
        Purpose.VOLUME,
        Purpose.VOLUME_LEVEL,
        Purpose.RANGE_HIGH,
        Purpose.RANGE_LOW,
        Purpose.BASIS,
        Purpose.PEG_NOISE,
    }
)

# The table's values as plain ints: kernels read these (numba freezes them as constants).
P_LATENCY = int(Purpose.LATENCY)
P_LATENCY_TAIL = int(Purpose.LATENCY_TAIL)
P_ACK_LOST = int(Purpose.ACK_LOST)
P_BROKER_ERROR = int(Purpose.BROKER_ERROR)
P_OUTAGE_START = int(Purpose.OUTAGE_START)
P_OUTAGE_LENGTH = int(Purpose.OUTAGE_LENGTH)
P_UNSOLICITED = int(Purpose.UNSOLICITED)
P_CANCEL_RACE = int(Purpose.CANCEL_RACE)
P_CANCEL_LATENCY = int(Purpose.CANCEL_LATENCY)
P_ERROR_BURST_START = int(Purpose.ERROR_BURST_START)
P_ERROR_BURST_END = int(Purpose.ERROR_BURST_END)
P_TOUCH_FILL = int(Purpose.TOUCH_FILL)
P_FILL_PROB = int(Purpose.FILL_PROB)
P_PRICE = int(Purpose.PRICE)
P_JUMP = int(Purpose.JUMP)
P_JUMP_SIZE = int(Purpose.JUMP_SIZE)
P_VOLUME_ZERO = int(Purpose.VOLUME_ZERO)
P_VOLUME = int(Purpose.VOLUME)
P_VOLUME_LEVEL = int(Purpose.VOLUME_LEVEL)
P_RANGE_HIGH = int(Purpose.RANGE_HIGH)
P_RANGE_LOW = int(Purpose.RANGE_LOW)
P_BASIS = int(Purpose.BASIS)
P_DEPEG_START = int(Purpose.DEPEG_START)
P_DEPEG_SIZE = int(Purpose.DEPEG_SIZE)
P_PEG_NOISE = int(Purpose.PEG_NOISE)
P_PATH_STEP = int(Purpose.PATH_STEP)
P_PATH_FINE = int(Purpose.PATH_FINE)
P_PATH_ORDER = int(Purpose.PATH_ORDER)
P_PATH_FIRST_AT = int(Purpose.PATH_FIRST_AT)
P_PATH_SECOND_AT = int(Purpose.PATH_SECOND_AT)
P_PATH_EXTREMES = int(Purpose.PATH_EXTREMES)
P_WINDOW = int(Purpose.WINDOW)
P_LANE_SEED = int(Purpose.LANE_SEED)
P_ENV_SIDE = int(Purpose.ENV_SIDE)
P_MARKET_SEED = int(Purpose.MARKET_SEED)
P_FAULT_SEED = int(Purpose.FAULT_SEED)


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
    u2 = uniform_at(prefix, index, purpose + SECOND_UNIFORM)
    r = np.sqrt(-2.0 * np.log(1.0 - u1))
    return r * np.cos(2.0 * np.pi * u2)


_U16 = np.uint64(0xFFFF)
_S16 = np.uint64(16)
_S32 = np.uint64(32)
_S48 = np.uint64(48)
_QUICK_MEAN = 4 * 65535 / 2.0
_QUICK_SCALE = 1.0 / np.sqrt(4 * (65536.0 * 65536.0 - 1.0) / 12.0)


@kernel(inline=True)
def quick_normal_at(prefix, index, purpose):
    """A cheap approximate standard normal from one key: the sum of its four 16-bit uniforms, standardised.

    Mean 0 and sd 1 exactly (Irwin-Hall of four), tails cut at +-3.46: for the many
    small increments of a path (:mod:`orderbook.market.path`), where one hash and no
    ``log``/``cos`` per draw matter more than the tails (their sum is normal anyway).
    Takes only ``purpose`` (not ``purpose + 1``).
    """
    h = finish_key(prefix, index, purpose)
    s = float(h & _U16) + float((h >> _S16) & _U16) + float((h >> _S32) & _U16) + float(h >> _S48)
    return (s - _QUICK_MEAN) * _QUICK_SCALE


_U32 = np.uint64(0xFFFFFFFF)
_INV_2_32 = 1.0 / 4294967296.0


@kernel(inline=True)
def uniform_pair_at(prefix, index, purpose):
    """Two independent uniforms in the open interval (0, 1) from one key: its two 32-bit halves, each ``(k + 0.5) / 2**32``.

    Never 0 nor 1, so ``log`` of either is finite (at most 22.9 in size): for the
    many interval extremes of a path (:mod:`orderbook.market.path`), one hash for two
    draws. Takes only ``purpose``.
    """
    h = finish_key(prefix, index, purpose)
    return (float(h & _U32) + 0.5) * _INV_2_32, (float(h >> _S32) + 0.5) * _INV_2_32


@kernel(inline=True)
def uniform(seed, episode, step, index, purpose):
    """A float64 in [0, 1) from the key (53 random bits)."""
    return float(key64(seed, episode, step, index, purpose) >> _S11) * _INV_2_53


@kernel(inline=True)
def normal(seed, episode, step, index, purpose):
    """A standard normal from the key (Box-Muller over purposes ``purpose`` and ``purpose + SECOND_UNIFORM``)."""
    u1 = uniform(seed, episode, step, index, purpose)
    u2 = uniform(seed, episode, step, index, purpose + SECOND_UNIFORM)
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
