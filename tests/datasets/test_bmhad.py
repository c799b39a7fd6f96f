"""Berkeley MHAD: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import sample
from helpers import copy_raw
from marks import mark_errors
from posebank.datasets import RawFileError, RawLayoutError, bmhad
from posebank.datasets.bmhad import fixture
from posebank.datasets.c3d import read_points
from posebank.datasets.sampling import AdaptivePoseSampler, AdaptivePoseSampler2

SEED = 1
N_FRAMES = 5
IDS = bmhad.JOINT_INFO.ids


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return bmhad.make_fixture(tmp_path_factory.mktemp("bmhad_raw"), seed=SEED, n_frames=N_FRAMES)


@pytest.fixture(scope="module")
def found(raw):
    dropped = []
    return bmhad.instances(raw, None, dropped), dropped


def test_fixture_files_have_the_release_formats(raw):
    for group, (_, cams) in fixture.CALIBRATION.items():
        rwtw, camcfg = bmhad.calibration_names(group)
        text = (raw / rwtw).read_text()
        m = re.match(r"Rw=(?P<R>.+) \nTw=(?P<t>.+) \n", text)  # posepile read_extrinsics
        assert m and len(m["R"].split()) == 9 and len(m["t"].split()) == 3
        fs = cv2.FileStorage(str(raw / camcfg), cv2.FILE_STORAGE_READ)  # posepile load_cameras
        assert int(fs.getNode("Number of cameras").real()) == len(cams)
        dist = np.zeros(5, np.float32)
        dist[:4] = fs.getNode("Camera_1").getNode("Dist").mat()  # a 1 x 4 matrix, as posepile assigns it
        fs.release()
    assert [len(c) for _, c in fixture.CALIBRATION.values()] == [4, 4, 2, 2, 1, 1]
    c3d = read_points(raw / bmhad.mocap_relpath(1, 1, 1))
    assert c3d.points.shape[1:] == (43, 3) and c3d.units == "mm" and c3d.rate == 480
    world, raw_points = fixture.take_poses(SEED, (1, 1, 1), N_FRAMES)
    np.testing.assert_array_equal(c3d.points, raw_points)
    np.testing.assert_array_equal(bmhad.read_mocap(raw / bmhad.mocap_relpath(1, 1, 1)), world)
    corr = np.loadtxt(raw / "Camera/Correspondences/corr_moc_img_s01_a01_r01.txt")
    np.testing.assert_array_equal(corr[:, 2], [fixture.mocap_frame(False, i) for i in range(N_FRAMES)])
    pgm = cv2.imread(str(raw / "Camera/Cluster01/Cam01/S01/A01/R01/img_l01_c01_s01_a01_r01_00000.pgm"),
                     cv2.IMREAD_UNCHANGED)
    ppm = cv2.imread(str(raw / "Kinect/Kin02/S01/A01/R01/kin_k02_s01_a01_r01_color_00000.ppm"), cv2.IMREAD_UNCHANGED)
    assert pgm.shape == (480, 640) and pgm.dtype == np.uint8 and ppm.shape == (480, 640, 3)


def test_cameras_are_the_release_calibration_composed_as_posepile(raw):
    views = bmhad.views(raw)
    assert [v.name for v, _ in views] == [*(f"l01_c0{i}" for i in range(1, 5)), *(f"l02_c0{i}" for i in range(1, 5)),
                                          "l03_c01", "l03_c02", "l04_c01", "l04_c02", "k01", "k02"]
    groups = {v.name: (v.calibration, v.camera) for v, _ in views}
    rng = np.random.default_rng(0)
    points = rng.uniform([-500, 0, -500], [1500, 1800, 600], size=(50, 3))
    centres, axes = [], []
    for view, cam in views:
        group, i = groups[view.name]
        (rot, t), cams = fixture.CALIBRATION[group]
        (fx, fy, cx, cy), dist, posrel = cams[i - 1]
        # posepile: extrinsic = [Rodrigues(PosRel[3:]) | PosRel[:3]] @ [Rw | Tw], K and Dist as they are
        extr = np.eye(4)
        extr[:3, :3], extr[:3, 3] = np.reshape(rot, (3, 3)), t
        rel = np.eye(4)
        rel[:3, :3], rel[:3, 3] = cv2.Rodrigues(np.array(posrel[3:], float))[0], posrel[:3]
        full = rel @ extr
        np.testing.assert_allclose(cam.R, full[:3, :3], atol=1e-6)
        np.testing.assert_allclose(cam.optical_center, -full[:3, :3].T @ full[:3, 3], atol=1e-3)
        np.testing.assert_allclose(cam.intrinsic_matrix, [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], rtol=1e-6)
        np.testing.assert_allclose(cam.distortion_coeffs, [*dist, 0], rtol=1e-6)
        k = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
        opencv = cv2.projectPoints(points.reshape(-1, 1, 3), cv2.Rodrigues(full[:3, :3])[0], full[:3, 3], k,
                                   np.array([*dist, 0.0]))[0].reshape(-1, 2)
        front = (points - cam.optical_center) @ cam.R[2] > 500
        np.testing.assert_allclose(cam.project(points)[front], opencv[front], atol=1e-3)
        np.testing.assert_array_equal(cam.world_up, [0, 1, 0])
        assert cam.R[1] @ [0, 1, 0] < -0.95  # the image's down is the world's -y: y is up
        assert 1100 < cam.optical_center[1] < 1700  # the cameras stand 1.1-1.7 m above the floor
        centres.append(cam.optical_center)
        axes.append(cam.R[2])
    # the 14 optical axes pass within 0.5 m of one point of the capture space, about 1 m above the floor
    a = sum(np.eye(3) - np.outer(d, d) for d in axes)
    b = sum((np.eye(3) - np.outer(d, d)) @ c for c, d in zip(centres, axes))
    target = np.linalg.solve(a, b)
    assert 800 < target[1] < 1200
    for c, d in zip(centres, axes):
        v = target - c
        assert np.linalg.norm(v - (v @ d) * d) < 500
    # cluster 1's four cameras: about 113 mm apart on a bar (PosRel)
    gaps = np.linalg.norm(np.diff(centres[:4], axis=0), axis=1)
    assert np.all((100 < gaps) & (gaps < 125)), gaps


def _values(text: str) -> list[float]:
    return [float(v) for v in re.split(r"[,\s]+", text.strip()) if v]


def release_calibration() -> dict:
    """The release's calibration as its MATLAB notes (calib_params.m) quote it: group -> ((R row-major, t), [(K row-
    major, d, Rt)])."""
    text = sample("bmhad/calib_params.m").read_text()
    out = {}
    for kind, group in (("L", "l"), ("K", "k")):
        for m in re.finditer(rf"^{kind}\((\d)\)\.R = reshape\(\[([^\]]+)\],3,3\)'", text, re.M):
            i = int(m[1])
            t = re.search(rf"^{kind}\({i}\)\.t = \[([^\]]+)\]'", text, re.M)[1]
            prefix = rf"{kind}\({i}\)\.C\((\d)\)" if kind == "L" else rf"{kind}\({i}\)()"
            cams = {}
            for field, key in (("K", r"reshape\(\[([^\]]+)\],3,3\)'"), ("d", r"\[([^\]]+)\]'"),
                               ("Rt", r"\[([^\]]+)\]'")):
                for c in re.finditer(rf"^{prefix}\.{field} = {key};", text, re.M):
                    cams.setdefault(int(c[1] or 1), {})[field] = _values(c[2])
            out[f"{group}{i:02d}"] = ((_values(m[2]), _values(t)),
                                      [(cams[j]["K"], cams[j]["d"], cams[j]["Rt"]) for j in sorted(cams)])
    return out


def test_the_fixture_calibration_is_the_releases_and_cameras_sit_where_its_notes_put_them(raw):
    """calib_params.m (the release's MATLAB demo) copies RwTw_*.txt and camcfg_*.yml; it composes a camera as
    ``C(j).T * L(i).T`` and puts it at ``L(i).Tinv * C(j).Tinv * [0 0 0 1]'``."""
    real = release_calibration()
    assert list(real) == ["l01", "l02", "l03", "l04", "k01", "k02"]
    views = dict(bmhad.views(raw))
    for group, ((rot, t), cams) in real.items():
        (frot, ft), fcams = fixture.CALIBRATION[group]
        assert (list(frot), list(ft)) == (rot, t)
        rw, tw = bmhad.read_cluster_transform(raw / bmhad.calibration_names(group)[0])
        np.testing.assert_allclose(rw, np.reshape(rot, (3, 3)), rtol=1e-8)
        np.testing.assert_allclose(tw, t, rtol=1e-8)
        configs = bmhad.read_camera_config(raw / bmhad.calibration_names(group)[1])
        assert len(configs) == len(cams) == len(fcams)
        for j, ((k, d, rt), (fk, fd, frt), config) in enumerate(zip(cams, fcams, configs), 1):
            assert (k[0], k[4], k[2], k[5]) == fk and list(fd) == d and list(frt) == rt
            np.testing.assert_allclose(config.intrinsic_matrix.reshape(-1), k, rtol=1e-7)
            np.testing.assert_allclose(config.dist, d, rtol=1e-7, atol=1e-12)
            np.testing.assert_allclose(config.posrel, rt, rtol=1e-7, atol=1e-12)
            lt = np.eye(4)
            lt[:3, :3], lt[:3, 3] = np.reshape(rot, (3, 3)), t
            ct = np.eye(4)
            ct[:3, :3], ct[:3, 3] = cv2.Rodrigues(np.array(rt[3:]))[0], rt[:3]
            position = np.linalg.inv(lt) @ np.linalg.inv(ct) @ [0, 0, 0, 1]
            view = bmhad.View(group[0] == "k", int(group[1:]), j)
            np.testing.assert_allclose(views[view].optical_center, position[:3], atol=1e-3)
            np.testing.assert_allclose(views[view].R, (ct @ lt)[:3, :3], atol=1e-6)


def test_markers_are_millimetres_in_the_y_up_frame(raw, found):
    insts, _ = found
    for inst in insts:
        take = tuple(int(x) for x in re.findall(r"\d+", inst.sequence))
        world, raw_points = fixture.take_poses(SEED, take, N_FRAMES)
        kinect = inst.camera_name.startswith("k")
        m = fixture.mocap_frame(kinect, inst.frame_index)
        np.testing.assert_array_equal(inst.world_coords, world[m])
        wc = inst.world_coords
        # the capture frame is z up: world (-x, z, y)
        np.testing.assert_allclose(wc[:, 1][np.isfinite(wc[:, 1])], raw_points[m, :, 2][np.isfinite(wc[:, 1])],
                                   atol=1e-3)
        for a, b, lo, hi in (("lelb", "lwri", 200, 300), ("lkne", "lank", 350, 450), ("rkne", "rank", 350, 450),
                             ("lsho1", "rsho1", 300, 380), ("lhee", "lfoo", 180, 220)):
            assert lo < np.linalg.norm(wc[IDS[a]] - wc[IDS[b]]) < hi, (a, b)
        height = (wc[IDS["head"]] - (wc[IDS["lhee"]] + wc[IDS["rhee"]]) / 2) @ inst.camera.world_up
        assert 1600 < height < 1800
        assert -10 < wc[IDS["lhee"], 1] < 150  # the heels on or near the floor (y = 0)


def test_markers_project_onto_the_marks_of_the_demosaiced_frames(raw, found):
    insts, _ = found
    frames = bmhad.frame_source(raw)
    errors = []
    kinds = set()
    for inst in insts:
        ((_, frame),) = frames(inst.source, [inst.frame_index])
        image = frame.image
        assert image.shape == (480, 640, 3)
        kinds.add(inst.source.rsplit(".", 1)[1])
        errors.extend(mark_errors(image, inst.camera.project(inst.world_coords), radius=4, min_distance=11))
    assert kinds == {"pgm", "ppm"}
    assert len(errors) > 1000 and max(errors) < 1.0, (len(errors), max(errors))


def test_bayer_pattern_is_posepiles(raw):
    """posepile demosaics with COLOR_BAYER_GB2RGB: the fixture's dark blue background comes back blue; any other
    pattern changes its colour."""
    rel = "Camera/Cluster02/Cam03/S01/A01/R01/img_l02_c03_s01_a01_r01_00001.pgm"
    image = bmhad.read_frame(raw / rel)
    corner = image[8:40, 8:40].reshape(-1, 3).astype(float)
    np.testing.assert_allclose(np.median(corner, axis=0), fixture.BACKGROUND_BGR, atol=2)
    mosaic = cv2.imread(str(raw / rel), cv2.IMREAD_UNCHANGED)
    for other in (cv2.COLOR_BAYER_RG2BGR, cv2.COLOR_BAYER_BG2BGR, cv2.COLOR_BAYER_GR2BGR):
        wrong = np.median(cv2.cvtColor(mosaic, other)[8:40, 8:40].reshape(-1, 3), axis=0)
        assert np.abs(wrong - fixture.BACKGROUND_BGR).max() > 30, (other, wrong)


def test_box_is_the_projected_markers_box_times_1_05(found):
    insts, _ = found
    for inst in insts[::7]:
        pts = inst.camera.project(inst.world_coords)
        pts = pts[np.isfinite(pts).all(axis=1)]
        lo, hi = pts.min(0), pts.max(0)
        size = (hi - lo) * 1.05
        np.testing.assert_allclose(inst.bbox, [*((lo + hi) / 2 - size / 2), *size], atol=1e-9)


def test_selection_missing_takes_images_and_the_buffer_sampler(raw, found, tmp_path):
    insts, dropped = found
    assert {i.split for i in insts} == {"train"} and bmhad.splits() == ("train",)
    # (4, 8, 5): a take the release lacks; its files are here and posepile leaves it out all the same
    assert {i.sequence for i in insts} == {"s01_a01_r01", "s02_a05_r03"}
    by = {}
    for i in insts:
        by.setdefault((i.sequence, i.camera_name), []).append(i.frame_index)
    assert len(by) == 2 * 14
    # camera frame 3 repeats frame 0's pose: the buffer sampler leaves it out (the last-pose sampler would not)
    assert by["s01_a01_r01", "l01_c01"] == [0, 1, 2, 4]
    assert by["s02_a05_r03", "l03_c02"] == [0, 1, 4]  # its frame 2 has no image file (recorded)
    world, _ = fixture.take_poses(SEED, (1, 1, 1), N_FRAMES)
    poses = [world[fixture.mocap_frame(False, i)] for i in range(N_FRAMES)]
    last_pose = AdaptivePoseSampler(100)
    assert [i for i, p in enumerate(poses) if last_pose.should_keep(p)] == [0, 1, 2, 3, 4]
    buffer = AdaptivePoseSampler2(100, bmhad.EVERY_KEPT_POSE)
    assert [i for i, p in enumerate(poses) if buffer.should_keep(p)] == [0, 1, 2, 4]
    assert sorted({(d.reason, d.where.rsplit("#", 1)[1]) for d in dropped}) == [(bmhad.MISSING_IMAGE, "2")]
    assert len(dropped) == 14 and all("S02/A05/R03" in d.where for d in dropped)
    # an invalid marker (negative residual in the c3d) is NaN in the pose
    inst = next(i for i in insts if i.sequence == "s01_a01_r01" and i.frame_index == 1)
    assert np.isnan(inst.world_coords[IDS["lhan2"]]).all() and np.isfinite(np.delete(inst.world_coords,
                                                                                       IDS["lhan2"], 0)).all()
    everything = bmhad.instances(raw, {"adaptive_sampling_mm": 0})
    assert len(everything) == 14 * N_FRAMES + 14 * (N_FRAMES - 1)
    some = bmhad.instances(raw, {"clusters": [3], "kinects": [], "subjects": [2]})
    assert {i.camera_name for i in some} == {"l03_c01", "l03_c02"} and {i.subject for i in some} == {"S02"}
    # (5, 2, 5) is left out in clusters 3 and 4 only
    assert bmhad.View(False, 3, 1).skips((5, 2, 5)) and not bmhad.View(False, 2, 1).skips((5, 2, 5))
    assert bmhad.View(True, 1, 1).skips((4, 8, 5)) and not bmhad.View(True, 1, 1).skips((10, 8, 5))


def test_huge8_takes_it_as_a_source_and_medium3_does_not(raw, params, tmp_path):
    from posebank.merging.build import build_merge
    from posebank.merging.reader import Merge
    from posebank.pipeline.run import convert

    caches = tmp_path / "caches"
    convert("bmhad", raw, caches / "bmhad", {"clusters": [1], "kinects": [], "subjects": [1]}, progress=False)
    r = build_merge("huge8", params.merge("huge8"), caches, tmp_path / "huge8.h5", allow_missing=True)
    assert r["sources"] == 1 and r["examples_train"] > 0
    with Merge(tmp_path / "huge8.h5") as m:
        assert "bmhad" not in {x["dataset"] for x in m.missing}
        assert len(m.missing) == len(params.merge("huge8").sources) - 1
        assert [n for n in m.joint_info.names if n.endswith("_bmhad")] == [f"{n}_bmhad" for n in bmhad.MARKERS]
    assert "bmhad" not in {s.dataset for s in params.merge("medium3").sources}  # posepile: loaded, not merged


def test_edges_include_the_ones_posepiles_missing_comma_drops():
    names = bmhad.JOINT_INFO.names
    edges = {frozenset((names[a], names[b])) for a, b in bmhad.JOINT_INFO.edges}
    assert {frozenset(("bell", "chest")), frozenset(("backl", "rback")), frozenset(("rback", "rhipb"))} <= edges
    assert len(names) == 43 and tuple(names[:3]) == ("head", "lhead", "rhead") and names[-1] == "rfoo"


def test_bad_and_missing_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    rwtw = broken / "Calibration/RwTw_l02.txt"
    good = rwtw.read_text()
    rwtw.write_text(good.replace("Tw=", "Tx="))
    with pytest.raises(RawFileError, match=r"RwTw_l02\.txt: expected a line 'Rw=<9 values>' and a line"):
        bmhad.instances(broken)
    rwtw.write_text(good.replace("Rw=", "Rw=1 ", 1))
    with pytest.raises(RawFileError, match=r"Rw= has 10 values \(expected 9\), Tw= 3"):
        bmhad.instances(broken)
    rwtw.write_text(good)
    cfg = broken / "Calibration/camcfg_l03.yml"
    text = cfg.read_text()
    cfg.write_text(text.replace("Dist:", "Distortion:", 1))
    with pytest.raises(RawFileError, match=r"camcfg_l03\.yml: Camera_1: Dist must be a matrix of 4 values, got none"):
        bmhad.instances(broken)
    cfg.write_text(text.replace("Number of cameras: 2", "Number of cameras: 3"))
    with pytest.raises(RawFileError, match=r"camcfg_l03\.yml: no Camera_3 \(of 3\)"):
        bmhad.instances(broken)
    cfg.write_text("not yaml at all: [")
    with pytest.raises(RawFileError, match=r"camcfg_l03\.yml: unreadable camera configuration"):
        bmhad.instances(broken)
    cfg.write_text(text)
    corr = broken / "Camera/Correspondences/corr_moc_img_s01_a01_r01.txt"
    corr.write_text("0 0.1\n1 0.2\n")
    with pytest.raises(RawFileError, match=r"corr_moc_img_s01_a01_r01\.txt: expected rows of at least 3 columns"):
        bmhad.instances(broken)
    corr.unlink()
    dropped = []
    insts = bmhad.instances(broken, {"kinects": []}, dropped)
    assert {i.sequence for i in insts} == {"s02_a05_r03"}
    assert [(d.where, d.reason) for d in dropped if "s01" in d.where] == [
        ("Camera/Correspondences/corr_moc_img_s01_a01_r01.txt", bmhad.MISSING_CORRESPONDENCE)]
    # an undecodable frame is a quarantined frame naming the file
    pgm = broken / "Camera/Cluster01/Cam01/S02/A05/R03/img_l01_c01_s02_a05_r03_00000.pgm"
    pgm.write_bytes(b"P5\n640 480\n255\n" + b"\0" * 100)
    ((_, frame),) = bmhad.frame_source(broken)(str(pgm.relative_to(broken)), [0])
    assert frame.image is None and "img_l01_c01_s02_a05_r03_00000.pgm" in frame.problem
    (broken / "Calibration/camcfg_k01.yml").unlink()
    import shutil

    shutil.rmtree(broken / "Kinect/Correspondences")
    with pytest.raises(RawLayoutError, match=r"missing Calibration/camcfg_k01\.yml, Kinect/Correspondences/$"):
        bmhad.check_layout(broken)
    assert bmhad.check_layout(broken, {"kinects": []}) == [(1, 1, 1), (2, 5, 3), (4, 8, 5)]
    with pytest.raises(RawLayoutError, match=r"missing Mocap/OpticalData/moc_s<ss>_a<aa>_r<rr>\.c3d of the"):
        bmhad.check_layout(broken, {"kinects": [], "subjects": [7]})
