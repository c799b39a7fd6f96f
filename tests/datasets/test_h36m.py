"""Human3.6M: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

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
    out = tmp_path / "out" / "h36m.h5"
    with pytest.raises(RawLayoutError, match=r"incomplete at .*raw: missing S9/MyPoseFeatures/D3_Positions/\*\.cdf"):
        convert("h36m", broken_raw, out, H36M_SMALL_PARAMS, progress=False)
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_missing_video_is_named(broken_raw, tmp_path):
    (broken_raw / "S1/Videos/Directions 1.58860488.mp4").unlink()
    out = tmp_path / "h36m.h5"
    with pytest.raises(RawLayoutError, match=r"missing S1/Videos/Directions 1\.58860488\.mp4"):
        convert("h36m", broken_raw, out, H36M_SMALL_PARAMS, progress=False)
    assert_no_output(out)


def test_metadata_without_w0_is_named(broken_raw, tmp_path):
    meta = broken_raw / "metadata.xml"
    meta.write_text('<?xml version="1.0"?>\n<a><train_subjects>[1]</train_subjects></a>\n')
    out = tmp_path / "h36m.h5"
    with pytest.raises(RawFileError, match=r"metadata\.xml: no <w0> element"):
        convert("h36m", broken_raw, out, H36M_SMALL_PARAMS, progress=False)
    assert_no_output(out)


def test_bad_params_are_named(tmp_path):
    with pytest.raises(ParamsError, match=r"^datasets\.h36m\.test_subjects: subject 1 is also in train_subjects$"):
        convert("h36m", tmp_path, tmp_path / "x.h5", {"test_subjects": [1, 9]}, progress=False)
    with pytest.raises(ParamsError, match=r"^datasets\.h36m\.cameras: "):
        h36m.instances(tmp_path, {"cameras": ["12345678"]})
    with pytest.raises(ParamsError, match=r"^datasets\.h36m\.train_subjects: \[12\] are not subject numbers"):
        h36m.splits({"train_subjects": [12]})
    with pytest.raises(ParamsError, match=r"^datasets\.h36m\.val_subjects: 3 is not a list"):
        h36m.splits({"val_subjects": 3})
    assert h36m.splits({"val_subjects": [5], "train_subjects": [1]}) == ("train", "val", "test")
    assert h36m.splits({"test_subjects": []}) == ("train",)
    assert_no_output(tmp_path / "x.h5")


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
    out = tmp_path / "h36m.h5"
    convert("h36m", broken_raw, out, H36M_SMALL_PARAMS, progress=False)
    with Cache(out) as cache:
        q = cache.quarantine
        assert q == [{"path": "S9/Videos/Posing 1.55011271.mp4#64",
                      "reason": "frame beyond the end of the video (truncated or short video)"}]
        assert cache.split_counts()["test"] == 15
