"""The episode store's table of runs: what each run is, so notebooks need not parse it out of run names.

One JSON record per run, ``root/_runs/run=<run>.json`` (``_`` first: hive readers
skip it), written atomically by the run's writer (under the run's lock), so runs
written concurrently never race on one file. :func:`runs_frame` reads them as one
table:

| column | dtype | what |
|---|---|---|
| run | String | the run name (the ``run=`` partition) |
| env_id | String | the Gymnasium id that produced it (null when not given) |
| config | String | JSON: the env's keyword arguments, the trainer's settings (values that are not JSON become their ``repr``) |
| seeds | List(Int64) | the seeds of its lanes or workers |
| package_version | String | orderbook-gym's version that wrote it |
| created | Datetime(us, UTC) | when the run was first written or described |

A run first written without :meth:`EpisodeStore.describe_run` gets a record with
``env_id``, ``config`` and ``seeds`` null; describing it later keeps ``created``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import polars as pl

RUNS_DIR = "_runs"
RUNS_SCHEMA = {
    "run": pl.String,
    "env_id": pl.String,
    "config": pl.String,
    "seeds": pl.List(pl.Int64),
    "package_version": pl.String,
    "created": pl.Datetime("us", "UTC"),
}
_REPR_CHARS = 500


def package_version() -> str:
    try:
        return metadata.version("orderbook-gym")
    except metadata.PackageNotFoundError:  # a source checkout that was never installed
        return "unknown"


def _jsonable(value: object) -> object:
    if hasattr(value, "tolist") and getattr(value, "size", _REPR_CHARS + 1) <= _REPR_CHARS:
        return value.tolist()  # a small numpy array or scalar
    return repr(value)[:_REPR_CHARS]


def config_json(config: object) -> str | None:
    """``config`` as JSON text (a str is taken as JSON already and checked)."""
    if config is None:
        return None
    if isinstance(config, str):
        try:
            json.loads(config)
        except json.JSONDecodeError as err:
            raise ValueError(f"config: expected a JSON-able object or JSON text, got text that is not JSON ({err})") from err
        return config
    return json.dumps(config, default=_jsonable, sort_keys=True)


def record_path(root: Path, run: str) -> Path:
    return root / RUNS_DIR / f"run={run}.json"


def read_record(root: Path, run: str) -> dict | None:
    path = record_path(root, run)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def new_record(run: str, env_id: str | None, config: object, seeds: Iterable[int] | None, old: dict | None) -> dict:
    """The run's record: the given fields, the rest (and ``created``) kept from ``old``."""
    if env_id is not None and not isinstance(env_id, str):
        raise ValueError(f"env_id: expected a Gymnasium id (str), got {type(env_id).__name__}")
    if seeds is not None:
        seeds = [int(s) for s in seeds]
    old = old or {}
    return {
        "run": run,
        "env_id": env_id if env_id is not None else old.get("env_id"),
        "config": config_json(config) if config is not None else old.get("config"),
        "seeds": seeds if seeds is not None else old.get("seeds"),
        "package_version": package_version(),
        "created": old.get("created") or datetime.now(UTC).isoformat(timespec="microseconds"),
    }


def runs_frame(root: Path) -> pl.DataFrame:
    """Every run's record as one frame (``RUNS_SCHEMA``), sorted by run; runs with files but no record are left out."""
    records = [json.loads(p.read_text()) for p in sorted((root / RUNS_DIR).glob("run=*.json"))]
    frame = pl.DataFrame(
        {name: [r.get(name) for r in records] for name in RUNS_SCHEMA if name != "created"},
        schema={k: v for k, v in RUNS_SCHEMA.items() if k != "created"},
    )
    created = pl.Series("created", [r["created"] for r in records], dtype=pl.String).str.to_datetime(time_unit="us", time_zone="UTC")
    return frame.with_columns(created).select(list(RUNS_SCHEMA)).sort("run")
