"""benchmarks.passive_frontier: its variants are passive repricing with one thing changed, and its CLI checks its input."""

from __future__ import annotations

import numpy as np
import pytest

from agents.baselines import PassiveReprice
from agents.common import make_env
from benchmarks import passive_frontier as pf
from envs import spaces as sp

LANES, STEPS = 16, 40


def _actions(policy_of, seed=123):
    """The actions ``policy_of(env)`` sends over STEPS steps of Execution-v0 (the env driven by those actions)."""
    raw = make_env(pf.ENV_ID, LANES)
    policy = policy_of(raw)
    raw.seed(seed)
    obs = raw.reset()
    sent = []
    for _ in range(STEPS):
        acts = policy.predict(obs)[0]
        sent.append(acts.copy())
        obs, _, _, _ = raw.step(acts)
    return np.stack(sent)


def test_every_variant_is_passive_repricing_with_one_option_changed():
    assert pf.VARIANTS["passive"] == {}
    raw = make_env(pf.ENV_ID, 2)
    for name, options in pf.VARIANTS.items():
        assert name == "passive" or len(options) == 1, name
        policy = PassiveReprice(raw, **options)
        changed = {k for k in ("level", "hysteresis_bps", "market_steps") if getattr(policy, k) != getattr(PassiveReprice(), k)}
        assert changed == set(options), name


def test_posting_behind_posts_at_its_level_and_sweeps_at_the_end():
    acts = _actions(lambda env: PassiveReprice(env, level=sp.LEVEL_PASSIVE0))
    levels = acts[:, :, 1]
    assert (levels == sp.LEVEL_PASSIVE0).any()
    assert not (levels == sp.LEVEL_POST_NEAR).any()  # every child it posts is behind the touch
    assert set(np.unique(levels)) <= {sp.LEVEL_NONE, sp.LEVEL_PASSIVE0, sp.LEVEL_MARKET}


def test_hysteresis_reprices_less_often_than_passive():
    cancels = lambda acts: int((acts[:, :, -1] == sp.CANCEL_ALL).sum())  # noqa: E731
    assert cancels(_actions(lambda env: PassiveReprice(env, hysteresis_bps=5.0))) < cancels(_actions(lambda env: PassiveReprice(env)))


@pytest.mark.parametrize(("argv", "expected"), [
    (["--path-points", "16,x"], "--path-points must be comma-separated counts >= 1, got '16,x'"),
    (["--path-points", "0"], "--path-points must be comma-separated counts >= 1, got '0'"),
    (["--lanes", "0"], "--lanes and --episodes must be >= 1, got 0, 32"),
    (["--market", "nyse"], "--market must be synthetic or binance_us, got 'nyse'"),
])
def test_bad_arguments_exit_with_one_line(argv, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        pf.main(argv)
    assert exc.value.code == 2
    assert expected in capsys.readouterr().err
