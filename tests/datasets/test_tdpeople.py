"""3DPeople: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import sample
from helpers import assert_no_output, copy_raw
from marks import isolated, mark_centroid
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, tdpeople
from posebank.datasets.tdpeople import fixture
from posebank.pipeline.run import convert

IDS = tdpeople.JOINT_INFO.ids


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return tdpeople.make_fixture(tmp_path_factory.mktemp("tdpeople_raw"), seed=3)


@pytest.fixture(scope="module")
def cache(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tdpeople_cache") / "tdpeople"
    convert("tdpeople", raw, out, None, progress=False)
    return out


def order_file() -> list[str]:
    """skeleton_joints_ids_order.txt: "<1-based index>: <name>" per line -> the 67 names by 0-based row."""
    rows = [line.split(":") for line in sample("tdpeople/skeleton_joints_ids_order.txt").read_text().splitlines()]
    assert [int(i) for i, _ in rows] == list(range(1, 68))
    return [name.strip() for _, name in rows]


def notebook_sample() -> np.ndarray:
    """(67, 3) decimetres: the 3D columns of the first skeleton file of woman17/02_04_jump camera01, as plotted by
    ``display_skeleton3d(skeletons, 0, 0)`` in the release's vis_dataset.ipynb."""
    nb = json.loads(sample("tdpeople/vis_dataset.ipynb").read_text())
    cells = [c for c in nb["cells"] if "display_skeleton3d(skeletons, 0, 0)" in "".join(c["source"])]
    (trace,) = [o["data"]["application/vnd.plotly.v1+json"]["data"][0] for o in cells[-1]["outputs"]
                if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert "seq_name = 'woman17/02_04_jump'" in "".join(nb["cells"][2]["source"])
    return np.array([trace["x"], trace["y"], trace["z"]], np.float64).T


# ------------------------------------------------------------------------------------------- real files
def test_real_order_file_labels_of_posepiles_selection():
    names = order_file()
    assert len(names) == tdpeople.N_RAW_JOINTS == 67
    labels = dict(zip(tdpeople.JOINT_INFO.names, (names[i] for i in tdpeople.SELECTED_JOINTS)))
    # where the release's labels and posepile's names agree
    for joint, label in (("pelv", "Hips"), ("spin", "Spine"), ("neck", "Neck"), ("head", "Head"),
                         ("lcla", "LeftShoulder"), ("lsho", "LeftArm"), ("lelb", "LeftForeArm"),
                         ("lwri", "LeftHand"), ("rcla", "RightShoulder"), ("rsho", "RightArm"),
                         ("relb", "RightForeArm"), ("rwri", "RightHand")):
        assert labels[joint] == label
    # where they do not (docs/datasets.md): the file's head and leg labels, and two different fingers as hands
    assert [labels[j] for j in ("reye", "leye", "htop")] == ["HeadTop_End", "RightEye", "LeftEye"]
    assert [labels[j] for j in ("lhip", "lkne", "lank", "lfoo", "ltoe")] == [
        "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase", "RightToe_End"]
    assert labels["lhan"] == "LeftHandMiddle1" and labels["rhan"] == "RightHandPinky1"


def test_real_sample_frame_units_up_and_sides():
    dm = notebook_sample()
    assert dm.shape == (67, 3)
    np.testing.assert_array_equal(dm[0], [6.153219, 0.018943, 10.003007])  # the notebook's numbers
    np.testing.assert_array_equal(dm[66], [5.244875, -1.814133, 0.038985])
    rows = np.concatenate([np.zeros((67, 2)), dm], axis=1)  # a skeleton file's layout: 2D first, 3D last
    mm = tdpeople.world_joints(rows)
    np.testing.assert_allclose(mm, dm[list(tdpeople.SELECTED_JOINTS)] * 100)  # decimetres -> mm
    np.testing.assert_allclose(mm[IDS["pelv"]], [615.3219, 1.8943, 1000.3007])

    def bone(a, b):
        return np.linalg.norm(mm[IDS[a]] - mm[IDS[b]])

    # bone lengths of an adult in mm
    for (a, b), (lo, hi) in zip((("lsho", "lelb"), ("rsho", "relb"), ("lhip", "lkne"), ("rhip", "rkne"),
                                 ("lkne", "lank"), ("rkne", "rank"), ("pelv", "neck")),
                                [(240, 300)] * 2 + [(400, 450)] * 4 + [(450, 500)]):
        assert lo < bone(a, b) < hi, (a, b, bone(a, b))
    # world up is +z: the floor at z = 0, the head top 1.7 m above it and the highest of the head's joints
    up = np.array(tdpeople.WORLD_UP)
    assert abs(mm[IDS["ltoe"]] @ up) < 10 and abs(mm[IDS["rtoe"]] @ up) < 10
    assert 1650 < mm[IDS["htop"]] @ up < 1800
    assert mm[IDS["htop"]] @ up > max(mm[IDS[j]] @ up for j in ("head", "reye", "leye"))
    # sides: the eyes are in front of the head and the toes in front of the ankles (the same direction);
    # every joint posepile calls left is on the person's left, every joint it calls right on the right
    forward = (mm[IDS["reye"]] + mm[IDS["leye"]]) / 2 - mm[IDS["head"]]
    forward[2] = 0
    forward /= np.linalg.norm(forward)
    assert (mm[IDS["ltoe"]] - mm[IDS["lank"]]) @ forward > 100 and (mm[IDS["rtoe"]] - mm[IDS["rank"]]) @ forward > 100
    right = np.cross(forward, up)
    for name in tdpeople.JOINT_INFO.names:
        side = (mm[IDS[name]] - mm[IDS["pelv"]]) @ right
        if name[0] == "l":
            assert side < -20, name
        elif name[0] == "r":
            assert side > 20, name
    # the two hand joints are the same joint of both hands: the first of the finger chains that starts ~4 cm
    # from the wrist (rows 13 and 53), while the file's RightHandMiddle1 (row 37) is 8 cm from the wrist
    assert abs(bone("lhan", "lwri") - bone("rhan", "rwri")) < 5
    assert 35 < bone("lhan", "lwri") < 45
    assert np.linalg.norm(dm[37] - dm[36]) * 100 > 80


# ------------------------------------------------------------------------------------------- fixture
def test_fixture_has_the_release_layout(raw):
    for subject, action, render in fixture.SEQUENCES:
        for cam in tdpeople.CAMERAS:
            rel = f"{subject}/{action}/{cam}"
            assert sorted(p.name for p in (raw / "rgb" / rel).iterdir()) == [render]
            assert sorted(p.name for p in (raw / "rgb" / rel / render).iterdir()) == ["0001.jpg", "0002.jpg",
                                                                                      "0003.jpg"]
            assert sorted(p.name for p in (raw / "skeleton" / rel).iterdir()) == [
                "0000.txt", "0001.txt", "0002.txt", "0003.txt"]
            assert sorted(p.name for p in (raw / "segmentation_clothes" / rel).iterdir()) == [
                "0001.png", "0002.png", "0003.png"]
            rows = (raw / "skeleton" / rel / "0001.txt").read_text().splitlines()
            assert len(rows) == 67 and all(len(r.split()) == 5 for r in rows)
            image = cv2.imread(str(raw / "rgb" / rel / render / "0001.jpg"))
            assert image.shape == (480, 640, 3)
    assert tdpeople.annotation_paths("rgb/woman17/02_04_jump/camera01/wpskin08_x/0007.jpg") == (
        "skeleton/woman17/02_04_jump/camera01/0007.txt", "segmentation_clothes/woman17/02_04_jump/camera01/0007.png")


def test_selection_follows_posepile(raw):
    dropped = []
    inst = tdpeople.instances(raw, None, dropped)
    keys = [(x.subject, x.camera_name, x.frame_index) for x in inst]
    # one sampler over the sorted paths: man03 before woman17; man03 moves 30 mm into its frame 2 (sampled out),
    # and its camera04 segmentation of frame 3 is empty (dropped)
    expected = [("man03", c, f) for c in tdpeople.CAMERAS for f in (1, 3) if (c, f) != ("camera04", 3)]
    expected += [("woman17", c, f) for c in tdpeople.CAMERAS for f in (1, 2, 3)]
    assert keys == expected
    assert [(d.where, d.reason) for d in dropped] == [
        ("segmentation_clothes/man03/07_01_walk/camera04/0003.png#3", tdpeople.EMPTY_MASK)]
    assert [x.source for x in inst] == sorted(x.source for x in inst)
    assert {x.split for x in inst} == {"train"} and {x.activity for x in inst} == {"jump", "walk"}
    assert {x.sequence for x in inst} == {"man03/07_01_walk", "woman17/02_04_jump"}
    # no sampling: every image with a person; one camera; one subject
    assert len(tdpeople.instances(raw, {"adaptive_sampling_mm": 0.0})) == 2 * 4 * 3 - 1
    assert {x.camera_name for x in tdpeople.instances(raw, {"cameras": ["camera02"]})} == {"camera02"}
    assert {x.subject for x in tdpeople.instances(raw, {"subjects": ["woman17"]})} == {"woman17"}


def test_cameras_fit_the_2d_columns_and_boxes_are_the_masks(raw):
    for x in tdpeople.instances(raw):
        skeleton, segmentation = tdpeople.annotation_paths(x.source)
        rows = np.loadtxt(raw / skeleton)
        cam = x.camera
        np.testing.assert_array_equal(cam.intrinsic_matrix, [[700, 0, 320], [0, 700, 240], [0, 0, 1]])
        assert not cam.has_distortion
        np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(cam.R) > 0
        # every one of the 67 joints, not only the 29 kept, projects onto the file's 2D columns
        err = np.linalg.norm(cam.project(rows[:, -3:] * 100) - rows[:, :2], axis=1)
        assert err.max() < 0.01, err.max()
        np.testing.assert_allclose(x.world_coords, rows[list(tdpeople.SELECTED_JOINTS), -3:] * 100, atol=1e-3)
        seg = cv2.imread(str(raw / segmentation))
        mask = np.any(np.abs(seg.astype(int) - 153) > 10, axis=-1)
        ys, xs = np.nonzero(mask)
        np.testing.assert_array_equal(x.bbox, [xs.min() - 0.5, ys.min() - 0.5, np.ptp(xs) + 1, np.ptp(ys) + 1])
        np.testing.assert_array_equal(cam.world_up, [0, 0, 1])


def test_projection_onto_annotations_and_crops(raw, cache):
    raw_cams = {(x.source, x.frame_index): x.camera for x in tdpeople.instances(raw)}
    ann_err, crop_err, bones = [], [], []
    with Cache(cache) as c:
        assert c.split_counts()["train"] == len(raw_cams) == 19
        for i in range(len(c)):
            ex = c[i]
            source, frame = ex.source_path.split("#")
            rows = np.loadtxt(raw / tdpeople.annotation_paths(source)[0])[list(tdpeople.SELECTED_JOINTS)]
            wc = np.asarray(ex.world_coords, np.float64)
            raw_cam = raw_cams[(source, int(frame))]
            # the file's 2D annotations carried into the crop (along their rays, at the joints' depths) against
            # the converted joints through the converted (crop) camera
            depth = raw_cam.world_to_camera(wc)[:, 2]
            carried = ex.camera.project(raw_cam.image_to_world(rows[:, :2], depth))
            in_crop = ex.camera.project(wc)
            ann_err.extend(np.linalg.norm(in_crop - carried, axis=1))
            np.testing.assert_allclose(ex.camera.optical_center, raw_cam.optical_center, atol=1e-3)
            crop = ex.decode_image()
            for p in in_crop[isolated(in_crop, 14)]:
                centroid = mark_centroid(crop, p, 5)
                if centroid is not None:
                    crop_err.append(np.linalg.norm(centroid - p))
            mask = ex.decode_mask()
            assert mask is not None and mask.any()
            bones.append(np.linalg.norm(wc[IDS["lkne"]] - wc[IDS["lank"]]))
            up = np.asarray(ex.camera.world_up)
            assert (wc[IDS["htop"]] - wc[IDS["pelv"]]) @ up > 600  # head top above the pelvis, in mm
    assert len(ann_err) == 19 * 29 and max(ann_err) < 1.0, max(ann_err)
    assert len(crop_err) > 19 * 8 and max(crop_err) < 1.5, max(crop_err)
    template = fixture._TEMPLATE[list(tdpeople.SELECTED_JOINTS)]
    shin = np.linalg.norm(template[IDS["lkne"]] - template[IDS["lank"]])  # the template's left shin, mm
    np.testing.assert_allclose(bones, shin, atol=0.05)


def test_huge8_and_medium3_take_it_as_a_source(cache, params, tmp_path):
    from posebank.merging.build import build_merge
    from posebank.merging.reader import Merge

    caches = tmp_path / "caches"
    caches.mkdir()
    (caches / "tdpeople").symlink_to(cache)
    for name in ("huge8", "medium3"):
        r = build_merge(name, params.merge(name), caches, tmp_path / f"{name}.h5", allow_missing=True)
        assert r["sources"] == 1 and r["examples_train"] == 19  # every fixture pose passes the plausibility filter
        with Merge(tmp_path / f"{name}.h5") as m:
            assert "tdpeople" not in {x["dataset"] for x in m.missing}
            assert len(m.missing) == len(params.merge(name).sources) - 1
            assert [n for n in m.joint_info.names if n.endswith("_3dpeople")] == [
                f"{n}_3dpeople" for n in tdpeople.JOINT_INFO.names]


# ------------------------------------------------------------------------------------------- errors
def test_missing_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    (broken / "skeleton/woman17/02_04_jump/camera02/0002.txt").unlink()
    (broken / "segmentation_clothes/man03/07_01_walk/camera01/0003.png").unlink()
    with pytest.raises(RawLayoutError, match="missing skeleton/woman17/02_04_jump/camera02/0002.txt$"):
        tdpeople.instances(broken)
    (broken / "skeleton/woman17/02_04_jump/camera02/0002.txt").write_bytes(
        (raw / "skeleton/woman17/02_04_jump/camera02/0002.txt").read_bytes())
    with pytest.raises(RawLayoutError, match="missing segmentation_clothes/man03/07_01_walk/camera01/0003.png$"):
        tdpeople.instances(broken)
    import shutil

    shutil.rmtree(broken / "segmentation_clothes/woman17")
    with pytest.raises(RawLayoutError, match="missing segmentation_clothes/woman17/"):
        tdpeople.check_layout(broken)
    with pytest.raises(RawLayoutError, match="missing rgb/nosuch/"):
        tdpeople.check_layout(broken, {"subjects": ["nosuch"]})
    out = tmp_path / "out" / "tdpeople"
    with pytest.raises(RawLayoutError):
        convert("tdpeople", broken, out, None, progress=False)
    assert_no_output(out)


def test_bad_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    skeleton = broken / "skeleton/woman17/02_04_jump/camera03/0001.txt"
    skeleton.write_text(skeleton.read_text().replace("\n", " x\n", 1))
    with pytest.raises(RawFileError, match="unreadable skeleton file") as e:
        tdpeople.instances(broken)
    assert e.value.path == skeleton
    skeleton.write_bytes((raw / skeleton.relative_to(broken)).read_bytes())
    seg = broken / "segmentation_clothes/woman17/02_04_jump/camera03/0002.png"
    seg.write_bytes(seg.read_bytes()[:100])
    with pytest.raises(RawFileError, match="unreadable segmentation image") as e:
        tdpeople.instances(broken)
    assert e.value.path == seg


def test_bad_params():
    for key, value in (("cameras", ["camera05"]), ("cameras", []), ("adaptive_sampling_mm", -1.0),
                       ("mask_background", 300), ("mask_tolerance", -1), ("subjects", ["a/b"])):
        with pytest.raises(ParamsError) as e:
            tdpeople.check_params({key: value})
        assert e.value.where == f"datasets.tdpeople.{key}"
