"""The SPIN / ReFit npz export and ReFit's configs: what ReFit's BaseDataset reads, equal to the cache's values."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
import yaml

from posebank.core.errors import UsageError
from posebank.exporting import refit_config, spin
from posebank.exporting.common import ExportSource, run_export

DATASETS = ["tdpw", "coco", "mpii", "h36m", "tdhp", "agora", "bedlam"]
F8 = np.dtype("float64")


def _options(cache) -> dict:
    """The ReFit file of the cache's dataset with a split the fixture has, else the first split present."""
    with ExportSource(cache) as src:
        counts, name = src.split_counts(), src.name
    for file, (ds, split, _) in spin.REFIT_FILES.items():
        if ds == name and counts.get(split):
            return {"file": file}
    split = next(s for s, c in counts.items() if c)
    return {"split": split, "file": f"{name}_{split}.npz"}


@pytest.fixture(scope="module")
def exported(builds, tmp_path_factory):
    done = {}

    def get(name, **extra):
        key = (name, tuple(sorted(extra.items())))
        if key not in done:
            cache = builds.converted(name).cache
            opts = {**_options(cache), **extra}
            out = tmp_path_factory.mktemp(f"spin_{name}") / "export"
            m = run_export("spin", spin.export, cache, out, opts)
            done[key] = (cache, out, m)
        return done[key]

    return get


def _load(out, m):
    with np.load(out / m["summary"]["file"], allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("name", DATASETS)
def test_keys_shapes_dtypes(exported, name):
    cache, out, m = exported(name)
    d = _load(out, m)
    n = m["summary"]["examples"]
    assert n == len(d["imgname"]) > 0
    assert d["imgname"].dtype.kind == "U"
    shapes = {"center": (n, 2), "scale": (n,), "part": (n, 24, 3), "openpose": (n, 25, 3), "S": (n, 24, 4),
              "pose": (n, 72), "shape": (n, 10), "has_smpl": (n,), "img_focal": (n,), "img_center": (n, 2),
              "cam_R": (n, 3, 3), "cam_t": (n, 3), "trans": (n, 3)}
    for k, shape in shapes.items():
        if k in d:
            assert d[k].shape == shape and d[k].dtype == F8, k
    for k in ("imgname", "center", "scale", "part", "openpose", "img_focal", "img_center"):
        assert k in d
    assert ("cam_R" in d) == ("cam_t" in d) == ("trans" in d)  # BaseDataset reads the three together
    if "gender" in d:
        assert set(d["gender"].tolist()) <= {"m", "f", "n"}
    assert not np.any(d["openpose"])
    assert set(m["summary"]["keys"]) == set(d)
    # what BaseDataset does with them
    keypoints = np.concatenate([d["openpose"], d["part"]], axis=1)
    assert keypoints.shape == (n, 49, 3)
    for name_ in d["imgname"].astype(np.bytes_):
        assert (out / "images" / str(name_, encoding="utf-8")).is_file()
    if name in ("coco", "mpii"):
        assert "S" not in d and "cam_R" not in d  # 2D-only: no 3D, no extrinsics
    if name in ("tdpw", "h36m", "tdhp", "agora"):
        assert "S" in d and "cam_R" in d
    if name == "bedlam":  # the fixture has no SMPL-X model folder: no 3D joints, SMPL-X fits only
        assert "S" not in d and "cam_R" in d and "pose" not in d
        assert m["summary"]["counts"]["smplx_not_exported"] == n


@pytest.mark.parametrize("name", DATASETS)
def test_values_equal_cache(exported, name):
    cache, out, m = exported(name)
    d = _load(out, m)
    split = m["summary"]["split"]
    with ExportSource(cache) as src:
        idx, slots, _ = spin.spin_slots(src.name, src.joint_info.names)
        items = list(src.items(split))
    assert len(items) == len(d["imgname"])
    assert len(slots) >= 12
    n_smpl = 0
    for i, item in enumerate(items):
        ex = item.example
        x, y, w, h = ex.bbox.astype(np.float64)
        np.testing.assert_allclose(d["center"][i], [x + w / 2, y + h / 2], atol=1e-9)
        assert d["scale"][i] == pytest.approx(1.2 * max(w, h) / 200)
        # image bytes
        assert (out / "images" / d["imgname"][i]).read_bytes() == ex.image
        # 2D: keypoints2d where present, else the projection; unmapped slots confidence 0
        cam = ex.camera
        kp = ex.keypoints2d
        unmapped = np.setdiff1d(np.arange(24), slots)
        assert not np.any(d["part"][i, unmapped])
        for j, s in zip(idx, slots):
            if kp is not None and np.isfinite(kp[j]).all():
                np.testing.assert_allclose(d["part"][i, s, :2], kp[j], atol=1e-3)
                assert d["part"][i, s, 2] == 1
            elif ex.has_extrinsics and np.isfinite(ex.world_coords[j]).all():
                np.testing.assert_allclose(d["part"][i, s, :2], cam.project(ex.world_coords[j]), atol=1e-3)
            else:
                assert d["part"][i, s, 2] == 0
        # 3D: camera frame, metres, root-centred on Pelvis (MPII)
        wc = ex.world_coords[idx].astype(np.float64)
        ok = np.isfinite(wc).all(axis=1)
        if "S" in d:
            root = list(slots).index(spin.ROOT_SLOT)
            if ok[root] and ex.has_extrinsics:
                c = cam.world_to_camera(wc) / 1000
                want = c[ok] - c[root]
                np.testing.assert_allclose(d["S"][i, slots[ok], :3], want, atol=1e-6)
                assert np.all(d["S"][i, slots[ok], 3] == 1) and not np.any(d["S"][i, slots[~ok]])
                assert not np.any(d["S"][i, unmapped])
        # camera
        K = cam.intrinsic_matrix
        assert d["img_focal"][i] == pytest.approx((K[0, 0] + K[1, 1]) / 2)
        np.testing.assert_allclose(d["img_center"][i], K[:2, 2])
        if "cam_R" in d:
            np.testing.assert_allclose(d["cam_R"][i], cam.R)
            p = wc[ok][0] if ok.any() else np.array([100.0, -200.0, 3000.0])
            np.testing.assert_allclose(d["cam_R"][i] @ p + d["cam_t"][i], cam.world_to_camera(p), atol=1e-6)
        # SMPL
        fit = ex.body_model
        if fit is not None and fit.model == "smpl":
            n_smpl += 1
            assert d["has_smpl"][i] == 1
            np.testing.assert_allclose(d["pose"][i, 3:], fit.pose[3:], atol=1e-12)
            np.testing.assert_allclose(d["pose"][i, :3], ex.body_model_cam[0], atol=1e-6)
            np.testing.assert_allclose(d["shape"][i, :min(10, fit.betas.size)], fit.betas[:10])
            np.testing.assert_allclose(d["trans"][i], fit.trans)
            assert d["gender"][i] == {"male": "m", "female": "f"}.get(fit.gender, "n")
        elif "has_smpl" in d:
            assert d["has_smpl"][i] == 0 and not np.any(d["pose"][i])
    if name == "tdpw":
        assert n_smpl == len(items)  # 3DPW: SMPL for everyone, gendered
        assert "gender" in d


def test_tdpw_global_orient_is_the_camera_frame(exported):
    """The exported global orientation rotates the world-frame one by the crop camera's R (SPIN's pw3d.py)."""
    from posebank.core.bodymodel import axis_angle, rodrigues

    cache, out, m = exported("tdpw")
    d = _load(out, m)
    with ExportSource(cache) as src:
        for i, item in enumerate(src.items(m["summary"]["split"])):
            fit, R = item.example.body_model, item.example.camera.R
            np.testing.assert_allclose(rodrigues(d["pose"][i, :3]), R @ rodrigues(fit.pose[:3]), atol=1e-6)
            np.testing.assert_allclose(d["pose"][i, :3], axis_angle(R @ rodrigues(fit.pose[:3])), atol=1e-5)


def test_joint_slots_follow_spin_preprocessing():
    h36m = dict(zip(*[a.tolist() for a in spin.spin_slots("h36m", (
        "rhip,rkne,rank,lhip,lkne,lank,tors,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri,pelv").split(","))[:2]]))
    # SPIN h36m.py global_idx [14,3,4,5,2,1,0,16,12,17,18,9,10,11,8,7,6] for pelvis..rwri
    assert sorted(h36m.values()) == sorted([14, 3, 4, 5, 2, 1, 0, 16, 12, 17, 18, 9, 10, 11, 8, 7, 6])
    assert h36m[16] == 14 and h36m[6] == 16 and h36m[7] == 12 and h36m[8] == 17 and h36m[9] == 18
    mpii = dict(zip(*[a.tolist() for a in spin.spin_slots("mpii", (
        "rank,rkne,rhip,lhip,lkne,lank,pelv,thor,neck,head,rwri,relb,rsho,lsho,lelb,lwri").split(","))[:2]]))
    assert [mpii[i] for i in range(16)] == [0, 1, 2, 3, 4, 5, 14, 15, 12, 13, 6, 7, 8, 9, 10, 11]  # SPIN mpii.py
    coco = dict(zip(*[a.tolist() for a in spin.spin_slots("coco", (
        "nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank").split(","))[:2]]))
    assert [coco[i] for i in range(17)] == [19, 20, 21, 22, 23, 9, 8, 10, 7, 11, 6, 3, 2, 4, 1, 5, 0]  # coco.py


def test_cropped_layout(exported):
    cache, out, m = exported("tdpw", cropped=True, split="test", file="3dpw_test.npz")
    plain = _load(*exported("tdpw")[1:]) if _options(cache).get("file") == "3dpw_test.npz" else None
    d = _load(out, m)
    assert "orig_shape" in d and d["orig_shape"].shape == (len(d["imgname"]), 2)
    with ExportSource(cache) as src:
        items = list(src.items("test"))
    for i, item in enumerate(items):
        ex = item.example
        name = d["imgname"][i]
        assert name.startswith("imageCrops/") and name.endswith(f"_{i}.jpg")
        assert d["orig_shape"][i].tolist() == [ex.image_size[1], ex.image_size[0]]
        import cv2

        crop = cv2.imread(str(out / "images" / name))
        assert crop.shape == (256, 256, 3)
        want = spin.refit_crop(ex.decode_image(), d["center"][i], d["scale"][i], 256)
        assert np.abs(crop.astype(int) - want.astype(int)).mean() < 3  # JPEG re-encoding only
    if plain is not None:  # center/scale/part stay in the stored crop's pixels
        for k in ("center", "scale", "part", "pose"):
            np.testing.assert_array_equal(d[k], plain[k])


def test_refit_crop_corners_match_imutils():
    """Corner arithmetic of ReFit's imutils.crop: a box filling a 256 crop is cut [0, 255) (its int truncation)."""
    ul, br = spin.refit_crop_box([127.5, 127.5], 1.28, 256)
    assert ul.tolist() == [0, 0] and br.tolist() == [255, 255]
    ul, br = spin.refit_crop_box([50.0, 60.0], 1.0, 200)
    assert ul.tolist() == [-50, -40] and br.tolist() == [150, 160]


def test_deterministic(exported, builds, tmp_path):
    cache, out, m = exported("tdpw")
    again = tmp_path / "again"
    run_export("spin", spin.export, cache, again, _options(cache))
    f = m["summary"]["file"]
    assert (out / f).read_bytes() == (again / f).read_bytes()
    a = sorted(p.relative_to(out) for p in (out / "images").rglob("*") if p.is_file())
    b = sorted(p.relative_to(again) for p in (again / "images").rglob("*") if p.is_file())
    assert a == b and all((out / p).read_bytes() == (again / p).read_bytes() for p in a)


@pytest.mark.parametrize("options, where", [
    ({"bogus": 1}, "option 'bogus'"), ({"file": "../x.npz"}, "option file"), ({"file": "x.txt"}, "option file"),
    ({"split": "nope"}, "option split"), ({"cropped": "yes", "split": "test"}, "option cropped"),
    ({"crop_size": 3, "split": "test"}, "option crop_size"), ({"split": "val"}, "option split"),
    ({}, "option split"),  # 3dpw has a train and a test file: which one
])
def test_bad_options(builds, tmp_path, options, where):
    cache = builds.converted("tdpw").cache
    with ExportSource(cache) as src:
        if options.get("split") == "val" and src.split_counts().get("val"):
            pytest.skip("the fixture has val examples")
        if not options and (not src.split_counts().get("train") or not src.split_counts().get("test")):
            pytest.skip("the fixture lacks one of the splits")
    with pytest.raises(UsageError) as e:
        run_export("spin", spin.export, cache, tmp_path / "x", options)
    assert str(e.value).startswith(where)
    assert not (tmp_path / "x").exists()


def test_refit_config(exported, tmp_path):
    exports = {}
    for name in ("tdpw", "coco", "mpii", "h36m", "tdhp", "agora", "bedlam"):
        cache, out, m = exported(name)
        file = m["summary"]["file"]
        if file in spin.REFIT_FILES:
            exports[file] = out
    assert "coco_2014_eft.npz" in exports and "bedlam_train.npz" in exports
    cfg = tmp_path / "refit"
    summary = refit_config.write_refit_config(exports, cfg)
    keys = {k for k, f in refit_config.KEY_FILES.items() if f in exports}
    for file, (datasets, _) in refit_config.CONFIGS.items():
        y = yaml.safe_load((cfg / file).read_text())
        assert y["DATASET"]["LIST"] == datasets
        assert len(y["DATASET"]["PARTITION"]) == len(datasets) and sum(y["DATASET"]["PARTITION"]) == pytest.approx(1)
        missing = [d for d in datasets if d not in keys]
        assert summary["configs"][file]["missing"] == missing
        if missing:
            assert "NOT EXPORTED" in (cfg / file).read_text().splitlines()[1]
    assert yaml.safe_load((cfg / "config.yaml").read_text())["DATASET"]["PARTITION"] == [0.25, 0.05, 0.1, 0.4, 0.2]
    dc = runpy.run_path(str(cfg / "data_config.py"))
    for is_train in (0, 1):
        for key, path in dc["DATASET_FILES"][is_train].items():
            if key in keys:
                with np.load(path, allow_pickle=False) as z:
                    names = z["imgname"]
                root = dc["DATASET_FOLDERS"][key]
                assert root and all((Path(root) / n).is_file() for n in names[:5].tolist())
    assert dc["COCO_ROOT"] == dc["DATASET_FOLDERS"]["coco"] != ""
    with pytest.raises(UsageError):
        refit_config.write_refit_config({"nonsense": tmp_path}, tmp_path / "bad")
    with pytest.raises(UsageError):
        refit_config.write_refit_config({"coco": exports["bedlam_train.npz"]}, tmp_path / "bad")


def test_merge_source(small5, tmp_path):
    """A merge: each example's joints placed in SPIN's slots through its source's names in the union skeleton."""
    m = run_export("spin", spin.export, small5, tmp_path / "m", {"split": "train", "file": "small5_train.npz"})
    d = _load(tmp_path / "m", m)
    with ExportSource(small5) as src:
        maps = spin._slot_maps(src)
        items = list(src.items("train"))
    assert len(items) == len(d["imgname"]) > 0
    assert set(m["summary"]["joint_slots"]) == set(maps)
    for item in items[:: max(1, len(items) // 40)]:
        k = items.index(item)
        idx, slots, _ = maps[item.dataset]
        ex = item.example
        assert (tmp_path / "m" / "images" / d["imgname"][k]).read_bytes() == ex.image
        wc = ex.world_coords[idx].astype(np.float64)
        ok = np.isfinite(wc).all(axis=1)
        root = list(slots).index(spin.ROOT_SLOT)
        if ok[root]:
            c = ex.camera.world_to_camera(wc) / 1000
            np.testing.assert_allclose(d["S"][k, slots[ok], :3], c[ok] - c[root], atol=1e-6)


def test_tdpw_test_sub(builds, params, tmp_path):
    """ReFit's 3dpw_test_sub.npz from posebank's subset cache: the cropped layout by default, 256 x 256 crops."""
    import dataclasses

    import cv2

    from posebank.pipeline.subset import build_subset

    p = dataclasses.replace(params.subset("tdpw_test_sub"), size=5)
    sub = tmp_path / "tdpw_test_sub"
    build_subset("tdpw_test_sub", p, builds.converted("tdpw").cache, sub)
    m = run_export("spin", spin.export, sub, tmp_path / "out", {"file": "3dpw_test_sub.npz"})
    assert m["summary"]["cropped"] and m["summary"]["split"] == "test" and m["summary"]["examples"] == 5
    d = _load(tmp_path / "out", m)
    assert d["orig_shape"].tolist() == [[256, 256]] * 5
    for i, name in enumerate(d["imgname"].tolist()):
        assert name.startswith("imageCrops/") and name.endswith(f"_{i}.jpg")
        assert cv2.imread(str(tmp_path / "out" / "images" / name)).shape == (256, 256, 3)
    np.testing.assert_allclose(d["scale"], 256 / 200, rtol=1e-5)  # the subset's crop is 1.2 x the box
