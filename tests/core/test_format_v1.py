"""A cache written by format version 1 (tests/data/v1/, before 2D keypoints and body-model fits) still opens, reads
as an example without those, validates, and can be a merge source."""

import json
import os
import shutil
from pathlib import Path

import numpy as np

from posebank.core.store import FORMAT_VERSION, V2_COLUMNS, Cache

REPO = Path(__file__).resolve().parents[2]
V1 = REPO / "tests" / "data" / "v1" / "surreal"


def test_a_version_1_cache_opens_and_reads_without_the_version_2_data():
    assert FORMAT_VERSION == 2
    index = json.loads((V1 / "index.json").read_text())
    assert index["cache_format_version"] == 1
    with Cache(V1) as c:
        assert c.attrs["format_version"] == 1 and len(c) == 13
        ex = c[3]
        assert ex.keypoints2d is None and ex.body_model is None and ex.has_extrinsics
        assert np.isfinite(ex.world_coords).all()
        for name, (dtype, trailing, _) in V2_COLUMNS(c.joint_info.n_joints).items():
            col = c.column(name, slice(2, 9))
            assert col.shape == (7, *trailing) and col.dtype == np.dtype(dtype), name
        assert np.isnan(c.column("keypoints2d")).all() and (c.column("camera/has_extrinsics") == 1).all()
        assert (c.column("body_model/has", np.array([0, 5, 12])) == 0).all()
        # rows read one by one, by index arrays and as blocks agree
        block = c.read(0, len(c))
        assert block["keypoints2d"].shape == (13, 24, 2)


def test_a_version_1_cache_validates(tmp_path):
    from posebank.validation.validate import validate

    gx = tmp_path / "expectations"
    shutil.copytree(REPO / "expectations", gx, ignore=shutil.ignore_patterns("uncommitted"))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    summary = validate(V1, "surreal", {"image_sample_size": 100, "chunk_rows": 40}, tmp_path / "surreal.json",
                       gx_root=gx)
    assert summary["success"] is True, summary
    report = json.loads((tmp_path / "surreal.json").read_text())
    assert report["examples"] == 13
