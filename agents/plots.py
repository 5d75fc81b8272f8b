"""The comparison picture of an evaluation (matplotlib Agg, imported lazily).

Four panels: the distribution of the key metric per policy (box, whiskers at the
5th/95th percentiles, the mean as a dot), the paired differences against the
reference with their 95% intervals, the fill ratio (or fills) with 95% intervals,
and rejects and expiries per episode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl


def comparison_png(path: Path, episodes: pl.DataFrame, summary: pl.DataFrame, diffs: pl.DataFrame, key_metric: str,
                   labels: dict[str, str], bar_metric: str, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = episodes["policy"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    fig.suptitle(title)

    ax = axes[0, 0]
    data = [episodes.filter(pl.col("policy") == p)[key_metric].to_numpy() for p in policies]
    ax.boxplot(data, whis=(5, 95), showfliers=False)
    ax.set_xticks(range(1, len(policies) + 1), policies, rotation=20)
    ax.scatter(range(1, len(policies) + 1), [d.mean() for d in data], color="tab:red", zorder=3, label="mean")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_ylabel(labels.get(key_metric, key_metric))
    ax.set_title(f"{labels.get(key_metric, key_metric)} per episode (box: quartiles, whiskers: 5-95%)")
    ax.legend(loc="upper right")

    ax = axes[0, 1]
    if diffs.height:
        names = diffs["policy"].to_list()
        mean = diffs["mean"].to_numpy()
        err = np.stack([mean - diffs["ci_low"].to_numpy(), diffs["ci_high"].to_numpy() - mean])
        y = np.arange(len(names))
        ax.errorbar(mean, y, xerr=err, fmt="o", capsize=4)
        ax.set_yticks(y, names)
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set_xlabel(f"{labels.get(key_metric, key_metric)}: policy - {diffs['reference'][0]} (paired, 95% CI)")
        ax.set_title(f"paired differences vs {diffs['reference'][0]} (same lanes and seeds)")
    else:
        ax.set_axis_off()

    for ax, metrics, heading in ((axes[1, 0], [bar_metric], labels.get(bar_metric, bar_metric)),
                                 (axes[1, 1], ["rejects", "expiries"], "rejects and expiries per episode")):
        width = 0.8 / len(metrics)
        x = np.arange(len(policies))
        for k, m in enumerate(metrics):
            rows = summary.filter(pl.col("metric") == m)
            mean = rows["mean"].to_numpy()
            half = (rows["ci_high"] - rows["mean"]).fill_null(0.0).to_numpy()
            ax.bar(x + (k - (len(metrics) - 1) / 2) * width, mean, width, yerr=half, capsize=3, label=labels.get(m, m))
        ax.set_xticks(x, policies, rotation=20)
        ax.set_title(f"{heading} (mean, 95% CI)")
        if len(metrics) > 1:
            ax.legend()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    """Lay out, write (folders made) and close ``fig``; its path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curve_png(path: Path, progress_csv: Path, title: str) -> Path | None:
    """Training curve of a run from its ``progress.csv`` (SB3's logger): the shortfall of the episodes each
    rollout finished (Execution; dots, and their running mean over 10 rollouts) and the mean episode return of
    the last 100 episodes (the env's reward, without the training-side terms of :mod:`agents.rewards`), against
    training steps. ``None`` (nothing written) when the file has no rows (a run of 0 PPO steps: the cloned policy alone)."""
    if progress_csv.stat().st_size == 0:
        return None
    frame = pl.read_csv(progress_csv, infer_schema_length=None)
    if frame.height == 0 or "time/total_timesteps" not in frame.columns:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = frame["time/total_timesteps"].cast(pl.Float64).to_numpy()
    panels = [(c, label) for c, label in (("rollout/shortfall_bps", "shortfall (bps) of the episodes finished per rollout"),
                                          ("rollout/ep_rew_mean", "episode return (the env's reward, last 100 episodes)"))
              if c in frame.columns and frame[c].drop_nulls().len()]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
    fig.suptitle(title)
    for ax, (column, label) in zip(axes[0], panels):
        y = frame[column].cast(pl.Float64).to_numpy()
        ok = np.isfinite(y)
        ax.plot(steps[ok], y[ok], ".", ms=3, alpha=0.5, label="per rollout")
        if ok.sum() >= 10:
            running = np.convolve(y[ok], np.ones(10) / 10, mode="valid")
            ax.plot(steps[ok][9:], running, lw=2, label="running mean (10 rollouts)")
        ax.set_xlabel("training steps (summed over lanes)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)
