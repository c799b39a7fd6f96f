"""Reading source blocks ahead of the merge: the reader process and the reader thread give the same blocks and the
same merged bytes; reader errors reach the merge with their message; a merge stopped early leaves no reader behind;
what the merged file compresses."""

import multiprocessing
import threading

import h5py
import numpy as np
import pytest

from posebank.core.errors import CacheFormatError
from posebank.core.store import SPLITS, Cache
from posebank.merging.blocks import BlockStream, BlockTask, can_fork, task_items
from posebank.merging.build import build_merge
from posebank.merging.store import COPIED_FROM_SOURCE, RAW_COLUMNS, joints_compress

needs_fork = pytest.mark.skipif(not can_fork(), reason="a reader process needs fork and two cores")


def _tasks(small5_caches):
    return [BlockTask(small5_caches / "surreal", (SPLITS.index("train"),), 1024, ("world_coords",)),
            BlockTask(small5_caches / "h36m_alljoints", (0, 1, 2), 1024, COPIED_FROM_SOURCE, (0, 2, 5)),
            BlockTask(small5_caches / "mupots", (SPLITS.index("test"),), 1024, COPIED_FROM_SOURCE)]


def _read(stream, n):
    out = []
    for k in range(n):
        for rows, cols in stream.task(k):
            out.append((k, rows.copy(), {c: v.copy() for c, v in cols.items()}))  # views: valid until the next
    return out


@needs_fork
def test_process_and_thread_readers_give_the_same_blocks(small5_caches):
    tasks = _tasks(small5_caches)
    with BlockStream(tasks, mode="process") as p:
        by_process = _read(p, len(tasks))
        assert p.info["reader"] == "process"
    assert p.info["reader_peak_rss_mb"] > 0  # the reader reports its own memory when it finishes
    with BlockStream(tasks, mode="thread") as t:
        by_thread = _read(t, len(tasks))
    assert len(by_process) == len(by_thread) > 0
    for (k1, r1, c1), (k2, r2, c2) in zip(by_process, by_thread):
        assert k1 == k2 and np.array_equal(r1, r2) and c1.keys() == c2.keys()
        for c in c1:
            assert np.array_equal(c1[c], c2[c], equal_nan=True)
    # and what the blocks hold is the cache's: the selected rows, the selected joints
    h36m = Cache(small5_caches / "h36m_alljoints")
    rows = np.concatenate([r for k, r, _ in by_process if k == 1])
    wc = np.concatenate([c["world_coords"] for k, _, c in by_process if k == 1])
    assert np.array_equal(rows, np.arange(len(h36m)))
    assert np.array_equal(wc, h36m.column("world_coords", slice(None))[:, [0, 2, 5]], equal_nan=True)
    mupots = Cache(small5_caches / "mupots")
    test_rows = np.flatnonzero(mupots.column("split", slice(None)) == SPLITS.index("test"))
    assert np.array_equal(np.concatenate([r for k, r, _ in by_process if k == 2] or [np.zeros(0, int)]), test_rows)


@needs_fork
def test_merges_by_process_and_by_thread_are_byte_identical(small5, small5_caches, params, tmp_path):
    out = {}
    for mode in ("process", "thread"):
        out[mode] = tmp_path / f"{mode}.h5"
        result = build_merge("small5", params.merge("small5"), small5_caches, out[mode], reader=mode)
        assert result["reader"] == mode
        assert (result.get("reader_peak_rss_mb", 0) > 0) == (mode == "process")  # the reader's own memory
    assert out["process"].read_bytes() == out["thread"].read_bytes() == small5.read_bytes()


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_a_reader_error_reaches_the_merge_with_its_message(small5_caches, tmp_path, mode):
    if mode == "process" and not can_fork():
        pytest.skip("no fork")
    import shutil
    broken = tmp_path / "caches"
    shutil.copytree(small5_caches, broken)
    shard = sorted((broken / "h36m_alljoints").glob("*.h5"))[0]
    shard.write_bytes(b"not hdf5 at all")
    tasks = [BlockTask(broken / "surreal", (0,), 1024, ("world_coords",)),
             BlockTask(broken / "h36m_alljoints", (0,), 1024, ("world_coords",))]
    with BlockStream(tasks, mode=mode) as s:
        assert sum(len(r) for r, _ in s.task(0)) > 0
        with pytest.raises(CacheFormatError, match=shard.name):
            list(s.task(1))
    assert not [p for p in multiprocessing.active_children() if p.name == "posebank-merge-reader"]


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_stopping_early_leaves_no_reader_behind(small5_caches, mode):
    if mode == "process" and not can_fork():
        pytest.skip("no fork")
    tasks = _tasks(small5_caches) * 20
    s = BlockStream(tasks, mode=mode, depth=1)
    next(iter(s.task(0)))
    s.close()  # e.g. the writer failed: the reader is stopped (killed, for a process) and reaped
    assert not [p for p in multiprocessing.active_children() if p.name == "posebank-merge-reader"]
    assert not any(t.name == "merge-read-ahead" for t in threading.enumerate())


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_out_of_order_reads_are_refused_and_the_reader_still_stops(small5_caches, mode):
    if mode == "process" and not can_fork():
        pytest.skip("no fork")
    with BlockStream(_tasks(small5_caches), mode=mode) as s, pytest.raises(ValueError, match="out of order"):
        next(iter(s.task(1)))
    assert not [p for p in multiprocessing.active_children() if p.name == "posebank-merge-reader"]
    assert not any(t.name == "merge-read-ahead" for t in threading.enumerate())


def test_task_items_marks_the_end_of_every_task_even_when_nothing_is_selected(small5_caches):
    tasks = [BlockTask(small5_caches / "mupots", (SPLITS.index("train"),), 1024, ("bbox",)),  # none: all val/test
             BlockTask(small5_caches / "mupots", (0, 1, 2), 1024, ("bbox",))]
    items = list(task_items(tasks))
    assert items[0] == (0, None, None) and items[-1] == (1, None, None)
    assert sum(len(r) for k, r, _ in items if r is not None) == len(Cache(small5_caches / "mupots"))


def test_what_a_merge_compresses(small5, small5_caches):
    with h5py.File(small5, "r") as f:
        for dataset in ("surreal", "h36m_alljoints", "muco_3dhp", "tdhp_test", "mupots"):
            g = f["sources"][dataset]
            n = g["row"].shape[0]
            for name in RAW_COLUMNS:  # per-example cameras and boxes: stored as they are
                assert g[name].compression is None, (dataset, name)
                assert g[name].chunks[0] <= max(n, 1)  # a small source gets small chunks: no padding stored
            for name in ("visibility", "camera/intrinsic_matrix", "camera/world_up", "row"):
                assert g[name].compression == "gzip" and g[name].shuffle, (dataset, name)
            expected = "gzip" if joints_compress(small5_caches / dataset) else None
            assert g["world_coords"].compression == expected, dataset


def test_joints_are_compressed_where_the_source_compresses_them(tmp_path):
    """A cache whose joints are mostly missing stores them in a fraction of their bytes: the merge compresses them
    too; dense joints (that gzip hardly shrinks) it stores as they are."""
    for name, missing in (("sparse", 0.9), ("dense", 0.0)):
        rng = np.random.default_rng(0)
        wc = (rng.normal(size=(4096, 30, 3)) * 300).astype(np.float32)
        wc[rng.random((4096, 30)) < missing] = np.nan
        with h5py.File(tmp_path / f"{name}.h5", "w") as f:
            f.create_dataset("world_coords", data=wc, chunks=(1024, 30, 3), compression="gzip", shuffle=True)
        assert joints_compress(tmp_path / f"{name}.h5") == (name == "sparse")
