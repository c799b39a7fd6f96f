"""The streaming merge: exact round trips to the sources, split mapping, determinism, atomicity, missing sources,
the plausibility filter, and single-file caches as sources."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from posebank.core.camera import Camera
from posebank.core.errors import CacheFormatError
from posebank.core.jpeg import encode_jpeg
from posebank.core.settings import merge_params
from posebank.core.skeleton import JointInfo
from posebank.core.store import Cache, CacheWriter, Example
from posebank.merging import plausibility
from posebank.merging.build import MissingSourcesError, build_merge, missing_reason
from posebank.merging.reader import Merge
from posebank.merging.store import annotation_bytes


def test_every_merged_example_equals_its_source_exactly(small5, small5_caches):
    with Merge(small5) as m:
        assert len(m) > 0 and m.joint_info.n_joints == 77
        wc = m.column("world_coords", slice(None))
        vis = m.column("visibility", slice(None))
        for i in range(len(m)):
            k, j = m.locate(i)
            dataset, row = m.source_row(i)
            src = Cache(small5_caches / dataset)
            cols = np.asarray(m.sources[k]["source_joint_index"])
            mapped = m.joint_maps[k]
            assert np.array_equal(wc[i, mapped], src.column("world_coords", row)[cols], equal_nan=True)
            assert np.array_equal(vis[i, mapped], src.column("visibility", row)[cols])
            others = np.setdiff1d(np.arange(m.joint_info.n_joints), mapped)
            assert np.isnan(wc[i, others]).all()
            for name in ("camera/R", "camera/t", "camera/intrinsic_matrix", "bbox", "image_size"):
                assert np.array_equal(m.column(name, i), src.column(name, row)), name
            assert m.blob("image", i) == src.blob("image", row) and len(m.blob("image", i)) > 0
            assert m.blob("mask", i) == src.blob("mask", row)
            src.close()


def test_splits_go_where_the_composition_says(small5, small5_caches):
    counts = {d: Cache(small5_caches / d).split_counts() for d in
              ("surreal", "h36m_alljoints", "muco_3dhp", "tdhp_test", "mupots")}
    with Merge(small5) as m:
        per = {s["dataset"]: s["examples_per_split"] for s in m.sources}
        assert per["surreal"]["train"] == counts["surreal"]["train"] + counts["surreal"]["val"]
        assert per["h36m_alljoints"] == {"train": counts["h36m_alljoints"]["train"], "val": 0, "test": 0}
        assert per["tdhp_test"] == {"train": 0, "val": counts["tdhp_test"]["test"], "test": 0}
        assert per["mupots"]["val"] == counts["mupots"]["val"] > 0
        assert m.split_counts()["train"] == sum(p["train"] for p in per.values())
        # the merged order: by split, then source in composition order
        splits = m.column("split", slice(None))
        assert np.all(np.diff(splits.astype(int)) >= 0)
        assert m.attrs["partial"] == 0 and json.loads(m.attrs["missing"]) == []
        assert m.sources[3]["joints_as"] == "muco_3dhp" and len(m.joint_maps[3]) == 17


def test_a_merge_is_deterministic_atomic_and_annotation_sized(small5, small5_caches, params, tmp_path, monkeypatch):
    again = tmp_path / "again.h5"
    build_merge("small5", params.merge("small5"), small5_caches, again)
    assert again.read_bytes() == small5.read_bytes()
    sources = sum(annotation_bytes(small5_caches / d) for d in
                  ("surreal", "h36m_alljoints", "muco_3dhp", "tdhp_test", "mupots"))
    assert annotation_bytes(small5) <= 1.3 * sources
    with h5py.File(small5, "r") as f:  # images and masks stay in the sources
        names = []
        f.visit(names.append)
        assert not any(n.split("/")[-1] in ("image", "mask") or "/image/" in n for n in names)

    from posebank.merging import store

    def fail(*a, **k):
        raise RuntimeError("killed mid-merge")

    before = again.read_bytes()
    monkeypatch.setattr(store.MergeWriter, "append", fail)
    with pytest.raises(RuntimeError):
        build_merge("small5", params.merge("small5"), small5_caches, again)
    assert again.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.h5"]  # no temporary file left


def test_missing_sources_refuse_by_name_or_make_a_partial_merge(small5_caches, params, tmp_path):
    partial_dir = tmp_path / "caches"
    partial_dir.mkdir()
    for d in ("surreal", "h36m_alljoints", "muco_3dhp"):
        (partial_dir / d).symlink_to(small5_caches / d)
    with pytest.raises(MissingSourcesError) as e:
        build_merge("small5", params.merge("small5"), partial_dir, tmp_path / "s5.h5")
    assert "tdhp_test" in str(e.value) and "mupots" in str(e.value) and "--allow-missing" in str(e.value)
    assert not (tmp_path / "s5.h5").exists()
    r = build_merge("small5", params.merge("small5"), partial_dir, tmp_path / "s5.h5", allow_missing=True)
    assert r["missing"] == 2 and r["examples_val"] == 0
    with Merge(tmp_path / "s5.h5") as m:
        s = m.summary()
        assert s["partial"] and [x["dataset"] for x in s["missing"]] == ["tdhp_test", "mupots"]
        assert "not built" in s["missing"][0]["reason"]
    # huge8: everything posebank does not implement yet is listed as such
    r = build_merge("huge8", params.merge("huge8"), small5_caches, tmp_path / "h8.h5", allow_missing=True)
    with Merge(tmp_path / "h8.h5") as m:
        reasons = {x["dataset"]: x["reason"] for x in m.missing}
    from posebank import datasets

    assert all((why == "not implemented in posebank yet") == (d not in datasets.names()) for d, why in reasons.items())
    assert missing_reason("notadataset", small5_caches) == "not implemented in posebank yet"
    assert "not built" in reasons["tdhp_full"]
    assert "not built" in reasons["panoptic"] and "not built" in reasons["aist"] and "not built" in reasons["sailvos"]
    assert r["sources"] == 5 and r["missing"] == 25


# ------------------------------------------------------------------------------------------ plausibility
TOY = JointInfo("pelv,lhip,rhip,neck,head", "lhip-pelv-rhip,pelv-neck-head")
POSE = np.array([[0, 0, 0], [-100, 0, 0], [100, 0, 0], [0, -500, 0], [0, -700, 0]], np.float32)  # mm, y down


def toy_cache(path, name, n, split="train", long_head=(), off_box=(), seed=0):
    """``n`` examples of a toy skeleton seen from 3 m; ``long_head`` rows get a 2 m neck-head bone, ``off_box`` rows a
    box away from the person."""
    rng = np.random.default_rng(seed)
    with CacheWriter(path, name, TOY) as w:
        for i in range(n):
            pose = POSE + rng.normal(0, 5, POSE.shape).astype(np.float32)
            if i in long_head:
                pose[4] = pose[3] + [0, -2000, 0]
            cam = Camera([[500, 0, 100], [0, 500, 100], [0, 0, 1]], np.eye(3), [0, -350, -3000])
            uv = cam.world_to_image(pose)
            x0, y0 = uv.min(0) - 5
            x1, y1 = uv.max(0) + 5
            box = [x0, y0, x1 - x0, y1 - y0] if i not in off_box else [0, 0, 3, 3]
            w.add(Example(world_coords=pose, camera=cam, bbox=np.array(box, np.float32), split=split,
                          image=encode_jpeg(np.zeros((200, 200, 3), np.uint8)), image_size=(200, 200),
                          frame_index=i))
    return path


def test_plausibility_filter_drops_posepiles_implausible_training_poses(tmp_path):
    caches = tmp_path / "caches"
    caches.mkdir()
    toy_cache(caches / "toya.h5", "toya", 40, long_head={3, 7}, off_box={5})
    toy_cache(caches / "toyb.h5", "toyb", 30, long_head={1}, seed=1)  # single-file caches are sources too
    toy_cache(caches / "exempt.h5", "exempt", 10, long_head={0})
    toy_cache(caches / "valset.h5", "valset", 10, split="test", long_head={0})
    spec = merge_params("toy", {"filter": "plausibility", "plausibility": {"exempt": ["exempt"]}, "sources": [
        {"dataset": "toya", "suffix": "", "splits": {"train": "train"}},
        {"dataset": "toyb", "suffix": "", "splits": {"train": "train"}},
        {"dataset": "exempt", "suffix": "ex", "splits": {"train": "train"}},
        {"dataset": "valset", "suffix": "", "splits": {"test": "val"}}]})
    r = build_merge("toy", spec, caches, tmp_path / "toy.h5")
    with Merge(tmp_path / "toy.h5") as m:
        per = {s["dataset"]: s for s in m.sources}
        assert per["toya"]["dropped"] == {plausibility.IMPLAUSIBLE_BONE: 2, plausibility.FEW_JOINTS_IN_BOX: 1}
        assert per["toya"]["examples_per_split"]["train"] == 37
        assert per["toyb"]["dropped"] == {plausibility.IMPLAUSIBLE_BONE: 1}
        assert per["exempt"]["dropped"] == {} and per["exempt"]["examples_per_split"]["train"] == 10
        assert per["valset"]["examples_per_split"]["val"] == 10  # posepile filters the training split only
        dropped_rows = set(range(40)) - set(m.local(0, "row", slice(None)).tolist())
        assert dropped_rows == {3, 5, 7}
        # the mean bone lengths: over the training examples of both sources sharing the names (before dropping)
        f = json.loads(m.attrs["filter"])
        names = m.joint_info.names
        e = [tuple(sorted((names[a], names[b]))) for a, b in m.joint_info.edges].index(("head", "neck"))
        assert f["mean_bone_mm"][e] == pytest.approx((67 * 200 + 3 * 2000) / 70, abs=2)
        assert sorted((q["path"], q["count"]) for q in m.quarantine) == [("toya", 1), ("toya", 2), ("toyb", 1)]
    assert r["dropped"] == 4


def test_bone_means_ignore_missing_joints():
    means = plausibility.BoneMeans(2)
    coords = np.array([[[0, 0, 0], [3, 4, 0], [np.nan, 0, 0]], [[0, 0, 0], [6, 8, 0], [1, 0, 0]]], np.float32)
    means.add(coords, np.array([[0, 1], [0, 2]]), np.array([0, 1]))
    assert means.mean.tolist() == [7.5, 1.0] and means.count.tolist() == [2, 1]


def test_a_changed_source_cache_is_named_when_reading(small5_caches, params, tmp_path):
    import shutil

    caches = tmp_path / "caches"
    shutil.copytree(small5_caches, caches)
    build_merge("small5", params.merge("small5"), caches, tmp_path / "s5.h5")
    index = json.loads((caches / "mupots" / "index.json").read_text())
    index["quarantine"].append({"path": "x", "reason": "edited"})
    (caches / "mupots" / "index.json").write_text(json.dumps(index))
    with Merge(tmp_path / "s5.h5") as m:
        with pytest.raises(CacheFormatError, match="rebuild the merge"):
            m.blob("image", len(m) - 1)
        assert m.blob("image", 0)  # the unchanged sources still read


def test_cli_merge_and_info(small5_caches, tmp_path):
    from conftest import REPO

    out = tmp_path / "s5.h5"
    cmd = [sys.executable, "-m", "posebank.cli"]
    r = subprocess.run([*cmd, "merge", "small5", "--params", str(REPO / "params.yaml"), "--cache-dir",
                        str(small5_caches), "--out", str(out)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "merge small5:" in r.stderr and out.is_file()
    r = subprocess.run([*cmd, "info", str(out)], capture_output=True, text=True)
    assert r.returncode == 0 and "merge        small5" in r.stdout and "mupots" in r.stdout
    assert "77 in the union skeleton" in r.stdout
    r = subprocess.run([*cmd, "merge", "small5", "--params", str(REPO / "params.yaml"), "--cache-dir",
                        str(tmp_path / "none"), "--out", str(out)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "error: merge small5:" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([*cmd, "merge", "nosuch"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "no merge named 'nosuch'" in r.stderr and "--params" in r.stderr


def test_medium3_and_huge8_build_whole_from_the_fixtures(builds, params, tmp_path):
    """Every source of medium3 (its 14 training sources and the two validation ones) and of huge8 (its 28 training
    sources and the same two validation ones) converts from its fixture, so ``posebank merge medium3`` and
    ``posebank merge huge8`` build without --allow-missing; each source contributes examples of its split."""
    from conftest import REPO
    from posebank import datasets

    assert datasets.PLANNED == ()
    caches = tmp_path / "caches"
    caches.mkdir()
    for merge, n_sources in (("medium3", 16), ("huge8", 30)):
        spec = params.merge(merge)
        wanted = {s.dataset for s in spec.sources}
        assert len(wanted) == n_sources and not spec.allow_missing
        assert wanted <= set(datasets.names())
        for name in wanted:
            if not (caches / name).exists():
                (caches / name).symlink_to(builds.converted(name).cache)
        out = tmp_path / f"{merge}.h5"
        r = subprocess.run([sys.executable, "-m", "posebank.cli", "merge", merge, "--params",
                            str(REPO / "params.yaml"), "--cache-dir", str(caches), "--out", str(out)],
                           capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        with Merge(out) as m:
            s = m.summary()
            assert not s["partial"] and not m.missing
            per_source = {x["dataset"]: x["examples_per_split"] for x in s["sources"]}
            assert set(per_source) == wanted
            # every training source contributes training examples, the two validation sources validation ones
            for name, kept in per_source.items():
                split = "val" if name in ("tdhp_test", "mupots") else "train"
                assert kept.get(split, 0) > 0, (merge, name, kept)
            if merge == "huge8":
                maps = {src["dataset"]: m.joint_maps[k] for k, src in enumerate(m.sources)}
                infos = {src["dataset"]: m.source_joint_infos[k] for k, src in enumerate(m.sources)}
                union = list(m.joint_info.names)
    # identical names across sources are one union joint: the h36m names of h36m_alljoints, fit3d, chi3d and
    # humansc3d (suffix h36m) and the SMPL names of surreal, agora, behave and spec (suffix '')
    assert len(set(union)) == len(union) > 400
    for a, b in (("h36m_alljoints", "fit3d"), ("h36m_alljoints", "chi3d"), ("fit3d", "humansc3d"),
                 ("surreal", "behave"), ("surreal", "spec"), ("agora", "spec")):
        shared = set(infos[a].names) & set(infos[b].names)
        assert len(shared) >= 17, (a, b, shared)
        for n in shared:
            assert maps[a][infos[a].names.index(n)] == maps[b][infos[b].names.index(n)], (a, b, n)
    assert {union.index("lwri_h36m"), union.index("htop_h36m")} <= set(maps["fit3d"]) & set(maps["chi3d"])
    assert union.index("pelv") in set(maps["spec"]) & set(maps["behave"]) & set(maps["surreal"])


def test_validation_runs_on_a_merge(small5, params, tmp_path):
    from conftest import REPO
    from posebank.validation.validate import validate

    s = validate(small5, "small5", params.validate, tmp_path / "r.json", gx_root=REPO / "expectations")
    assert s["success"] and s["examples"] == len(Merge(small5))
    # each source's run is checked against its own joint count: one result per count
    n_joints = [r for r in s["results"] if r["column"] == "n_joints"]
    assert len(n_joints) == 4 and sum(r["element_count"] for r in n_joints) == len(Merge(small5))


def test_read_ahead_keeps_order_raises_reader_errors_and_stops_cleanly():
    import threading

    from posebank.merging.blocks import read_ahead as _read_ahead

    assert list(_read_ahead(iter(range(100)), 2)) == list(range(100))

    def failing():
        yield 1
        raise OSError("shard 7 unreadable")

    got = []
    with pytest.raises(OSError, match="shard 7"):
        for x in _read_ahead(failing(), 2):
            got.append(x)
    assert got == [1]

    closed = []

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(threading.current_thread().name)

    it = _read_ahead(endless(), 2)
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    it.close()  # the consumer stops early: the reader is stopped, its source closed, the thread joined
    assert closed == ["merge-read-ahead"]
    assert not any(t.name == "merge-read-ahead" for t in threading.enumerate())
