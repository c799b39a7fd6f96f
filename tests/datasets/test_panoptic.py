"""CMU Panoptic: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import sample
from helpers import assert_no_output, copy_raw
from marks import isolated, mark_centroid
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, panoptic
from posebank.datasets.panoptic import fixture
from posebank.imaging.video import read_video_frames
from posebank.pipeline.run import convert

REAL_CALIBRATION = "panoptic/calibration_160906_band1.json"
REAL_SCENE = "panoptic/hdPose3d_stage1_coco19/body3DScene_{:08d}.json"


def toolbox_project_matlab(points_cm, k, r, t, d):
    """panoptic-toolbox matlab/PoseProject2D.m (with distortion), transcribed (N x 3 cm -> N x 2 px)."""
    x = r @ np.asarray(points_cm, np.float64).T + np.asarray(t, np.float64).reshape(3, 1)
    xp = x[0:2] / x[2]
    x2, y2, xy = xp[0] * xp[0], xp[1] * xp[1], xp[0] * xp[1]
    r2 = x2 + y2
    r4, r6 = r2 * r2, r2 * r2 * r2
    radial = 1.0 + d[0] * r2 + d[1] * r4 + d[4] * r6
    tangential_x = 2.0 * d[2] * xy + d[3] * (r2 + 2.0 * x2)
    tangential_y = 2.0 * d[3] * xy + d[2] * (r2 + 2.0 * y2)
    xp = np.stack([radial, radial]) * xp + np.stack([tangential_x, tangential_y])
    return (k[0:2, 0:2] @ xp + k[0:2, 2:3]).T


def toolbox_project(points_cm, k, r, t, d):
    """panoptic-toolbox python/panutils.py projectPoints, transcribed (N x 3 cm -> N x 2 px). It updates x in place,
    so the y line's tangential term uses the already distorted x (the MATLAB version does not)."""
    x = np.asarray(r @ np.asarray(points_cm, np.float64).T + np.asarray(t, np.float64).reshape(3, 1))
    x[0:2, :] = x[0:2, :] / x[2, :]
    rr = x[0, :] * x[0, :] + x[1, :] * x[1, :]
    x[0, :] = x[0, :] * (1 + d[0] * rr + d[1] * rr * rr + d[4] * rr * rr * rr) + 2 * d[2] * x[0, :] * x[1, :] + \
        d[3] * (rr + 2 * x[0, :] * x[0, :])
    x[1, :] = x[1, :] * (1 + d[0] * rr + d[1] * rr * rr + d[4] * rr * rr * rr) + 2 * d[3] * x[0, :] * x[1, :] + \
        d[2] * (rr + 2 * x[1, :] * x[1, :])
    x[0, :] = k[0, 0] * x[0, :] + k[0, 1] * x[1, :] + k[0, 2]
    x[1, :] = k[1, 0] * x[0, :] + k[1, 1] * x[1, :] + k[1, 2]
    return x[:2].T


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return panoptic.make_fixture(tmp_path_factory.mktemp("panoptic_raw"), seed=3)


@pytest.fixture(scope="module")
def cache(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("panoptic_cache") / "panoptic"
    convert("panoptic", raw, out, None, progress=False)
    return out


# ------------------------------------------------------------------------------------------- real files
def test_real_calibration_values():
    path = sample(REAL_CALIBRATION)
    entries = {c["name"]: c for c in json.loads(path.read_text())["cameras"]}
    cams = panoptic.read_calibration(path)
    assert len(entries) == 520 and sorted(cams) == [f"00_{i:02d}" for i in range(31)]  # the HD cameras only
    camera, size = cams["00_00"]
    assert size == (1920, 1080)
    np.testing.assert_array_equal(camera.intrinsic_matrix, [[1634.03, 0, 942.792], [0, 1629.73, 558.29], [0, 0, 1]])
    np.testing.assert_array_equal(camera.distortion_coeffs, [-0.222445, 0.199192, 8.73054e-05, 0.000982243,
                                                             0.0238445])
    np.testing.assert_array_equal(camera.R[0], [0.1369296663, 0.03357591931, -0.9900115778])
    r, t_cm = np.array(entries["00_00"]["R"]), np.array(entries["00_00"]["t"]).reshape(3)
    np.testing.assert_allclose(t_cm, [20.90028135, 127.2202879, 283.1159034])
    np.testing.assert_allclose(camera.optical_center, -r.T @ t_cm * 10, atol=1e-9)  # cm -> mm
    np.testing.assert_allclose(camera.R @ camera.optical_center + t_cm * 10, 0, atol=1e-6)  # R to 10 digits
    np.testing.assert_array_equal(camera.world_up, [0, -1, 0])
    for name, (cam, _) in cams.items():  # every HD camera: the file's K, R, distCoef, and an orthonormal R
        np.testing.assert_array_equal(cam.intrinsic_matrix, entries[name]["K"])
        np.testing.assert_array_equal(cam.R, entries[name]["R"])
        np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-6)
        # the dome: every camera 2.5 .. 4.5 m from the origin
        assert 2500 < np.linalg.norm(cam.optical_center) < 4500, name


def test_real_scene_values_units_and_up():
    bodies = panoptic.read_scene(sample(REAL_SCENE.format(168)))
    assert [b for b, _ in bodies] == [0, 1, 2]
    body0 = bodies[0][1]
    assert body0.shape == (19, 4)
    np.testing.assert_array_equal(body0[0], [124.136, -105.991, -30.2854, 0.709717])  # neck, the file's numbers
    np.testing.assert_array_equal(body0[8], [0, 0, 0, -1])  # lank not reconstructed
    coords = panoptic.world_joints(body0)
    ids = panoptic.JOINT_INFO.ids
    np.testing.assert_allclose(coords[ids["neck"]], [1241.36, -1059.91, -302.854])  # cm -> mm
    np.testing.assert_allclose(coords[ids["pelv"]], np.array([127.045, -63.7183, -29.9739]) * 10)  # BodyCenter
    assert np.isnan(coords[ids["lank"]]).all()  # confidence -1
    # rank (confidence 0.157) is kept, the threshold is <= 0.1
    np.testing.assert_allclose(coords[ids["rank"]], np.array([69.8839, -9.69057, 2.89286]) * 10)
    # body 2 of frame 168: the three joints with confidence -1 are missing, 16 valid
    assert np.count_nonzero(np.isfinite(panoptic.world_joints(bodies[2][1])[:, 0])) == 16
    for _, raw in bodies:
        c = panoptic.world_joints(raw)
        # bone lengths in mm: neck-pelvis 40-65 cm, upper arms 22-38 cm where both ends are valid
        assert 400 < np.linalg.norm(c[ids["neck"]] - c[ids["pelv"]]) < 650
        for a, b in (("lsho", "lelb"), ("rsho", "relb")):
            if np.isfinite(c[[ids[a], ids[b]]]).all():
                assert 220 < np.linalg.norm(c[ids[a]] - c[ids[b]]) < 380
        up = np.array([0.0, -1.0, 0.0])
        assert (c[ids["neck"]] - c[ids["pelv"]]) @ up > 200  # world up is -y (body 1 leans forward)
    # the next file: the same three people moved a little (tracked by the sampler as the same bodies)
    nxt = panoptic.read_scene(sample(REAL_SCENE.format(169)))
    poses = [panoptic.world_joints(r) for _, r in nxt]
    assert [b for b, _ in nxt] == [0, 1, 2]
    tracker = panoptic.MotionTracker()
    assert tracker.update([panoptic.world_joints(r) for _, r in bodies]) == [True, True, True]
    assert tracker.update(poses) == [False, False, False]  # 1/30 s later: no 3 joints moved 100 mm


def test_real_joints_project_like_the_toolbox():
    path = sample(REAL_CALIBRATION)
    entries = {c["name"]: c for c in json.loads(path.read_text())["cameras"]}
    cams = panoptic.read_calibration(path)
    n, python_diff = 0, []
    for frame in (168, 169):
        for _, raw in panoptic.read_scene(sample(REAL_SCENE.format(frame))):
            valid = raw[:, 3] > 0.1
            for name, (camera, _) in cams.items():
                e = entries[name]
                k, r, t, d = (np.array(e[key], np.float64) for key in ("K", "R", "t", "distCoef"))
                coords = panoptic.world_joints(raw)
                ok = np.isfinite(coords[:, 0])
                points_cm = raw[list(panoptic.SELECTED_JOINTS)][ok, :3]
                assert ok.sum() == valid.sum()
                got = camera.project(coords[ok])
                np.testing.assert_allclose(got, toolbox_project_matlab(points_cm, k, r, t, d), rtol=0, atol=1e-6)
                python_diff.extend(np.linalg.norm(got - toolbox_project(points_cm, k, r, t, d), axis=1))
                n += ok.sum()
    assert n > 31 * 90
    # the python toolbox's in-place update moves y by at most a few thousandths of a pixel on these cameras
    assert 1e-4 < max(python_diff) < 0.05, max(python_diff)


# ------------------------------------------------------------------------------------------- fixture
def test_fixture_has_the_release_layout(raw):
    for seq in fixture.SEQUENCES:
        d = raw / seq
        assert (d / f"calibration_{seq}.json").is_file()
        assert sorted(p.name for p in (d / "hdVideos").iterdir()) == ["hd_00_03.mp4", "hd_00_16.mp4"]
        scenes = sorted(p.name for p in (d / "hdPose3d_stage1_coco19").iterdir())
        assert scenes == [f"body3DScene_{i:08d}.json" for i in range(1, 7)]
        data = json.loads((d / "hdPose3d_stage1_coco19" / scenes[0]).read_text())
        assert set(data) == {"version", "univTime", "fpsType", "bodies"}
        assert len(data["bodies"][0]["joints19"]) == 76
        calib = json.loads((d / f"calibration_{seq}.json").read_text())
        assert {c["type"] for c in calib["cameras"]} == {"hd", "vga"}
        assert set(calib["cameras"][1]) == {"name", "type", "resolution", "panel", "node", "K", "distCoef", "R",
                                            "t"}


def test_selection_follows_posepile(raw):
    dropped = []
    inst = panoptic.instances(raw, None, dropped)
    per_frame = {}
    for x in inst:
        per_frame.setdefault((x.sequence, x.camera_name, x.frame_index), set()).add(x.subject.split("/")[1])
    for seq in fixture.SEQUENCES:
        for cam in fixture.VIDEO_CAMERAS:
            # body 0 walks 15 cm per frame (always kept); body 1 stands still in frames 1-2 (kept in 1 only);
            # body 2 of frame 3 has 4 confident joints (left out)
            assert per_frame[(seq, cam, 1)] == {"body0", "body1"}
            assert per_frame[(seq, cam, 2)] == {"body0"}
            for f in (3, 4, 5, 6):
                assert per_frame[(seq, cam, f)] == {"body0", "body1"}
    assert len(inst) == 2 * 2 * 11
    assert [(d.where, d.count) for d in dropped] == [
        (f"{s}/hdPose3d_stage1_coco19/body3DScene_00000003.json#3", 1) for s in fixture.SEQUENCES]
    assert all("fewer than 6 joints" in d.reason for d in dropped)
    ids = panoptic.JOINT_INFO.ids
    assert all(np.isnan(x.world_coords[ids["lear"]]).all() == (x.subject.endswith("body0")) for x in inst)
    assert {x.split for x in inst} == {"train"} and {x.activity for x in inst} == {"band", "pose"}
    # the order: sequence, camera, frame, body
    keys = [(x.sequence, x.camera_name, x.frame_index, x.person_index) for x in inst]
    assert keys == sorted(keys)
    # no motion sampling: every valid body; a demanding visibility rule removes everyone
    assert len(panoptic.instances(raw, {"min_moved_joints": 0})) == 2 * 2 * 12
    assert panoptic.instances(raw, {"frame_step": 2, "min_moved_joints": 0})[0].frame_index == 2
    # body 0's left ear is missing: it never has 19 visible joints
    assert {x.subject.split("/")[1] for x in panoptic.instances(raw, {"min_visible_joints": 19})} == {"body1"}
    only = panoptic.instances(raw, {"cameras": ["00_16"], "sequences": ["171204_pose1"]})
    assert {(x.sequence, x.camera_name) for x in only} == {("171204_pose1", "00_16")} and len(only) == 11
    skipped = panoptic.instances(raw, {"skip_videos": ["160906_band1/hd_00_03"]})
    assert len(skipped) == 33 and ("160906_band1", "00_03") not in {(x.sequence, x.camera_name) for x in skipped}


def test_projection_onto_marks_and_crops(raw, cache):
    marks = fixture.fixture_marks(raw)
    cams = {seq: panoptic.read_calibration(raw / seq / f"calibration_{seq}.json") for seq in fixture.SEQUENCES}
    mark_err, frame_err, crop_err, bones = [], [], [], []
    frames = {}
    ids = panoptic.JOINT_INFO.ids
    with Cache(cache) as c:
        assert c.split_counts()["train"] == 44
        for i in range(len(c)):
            ex = c[i]
            source, frame_index = c.blob("source_path", i).decode().split("#")
            seq, _, video = source.split("/")
            cam_name, frame_index, body = video[3:8], int(frame_index), int(ex.subject.split("body")[1])
            camera = cams[seq][cam_name][0]
            wc = np.asarray(ex.world_coords, np.float64)
            ok = np.isfinite(wc[:, 0])
            projected = camera.project(wc[ok])
            mark_err.extend(np.linalg.norm(projected - marks[seq][cam_name][frame_index][body][ok], axis=1))
            if source not in frames:
                frames[source] = dict(read_video_frames(raw / source, range(0, 7)))
            drawn = np.concatenate(list(marks[seq][cam_name][frame_index].values()))
            drawn = drawn[np.isfinite(drawn[:, 0])]
            # the marks no other drawn mark touches (of this body or another)
            alone = np.array([np.sort(np.linalg.norm(drawn - p, axis=1))[1] > 16 for p in projected])
            for p in projected[alone]:
                centroid = mark_centroid(frames[source][frame_index], p, 6)
                if centroid is not None:
                    frame_err.append(np.linalg.norm(centroid - p))
            crop = ex.decode_image()
            in_crop = ex.camera.project(wc[ok])
            for p in in_crop[alone & isolated(in_crop, 12)]:
                centroid = mark_centroid(crop, p, 5)
                if centroid is not None:
                    crop_err.append(np.linalg.norm(centroid - p))
            bones.append(np.linalg.norm(wc[ids["lkne"]] - wc[ids["lank"]]))
            up = np.asarray(ex.camera.world_up)
            np.testing.assert_allclose(up, [0, -1, 0])
            assert (wc[ids["neck"]] - wc[ids["pelv"]]) @ up > 400  # neck above pelvis, in mm
    assert len(mark_err) > 44 * 17 and max(mark_err) < 1e-3, max(mark_err)  # onto the drawn 2D positions (float32)
    assert len(frame_err) > 300 and max(frame_err) < 1.0, max(frame_err)  # onto the marks in the videos
    assert len(crop_err) > 200 and max(crop_err) < 1.5, max(crop_err)  # through the crop cameras
    shin_cm = np.linalg.norm(fixture._TEMPLATE[ids["lkne"]] - fixture._TEMPLATE[ids["lank"]])  # 43.2 cm
    np.testing.assert_allclose(bones, shin_cm * 10, atol=0.01)  # stored in mm


# ------------------------------------------------------------------------------------------- errors
def test_missing_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    (broken / "160906_band1/hdVideos/hd_00_16.mp4").unlink()
    (broken / "171204_pose1/calibration_171204_pose1.json").rename(broken / "171204_pose1/calib.json")
    with pytest.raises(RawLayoutError, match="missing 171204_pose1/calibration_171204_pose1.json"):
        panoptic.check_layout(broken, {"sequences": list(fixture.SEQUENCES)})
    with pytest.raises(RawLayoutError, match=r"missing 160906_band1/hdVideos/hd_00_16.mp4"):
        panoptic.check_layout(broken, {"sequences": ["160906_band1"], "cameras": ["00_03", "00_16"]})
    with pytest.raises(RawLayoutError, match=r"missing nosuch/calibration_nosuch.json"):
        panoptic.instances(broken, {"sequences": ["nosuch"]})
    out = tmp_path / "out" / "panoptic"
    with pytest.raises(RawLayoutError):
        convert("panoptic", broken, out, {"sequences": list(fixture.SEQUENCES)}, progress=False)
    assert_no_output(out)


def test_bad_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    calib = broken / "160906_band1/calibration_160906_band1.json"
    data = json.loads(calib.read_text())
    del data["cameras"][4]["K"]
    calib.write_text(json.dumps(data))
    with pytest.raises(RawFileError, match="camera '00_03' has no 'K'") as e:
        panoptic.instances(broken)
    assert e.value.path == calib
    # a scene file that is not JSON is skipped and quarantined, as posepile skips it
    scene = broken / "171204_pose1/hdPose3d_stage1_coco19/body3DScene_00000004.json"
    scene.write_text('{"bodies": [')
    calib.write_text(json.dumps(json.loads((raw / calib.relative_to(broken)).read_text())))
    dropped = []
    inst = panoptic.instances(broken, None, dropped)
    assert len(inst) == 44 - 2 * 2
    assert any(d.where == "171204_pose1/hdPose3d_stage1_coco19/body3DScene_00000004.json#4"
               and "not valid JSON" in d.reason for d in dropped)
    data = json.loads((raw / "171204_pose1/hdPose3d_stage1_coco19/body3DScene_00000005.json").read_text())
    data["bodies"][0]["joints19"] = data["bodies"][0]["joints19"][:70]
    scene.write_text(json.dumps(data))
    with pytest.raises(RawFileError, match=r"bodies\[0\].joints19 is not 19 x 4 numbers"):
        panoptic.instances(broken)


def test_bad_params():
    for key, value in (("cameras", ["hd_00_03"]), ("frame_step", 0), ("min_valid_joints", 20),
                       ("motion_mm", -1.0), ("sequences", [""])):
        with pytest.raises(ParamsError) as e:
            panoptic.check_params({key: value})
        assert e.value.where == f"datasets.panoptic.{key}"
