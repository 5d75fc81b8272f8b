"""What training and evaluation share: env arguments from CLI strings, algorithms, threads.

``env_kwargs(faults=..., market=..., horizon=...)`` turns the CLI's plain strings
into the env's keyword arguments, so ``args.json`` of a run (plain JSON) rebuilds
the very env the model was trained on.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Literal, get_args

import torch

from agents.vec_env import OrderbookVecEnv
from envs.config import fault_spec as fault_spec  # noqa: F401 (re-exported: the CLI's --faults names)
from envs.execution_options import DEFAULT_QUANTITY

EnvId = Literal["orderbook/Execution-v0", "orderbook/Trading-v0"]
FaultLevel = Literal["none", "default", "high"]
Market = Literal["synthetic", "binance_us"]
Split = Literal["", "train", "test"]  # "": every bar of the replayed data
Reward = Literal["shortfall", "arrival", "marked"]
Algo = Literal["PPO", "A2C", "MaskablePPO"]
ENV_IDS, FAULT_LEVELS, MARKETS, ALGOS = get_args(EnvId), get_args(FaultLevel), get_args(Market), get_args(Algo)
SPLITS, REWARDS = tuple(s for s in get_args(Split) if s), get_args(Reward)


def env_kwargs(env_id: str, faults: str = "default", market: str = "synthetic", horizon: int = 0,
               max_episode_steps: int = 0, split: str = "", reward: str = "shortfall", quantity: str = "") -> dict[str, Any]:
    """Keyword arguments of ``OrderbookVecEnv`` / ``gym.make_vec`` from the CLI's plain values.

    The values stay plain (names, ints), as ``gym.make`` takes them (:mod:`envs.config`), so
    the kwargs are JSON and an env's ``spec`` round-trips. ``market="synthetic"``: the
    built-in synthetic market; ``"binance_us"``: Binance.US 1-minute bars replayed from
    the packaged Binance.US sample (or ``$ORDERBOOK_SHARED/data``) (``orderbook.binance_us_config``). ``horizon`` (Execution only) and
    ``max_episode_steps``: 0 keeps the registered value. ``split`` (``binance_us`` only):
    ``"train"`` or ``"test"``, the period every episode stays inside
    (``orderbook.presets.BINANCE_US_SPLITS``); ``""`` every bar. ``reward`` (Execution only):
    the env's reward option, ``"shortfall"`` by default (then not written, as before).
    ``quantity`` (Execution only): the parent in BTC, ``""`` keeps the registered 30 BTC; a parent
    above it comes with the market's default account scaled to hold it (:func:`parent_account`).
    Raises ``ValueError`` naming the choices for anything else.
    """
    if faults not in FAULT_LEVELS:
        raise ValueError(f"faults must be one of {FAULT_LEVELS}, got {faults!r}")
    if market not in MARKETS:
        raise ValueError(f"market must be one of {MARKETS}, got {market!r}")
    if env_id not in ENV_IDS:
        raise ValueError(f"env id must be one of {ENV_IDS}, got {env_id!r}")
    if split and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} (or empty: every bar), got {split!r}")
    if split and market != "binance_us":
        raise ValueError(f"split {split!r} is a period of the replayed Binance.US data: use it with market binance_us, got market {market!r}")
    if reward not in REWARDS:
        raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
    if reward != "shortfall" and not env_id.endswith("Execution-v0"):
        raise ValueError(f"reward applies to orderbook/Execution-v0 only, got env {env_id}")
    kwargs: dict[str, Any] = {"faults": faults}
    if market != "synthetic":
        kwargs["market"] = market
    if split:
        kwargs["split"] = split
    if reward != "shortfall":
        kwargs["reward"] = reward
    if horizon:
        if not env_id.endswith("Execution-v0"):
            raise ValueError(f"horizon applies to orderbook/Execution-v0 only, got env {env_id}")
        kwargs["horizon"] = int(horizon)
    if max_episode_steps:
        kwargs["max_episode_steps"] = int(max_episode_steps)
    elif horizon:
        kwargs["max_episode_steps"] = int(horizon)  # the registered limit is the default horizon
    if quantity:
        if not env_id.endswith("Execution-v0"):
            raise ValueError(f"quantity applies to orderbook/Execution-v0 only, got env {env_id}")
        account = parent_account(market, quantity)
        kwargs["quantity"] = quantity
        if Decimal(quantity) > Decimal(DEFAULT_QUANTITY):  # the default account holds the registered parent and less
            kwargs["exchange"] = {"initial_balances": account}
    return kwargs


# What each market's default account holds per venue for Execution-v0 (the core's default account times
# envs.execution_options.ACCOUNT_SCALE, so that it holds the registered 30 BTC parent).
DEFAULT_ACCOUNTS: dict[str, dict[str, dict[str, str]]] = {
    "synthetic": {v: {"BTC": "30", "USD": "3000000"} for v in ("alpha", "beta")},
    "binance_us": {"binance_us": {"BTC": "30", "USD": "3000000", "USDT": "1500000", "USDC": "1500000"}},
}


def parent_account(market: str, quantity: str) -> dict[str, str]:
    """``market``'s Execution-v0 default account scaled to hold a parent of ``quantity`` BTC: every balance
    of the account that holds the registered 30 BTC parent times ``max(1, quantity / 30)`` (a buy's notional
    at ~30,000 USD per BTC is then covered ~3x on each venue, a sell's base exactly), keyed ``"venue:asset"``
    so the kwargs stay JSON. ``ValueError`` for a quantity that is not a number > 0."""
    try:
        qty = Decimal(str(quantity))
    except InvalidOperation:
        qty = Decimal("NaN")
    if not (qty.is_finite() and qty > 0):
        raise ValueError(f"quantity must be a number of BTC > 0, got {quantity!r}")
    scale = max(Decimal(1), qty / Decimal(DEFAULT_QUANTITY))
    return {f"{venue}:{asset}": str(Decimal(amount) * scale) for venue, held in DEFAULT_ACCOUNTS[market].items()
            for asset, amount in held.items()}


def make_env(env_id: str, n_envs: int, **kwargs: Any) -> OrderbookVecEnv:
    return OrderbookVecEnv(env_id, n_envs, **kwargs)


def algorithm(name: str):
    """The SB3 / sb3-contrib class of ``PPO``, ``A2C`` or ``MaskablePPO``."""
    if name == "PPO":
        from stable_baselines3 import PPO

        return PPO
    if name == "A2C":
        from stable_baselines3 import A2C

        return A2C
    if name == "MaskablePPO":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    raise ValueError(f"algo must be one of {ALGOS}, got {name!r}")


def set_threads(n: int) -> int:
    """``torch.set_num_threads(n)`` (0: one thread). On the 2-core box one thread is fastest: the
    policy is a small MLP on batches of tens to hundreds of rows, where a second intra-op thread
    costs more in synchronisation than it saves, and the env (numba and numpy) runs on the same
    process between forward passes anyway."""
    n = max(int(n), 1)
    torch.set_num_threads(n)
    return n
