"""The mmhuman3d HumanData export, loaded and checked with mmhuman3d's own code (issue 12 point 2).

mmhuman3d (0.11.0, the last release on the package registry) is needed for these tests only. Its package
``__init__`` imports ``mmcv`` and asserts 1.3.17 <= mmcv < 1.6.1, and the two modules used here
(``mmhuman3d/data/data_structures/human_data.py`` and ``mmhuman3d/core/conventions/keypoints_mapping``) import
``torch`` (already a posebank dependency) and ``mmcv.utils.print_log``; nothing else (the intermediate package
``__init__`` files of 0.11.0 are empty). The lightest install of the REAL modules is therefore::

    pip install --no-deps mmhuman3d==0.11.0
    PIP_CONSTRAINT=<file holding "setuptools<70"> pip install --no-deps mmcv==1.6.0   # sdist, pure Python (no ops);
                                                      # its setup.py needs pkg_resources, gone from new setuptools
    pip install addict==2.4.0 yapf==0.43.0            # what ``import mmcv.utils`` imports (yapf pulls platformdirs)

(opencv-python, numpy, Pillow, PyYAML and packaging, mmcv's other requirements, are already in the venv). The
tests skip, saying why, only when mmhuman3d cannot be imported.
"""

from __future__ import annotations

import hashlib
import zipfile

import numpy as np
import pytest

from posebank.core.errors import UsageError
from posebank.core.store import Cache
from posebank.exporting import humandata
from posebank.exporting.common import ExportSource, run_export

try:  # the real mmhuman3d modules (see the module docstring for the install lines)
    from mmhuman3d.core.conventions.keypoints_mapping import KEYPOINTS_FACTORY, convert_kps
    from mmhuman3d.data.data_structures.human_data import HumanData
except (ImportError, AssertionError) as e:  # AssertionError: mmhuman3d's own mmcv version check
    pytest.skip(f"mmhuman3d is not importable ({type(e).__name__}: {e}); install it as the module docstring says",
                allow_module_level=True)


def _export(source, out, options=None):
    return run_export("humandata", humandata.export, source, out, options or {})


@pytest.fixture(scope="module")
def exports(builds, tmp_path_factory):
    """name -> (cache path, export folder, manifest) for the three fixture caches."""
    root = tmp_path_factory.mktemp("humandata")
    out = {}
    for name in ("tdpw", "h36m", "coco"):
        cache = builds.converted(name).cache
        out[name] = (cache, root / name, _export(cache, root / name))
    return out


@pytest.fixture(scope="module")
def small5_export(small5, tmp_path_factory):
    folder = tmp_path_factory.mktemp("humandata_small5") / "small5"
    return small5, folder, _export(small5, folder)


def _load(folder, manifest) -> HumanData:
    """HumanData.fromfile (HumanData's own load), checked key by key through a strict instance's __setitem__."""
    path = folder / manifest["summary"]["file"]
    hd = HumanData.fromfile(str(path))
    assert set(hd.keys()) <= set(HumanData.SUPPORTED_KEYS), set(hd.keys()) - set(HumanData.SUPPORTED_KEYS)
    if hd.check_keypoints_compressed():
        hd.decompress_keypoints()
    strict = HumanData.new(key_strict=True)
    order = sorted(hd.keys(), key=lambda k: (not k.endswith("_mask"), k))  # masks before their keypoints
    for key in order:
        strict[key] = hd[key]  # type, shape and temporal-length checks; KeyError for an unsupported key
    assert strict.data_len == hd.data_len == len(hd["image_path"])
    return hd


def _camera_metres(ex) -> np.ndarray:
    """The cache's joints in the crop camera frame, metres (NaN where missing)."""
    return ex.camera.world_to_camera(np.asarray(ex.world_coords, np.float64)) / 1000.0


# ------------------------------------------------------------------------------------------ the conventions
def test_conventions_are_mmhuman3ds():
    assert list(humandata.HUMAN_DATA) == KEYPOINTS_FACTORY["human_data"]
    assert [humandata.SMPL[n] for n in humandata._POSEPILE_SMPL] == KEYPOINTS_FACTORY["smpl"]
    from posebank.datasets.agora import SMPLX_NAMES

    assert [humandata.tables()["bedlam"][n] for n in SMPLX_NAMES] == KEYPOINTS_FACTORY["smplx"][:127]
    # every table names human_data joints, and no two joints of one dataset share a slot (but agora's SMPL and
    # SMPL-X joints, which stand for the same body joints)
    for dataset, table in humandata.tables().items():
        assert set(table.values()) <= set(KEYPOINTS_FACTORY["human_data"]), dataset
    from posebank import datasets

    for dataset in datasets.names():
        names = datasets.get(dataset).JOINT_INFO.names
        slots = [humandata.tables()[dataset][n] for n in names if n in humandata.tables()[dataset]]
        if dataset != "agora":
            assert len(slots) == len(set(slots)), dataset


def _release_pairs(dataset: str, convention: str) -> list[tuple[int, int]]:
    """(posebank joint, column of mmhuman3d's ``convention``) pairs, derived independently of humandata's tables:
    from the raw joint numbers posebank and mmhuman3d's converters both select."""
    from posebank import datasets

    if dataset in ("h36m",):
        from posebank.datasets.h36m import SELECTED_JOINTS

        # mmhuman3d data_converters/h36m.py h36m_idx (release joints; 11 = 0 and 24 = 13 are duplicates)
        mm = [0 if r == 11 else 13 if r == 24 else r for r in (11, 6, 7, 8, 1, 2, 3, 12, 24, 14, 15, 17, 18, 19, 25,
                                                                26, 27)]
        return [(SELECTED_JOINTS.index(r), c) for c, r in enumerate(mm)]
    if dataset in ("muco_3dhp", "tdhp_full"):  # mmhuman3d's mpi_inf_3dhp is the release's 28 joints in order
        from posebank.datasets.tdhp.common import FULL_SELECTED_JOINTS

        return [(j, r) for j, r in enumerate(FULL_SELECTED_JOINTS)]
    if dataset in ("tdpw", "surreal"):  # mmhuman3d's smpl is SMPL's joint order
        from posebank.datasets.tdpw import SELECTED_JOINTS

        return [(j, r) for j, r in enumerate(SELECTED_JOINTS)]
    if dataset == "coco":
        assert convention == "coco"
        return [(j, j) for j in range(datasets.get("coco").JOINT_INFO.n_joints)]
    raise AssertionError(dataset)


def _check_keypoints(hd, rows, pairs_of, convention_of, tol_m=1e-6):
    """Every row's keypoints, converted by mmhuman3d's convert_kps to the dataset's convention, equal the cache's
    joints (3D: camera frame, metres; 2D: crop pixels); absent joints are zero with confidence 0."""
    by_conv = {}
    for i, (dataset, _ex) in enumerate(rows):
        by_conv.setdefault(convention_of(dataset), []).append(i)
    for conv, idx in by_conv.items():
        for key, dim in (("keypoints3d", 4), ("keypoints2d", 3)):
            if key not in hd:
                continue
            kps, mask = convert_kps(hd[key][idx], "human_data", conv, mask=hd[f"{key}_mask"])
            assert kps.shape == (len(idx), len(KEYPOINTS_FACTORY[conv]), dim)
            for row, i in enumerate(idx):
                dataset, ex = rows[i]
                want = _camera_metres(ex) if dim == 4 else (
                    np.full((len(ex.world_coords), 2), np.nan) if ex.keypoints2d is None else ex.keypoints2d)
                for j, c in pairs_of(dataset, conv):
                    got = kps[row, c]
                    if np.isfinite(want[j]).all() and (dim == 3 or ex.has_extrinsics):
                        assert mask[c] == 1
                        assert got[-1] == 1
                        np.testing.assert_allclose(got[:-1], want[j], atol=tol_m if dim == 4 else 1e-3)
                    else:
                        assert np.all(got == 0), (key, dataset, j, got)


# ------------------------------------------------------------------------------------------ caches
def test_tdpw_smpl_and_joints(exports):
    cache_path, folder, manifest = exports["tdpw"]
    hd = _load(folder, manifest)
    with Cache(cache_path) as cache:
        rows = [("tdpw", cache[int(r)]) for r in hd["meta"]["source_row"]]
        assert len(rows) == len(cache)
    _check_keypoints(hd, rows, _release_pairs, lambda d: "smpl")
    smpl = hd["smpl"]
    assert smpl["body_pose"].shape == (len(rows), 23, 3) and smpl["betas"].shape == (len(rows), 10)
    for i, (_, ex) in enumerate(rows):
        fit = ex.body_model
        orient, trans = ex.body_model_cam
        np.testing.assert_array_equal(smpl["global_orient"][i], orient)
        np.testing.assert_array_equal(smpl["body_pose"][i].reshape(-1), fit.pose[3:72])
        np.testing.assert_array_equal(smpl["betas"][i], np.pad(fit.betas, (0, 16))[:10])
        np.testing.assert_array_equal(smpl["transl"][i], trans)
        assert hd["meta"]["gender"][i] == {"male": "m", "female": "f", "neutral": "n"}[fit.gender]
        assert hd["meta"]["has_smpl"][i] == 1
    assert "smplx" not in hd and hd["config"] == "pw3d"
    # SPIN's 24 joints (smpl_24) share mmhuman3d names with SMPL's only for the limbs: those equal, the rest zero
    kps, mask = convert_kps(hd["keypoints3d"], "human_data", "smpl_24", mask=hd["keypoints3d_mask"])
    smpl_names = KEYPOINTS_FACTORY["smpl"]
    from posebank.datasets.tdpw import SELECTED_JOINTS

    for c, name in enumerate(KEYPOINTS_FACTORY["smpl_24"]):
        if name in smpl_names:
            j = SELECTED_JOINTS.index(smpl_names.index(name))
            want = np.stack([_camera_metres(ex)[j] for _, ex in rows])
            np.testing.assert_allclose(kps[:, c, :3], want, atol=1e-6)
            assert mask[c] == 1
        else:
            assert mask[c] == 0 and np.all(kps[:, c] == 0)


def test_h36m_joints_boxes_images(exports):
    cache_path, folder, manifest = exports["h36m"]
    hd = _load(folder, manifest)
    with Cache(cache_path) as cache:
        rows = [("h36m", cache[int(r)]) for r in hd["meta"]["source_row"]]
        assert len(rows) == len(cache)
        _check_keypoints(hd, rows, _release_pairs, lambda d: "h36m")
        for i, (_, ex) in enumerate(rows):
            np.testing.assert_array_equal(hd["bbox_xywh"][i], [*np.asarray(ex.bbox, np.float32), 1.0])
            assert (folder / hd["image_path"][i]).read_bytes() == ex.image
            assert hd["meta"]["split"][i] == ex.split
            np.testing.assert_allclose(hd["meta"]["focal_length"][i], np.diag(ex.camera.intrinsic_matrix)[:2],
                                       rtol=1e-6)
    # the 17 joints only: the mask is exactly mmhuman3d's h36m joints
    assert hd["keypoints3d_mask"].sum() == 17
    _, h36m_mask = convert_kps(np.zeros((1, 190, 4)), "human_data", "h36m", mask=hd["keypoints3d_mask"])
    assert h36m_mask.all()
    assert "smpl" not in hd and "smplx" not in hd
    assert not np.any(hd["meta"]["has_smpl"])


def test_coco_2d_only(exports):
    cache_path, folder, manifest = exports["coco"]
    hd = _load(folder, manifest)
    assert "keypoints3d" not in hd and "keypoints3d_mask" not in hd
    assert "keypoints3d" in manifest["summary"]["absent"]
    with Cache(cache_path) as cache:
        rows = [("coco", cache[int(r)]) for r in hd["meta"]["source_row"]]
    _check_keypoints(hd, rows, _release_pairs, lambda d: "coco")
    # some COCO joints are unlabelled in the fixture: zero with confidence 0
    assert any(np.isnan(ex.keypoints2d).any() for _, ex in rows)


def test_uncompressed_matches_compressed(exports, tmp_path):
    cache_path, folder, manifest = exports["tdpw"]
    m = _export(cache_path, tmp_path / "full", {"compress_keypoints": False})
    raw = np.load(tmp_path / "full" / m["summary"]["file"], allow_pickle=True)
    assert raw["keypoints3d"].shape[1:] == (190, 4) and not raw["__keypoints_compressed__"]
    packed = np.load(folder / manifest["summary"]["file"], allow_pickle=True)
    assert packed["keypoints3d"].shape[1] == 24 and packed["__keypoints_compressed__"]
    a, b = _load(tmp_path / "full", m), _load(folder, manifest)
    for key in ("keypoints2d", "keypoints3d", "keypoints2d_mask", "keypoints3d_mask", "bbox_xywh"):
        np.testing.assert_array_equal(a[key], b[key])
    # masked joints are zero (mmhuman3d's padding)
    assert np.all(raw["keypoints3d"][:, raw["keypoints3d_mask"] == 0] == 0)


def test_pickled_entries_hold_only_arrays_and_builtins(exports):
    cache_path, folder, manifest = exports["tdpw"]
    path = folder / manifest["summary"]["file"]
    with pytest.raises(ValueError):
        np.load(path, allow_pickle=False)["smpl"]
    with np.load(path, allow_pickle=False) as f:  # everything but the dicts loads without pickle
        for key in f.files:
            if key not in ("smpl", "smplx", "meta", "misc"):
                assert f[key].dtype != object, key
    with np.load(path, allow_pickle=True) as f:
        for key in ("smpl", "meta", "misc"):
            d = f[key].item()
            for sub, value in d.items():
                assert isinstance(value, (np.ndarray, str, bool, int, float)), (key, sub, type(value))
                if isinstance(value, np.ndarray):
                    assert value.dtype != object, (key, sub)


def test_deterministic(exports, tmp_path):
    cache_path, folder, manifest = exports["tdpw"]
    again = tmp_path / "again"
    _export(cache_path, again)
    files = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        if rel.name == "posebank-export.json":
            continue  # names the output path
        assert hashlib.sha256((folder / rel).read_bytes()).digest() == \
            hashlib.sha256((again / rel).read_bytes()).digest(), rel
    with zipfile.ZipFile(folder / manifest["summary"]["file"]) as z:
        assert z.namelist()[:3] == ["__key_strict__.npy", "__data_len__.npy", "__keypoints_compressed__.npy"]


def test_split_and_file_options(exports, tmp_path):
    cache_path, _, _ = exports["tdpw"]
    with ExportSource(cache_path) as s:
        counts = s.split_counts()
    split = next(k for k, v in counts.items() if v)
    m = _export(cache_path, tmp_path / "s", {"split": split})
    assert m["summary"]["file"] == f"tdpw_{split}.npz"
    hd = _load(tmp_path / "s", m)
    assert hd.data_len == counts[split] and set(hd["meta"]["split"]) == {split}
    m = _export(cache_path, tmp_path / "f", {"file": "pw3d_train.npz"})
    assert (tmp_path / "f" / "pw3d_train.npz").is_file()


def test_has_smpl_key_is_not_strict(exports, tmp_path):
    cache_path, _, _ = exports["tdpw"]
    m = _export(cache_path, tmp_path / "k", {"has_smpl_key": True})
    hd = HumanData.fromfile(str(tmp_path / "k" / m["summary"]["file"]))
    assert np.all(hd["has_smpl"] == 1)
    with pytest.raises(KeyError):
        HumanData.new(key_strict=True)["has_smpl"] = hd["has_smpl"]


@pytest.mark.parametrize("options, word", [
    ({"split": "training"}, "split"), ({"file": "x.json"}, "file"), ({"file": "a/b.npz"}, "file"),
    ({"compress_keypoints": "yes"}, "compress_keypoints"), ({"bogus": 1}, "bogus"), ({"split": 3}, "split")])
def test_bad_options(exports, tmp_path, options, word):
    cache_path, _, _ = exports["coco"]
    with pytest.raises(UsageError, match=word):
        _export(cache_path, tmp_path / "bad", options)
    assert not (tmp_path / "bad").exists()


def test_empty_split_is_an_error(exports, tmp_path):
    cache_path, _, _ = exports["coco"]
    with ExportSource(cache_path) as s:
        empty = [k for k, v in s.split_counts().items() if not v]
    if not empty:
        pytest.skip("every split of the coco fixture has examples")
    with pytest.raises(UsageError, match="no examples"):
        _export(cache_path, tmp_path / "empty", {"split": empty[0]})


# ------------------------------------------------------------------------------------------ a merge
def test_small5_merge(small5_export):
    path, folder, manifest = small5_export
    hd = _load(folder, manifest)
    summary = manifest["summary"]
    with ExportSource(path) as source:
        items = list(source.items())
        caches = {d: source.reader.source_cache(k) for k, d in enumerate(source.datasets())}
        assert hd.data_len == len(items) == len(source)
        rows = []
        for i, item in enumerate(items):
            assert hd["meta"]["dataset"][i] == item.dataset and hd["meta"]["source_row"][i] == item.source_row
            ex = caches[item.dataset][item.source_row]  # the source cache's own example, not the union's
            rows.append((item.dataset, ex))
            np.testing.assert_array_equal(hd["bbox_xywh"][i, :4], np.asarray(ex.bbox, np.float32))
            assert (folder / hd["image_path"][i]).read_bytes() == ex.image
    # h36m_alljoints' joints beyond the 17 have no mmhuman3d name: listed, not guessed
    assert set(summary["unmapped_joints"]) == {"h36m_alljoints"}
    assert set(summary["unmapped_joints"]["h36m_alljoints"]) == {"rfoo", "rtoe", "lfoo", "ltoe", "lthu", "lfin",
                                                                  "rthu", "rfin"}

    from posebank.datasets.h36m import SELECTED_JOINTS as H36M_17
    from posebank.datasets.h36m.alljoints import ALL_JOINTS

    def pairs(dataset, conv):
        if dataset == "h36m_alljoints":  # the 17 joints, found by release number among the 25
            return [(ALL_JOINTS.index(H36M_17[j]), c) for j, c in _release_pairs("h36m", conv)]
        if dataset in ("tdhp_test", "mupots"):  # 17 of the release's 28 (posepile's selection)
            from posebank.datasets.tdhp.common import SELECTED_JOINTS

            return [(j, r) for j, r in enumerate(SELECTED_JOINTS)]
        return _release_pairs(dataset, conv)

    conv = {"surreal": "smpl", "h36m_alljoints": "h36m", "muco_3dhp": "mpi_inf_3dhp", "tdhp_test": "mpi_inf_3dhp",
            "mupots": "mpi_inf_3dhp"}
    _check_keypoints(hd, rows, pairs, conv.get)
    assert set(hd["meta"]["dataset"]) == set(conv)


def test_bedlam_smplx(builds, tmp_path):
    cache_path = builds.converted("bedlam").cache
    m = _export(cache_path, tmp_path / "bedlam")
    hd = _load(tmp_path / "bedlam", m)
    assert "smpl" not in hd and "smplx" in hd
    smplx = hd["smplx"]
    n = hd.data_len
    shapes = {"global_orient": (3,), "body_pose": (21, 3), "jaw_pose": (3,), "leye_pose": (3,), "reye_pose": (3,),
              "left_hand_pose": (15, 3), "right_hand_pose": (15, 3), "betas": (10,), "transl": (3,),
              "expression": (10,)}
    assert {k: v.shape for k, v in smplx.items()} == {k: (n, *s) for k, s in shapes.items()}
    truncated = unknown = 0
    with Cache(cache_path) as cache:
        for i, r in enumerate(hd["meta"]["source_row"]):
            ex = cache[int(r)]
            fit = ex.body_model
            orient, trans = ex.body_model_cam
            assert fit.model == "smplx" and hd["meta"]["has_smplx"][i] == 1
            np.testing.assert_array_equal(smplx["global_orient"][i], orient)
            np.testing.assert_array_equal(
                np.concatenate([smplx[k][i].reshape(-1) for k in ("body_pose", "jaw_pose", "leye_pose", "reye_pose",
                                                                   "left_hand_pose", "right_hand_pose")]),
                fit.pose[3:])
            np.testing.assert_array_equal(smplx["betas"][i], fit.betas[:10])
            truncated += bool(np.any(fit.betas[10:] != 0))
            if np.isfinite(trans).all():
                np.testing.assert_array_equal(smplx["transl"][i], trans)
                assert hd["meta"]["has_transl"][i] == 1
            else:
                unknown += 1
                assert hd["meta"]["has_transl"][i] == 0 and np.all(smplx["transl"][i] == 0)
            kps, mask = convert_kps(hd["keypoints2d"][i:i + 1], "human_data", "smplx", mask=hd["keypoints2d_mask"])
            want = ex.keypoints2d
            ok = np.isfinite(want).all(axis=1)
            np.testing.assert_allclose(kps[0, :55][ok, :2], want[ok], atol=1e-3)
            assert np.all(kps[0, :55][~ok] == 0)
    counts = m["summary"]["counts"]
    assert counts["betas_truncated"] == truncated and counts["transl_unknown"] == unknown
