"""Folder caches (shards + index.json) read exactly as one file holding the same rows, with global row numbers."""

import json

import numpy as np
import pytest
from test_store import JI, make_examples

from posebank.core import store
from posebank.core.store import INDEX_NAME, Cache, CacheFormatError, CacheWriter, write_index

CUTS = (0, 7, 8, 19, 19, 30)  # shard boundaries (one shard empty), 30 rows


@pytest.fixture
def both(tmp_path):
    """The same 30 rows as one file and as a folder of five shards (labels first seen in different shards)."""
    rows = make_examples(30)
    single = tmp_path / "single.h5"
    with CacheWriter(single, "toy", JI, {"citation": "nobody"}) as w:
        w.add_quarantine("a.mp4#1", "unreadable")
        for e in rows:
            w.add(e)
    folder = tmp_path / "toy"
    files = []
    for k, (a, b) in enumerate(zip(CUTS[:-1], CUTS[1:])):
        files.append(folder / f"part{k}.h5")
        with CacheWriter(files[-1], "toy", JI, {"digest": f"d{k}", "shard": f"part{k}"}) as w:
            if k == 0:
                w.add_quarantine("a.mp4#1", "unreadable")
            for e in rows[a:b]:
                w.add(e)
    write_index(folder, "toy", JI, files, {"citation": "nobody"})
    return single, folder, files


def test_every_read_of_a_folder_equals_the_single_file(both):
    single, folder, _ = both
    with Cache(single) as one, Cache(folder) as many:
        assert len(one) == len(many) == 30 and many.n_shards == 5 and one.n_shards == 1
        for name in ("subject", "sequence", "camera_name", "activity"):
            labels_one, labels_many = np.array(one.categories(name)), np.array(many.categories(name))
            assert np.array_equal(labels_one[one.column(name)], labels_many[many.column(name)]), name
        for sel in (slice(None), slice(5, 21), slice(3, 29, 4), slice(8, 8), [29, 0, 8, 8, 19, -1], 18, -3,
                    np.array([7, 6, 20])):
            for name in ("world_coords", "bbox", "split", "camera/R", "image_size"):
                np.testing.assert_array_equal(one.column(name, sel), many.column(name, sel), err_msg=f"{name} {sel}")
        for a, b in ((0, 30), (6, 9), (7, 8), (18, 20), (25, 40)):
            assert one.blobs("image", a, b) == many.blobs("image", a, b)
            r1, r2 = one.read(a, b), many.read(a, b)
            assert r1.keys() == r2.keys()
            for k in r1:
                np.testing.assert_array_equal(r1[k], r2[k], err_msg=k)
        for i in (0, 7, 8, 18, 19, 29, -1):
            e1, e2 = one[i], many[i]
            assert (e1.image, e1.mask, e1.subject, e1.sequence, e1.frame_index) == \
                (e2.image, e2.mask, e2.subject, e2.sequence, e2.frame_index)
            assert e1.camera.allclose(e2.camera) and many.camera(i).allclose(e1.camera)
            assert one.blob("mask", i) == many.blob("mask", i)
        assert [e.source_path for e in one.examples(3, 27, block_rows=4)] == \
            [e.source_path for e in many.examples(3, 27, block_rows=4)]
        assert one.split_counts() == many.split_counts()
        assert one.distinct_pairs("subject", "camera_name") == many.distinct_pairs("subject", "camera_name")
        assert one.quarantine == many.quarantine == [{"path": "a.mp4#1", "reason": "unreadable"}]
        s1, s2 = one.summary(), many.summary()
        assert (s2["layout"], s2["shards"], s1["layout"]) == ("folder", 5, "file")
        skip = {"file", "layout", "shards", "size_bytes"}
        assert {k: v for k, v in s1.items() if k not in skip} == {k: v for k, v in s2.items() if k not in skip}
        assert many.attrs["citation"] == "nobody" and many.attrs["n_examples"] == 30
        with pytest.raises(IndexError):
            many[30]
        mask = np.zeros(30, bool)
        mask[[2, 5, 20]] = True
        np.testing.assert_array_equal(many.column("bbox", mask), one.column("bbox", [2, 5, 20]))
        assert many.column("world_coords", []).shape == (0, 4, 3) and many.column("split", []).dtype == np.uint8


def test_one_row_opens_one_shard(both):
    _, folder, _ = both
    with Cache(folder) as many:
        many.column("bbox", 20)
        many.blob("image", 21)
        assert [p is not None for p in many._parts] == [False, False, False, False, True]  # rows 19-29


def test_the_index_records_ranges_counts_and_digests(both):
    _, folder, files = both
    index = json.loads((folder / INDEX_NAME).read_text())
    assert [(s["start"], s["stop"]) for s in index["shards"]] == list(zip(CUTS[:-1], CUTS[1:]))
    assert [s["sha256"] for s in index["shards"]] == [store.sha256_file(f) for f in files]
    assert index["examples_per_split"] == {"train": 10, "val": 10, "test": 10}
    assert "mtime" not in json.dumps(index)  # no times: equal shards, equal index


def test_an_unchanged_index_is_left_alone_and_hashes_are_reused(both, monkeypatch, tmp_path):
    _, folder, files = both
    state = tmp_path / "state.json"
    write_index(folder, "toy", JI, files, {"citation": "nobody"}, state=state)
    stamp = (folder / INDEX_NAME).stat().st_mtime_ns
    hashed = []
    monkeypatch.setattr(store, "sha256_file", lambda p: hashed.append(p) or "x")
    write_index(folder, "toy", JI, files, {"citation": "nobody"}, state=state)
    assert hashed == [] and (folder / INDEX_NAME).stat().st_mtime_ns == stamp
    # a rewritten shard is hashed again
    with CacheWriter(files[1], "toy", JI, {"digest": "d1-new", "shard": "part1"}) as w:
        w.add(make_examples(1, seed=5)[0])
    write_index(folder, "toy", JI, files, {"citation": "nobody"}, state=state)
    assert hashed == [files[1]]


def test_a_missing_or_changed_shard_and_a_bad_index_are_named(both):
    _, folder, files = both
    with CacheWriter(files[2], "toy", JI, {"digest": "other"}) as w:  # 11 rows per the index, now 1
        w.add(make_examples(1)[0])
    with Cache(folder) as many, pytest.raises(CacheFormatError, match="changed after the index"):
        many.column("bbox", 10)
    files[4].unlink()
    with Cache(folder) as many, pytest.raises(CacheFormatError, match=f"{files[4].name}.*missing"):
        many.column("bbox", 25)
    (folder / INDEX_NAME).write_text("{not json")
    with pytest.raises(CacheFormatError, match="unreadable index"):
        Cache(folder)
    (folder / INDEX_NAME).write_text(json.dumps({"format": "posebank.cache-index", "format_version": 99}))
    with pytest.raises(CacheFormatError, match="newer"):
        Cache(folder)
    (folder / INDEX_NAME).unlink()
    with pytest.raises(CacheFormatError, match="no index.json"):
        Cache(folder)


def test_a_pass_over_many_shards_keeps_few_open(both, monkeypatch):
    """Reading shard after shard closes the least recently used beyond MAX_OPEN_SHARDS: memory stays bounded
    however many shards a cache has, and every row still reads back equal."""
    single, folder, _ = both
    monkeypatch.setattr(store, "MAX_OPEN_SHARDS", 2)
    with Cache(folder) as many, Cache(single) as one:
        for i in range(len(one)):
            assert np.array_equal(many.column("world_coords", i), one.column("world_coords", i), equal_nan=True)
            assert many.blob("image", i) == one.blob("image", i)
            assert sum(p is not None for p in many._parts) <= 2
        assert np.array_equal(many.column("bbox", np.arange(30)[::-1]), one.column("bbox", np.arange(30)[::-1]))
        assert many.categories("subject") == one.categories("subject")
