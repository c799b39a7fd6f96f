"""SURREAL: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from conftest import sample
from helpers import assert_no_output, copy_raw
from marks import mark_errors
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, surreal
from posebank.datasets.base import Dropped
from posebank.imaging.video import read_video_frames
from posebank.pipeline.run import convert

REAL_INFO = "surreal/01_01_c0001_info.mat"
N_FRAMES = 24
# one run per split keeps the fixture small; the tree itself holds run0 only
SMALL_PARAMS = {"runs": [0]}


def chirality(world_smpl_order: np.ndarray) -> np.ndarray:
    """+1 where the body's left joints lie on its left given its up (pelvis->neck) and forward (ankle->toe)
    directions in a right-handed frame, -1 for a mirror-image body."""
    ix = {n: i for i, n in enumerate(surreal.SMPL_JOINT_NAMES)}
    j = world_smpl_order
    up = j[:, ix["neck"]] - j[:, ix["pelv"]]
    forward = j[:, ix["ltoe"]] - j[:, ix["lank"]] + j[:, ix["rtoe"]] - j[:, ix["rank"]]
    left = j[:, ix["lhip"]] - j[:, ix["rhip"]] + j[:, ix["lsho"]] - j[:, ix["rsho"]]
    return np.sign(np.einsum("ij,ij->i", left, np.cross(up, forward)))


def to_smpl_order(coords: np.ndarray) -> np.ndarray:
    out = np.empty_like(coords)
    out[..., surreal.SELECTED_JOINTS, :] = coords
    return out


@pytest.fixture(scope="module")
def surreal_raw(tmp_path_factory) -> Path:
    return surreal.make_fixture(tmp_path_factory.mktemp("surreal_raw"), seed=5, n_frames=N_FRAMES, runs=(0,))


@pytest.fixture(scope="module")
def surreal_cache(surreal_raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("surreal_cache") / "surreal"
    convert("surreal", surreal_raw, out, SMALL_PARAMS, progress=False)
    return out


# ------------------------------------------------------------------------------------------- real sample
def test_real_sample_reprojects_onto_joints2d():
    path = sample(REAL_INFO)
    world, cam = surreal.read_info(path)
    joints2d = scipy.io.loadmat(path)["joints2D"].transpose(2, 1, 0).astype(np.float64)
    assert world.shape == (100, 24, 3) == joints2d.shape[:2] + (3,)
    err = np.linalg.norm(cam.project(world) - joints2d, axis=-1)
    assert err.max() < 1.0, err.max()  # joints2D are rounded to whole pixels: at most sqrt(2)/2 off
    # millimetres, the body stands on y = 0 with the head towards -y, 6-8 m in front of the camera
    assert -1800 < world[:, 15, 1].mean() < -1400
    assert abs(np.median(world[:, 10:12, 1])) < 50  # toes
    depth = cam.world_to_camera(world)[..., 2]
    assert 5000 < depth.min() and depth.max() < 9000
    np.testing.assert_allclose(cam.world_up, [0, -1, 0])


def test_real_sample_handedness_and_flip():
    world, cam = surreal.read_info(sample(REAL_INFO))
    joints2d = scipy.io.loadmat(sample(REAL_INFO))["joints2D"].transpose(2, 1, 0).astype(np.float64)
    # the released 3D joints are a correct (not mirrored) body ...
    assert np.all(chirality(world) == 1)
    # ... and the stored frames are a mirror image of them: the stored camera is a reflection
    assert np.linalg.det(cam.R) == pytest.approx(-1.0)
    # the flipped camera is a rotation and projects where the flipped frame shows the joints
    flipped = surreal.flipped_camera(cam)
    assert np.linalg.det(flipped.R) == pytest.approx(1.0)
    np.testing.assert_allclose(flipped.R @ flipped.R.T, np.eye(3), atol=1e-12)
    assert flipped.intrinsic_matrix[0, 2] == 159 and flipped.intrinsic_matrix[1, 2] == 120
    mirrored = flipped.project(world)
    mirrored[..., 0] = 319 - mirrored[..., 0]
    assert np.linalg.norm(mirrored - joints2d, axis=-1).max() < 1.0


def test_fixture_info_has_the_real_variables(surreal_raw):
    real = scipy.io.loadmat(sample(REAL_INFO))
    info = next((surreal_raw / "cmu/train/run0").glob("*/*_info.mat"))
    fake = scipy.io.loadmat(info)
    names = sorted(k for k in real if not k.startswith("__"))
    assert sorted(k for k in fake if not k.startswith("__")) == names
    t_real = real["joints3D"].shape[-1]
    for name in names:
        if real[name].dtype.kind == "U":  # MATLAB char arrays: the text's length differs
            assert fake[name].dtype.kind == "U" and fake[name].shape == real[name].shape, name
        else:
            expected = tuple(N_FRAMES if d == t_real else d for d in real[name].shape)
            assert (fake[name].dtype, fake[name].shape) == (real[name].dtype, expected), name
    assert type(fake["bg"][0, 0]) is type(real["bg"][0, 0]) and fake["bg"][0, 0].dtype.kind == "U"
    assert str(fake["sequence"][0]) == info.name[: -len("_info.mat")]
    world, cam = surreal.read_info(info)
    err = np.linalg.norm(cam.project(world) - fake["joints2D"].transpose(2, 1, 0), axis=-1)
    assert err.max() < 1.0


# ------------------------------------------------------------------------------------------- conversion
def test_fixture_round_trip_on_marks(surreal_raw, surreal_cache):
    raw_err, crop_err, masks = [], [], 0
    with Cache(surreal_cache) as cache:
        n_examples = len(cache)
        by_video = {}
        for i in range(len(cache)):
            source, frame_index = cache.blob("source_path", i).decode().split("#")
            by_video.setdefault(source, []).append((int(frame_index), i))
        for source, items in by_video.items():
            _, stored_cam = surreal.read_info(surreal_raw / source.replace(".mp4", "_info.mat"))
            cam = surreal.flipped_camera(stored_cam)
            frames = dict(read_video_frames(surreal_raw / source, [f for f, _ in items]))
            for frame_index, i in items:
                ex = cache[i]
                assert np.linalg.det(ex.camera.R) == pytest.approx(1.0, abs=1e-5)
                # the stored examples show the flipped frames: marks of the flipped raw frame ...
                raw_err.extend(mark_errors(frames[frame_index][:, ::-1], cam.project(ex.world_coords), radius=4,
                                           min_distance=9))
                # ... and of the crop, through the crop camera
                crop = ex.decode_image()
                crop_err.extend(mark_errors(crop, ex.camera.project(ex.world_coords), radius=5, min_distance=11))
                mask = ex.decode_mask()
                assert mask is not None and mask.shape == crop.shape[:2]
                # the mask covers the grey figure and the marks on it
                body = crop.mean(-1) > 80
                iou = (body & mask).sum() / (body | mask).sum()
                assert iou > 0.85, iou
                masks += 1
    assert len(raw_err) > 300 and len(crop_err) > 300, (len(raw_err), len(crop_err))
    assert max(raw_err) < 1.0, max(raw_err)
    assert max(crop_err) < 1.5, max(crop_err)
    assert masks == n_examples


def test_world_coords_are_the_released_joints_and_right_handed(surreal_raw, surreal_cache):
    with Cache(surreal_cache) as cache:
        cols = cache.read()
        assert list(cache.joint_info.names) == [surreal.SMPL_JOINT_NAMES[i] for i in surreal.SELECTED_JOINTS]
        assert cache.joint_info.names[-1] == "pelv"
        for i in range(len(cache)):
            ex = cache[i]
            source, frame_index = ex.source_path.split("#")
            world, _ = surreal.read_info(surreal_raw / source.replace(".mp4", "_info.mat"))
            np.testing.assert_allclose(ex.world_coords, world[int(frame_index), list(surreal.SELECTED_JOINTS)],
                                       atol=1e-3)
        # a correct body seen by proper rotations: the crops are not mirror images
        assert np.all(chirality(to_smpl_order(cols["world_coords"].astype(np.float64))) == 1)
        np.testing.assert_allclose(cols["camera/world_up"], np.tile([0, -1, 0], (len(cache), 1)))


def test_frame_selection_and_splits(surreal_raw, surreal_cache):
    instances = surreal.instances(surreal_raw, SMALL_PARAMS)
    with Cache(surreal_cache) as cache:
        assert len(cache) == len(instances)
        counts = cache.split_counts()
        assert all(counts[s] > 0 for s in ("train", "val", "test"))
        assert cache.attrs["citation"].startswith("G. Varol")
        assert all(s.startswith("run0/") for s in cache.categories("sequence"))
    # adaptive sampling keeps a frame once some joint moved 100 mm: fewer than all, first frame always
    assert 3 * 2 < len(instances) < 3 * N_FRAMES
    assert all(inst.frame_index in range(N_FRAMES) for inst in instances)
    assert {inst.frame_index for inst in instances} >= {0}
    everything = surreal.instances(surreal_raw, {**SMALL_PARAMS, "adaptive_sampling_mm": 0, "splits": ["val"]})
    assert [i.frame_index for i in everything] == list(range(N_FRAMES))
    stepped = surreal.instances(surreal_raw, {**SMALL_PARAMS, "adaptive_sampling_mm": 0, "frame_step": 5,
                                              "splits": ["val"], "box_from_mask": False})
    assert [i.frame_index for i in stepped] == [0, 5, 10, 15, 20] and all(i.bbox is None for i in stepped)


def test_box_from_mask_and_empty_masks_skipped(surreal_raw, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(surreal_raw, raw)
    segm_path = next((raw / "cmu/val/run0").glob("*/*_segm.mat"))
    segm = scipy.io.loadmat(segm_path)
    params = {**SMALL_PARAMS, "splits": ["val"], "adaptive_sampling_mm": 0}
    before = surreal.instances(raw, params)
    box = before[3].bbox
    m = segm["segm_4"][:, ::-1] > 0
    ys, xs = np.nonzero(m)
    np.testing.assert_allclose(box, [xs.min() - 0.5, ys.min() - 0.5, np.ptp(xs) + 1, np.ptp(ys) + 1])
    segm["segm_4"][:] = 0  # the person left the view in frame 3
    scipy.io.savemat(segm_path, {k: v for k, v in segm.items() if k.startswith("segm_")}, do_compression=True)
    dropped = []
    after = surreal.instances(raw, params, dropped)
    assert [i.frame_index for i in after] == [i for i in range(N_FRAMES) if i != 3]
    video = segm_path.relative_to(raw).as_posix().replace("_segm.mat", ".mp4")
    assert dropped == [Dropped(f"{video}#3", surreal.NO_PERSON_PIXELS, 1)]


def test_clips_and_frames_without_joints_are_dropped(broken_raw):
    info = clip_file(broken_raw, "val", "_info.mat")
    joints = scipy.io.loadmat(info)["joints3D"].copy()
    joints[:, :, 5:8] = np.nan  # frames 5, 6, 7: no joint
    rewrite_info(info, joints3D=joints)
    empty = clip_file(broken_raw, "test", "_info.mat")
    rewrite_info(empty, joints3D=np.zeros((3, 24, 0), np.float32))
    dropped = []
    insts = surreal.instances(broken_raw, {**SMALL_PARAMS, "adaptive_sampling_mm": 0}, dropped)
    rel = info.relative_to(broken_raw).as_posix()
    assert dropped == [Dropped(rel, "every joint is missing (NaN) in the annotation", 3),
                       Dropped(empty.relative_to(broken_raw).as_posix(), surreal.NO_FRAMES, 0)]
    val = [i.frame_index for i in insts if i.split == "val"]
    assert val == [i for i in range(N_FRAMES) if i not in (5, 6, 7)]
    assert not [i for i in insts if i.split == "test"]


def test_default_params_convert_every_run(builds):
    """The conformance fixture (default make_fixture: every split and run) converted with the default params."""
    with Cache(builds.converted("surreal").cache) as cache:
        assert {s.split("/")[0] for s in cache.categories("sequence")} == {"run0", "run1", "run2"}


def test_root_may_hold_the_splits_directly(surreal_raw, tmp_path):
    raw = tmp_path / "surreal"
    shutil.copytree(surreal_raw / "cmu", raw)
    insts = surreal.instances(raw, {**SMALL_PARAMS, "splits": ["test"]})
    assert insts and all(i.source.startswith("test/run0/") for i in insts)


# ------------------------------------------------------------------------------------------- errors
@pytest.fixture
def broken_raw(surreal_raw, tmp_path):
    return copy_raw(surreal_raw, tmp_path)


def clip_file(raw: Path, split: str, suffix: str) -> Path:
    return next((raw / f"cmu/{split}/run0").glob(f"*/*{suffix}"))


@pytest.mark.parametrize("suffix", ["_segm.mat", ".mp4", "_info.mat"])
def test_missing_clip_file_is_named(broken_raw, tmp_path, suffix):
    path = clip_file(broken_raw, "test", suffix)
    path.unlink()
    out = tmp_path / "out" / "surreal"
    rel = path.relative_to(broken_raw).as_posix()
    with pytest.raises(RawLayoutError, match=rf"incomplete at .*raw: missing {rel.replace('.', r'[.]')}"):
        convert("surreal", broken_raw, out, SMALL_PARAMS, progress=False)
    assert_no_output(out)


def test_missing_run_and_empty_root_are_named(broken_raw, tmp_path):
    out = tmp_path / "surreal"
    with pytest.raises(RawLayoutError, match=r"missing cmu/train/run1/, cmu/val/run1/"):
        convert("surreal", broken_raw, out, {"runs": [0, 1]}, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RawLayoutError, match=r"missing cmu/ \(the folder holding train/ val/ test/\)"):
        convert("surreal", tmp_path / "empty", out, progress=False)
    assert_no_output(out)


def test_bad_params_are_named(broken_raw, tmp_path):
    out = tmp_path / "surreal"
    with pytest.raises(ParamsError, match=r"^datasets\.surreal\.splits: must be distinct splits of train, val, test"):
        convert("surreal", broken_raw, out, {"splits": ["training"]}, progress=False)
    with pytest.raises(ParamsError, match=r"^datasets\.surreal\.runs: must be distinct non-negative integers"):
        surreal.instances(broken_raw, {"runs": [-1]})
    assert surreal.splits({"splits": ["test", "train"]}) == ("train", "test")
    assert_no_output(out)


def rewrite_info(path: Path, **changes):
    info = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    info.update(changes)
    scipy.io.savemat(path, info, do_compression=True, oned_as="column")


def test_wrong_joint_array_shape_is_named(broken_raw, tmp_path):
    path = clip_file(broken_raw, "val", "_info.mat")
    joints = scipy.io.loadmat(path)["joints3D"]
    rewrite_info(path, joints3D=joints[:, :23])
    out = tmp_path / "surreal"
    with pytest.raises(RawFileError, match=rf"{path.name}: 'joints3D' has shape \(3, 23, {N_FRAMES}\)"):
        convert("surreal", broken_raw, out, SMALL_PARAMS, progress=False)
    assert_no_output(out)


def test_nan_camera_is_named(broken_raw, tmp_path):
    path = clip_file(broken_raw, "train", "_info.mat")
    rewrite_info(path, camLoc=np.array([[np.nan], [-1.0], [-2.0]], np.float32))
    out = tmp_path / "surreal"
    with pytest.raises(RawFileError, match=rf"{path.name}: camera has non-finite t"):
        convert("surreal", broken_raw, out, SMALL_PARAMS, progress=False)
    assert_no_output(out)


def test_missing_segm_frame_is_named(broken_raw, tmp_path):
    out = tmp_path / "surreal"
    segm = clip_file(broken_raw, "test", "_segm.mat")
    frames = scipy.io.loadmat(segm)
    scipy.io.savemat(segm, {k: v for k, v in frames.items() if k.startswith("segm_") and k != "segm_1"},
                     do_compression=True)
    with pytest.raises(RawFileError, match=rf"{segm.name}: no 'segm_1' variable \(has \['segm_10', "):
        convert("surreal", broken_raw, out, SMALL_PARAMS, progress=False)
    assert_no_output(out)


def test_truncated_video_frames_are_quarantined(broken_raw, tmp_path):
    from posebank.imaging.video import write_video

    video = clip_file(broken_raw, "val", ".mp4")
    frames = [f for _, f in read_video_frames(video, range(5))]
    write_video(video, frames, fps=30)
    out = tmp_path / "surreal"
    convert("surreal", broken_raw, out, SMALL_PARAMS, progress=False)
    rel = video.relative_to(broken_raw).as_posix()
    expected = [i.frame_index for i in surreal.instances(broken_raw, SMALL_PARAMS)
                if i.source == rel and i.frame_index >= 5]
    with Cache(out) as cache:
        assert [q["path"] for q in cache.quarantine] == [f"{rel}#{i}" for i in expected]
        assert expected


def test_wrong_video_size_is_named(broken_raw, tmp_path):
    import cv2

    from posebank.imaging.video import write_video

    video = clip_file(broken_raw, "test", ".mp4")
    frames = [cv2.resize(f, (640, 480)) for _, f in read_video_frames(video, range(N_FRAMES))]
    write_video(video, frames, fps=30)
    out = tmp_path / "surreal"
    with pytest.raises(RawFileError, match=rf"{video.name}: frames are 640x480, expected 320x240"):
        convert("surreal", broken_raw, out, SMALL_PARAMS, progress=False)
    assert_no_output(out)


def test_single_frame_clip(broken_raw):
    path = clip_file(broken_raw, "val", "_info.mat")
    joints = scipy.io.loadmat(path)["joints3D"]
    rewrite_info(path, joints3D=joints[:, :, 0])  # MATLAB drops the trailing singleton dimension
    assert scipy.io.loadmat(path)["joints3D"].shape == (3, 24)
    world, _ = surreal.read_info(path)
    np.testing.assert_allclose(world[0], joints[:, :, 0].T * 1000, rtol=1e-6)
    insts = surreal.instances(broken_raw, {**SMALL_PARAMS, "splits": ["val"]})
    assert [i.frame_index for i in insts] == [0]
