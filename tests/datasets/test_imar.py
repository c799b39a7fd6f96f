"""The IMAR datasets (fit3d, chi3d, humansc3d): the toolkit's cameras and projection, joints3d_25 in mm at 4 mocap
frames per video frame, CHI3D's two people, posepile's selection and box rule, the info file's two names."""

import dataclasses
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import assert_no_output, copy_raw
from marks import mark_errors
from posebank import datasets
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, imar
from posebank.datasets.frames import file_frame_source
from posebank.datasets.imar.fixture import (
    FRAME_SIZE,
    MOCAP_FRAMES,
    N_FRAMES,
    PEOPLE,
    SEQUENCES,
    TEST_SUBJECT,
    calibration,
    fixture_joints,
    toolkit_projection,
)
from posebank.pipeline.run import convert

NAMES = ("fit3d", "chi3d", "humansc3d")
SEED = 4
J = {n: i for i, n in enumerate(imar.JOINT_NAMES.split(","))}


@pytest.fixture(scope="module")
def raws(tmp_path_factory) -> dict[str, Path]:
    return {n: datasets.get(n).make_fixture(tmp_path_factory.mktemp(f"{n}_raw"), seed=SEED) for n in NAMES}


@pytest.fixture(scope="module")
def converted(raws):
    out = {}
    for n in NAMES:
        dropped = []
        out[n] = datasets.get(n).instances(raws[n], None, dropped), dropped
    return out


def sequences(name):
    return [(s, a) for s, actions in SEQUENCES[name].items() for a in actions]


@pytest.mark.parametrize("name", NAMES)
def test_fixture_files_have_the_release_formats(raws, name):
    raw = raws[name]
    info = json.loads((raw / "info.json").read_text())
    assert info["train_subj_names"] == list(SEQUENCES[name]) and TEST_SUBJECT in info["subj_to_act"]
    assert info["all_camera_names"] == list(imar.CAMERAS)
    for k, (subject, action) in enumerate(sequences(name)):
        j3d = np.array(json.loads((raw / imar.joints_relpath(subject, action)).read_text())["joints3d_25"])
        n = MOCAP_FRAMES[k % 2]
        assert j3d.shape == ((n, 25, 3) if PEOPLE[name] == 1 else (2, n, 25, 3))  # the toolkit's j3ds.shape[-3]
        assert 0.0 < np.abs(j3d).max() < 5.0  # metres
        for cam in imar.CAMERAS:
            calib = json.loads((raw / imar.camera_relpath(subject, action, cam)).read_text())
            assert {"extrinsics", "intrinsics_w_distortion", "intrinsics_wo_distortion"} <= set(calib)
            assert np.shape(calib["extrinsics"]["R"]) == (3, 3) and np.shape(calib["extrinsics"]["T"]) == (1, 3)
            shapes = {k: np.shape(v) for k, v in calib["intrinsics_w_distortion"].items()}
            assert shapes == {"f": (1, 2), "c": (1, 2), "k": (1, 3), "p": (1, 2)}
            cap = cv2.VideoCapture(str(raw / imar.video_relpath(subject, action, cam)))
            assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == FRAME_SIZE
            assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N_FRAMES
            cap.release()


def test_cameras_project_as_the_toolkit_and_posepiles_opencv_reading_does_not(raws):
    rng = np.random.default_rng(0)
    worst_opencv = 0.0
    for name in NAMES:
        for subject, action in sequences(name):
            for cam in imar.CAMERAS:
                path = raws[name] / imar.camera_relpath(subject, action, cam)
                calib = json.loads(path.read_text())
                camera = imar.read_camera(path)
                rot = np.array(calib["extrinsics"]["R"])
                centre = np.array(calib["extrinsics"]["T"][0])
                intr = calib["intrinsics_w_distortion"]
                np.testing.assert_array_equal(camera.R, rot)
                np.testing.assert_allclose(camera.optical_center, centre * 1000, rtol=1e-15)  # T is the centre
                np.testing.assert_array_equal(camera.world_up, [0, 0, 1])
                assert camera.distortion_model == "h36m"
                np.testing.assert_array_equal(camera.distortion_coeffs, [*intr["k"][0][:2], *intr["p"][0],
                                                                         intr["k"][0][2]])
                # world points over the whole view (normalised coordinates up to the corners), 2-7 m away
                depth = rng.uniform(2000, 7000, size=(100, 1))
                in_cam = np.concatenate([rng.uniform(-0.55, 0.55, size=(100, 2)) * depth, depth], axis=1)
                world_mm = in_cam @ rot + centre * 1000
                ours = camera.project(world_mm)
                np.testing.assert_allclose(ours, toolkit_projection(calib, world_mm / 1000), atol=1e-6)
                # posepile's reading: OpenCV's model with (k1, k2, p1, p2, k3) and the same centre
                K = camera.intrinsic_matrix
                rvec = cv2.Rodrigues(rot)[0]
                opencv = cv2.projectPoints(world_mm.reshape(-1, 1, 3), rvec, -rot @ (centre * 1000), K,
                                           camera.distortion_coeffs)[0].reshape(-1, 2)
                worst_opencv = max(worst_opencv, float(np.abs(opencv - ours).max()))
                np.testing.assert_allclose(opencv, ours, atol=5.0)  # close, but not the toolkit's
                # T read as a translation (x_cam = R X + T) puts the points nowhere near
                wrong = dataclasses.replace(camera, t=-rot.T @ (centre * 1000))
                assert not np.all(np.abs(wrong.project(world_mm) - ours) < 50)
    assert worst_opencv > 0.5, worst_opencv


@pytest.mark.parametrize("name", NAMES)
def test_joints_are_the_files_mocap_frame_4i_in_mm_and_z_is_up(raws, converted, name):
    insts, _ = converted[name]
    truth = fixture_joints(name, SEED)
    files = {key: np.array(json.loads((raws[name] / imar.joints_relpath(*key)).read_text())["joints3d_25"])
             for key in sequences(name)}
    assert {(i.subject, i.sequence) for i in insts} == set(sequences(name))
    for inst in insts:
        key = (inst.subject, inst.sequence)
        m = inst.frame_index * 4
        stored = files[key][m] if PEOPLE[name] == 1 else files[key][inst.person_index, m]
        np.testing.assert_array_equal(inst.world_coords, stored * 1000)
        np.testing.assert_allclose(inst.world_coords, truth[key][inst.person_index, m], atol=1e-6)
        wc = inst.world_coords
        for a, b, lo, hi in (("lhip", "lkne", 400, 460), ("rkne", "rank", 400, 460), ("lsho", "lelb", 240, 310),
                             ("relb", "rwri", 220, 290), ("pelv", "neck", 500, 600)):
            assert lo < np.linalg.norm(wc[J[a]] - wc[J[b]]) < hi, (a, b)  # mm, an adult's bones
        up = inst.camera.world_up
        assert 1600 < (wc[J["htop"]] - wc[[J["lank"], J["rank"]]].mean(0)) @ up < 1750
        assert 1300 < inst.camera.optical_center @ up < 2100  # the cameras hang 1.4-2.0 m above the floor


@pytest.mark.parametrize("name", NAMES)
def test_joints_project_onto_the_marks(raws, converted, name):
    insts, _ = converted[name]
    frames = file_frame_source(raws[name])
    errors = []
    for source in sorted({i.source for i in insts}):
        group = [i for i in insts if i.source == source]
        images = dict(frames(source, sorted({i.frame_index for i in group})))
        for f in sorted({i.frame_index for i in group}):
            people = [i for i in group if i.frame_index == f]
            assert len(people) == PEOPLE[name]
            image = images[f].image
            assert image.shape == (FRAME_SIZE[1], FRAME_SIZE[0], 3)
            points = np.concatenate([i.camera.project(i.world_coords) for i in people])
            errors.extend(mark_errors(image, points, radius=7, min_distance=16))
    assert len(errors) > 150 * PEOPLE[name] and max(errors) < 1.0, (len(errors), max(errors))


def test_a_one_to_one_pairing_of_mocap_and_video_misses_the_marks(raws):
    """posepile decodes at fps=200 so that its i-th (repeated) frame meets mocap frame i; read at the video's own
    rate, mocap frame i is not what frame i shows."""
    raw = raws["fit3d"]
    subject, action = sequences("fit3d")[0]
    cam = imar.CAMERAS[0]
    camera = imar.read_camera(raw / imar.camera_relpath(subject, action, cam))
    poses = imar.read_joints(raw / imar.joints_relpath(subject, action), 1)[0]
    source = imar.video_relpath(subject, action, cam)
    (_, frame), = list(file_frame_source(raw)(source, [3]))
    right = mark_errors(frame.image, camera.project(poses[12]), radius=7, min_distance=16)
    wrong = mark_errors(frame.image, camera.project(poses[3]), radius=7, min_distance=16)
    assert len(right) > 10 and right.max() < 1.0
    assert len(wrong) < len(right) / 2 or wrong.max() > 2.0


def test_selection_drops_and_sampling(raws, converted):
    kept = {0: [0, 1, 3, 4], 1: [0, 1, 3]}  # frame 2 repeats frame 1; the second sequence's frame 4 has no mocap
    for name in NAMES:
        insts, dropped = converted[name]
        expected = [(imar.video_relpath(s, a, c), f, p) for k, (s, a) in enumerate(sequences(name))
                    for c in imar.CAMERAS for f in kept[k] for p in range(PEOPLE[name])]
        assert [(i.source, i.frame_index, i.person_index) for i in insts] == expected
        assert {i.split for i in insts} == {"train"} and {i.camera_name for i in insts} == set(imar.CAMERAS)
        assert TEST_SUBJECT not in {i.subject for i in insts}  # the info file's test subject: not read
        assert all(i.bbox is None for i in insts)  # the detect stage's box (detect.per_dataset.<name>)
        (s0, a0), (s1, a1) = sequences(name)
        assert sorted((d.where, d.reason) for d in dropped) == sorted(
            [(f"{imar.video_relpath(s0, a0, c)}#{N_FRAMES}", imar.PAST_VIDEO_END) for c in imar.CAMERAS]
            + [(f"{imar.video_relpath(s1, a1, c)}#{N_FRAMES - 1}", imar.PAST_MOCAP_END) for c in imar.CAMERAS])
    # no sampling: the repeated frame too; one subject, one camera
    s0, a0 = sequences("chi3d")[0]
    every = datasets.get("chi3d").instances(raws["chi3d"], {"adaptive_sampling_mm": 0, "subjects": [s0],
                                                            "cameras": [imar.CAMERAS[2]]})
    assert [(i.frame_index, i.person_index) for i in every] == [(f, p) for f in range(N_FRAMES) for p in (0, 1)]
    assert {i.source for i in every} == {imar.video_relpath(s0, a0, imar.CAMERAS[2])}
    # frame_step 2 over the video frames
    stepped = datasets.get("fit3d").instances(raws["fit3d"], {"frame_step": 2, "adaptive_sampling_mm": 0,
                                                              "cameras": [imar.CAMERAS[0]]})
    assert [i.frame_index for i in stepped] == [0, 2, 4, 0, 2]


def test_chi3d_gives_both_people_of_every_frame(raws, converted):
    insts, _ = converted["chi3d"]
    by_frame = {}
    for i in insts:
        by_frame.setdefault((i.source, i.frame_index), []).append(i)
    assert all([x.person_index for x in group] == [0, 1] for group in by_frame.values())
    for group in by_frame.values():
        a, b = (x.world_coords for x in group)
        assert np.linalg.norm(a[J["pelv"]] - b[J["pelv"]]) > 800  # two people, 1.3 m apart
    # posepile zips the (2, frames, 25, 3) array as frames: two "frames", each a whole sequence of one person
    s, a = sequences("chi3d")[0]
    j3d = np.array(json.loads((raws["chi3d"] / imar.joints_relpath(s, a)).read_text())["joints3d_25"])
    assert len(list(zip(range(N_FRAMES), j3d))) == 2 and j3d[0].shape == (MOCAP_FRAMES[0], 25, 3)


def test_the_info_file_may_be_named_either_way(raws, tmp_path):
    raw = copy_raw(raws["humansc3d"], tmp_path)
    module = datasets.get("humansc3d")
    first = module.instances(raw)
    (raw / "info.json").rename(raw / "humansc3d_info.json")  # posepile main.py's name
    again = module.instances(raw)
    assert [(i.source, i.frame_index) for i in again] == [(i.source, i.frame_index) for i in first]
    (raw / "humansc3d_info.json").unlink()
    with pytest.raises(RawLayoutError, match=r"missing info\.json or humansc3d_info\.json"):
        module.check_layout(raw)


def test_detection_rule_is_posepiles(params):
    from posebank.imaging.crop import box_from_points
    from posebank.vision.detect import select_boxes

    for name in NAMES:
        dp = params.detect.for_dataset(name)
        assert (dp.rule, dp.expansion, dp.min_match_iou, dp.max_area_ratio, dp.fallback) == (
            "match", 1.2, 0.5, None, "drop")
    dp = dataclasses.replace(params.detect.for_dataset("fit3d"), backend="hog")  # any detector
    points = np.array([[300.0, 200.0], [340.0, 400.0], [320.0, 300.0]])
    gt = box_from_points(points, dp.expansion)
    np.testing.assert_allclose(gt, [296.0, 180.0, 48.0, 240.0])  # boxlib.expand(bb_of_points, 1.2)
    near = [296.0, 180.0, 48.0, 240.0 * 0.6]  # IoU 0.6: the detection is the box
    ((box, src),) = select_boxes(gt[None], np.array([near + [0.9]]), dp)
    assert src == "detection" and np.allclose(box, near)
    far = [296.0, 180.0, 48.0, 240.0 * 0.4]  # IoU 0.4: skipped (posepile: continue)
    assert select_boxes(gt[None], np.array([far + [0.9]]), dp) == [(None, "dropped")]
    assert select_boxes(gt[None], np.zeros((0, 5)), dp) == [(None, "dropped")]  # no detection: skipped


def test_cache_crops_show_the_marks(raws, tmp_path):
    out = tmp_path / "chi3d"
    counts = convert("chi3d", raws["chi3d"], out, {"cameras": [imar.CAMERAS[1]]}, progress=False)
    assert counts == {"train": 2 * (4 + 3), "quarantined": 2}
    errors = []
    with Cache(out) as cache:
        assert cache.joint_info.names == imar.JOINT_INFO.names
        for i in range(len(cache)):
            ex = cache[i]
            errors.extend(mark_errors(ex.decode_image(), ex.camera.project(ex.world_coords), radius=7,
                                      min_distance=16))
    assert len(errors) > 60 and max(errors) < 1.0, (len(errors), max(errors))


def test_params_are_checked():
    module = datasets.get("fit3d")
    for bad, where in (({"cameras": ["123"]}, "cameras"), ({"cameras": []}, "cameras"),
                       ({"mocap_per_video_frame": 0}, "mocap_per_video_frame"),
                       ({"adaptive_sampling_mm": -1}, "adaptive_sampling_mm"), ({"subjects": ["a/b"]}, "subjects"),
                       ({"sampling_buffer": 0}, "sampling_buffer")):
        with pytest.raises(ParamsError) as e:
            module.check_params(bad)
        assert e.value.where == f"datasets.fit3d.{where}"


def test_missing_and_bad_files_are_named(raws, tmp_path):
    raw = copy_raw(raws["chi3d"], tmp_path)
    module = datasets.get("chi3d")
    s, a = sequences("chi3d")[0]
    with pytest.raises(ParamsError, match=r"\['s09'\] are not training subjects"):
        module.instances(raw, {"subjects": ["s09"]})
    with pytest.raises(ParamsError, match=r"\['s01'\] are not training subjects"):  # the test subject
        module.instances(raw, {"subjects": [TEST_SUBJECT]})
    joints = raw / imar.joints_relpath(s, a)
    good = joints.read_text()
    one = np.array(json.loads(good)["joints3d_25"])[0]
    joints.write_text(json.dumps({"joints3d_25": one.tolist()}))  # one person's (frames, 25, 3): not CHI3D's
    with pytest.raises(RawFileError, match=r"Grab 4\.json: joints3d_25 has shape \(22, 25, 3\), expected \(2, "
                                           r"frames, 25, 3\)"):
        module.instances(raw)
    joints.write_text(json.dumps({"joints_25": []}))
    with pytest.raises(RawFileError, match=r"Grab 4\.json: malformed joints file: no joints3d_25"):
        module.instances(raw)
    joints.write_text(good)
    cam = raw / imar.camera_relpath(s, a, imar.CAMERAS[3])
    calib = json.loads(cam.read_text())
    cam.write_text(json.dumps({**calib, "intrinsics_w_distortion": {**calib["intrinsics_w_distortion"],
                                                                    "k": [[0.1, 0.2]]}}))
    with pytest.raises(RawFileError, match=r"65906101/Grab 4\.json: intrinsics_w_distortion\.k has 2 values, "
                                           r"expected 3"):
        module.instances(raw)
    cam.write_text(json.dumps({k: v for k, v in calib.items() if k != "extrinsics"}))
    with pytest.raises(RawFileError, match=r"Grab 4\.json: malformed camera file: no extrinsics object"):
        module.instances(raw)
    cam.write_text(json.dumps({**calib, "extrinsics": {**calib["extrinsics"], "R": np.eye(3)[::-1].tolist()}}))
    with pytest.raises(RawFileError, match=r"Grab 4\.json: extrinsics\.R is not a rotation matrix"):
        module.instances(raw)
    cam.write_text(cam.read_text()[:40])
    with pytest.raises(RawFileError, match=r"Grab 4\.json: unreadable camera file: not valid JSON"):
        module.instances(raw)
    (raw / "info.json").write_text(json.dumps({"subj_to_act": {}}))
    with pytest.raises(RawFileError, match=r"info\.json: malformed info file: expected train_subj_names"):
        module.instances(raw)
    shutil.copy(raws["chi3d"] / "info.json", raw / "info.json")
    out = tmp_path / "out" / "chi3d"
    cam.unlink()
    (raw / imar.video_relpath(s, a, imar.CAMERAS[0])).unlink()
    with pytest.raises(RawLayoutError) as e:
        convert("chi3d", raw, out, {}, progress=False)
    for rel in (imar.camera_relpath(s, a, imar.CAMERAS[3]), imar.video_relpath(s, a, imar.CAMERAS[0])):
        assert rel in str(e.value)
    assert_no_output(out)
    shutil.rmtree(raw / "train")
    with pytest.raises(RawLayoutError, match=r"missing train/"):
        module.check_layout(raw)


def test_fixture_calibrations_are_distinct_per_subject_and_camera():
    a = calibration("fit3d", 0, "s03", 0)
    assert a != calibration("fit3d", 0, "s04", 0) and a != calibration("fit3d", 0, "s03", 1)
    assert a == calibration("fit3d", 0, "s03", 0)
