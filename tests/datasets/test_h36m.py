"""Human3.6M: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import logging

import cv2
import h5py
import numpy as np
import pytest
from cdflib.cdfwrite import CDF

from conftest import H36M_SMALL_PARAMS, sample
from helpers import assert_no_output, copy_raw
from marks import mark_errors
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, h36m
from posebank.datasets.base import Dropped
from posebank.datasets.h36m import alljoints, fixture
from posebank.datasets.sampling import MISSING_POSE
from posebank.imaging.video import read_video_frames
from posebank.pipeline.run import convert


def test_read_cameras_real_metadata():
    cams = h36m.read_cameras(sample("h36m/metadata.xml"))
    assert len(cams) == 44
    k = cams[(1, "54138969")].intrinsic_matrix
    assert k[0, 0] == pytest.approx(1145.05, abs=0.01) and k[1, 1] == pytest.approx(1143.78, abs=0.01)
    assert k[0, 2] == pytest.approx(512.54, abs=0.01) and k[1, 2] == pytest.approx(515.45, abs=0.01)
    for cam in cams.values():
        np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(cam.R) == pytest.approx(1.0, abs=1e-9)
        # cameras stand around the capture area, 1-2 m high, looking at it and upright
        assert 3000 < np.linalg.norm(cam.t[:2]) < 7000 and 500 < cam.t[2] < 2500
        assert cam.world_to_camera([0, 0, 1000])[2] > 0
        assert cam.R[1] @ [0, 0, 1] < -0.9
        assert cam.distortion_model == "h36m"


def test_fixture_round_trip_on_marks(h36m_raw, h36m_cache):
    cams = h36m.read_cameras(h36m_raw / "metadata.xml")
    raw_err, crop_err = [], []
    with Cache(h36m_cache) as cache:
        assert set(cache.categories("sequence")) == {"Directions 1", "Waiting 1", "Posing 1"}
        by_video = {}
        for i in range(len(cache)):
            source, frame_index = cache.blob("source_path", i).decode().split("#")
            by_video.setdefault(source, []).append((int(frame_index), i))
        for source, items in by_video.items():
            frames = dict(read_video_frames(h36m_raw / source, [f for f, _ in items]))
            for frame_index, i in items:
                ex = cache[i]
                cam = cams[(int(ex.subject[1:]), ex.camera_name)]
                raw_err.extend(mark_errors(frames[frame_index], cam.project(ex.world_coords), radius=7,
                                           min_distance=16))
                crop = ex.decode_image()
                assert ex.image_size == crop.shape[1::-1]
                crop_err.extend(mark_errors(crop, ex.camera.project(ex.world_coords), radius=5, min_distance=13))
    assert len(raw_err) > 500 and len(crop_err) > 300
    assert max(raw_err) < 1.0, max(raw_err)  # through the parsed raw cameras, on the video frames
    assert max(crop_err) < 1.5, max(crop_err)  # through the crop cameras, on the stored JPEG crops


def test_frame_selection_and_splits(h36m_cache):
    with Cache(h36m_cache) as cache:
        cols = cache.read()
        train = cols["split"] == 0
        assert set(cols["subject"][train]) == {"S1"} and set(cols["subject"][~train]) == {"S9"}
        assert np.all(cols["frame_index"][train] % 5 == 0)
        assert set(cols["frame_index"][~train]) == {0, 64}  # 70 frames, every 64th
        # 2 test sequences x 2 frames x 4 cameras
        assert (~train).sum() == 16
        assert cache.attrs["citation"].startswith("C. Ionescu")


def test_s9_correction_moves_poses_back_onto_the_video(h36m_raw, tmp_path):
    cams = h36m.read_cameras(h36m_raw / "metadata.xml")
    raw = h36m.read_poses(h36m_raw / "S9/MyPoseFeatures/D3_Positions/Waiting 1.cdf")
    corrected = h36m.corrected_poses(raw, 9, "Waiting 1", correct_s9=True)
    np.testing.assert_allclose(raw[..., 0] - corrected[..., 0], 200)
    np.testing.assert_array_equal(h36m.corrected_poses(raw, 9, "Posing 1", True), raw)
    cam = cams[(9, "54138969")]
    frame = dict(read_video_frames(h36m_raw / "S9/Videos/Waiting 1.54138969.mp4", [0]))[0]
    sel = list(h36m.SELECTED_JOINTS)
    assert max(mark_errors(frame, cam.project(corrected[0, sel]), 7, 16)) < 1.0
    # uncorrected, the joints miss their marks by far more than a pixel
    offsets = np.linalg.norm(cam.project(raw[0, sel]) - cam.project(corrected[0, sel]), axis=-1)
    assert offsets.min() > 20


@pytest.fixture
def broken_raw(h36m_raw, tmp_path):
    return copy_raw(h36m_raw, tmp_path)


def test_missing_cdf_is_named(broken_raw, tmp_path):
    (broken_raw / "S9/MyPoseFeatures/D3_Positions/Posing 1.cdf").unlink()
    (broken_raw / "S9/MyPoseFeatures/D3_Positions/Waiting 1.cdf").unlink()
    out = tmp_path / "out" / "h36m"
    with pytest.raises(RawLayoutError, match=r"incomplete at .*raw: missing S9/MyPoseFeatures/D3_Positions/\*\.cdf"):
        convert("h36m", broken_raw, out, H36M_SMALL_PARAMS, progress=False)
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_missing_video_is_named(broken_raw, tmp_path):
    (broken_raw / "S1/Videos/Directions 1.58860488.mp4").unlink()
    out = tmp_path / "h36m"
    with pytest.raises(RawLayoutError, match=r"missing S1/Videos/Directions 1\.58860488\.mp4"):
        convert("h36m", broken_raw, out, H36M_SMALL_PARAMS, progress=False)
    assert_no_output(out)


def test_metadata_without_w0_is_named(broken_raw, tmp_path):
    meta = broken_raw / "metadata.xml"
    meta.write_text('<?xml version="1.0"?>\n<a><train_subjects>[1]</train_subjects></a>\n')
    out = tmp_path / "h36m"
    with pytest.raises(RawFileError, match=r"metadata\.xml: no <w0> element"):
        convert("h36m", broken_raw, out, H36M_SMALL_PARAMS, progress=False)
    assert_no_output(out)


def test_bad_params_are_named(tmp_path):
    with pytest.raises(ParamsError, match=r"^datasets\.h36m\.test_subjects: subject 1 is also in train_subjects$"):
        convert("h36m", tmp_path, tmp_path / "x", {"test_subjects": [1, 9]}, progress=False)
    with pytest.raises(ParamsError, match=r"^datasets\.h36m\.cameras: "):
        h36m.instances(tmp_path, {"cameras": ["12345678"]})
    with pytest.raises(ParamsError, match=r"^datasets\.h36m\.train_subjects: \[12\] are not subject numbers"):
        h36m.splits({"train_subjects": [12]})
    with pytest.raises(ParamsError, match=r"^datasets\.h36m\.val_subjects: 3 is not a list"):
        h36m.splits({"val_subjects": 3})
    assert h36m.splits({"val_subjects": [5], "train_subjects": [1]}) == ("train", "val", "test")
    assert h36m.splits({"test_subjects": []}) == ("train",)
    assert_no_output(tmp_path / "x")


def write_poses(path, poses):
    path.unlink()
    cdf = CDF(str(path), cdf_spec={"Majority": "row_major", "Compressed": False})
    cdf.write_var({"Variable": "Pose", "Data_Type": 44, "Num_Elements": 1, "Rec_Vary": True, "Compress": 0,
                   "Dim_Sizes": [len(poses), h36m.N_RAW_JOINTS * 3]},
                  var_data=poses.reshape(1, len(poses), -1).astype(np.float32))
    cdf.close()


def test_frames_without_joints_are_dropped(broken_raw):
    before = h36m.instances(broken_raw, H36M_SMALL_PARAMS)
    for rel in ("S1/MyPoseFeatures/D3_Positions/Directions 1.cdf", "S9/MyPoseFeatures/D3_Positions/Posing 1.cdf"):
        poses = h36m.read_poses(broken_raw / rel).copy()
        poses[10:30] = np.nan  # training frames 10, 15, 20, 25 and no test frame
        poses[64] = np.nan  # a test frame (every 64th); not a training frame
        poses[40, :5] = np.nan  # some joints missing: still converted
        write_poses(broken_raw / rel, poses)
    dropped = []
    after = h36m.instances(broken_raw, H36M_SMALL_PARAMS, dropped)
    assert dropped == [Dropped("S1/MyPoseFeatures/D3_Positions/Directions 1.cdf", MISSING_POSE, 4),
                       Dropped("S9/MyPoseFeatures/D3_Positions/Posing 1.cdf#64", MISSING_POSE, 1)]
    assert not any(np.isnan(i.world_coords).all() for i in after)
    assert any(np.isnan(i.world_coords).any() for i in after if i.frame_index == 40)
    lost = {(i.source, i.frame_index) for i in before} - {(i.source, i.frame_index) for i in after}
    assert {(s.split("/")[0], f) for s, f in lost} >= {("S9", 64)}
    assert all(f in (10, 15, 20, 25, 64) or (f > 25 and s.startswith("S1/")) for s, f in lost), lost


def test_truncated_video_frames_are_quarantined(broken_raw, tmp_path):
    from posebank.imaging.video import write_video

    video = broken_raw / "S9/Videos/Posing 1.55011271.mp4"
    frames = [f for _, f in read_video_frames(video, range(10))]
    write_video(video, frames)  # only 10 of the 70 frames left: frame 64 is missing
    out = tmp_path / "h36m"
    convert("h36m", broken_raw, out, H36M_SMALL_PARAMS, progress=False)
    with Cache(out) as cache:
        q = cache.quarantine
        assert q == [{"path": "S9/Videos/Posing 1.55011271.mp4#64",
                      "reason": "frame beyond the end of the video (truncated or short video)"}]
        assert cache.split_counts()["test"] == 15


# ------------------------------------------------------------------------------------------- image sizes
def test_frame_size_comes_from_the_video_header(h36m_raw, tmp_path):
    assert not hasattr(h36m, "IMAGE_SIZES")  # the converter has no size table
    assert h36m.video_size(h36m_raw / "S1/Videos/Directions 1.55011271.mp4") == (1000, 1000)
    assert h36m.video_size(h36m_raw / "S1/Videos/Directions 1.54138969.mp4") == (1000, 1002)
    bad = tmp_path / "Posing 1.55011271.mp4"
    bad.write_bytes(bytes(range(256)) * 16)
    with pytest.raises(RawFileError, match=r"Posing 1\.55011271\.mp4: cannot open video"):
        h36m.video_size(bad)
    with pytest.raises(RawFileError, match=r"nothere\.mp4: video file not found"):
        h36m.video_size(tmp_path / "nothere.mp4")


def test_fixture_writes_s7_55011271_at_1000x1002(tmp_path):
    raw = h36m.make_fixture(tmp_path / "raw", seed=1, subjects=[7], n_frames=2, cameras=("55011271", "58860488"))
    assert h36m.video_size(raw / "S7/Videos/Greeting 1.55011271.mp4") == (1000, 1002)
    assert h36m.video_size(raw / "S7/Videos/Greeting 1.58860488.mp4") == (1000, 1000)
    (_, frame), = read_video_frames(raw / "S7/Videos/Greeting 1.55011271.mp4", [1])
    assert frame.shape == (1002, 1000, 3)
    with h5py.File(raw / "S7/MySegmentsMat/ground_truth_bb/Greeting 1.55011271.mat") as f:
        assert f[f["Masks"][0, 0]].shape == (1000, 1002)  # MATLAB's 1002 x 1000, stored transposed


# ------------------------------------------------------------------------------------------- boxes
def posepile_rectangles(path) -> np.ndarray:
    """The masks' rectangles read as posepile's extract_frames_and_boxes.py does (cv2.boundingRect, pixel
    corners), independently of posebank's reader."""
    with h5py.File(path, "r") as f:
        return np.array([cv2.boundingRect(np.array(f["#refs#"][ref]).T) for ref in f["Masks"][:, 0]], np.float64)


def box_iou(a, b) -> float:
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[:2] + a[2:], b[:2] + b[2:])
    inter = np.prod(np.clip(hi - lo, 0, None))
    return float(inter / (a[2] * a[3] + b[2] * b[3] - inter))


def test_boxes_are_the_mask_rectangles_and_s9_is_corrected(h36m_raw):
    cams = h36m.read_cameras(h36m_raw / "metadata.xml")
    insts = h36m.instances(h36m_raw, H36M_SMALL_PARAMS)
    assert all(i.bbox is not None for i in insts)
    rects, n_shifted, ious = {}, 0, []
    for inst in insts:
        subj, cam = int(inst.subject[1:]), inst.camera_name
        rel = h36m.box_mask_relpath(subj, inst.sequence, cam)
        if rel not in rects:
            rects[rel] = posepile_rectangles(h36m_raw / rel)
        x, y, w, h = rects[rel][inst.frame_index]
        rect = np.array([x - 0.5, y - 0.5, w, h])  # posebank's pixel centres at integers
        if inst.sequence != "Waiting 1":
            np.testing.assert_array_equal(inst.bbox, rect)
            continue
        # S9 Waiting 1: the release's box, made from the shifted poses, moved back as posepile does
        n_shifted += 1
        camera = cams[(subj, cam)]
        pelvis = inst.world_coords[h36m.JOINT_INFO.ids["pelv"]]
        depth = camera.world_to_camera(pelvis)[2]
        corners = camera.image_to_world([[rect[0], rect[1]], [rect[0] + w, rect[1] + h]], depth) - [200, 0, 0]
        (x0, y0), (x1, y1) = camera.project(corners)
        np.testing.assert_allclose(inst.bbox, [x0, y0, x1 - x0, y1 - y0], atol=1e-6)
        # and it now frames the person of the video: the box the fixture would draw around the true joints
        c0, r0, c1, r1 = fixture.box_mask_pixels(camera.project(inst.world_coords), (1000, 1002))
        true_box = np.array([c0 - 0.5, r0 - 0.5, c1 - c0 + 1, r1 - r0 + 1])
        ious.append((box_iou(inst.bbox, true_box), box_iou(rect, true_box)))
    # the correction (a shift at the pelvis depth) puts the boxes back on the person; uncorrected they miss it
    assert n_shifted == 2 * 4
    # (measured: corrected IoU 0.86-0.99 with the true box, mean 0.95; uncorrected 0.06-0.72)
    assert all(fixed > 0.85 and fixed > kept + 0.2 for fixed, kept in ious), ious
    assert np.mean([fixed for fixed, _ in ious]) > 0.93
    # without the correction the rectangles are kept as they are
    raw_boxes = {(i.source, i.frame_index): i.bbox for i in h36m.instances(
        h36m_raw, {**H36M_SMALL_PARAMS, "correct_s9": False}) if i.sequence == "Waiting 1"}
    for (source, frame), box in raw_boxes.items():
        x, y, w, h = rects[h36m.box_mask_relpath(9, "Waiting 1", source.split(".")[-2])][frame]
        np.testing.assert_array_equal(box, [x - 0.5, y - 0.5, w, h])


def test_fixture_boxes_frame_the_projected_joints(h36m_raw):
    insts = [i for i in h36m.instances(h36m_raw, H36M_SMALL_PARAMS) if i.sequence != "Waiting 1"]  # unshifted
    projected = [np.ptp(i.camera.project(i.world_coords), axis=0) for i in insts]
    ratios = np.array([b.bbox[2:] / p for b, p in zip(insts, projected)])
    assert np.all((ratios > 1.1) & (ratios < 1.3))  # the fixture's boxes: tight box x 1.2, whole pixels


def test_missing_masks_fall_back_to_projected_boxes_in_one_log_line(broken_raw, caplog):
    folder = broken_raw / "S1" / h36m.BOX_MASK_FOLDER
    for path in sorted(folder.glob("*.mat"))[:3]:
        path.unlink()
    with caplog.at_level(logging.WARNING, logger="posebank.datasets.h36m"):
        insts = h36m.instances(broken_raw, H36M_SMALL_PARAMS)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 1, lines
    assert lines[0].startswith("h36m: 3 of 12 videos have no MySegmentsMat/ground_truth_bb file (e.g. S1/")
    assert lines[0].endswith("their boxes come from the projected joints")
    s1 = [i for i in insts if i.subject == "S1"]
    assert sum(i.bbox is None for i in s1) == 3 * len(s1) // 4 and all(i.bbox is not None for i in insts
                                                                           if i.subject == "S9")
    # without any mask file: still one line per conversion
    for path in broken_raw.glob(f"S*/{h36m.BOX_MASK_FOLDER}/*.mat"):
        path.unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="posebank.datasets.h36m"):
        assert all(i.bbox is None for i in h36m.instances(broken_raw, H36M_SMALL_PARAMS))
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("h36m: 12 of 12 videos have no MySegmentsMat/ground_truth_bb file")


def test_short_and_empty_masks_fall_back(broken_raw, caplog):
    rel = h36m.box_mask_relpath(1, "Directions 1", "54138969")
    rects = [(10, 10, 50, 80)] * 30  # only 30 masks for 70 frames
    rects[15] = None  # an empty mask
    fixture.write_box_masks(broken_raw / rel, rects, (1000, 1002))
    with caplog.at_level(logging.WARNING, logger="posebank.datasets.h36m"):
        insts = h36m.instances(broken_raw, H36M_SMALL_PARAMS)
    boxes = {i.frame_index: i.bbox for i in insts if i.source == "S1/Videos/Directions 1.54138969.mp4"}
    assert boxes[15] is None and all(boxes[f] is None for f in boxes if f >= 30)
    assert all(np.array_equal(boxes[f], [9.5, 9.5, 41, 71]) for f in boxes if f < 30 and f != 15)
    lines = sorted(r.getMessage() for r in caplog.records)
    n_beyond = sum(f >= 30 for f in boxes)
    assert lines == [f"h36m: 1 selected frames with an empty mask (e.g. {rel}#15); their boxes come from the "
                     "projected joints",
                     f"h36m: {n_beyond} selected frames past the last mask of their file (e.g. {rel}#30); their "
                     "boxes come from the projected joints"]


def test_masks_of_another_size_are_reported_and_used(broken_raw, caplog):
    rel = h36m.box_mask_relpath(9, "Posing 1", "55011271")
    fixture.write_box_masks(broken_raw / rel, [(100, 200, 300, 400)] * 70, (1000, 1002))  # video: 1000 x 1000
    with caplog.at_level(logging.WARNING, logger="posebank.datasets.h36m"):
        insts = h36m.instances(broken_raw, H36M_SMALL_PARAMS)
    assert [r.getMessage() for r in caplog.records] == [
        f"h36m: 1 MySegmentsMat/ground_truth_bb files hold masks of another size than their video's frames (e.g. "
        f"{rel}: 1000 x 1002, video 1000 x 1000); their boxes are used as they are"]
    assert all(np.array_equal(i.bbox, [99.5, 199.5, 201, 201]) for i in insts
               if i.source == "S9/Videos/Posing 1.55011271.mp4")


def test_unreadable_mask_file_is_named(broken_raw, tmp_path):
    path = broken_raw / h36m.box_mask_relpath(9, "Posing 1", "58860488")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    out = tmp_path / "h36m"
    with pytest.raises(RawFileError) as e:
        convert("h36m", broken_raw, out, H36M_SMALL_PARAMS, progress=False)
    assert e.value.where == str(path) and "unreadable ground_truth_bb mask file" in e.value.problem
    assert_no_output(out)
    with h5py.File(path, "w") as f:
        f["Other"] = np.zeros(3)
    with pytest.raises(RawFileError, match=r"58860488\.mat: no 'Masks' variable \(has \['Other'\]\)"):
        h36m.instances(broken_raw, H36M_SMALL_PARAMS)


def test_a_video_that_does_not_open_is_named_at_conversion(broken_raw, tmp_path):
    video = broken_raw / "S9/Videos/Posing 1.60457274.mp4"
    video.write_bytes(b"")
    with pytest.raises(RawFileError, match=r"Posing 1\.60457274\.mp4: cannot open video"):
        convert("h36m", broken_raw, tmp_path / "h36m", H36M_SMALL_PARAMS, progress=False)


# ------------------------------------------------------------------------------------------- h36m_alljoints
def test_alljoints_has_posepiles_25_joints():
    assert alljoints.JOINT_INFO.names == tuple(
        "rhip,rkne,rank,rfoo,rtoe,lhip,lkne,lank,lfoo,ltoe,spin,neck,head,htop,"
        "lsho,lelb,lwri,lthu,lfin,rsho,relb,rwri,rthu,rfin,pelv".split(","))
    assert sorted([*alljoints.ALL_JOINTS, *alljoints.DUPLICATES]) == list(range(h36m.N_RAW_JOINTS))
    assert set(alljoints.DUPLICATES.values()) <= set(alljoints.ALL_JOINTS)
    # every 17-joint release joint is there (h36m's "tors", release joint 12, is posepile's "spin" here)
    assert set(h36m.SELECTED_JOINTS) <= set(alljoints.ALL_JOINTS)
    assert len(alljoints.JOINT_INFO.edges) == 24  # a tree over the 25 joints
    assert alljoints.DEFAULT_PARAMS == h36m.DEFAULT_PARAMS and alljoints.make_fixture is h36m.make_fixture


def test_alljoints_converts_the_same_frames_with_all_joints(h36m_raw, caplog):
    base = h36m.instances(h36m_raw, H36M_SMALL_PARAMS)
    with caplog.at_level(logging.INFO, logger="posebank.datasets.h36m.alljoints"):
        full = alljoints.instances(h36m_raw, H36M_SMALL_PARAMS)
    assert [(i.source, i.frame_index, i.split, i.camera_name) for i in full] == [
        (i.source, i.frame_index, i.split, i.camera_name) for i in base]
    position = {raw: k for k, raw in enumerate(alljoints.ALL_JOINTS)}
    for a, b in zip(base, full):
        assert b.world_coords.shape == (25, 3)
        np.testing.assert_array_equal(b.world_coords[[position[j] for j in h36m.SELECTED_JOINTS]], a.world_coords)
        np.testing.assert_array_equal(a.bbox, b.bbox)
    # the release joints themselves, S9-corrected
    raw = h36m.read_poses(h36m_raw / "S9/MyPoseFeatures/D3_Positions/Waiting 1.cdf")
    (first,) = [i for i in full if i.sequence == "Waiting 1" and i.frame_index == 64][:1]
    np.testing.assert_allclose(first.world_coords, raw[64, list(alljoints.ALL_JOINTS)] - [200, 0, 0])
    (line,) = [r.getMessage() for r in caplog.records if r.name.endswith("alljoints")]
    assert "11 (of 0) 0.0 mm" in line and "31 (of 30) 0.0 mm" in line
    with pytest.raises(ParamsError, match=r"^datasets\.h36m_alljoints\.cameras: "):
        alljoints.instances(h36m_raw, {"cameras": ["1"]})
