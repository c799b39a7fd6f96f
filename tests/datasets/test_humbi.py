"""HUMBI (body session): what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import assert_no_output, copy_raw
from marks import isolated, mark_centroid
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, aist, humbi, panoptic
from posebank.datasets.humbi import fixture
from posebank.merging.build import build_merge
from posebank.merging.reader import Merge
from posebank.merging.skeleton import source_joints, union_skeleton
from posebank.pipeline.run import convert

N_IMAGES = len(fixture.SUBJECTS) * fixture.N_FRAMES * len(fixture.IMAGED)  # 12, one of them in ignore_images.txt


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return humbi.make_fixture(tmp_path_factory.mktemp("humbi_raw"), seed=3)


@pytest.fixture(scope="module")
def cache(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("humbi_cache") / "humbi"
    convert("humbi", raw, out, None, progress=False)
    return out


def toolkit_cameras(body_dir: Path) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The toolkit's extractCameraParameters.m, transcribed: {id: (K, R, C)} from the rows after the 3 header lines,
    blocks of 4 (intrinsic: id, K) and 5 (extrinsic: id, C, R) lines."""
    def rows(name):
        return [[float(v) for v in s.split()] for s in (body_dir / name).read_text().splitlines()[3:] if s.strip()]

    intr, extr = rows("intrinsic.txt"), rows("extrinsic.txt")
    k = {int(intr[i][1]): np.array(intr[i + 1:i + 4]) for i in range(0, len(intr), 4)}
    out = {}
    for i in range(0, len(extr), 5):
        cam = int(extr[i][1])
        out[cam] = (k[cam], np.array(extr[i + 2:i + 5]), np.array(extr[i + 1]))
    return out


# ------------------------------------------------------------------------------------------- formats
def test_fixture_has_the_release_layout(raw):
    body = raw / "subject_1/body"
    for name in ("intrinsic.txt", "extrinsic.txt", "project.txt"):
        lines = (body / name).read_text().splitlines()
        assert [s.split(":")[0] for s in lines[:3]] == ["Numcam", "numframes", "numP"]
        assert lines[3] == "0 0" and len(lines) == 3 + len(fixture.CALIBRATED) * {"intrinsic.txt": 4,
                                                                                 "extrinsic.txt": 5,
                                                                                 "project.txt": 4}[name]
    assert sorted(p.name for p in body.iterdir() if p.is_dir()) == ["00000001", "00000002"]
    kps = np.loadtxt(body / "00000001/reconstruction/keypoints.txt")
    assert kps.shape == (25, 3) and 1.3 < np.ptp(kps[:, 1]) < 1.8  # metres, y spans the body height
    assert np.loadtxt(body / "00000001/reconstruction/smpl_parameter.txt").shape == (86,)
    images = sorted(p.name for p in (body / "00000001/image").iterdir())
    assert images == ["image0000000.jpg", "image0000024.jpg", "image0000087.jpg", "image0000105.jpg"]
    img = cv2.imread(str(body / "00000001/image/image0000024.jpg"))
    assert img.shape == (1080, 1920, 3)
    assert (raw / "ignore_images.txt").read_text() == "subject_82/body/00000002/image/image0000024.jpg\n"


def test_cameras_project_as_the_toolkit_does(raw):
    body = raw / "subject_82/body"
    cams = humbi.read_cameras(body)
    reference = toolkit_cameras(body)
    assert sorted(cams) == sorted(reference) == list(fixture.CALIBRATED)
    kps = np.loadtxt(body / "00000002/reconstruction/keypoints.txt")
    for cam, (k, r, c) in reference.items():
        camera = cams[cam]
        np.testing.assert_array_equal(camera.intrinsic_matrix, k)
        np.testing.assert_array_equal(camera.R, r)
        np.testing.assert_allclose(camera.optical_center, c * 1000)  # metres -> mm
        assert not camera.has_distortion and tuple(camera.world_up) == (0, -1, 0)
        # x = K R [I | -C] X (reproject.m), with X in metres; posebank's joints are mm in the same world frame
        np.testing.assert_allclose(camera.project(kps * 1000), fixture.project_toolkit(kps, k, r, c), atol=1e-6)


def test_joints_are_posepiles_25_openpose_joints_in_mm_with_y_down(raw):
    kps = np.loadtxt(raw / "subject_1/body/00000001/reconstruction/keypoints.txt")
    coords = humbi.read_keypoints(raw / "subject_1/body/00000001/reconstruction/keypoints.txt")
    names = humbi.JOINT_INFO.names
    assert names[:8] == ("nose_coco", "neck_coco", "rsho_coco", "relb_coco", "rwri_coco", "lsho_coco", "lelb_coco",
                         "lwri_coco")
    assert names[-1] == "pelv_coco" and len(names) == 25
    np.testing.assert_allclose(coords[-1], kps[8] * 1000)  # OpenPose's MidHip, moved last
    np.testing.assert_allclose(coords[:8], kps[:8] * 1000)
    np.testing.assert_allclose(coords[8:24], kps[9:] * 1000)
    ids = humbi.JOINT_INFO.ids
    up = np.array(humbi.WORLD_UP)
    assert (coords[ids["neck_coco"]] - coords[ids["pelv_coco"]]) @ up > 400  # neck above pelvis, mm
    assert (coords[ids["nose_coco"]] - coords[ids["lank_coco"]]) @ up > 1400
    edges = {(names[a], names[b]) for a, b in humbi.JOINT_INFO.edges}
    assert ("lkne_coco", "lank_coco") in edges or ("lank_coco", "lkne_coco") in edges  # mirrored from the right


# ------------------------------------------------------------------------------------------- selection
def test_selection_ignore_list_uncalibrated_cameras_and_params(raw):
    dropped = []
    inst = humbi.instances(raw, None, dropped)
    assert len(inst) == N_IMAGES - 1
    assert [x.source for x in inst][:3] == [f"subject_1/body/00000001/image/image{c:07d}.jpg" for c in fixture.IMAGED]
    assert {x.split for x in inst} == {"train"} and {x.subject for x in inst} == {"subject_1", "subject_82"}
    reasons = {d.where: (d.reason, d.count) for d in dropped}
    ignored = reasons["subject_82/body/00000002/image/image0000024.jpg#2"]
    assert ignored == ("listed in ignore_images.txt (broken JPEG)", 1)
    for subj in fixture.SUBJECTS:  # the images of camera 105 (not calibrated), counted per subject
        reason, count = reasons[f"subject_{subj}/body/extrinsic.txt"]
        assert count == fixture.N_FRAMES and reason.startswith("camera 105 is not in the calibration")
    assert len(humbi.instances(raw, {"use_ignore_list": False})) == N_IMAGES
    assert {x.camera_name for x in humbi.instances(raw, {"cameras": [87]})} == {"0000087"}
    assert len(humbi.instances(raw, {"subjects": [82]})) == N_IMAGES // 2 - 1
    assert {x.frame_index for x in humbi.instances(raw, {"frame_step": 2})} == {2}


def test_boxes_are_the_projected_joints_x_1_05_clipped_to_the_image(raw):
    clipped = 0
    for x in humbi.instances(raw):
        pts = x.camera.project(x.world_coords)
        lo, hi = pts.min(0), pts.max(0)
        center, half = (lo + hi) / 2, (hi - lo) * 1.05 / 2
        a, b = np.maximum(center - half, -0.5), np.minimum(center + half, [1919.5, 1079.5])
        np.testing.assert_allclose(x.bbox, [*a, *(b - a)], atol=1e-6)
        clipped += bool((center + half > [1919.5, 1079.5]).any() or (center - half < -0.5).any())
    assert clipped  # some feet of the fixture are at the bottom edge
    # clipped to [-0.5, W - 0.5] x [-0.5, H - 0.5]; nothing inside: empty (posepile leaves such an image out)
    np.testing.assert_allclose(humbi.clipped_box([[-100, 500], [100, 1200]], 1.0), [-0.5, 500, 100.5, 579.5])
    assert humbi.clipped_box([[2000, 10], [2100, 90]], 1.05)[2] == 0
    assert humbi.clipped_box(np.full((25, 2), np.nan), 1.05).tolist() == [0, 0, 0, 0]


# ------------------------------------------------------------------------------------------- conversion
def test_projection_onto_marks_and_crops(raw, cache):
    marks = fixture.fixture_marks(raw)
    ids = humbi.JOINT_INFO.ids
    mark_err, frame_err, crop_err, shins = [], [], [], []
    with Cache(cache) as c:
        assert c.split_counts()["train"] == N_IMAGES - 1
        assert c.joint_info.names == humbi.JOINT_INFO.names
        for i in range(len(c)):
            ex = c[i]
            source = c.blob("source_path", i).decode().split("#")[0]
            subj, _, frame, _, image = source.split("/")
            cam = int(image[5:12])
            wc = np.asarray(ex.world_coords, np.float64)
            camera = humbi.read_cameras(raw / subj / "body")[cam]
            projected = camera.project(wc)
            drawn = marks[int(subj[8:])][int(frame)][cam]
            mark_err.extend(np.linalg.norm(projected - drawn, axis=1))
            img = cv2.imread(str(raw / source))
            for p in projected[isolated(projected, 12)]:
                centroid = mark_centroid(img, p, 6)
                if centroid is not None:
                    frame_err.append(np.linalg.norm(centroid - p))
            crop = ex.decode_image()
            in_crop = ex.camera.project(wc)
            for p in in_crop[isolated(in_crop, 12)]:
                centroid = mark_centroid(crop, p, 5)
                if centroid is not None:
                    crop_err.append(np.linalg.norm(centroid - p))
            shins.append(np.linalg.norm(wc[ids["lkne_coco"]] - wc[ids["lank_coco"]]))
            np.testing.assert_allclose(ex.camera.world_up, [0, -1, 0])
            assert (wc[ids["neck_coco"]] - wc[ids["pelv_coco"]]) @ np.array([0, -1, 0]) > 400
    assert len(mark_err) == (N_IMAGES - 1) * 25 and max(mark_err) < 1e-3, max(mark_err)  # float32 coordinates
    assert len(frame_err) > 100 and max(frame_err) < 1.0, max(frame_err)  # onto the marks in the JPEGs
    assert len(crop_err) > 50 and max(crop_err) < 1.5, max(crop_err)  # through the crop cameras
    shin_m = np.linalg.norm(fixture._TEMPLATE[ids["lkne_coco"]] - fixture._TEMPLATE[ids["lank_coco"]])  # 0.432 m
    np.testing.assert_allclose(shins, shin_m * 1000, atol=0.01)  # stored in mm


def test_an_unlisted_broken_jpeg_or_a_resized_image_is_quarantined(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    jpeg = broken / "subject_1/body/00000002/image/image0000087.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:5000])
    small = broken / "subject_82/body/00000001/image/image0000000.jpg"
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(small)), (960, 540)))
    out = tmp_path / "out" / "humbi"
    counts = convert("humbi", broken, out, None, progress=False)
    assert counts["train"] == N_IMAGES - 3
    with Cache(out) as c:
        reasons = {q["path"].split("#")[0]: q["reason"] for q in c.quarantine}
    assert reasons["subject_1/body/00000002/image/image0000087.jpg"] == "truncated JPEG (no end-of-image marker)"
    assert reasons["subject_82/body/00000001/image/image0000000.jpg"] == "image is 960x540, HUMBI's are 1920x1080"


# ------------------------------------------------------------------------------------------- merges
def test_union_joints_with_panoptic_and_aist(params):
    """huge8/medium3 keep HUMBI's *_coco joints with suffix '': the same union joints as Panoptic's and AIST++'s
    names with suffix coco, plus OpenPose's six foot joints."""
    specs = {s.dataset: s for s in params.merge("huge8").sources}
    assert (specs["humbi"].suffix, specs["humbi"].joints) == ("", "*_coco")
    assert specs["panoptic"].suffix == specs["aist"].suffix == "coco"
    h = source_joints(humbi.JOINT_INFO, specs["humbi"].suffix, None, specs["humbi"].joints)
    p = source_joints(panoptic.JOINT_INFO, specs["panoptic"].suffix)
    a = source_joints(aist.JOINT_INFO, specs["aist"].suffix)
    assert h.union_names == list(humbi.JOINT_INFO.names)  # all 25 kept, names unchanged
    union = union_skeleton([p, a, h])
    assert set(p.union_names) == set(a.union_names) < set(h.union_names)
    assert union.joint_info.n_joints == 25
    assert sorted(set(h.union_names) - set(p.union_names)) == [f"{n}_coco" for n in (
        "lfoo", "lhee", "ltoe", "rfoo", "rhee", "rtoe")]
    # the shared names land on the same union joints
    for name in p.union_names:
        assert union.joint_maps[0][p.union_names.index(name)] == union.joint_maps[2][h.union_names.index(name)]


def test_huge8_picks_up_the_humbi_cache(cache, params, tmp_path):
    caches = tmp_path / "caches"
    caches.mkdir()
    (caches / "humbi").symlink_to(cache)
    spec = params.merge("huge8")
    r = build_merge("huge8", spec, caches, tmp_path / "h8.h5", allow_missing=True)
    assert r["sources"] == 1 and r["missing"] == len(spec.sources) - 1
    with Merge(tmp_path / "h8.h5") as m:
        assert "humbi" not in {x["dataset"] for x in m.missing}
        assert m.joint_info.names == humbi.JOINT_INFO.names
        assert m.split_counts()["train"] == N_IMAGES - 1


# ------------------------------------------------------------------------------------------- errors
def test_missing_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    (broken / "subject_82/body/extrinsic.txt").unlink()
    (broken / "subject_1/body/00000002/reconstruction/keypoints.txt").unlink()
    with pytest.raises(RawLayoutError, match="missing subject_1/body/00000002/reconstruction/keypoints.txt, "
                                             "subject_82/body/extrinsic.txt"):
        humbi.check_layout(broken)
    with pytest.raises(RawLayoutError, match=r"missing subject_7/body/intrinsic.txt"):
        humbi.instances(broken, {"subjects": [7]})
    out = tmp_path / "out" / "humbi"
    with pytest.raises(RawLayoutError):
        convert("humbi", broken, out, None, progress=False)
    assert_no_output(out)


def test_bad_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    kps = broken / "subject_1/body/00000002/reconstruction/keypoints.txt"
    kps.write_text("\n".join(kps.read_text().splitlines()[:20]))
    with pytest.raises(RawFileError, match="malformed keypoints file: 20 rows, expected 25") as e:
        humbi.instances(broken)
    assert e.value.path == kps
    kps.write_text((raw / kps.relative_to(broken)).read_text())
    intrinsic = broken / "subject_82/body/intrinsic.txt"
    lines = intrinsic.read_text().splitlines()
    intrinsic.write_text("\n".join([*lines[:2], f"numP: {len(fixture.CALIBRATED) + 1}", *lines[3:],
                                    "0 50", *lines[4:7]]) + "\n")
    with pytest.raises(RawFileError, match="no camera 50") as e:
        humbi.instances(broken)
    assert e.value.path == broken / "subject_82/body/extrinsic.txt"
    intrinsic.write_text("\n".join([*lines[:4], "1 2 x", *lines[5:]]))
    with pytest.raises(RawFileError, match="line 5 is '1 2 x', expected 3 numbers") as e:
        humbi.instances(broken)
    assert e.value.path == intrinsic


def test_bad_params():
    for key, value in (("cameras", [107]), ("subjects", ["subject_1"]), ("frame_step", 0), ("box_expansion", 0.0)):
        with pytest.raises(ParamsError) as e:
            humbi.check_params({key: value})
        assert e.value.where == f"datasets.humbi.{key}"
