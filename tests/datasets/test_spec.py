"""SPEC-SYN: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_no_output, copy_raw
from marks import isolated, mark_centroid
from posebank.core.errors import ParamsError
from posebank.core.smpl_model import SmplJoints
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, spec
from posebank.datasets.spec import fixture
from posebank.pipeline.run import convert
from posebank.vision.detect import select_boxes

IDS = spec.JOINT_INFO.ids
# (split, row) of the fixture's people in instance order; train row 4 is the far person under 100 px
KEPT = [("train", 0), ("train", 1), ("train", 2), ("train", 3), ("test", 0), ("test", 1)]


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return spec.make_fixture(tmp_path_factory.mktemp("spec_raw"), seed=3)


@pytest.fixture(scope="module")
def cache(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spec_cache") / "spec"
    convert("spec", raw, out, None, progress=False)
    return out


def annotations(raw, split) -> dict:
    with np.load(raw / f"annotations/{split}.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def truth(raw) -> dict:
    return json.loads((raw / "truth.json").read_text())


def write_npz(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


# ------------------------------------------------------------------------------------------- fixture
def test_fixture_has_the_release_layout(raw):
    for split, n in (("train", 5), ("test", 2)):
        a = annotations(raw, split)
        shapes = {"pose": (n, 72), "shape": (n, 10), "openpose_gt": (n, 25, 3), "openpose": (n, 25, 3),
                  "S": (n, 24, 4), "cam_rotmat": (n, 3, 3), "cam_int": (n, 3, 3), "center": (n, 2),
                  "scale": (n,), "imgname": (n,)}
        assert {k: a[k].shape for k in shapes} == shapes
        assert a["imgname"].dtype.kind == "U"
        for name in a["imgname"]:
            assert (raw / name).is_file() and name.endswith(".png")
        # cam_rotmat is a rotation, one per image
        for r in a["cam_rotmat"]:
            np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert (raw / "body_models/smpl/SMPL_NEUTRAL.npz").is_file()


def test_selection_splits_and_drops(raw):
    dropped = []
    inst = spec.instances(raw, None, dropped)
    names = {s: annotations(raw, s)["imgname"] for s in ("train", "test")}
    assert [(x.split, x.source) for x in inst] == [(s, names[s][i]) for s, i in KEPT]
    assert [x.person_index for x in inst] == [0, 1, 0, 0, 0, 0]
    assert [x.frame_index for x in inst] == [3, 3, 7, 12, 1, 2]  # the number ending the image name
    assert [(d.where, d.reason) for d in dropped] == [
        ("annotations/train.npz#4", "box of the projected joints x 1.15 has a side under 100 px")]
    assert spec.splits() == ("train", "test") and spec.splits({"splits": ["test", "train"]}) == ("train", "test")
    assert [x.split for x in spec.instances(raw, {"splits": ["test"]})] == ["test", "test"]
    assert len(spec.instances(raw, {"min_box_px": 0.0})) == 7  # the far person too


# ------------------------------------------------------------------------------------------- placement
def test_pnp_places_the_smpl_joints_onto_openpose_gt(raw):
    t = truth(raw)
    for x, (split, row) in zip(spec.instances(raw), KEPT):
        a = annotations(raw, split)
        cam = x.camera
        # the camera: R = cam_rotmat, K = cam_int, optical centre at the origin, up -y
        np.testing.assert_array_equal(cam.R, a["cam_rotmat"][row])
        np.testing.assert_array_equal(cam.intrinsic_matrix, a["cam_int"][row])
        np.testing.assert_array_equal(cam.t, np.zeros(3))
        np.testing.assert_array_equal(cam.world_up, [0, -1, 0])
        assert not cam.has_distortion
        # the 14 joints shared with OpenPose project onto openpose_gt
        uv = cam.project(x.world_coords)
        err = np.linalg.norm(uv[spec.I_3D] - a["openpose_gt"][row][spec.I_2D, :2], axis=1)
        assert err.max() <= 1.0, err.max()
        assert err.max() < 0.01  # the fixture is exactly consistent: PnP finds the placement
        # and in 3D the person the fixture placed (its camera-frame mm), whatever its size factor
        np.testing.assert_allclose(cam.world_to_camera(x.world_coords), t[f"{split}/{row}"]["camera_mm"], atol=0.05)


def test_scale_is_the_spread_ratio_and_bones_are_mm(raw):
    t = truth(raw)
    smpl = SmplJoints(raw / fixture.BODY_MODELS)
    lsp12, posepile_all, none = (spec.instances(raw, {"scale_joints": s}) for s in ("lsp12", "all", "none"))
    for x, y, z, (split, row) in zip(lsp12, posepile_all, none, KEPT):
        a = annotations(raw, split)
        rest = smpl.joints(a["pose"][row][None], a["shape"][row][None], np.zeros((1, 3)))[0] * 1000
        size = t[f"{split}/{row}"]["size"]
        for hip, knee in (("lhip", "lkne"), ("rhip", "rkne")):
            thigh = np.linalg.norm(rest[IDS[hip]] - rest[IDS[knee]])  # the neutral model's, mm
            assert 300 < thigh < 500
            got = np.linalg.norm(x.world_coords[IDS[hip]] - x.world_coords[IDS[knee]])
            assert abs(got - size * thigh) < 0.05  # mm: the size S carries
            assert abs(np.linalg.norm(z.world_coords[IDS[hip]] - z.world_coords[IDS[knee]]) - thigh) < 0.05
        # posepile's main.py: the spread of every row of S over that of the 12 SMPL limb joints
        s_mm = a["S"][row][:, :3] * 1000
        ratio = spec.get_scale(s_mm) / spec.get_scale(rest[spec.S_SELECTOR])
        np.testing.assert_allclose(y.world_coords, z.world_coords * ratio, rtol=1e-5, atol=0.01)
        # all three project alike (scaled about the optical centre)
        for other in (y, z):
            np.testing.assert_allclose(other.camera.project(other.world_coords), x.camera.project(x.world_coords),
                                       atol=1e-3)


def test_up_is_minus_y_in_the_world(raw):
    for x in spec.instances(raw):
        wc = x.world_coords.astype(np.float64)
        up = np.array([0.0, -1.0, 0.0])
        assert (wc[IDS["head"]] - (wc[IDS["lank"]] + wc[IDS["rank"]]) / 2) @ up > 1000
        assert (wc[IDS["neck"]] - wc[IDS["pelv"]]) @ up > 300


def test_get_scale_is_posepiles():
    rng = np.random.default_rng(0)
    p = rng.normal(0, 1, (5, 12, 3))
    want = [np.sqrt(np.mean(np.sum((q - q.mean(0)) ** 2, axis=1)) / 3) for q in p]
    np.testing.assert_allclose(spec.get_scale(p), want)


def test_calibrate_extrinsics_recovers_a_known_pose():
    rng = np.random.default_rng(1)
    import cv2

    points = rng.uniform(-800, 800, (14, 3))
    rot = cv2.Rodrigues(np.array([0.3, -0.5, 0.2]))[0]
    trans = np.array([100.0, -50.0, 5000.0])
    k = np.array([[900.0, 0, 480], [0, 900, 270], [0, 0, 1]])
    cam = points @ rot.T + trans
    uv = cam[:, :2] / cam[:, 2:] * 900 + [480, 270]
    r, t = spec.calibrate_extrinsics(uv, points, k)
    np.testing.assert_allclose(r, rot, atol=1e-5)
    np.testing.assert_allclose(t, trans, atol=0.5)


# ------------------------------------------------------------------------------------------- the cache
def test_projection_units_and_up_in_the_cache(raw, cache):
    raw_inst = {(x.source, x.person_index): (x, key) for x, key in zip(spec.instances(raw), KEPT)}
    ann_err, mark_err, thighs = [], [], []
    t = truth(raw)
    with Cache(cache) as c:
        assert c.split_counts() == {"train": 4, "val": 0, "test": 2}
        for i in range(len(c)):
            ex = c[i]
            source = ex.source_path.split("#")[0]
            matches = [v for (s, _), v in raw_inst.items() if s == source]
            wc = np.asarray(ex.world_coords, np.float64)
            # the instance of this source whose joints these are
            x, (split, row) = min(matches, key=lambda v: np.abs(v[0].world_coords - wc).max())
            np.testing.assert_allclose(wc, x.world_coords, atol=0.01)
            uv = annotations(raw, split)["openpose_gt"][row][spec.I_2D, :2]
            depth = x.camera.world_to_camera(wc)[spec.I_3D, 2]
            carried = ex.camera.project(x.camera.image_to_world(uv, depth))
            ann_err.extend(np.linalg.norm(ex.camera.project(wc)[spec.I_3D] - carried, axis=1))
            crop = ex.decode_image()
            in_crop = ex.camera.project(wc)
            for p in in_crop[isolated(in_crop, 12)]:
                centroid = mark_centroid(crop, p, 4)
                if centroid is not None:
                    mark_err.append(np.linalg.norm(centroid - p))
            thighs.append(np.linalg.norm(wc[IDS["lhip"]] - wc[IDS["lkne"]]) / t[f"{split}/{row}"]["size"])
            up = np.asarray(ex.camera.world_up) / np.linalg.norm(ex.camera.world_up)
            assert (wc[IDS["head"]] - (wc[IDS["lank"]] + wc[IDS["rank"]]) / 2) @ up > 1000
    assert len(ann_err) == 6 * 14 and max(ann_err) < 1.0, max(ann_err)
    assert len(mark_err) > 6 * 8 and max(mark_err) < 1.5, max(mark_err)
    assert all(300 < th < 500 for th in thighs)  # the neutral model's thigh in mm


def test_huge8_takes_its_train_split(cache, params, tmp_path):
    from posebank.merging.build import build_merge
    from posebank.merging.reader import Merge

    caches = tmp_path / "caches"
    caches.mkdir()
    (caches / "spec").symlink_to(cache)
    sources = params.merge("huge8").sources
    assert [s for s in sources if s.dataset == "spec"][0].suffix == ""
    r = build_merge("huge8", params.merge("huge8"), caches, tmp_path / "huge8.h5", allow_missing=True)
    assert r["sources"] == 1 and r["examples_train"] == 4  # the test split is not in huge8
    with Merge(tmp_path / "huge8.h5") as m:
        assert "spec" not in {x["dataset"] for x in m.missing}
        assert set(spec.JOINT_INFO.names) <= set(m.joint_info.names)  # suffix '': the SMPL names as they are


def test_detect_rule_is_posepiles_get_boxes(params):
    dp = params.detect.for_dataset("spec")
    assert (dp.rule, dp.expansion, dp.min_match_iou, dp.max_area_ratio, dp.fallback) == (
        "match", 1.15, 0.3, None, "drop")
    dp = dataclasses.replace(dp, backend="hog")  # as with a detector
    gt = [[100, 100, 200, 400], [600, 100, 200, 400]]
    det = [[110, 110, 200, 400, 0.9], [900, 100, 200, 400, 0.8]]  # the second overlaps nobody
    (box, src), (none, why) = select_boxes(gt, det, dp)
    assert src == "detection" and np.allclose(box, det[0][:4]) and none is None and why == "dropped"


def test_provenance_names_the_model(raw):
    p = spec.provenance(raw)
    assert p["body_model"]["model"] == "smpl" and p["body_model_dir"] == "body_models"
    assert [f["path"] for f in p["body_model_files"]] == ["smpl/SMPL_NEUTRAL.npz"]


# ------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("key", "value"), [("S", np.zeros((5, 14, 4))), ("openpose_gt", np.zeros((5, 25, 2))),
                                            ("cam_int", np.zeros((4, 3, 3))), ("pose", np.zeros((5, 69)))])
def test_a_field_of_the_wrong_shape_is_named(raw, tmp_path, key, value):
    raw = copy_raw(raw, tmp_path)
    path = raw / "annotations/train.npz"
    a = annotations(raw, "train")
    write_npz(path, {**a, key: value})
    out = tmp_path / "out" / "spec"
    with pytest.raises(RawFileError, match=re.escape(f"'{key}' has shape {value.shape}, expected")) as e:
        convert("spec", raw, out, None, progress=False)
    assert e.value.path == path
    assert_no_output(out)


def test_missing_or_pickled_fields_are_named(raw, tmp_path):
    raw = copy_raw(raw, tmp_path)
    path = raw / "annotations/train.npz"
    a = annotations(raw, "train")
    write_npz(path, {k: v for k, v in a.items() if k != "cam_rotmat"})
    with pytest.raises(RawFileError, match="no 'cam_rotmat' array") as e:
        spec.instances(raw)
    assert e.value.path == path
    write_npz(path, {**a, "imgname": np.array(list(a["imgname"]), dtype=object)})
    with pytest.raises(RawFileError, match="'imgname' holds Python objects"):
        spec.instances(raw)
    write_npz(path, {**a, "shape": a["shape"].astype(str)})
    with pytest.raises(RawFileError, match="'shape' is <U"):
        spec.instances(raw)
    write_npz(path, {**a, "imgname": np.array(["../elsewhere.png"] * 5)})
    with pytest.raises(RawFileError, match="not a path relative to the raw folder"):
        spec.instances(raw)


def test_missing_images_annotations_and_model_are_named(raw, tmp_path):
    raw = copy_raw(raw, tmp_path)
    name = annotations(raw, "test")["imgname"][1]
    (raw / name).unlink()
    with pytest.raises(RawLayoutError, match=name):
        spec.instances(raw)
    spec.instances(raw, {"splits": ["train"]})  # the train split is whole
    (raw / "annotations/test.npz").unlink()
    with pytest.raises(RawLayoutError, match="annotations/test.npz"):
        spec.check_layout(raw)
    with pytest.raises(ParamsError, match="SMPL_NEUTRAL.npz") as e:
        spec.instances(raw, {"splits": ["train"], "body_model_dir": str(tmp_path / "nowhere")})
    assert e.value.where == "datasets.spec.body_model_dir"
    with pytest.raises(ParamsError) as e:
        spec.instances(raw, {"splits": ["train"], "body_model_dir": None})
    assert e.value.where == "datasets.spec.body_model_dir"


@pytest.mark.parametrize(("key", "value"), [("scale_joints", "some"), ("splits", ["val"]), ("splits", []),
                                            ("box_expansion", 0.0), ("min_box_px", -1.0)])
def test_bad_params_are_named(tmp_path, key, value):
    with pytest.raises(ParamsError) as e:
        spec.instances(tmp_path, {key: value})
    assert e.value.where == f"datasets.spec.{key}"
