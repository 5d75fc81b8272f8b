"""orderbook.spec.rng: keyed draws are pure functions of their key, whichever way they are computed."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from orderbook.compile.jit import kernel
from orderbook.spec import rng

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
    out[6] = rng.uniform(seed, episode, step, index, purpose + rng.SECOND_UNIFORM)


@given(seed=u63, episode=small, step=small, index=small, purpose=st.integers(0, 100))
def test_step_key_route_gives_the_same_bits_as_the_full_key(seed, episode, step, index, purpose):
    out = np.zeros(7)
    _draws(seed, episode, step, index, purpose, out)
    assert out[0] == out[1]
    assert out[2] == out[3]
    assert 0.0 <= out[0] < 1.0 and np.isfinite(out[2])
    assert out[0] != out[4] and out[0] != out[5]  # another step or purpose is another draw


def test_uniforms_are_uniform_and_normals_normal():
    """10,000 draws over consecutive indices: mean, spread and tails where they belong."""
    n = 10_000
    u, z = np.zeros(n), np.zeros(n)
    out = np.zeros(7)
    for j in range(n):
        _draws(7, 0, 3, j, rng.P_PRICE, out)
        u[j], z[j] = out[0], out[2]
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / n)
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.std() - 1.0) < 0.03
    assert 0.0015 < (np.abs(z) > 3).mean() < 0.0045  # 0.27% beyond 3 sd


def test_purposes_are_one_table_of_unique_numbers_with_stable_values():
    """Each ``P_*`` constant is its ``Purpose`` member's value, and no two purposes share a number."""
    values = [int(p) for p in rng.Purpose]
    assert len(values) == len(set(values))
    constants = {name[2:]: getattr(rng, name) for name in dir(rng) if name.startswith("P_")}
    assert constants == {p.name: int(p) for p in rng.Purpose}
    # part of what a seed means: a renumbering changes every market and fault drawn from it
    assert (rng.P_LATENCY, rng.P_CANCEL_LATENCY, rng.P_PRICE, rng.P_WINDOW) == (1, 9, 20, 50)
    assert (rng.P_ENV_SIDE, rng.P_MARKET_SEED, rng.P_FAULT_SEED) == (70, 101, 102)


def test_no_two_draws_share_a_key():
    """Every uniform drawn has a key of its own: the table's numbers, and each normal's second uniform above them all."""
    numbers = [int(p) for p in rng.Purpose]
    assert all(0 <= n < rng.SECOND_UNIFORM for n in numbers)
    assert rng.NORMALS <= set(rng.Purpose)
    keys = numbers + [int(p) + rng.SECOND_UNIFORM for p in rng.NORMALS]
    assert len(keys) == len(set(keys))
    assert not hasattr(rng, "NORMAL_OVERLAPS")  # no exceptions any more


@given(seed=u63, episode=small, step=small, index=small, purpose=st.sampled_from(sorted(rng.NORMALS)))
def test_a_normal_draws_its_second_uniform_on_the_derived_key(seed, episode, step, index, purpose):
    """Box-Muller over ``uniform(purpose)`` and ``uniform(purpose + SECOND_UNIFORM)``, not ``purpose + 1``."""
    out = np.zeros(7)
    _draws(seed, episode, step, index, purpose, out)
    expected = np.sqrt(-2.0 * np.log(1.0 - out[0])) * np.cos(2.0 * np.pi * out[6])
    assert out[2] == expected
    assert out[5] != out[6]


def test_every_draw_in_the_code_names_a_purpose_of_the_table():
    """Kernels key their draws with ``rng.P_*`` constants (or pass a purpose through): no bare numbers, no ``P_X + 1``."""
    import re
    from pathlib import Path

    root = Path(rng.__file__).resolve().parents[2]
    call = re.compile(r"rng\.(uniform|normal|uniform_at|normal_at|key64)\(([^()]*)\)")
    seen = 0
    for path in [*root.joinpath("orderbook").rglob("*.py"), *root.joinpath("envs").rglob("*.py")]:
        for m in call.finditer(path.read_text()):
            last = m.group(2).split(",")[-1].strip()
            seen += 1
            assert re.fullmatch(r"rng\.P_[A-Z_]+|purpose", last), f"{path.name}: draw keyed {last!r} in {m.group(0)!r}"
    assert seen > 20


def test_derived_seeds_use_the_tables_purposes():
    import orderbook as ob
    from tests.orderbook.helpers import small_config

    ex = ob.Exchange(small_config())
    ex.reset(seed=5)
    assert int(ex.lanes.market_seed[0]) == rng.derive_seed(5, rng.Purpose.MARKET_SEED)
    assert int(ex.lanes.fault_seed[0]) == rng.derive_seed(5, rng.Purpose.FAULT_SEED)
    assert ex.lanes.market_seed[0] != ex.lanes.fault_seed[0]


def test_quick_normals_have_mean_0_sd_1_and_cut_tails():
    """The path's cheap normal: standardised Irwin-Hall of four 16-bit uniforms, so |z| <= sqrt(12) ~ 3.46."""
    prefix = rng.step_key(np.uint64(11), 0, 5)
    z = np.array([rng.quick_normal_at(prefix, j, rng.P_PATH_STEP) for j in range(20_000)])
    assert abs(z.mean()) < 4 / np.sqrt(z.size)
    assert abs(z.std() - 1.0) < 0.02
    assert np.abs(z).max() <= np.sqrt(12.0) + 1e-9
    assert 0.002 < (np.abs(z) > 2.5).mean() < 0.03  # thinner tails than a normal's 1.2%, but tails
