"""The episode store's partition folders: padded episodes (layout version 2) that every reader takes in numeric order,
and stores of the unpadded layout (version 1) still read, written and compacted in their own layout."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from orderbook.analytics import store_layout as layout
from orderbook.analytics.store import EpisodeStore
from tests.orderbook.analytics.test_store import fingerprint

EPISODES = list(range(13))  # 0..12: directory order of unpadded names is 0, 1, 10, 11, 12, 2, ...


def episode_rows(episode: int, n: int = 2, first_seq: int = 0) -> pl.DataFrame:
    """n events rows of ``episode``, tagged with it."""
    return pl.DataFrame({"lane": [0] * n, "episode": [episode] * n, "seq": list(range(first_seq, first_seq + n)),
                         "tag": [episode] * n})


def new_store(root: Path, writes: int = 1) -> EpisodeStore:
    """A store of the current layout holding episodes 0..12, written in shuffled order ``writes`` times."""
    store = EpisodeStore(root)
    order = EPISODES.copy()
    random.Random(0).shuffle(order)
    for _ in range(writes):
        for episode in order:
            store.write_episode("r", {"events": episode_rows(episode)})
    return store


def old_layout_store(root: Path, episodes=EPISODES) -> None:
    """A store as orderbook wrote it before layout versions: ``_schema.json`` without ``layout_version`` and
    unpadded ``episode=<n>`` folders, made by hand."""
    EpisodeStore(root).close()
    meta = json.loads((root / "_schema.json").read_text())
    del meta["layout_version"]
    meta["layout"] = "<kind>/run=<run>/episode=<episode>/part-<n>.parquet"
    meta["kinds"] = {"events": {"lane": "Int64", "seq": "Int64", "tag": "Int64"}}
    (root / "_schema.json").write_text(json.dumps(meta))
    for episode in episodes:
        folder = root / "events" / "run=r" / f"episode={episode}"
        folder.mkdir(parents=True)
        episode_rows(episode).drop("episode").with_columns(pl.col("seq") + 2 * episode).write_parquet(
            folder / "part-00000.parquet", metadata={layout.VERSION_KEY: str(layout.HISTORY_SCHEMA_VERSION)})


def folders(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "events" / "run=r").iterdir())


def test_a_new_store_records_layout_2_and_pads_every_episode_folder_to_one_width(tmp_path):
    new_store(tmp_path)
    meta = json.loads((tmp_path / "_schema.json").read_text())
    assert meta["layout_version"] == layout.LAYOUT_VERSION == 2
    assert folders(tmp_path) == [f"episode={e:010d}" for e in EPISODES]
    assert len(str(layout.EPISODE_MAX)) == layout.EPISODE_DIGITS  # the widest episode an Int32 partition holds


def test_pandas_and_pyarrow_read_the_episodes_of_a_new_store_in_numeric_order_without_help(tmp_path):
    new_store(tmp_path)
    frame = pd.read_parquet(tmp_path / "events")
    assert [int(e) for e in frame["episode"]] == sorted(e for e in EPISODES for _ in range(2))
    assert list(frame["episode"].cat.categories) == EPISODES  # integers, in numeric order
    assert (frame["tag"].to_numpy() == frame["episode"].astype(int).to_numpy()).all()
    table = pads.dataset(tmp_path / "events", format="parquet", partitioning="hive").to_table()
    assert table.schema.field("episode").type == pa.int32()
    assert table.column("episode").to_pylist() == sorted(e for e in EPISODES for _ in range(2))
    typed = pd.read_parquet(tmp_path / "events", partitioning=EpisodeStore.partitioning())
    assert typed["episode"].dtype == np.int32 and typed["episode"].tolist() == [int(e) for e in frame["episode"]]


def test_polars_reads_integer_episodes_from_a_new_store(tmp_path):
    store = new_store(tmp_path)
    back = store.read("events")
    assert back.schema["episode"] == pl.Int32 and sorted(back["episode"].unique()) == EPISODES
    assert (back["episode"] == back["tag"]).all()
    untyped = pl.scan_parquet(tmp_path / "events" / "**" / "*.parquet", hive_partitioning=True).collect()
    assert untyped.schema["episode"].is_integer() and untyped["episode"].to_list() == sorted(back["episode"].to_list())
    assert store.episodes("r") == EPISODES


def test_an_old_layout_store_still_reads_with_integer_episodes(tmp_path):
    old_layout_store(tmp_path)
    store = EpisodeStore(tmp_path)
    back = store.read("events")
    assert back.schema["episode"] == pl.Int32 and (back["episode"] == back["tag"]).all()
    assert sorted(back["episode"].unique()) == EPISODES and store.episodes("r") == EPISODES
    assert store.verify() == len(EPISODES)
    # what the padded layout removes: untyped pandas takes the unpadded folders in directory order
    untyped = pd.read_parquet(tmp_path / "events")
    assert [int(e) for e in untyped["episode"].cat.categories] == sorted(EPISODES, key=str)
    assert store.dataset("events").to_table().column("episode").type == pa.int32()


def test_an_old_layout_store_is_appended_to_and_compacted_in_its_own_layout(tmp_path):
    old_layout_store(tmp_path)
    store = EpisodeStore(tmp_path)
    before = store.read("events")
    written = store.write_episode("r", {"events": pl.concat([episode_rows(3), episode_rows(10)])})
    assert sorted(str(p.relative_to(tmp_path)) for p in written) == [
        "events/run=r/episode=10/part-00001.parquet", "events/run=r/episode=3/part-00001.parquet"]
    assert folders(tmp_path) == sorted(f"episode={e}" for e in EPISODES)  # one episode is never two folders
    assert "layout_version" not in json.loads((tmp_path / "_schema.json").read_text())
    appended = store.read("events")
    top = before["seq"].max()  # the run's seq continues after the old files' rows
    assert appended.height == before.height + 4 and sorted(appended["seq"])[-4:] == [top + 1, top + 1, top + 2, top + 2]
    done = store.compact("r")
    assert (done.partitions, done.files_before, done.files_after) == (2, 4, 2)
    assert all(len(list((tmp_path / "events" / "run=r" / f).glob("part-*.parquet"))) == 1 for f in folders(tmp_path))
    assert_frame_equal(store.read("events").sort("seq"), appended.sort("seq"))


def test_a_new_layout_store_compacts_into_its_padded_folders(tmp_path):
    store = new_store(tmp_path, writes=2)
    before = store.read("events").sort("seq")
    done = store.compact("r", episodes=[2, 10])
    assert (done.partitions, done.files_before, done.files_after) == (2, 4, 2)
    parts = {f: len(list((tmp_path / "events" / "run=r" / f).glob("part-*.parquet"))) for f in folders(tmp_path)}
    assert parts == {f"episode={e:010d}": 1 if e in (2, 10) else 2 for e in EPISODES}
    assert_frame_equal(store.read("events").sort("seq"), before)


@pytest.mark.parametrize("episode", [pl.Series("episode", [-1], pl.Int64), pl.Series("episode", [2**31], pl.Int64),
                                     pl.Series("episode", [None], pl.Int64), pl.Series("episode", [1.5], pl.Float64)],
                         ids=["negative", "past-int32", "null", "float"])
def test_an_episode_the_store_cannot_name_is_refused_and_nothing_is_written(tmp_path, episode):
    store = new_store(tmp_path)
    before, schema = fingerprint(tmp_path), (tmp_path / "_schema.json").read_text()
    bad = pl.DataFrame({"lane": [0], "seq": [0], "tag": [0]}).with_columns(episode)
    with pytest.raises(ValueError, match="expected an integer episode column|expected episodes from 0 to 2147483647"):
        store.write_episode("r", {"events": bad})
    assert fingerprint(tmp_path) == before and folders(tmp_path) == [f"episode={e:010d}" for e in EPISODES]
    assert (tmp_path / "_schema.json").read_text() == schema


def test_a_store_of_an_unknown_layout_version_is_refused(tmp_path):
    new_store(tmp_path)
    meta = json.loads((tmp_path / "_schema.json").read_text())
    (tmp_path / "_schema.json").write_text(json.dumps({**meta, "layout_version": 3}))
    with pytest.raises(ValueError, match=r"expected a store layout version in \[1, 2\], found 3"):
        EpisodeStore(tmp_path)


@given(st.integers(0, layout.EPISODE_MAX), st.integers(0, layout.EPISODE_MAX))
def test_padded_folder_names_sort_as_their_episodes_and_both_layouts_read_back(a, b):
    name_a, name_b = layout.episode_folder(a, 2), layout.episode_folder(b, 2)
    assert len(name_a) == len(name_b) == len("episode=") + layout.EPISODE_DIGITS
    assert (name_a < name_b) == (a < b)
    assert layout.episode_of(name_a) == a and layout.episode_of(layout.episode_folder(a, 1)) == a
