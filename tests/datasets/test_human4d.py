"""HUMAN4D: device_repository.json, .extrinsics, offsets.txt and gposes3d npy files; the colour camera (the depth
sensor's pose and the colour-depth extrinsics); sideways frames, upright crops; posepile's selection and box rule."""

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import assert_no_output, copy_raw
from marks import mark_errors
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, human4d
from posebank.datasets.frames import file_frame_source
from posebank.datasets.human4d.fixture import (
    CAMERAS,
    N_FRAMES,
    OFFSET1,
    SEQUENCES,
    TWO_PEOPLE,
    color_name,
    devices,
    extrinsics,
    fixture_poses,
    project,
)
from posebank.pipeline.run import convert

SEED = 3
J = {n: i for i, n in enumerate(human4d.JOINT_NAMES)}
# per subject the kept frames of every camera: frames 0, 1 are before the mocap, frame 4 repeats frame 3's pose,
# frame 7 has no pose file; S3's frame 2 repeats S1's frame 2 (one sampler per camera over all subjects)
KEPT = {"S1": [2, 3, 5, 6], "S2": [2, 3, 5, 6], "S3": [3, 5, 6], "S4": [2, 3, 5, 6]}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return human4d.make_fixture(tmp_path_factory.mktemp("human4d_raw"), seed=SEED)


@pytest.fixture(scope="module")
def converted(raw):
    dropped = []
    return human4d.instances(raw, None, dropped), dropped


@pytest.fixture
def broken(raw, tmp_path) -> Path:
    return copy_raw(raw, tmp_path)


def color(subj: str, frame: int, cam: str) -> str:
    return f"{subj}/{SEQUENCES[subj]}/Dump/color/{color_name(frame, cam)}"


def test_fixture_files_have_the_release_formats(raw):
    for subj in human4d.SUBJECTS:
        folder = raw / subj
        devs = json.loads((folder / "device_repository.json").read_text())
        assert [d["Device"] for d in devs] == list(CAMERAS)
        for d in devs:
            assert len(d["Color Intrinsics"][0]["1280x720"]) == 9 and len(d["Color Depth Rotation"]) == 9
            assert len(d["Color Depth Translation"]) == 3 and abs(d["Color Depth Translation"][0]) < 0.05  # metres
        offsets = (folder / "offsets.txt").read_text().splitlines()
        assert offsets[0] == f"{SEQUENCES[subj]}\t{OFFSET1}\t{OFFSET1 + 250}" and len(offsets) == 2
        for cam in CAMERAS:
            rows = np.loadtxt(folder / "pose" / f"{cam}.extrinsics")
            assert rows.shape == (4, 3)
            np.testing.assert_allclose(rows[:3] @ rows[:3].T, np.eye(3), atol=1e-9)
        gposes = folder / SEQUENCES[subj] / "Dump/gposes3d"
        assert sorted(p.name for p in gposes.iterdir()) == [f"{i}.npy" for i in range(5)]
        assert np.load(gposes / "0.npy").shape == ((2 if subj == TWO_PEOPLE else 1), 33, 3)
        pngs = sorted((folder / SEQUENCES[subj] / "Dump/color").iterdir())
        assert len(pngs) == N_FRAMES * len(CAMERAS)
        assert cv2.imread(str(pngs[0])).shape == (720, 1280, 3)
    assert human4d.parse_color_name("438_M72h_color_46613.png") == (438, "M72h")  # posepile's example path
    assert human4d.parse_color_name("438_M72h_depth_46613.png") is None


def test_cameras_are_the_release_projection_and_posepiles_without_color_from_depth(raw):
    rng = np.random.default_rng(0)
    world = rng.uniform([-1500, -1500, -800], [1500, 1500, 1000], size=(50, 3))
    for subj in human4d.SUBJECTS:
        devs = {d["Device"]: d for d in devices(SEED, subj)}
        extr = extrinsics(SEED, subj)
        cams = human4d.read_cameras(raw, subj, CAMERAS)
        plain = human4d.read_cameras(raw, subj, CAMERAS, color_from_depth=False)
        for cam in CAMERAS:
            k = np.array(devs[cam]["Color Intrinsics"][0]["1280x720"]).reshape(3, 3)
            c = cams[cam]
            np.testing.assert_array_equal(c.intrinsic_matrix, k)
            assert not c.has_distortion and np.array_equal(c.world_up, [0, 0, 1])
            # the release's x_colour = Rcd^-1 (M^T (X - c) - 1000 tcd), then the colour K
            np.testing.assert_allclose(c.project(world), project(devs[cam], extr[cam], world), atol=1e-6)
            # posepile: K, rot_world_to_cam = rows 0-2 transposed, optical centre = row 3
            p = plain[cam]
            np.testing.assert_allclose(p.R, extr[cam][:3].T, atol=1e-12)
            np.testing.assert_allclose(p.optical_center, extr[cam][3], atol=1e-9)
            # the colour camera sits about 15 mm from the depth sensor: a few pixels apart at 3 m
            assert 10 < np.linalg.norm(c.optical_center - p.optical_center) < 20
            shift = np.linalg.norm(c.project(world) - p.project(world), axis=1)
            assert 1 < np.median(shift) < 40


def test_poses_are_the_npy_files_in_mm_with_z_up(raw, converted):
    insts, _ = converted
    poses = fixture_poses(SEED)
    keep = [i for i in range(33) if i != 15]  # posepile removes neck4_del
    for inst in insts:
        index = inst.frame_index - (OFFSET1 - 1)
        raw_pose = np.load(raw / inst.subject / inst.sequence / f"Dump/gposes3d/{index}.npy")[inst.person_index]
        np.testing.assert_array_equal(inst.world_coords, raw_pose[keep])
        np.testing.assert_allclose(inst.world_coords, poses[inst.subject][index][inst.person_index][keep])
        wc = inst.world_coords
        for a, b, lo, hi in (("lhip", "lkne", 390, 450), ("rkne", "rank", 390, 450), ("lsho", "lelb", 250, 310),
                             ("relb", "rwri", 220, 280), ("lsho", "rsho", 350, 390), ("head", "htop", 100, 130)):
            assert lo < np.linalg.norm(wc[J[a]] - wc[J[b]]) < hi, (a, b)  # mm, an adult's bones
        up = inst.camera.world_up
        assert 1600 < (wc[J["htop"]] - wc[[J["lank"], J["rank"]]].mean(0)) @ up < 1700
    assert len(human4d.JOINT_NAMES) == 32 and "neck4_del" not in human4d.JOINT_NAMES
    assert human4d.JOINT_NAMES[:10] == ["pelv", "spin0", "spin1", "spin2", "spin3", "neck", "neck2", "head", "htop",
                                        "neck3"]
    edges = {tuple(sorted((human4d.JOINT_NAMES[a], human4d.JOINT_NAMES[b])))
             for a, b in human4d.JOINT_INFO.stick_figure_edges}
    assert {("lpinkie", "lthu"), ("lsho", "neck3"), ("lhip", "pelv"), ("ltoe", "ltoe2")} <= edges  # mirrored
    assert len(edges) == 31


def test_joints_project_onto_the_marks_and_the_frames_are_sideways(raw, converted):
    insts, _ = converted
    frames = file_frame_source(raw)
    errors = []
    for source in sorted({i.source for i in insts}):
        group = [i for i in insts if i.source == source]  # S4: two people
        ((_, frame),) = list(frames(source, [group[0].frame_index]))
        assert frame.image.shape == (720, 1280, 3)
        points = np.concatenate([i.camera.project(i.world_coords) for i in group])
        errors.extend(mark_errors(frame.image, points, radius=7, min_distance=16))
        for inst in group:
            # the sensors lie on their side: the head is to the left of the feet, at about the same row
            im = inst.camera.project(inst.world_coords)
            feet = im[[J["lank"], J["rank"]]].mean(0)
            assert feet[0] - im[J["htop"], 0] > 3 * abs(feet[1] - im[J["htop"], 1])
    assert len(errors) > 1000 and max(errors) < 1.0, (len(errors), max(errors))


def test_selection_drops_and_sampling(raw, converted):
    insts, dropped = converted
    expected = [(color(s, f, cam), p) for cam in CAMERAS for s in human4d.SUBJECTS for f in KEPT[s]
                for p in range(2 if s == TWO_PEOPLE else 1)]
    assert [(i.source, i.person_index) for i in insts] == expected
    assert {i.split for i in insts} == {"train"} and all(i.bbox is None for i in insts)
    assert all(i.sequence == SEQUENCES[i.subject] and i.source.split("_")[1] == i.camera_name for i in insts)
    assert sorted((d.where, d.reason) for d in dropped) == sorted(
        [(color(s, f, cam), human4d.BEFORE_MOCAP) for cam in CAMERAS for s in human4d.SUBJECTS for f in (0, 1)]
        + [(color(s, 7, cam), human4d.NO_POSE_FILE) for cam in CAMERAS for s in human4d.SUBJECTS])
    # S3 alone: its frame 2 is new to the sampler
    assert [i.frame_index for i in human4d.instances(raw, {"subjects": ["S3"], "cameras": ["M72h"]})] == [2, 3, 5, 6]
    # no sampling: the repeated pose too
    assert [i.frame_index for i in human4d.instances(raw, {"subjects": ["S1"], "cameras": ["M72e"],
                                                           "adaptive_sampling_mm": 0})] == [2, 3, 4, 5, 6]
    # the release viewer's index (frame - offset1): frame 3 reads 0.npy, frame 7 reads 4.npy
    dropped = []
    shifted = human4d.instances(raw, {"subjects": ["S2"], "cameras": ["M72j"], "pose_index_shift": 0}, dropped)
    assert [i.frame_index for i in shifted] == [3, 4, 6, 7]
    np.testing.assert_array_equal(shifted[0].world_coords, insts[[i.source for i in insts].index(
        color("S2", 2, "M72j"))].world_coords)
    assert sorted(d.where for d in dropped) == [color("S2", f, "M72j") for f in (0, 1, 2)]
    # a natural path order: frame 10 after frame 9
    assert human4d.natural_key("S1/a/Dump/color/9_M72e_color_1.png") < human4d.natural_key(
        "S1/a/Dump/color/10_M72e_color_1.png")


def test_detection_rule_is_posepiles():
    import yaml

    from conftest import REPO
    from posebank.core.settings import check_params
    from posebank.imaging.crop import box_from_points
    from posebank.vision.detect import select_boxes

    checked = check_params(yaml.safe_load((REPO / "params.yaml").read_text()), source="params")
    dp = dataclasses.replace(checked.detect.for_dataset("human4d"), backend="hog")  # any detector
    assert (dp.rule, dp.expansion, dp.min_match_iou, dp.max_area_ratio, dp.min_detection_side, dp.fallback) == (
        "match", 1.2, 0.5, None, 30, "undetected")
    points = np.array([[500.0, 300.0], [740.0, 360.0], [620.0, 330.0]])  # a lying person
    gt = box_from_points(points, dp.expansion)
    np.testing.assert_allclose(gt, [476.0, 294.0, 288.0, 72.0])  # boxlib.expand(bb_of_points, 1.2)
    dets = np.array([[100.0, 280.0, 250.0, 80.0, 0.95], [480.0, 290.0, 280.0, 75.0, 0.6]])
    ((box, src),) = select_boxes(gt[None], dets, dp)
    assert src == "detection" and np.array_equal(box, dets[1, :4])
    # the best detection overlaps less than 0.5: posepile leaves the frame out
    ((box, src),) = select_boxes(gt[None], np.array([[600.0, 294.0, 288.0, 72.0, 0.9]]), dp)
    assert box is None and src == "dropped"
    # a detection whose long side is below 30 px: left out too
    small = box_from_points(np.array([[500.0, 300.0], [520.0, 305.0]]), 1.2)
    ((box, src),) = select_boxes(small[None], np.array([[*small, 0.9]]), dp)
    assert box is None and src == "dropped"
    # YOLOv4 found no one in the frame: posepile keeps the ground-truth box x 1.2
    ((box, src),) = select_boxes(gt[None], np.zeros((0, 5)), dp)
    assert src == "projected" and np.array_equal(box, gt)


def test_cache_crops_are_upright_and_show_the_marks(raw, tmp_path):
    out = tmp_path / "human4d"
    counts = convert("human4d", raw, out, {"cameras": ["M72i"], "subjects": ["S1", "S2"]}, progress=False)
    assert counts == {"train": 8, "quarantined": 6}
    errors = []
    with Cache(out) as cache:
        assert list(cache.joint_info.names) == human4d.JOINT_NAMES
        for i in range(len(cache)):
            ex = cache[i]
            im = ex.camera.project(ex.world_coords)
            errors.extend(mark_errors(ex.decode_image(), im, radius=7, min_distance=16))
            # upright: the head above the feet, nearly vertically
            feet = im[[J["lank"], J["rank"]]].mean(0)
            assert feet[1] - im[J["htop"], 1] > 3 * abs(feet[0] - im[J["htop"], 0])
    assert len(errors) > 80 and max(errors) < 1.0, (len(errors), max(errors))


def test_missing_and_bad_files_are_named(broken, tmp_path):
    s1 = broken / "S1"
    (s1 / "pose/M72h.extrinsics").write_text("1 0 0\n0 1 0\n0 0 1\n")
    with pytest.raises(RawFileError, match=r"M72h\.extrinsics: malformed extrinsics file: expected 4 rows of 3"):
        human4d.instances(broken)
    (s1 / "pose/M72h.extrinsics").write_text("2 0 0\n0 1 0\n0 0 1\n5 5 5\n")
    with pytest.raises(RawFileError, match=r"M72h\.extrinsics: rows 0-2 is not a rotation matrix"):
        human4d.instances(broken)
    np.savetxt(s1 / "pose/M72h.extrinsics", extrinsics(SEED, "S1")["M72h"])
    devs = devices(SEED, "S1")
    del devs[1]["Color Intrinsics"][0]["1280x720"]
    (s1 / "device_repository.json").write_text(json.dumps(devs))
    with pytest.raises(RawFileError, match=r"device_repository\.json: M72h: no 'Color Intrinsics'\[0\]\['1280x720'\]"):
        human4d.instances(broken)
    (s1 / "device_repository.json").write_text(json.dumps(devices(SEED, "S1")[:1]))
    with pytest.raises(RawFileError, match=r"device_repository\.json: has no device 'M72h'"):
        human4d.instances(broken)
    (s1 / "device_repository.json").write_text(json.dumps(devices(SEED, "S1")))
    (s1 / "offsets.txt").write_text("19-07-12-14-00-00\t7\t300\n")
    with pytest.raises(RawFileError, match=r"offsets\.txt: has no line for sequence '19-07-12-07-32-22'"):
        human4d.instances(broken)
    (s1 / "offsets.txt").write_text(f"{SEQUENCES['S1']} 3 250\n")
    with pytest.raises(RawFileError, match=r"offsets\.txt: line 1: expected <timestamp> TAB <offset1>"):
        human4d.instances(broken)
    (s1 / "offsets.txt").write_text(f"{SEQUENCES['S1']}\t3\t253\n")
    pose = s1 / SEQUENCES["S1"] / "Dump/gposes3d/1.npy"
    np.save(pose, np.zeros((1, 32, 3)))
    with pytest.raises(RawFileError, match=r"1\.npy: pose file must hold \(people, 33, 3\) numbers"):
        human4d.instances(broken)
    pose.unlink()  # a missing pose file is a drop
    dropped = []
    assert [i.frame_index for i in human4d.instances(broken, {"subjects": ["S1"], "cameras": ["M72e"]}, dropped)] == [
        2, 4, 5, 6]  # frame 4 (the repeat of frame 3's pose) is new now
    assert (color("S1", 3, "M72e"), human4d.NO_POSE_FILE) in [(d.where, d.reason) for d in dropped]
    out = tmp_path / "out" / "human4d"
    (broken / "S2/pose/M72j.extrinsics").unlink()
    (broken / "S3/offsets.txt").unlink()
    for f in (broken / "S4" / SEQUENCES["S4"] / "Dump/gposes3d").iterdir():
        f.unlink()
    (broken / "S4" / SEQUENCES["S4"] / "Dump/gposes3d").rmdir()
    with pytest.raises(RawLayoutError) as e:
        convert("human4d", broken, out, {}, progress=False)
    for rel in ("S2/pose/M72j.extrinsics", "S3/offsets.txt", f"S4/{SEQUENCES['S4']}/Dump/gposes3d/"):
        assert rel in str(e.value)
    assert_no_output(out)
    assert human4d.check_layout(broken, {"subjects": ["S1"]})
    with pytest.raises(RawLayoutError, match=r"S5/"):
        human4d.check_layout(broken, {"subjects": ["S1", "S5"]})
    with pytest.raises(RawLayoutError, match=r"of cameras \['M99x'\]"):
        human4d.check_layout(broken, {"subjects": ["S1"], "cameras": ["M99x"]})


def test_real_sample_of_the_release_sensor_frame_joints_and_their_projection(tmp_path):
    """The release's own per-sensor export of sequence INF_Running_S3_01_eval (h4d_pose_extractor.py: the 33 Vicon
    joints in a sensor's frame, int mm, and their projection, int px, for group frames 0-280; the rest zeros)."""
    from conftest import sample

    j3 = np.load(sample("human4d/INF_Running_S3_01_eval_3d.npy"))
    j2 = np.load(sample("human4d/INF_Running_S3_01_eval_2d.npy"))
    assert j3.shape == (366, 99) and j2.shape == (366, 66)
    j3, j2 = j3.reshape(-1, 33, 3), j2.reshape(-1, 33, 2)
    assert j3[:281].any(axis=(1, 2)).all() and not j3[281:].any()  # the script's range(281)
    j3, j2 = j3[:281], j2[:281]
    # the reader's joint selection on one real frame in gposes3d's (people, 33, 3) form
    np.save(tmp_path / "0.npy", j3[100][None])
    (pose,) = human4d.read_pose(tmp_path / "0.npy")
    np.testing.assert_array_equal(pose, np.delete(j3[100], 15, axis=0))
    poses = j3[:, human4d.SELECTED].astype(np.float64)
    for a, b, lo, hi in (("lhip", "lkne", 435, 445), ("rkne", "rank", 415, 425), ("lsho", "lelb", 283, 292),
                         ("relb", "rwri", 226, 234), ("head", "htop", 94, 100)):
        d = np.linalg.norm(poses[:, J[a]] - poses[:, J[b]], axis=1)
        assert lo < d.min() and d.max() < hi, (a, b, d.min(), d.max())  # mm, one rigid skeleton
    # the sensor lies on its side: the head top is towards the sensor's -x (the image's left), > 1 m from the feet
    feet = poses[:, [J["lank"], J["rank"]]].mean(1)
    assert (feet[:, 0] - poses[:, J["htop"], 0] > 1000).all()
    htop_u = j2[:, 8, 0]  # raw index 8 = htop
    assert (htop_u < j2[:, [23, 29], 0].mean(1)).all()  # raw 23, 29 = rank, lank
    # the 2D joints are a pinhole projection of the 3D ones (no distortion): fx = fy, centre of a 1280 x 720 image
    ok = j3[..., 2] > 0
    fit = []
    for c in (0, 1):
        a = np.stack([j3[..., c][ok] / j3[..., 2][ok], np.ones(ok.sum())], axis=1)
        (f, centre), *_ = np.linalg.lstsq(a, j2[..., c][ok], rcond=None)
        assert np.abs(j2[..., c][ok] - a @ [f, centre]).max() < 1.2  # both files hold truncated integers
        fit.append((f, centre))
    (fx, cx), (fy, cy) = fit
    assert abs(fx - fy) < 2 and abs(cx - 639.5) < 15 and abs(cy - 359.5) < 15, fit
