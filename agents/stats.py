"""Per-episode results -> summary statistics and paired differences (Polars expressions).

Every policy is evaluated on the same lanes and seeds, so episode ``(lane, episode)``
of one policy ran on the same market (and, as far as order ids coincide, the same
faults) as that episode of every other: common random numbers. The honest
comparison is then the paired difference per ``(lane, episode)``, whose spread
excludes the market's own variance that both policies share.

Intervals are Student t 95% intervals of the mean, ``mean +- t(0.975, n - 1) sd / sqrt(n)``,
exact for small ``n`` too (a paired comparison on a handful of seeds is common); the
quantile comes from :func:`t_quantile` (no SciPy: the project does not depend on it).
Every table carries ``n`` with its figures.
"""

from __future__ import annotations

import math

import polars as pl

Z95 = 1.959963984540054  # the normal 97.5% quantile: the limit of t_quantile(0.975, df) as df grows


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function (modified Lentz, as in
    Numerical Recipes' ``betacf``): converges fast for ``x < (a + 1) / (a + b + 2)``."""
    tiny, eps = 1e-300, 1e-16
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)), -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)`` for ``a, b > 0`` and ``0 <= x <= 1``."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(x: float, df: float) -> float:
    """``P(T <= x)`` for Student's t with ``df > 0`` degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + x * x))
    return 1.0 - tail if x >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df > 0`` degrees of freedom (``0 < p < 1``), to double
    precision: closed forms for ``df`` 1 and 2, else bisection of :func:`t_cdf` (monotone). ``nan`` for
    ``df <= 0`` or a nan (a single episode has no interval); ValueError for ``p`` outside ``(0, 1)``."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be a probability in (0, 1), got {p!r}")
    if not df > 0:
        return math.nan
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2.0 * p - 1.0) / math.sqrt(2.0 * p * (1.0 - p))
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return 0.5 * (lo + hi)


def t95(n: int) -> float:
    """The half-width factor of a two-sided 95% interval of a mean of ``n`` values: ``t(0.975, n - 1)``."""
    return t_quantile(0.975, n - 1)


def _with_t_interval(frame: pl.DataFrame) -> pl.DataFrame:
    """``t95``, ``ci_low`` and ``ci_high`` from ``n``, ``mean`` and ``se`` (null where n < 2)."""
    factor = pl.Series("t95", [t95(int(n)) for n in frame["n"]], dtype=pl.Float64).fill_nan(None)
    return frame.with_columns(factor).with_columns(
        (pl.col("mean") - pl.col("t95") * pl.col("se")).alias("ci_low"), (pl.col("mean") + pl.col("t95") * pl.col("se")).alias("ci_high")
    )


def summarize(episodes: pl.DataFrame, metrics: list[str]) -> pl.DataFrame:
    """Long table: policy, metric, n, mean, std, se, t95, ci_low, ci_high (policies in first-seen order;
    the interval is Student t with ``n - 1`` degrees of freedom)."""
    order = episodes["policy"].unique(maintain_order=True).to_list()
    long = episodes.unpivot(index=["policy", "lane", "episode"], on=metrics, variable_name="metric", value_name="value")
    out = (
        long.group_by("policy", "metric", maintain_order=True)
        .agg(pl.len().alias("n"), pl.col("value").mean().alias("mean"), pl.col("value").std().alias("std"))
        .with_columns((pl.col("std") / pl.col("n").sqrt()).alias("se"))
    )
    out = _with_t_interval(out)
    return out.with_columns(pl.col("policy").cast(pl.Enum(order))).sort("policy", maintain_order=True).with_columns(pl.col("policy").cast(pl.String))


def paired(episodes: pl.DataFrame, metric: str, reference: str) -> pl.DataFrame:
    """``policy - reference`` of ``metric`` per (lane, episode), on the episodes both ran (common random
    numbers): n, mean, std, se, t95, the Student t 95% CI (``n - 1`` degrees of freedom), t = mean / se."""
    ref = episodes.filter(pl.col("policy") == reference).select("lane", "episode", pl.col(metric).alias("_ref"))
    joined = episodes.filter(pl.col("policy") != reference).join(ref, on=["lane", "episode"], how="inner")
    diff = (pl.col(metric) - pl.col("_ref")).alias("diff")
    out = (
        joined.select("policy", diff)
        .group_by("policy", maintain_order=True)
        .agg(pl.len().alias("n"), pl.col("diff").mean().alias("mean"), pl.col("diff").std().alias("std"))
        .with_columns((pl.col("std") / pl.col("n").sqrt()).alias("se"))
    )
    out = _with_t_interval(out).with_columns((pl.col("mean") / pl.col("se")).alias("t"))
    return out.with_columns(pl.lit(metric).alias("metric"), pl.lit(reference).alias("reference"))


def fmt(x: float | None, digits: int = 2) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def paired_cell(row: dict) -> str:
    """A row of :func:`paired` as a table cell, ``+mean [+low, +high] (t)``; ``reference`` for the reference
    policy's row (no difference: ``mean`` is None)."""
    if row["mean"] is None:
        return "reference"
    return f"{row['mean']:+.2f} [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}] ({row['t']:.1f})"


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
            half = None if c["ci_high"] is None else c["ci_high"] - c["mean"]
            row.append(f"{fmt(c['mean'])} ± {fmt(half)} (sd {fmt(c['std'])})")
        if reference is not None:
            d = diff_rows.get(policy)
            row.append("reference" if d is None else f"{fmt(d['mean'])} [{fmt(d['ci_low'])}, {fmt(d['ci_high'])}] ({fmt(d['t'], 1)}; n {d['n']})")
        lines.append("| " + " | ".join(row) + " |")
    n = int(summary["n"].max()) if summary.height else 0
    lines.append("")
    lines.append(f"n = {n} episodes per policy (same lanes and seeds for all: common random numbers); "
                 f"± is the 95% CI half-width of the mean (Student t, {max(n - 1, 0)} degrees of freedom: "
                 f"{fmt(t95(n), 3)} standard errors), sd the episode standard deviation.")
    return "\n".join(lines)
