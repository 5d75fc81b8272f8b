"""Per-episode results -> summary statistics and paired differences (Polars expressions).

Every policy is evaluated on the same lanes and seeds, so episode ``(lane, episode)``
of one policy ran on the same market (and, as far as order ids coincide, the same
faults) as that episode of every other: common random numbers. The honest
comparison is then the paired difference per ``(lane, episode)``, whose spread
excludes the market's own variance that both policies share.

Intervals are normal 95% intervals of the mean (``mean +- 1.96 sd / sqrt(n)``):
every table here has hundreds of episodes per policy.
"""

from __future__ import annotations

import math

import polars as pl

Z95 = 1.959963984540054


def summarize(episodes: pl.DataFrame, metrics: list[str]) -> pl.DataFrame:
    """Long table: policy, metric, n, mean, std, se, ci_low, ci_high (policies in first-seen order)."""
    order = episodes["policy"].unique(maintain_order=True).to_list()
    long = episodes.unpivot(index=["policy", "lane", "episode"], on=metrics, variable_name="metric", value_name="value")
    out = (
        long.group_by("policy", "metric", maintain_order=True)
        .agg(pl.len().alias("n"), pl.col("value").mean().alias("mean"), pl.col("value").std().alias("std"))
        .with_columns((pl.col("std") / pl.col("n").sqrt()).alias("se"))
        .with_columns((pl.col("mean") - Z95 * pl.col("se")).alias("ci_low"), (pl.col("mean") + Z95 * pl.col("se")).alias("ci_high"))
    )
    return out.with_columns(pl.col("policy").cast(pl.Enum(order))).sort("policy", maintain_order=True).with_columns(pl.col("policy").cast(pl.String))


def paired(episodes: pl.DataFrame, metric: str, reference: str) -> pl.DataFrame:
    """``policy - reference`` of ``metric`` per (lane, episode): n, mean, std, se, 95% CI, t = mean / se."""
    ref = episodes.filter(pl.col("policy") == reference).select("lane", "episode", pl.col(metric).alias("_ref"))
    joined = episodes.filter(pl.col("policy") != reference).join(ref, on=["lane", "episode"], how="inner")
    diff = (pl.col(metric) - pl.col("_ref")).alias("diff")
    out = (
        joined.select("policy", diff)
        .group_by("policy", maintain_order=True)
        .agg(pl.len().alias("n"), pl.col("diff").mean().alias("mean"), pl.col("diff").std().alias("std"))
        .with_columns((pl.col("std") / pl.col("n").sqrt()).alias("se"))
        .with_columns(
            (pl.col("mean") - Z95 * pl.col("se")).alias("ci_low"),
            (pl.col("mean") + Z95 * pl.col("se")).alias("ci_high"),
            (pl.col("mean") / pl.col("se")).alias("t"),
        )
    )
    return out.with_columns(pl.lit(metric).alias("metric"), pl.lit(reference).alias("reference"))


def fmt(x: float | None, digits: int = 2) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def markdown_table(summary: pl.DataFrame, diffs: pl.DataFrame, metrics: list[str], labels: dict[str, str], key_metric: str) -> str:
    """One row per policy: ``mean +- CI half-width (sd)`` per metric, then the paired difference of ``key_metric``."""
    reference = diffs["reference"][0] if diffs.height else None
    head = ["policy"] + [labels.get(m, m) for m in metrics]
    if reference is not None:
        head.append(f"paired diff of {labels.get(key_metric, key_metric)} vs {reference}: mean [95% CI] (t)")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    cells = {(r["policy"], r["metric"]): r for r in summary.iter_rows(named=True)}
    diff_rows = {r["policy"]: r for r in diffs.iter_rows(named=True)}
    for policy in summary["policy"].unique(maintain_order=True).to_list():
        row = [policy]
        for m in metrics:
            c = cells[(policy, m)]
            row.append(f"{fmt(c['mean'])} ± {fmt(Z95 * (c['se'] or 0.0))} (sd {fmt(c['std'])})")
        if reference is not None:
            d = diff_rows.get(policy)
            row.append("reference" if d is None else f"{fmt(d['mean'])} [{fmt(d['ci_low'])}, {fmt(d['ci_high'])}] ({fmt(d['t'], 1)})")
        lines.append("| " + " | ".join(row) + " |")
    n = int(summary["n"].max()) if summary.height else 0
    lines.append("")
    lines.append(f"n = {n} episodes per policy (same lanes and seeds for all: common random numbers); "
                 "± is the 95% CI half-width of the mean, sd the episode standard deviation.")
    return "\n".join(lines)
