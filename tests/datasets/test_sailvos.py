"""SAIL-VOS: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import assert_no_output, copy_raw
from marks import isolated, mark_centroid
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, sailvos
from posebank.datasets.sailvos import fixture
from posebank.pipeline.run import convert

A, B = (p for _, p in fixture.PEDESTRIANS)  # pedestrian 12 (walks), 31 (stands still first)
# posepile ds/sailvos/main.py at bc129c3, INTERESTING_JOINTS, as written there
POSEPILE_GROUPS = [
    [341, 8], [61], [216, 234], [171], [164, 309], [255, 39], [330], [108], [45, 294],
    [215, 131, 253], [295], [144, 315], [147, 342, 27], [85], [152], [206, 128, 102], [307, 312],
    [130], [11], [167, 188, 191, 310], [194, 193, 236, 78], [227, 304, 58, 229], [37, 260, 195],
    [47, 148, 232],
    [323], [160]
]


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return sailvos.make_fixture(tmp_path_factory.mktemp("sailvos_raw"), seed=3)


@pytest.fixture(scope="module")
def cache(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sailvos_cache") / "sailvos"
    convert("sailvos", raw, out, None, progress=False)
    return out


# ------------------------------------------------------------------------------------------- joints
def test_joint_groups_are_posepiles():
    assert [list(g) for g in sailvos.INTERESTING_JOINTS] == POSEPILE_GROUPS
    assert len(POSEPILE_GROUPS) == sailvos.JOINT_INFO.n_joints == 26 and sailvos.MIN_RAW_POINTS == 343
    assert sailvos.JOINT_INFO.names[:3] == ("htop", "neck", "rsho") and sailvos.JOINT_INFO.names[-2:] == (
        "rhan", "lhan")
    # nanmean over each group; a row of zeros has no value; a group without any value is NaN
    pts = np.arange(343 * 3, dtype=np.float64).reshape(343, 3) / 1000 + 1
    pts[8] = 0  # htop = row 341 alone
    pts[[147, 342, 27]] = [[1, 2, 3], [3, 4, 5], [0, 0, 0]]  # lkne: mean of 147 and 342
    pts[85] = 0  # lank: no value
    j = sailvos.joints_from_raw(sailvos.raw_points3d(pts))
    ids = sailvos.JOINT_INFO.ids
    np.testing.assert_allclose(j[ids["htop"]], pts[341] * 1000)
    np.testing.assert_allclose(j[ids["lkne"]], [2000, 3000, 4000])
    np.testing.assert_allclose(j[ids["nose"]], pts[[167, 188, 191, 310]].mean(0) * 1000)
    assert np.isnan(j[ids["lank"]]).all() and np.isfinite(np.delete(j, ids["lank"], 0)).all()
    # 2D: a point at x = -1280 or y = -800 is off screen
    uv = np.full((343, 2), 100.0)
    uv[341], uv[8] = (-1280, -800), (10, 20)
    uv[160] = (50, -800)
    j2 = sailvos.joints2d_from_raw(uv)
    np.testing.assert_allclose(j2[ids["htop"]], [10, 20])
    assert np.isnan(j2[ids["lhan"]]).all()


# ------------------------------------------------------------------------------------------- fixture
def test_fixture_has_the_release_layout(raw):
    for seq in fixture.SEQUENCES:
        d = raw / seq
        assert sorted(p.name for p in (d / "images").iterdir()) == [f"{f:06d}.bmp" for f in range(4)]
        assert sorted(p.name for p in (d / "visible").iterdir()) == [f"{f:06d}.npy" for f in range(4)]
        others = [fixture.OCCLUDER_FOLDER] if seq == "tonya_mcs_1" else []  # a car door's mask, not read
        assert sorted(p.name for p in d.iterdir()) == sorted(["images", "visible", A, B, *others])
        assert sorted(p.name for p in (d / A).iterdir()) == sorted(
            f"{f:06d}{s}" for f in range(4) for s in ("_2d.txt", "_3d.txt", ".png"))
        visible = np.load(d / "visible/000000.npy")
        assert visible.shape == (800, 1280) and visible.dtype == np.uint16  # 2 MB a frame, as posepile says
        assert cv2.imread(str(d / "images/000000.bmp")).shape == (800, 1280, 3)
        assert np.loadtxt(d / A / "000001_3d.txt").shape == (343, 3)
        assert np.loadtxt(d / A / "000001_2d.txt").shape == (343, 2)


def test_camera_fit_recovers_the_camera(raw):
    cams, _ = fixture.fixture_truth(raw)
    errors, focal_rel = [], []
    for seq in fixture.SEQUENCES:
        for f in (0, 1, 3):
            for ped in (A, B):
                uv = np.loadtxt(raw / seq / ped / f"{f:06d}_2d.txt")
                xyz = np.loadtxt(raw / seq / ped / f"{f:06d}_3d.txt")
                fit = sailvos.fit_camera(uv, xyz)
                k, r, t = cams[seq][f]
                assert fit.n_points == 343 - 4 - 10  # 4 rows without 3D, 10 off screen
                np.testing.assert_array_equal(fit.intrinsic_matrix[:2, 2], [640, 400])  # fixed at the centre
                focal_rel.append(abs(fit.intrinsic_matrix[[0, 1], [0, 1]] / k[0, 0] - 1).max())
                np.testing.assert_allclose(fit.R, r, atol=1e-4)
                np.testing.assert_allclose(-fit.R.T @ fit.t_m, -r.T @ t, atol=2e-3)  # optical centre, m
                camera = sailvos.camera_from_fit(fit)
                ok = np.any(xyz != 0, axis=1) & sailvos.valid_2d(uv)
                errors.extend(np.linalg.norm(camera.project(xyz[ok] * 1000) - uv[ok], axis=1))
    assert max(focal_rel) < 1e-3, max(focal_rel)
    assert max(errors) < 0.01, max(errors)  # the file's 2D points (4 decimals) within 0.01 px
    # fewer than 6 valid pairs: no camera
    uv = np.loadtxt(raw / "fbi_4_mcs_2" / A / "000002_2d.txt")
    xyz = np.loadtxt(raw / "fbi_4_mcs_2" / A / "000002_3d.txt")
    assert np.count_nonzero(np.any(xyz != 0, axis=1)) == 5 and sailvos.fit_camera(uv, xyz) is None


# ------------------------------------------------------------------------------------------- selection
def test_selection_follows_posepile(raw):
    dropped = []
    inst = sailvos.instances(raw, None, dropped)
    kept = {(x.sequence, x.frame_index, x.subject.split("/")[1]) for x in inst}
    for seq in fixture.SEQUENCES:
        # A walks: every frame with a camera; B stands still in frames 0-1: kept in frame 0 only
        assert {(f, p) for s, f, p in kept if s == seq} == {(0, A), (0, B), (1, A), (2, A), (2, B), (3, A),
                                                             (3, B)} - ({(2, B)} if seq == "tonya_mcs_1" else {(2, A)})
    assert len(inst) == 12
    assert [(d.where, d.reason) for d in dropped] == [
        (f"fbi_4_mcs_2/{A}/000002_2d.txt#2", "camera fit failed: fewer than 6 valid 2D-3D point pairs"),
        (f"tonya_mcs_1/{B}/000002_2d.txt#2", "more than 0.75 of the amodal mask hidden")]
    keys = [(x.sequence, x.frame_index, x.subject) for x in inst]
    assert keys == sorted(keys) and {x.split for x in inst} == {"train"} and sailvos.splits() == ("train",)
    assert all(x.source == f"{x.sequence}/images/{x.frame_index:06d}.bmp" for x in inst)
    assert {x.person_index for x in inst} == {12, 31}
    # the box is the visible mask's
    x = inst[0]
    visible = np.load(raw / x.sequence / "visible" / f"{x.frame_index:06d}.npy")
    ys, xs = np.nonzero(visible == x.person_index)
    np.testing.assert_array_equal(x.bbox, [xs.min() - 0.5, ys.min() - 0.5, np.ptp(xs) + 1, np.ptp(ys) + 1])
    # per sequence the optical centres average to the origin
    for seq in fixture.SEQUENCES:
        np.testing.assert_allclose(np.mean([x.camera.optical_center for x in inst if x.sequence == seq], 0), 0,
                                   atol=1e-6)
    # the rules as params: no motion sampling keeps B's frame 1; a lenient occlusion rule keeps the hidden B
    first = ["tonya_mcs_1"]  # 6 people kept
    assert len(sailvos.instances(raw, {"sequences": first, "motion_mm": 0.0})) == 7
    assert len(sailvos.instances(raw, {"sequences": first, "max_occlusion": 1.0})) == 7
    one = ["fbi_4_mcs_2"]
    assert sailvos.instances(raw, {"sequences": one, "min_box_side": 500.0}) == []
    assert sailvos.instances(raw, {"sequences": one, "max_spread_mm": 200.0}) == []  # a person spreads ~ 480 mm
    assert {x.frame_index for x in sailvos.instances(raw, {"sequences": one, "frame_step": 2})} == {0, 2}
    only = sailvos.instances(raw, {"sequences": ["fbi_4_mcs_2"]})
    assert {x.sequence for x in only} == {"fbi_4_mcs_2"} and len(only) == 6


def test_posepiles_converted_tree_reads_the_same(raw, tmp_path):
    """posepile's main.sh converts the frames to JPEG (convert_to_jpeg.py) and the maps to .npz
    (compress_visibilities.py) in place: that tree converts to the same people."""
    conv = copy_raw(raw, tmp_path)
    for bmp in sorted(conv.glob("*/images/*.bmp")):
        cv2.imwrite(str(bmp.with_suffix(".jpg")), cv2.imread(str(bmp)), [cv2.IMWRITE_JPEG_QUALITY, 85])
        bmp.unlink()
    for npy in sorted(conv.glob("*/visible/*.npy")):
        np.savez_compressed(npy.with_suffix(".npz"), visible_ids=np.load(npy))
        npy.unlink()
    a, b = sailvos.instances(raw), sailvos.instances(conv)
    assert [x.source.replace(".bmp", ".jpg") for x in a] == [x.source for x in b]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.world_coords, y.world_coords)
        np.testing.assert_array_equal(x.bbox, y.bbox)
    x = b[0]
    frames = dict(sailvos.frame_source(conv)(x.source, [x.frame_index]))
    frames_bmp = dict(sailvos.frame_source(raw)(a[0].source, [x.frame_index]))
    np.testing.assert_array_equal(frames[x.frame_index].masks[12], frames_bmp[x.frame_index].masks[12])


def test_mask_is_the_union_of_the_visible_pedestrians(raw):
    source = sailvos.frame_source(raw)
    (i, frame), = source("tonya_mcs_1/images/000002.bmp", [2])
    visible = np.load(raw / "tonya_mcs_1/visible/000002.npy")
    assert i == 2 and frame.image.shape == (800, 1280, 3) and set(frame.masks) == {12, 31}
    np.testing.assert_array_equal(frame.masks[12], (visible == 12) | (visible == 31))
    np.testing.assert_array_equal(frame.masks[31], frame.masks[12])
    assert (visible == fixture.OCCLUDER_ID).any() and not frame.masks[12][visible == fixture.OCCLUDER_ID].any()


# ------------------------------------------------------------------------------------------- projection
def test_projection_onto_the_2d_points_marks_and_crops(raw, cache):
    _, marks = fixture.fixture_truth(raw)
    ids = sailvos.JOINT_INFO.ids
    file_err, mark_err, crop_err, shins = [], [], [], []
    images = {}
    cameras = {(x.subject, x.frame_index): x.camera for x in sailvos.instances(raw)}  # the converted raw cameras
    with Cache(cache) as c:
        assert c.split_counts()["train"] == 12
        for i in range(len(c)):
            ex = c[i]
            source, frame_index = c.blob("source_path", i).decode().split("#")
            seq, ped, frame_index = source.split("/")[0], ex.subject.split("/")[1], int(frame_index)
            wc = np.asarray(ex.world_coords, np.float64)
            uv = np.loadtxt(raw / seq / ped / f"{frame_index:06d}_2d.txt")
            projected = cameras[(ex.subject, frame_index)].project(wc)
            # onto the nanmean of each joint's 2D points in the _2d.txt
            file_err.extend(np.linalg.norm(projected - sailvos.joints2d_from_raw(uv), axis=1))
            np.testing.assert_allclose(sailvos.joints2d_from_raw(uv), marks[seq][frame_index][ped], atol=1e-6)
            if source not in images:
                images[source] = cv2.imread(str(raw / source))
            for p in projected[isolated(projected, 9)]:
                centroid = mark_centroid(images[source], p, 4)
                if centroid is not None:
                    mark_err.append(np.linalg.norm(centroid - p))
            crop = ex.decode_image()
            in_crop = ex.camera.project(wc)
            for p in in_crop[isolated(in_crop, 12)]:
                centroid = mark_centroid(crop, p, 4)
                if centroid is not None:
                    crop_err.append(np.linalg.norm(centroid - p))
            shins.append(np.linalg.norm(wc[ids["lkne"]] - wc[ids["lank"]]))
            np.testing.assert_allclose(ex.camera.world_up, [0, 0, 1])
            assert (wc[ids["neck"]] - wc[ids["pelv"]]) @ ex.camera.world_up > 450  # neck above the pelvis, mm
            assert (wc[ids["htop"]] - wc[ids["lank"]]) @ ex.camera.world_up > 1500
            mask = ex.decode_mask()
            assert mask is not None and mask.any()
    assert len(file_err) == 12 * 26 and max(file_err) < 0.01, max(file_err)  # the file's 2D points (max 2e-4 px)
    assert len(mark_err) > 150 and max(mark_err) < 1.0, max(mark_err)  # the marks in the .bmp frames
    assert len(crop_err) > 100 and max(crop_err) < 1.5, max(crop_err)  # through the crop cameras
    template = np.linalg.norm(fixture.TEMPLATE[ids["lkne"]] - fixture.TEMPLATE[ids["lank"]]) * 1000  # 430 mm
    np.testing.assert_allclose(shins, template, atol=5)  # mm (the raw points lie within 2 mm of the joints)


# ------------------------------------------------------------------------------------------- errors
def test_missing_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    (broken / "tonya_mcs_1" / A / "000001_3d.txt").unlink()
    (broken / "tonya_mcs_1" / "images/000002.bmp").unlink()
    (broken / "fbi_4_mcs_2" / "visible/000003.npy").unlink()
    with pytest.raises(RawLayoutError) as e:
        sailvos.check_layout(broken)
    assert e.value.missing == ["fbi_4_mcs_2/visible/000003.npy (or .npz)", f"tonya_mcs_1/{A}/000001_3d.txt",
                               "tonya_mcs_1/images/000002.bmp (or .jpg)"]
    with pytest.raises(RawLayoutError, match="missing nosuch/images/"):
        sailvos.instances(broken, {"sequences": ["nosuch"]})
    out = tmp_path / "out" / "sailvos"
    with pytest.raises(RawLayoutError):
        convert("sailvos", broken, out, None, progress=False)
    assert_no_output(out)


def test_bad_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    path = broken / "tonya_mcs_1" / B / "000003_2d.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:300]) + "\n")
    with pytest.raises(RawFileError, match="300 rows of 2 numbers, expected at least 343") as e:
        sailvos.instances(broken)
    assert e.value.path == path
    path.write_text("\n".join(path.read_text().splitlines()[:300] * 2) + "\n")
    with pytest.raises(RawFileError, match="600 points, but its _3d.txt has 343") as e:
        sailvos.instances(broken)
    path.write_text((raw / path.relative_to(broken)).read_text())
    vis = broken / "tonya_mcs_1/visible/000001.npy"
    np.savez_compressed(vis.with_suffix(".npz"), ids=np.load(vis))
    vis.unlink()
    with pytest.raises(RawFileError, match="no 'visible_ids' array") as e:
        sailvos.instances(broken)
    assert e.value.path == vis.with_suffix(".npz")
    vis.with_suffix(".npz").unlink()
    vis.write_bytes(b"not numpy")
    with pytest.raises(RawFileError, match="unreadable visibility map"):
        sailvos.instances(broken)
    np.save(vis, np.load(raw / "tonya_mcs_1/visible/000001.npy"))
    png = broken / "tonya_mcs_1" / A / "000001.png"
    png.write_bytes(png.read_bytes()[:40])
    with pytest.raises(RawFileError, match="unreadable mask image") as e:
        sailvos.instances(broken)
    assert e.value.path == png


def test_bad_params():
    for key, value in (("frame_step", 0), ("min_calib_points", 5), ("min_hfov_deg", 120.0),
                       ("max_occlusion", 1.5), ("sequences", ["a/b"]), ("max_spread_mm", 50.0),
                       ("motion_mm", -1.0)):
        with pytest.raises(ParamsError) as e:
            sailvos.check_params({key: value})
        assert e.value.where == f"datasets.sailvos.{key}"
