"""What a limit-order rule can save over passive repricing, by the path's resolution: ``python -m benchmarks.passive_frontier``.

Passive repricing (:class:`agents.baselines.PassiveReprice`: post-only at the near
touch for everything open, re-posted when the touch moves, market sweep at the end)
was the baseline the main job's PPO did not beat on the registered Execution-v0 while
its parent was 1 BTC (``--quantity``, 1 by default: a parent passive fills in a few steps).
This benchmark asks whether any simple variant of it does, and whether that
advantage is a property of the market or of the simulator's sub-bar path.

A maker fill happens at a path point that lies through the limit's price, and is
priced at the limit; the path there is already beyond it by what one interval
moved (the fill's overshoot). With ``path_points`` intervals per bar an interval
moves ``sigma x sqrt(bar / path_points)``, so the overshoot, and anything a rule
gains by changing it (posting behind the touch waits for a longer move, whose
overshoot is smaller than the first interval's from the decision price), should
fade as the path gets finer. A real book has no such overshoot: a level trades
before the price moves through it. An advantage that shrinks with
``path_points`` is an artefact of the resolution, not something to learn.

Every variant runs on the same lanes and seeds as passive (common random numbers);
the table gives each policy's mean shortfall (bps), its mean time to fill (steps)
and its paired difference from passive with a Student t 95% interval, for each
``path_points``. Negative differences are savings over passive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import polars as pl

from agents.baselines import PassiveReprice
from agents.cli import parse, require
from agents.common import env_kwargs, make_env
from agents.evaluate import rollout
from agents.stats import paired, paired_cell
from envs import spaces as sp

ENV_ID = "orderbook/Execution-v0"


# One change each to passive repricing (keyword arguments of PassiveReprice).
VARIANTS = {
    "passive": {},
    "2 bps behind": {"level": sp.LEVEL_PASSIVE0},
    "5 bps behind": {"level": sp.LEVEL_PASSIVE0 + 1},
    "reprice past 1 bps": {"hysteresis_bps": 1.0},
}


@dataclass
class Args:
    path_points: str = "4,16,64,256"
    """comma-separated intervals per bar of the market's path (the default config has 16)"""
    lanes: int = 256
    """lanes (seeds ``seed + lane``)"""
    episodes: int = 32
    """episodes per lane and policy"""
    seed: int = 10_000
    """seed of lane 0"""
    market: str = "synthetic"
    """synthetic or binance_us (its test split)"""
    quantity: str = "1"
    """parent in BTC: 1, the registered parent when this frontier was measured (the registered one is now 30)"""

    def __post_init__(self) -> None:
        require(all(x.strip().isdigit() and int(x) >= 1 for x in self.path_points.split(",")),
                f"--path-points must be comma-separated counts >= 1, got {self.path_points!r}")
        require(self.lanes >= 1 and self.episodes >= 1, f"--lanes and --episodes must be >= 1, got {self.lanes}, {self.episodes}")
        require(self.market in ("synthetic", "binance_us"), f"--market must be synthetic or binance_us, got {self.market!r}")


def frontier(args: Args, path_points: int) -> pl.DataFrame:
    """Every variant against passive at ``path_points``: policy, shortfall, time to fill, paired diff and its interval."""
    kwargs = env_kwargs(ENV_ID, "default", args.market, 0, 0, "test" if args.market == "binance_us" else "", quantity=args.quantity)
    kwargs["exchange"] = {"path_points": path_points}
    frames = []
    for name, options in VARIANTS.items():
        raw = make_env(ENV_ID, args.lanes, **kwargs)
        policy = PassiveReprice(raw, **options)
        frames.append(rollout(name, raw, raw, lambda obs, p=policy: p.predict(obs)[0], args.episodes, args.seed))
    episodes = pl.concat(frames, how="diagonal_relaxed")
    means = episodes.group_by("policy", maintain_order=True).agg(pl.col("shortfall_bps").mean().alias("shortfall_bps"),
                                                                pl.col("time_to_fill").mean().alias("time_to_fill"))
    diffs = paired(episodes, "shortfall_bps", "passive").select("policy", "n", "mean", "ci_low", "ci_high", "t")
    return means.join(diffs, on="policy", how="left").with_columns(pl.lit(path_points).alias("path_points"))


def markdown(table: pl.DataFrame) -> str:
    lines = ["| path points | policy | shortfall (bps) | time to fill (steps) | minus passive (bps) [95% CI] (t) |", "|---:|---|---:|---:|---|"]
    for r in table.iter_rows(named=True):
        lines.append(f"| {r['path_points']} | {r['policy']} | {r['shortfall_bps']:.2f} | {r['time_to_fill']:.1f} | {paired_cell(r)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse(Args, argv, description=__doc__)
    t0 = time.perf_counter()
    table = pl.concat([frontier(args, int(p)) for p in args.path_points.split(",")])
    print(f"{ENV_ID}, market {args.market}, {args.lanes} lanes x {args.episodes} episodes per policy, seeds {args.seed}.."
          f"{args.seed + args.lanes - 1}, {time.perf_counter() - t0:.0f} s\n")
    print(markdown(table))


if __name__ == "__main__":
    main()
