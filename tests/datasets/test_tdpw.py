"""3DPW: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import os
import pickle
import pickletools
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import sample
from helpers import assert_no_output, copy_raw
from marks import mark_errors
from posebank.core.bodymodel import to_camera
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, tdpw
from posebank.datasets.base import Dropped
from posebank.datasets.tdpw.fixture import fixture_truth, py2_dumps
from posebank.pipeline.run import convert

REAL_FRAME = "tdpw/courtyard_rangeOfMotions_00_image_00311.jpg"
N_FRAMES = 10
NOISE_PX = 2.0
# the keys of a release sequence file (3DPW README; posepile ds/tdpw, SPIN and mmhuman3d pw3d.py read a subset)
RELEASE_KEYS = {"sequence", "betas", "poses", "trans", "poses_60Hz", "trans_60Hz", "betas_clothed",
                "v_template_clothed", "genders", "texture_maps", "poses2d", "jointPositions", "img_frame_ids",
                "cam_poses", "campose_valid", "cam_intrinsics"}
SEQ_FILES = {"train": "sequenceFiles/train/courtyard_arguing_00.pkl",
             "val": "sequenceFiles/validation/courtyard_drinking_00.pkl",
             "test": "sequenceFiles/test/downtown_walking_00.pkl"}


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.fixture(scope="module")
def tdpw_raw(tmp_path_factory) -> Path:
    return tdpw.make_fixture(tmp_path_factory.mktemp("tdpw_raw"), seed=4, n_frames=N_FRAMES, noise_px=NOISE_PX)


@pytest.fixture(scope="module")
def tdpw_cache(tdpw_raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tdpw_cache") / "tdpw"
    convert("tdpw", tdpw_raw, out, progress=False)
    return out


def plain(path: Path) -> dict:
    """A fixture sequence file read with the plain unpickler (the fixture is ours: no need to restrict it)."""
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def rewrite(path: Path, **changes) -> None:
    data = plain(path)
    data.update(changes)
    path.write_bytes(py2_dumps(data))


# ------------------------------------------------------------------------------------------- real sample
def test_real_frame_is_a_full_size_portrait_frame(tmp_path):
    path = sample(REAL_FRAME)
    assert tdpw.frame_size(path) == (1080, 1920)
    phone = np.array([[1961.0, 0, 540.0], [0, 1969.0, 960.0], [0, 0, 1]])
    assert tdpw.check_frame(path, phone) == (1080, 1920)
    small = tmp_path / "image_00311.jpg"
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(path)), (540, 960)))
    with pytest.raises(RawFileError, match=r"image_00311\.jpg: frame is 540x960, but 3DPW frames are 1920x1080"):
        tdpw.check_frame(small, phone)
    landscape = phone.copy()
    landscape[:2, 2] = (960.0, 540.0)
    with pytest.raises(RawFileError, match=r"point \(960\.0, 540\.0\) is far from the centre of the 1080x1920"):
        tdpw.check_frame(path, landscape)


# ------------------------------------------------------------------------------------------- the files
def test_fixture_files_are_python2_pickles_with_the_release_keys(tdpw_raw):
    for rel in SEQ_FILES.values():
        raw = (tdpw_raw / rel).read_bytes()
        assert raw[:2] == b"\x80\x02"
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(raw)]
        names = {name for name, _ in ops}
        # Python 2 byte strings (decoded as latin-1), never Python 3 unicode opcodes
        assert {"SHORT_BINSTRING", "BINSTRING"} <= names and not names & {"BINUNICODE", "SHORT_BINUNICODE"}
        assert {arg for name, arg in ops if name == "GLOBAL"} == {
            "numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
        ours, theirs = tdpw.load_pickle(tdpw_raw / rel), plain(tdpw_raw / rel)
        assert set(ours) == RELEASE_KEYS == set(theirs)
        assert ours["sequence"] == Path(rel).stem and ours["genders"] == theirs["genders"]
        n_people = len(ours["poses"])
        for key in ("betas", "poses", "trans", "poses2d", "jointPositions", "campose_valid", "v_template_clothed"):
            assert len(ours[key]) == n_people
            for a, b in zip(ours[key], theirs[key]):
                assert a.dtype == b.dtype and np.array_equal(a, b), key
        assert ours["cam_poses"].shape == (N_FRAMES, 4, 4) and ours["cam_poses"].dtype == np.float64
        assert ours["poses2d"][0].shape == (N_FRAMES, 3, 18) and ours["jointPositions"][0].shape == (N_FRAMES, 72)
        assert ours["v_template_clothed"][0].shape == (6890, 3)
        assert {len(b) for b in ours["betas"]} <= {10, 300} and np.all(ours["betas"][0][10:] == 0)


def test_poses2d_are_read_as_stored_rows_x_y_confidence(tdpw_raw):
    path = tdpw_raw / SEQ_FILES["train"]
    seq, stored = tdpw.read_sequence(path), plain(path)
    assert seq.poses2d.shape == (2, N_FRAMES, 3, 18)
    np.testing.assert_array_equal(seq.poses2d, np.stack(stored["poses2d"]))
    # the detections lie near the projected SMPL joints they are drawn from: OpenPose neck 1 ~ SMPL neck 12,
    # shoulders 2/5 ~ rsho 17 / lsho 16, ankles 10/13 ~ rank 8 / lank 7
    pairs = {1: 12, 2: 17, 5: 16, 10: 8, 13: 7}
    errors, undetected = [], 0
    for person in range(2):
        for frame in range(N_FRAMES):
            if not seq.campose_valid[person, frame]:
                assert np.all(seq.poses2d[person, frame] == 0)
                continue
            projected = tdpw.frame_camera(seq.intrinsics, seq.extrinsics[frame]).project(
                seq.joints[person, frame] * 1000)
            x, y, conf = seq.poses2d[person, frame]
            for op, smpl in pairs.items():
                if conf[op] > 0:
                    errors.append(np.hypot(x[op] - projected[smpl, 0], y[op] - projected[smpl, 1]))
            lost = conf == 0
            undetected += lost.sum()
            assert np.all(x[lost] == 0) and np.all(y[lost] == 0)
            assert np.all((conf[~lost] > 0.3) & (conf[~lost] < 1))
    assert len(errors) > 60 and max(errors) < 5 * NOISE_PX and undetected > 0
    # SPIN's box from the detected points, 1.2 times their extent
    insts = [i for i in tdpw.instances(tdpw_raw, {"box": "poses2d", "splits": ["train"]})]
    assert insts and all(i.bbox is not None for i in insts)
    for inst in insts:
        x, y, conf = seq.poses2d[inst.person_index, inst.frame_index]
        xs, ys = x[conf > 0], y[conf > 0]
        w, h = np.ptp(xs) * 1.2, np.ptp(ys) * 1.2
        np.testing.assert_allclose(inst.bbox, [(xs.min() + xs.max() - w) / 2, (ys.min() + ys.max() - h) / 2, w, h])
    assert all(i.bbox is None for i in tdpw.instances(tdpw_raw, {"splits": ["train"]}))  # posepile's projected box


# ------------------------------------------------------------------------------------------- conversion
def test_joints_and_cameras_project_onto_the_marks(tdpw_raw):
    insts = tdpw.instances(tdpw_raw)
    by_seq = {Path(rel).stem: tdpw.read_sequence(tdpw_raw / rel) for rel in SEQ_FILES.values()}
    errors, images = [], {}
    for inst in insts:
        seq = by_seq[inst.sequence]
        p, f = inst.person_index, inst.frame_index
        # the released joints in mm, posepile's order (pelvis last)
        np.testing.assert_array_equal(inst.world_coords, seq.joints[p, f][list(tdpw.SELECTED_JOINTS)] * 1000)
        assert tdpw.JOINT_INFO.names[-1] == "pelv" and inst.world_coords.shape == (24, 3)
        # the camera is cam_poses' world -> camera transform: R as given, t the optical centre in mm
        ext = seq.extrinsics[f]
        np.testing.assert_allclose(inst.camera.world_to_camera(inst.world_coords) / 1000,
                                   seq.joints[p, f][list(tdpw.SELECTED_JOINTS)] @ ext[:3, :3].T + ext[:3, 3],
                                   atol=1e-9)
        np.testing.assert_array_equal(inst.camera.intrinsic_matrix, seq.intrinsics)
        np.testing.assert_allclose(inst.camera.world_up, [0, 1, 0])
        if inst.source not in images:
            images[inst.source] = cv2.imread(str(tdpw_raw / inst.source))
        errors.extend(mark_errors(images[inst.source], inst.camera.project(inst.world_coords), radius=8,
                                  min_distance=20))
    assert len(insts) == 46 and len(errors) > 600, (len(insts), len(errors))
    assert max(errors) < 1.0, max(errors)


def test_left_out_frames_are_dropped_and_counted(tdpw_raw):
    truth = fixture_truth(tdpw_raw)["sequences"]
    dropped = []
    insts = tdpw.instances(tdpw_raw, None, dropped)
    assert dropped == [
        Dropped(SEQ_FILES["train"], f"person 0: {tdpw.CAMPOSE_INVALID}", 2),
        Dropped(f"{SEQ_FILES['val']}#3", f"person 0: {tdpw.NOT_DETECTED}", 1),
        Dropped(f"{SEQ_FILES['test']}#2", f"person 1: {tdpw.CAMPOSE_INVALID}", 1)]
    for name, t in truth.items():
        for person, invalid in enumerate(t["campose_invalid"]):
            left_out = set(invalid) | (set(t["undetected"]) if person == 0 else set())
            frames = [i.frame_index for i in insts if i.sequence == name and i.person_index == person]
            assert frames == [f for f in range(N_FRAMES) if f not in left_out], (name, person)
    # the frame step selects before the drops are counted; a step is not a drop
    dropped = []
    stepped = tdpw.instances(tdpw_raw, {"frame_step": 3}, dropped)
    assert sorted({i.frame_index for i in stepped}) == [0, 3, 6, 9]
    assert dropped == [Dropped(f"{SEQ_FILES['train']}#6", f"person 0: {tdpw.CAMPOSE_INVALID}", 1),
                       Dropped(f"{SEQ_FILES['val']}#3", f"person 0: {tdpw.NOT_DETECTED}", 1)]


def test_body_model_round_trips_exactly(tdpw_raw):
    insts = tdpw.instances(tdpw_raw)
    stored = {Path(rel).stem: plain(tdpw_raw / rel) for rel in SEQ_FILES.values()}
    for inst in insts:
        s, p, f = stored[inst.sequence], inst.person_index, inst.frame_index
        fit = inst.body_model
        assert fit.model == "smpl" and fit.gender == {"m": "male", "f": "female"}[s["genders"][p]]
        assert np.array_equal(fit.pose, s["poses"][p][f]) and fit.pose.dtype == np.float64
        assert np.array_equal(fit.betas, s["betas"][p][:10]) and len(fit.betas) == 10
        assert np.array_equal(fit.trans, s["trans"][p][f])
        assert inst.keypoints2d is None and inst.visibility is None and not inst.intrinsics_only
    assert {len(s["betas"][0]) for s in stored.values()} == {300}  # cut to the first 10
    assert tdpw.provenance(tdpw_raw) == {"body_model": {"model": "smpl", "source": tdpw.BODY_MODEL_SOURCE}}


def test_root_is_the_posed_root_joint_minus_trans(tdpw_raw):
    truth = fixture_truth(tdpw_raw)["sequences"]
    for inst in tdpw.instances(tdpw_raw):
        fit = inst.body_model
        pelvis_m = inst.world_coords[-1] / 1000
        np.testing.assert_allclose(fit.root, pelvis_m - fit.trans, atol=1e-12)
        # the rest root joint the fixture posed the chain about: the same in every frame
        np.testing.assert_allclose(fit.root, truth[inst.sequence]["rest_root"][inst.person_index], atol=1e-12)
        # with it, the fit moves into the camera frame: the root joint lands where the camera sees the pelvis
        _, trans_cam = to_camera(fit, inst.camera.R, inst.camera.t / 1000)
        np.testing.assert_allclose(trans_cam + fit.root, inst.camera.world_to_camera(inst.world_coords[-1]) / 1000,
                                   atol=1e-9)


def test_cache_crops_show_the_marks_and_keep_the_fits(tdpw_raw, tdpw_cache):
    insts = {(i.source, i.person_index): i for i in tdpw.instances(tdpw_raw)}
    errors = []
    with Cache(tdpw_cache) as cache:
        assert cache.split_counts() == {"train": 18, "val": 9, "test": 19}
        assert {q["path"] for q in cache.quarantine} == {SEQ_FILES["train"], f"{SEQ_FILES['val']}#3",
                                                         f"{SEQ_FILES['test']}#2"}
        assert cache.attrs["citation"].startswith("T. von Marcard")
        for i in range(len(cache)):
            ex = cache[i]
            source = ex.source_path.split("#")[0]
            inst = insts[(source, int(ex.subject.rsplit("person", 1)[1]))]
            np.testing.assert_allclose(ex.world_coords, inst.world_coords, atol=1e-3)
            np.testing.assert_allclose(ex.body_model.pose, inst.body_model.pose, atol=1e-6)
            np.testing.assert_allclose(ex.body_model.root, inst.body_model.root, atol=1e-6)
            orient, trans = ex.body_model_cam
            np.testing.assert_allclose(trans + ex.body_model.root,
                                       ex.camera.world_to_camera(ex.world_coords[-1]) / 1000, atol=1e-4)
            errors.extend(mark_errors(ex.decode_image(), ex.camera.project(ex.world_coords), radius=4,
                                      min_distance=20))
    assert len(errors) > 300 and max(errors) < 1.5, (len(errors), max(errors))


def test_splits_and_all_test_mode(tdpw_raw):
    assert tdpw.splits() == ("train", "val", "test") and tdpw.splits({"splits": ["test", "val"]}) == ("val", "test")
    val = tdpw.instances(tdpw_raw, {"splits": ["val"]})
    assert {i.split for i in val} == {"val"} and {i.sequence for i in val} == {"courtyard_drinking_00"}
    assert val[0].activity == "courtyard_drinking" and val[0].subject == "courtyard_drinking_00/person0"
    pooled = tdpw.instances(tdpw_raw, {"all_test_mode": True})
    assert tdpw.splits({"all_test_mode": True}) == ("test",) and {i.split for i in pooled} == {"test"}
    assert len(pooled) == 46


# ------------------------------------------------------------------------------------------- errors
@pytest.fixture
def broken_raw(tdpw_raw, tmp_path):
    return copy_raw(tdpw_raw, tmp_path)


def test_a_pickle_that_would_run_code_is_refused(broken_raw, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = broken_raw / SEQ_FILES["val"]
    path.write_bytes(pickle.dumps({"sequence": "courtyard_drinking_00", "poses": [RunsCode()]}, protocol=2))
    out = tmp_path / "out" / "tdpw"
    with pytest.raises(RawFileError, match=r"courtyard_drinking_00\.pkl: refused to unpickle posix\.system"):
        convert("tdpw", broken_raw, out, progress=False)
    assert not (tmp_path / "pwned").exists()
    assert_no_output(out)
    # a chumpy array (as SMPL model files hold) is refused by name too, without chumpy being imported
    path.write_bytes(b"\x80\x02}U\x12v_template_clothed]cchumpy.ch\nCh\n)\x81a.")
    with pytest.raises(RawFileError, match=r"courtyard_drinking_00\.pkl: refused to unpickle chumpy\.ch\.Ch"):
        tdpw.instances(broken_raw)


def test_missing_files_are_named(broken_raw, tmp_path):
    (broken_raw / "imageFiles/downtown_walking_00/image_00004.jpg").unlink()
    with pytest.raises(RawLayoutError, match=r"missing imageFiles/downtown_walking_00/image_00004\.jpg$"):
        tdpw.instances(broken_raw)
    for f in (broken_raw / "imageFiles/courtyard_drinking_00").iterdir():
        f.unlink()
    (broken_raw / "imageFiles/courtyard_drinking_00").rmdir()
    with pytest.raises(RawLayoutError, match=r"missing imageFiles/courtyard_drinking_00/$"):
        convert("tdpw", broken_raw, tmp_path / "tdpw", progress=False)
    (broken_raw / SEQ_FILES["train"]).unlink()
    with pytest.raises(RawLayoutError, match=r"missing sequenceFiles/train/<sequence>\.pkl \(no sequence files\)"):
        tdpw.check_layout(broken_raw)
    (broken_raw / "sequenceFiles/train").rmdir()
    with pytest.raises(RawLayoutError, match=r"missing sequenceFiles/train/, imageFiles/courtyard_drinking_00/"):
        tdpw.check_layout(broken_raw)
    assert_no_output(tmp_path / "tdpw")


def test_bad_contents_are_named(broken_raw):
    path = broken_raw / SEQ_FILES["test"]
    original = plain(path)
    rewrite(path, jointPositions=[original["jointPositions"][0], original["jointPositions"][1][:, :69]])
    with pytest.raises(RawFileError, match=rf"{path.name}: 'jointPositions\[1\]' has shape \({N_FRAMES}, 69\) "
                                           rf"\(float64\), expected \({N_FRAMES}, 72\) numbers"):
        tdpw.instances(broken_raw)
    rewrite(path, jointPositions=original["jointPositions"], genders=["m", "x"])
    with pytest.raises(RawFileError, match=r"'genders\[1\]' is 'x', expected 'm' or 'f'"):
        tdpw.instances(broken_raw)
    rewrite(path, genders=original["genders"], poses2d=original["poses2d"][:1])
    with pytest.raises(RawFileError, match=r"the per-person lists differ in length: .*'poses2d': 1"):
        tdpw.instances(broken_raw)
    data = dict(original)
    del data["cam_poses"]
    path.write_bytes(py2_dumps(data))
    with pytest.raises(RawFileError, match=r"downtown_walking_00\.pkl: no 'cam_poses' \(has \['betas', "):
        tdpw.instances(broken_raw)
    path.write_bytes(py2_dumps([1, 2]))
    with pytest.raises(RawFileError, match=r"holds a list, expected the sequence dict"):
        tdpw.instances(broken_raw)
    poses = original["cam_poses"].copy()
    poses[4, 0, 3] = np.nan
    path.write_bytes(py2_dumps({**original, "cam_poses": poses}))
    with pytest.raises(RawFileError, match=r"downtown_walking_00\.pkl: camera has non-finite t"):
        tdpw.instances(broken_raw)


def test_bad_params_are_named(tdpw_raw):
    with pytest.raises(ParamsError, match=r"^datasets\.tdpw\.splits: must be distinct splits of train, val, test"):
        tdpw.instances(tdpw_raw, {"splits": ["validation"]})
    with pytest.raises(ParamsError, match=r"^datasets\.tdpw\.box: must be one of projected, poses2d"):
        tdpw.splits({"box": "yolo"})
    with pytest.raises(ParamsError, match=r"^datasets\.tdpw\.frame_step: must be a positive integer"):
        tdpw.check_layout(tdpw_raw, {"frame_step": 0})
