"""UMPM: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import copy_raw
from marks import mark_errors
from posebank.datasets import RawFileError, RawLayoutError, umpm
from posebank.datasets.c3d import read_points, write_points
from posebank.datasets.umpm import fixture

SEED = 1
NAMES = "pelv,neck,head,rsho,relb,rwri,lsho,lelb,lwri,rhip,lhip,rkne,lkne,rank,lank".split(",")  # posepile's


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return umpm.make_fixture(tmp_path_factory.mktemp("umpm_raw"), seed=SEED)


@pytest.fixture(scope="module")
def converted(raw):
    dropped = []
    return umpm.instances(raw, None, dropped), dropped


@pytest.fixture
def broken(raw, tmp_path) -> Path:
    return copy_raw(raw, tmp_path)


def person_poses(seq: str, k: int) -> np.ndarray:
    """The fixture's C3D rows of person ``k`` (all C3D frames)."""
    return fixture.fixture_poses(SEED)[seq][:, 15 * k: 15 * (k + 1)]


def test_fixture_files_have_the_release_formats(raw):
    text = (raw / "p2_chair_1.json").read_text()
    assert text.rstrip().endswith(',\n}')  # the release's trailing comma ...
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)  # ... which plain JSON refuses
    assert umpm.read_sequence_json(raw / "p2_chair_1.json")["calib"] == "calib_l06"
    for cam in "fsrl":
        lines = (raw / f"Calib/calib_l06_{cam}.ini").read_text().splitlines()
        # posepile load_camera: split at spaces, empty strings dropped
        assert [len([v for v in line.split(" ") if v]) for line in lines] == [3, 3, 3, 4, 3, 3]
    for seq, n_people, n_video in (("p2_chair_1", 2, 6), ("p1_grab_3", 1, 8)):
        c3d = read_points(raw / f"Groundtruth/{seq}_vm.c3d")
        assert c3d.points.shape == (2 * n_video, 15 * n_people, 3) and c3d.units == "mm" and c3d.rate == 100.0
    image = cv2.imread(str(raw / "Video/p2_chair_1_f/frame_000005.jpg"))
    assert image.shape == (486, 644, 3)  # the release's video size (jutanke/pak UMPM.get_shape)
    assert umpm.frame_count(raw / "Video/p2_chair_1_f") == 6 and not (raw / "Video/p1_grab_3_l").exists()


def test_the_joint_names_are_posepiles():
    assert list(umpm.JOINT_INFO.names) == NAMES
    edges = {tuple(sorted((NAMES[a], NAMES[b]))) for a, b in umpm.JOINT_INFO.edges}
    # posepile 'rank-rkne-rhip-pelv-neck-head,rwri-relb-rsho-neck', mirrored
    assert edges == {tuple(sorted(e)) for e in (
        ("rank", "rkne"), ("rkne", "rhip"), ("rhip", "pelv"), ("pelv", "neck"), ("neck", "head"), ("rwri", "relb"),
        ("relb", "rsho"), ("rsho", "neck"), ("lank", "lkne"), ("lkne", "lhip"), ("lhip", "pelv"), ("lwri", "lelb"),
        ("lelb", "lsho"), ("lsho", "neck"))}


def test_sequence_files_trailing_commas_replacements_and_errors(tmp_path):
    path = tmp_path / "p3_meet_2.json"
    path.write_text('{\n  "id":"p3_meet_2",\n  "calib":"calib_l06",\n  "list":[1, 2,],\n}\n')
    assert umpm.read_sequence_json(path) == {"id": "p3_meet_2", "calib": "calib_l06", "list": [1, 2]}
    broken = tmp_path / "p2_free_1.json"
    broken.write_text('{"id":"p2_free_1", "calib": ')  # posepile replaces this file's content by its own object
    assert umpm.read_sequence_json(broken)["calib"] == "calib_n27"
    assert umpm.read_sequence_json(tmp_path / "p3_circle_2.json")["calib"] == "calib_l06"
    bad = tmp_path / "p1_chair_2.json"
    bad.write_text('{"id":"p1_chair_2", "calib": ')
    with pytest.raises(RawFileError, match="not valid JSON") as e:
        umpm.read_sequence_json(bad)
    assert e.value.where == str(bad)
    bad.write_text('{"id":"p1_chair_2"}')
    with pytest.raises(RawFileError, match="'id' and 'calib'"):
        umpm.read_sequence_json(bad)


def test_cameras_project_as_opencv_with_the_ini_values(raw):
    rng = np.random.default_rng(0)
    for calib in ("calib_l06", "calib_l02"):
        for cam, values in fixture.fixture_cameras(calib).items():
            camera = umpm.read_camera(raw / f"Calib/{calib}_{cam}.ini")
            np.testing.assert_allclose(camera.distortion_coeffs, [*values["dist"], 0.0])
            np.testing.assert_allclose(camera.R, cv2.Rodrigues(values["rvec"])[0], atol=1e-9)
            # t of the file is world -> camera; posebank's t is the optical centre (mm)
            np.testing.assert_allclose(camera.R @ camera.optical_center, -values["t"], atol=1e-6)
            np.testing.assert_array_equal(camera.world_up, [0, 0, 1])
            points = rng.uniform([-1500, -1500, 0], [1500, 1500, 1900], size=(50, 3))
            np.testing.assert_allclose(camera.project(points), fixture.project(points, values), atol=1e-6)
            plain = cv2.projectPoints(points.reshape(-1, 1, 3), values["rvec"], values["t"], values["K"],
                                      np.zeros(5))[0].reshape(-1, 2)
            assert np.abs(camera.project(points) - plain).max() > 1  # the distortion is applied


def test_a_bad_calibration_file_is_named(broken):
    path = broken / "Calib/calib_l06_s.ini"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:5]) + "\n")
    with pytest.raises(RawFileError, match="5 non-empty lines, expected 6") as e:
        umpm.instances(broken)
    assert e.value.where == str(path)
    path.write_text("\n".join([*lines[:3], "-0.2 0.05 0.001", *lines[4:]]) + "\n")
    with pytest.raises(RawFileError, match="line 4 has 3 values, expected 4"):
        umpm.read_camera(path)
    path.write_text("\n".join([*lines[:3], "-0.2 0.05 0.001 x", *lines[4:]]) + "\n")
    with pytest.raises(RawFileError, match="line 4 is not numeric"):
        umpm.read_camera(path)


def test_projection_onto_the_drawn_marks_within_a_pixel(raw, converted):
    instances, _ = converted
    by_image = {}
    for inst in instances:
        by_image.setdefault(inst.source, []).append(inst)
    checked = 0
    for source, insts in by_image.items():
        seq, cam = insts[0].sequence, insts[0].camera_name
        values = fixture.fixture_cameras(umpm.read_sequence_json(raw / f"{seq}.json")["calib"])[cam]
        image = cv2.imread(str(raw / source), cv2.IMREAD_GRAYSCALE)
        points = []
        for inst in insts:
            projected = inst.camera.project(inst.world_coords)
            np.testing.assert_allclose(projected, fixture.project(inst.world_coords, values), atol=1e-6)
            # the marks are drawn at the file's joints, those the filter set to NaN included
            in_file = inst.camera.project(person_poses(seq, inst.person_index)[2 * inst.frame_index])
            ok = np.isfinite(projected).all(axis=1)
            np.testing.assert_allclose(projected[ok], in_file[ok], atol=1e-3)
            points.append(in_file[np.isfinite(in_file).all(axis=1)])
        errors = mark_errors(image, np.concatenate(points), 4, 10)
        assert len(errors) and errors.max() < 1.0, (source, errors)
        checked += len(errors)
    assert checked > 300


def test_every_second_c3d_frame_is_a_video_frame_in_millimetres_with_z_up(converted):
    instances, _ = converted
    ids = {n: i for i, n in enumerate(NAMES)}
    for inst in instances:
        expected = person_poses(inst.sequence, inst.person_index)[2 * inst.frame_index]
        ok = np.isfinite(inst.world_coords)
        np.testing.assert_allclose(inst.world_coords[ok], expected[ok], rtol=1e-6)  # float32 in the C3D file
        wc = inst.world_coords
        for a, b, lo, hi in (("rhip", "rkne", 350, 500), ("lkne", "lank", 350, 500), ("lsho", "lelb", 200, 400),
                             ("lsho", "rsho", 300, 400), ("neck", "head", 150, 250)):
            length = np.linalg.norm(wc[ids[a]] - wc[ids[b]])
            assert np.isnan(length) or lo < length < hi, (a, b)
        np.testing.assert_array_equal(inst.camera.world_up, [0, 0, 1])
        up = inst.camera.world_up
        assert wc[ids["head"]] @ up > wc[ids["pelv"]] @ up > wc[ids["rank"]] @ up
        assert 1500 < (wc[ids["head"]] - wc[ids["rank"]]) @ up < 1700
    frames = {(i.sequence, i.camera_name, i.person_index): [] for i in instances}
    for inst in instances:
        frames[inst.sequence, inst.camera_name, inst.person_index].append(inst.frame_index)
    # every camera holds the same frames of a person; the repeated pose is skipped by the sampler
    assert set(frames) == {("p2_chair_1", c, k) for c in "fsrl" for k in (0, 1)} | {("p1_grab_3", c, 0)
                                                                                   for c in "fsr"}
    for (seq, _, _), kept in frames.items():
        assert kept == ([0, 1, 2, 4, 5] if seq == "p2_chair_1" else [0, 1, 2, 3, 4, 5])


def test_whats_left_out_is_recorded(converted):
    _, dropped = converted
    assert [(d.where, d.reason, d.count) for d in dropped] == [
        ("Groundtruth/p1_grab_3_vm.c3d", "camera l: no extracted frames (Video/p1_grab_3_l/frame_000000.jpg)", 8),
        ("Groundtruth/p1_grab_3_vm.c3d", umpm.PAST_LAST_FRAME, 2)]


def test_invalid_markers_and_implausible_bones_are_nan(raw, converted):
    instances, _ = converted
    nan = {(i.sequence, i.frame_index, i.person_index, i.camera_name):
           [NAMES[j] for j in np.flatnonzero(np.isnan(i.world_coords).any(axis=1))] for i in instances}
    seq, frame, person, joint = fixture.INVALID_MARKER
    assert all(nan[seq, frame, person, c] == [joint] for c in "fsrl")
    seq, frame, person = fixture.IMPLAUSIBLE_WRIST
    # the forearm is 390 mm against a mean of about 260: > 1.25x and > 80 mm off, so both its joints go
    assert all(nan[seq, frame, person, c] == ["relb", "rwri"] for c in "fsr")
    assert sum(map(len, nan.values())) == 4 * 1 + 3 * 2
    # without the filter the wrist is what the file holds
    plain = umpm.instances(raw, {"plausibility": False})
    (inst,) = [i for i in plain if (i.sequence, i.frame_index, i.camera_name) == (seq, frame, "f")]
    np.testing.assert_allclose(inst.world_coords[NAMES.index("rwri")], person_poses(seq, 0)[2 * frame, 5],
                               rtol=1e-6)


def test_plausibility_rule_is_posepiles():
    edges = [(0, 1), (1, 2)]
    means = np.array([400.0, 100.0])
    p = {"rel_small": 0.5, "rel_big": 1.25, "abs_big_mm": 80.0}

    def pose(a, b):
        return np.array([[0, 0, 0], [0, 0, a], [0, 0, a + b]], np.float64)

    # 560 mm: 1.4x and 160 mm off -> implausible; 170 mm: 1.7x but only 70 mm off -> plausible
    np.testing.assert_array_equal(umpm.implausible_bones(pose(560, 170), means, edges, p), [True, False])
    # 190 mm: 0.475x and 210 mm off; 45 mm: 0.45x but 55 mm off
    np.testing.assert_array_equal(umpm.implausible_bones(pose(190, 45), means, edges, p), [True, False])
    np.testing.assert_array_equal(umpm.implausible_bones(pose(480, 110), means, edges, p), [False, False])


def test_adaptive_sampler_is_posepiles_sampler2():
    base = np.zeros((3, 3))
    moved = base + [[0, 0, 0], [0, 0, 0], [150, 0, 0]]
    s = umpm.AdaptivePoseSampler2(100, buffer_size=300)
    assert s.should_keep(base)
    assert not s.should_keep(base + [[0, 0, 60], [0, 0, 0], [0, 0, 0]])  # < 100 mm
    assert s.should_keep(moved)  # 150 mm from the only kept pose
    assert not s.should_keep(base)  # back to a pose of the buffer: within 100 mm of one of them
    short = umpm.AdaptivePoseSampler2(100, buffer_size=1)
    assert short.should_keep(base) and short.should_keep(moved) and short.should_keep(base)  # one pose remembered
    # a joint missing in the last kept pose and valid now: kept whatever moved
    s = umpm.AdaptivePoseSampler2(100, buffer_size=300)
    missing = base.copy()
    missing[1] = np.nan
    assert s.should_keep(missing) and s.should_keep(base)
    # a NaN joint counts as unchanged: the buffer keeps its last value (assume_nan_unchanged)
    assert not s.should_keep(missing)
    s = umpm.AdaptivePoseSampler2(100, buffer_size=300)
    assert not s.should_keep(np.full((3, 3), np.nan))  # nothing valid: skipped, as posepile
    assert s.should_keep(base)


def test_excluded_sequence_and_missing_files_are_named(broken):
    with pytest.raises(RawLayoutError, match=r"Groundtruth/p2_free_2_vm\.c3d"):
        umpm.check_layout(broken, {"exclude_sequences": []})  # posepile moves p2_free_2.json aside
    (broken / "Calib/calib_l02_r.ini").unlink()
    with pytest.raises(RawLayoutError, match=r"Calib/calib_l02_r\.ini"):
        umpm.check_layout(broken)
    assert [s.name for s in umpm.check_layout(broken, {"cameras": ["f", "s"]})] == ["p1_grab_3", "p2_chair_1"]


def test_c3d_point_counts_and_units(broken):
    path = broken / "Groundtruth/p1_grab_3_vm.c3d"
    points = person_poses("p1_grab_3", 0)
    write_points(path, points / 1000, [f"m{i}" for i in range(15)], rate=100.0, units="m")
    np.testing.assert_allclose(umpm.read_poses(path)[0], points[::2], rtol=1e-5)
    write_points(path, points[:, :10], [f"m{i}" for i in range(10)], rate=100.0)
    with pytest.raises(RawFileError, match="10 points per frame, expected 15") as e:
        umpm.instances(broken)
    assert e.value.where == str(path)
    write_points(path, points, [f"m{i}" for i in range(15)], rate=100.0, units="in")
    with pytest.raises(RawFileError, match="point units 'in'"):
        umpm.read_poses(path)
