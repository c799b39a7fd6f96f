"""subset@tdpw_test_sub: ReFit's 3DPW fast-validation subset (scripts/subsample_3dpw.py) from the 3DPW cache."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from posebank import datasets
from posebank.core.settings import SubsetParams
from posebank.core.store import SPLITS, Cache
from posebank.pipeline.run import convert
from posebank.pipeline.subset import build_subset, subset_rows

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tdpw_cache(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tdpw")
    raw = datasets.get("tdpw").make_fixture(tmp / "raw", seed=0, n_frames=8)
    convert("tdpw", raw, tmp / "cache" / "tdpw", progress=False, crop_params={"target_box_px": 96})
    return tmp / "cache" / "tdpw"


def test_rows_are_refits_seeded_permutation_sorted():
    codes = np.array([0, 2, 2, 1, 2, 2, 2, 0, 2], np.uint8)
    test_rows = np.flatnonzero(codes == SPLITS.index("test"))
    np.random.seed(0)  # ReFit: np.random.seed(0); idx = np.random.permutation(len(data))[:3000]; sorted
    expected = test_rows[np.sort(np.random.permutation(len(test_rows))[:4])]
    np.testing.assert_array_equal(subset_rows(codes, "test", 4, 0), expected)
    # fewer examples than the size: all of them, in order
    np.testing.assert_array_equal(subset_rows(codes, "test", 3000, 0), test_rows)


def test_subset_has_min_size_n_examples_the_same_ones_every_run(tdpw_cache, tmp_path):
    with Cache(tdpw_cache) as c:
        n_test = int(np.count_nonzero(c.column("split") == SPLITS.index("test")))
    assert n_test > 5
    p = SubsetParams(size=5)
    a = build_subset("tdpw_test_sub", p, tdpw_cache, tmp_path / "a")
    b = build_subset("tdpw_test_sub", p, tdpw_cache, tmp_path / "b")
    assert a["examples"] == b["examples"] == 5
    assert (tmp_path / "a" / "shard-00000.h5").read_bytes() == (tmp_path / "b" / "shard-00000.h5").read_bytes()
    whole = build_subset("tdpw_test_sub", SubsetParams(), tdpw_cache, tmp_path / "all")
    assert whole["examples"] == min(3000, n_test)


def test_subset_crops_are_square_and_keep_the_geometry_exact(tdpw_cache, tmp_path):
    p = SubsetParams(size=6, crop_px=256)
    build_subset("tdpw_test_sub", p, tdpw_cache, tmp_path / "sub")
    with Cache(tdpw_cache) as src, Cache(tmp_path / "sub") as sub:
        rows = json.loads(sub._part(0).attrs["source_row"])  # the shard records each example's source row
        assert len(sub) == 6 and sub.attrs["subset_of"] == "tdpw"
        for k, r in enumerate(rows):
            e, s = sub[k], src[int(r)]
            assert e.split == "test" and e.source_path == s.source_path
            assert e.image_size == (256, 256) and e.decode_image().shape == (256, 256, 3)
            np.testing.assert_array_equal(e.world_coords, s.world_coords)
            # same rotation and centre: the camera-frame body model is unchanged, the 3D joints project where the
            # stored 2D joints are
            np.testing.assert_allclose(e.camera.R, s.camera.R, atol=1e-6)
            np.testing.assert_allclose(e.camera.t, s.camera.t, atol=1e-3)
            np.testing.assert_array_equal(e.body_model.pose, s.body_model.pose)
            np.testing.assert_allclose(e.body_model_cam[0], s.body_model_cam[0])
            err = np.abs(e.camera.project(e.world_coords) - e.keypoints2d).max()
            assert err < 0.05, err
            # the box is centred, its long side 256 / 1.2
            x, y, w, h = e.bbox
            assert max(w, h) == pytest.approx(256 / 1.2, abs=0.01)
            assert x + w / 2 == pytest.approx(127.5, abs=0.01) and y + h / 2 == pytest.approx(127.5, abs=0.01)


def test_subset_validates(tdpw_cache, tmp_path):
    from posebank.validation.validate import validate

    build_subset("tdpw_test_sub", SubsetParams(size=4), tdpw_cache, tmp_path / "sub")
    gx = tmp_path / "expectations"
    shutil.copytree(REPO / "expectations", gx, ignore=shutil.ignore_patterns("uncommitted"))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    s = validate(tmp_path / "sub", "tdpw_test_sub", {"image_sample_size": 10}, tmp_path / "r.json", gx_root=gx)
    assert s["success"] and s["examples"] == 4
