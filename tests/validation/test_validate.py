"""Validation of caches with the committed Great Expectations suites: the real fixture cache passes, and each
kind of corruption fails naming the expectation, the column and the example ids."""

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[2]
PARAMS = {"image_sample_size": 10_000, "chunk_rows": 40}


@pytest.fixture(scope="module")
def gx_root(tmp_path_factory):
    """A copy of the committed GX project, so runs write their results outside the checkout."""
    root = tmp_path_factory.mktemp("gx") / "expectations"
    shutil.copytree(REPO / "expectations", root, ignore=shutil.ignore_patterns("uncommitted"))
    return root


def _copy(src, tmp_path, name="h36m"):
    """A private copy of a cache folder (index.json and shards) that a test may corrupt."""
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def _shards(cache):
    """(shard file, its first global row, its row count) of a folder cache, from its index."""
    index = json.loads((Path(cache) / "index.json").read_text())
    assert index["shards"], index
    return [(Path(cache) / s["file"], s["start"], s["stop"] - s["start"]) for s in index["shards"]]


@contextlib.contextmanager
def _shard_of(cache, row):
    """The shard of a folder cache that holds global row ``row``, open for writing, and the row's number in it."""
    (path, start, _), = [(p, a, n) for p, a, n in _shards(cache) if a <= row < a + n]
    with h5py.File(path, "r+") as f:
        yield f, row - start


def _rewrite(src, dst, modify, joint_info=None):
    """Write a new cache with every example of ``src`` passed through ``modify(i, example)``."""
    from posebank.core.store import Cache, CacheWriter

    with Cache(src) as c, CacheWriter(dst, c.dataset, joint_info or c.joint_info) as w:
        for i in range(len(c)):
            w.add(modify(i, c[i]))
    return dst


def _fails(cache, gx_root, tmp_path, expectation_type, column, ids=None, name="h36m", **params):
    from posebank.validation.validate import ValidationFailed, validate

    report = tmp_path / "report.json"
    with pytest.raises(ValidationFailed) as err:
        validate(cache, name, {**PARAMS, **params}, report, gx_root=gx_root)
    msg = str(err.value)
    assert expectation_type in msg and repr(column) in msg, msg
    failing = json.loads(report.read_text())["failing"]
    hits = [f for f in failing if f["expectation_type"] == expectation_type and f["column"] == column]
    assert hits, failing
    if ids is not None:
        assert set(ids) <= set(hits[0]["failing_example_ids"]), hits[0]
        assert str(ids[0]) in msg
    return failing


def test_fixture_cache_passes(h36m_cache, gx_root, tmp_path, caplog):
    """The fixture passes every expectation, and at INFO only posebank's own lines are logged (GX is quiet)."""
    from posebank.core.settings import ValidateParams
    from posebank.validation.validate import validate

    report = tmp_path / "validation" / "h36m.json"
    docs = tmp_path / "data_docs"
    caplog.set_level(logging.INFO)
    s = validate(h36m_cache, "h36m", ValidateParams.from_dict({**PARAMS, "expected_counts": {"h36m": 72}}), report,
                 data_docs_dir=docs, gx_root=gx_root)
    foreign = [(r.name, r.levelname) for r in caplog.records
               if r.levelno <= logging.INFO and r.name.split(".")[0] != "posebank"]
    assert not foreign, foreign[:10]
    assert any(r.name.startswith("posebank.validation") and "validated rows" in r.getMessage()
               for r in caplog.records)
    assert logging.getLogger("great_expectations").level == logging.NOTSET  # levels are restored afterwards
    assert s["success"] and s["pass_rate"] == 1.0 and not s["failing"]
    assert s["examples"] == 72 and s["chunks"] == 2 and s["images_sampled"] == 72
    assert json.loads(report.read_text())["expectations_passed"] == s["expectations"]
    assert (docs / "index.html").is_file()
    # every column check ran on every example (the conditional ones on the rows they are for: a 3D dataset without
    # body-model fits: every row is 3D, none has a fit, none lacks extrinsics)
    from posebank.validation.suites import build_suites

    rows = {"has_3d==True": 72, "has_body_model==True": 0, "has_extrinsics==False": 0}
    expected = [rows[e.row_condition.pass_through_filter] if getattr(e, "row_condition", None) else 72
                for e in build_suites()["posebank_examples"]]
    ex = [r for r in s["results"] if r["suite"] == "posebank_examples"]
    assert [r["element_count"] for r in ex] == expected


def test_expected_count_mismatch(h36m_cache, gx_root, tmp_path):
    _fails(h36m_cache, gx_root, tmp_path, "expect_column_pair_values_to_be_equal",
           "n_examples,expected_n_examples", expected_counts={"h36m": 1000})


def test_wrong_joint_count(h36m_cache, gx_root, tmp_path):
    from posebank.core.skeleton import JointInfo
    from posebank.core.store import Cache

    with Cache(h36m_cache) as c:
        ji = JointInfo(list(c.joint_info.names[:16]))

    def drop_joint(i, ex):
        ex.world_coords = ex.world_coords[:16]
        ex.visibility = ex.visibility[:16]
        ex.keypoints2d = ex.keypoints2d[:16]
        return ex

    bad = _rewrite(h36m_cache, tmp_path / "h36m.h5", drop_joint, joint_info=ji)
    failing = _fails(bad, gx_root, tmp_path, "expect_column_values_to_be_between", "n_joints", ids=[0, 1])
    assert any(f["column"] == "n_joints_file,n_joints_registered" for f in failing)


def test_nan_camera(h36m_cache, gx_root, tmp_path):
    bad = _copy(h36m_cache, tmp_path)
    with _shard_of(bad, 7) as (f, j):
        f["camera/t"][j] = np.nan
    failing = _fails(bad, gx_root, tmp_path, "expect_column_values_to_be_in_set", "camera_finite", ids=[7])
    assert any(f["column"] == "t_finite" for f in failing)


def _resharded(src, dst, cuts):
    """A folder cache with the rows of ``src`` cut into shards at the global rows ``cuts``, and its index."""
    from posebank.core.store import Cache, CacheWriter, write_index

    dst.mkdir()
    with Cache(src) as c:
        bounds = [0, *cuts, len(c)]
        files = []
        for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
            files.append(dst / f"part{k}.h5")
            with CacheWriter(files[-1], c.dataset, c.joint_info, {"shard": f"part{k}"}) as w:
                for ex in c.examples(a, b):
                    w.add(ex)
        write_index(dst, c.dataset, c.joint_info, files, dict(c.index["attrs"]), c.quarantine)
    return dst


def test_failing_ids_are_global_rows_across_shards(h36m_cache, gx_root, tmp_path):
    """In a cache of several shards the failing example ids are the cache's row numbers, not a shard's."""
    from posebank.validation.validate import validate

    folder = _resharded(h36m_cache, tmp_path / "three", [25, 50])
    assert [(a, n) for _, a, n in _shards(folder)] == [(0, 25), (25, 25), (50, 22)]
    s = validate(folder, "h36m", {**PARAMS, "expected_counts": {"h36m": 72}}, tmp_path / "ok.json", gx_root=gx_root)
    assert s["success"] and s["examples"] == 72 and s["images_sampled"] == 72
    with _shard_of(folder, 57) as (f, j):
        assert j == 7
        f["camera/t"][j] = np.nan
    failing = _fails(folder, gx_root, tmp_path, "expect_column_values_to_be_in_set", "camera_finite", ids=[57])
    hit = next(f for f in failing if f["column"] == "camera_finite")
    assert hit["failing_example_ids"] == [57]


def test_negative_focal_length(h36m_cache, gx_root, tmp_path):
    bad = _copy(h36m_cache, tmp_path)
    with _shard_of(bad, 11) as (f, j):
        k = f["camera/intrinsic_matrix"][j]
        k[0, 0] = -abs(k[0, 0])
        f["camera/intrinsic_matrix"][j] = k
    _fails(bad, gx_root, tmp_path, "expect_column_values_to_be_between", "fx", ids=[11])


def test_non_orthonormal_rotation(h36m_cache, gx_root, tmp_path):
    bad = _copy(h36m_cache, tmp_path)
    with _shard_of(bad, 3) as (f, j):
        f["camera/R"][j] = f["camera/R"][j] * 1.05
    _fails(bad, gx_root, tmp_path, "expect_column_values_to_be_between", "rot_orth_err", ids=[3])


def test_principal_point_outside_the_box(h36m_cache, gx_root, tmp_path):
    bad = _copy(h36m_cache, tmp_path)
    with _shard_of(bad, 40) as (f, j):
        k = f["camera/intrinsic_matrix"][j]
        k[0, 2] = f["bbox"][j][0] + f["bbox"][j][2] + 10.0
        f["camera/intrinsic_matrix"][j] = k
    _fails(bad, gx_root, tmp_path, "expect_column_values_to_be_between", "principal_x_in_box", ids=[40])


def test_box_outside_the_crop(h36m_cache, gx_root, tmp_path):
    bad = _copy(h36m_cache, tmp_path)
    with _shard_of(bad, 7) as (f, j):
        b = f["bbox"][j]
        b[0] = f["image_size"][j][0] - 0.05 * b[2]  # 95 % of the box right of the crop
        f["bbox"][j] = b
        k = f["camera/intrinsic_matrix"][j]
        k[0, 2] = b[0] + b[2] / 2  # keep the principal point in the box
        f["camera/intrinsic_matrix"][j] = k
    _fails(bad, gx_root, tmp_path, "expect_column_values_to_be_between", "bbox_visible_frac", ids=[7])


def test_empty_mask(h36m_cache, gx_root, tmp_path):
    from posebank.core.masks import encode

    def with_mask(i, ex):
        w, h = ex.image_size
        m = np.zeros((h, w), bool)
        if i != 5:  # example 5 gets a mask without any person pixel
            x, y, bw, bh = np.round(ex.bbox).astype(int)
            m[max(y, 0):y + bh, max(x, 0):x + bw] = True
        ex.mask = encode(m)
        return ex

    bad = _rewrite(h36m_cache, tmp_path / "h36m.h5", with_mask)
    failing = _fails(bad, gx_root, tmp_path, "expect_column_values_to_be_between", "mask_area_frac", ids=[5])
    assert [f["column"] for f in failing] == ["mask_area_frac"]


def test_undecodable_image(h36m_cache, gx_root, tmp_path):
    bad = _copy(h36m_cache, tmp_path)
    with _shard_of(bad, 20) as (f, j):
        a, b = f["image/offsets"][j:j + 2]
        f["image/data"][a:b] = np.zeros(b - a, np.uint8)
    failing = _fails(bad, gx_root, tmp_path, "expect_column_values_to_be_in_set", "image_decodes", ids=[20])
    assert {f["suite"] for f in failing} == {"posebank_images"}


def test_unregistered_name_uses_own_skeleton(h36m_cache, gx_root, tmp_path):
    """A merged (unregistered) dataset is checked against its own joint_info; only its count check applies."""
    from posebank.validation.validate import validate

    s = validate(h36m_cache, "merged_demo", PARAMS, tmp_path / "m.json", gx_root=gx_root)
    assert s["success"] and s["parameters"]["n_joints_expected"] == 17


def test_verbose_keeps_gx_logs(h36m_cache, gx_root, tmp_path, caplog):
    """With the posebank logger at DEBUG (``posebank -v``) GX's own log lines are let through."""
    from posebank.validation.validate import validate

    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="posebank")
    validate(h36m_cache, "h36m", PARAMS, tmp_path / "v.json", gx_root=gx_root)
    assert any(r.name.startswith("great_expectations") for r in caplog.records)


def test_empty_expected_split(h36m_cache, gx_root, tmp_path):
    """A split the dataset's params asked for (the cache's expected_splits) without any example fails, named."""
    from posebank.core.store import Cache, CacheWriter
    from posebank.validation.validate import ValidationFailed, validate

    attrs = {"expected_splits": ["train", "test"]}
    with Cache(h36m_cache) as c, CacheWriter(tmp_path / "train_only.h5", c.dataset, c.joint_info, attrs) as w:
        for i in range(len(c)):
            if c[i].split == "train":
                w.add(c[i])
    with pytest.raises(ValidationFailed, match=r"'min_expected_split_count'.* without examples: test;") as err:
        validate(tmp_path / "train_only.h5", "h36m", PARAMS, tmp_path / "report.json", gx_root=gx_root)
    failing = err.value.summary["failing"]
    assert [(f["expectation_type"], f["column"]) for f in failing] == [
        ("expect_column_values_to_be_between", "min_expected_split_count")]
    assert "train 56, test 0" in failing[0]["detail"]
    assert json.loads((tmp_path / "report.json").read_text())["failing"] == failing


def test_root_reprojection_uses_each_rows_distortion_model(h36m_cache, tmp_path):
    """The derived root position follows Camera.project row by row, whatever each row's distortion model."""
    from posebank.core.store import Cache
    from posebank.validation.columns import example_frame, root_joint_index

    mixed = _copy(h36m_cache, tmp_path)
    a = 0.3  # turn the cameras so that the root is off the optical axis, where the models differ
    turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]], np.float32)
    for path, start, n in _shards(mixed):
        with h5py.File(path, "r+") as f:
            assert f["camera/distortion_model"].shape[0] == n
            f["camera/distortion_coeffs"][:] = np.array([-0.2, 0.24, 0.01, -0.01, -0.002], np.float32)
            f["camera/distortion_model"][:] = np.arange(start, start + n) % 2  # opencv and h36m rows alternate
            f["camera/R"][:] = turn @ f["camera/R"][()]
    with Cache(mixed) as c:
        root = root_joint_index(c.joint_info.names)
        df = example_frame(c, 0, len(c), root)
        differ = 0
        for i in range(len(c)):
            cam, ex = c.camera(i), c[i]
            p = ex.world_coords[root].astype(np.float64)
            uv = cam.project(p)
            w, h = ex.image_size
            np.testing.assert_allclose([df.root_x_frac[i], df.root_y_frac[i]], (uv + 0.5) / [w, h], rtol=1e-9)
            other = cam.copy()
            other.distortion_model = "h36m" if cam.distortion_model == "opencv" else "opencv"
            differ += np.abs(other.project(p) - uv).max() > 1e-3  # the models tell apart here
        assert differ == len(c)
