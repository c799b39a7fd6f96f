"""3DOH50K: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import assert_no_output, copy_raw
from marks import isolated, mark_centroid
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, tdoh
from posebank.datasets.tdoh import fixture
from posebank.pipeline.run import convert

IDS = tdoh.JOINT_INFO.ids


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return tdoh.make_fixture(tmp_path_factory.mktemp("tdoh_raw"), seed=5)


@pytest.fixture(scope="module")
def cache(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tdoh_cache") / "tdoh"
    convert("tdoh", raw, out, None, progress=False)
    return out


def annotations(raw, folder) -> dict:
    return json.loads((raw / folder / "annots.json").read_text())


# ------------------------------------------------------------------------------------------- fixture
def test_fixture_has_the_release_layout(raw):
    for folder, ids in (("trainset", ["00000", "00001", "00002", "00003"]), ("testset", ["00000", "00001"])):
        annos = annotations(raw, folder)
        assert sorted(annos) == ids
        assert sorted(p.name for p in (raw / folder / "images").iterdir()) == [f"{i}.jpg" for i in ids]
        for image_id, a in annos.items():
            # the fields and shapes of mmhuman3d's oh50k3d.py converter
            shapes = {"extri": (4, 4), "intri": (3, 3), "bbox": (2, 2), "betas": (1, 10), "pose": (1, 72),
                      "trans": (1, 3), "scale": (1,), "smpl_joints_2d": (24, 2), "smpl_joints_3d": (24, 3),
                      "lsp_joints_2d": (14, 2), "lsp_joints_3d": (14, 3)}
            assert {k: np.shape(a[k]) for k in shapes} == shapes
            assert a["img_path"] == f"images\\{image_id}.jpg"
            assert cv2.imread(str(raw / folder / a["img_path"].replace("\\", "/"))).shape == (480, 640, 3)
    assert sorted(p.name for p in (raw / "trainset/masks").iterdir()) == [f"0000{i}.png" for i in range(4)]
    assert not (raw / "testset/masks").exists()


def test_selection_splits_and_masks(raw):
    dropped = []
    inst = tdoh.instances(raw, None, dropped)
    assert dropped == []
    assert [(x.split, x.source, x.frame_index) for x in inst] == [
        *(("train", f"trainset/images/0000{i}.jpg", i) for i in range(4)),
        *(("test", f"testset/images/0000{i}.jpg", i) for i in range(2))]
    assert [x.mask_source for x in inst] == [f"trainset/masks/0000{i}.png" for i in range(4)] + [None, None]
    assert tdoh.splits() == ("train", "test") and tdoh.splits({"splits": ["test", "train"]}) == ("train", "test")
    assert [x.split for x in tdoh.instances(raw, {"splits": ["test"]})] == ["test", "test"]
    assert {x.mask_source for x in tdoh.instances(raw, {"masks": False})} == {None}


def test_units_cameras_and_boxes_follow_the_annotation(raw):
    for x in tdoh.instances(raw):
        folder, _, name = x.source.split("/")
        a = annotations(raw, folder)[name[:-4]]
        scale = a["scale"][0]
        extri, k = np.array(a["extri"]), np.array(a["intri"])
        cam = x.camera
        np.testing.assert_array_equal(cam.intrinsic_matrix, k)
        assert not cam.has_distortion
        np.testing.assert_array_equal(cam.R, extri[:3, :3])
        # the translation in the annotation's units / scale = metres -> mm, the same factor as the joints
        np.testing.assert_allclose(cam.world_to_camera(np.zeros((1, 3)))[0], extri[:3, 3] * 1000 / scale, atol=1e-6)
        cam_mm = np.array(a["lsp_joints_3d"]) * 1000 / scale
        np.testing.assert_allclose(cam.world_to_camera(x.world_coords), cam_mm, atol=0.05)
        np.testing.assert_allclose(cam.world_up, -extri[1, :3])
        # the raw 3D through intri onto the annotation's 2D
        assert np.abs(cam.project(x.world_coords) - np.array(a["lsp_joints_2d"])).max() < 0.01
        (x1, y1), (x2, y2) = a["bbox"]
        np.testing.assert_array_equal(x.bbox, [x1, y1, x2 - x1, y2 - y1])
        # the world is the calibration's (here z up, metres x scale); the joints of an image taken at another
        # scale than posepile's fixed 7 come out in mm all the same
        np.testing.assert_allclose(x.world_coords, cam.camera_to_world(cam_mm), atol=0.05)
        world_m = fixture.TEMPLATE_M
        assert abs(np.linalg.norm(x.world_coords[IDS["rhip"]] - x.world_coords[IDS["rkne"]])
                   - 1000 * np.linalg.norm(world_m[2] - world_m[1])) < 0.1


def test_projection_units_and_up_in_the_cache(raw, cache):
    raw_cams = {x.source: x.camera for x in tdoh.instances(raw)}
    ann_err, crop_err, thighs, shins = [], [], [], []
    with Cache(cache) as c:
        assert c.split_counts() == {"train": 4, "val": 0, "test": 2}
        for i in range(len(c)):
            ex = c[i]
            source = ex.source_path.split("#")[0]
            folder, _, name = source.split("/")
            uv = np.array(annotations(raw, folder)[name[:-4]]["lsp_joints_2d"])
            wc = np.asarray(ex.world_coords, np.float64)
            raw_cam = raw_cams[source]
            # the annotation's 2D joints carried into the crop (along their rays, at the joints' depths) against
            # the converted joints through the converted (crop) camera
            depth = raw_cam.world_to_camera(wc)[:, 2]
            carried = ex.camera.project(raw_cam.image_to_world(uv, depth))
            in_crop = ex.camera.project(wc)
            ann_err.extend(np.linalg.norm(in_crop - carried, axis=1))
            crop = ex.decode_image()
            for p in in_crop[isolated(in_crop, 12)]:
                centroid = mark_centroid(crop, p, 4)
                if centroid is not None:
                    crop_err.append(np.linalg.norm(centroid - p))
            if folder == "trainset":
                mask = ex.decode_mask()
                assert mask is not None and mask.any()
            thighs += [np.linalg.norm(wc[IDS[h]] - wc[IDS[k]]) for h, k in (("rhip", "rkne"), ("lhip", "lkne"))]
            shins += [np.linalg.norm(wc[IDS[k]] - wc[IDS[a]]) for k, a in (("rkne", "rank"), ("lkne", "lank"))]
            # up: the head top ~1.6 m above the ankles along the camera's up, the neck above the hips
            up = np.asarray(ex.camera.world_up) / np.linalg.norm(ex.camera.world_up)
            height = (wc[IDS["head"]] - (wc[IDS["lank"]] + wc[IDS["rank"]]) / 2) @ up
            assert 1500 < height < 1700, height
            assert (wc[IDS["neck"]] - wc[IDS["rhip"]]) @ up > 400
    assert len(ann_err) == 6 * 14 and max(ann_err) < 1.0, max(ann_err)
    assert len(crop_err) > 6 * 10 and max(crop_err) < 1.5, max(crop_err)
    t = fixture.TEMPLATE_M * 1000
    np.testing.assert_allclose(thighs, np.linalg.norm(t[2] - t[1]), atol=0.1)  # 450 mm, whatever the scale
    np.testing.assert_allclose(shins, np.linalg.norm(t[1] - t[0]), atol=0.1)


def test_huge8_takes_its_train_split(cache, params, tmp_path):
    from posebank.merging.build import build_merge
    from posebank.merging.reader import Merge

    caches = tmp_path / "caches"
    caches.mkdir()
    (caches / "tdoh").symlink_to(cache)
    sources = params.merge("huge8").sources
    assert [s for s in sources if s.dataset == "tdoh"][0].suffix == "3doh"
    r = build_merge("huge8", params.merge("huge8"), caches, tmp_path / "huge8.h5", allow_missing=True)
    assert r["sources"] == 1 and r["examples_train"] == 4  # the test split is not in huge8
    with Merge(tmp_path / "huge8.h5") as m:
        assert "tdoh" not in {x["dataset"] for x in m.missing}
        assert len(m.missing) == len(sources) - 1
        assert [n for n in m.joint_info.names if n.endswith("_3doh")] == [
            f"{n}_3doh" for n in tdoh.JOINT_INFO.names]


# ------------------------------------------------------------------------------------------- errors
def test_missing_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    (broken / "trainset/images/00002.jpg").unlink()
    (broken / "trainset/masks/00001.png").unlink()
    with pytest.raises(RawLayoutError, match="missing trainset/images/00002.jpg, trainset/masks/00001.png$"):
        tdoh.instances(broken)
    assert len(tdoh.instances(broken, {"splits": ["test"]})) == 2
    (broken / "testset/annots.json").unlink()
    with pytest.raises(RawLayoutError, match="missing testset/annots.json$"):
        tdoh.check_layout(broken)
    out = tmp_path / "out" / "tdoh"
    with pytest.raises(RawLayoutError):
        convert("tdoh", broken, out, None, progress=False)
    assert_no_output(out)


def test_bad_annotations_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    path = broken / "trainset/annots.json"
    good = json.loads(path.read_text())
    for change, problem in (
            (lambda a: a.pop("scale"), "annotation '00001': no 'scale'"),
            (lambda a: a.update(lsp_joints_3d=a["lsp_joints_3d"][:13]), "'lsp_joints_3d' has shape \\(13, 3\\)"),
            (lambda a: a.update(extri="x"), "'extri' is not an array of numbers"),
            (lambda a: a.update(bbox=[[5, 5], [5, 9]]), "empty bbox")):
        annos = json.loads(json.dumps(good))
        change(annos["00001"])
        path.write_text(json.dumps(annos))
        with pytest.raises(RawFileError, match=problem) as e:
            tdoh.instances(broken)
        assert e.value.path == path
    path.write_text("[1, 2]")
    with pytest.raises(RawFileError, match="expected an object of image id -> annotation"):
        tdoh.instances(broken)
    # a non-positive scale and joints behind the camera are left out, named
    annos = json.loads(json.dumps(good))
    annos["00001"]["scale"] = [0.0]
    annos["00003"]["lsp_joints_3d"][4][2] = -1.0
    path.write_text(json.dumps(annos))
    dropped = []
    assert [x.frame_index for x in tdoh.instances(broken, {"splits": ["train"]}, dropped)] == [0, 2]
    assert [(d.where, d.reason) for d in dropped] == [("trainset/annots.json#1", tdoh.BAD_SCALE),
                                                      ("trainset/annots.json#3", tdoh.BEHIND)]


def test_bad_params():
    for value in (["val"], [], ["train", "train"]):
        with pytest.raises(ParamsError) as e:
            tdoh.check_params({"splits": value})
        assert e.value.where == "datasets.tdoh.splits"
