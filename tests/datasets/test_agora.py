"""AGORA: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import io
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import sample
from helpers import assert_no_output, copy_raw
from marks import mark_errors
from posebank.core.bodymodel import rodrigues
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, agora
from posebank.datasets.agora import fixture, pickles
from posebank.datasets.base import Dropped
from posebank.imaging.video import read_image
from posebank.pipeline.run import convert

PARAMS = {"resolution": "1280x720", "dataframes": [0, 1]}
SCALE = 1280 / 3840


@pytest.fixture(scope="module")
def agora_raw(tmp_path_factory) -> Path:
    return agora.make_fixture(tmp_path_factory.mktemp("agora_raw"), seed=3)


@pytest.fixture(scope="module")
def agora_cache(agora_raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("agora_cache") / "agora"
    convert("agora", agora_raw, out, PARAMS, progress=False)
    return out


@pytest.fixture(scope="module")
def truth(agora_raw) -> dict:
    return fixture.fixture_truth(agora_raw)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


# ------------------------------------------------------------------------------------------- format
def test_fixture_has_the_release_layout(agora_raw):
    for section in ("train_0", "train_1", "validation_0", "validation_1"):
        smpl = pd.read_pickle(agora_raw / "SMPL" / f"{section}_withjv.pkl")
        smplx = pd.read_pickle(agora_raw / "SMPLX" / f"{section}_withjv.pkl")
        assert {"imgPath", "X", "Y", "Z", "Yaw", "camX", "camY", "camZ", "camYaw", "gender", "kid", "occlusion",
                "isValid", "age", "ethnicity", "gt_path_smpl", "gt_path_smplx", "gt_joints_2d", "gt_joints_3d",
                "gt_verts"} == set(smpl.columns) == set(smplx.columns)
        assert list(smpl["imgPath"]) == list(smplx["imgPath"])
        row, rowx = smpl.iloc[0], smplx.iloc[0]
        assert isinstance(row["isValid"], list) and row["gt_joints_2d"][0].shape == (45, 2)
        assert row["gt_joints_3d"][0].shape == (45, 3) and row["gt_verts"][0].shape == (6890, 3)
        assert rowx["gt_joints_3d"][0].shape == (127, 3) and rowx["gt_verts"][0].shape == (10475, 3)
        folder = section if section.startswith("train") else "validation"
        for img in smpl["imgPath"]:
            assert (agora_raw / folder / img.replace(".png", "_1280x720.png")).is_file()
            assert img.startswith("ag_trainset_" if folder != "validation" else "ag_validationset_")
        for rel in row["gt_path_smpl"] + row["gt_path_smplx"]:
            assert rel.endswith(".obj") and (agora_raw / rel.replace(".obj", ".pkl")).is_file()
    # the SMPL fits are plain pickles of torch tensors, the SMPL-X fits of numpy arrays (as the release's)
    import torch

    row = pd.read_pickle(agora_raw / "SMPL" / "train_0_withjv.pkl").iloc[0]
    with open(agora_raw / row["gt_path_smpl"][0].replace(".obj", ".pkl"), "rb") as f:
        smpl_fit = pickle.load(f)
    assert set(smpl_fit) == {"root_pose", "body_pose", "betas", "translation", "full_pose"}
    assert all(torch.is_tensor(v) for v in smpl_fit.values()) and smpl_fit["body_pose"].shape == (1, 69)
    with open(agora_raw / row["gt_path_smplx"][0].replace(".obj", ".pkl"), "rb") as f:
        smplx_fit = pickle.load(f)
    assert {k: v.shape for k, v in smplx_fit.items()} == {
        "global_orient": (1, 3), "body_pose": (1, 63), "left_hand_pose": (1, 45), "right_hand_pose": (1, 45),
        "jaw_pose": (1, 3), "leye_pose": (1, 3), "reye_pose": (1, 3), "expression": (1, 10), "betas": (1, 10),
        "transl": (1, 3)}
    # masks: per person and all people, posepile's / agora_evaluation's names
    img = "ag_trainset_renderpeople_bfh_archviz_5_10_cam02_00001.png"
    assert agora.mask_name(img, 1, "3840x2160", "x") == (
        "train/ag_trainset_renderpeople_bfh_archviz/ag_trainset_renderpeople_bfh_archviz_5_10_mask_cam02_000001"
        "_00002.png")
    hdri = "ag_validationset_renderpeople_body_hdri_50mm_5_10_00012.png"
    assert agora.mask_name(hdri, -1, "1280x720", "x") == (
        "validation/ag_validationset_renderpeople_body_hdri/ag_validationset_renderpeople_body_hdri_50mm_5_10"
        "_mask_000012_00000_1280x720.png")
    assert (agora_raw / agora.mask_name(img, 2, "1280x720", "x")).is_file()


def test_fixture_joints_are_agoras_projection(agora_raw):
    """gt_joints_2d is the pinhole projection of gt_joints_3d (docs/gt_dataframe.md): K from the image's focal."""
    for model in ("SMPL", "SMPLX"):
        df = pd.read_pickle(agora_raw / model / "train_0_withjv.pkl")
        for _, row in df.iterrows():
            f = agora.scene_camera(row["imgPath"], row["camX"], row["camY"], row["camZ"], row["camYaw"]).focal_mm
            for j2, j3 in zip(row["gt_joints_2d"], row["gt_joints_3d"]):
                expected = j3[:, :2] / j3[:, 2:] * [f / 36 * 3840, f / 20.25 * 2160] + [1920, 1080]
                np.testing.assert_allclose(j2, expected, atol=1e-6)


# ------------------------------------------------------------------------------------------- cameras
def test_scene_cameras_follow_agora_evaluation():
    cases = {
        "ag_trainset_renderpeople_body_hdri_50mm_5_10_00001.png": (50, (0, -1.7, 0), 0, 0),
        "ag_trainset_renderpeople_bfh_archviz_5_10_cam00_00001.png": (18, (-2.75, -2.65, 4.0), 135, 30),
        "ag_trainset_renderpeople_bfh_archviz_5_10_cam01_00001.png": (18, (2.25, -2.65, 4.0), -135, 30),
        "ag_trainset_renderpeople_bfh_archviz_5_10_cam02_00001.png": (18, (1.7, -2.65, -4.9), -45, 30),
        "ag_trainset_renderpeople_bfh_archviz_5_10_cam03_00001.png": (18, (-2.75, -2.65, -4.9), 45, 30),
        "ag_trainset_3dpeople_bfh_construction_5_15_00003.png": (28, (1.0, -1.7 - 0.3, 2.0), 20, 0),
    }
    for img, (focal, center, yaw, pitch) in cases.items():
        scene = agora.scene_camera(img, 200.0, 100.0, 30.0, 20.0)
        cam = agora.make_camera(scene, (3840, 2160))
        assert (scene.focal_mm, scene.yaw_deg, scene.pitch_deg) == (focal, yaw, pitch)
        np.testing.assert_allclose(cam.t, np.array(center) * 1000, atol=1e-9)
        assert cam.intrinsic_matrix[0, 0] == pytest.approx(focal / 36 * 3840)
        assert cam.intrinsic_matrix[1, 1] == pytest.approx(focal / 20.25 * 2160)
        np.testing.assert_array_equal(cam.intrinsic_matrix[:2, 2], [1920, 1080])
        np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(cam.R) == pytest.approx(1.0)
        small = agora.make_camera(scene, (1280, 720))
        np.testing.assert_allclose(small.intrinsic_matrix[:2], cam.intrinsic_matrix[:2] / 3)
    # the 28 mm cameras look along +x of Unreal (the world's +z) at yaw 0; pitch 30 tilts the view downwards
    scene = agora.scene_camera("ag_trainset_x_bfh_flowers_5_10_00001.png", 0, 0, 0, 0)
    ahead = agora.make_camera(scene, (3840, 2160)).project(np.array([[0.0, -1700.0, 5000.0]]))
    np.testing.assert_allclose(ahead, [[1920, 1080]], atol=1e-9)
    down = agora.make_camera(agora.scene_camera("x_5_10_cam00_00001.png", 0, 0, 0, 0), (3840, 2160))
    assert (down.R @ [0, 1, 0])[2] > 0.4  # the world's down direction (+y) points into the view


def test_instances_reproject_onto_gt_joints_2d(agora_raw):
    insts = agora.instances(agora_raw, PARAMS)
    assert len(insts) == 11 and insts[0].keypoints2d.shape == (66, 2)
    errors = np.concatenate([np.linalg.norm(r.camera.project(r.world_coords) - r.keypoints2d, axis=1)
                             for r in insts])
    assert errors.max() < 1e-6
    # and keypoints2d are the dataframes' gt_joints_2d at 1280x720: SMPL 24, then posepile's 42 SMPL-X joints
    r = insts[0]
    smpl = pd.read_pickle(agora_raw / "SMPL/train_0_withjv.pkl").iloc[0]["gt_joints_2d"][r.person_index]
    smplx = pd.read_pickle(agora_raw / "SMPLX/train_0_withjv.pkl").iloc[0]["gt_joints_2d"][r.person_index]
    np.testing.assert_allclose(r.keypoints2d, np.concatenate([smpl[:24], smplx[list(agora.SMPLX_SELECTED)]]) * SCALE)
    assert agora.JOINT_INFO.names[24] == "pelv_smplx" and agora.JOINT_INFO.names[-1] == "rmiddle_smplx"
    # world frame: mm, up = -y; people stand upright (head above pelvis)
    for r in insts:
        np.testing.assert_array_equal(r.camera.world_up, [0, -1, 0])
        assert r.world_coords[15, 1] < r.world_coords[0, 1] - 300
    by = {(r.source.split("/")[-1], r.person_index): r for r in insts}
    r = by[("ag_trainset_renderpeople_bfh_archviz_5_10_cam02_00001_1280x720.png", 1)]
    assert (r.frame_index, r.sequence, r.camera_name, r.split) == (
        1, "ag_trainset_renderpeople_bfh_archviz_5_10", "cam02", "train")
    assert r.mask_source == ("train/ag_trainset_renderpeople_bfh_archviz/ag_trainset_renderpeople_bfh_archviz_5_10"
                             "_mask_cam02_000001_00002_1280x720.png")


def test_full_resolution_uses_the_4k_names_and_pixels(agora_raw, tmp_path):
    raw = copy_raw(agora_raw, tmp_path)
    for path in sorted(raw.rglob("*_1280x720.png")):
        path.rename(path.with_name(path.name.replace("_1280x720.png", ".png")))
    insts = agora.instances(raw, {**PARAMS, "resolution": "3840x2160"})
    small = agora.instances(agora_raw, PARAMS)
    assert [r.source.replace(".png", "_1280x720.png") for r in insts] == [r.source for r in small]
    for a, b in zip(insts, small):
        np.testing.assert_allclose(a.keypoints2d, b.keypoints2d * 3)
        np.testing.assert_allclose(a.world_coords, b.world_coords)
        np.testing.assert_allclose(a.camera.project(a.world_coords), a.keypoints2d, atol=1e-6)


# ------------------------------------------------------------------------------------------- conversion
def test_converted_joints_project_onto_marks_and_annotations(agora_raw, agora_cache):
    frames = {}
    raw_err, annot_err, crop_err = [], [], []
    with Cache(agora_cache) as cache:
        assert cache.split_counts() == {"train": 7, "val": 4, "test": 0}
        assert cache.joint_info.names == agora.JOINT_INFO.names
        for ex in cache.examples():
            source = ex.source_path.split("#")[0]
            section = source.split("/")[0]
            img = source.split("/")[-1].replace("_1280x720.png", ".png")
            if source not in frames:
                frames[source] = read_image(agora_raw / source)
            name = section if section != "validation" else None
            dfs = [pd.read_pickle(agora_raw / m / f"{name}_withjv.pkl") for m in ("SMPL", "SMPLX")] if name else [
                pd.concat([pd.read_pickle(agora_raw / m / f"validation_{i}_withjv.pkl") for i in (0, 1)])
                for m in ("SMPL", "SMPLX")]
            rows = [df[df["imgPath"] == img].iloc[0] for df in dfs]
            person = _person(rows[0], ex.subject)
            gt2d = np.concatenate([rows[0]["gt_joints_2d"][person][:24],
                                   rows[1]["gt_joints_2d"][person][list(agora.SMPLX_SELECTED)]]) * SCALE
            camera = _raw_camera(rows[0], (1280, 720))
            projected = camera.project(ex.world_coords)
            annot_err.extend(np.linalg.norm(projected - gt2d, axis=1))
            raw_err.extend(mark_errors(frames[source], projected, radius=4, min_distance=9))
            crop_err.extend(mark_errors(ex.decode_image(), ex.camera.project(ex.world_coords), radius=5,
                                        min_distance=15))
    assert len(annot_err) == 11 * 66 and max(annot_err) < 1.0, max(annot_err)
    assert len(raw_err) > 100 and max(raw_err) < 1.0, (len(raw_err), max(raw_err))
    assert len(crop_err) > 60 and max(crop_err) < 1.5, (len(crop_err), max(crop_err))


def _person(row, subject: str) -> int:
    names = [Path(p).stem for p in row["gt_path_smplx"]]
    assert names.count(subject) == 1
    return names.index(subject)


def _raw_camera(row, size):
    return agora.make_camera(agora.scene_camera(row["imgPath"], row["camX"], row["camY"], row["camZ"],
                                                row["camYaw"]), size)


def test_drops_are_counted_per_reason(agora_raw, agora_cache):
    dropped = []
    insts = agora.instances(agora_raw, PARAMS, dropped)
    small = agora.small_reason(100)
    assert dropped == [Dropped("SMPL/train_0_withjv.pkl#0", agora.INVALID, 1),
                       Dropped("SMPL/train_0_withjv.pkl#1", agora.occluded_reason(75), 1),
                       Dropped("SMPL/train_0_withjv.pkl#1", small, 1),
                       Dropped("SMPL/validation_0_withjv.pkl#0", small, 1)]
    # every person of the dataframes is either converted or dropped
    n_people = sum(len(r) for s in ("train_0", "train_1", "validation_0", "validation_1")
                   for r in pd.read_pickle(agora_raw / f"SMPL/{s}_withjv.pkl")["isValid"])
    assert len(insts) + sum(d.count for d in dropped) == n_people == 15
    with Cache(agora_cache) as cache:
        assert {q["path"] for q in cache.quarantine} == {d.where for d in dropped}
    # the thresholds are params; kids can be left out (ReFit) instead of kept (posepile)
    dropped = []
    insts = agora.instances(agora_raw, {**PARAMS, "kids": False, "max_occlusion": 50.0, "min_box_px": 0.0},
                            dropped)
    assert [(d.where, d.reason, d.count) for d in dropped] == [
        ("SMPL/train_0_withjv.pkl#0", agora.INVALID, 1),
        ("SMPL/train_0_withjv.pkl#1", agora.KID, 1),
        ("SMPL/train_0_withjv.pkl#1", agora.occluded_reason(50), 1),
        ("SMPL/train_1_withjv.pkl#0", agora.occluded_reason(50), 1)]
    assert len(insts) == 15 - 4  # the far and the out-of-view people are kept without the box rule


# ------------------------------------------------------------------------------------------- body models
def _check_world_fit(fit, fit_pose, transl, person, rest_root):
    """The world fit moves every point of the body as AGORA places the scan: M (R (v - j0) + j0 + transl) + T."""
    m, t = agora.person_transform(person["yaw"], *person["location_cm"])
    np.testing.assert_allclose(fit.root, rest_root, atol=1e-9)
    v = np.random.default_rng(0).normal(0, 0.5, (20, 3)) + rest_root
    local = (v - rest_root) @ rodrigues(fit_pose[:3]).T + rest_root + transl
    world = (v - fit.root) @ rodrigues(fit.pose[:3]).T + fit.root + fit.trans
    np.testing.assert_allclose(world, local @ m.T + t, atol=1e-9)


def test_smplx_fits_round_trip(agora_raw, agora_cache, truth):
    insts = agora.instances(agora_raw, PARAMS)
    checked = 0
    for r in insts:
        person = truth[r.source.split("/")[-1].replace("_1280x720.png", ".png")]["people"][r.person_index]
        if person["kind"] == "kid":
            assert r.body_model is None  # needs AGORA's kid template
            continue
        fit, given = r.body_model, person["smplx"]
        pose = np.concatenate([given[k].reshape(-1) for k in agora.SMPLX_POSE_KEYS]).astype(np.float64)
        assert (fit.model, fit.pose.shape) == ("smplx", (165,))
        assert fit.gender == {0: "male", 1: "female"}[r.person_index % 2]
        np.testing.assert_array_equal(fit.pose[3:], pose[3:])  # body, jaw, eyes, left hand, right hand: exact
        np.testing.assert_array_equal(fit.betas, given["betas"].reshape(-1))
        _check_world_fit(fit, pose, given["transl"].reshape(-1).astype(np.float64), person,
                         person["rest_root_smplx"])
        checked += 1
    assert checked == 10
    # the cache holds the same fits
    with Cache(agora_cache) as cache:
        fits = [ex.body_model for ex in cache.examples()]
        assert sum(f is not None for f in fits) == 10
        a = next(f for f in fits if f is not None)
        b = next(r.body_model for r in insts if r.body_model is not None)
        np.testing.assert_allclose(a.pose, b.pose, atol=1e-6)
        np.testing.assert_allclose(a.root, b.root, atol=1e-6)
    assert agora.provenance(agora_raw, PARAMS)["body_model"]["source"] == "AGORA's SMPL-X fits"


def test_smpl_fits_round_trip(agora_raw, truth):
    insts = agora.instances(agora_raw, {**PARAMS, "body_model": "smpl"})
    for r in insts:
        person = truth[r.source.split("/")[-1].replace("_1280x720.png", ".png")]["people"][r.person_index]
        if person["kind"] == "kid":
            continue
        fit, given = r.body_model, person["smpl"]
        pose = np.concatenate([given["root_pose"].reshape(-1), given["body_pose"].reshape(-1)]).astype(np.float64)
        assert (fit.model, fit.gender, fit.pose.shape) == ("smpl", "neutral", (72,))
        np.testing.assert_array_equal(fit.pose[3:], pose[3:])
        np.testing.assert_array_equal(fit.betas, given["betas"].reshape(-1))
        _check_world_fit(fit, pose, given["translation"].reshape(-1).astype(np.float64), person,
                         person["rest_root_smpl"])
    assert agora.provenance(agora_raw, {"body_model": "smpl"})["body_model"]["model"] == "smpl"
    # without fits, none are needed
    without = agora.instances(agora_raw, {**PARAMS, "body_model": "none"})
    assert all(r.body_model is None for r in without) and agora.provenance(agora_raw, {"body_model": "none"}) == {}


# ------------------------------------------------------------------------------------------- pickles
def test_torch_tensor_pickles_load_as_arrays_without_torch_code():
    import torch

    values = {"root_pose": torch.randn(1, 3), "body_pose": torch.randn(1, 69, requires_grad=True) * 2,
              "betas": torch.randn(1, 11, dtype=torch.float64), "full_pose": torch.randn(1, 24, 3, 3)[..., 1:],
              "n": torch.tensor(7), "faces": np.arange(6).reshape(2, 3)}
    for protocol in (2, 4, 5):
        out = pickles.load_fit("fit.pkl", data=pickle.dumps(values, protocol=protocol))
        for key, v in values.items():
            expected = v.detach().numpy() if torch.is_tensor(v) else v
            assert isinstance(out[key], np.ndarray) and out[key].dtype == expected.dtype, key
            np.testing.assert_array_equal(out[key], expected)
    # a tensor saved from a GPU names torch.cuda.FloatStorage and a cuda location: its values load all the same
    data = pickle.dumps({"transl": torch.arange(3.0)}, protocol=3)
    inner = _inner_stream(data)
    gpu = inner.replace(b"ctorch\nFloatStorage\n", b"ctorch.cuda\nFloatStorage\n").replace(
        b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
    assert gpu.count(b"torch.cuda") == 1 and b"cuda:0" in gpu
    out = pickles.load_fit("gpu.pkl", data=data.replace(_bytes_op(inner), _bytes_op(gpu)))
    np.testing.assert_array_equal(out["transl"], [0.0, 1.0, 2.0])


def _inner_stream(data: bytes) -> bytes:
    captured = []

    class Capture(pickle.Unpickler):
        def find_class(self, module, name):
            if name == "_load_from_bytes":
                return lambda b: captured.append(b)
            if name == "_rebuild_tensor_v2":
                return lambda *a: None
            return super().find_class(module, name)

    Capture(io.BytesIO(data)).load()
    return captured[0]


def _bytes_op(b: bytes) -> bytes:
    return (b"C" + bytes([len(b)]) if len(b) < 256 else b"B" + len(b).to_bytes(4, "little")) + b


def test_pickles_that_would_run_code_are_refused(agora_raw, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = copy_raw(agora_raw, tmp_path)
    # a dataframe with a hostile object in a cell
    path = raw / "SMPLX" / "train_1_withjv.pkl"
    df = pd.read_pickle(path)
    df.at[0, "age"] = RunsCode()
    df.to_pickle(path)
    out = tmp_path / "out" / "agora"
    with pytest.raises(RawFileError, match=r"SMPLX/train_1_withjv\.pkl: refused to unpickle posix\.system"):
        convert("agora", raw, out, PARAMS, progress=False)
    assert_no_output(out)
    assert not (tmp_path / "pwned").exists()
    # a fit, and a tensor storage stream, with one
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"betas": RunsCode()}))
    with pytest.raises(RawFileError, match=r"evil\.pkl: refused to unpickle posix\.system"):
        pickles.load_fit(evil)
    import torch

    head = b"".join(pickle.dumps(v, protocol=2) for v in (
        pickles.LEGACY_MAGIC, pickles.LEGACY_PROTOCOL, {"protocol_version": 1001, "little_endian": True}))

    class HostileStorage:
        def __reduce__(self):
            return torch.storage._load_from_bytes, (head + pickle.dumps(RunsCode(), protocol=2),)

    with pytest.raises(RawFileError, match=r"evil\.pkl: refused to unpickle posix\.system"):
        pickles.load_fit(evil, data=pickle.dumps({"betas": HostileStorage()}, protocol=3))
    with pytest.raises(RawFileError, match="refused to unpickle"):
        pickles.load_fit(evil, data=pickle.dumps({"m": pd.DataFrame()}))  # a fit holds no pandas objects
    assert not (tmp_path / "pwned").exists()
    # a torch.save archive is not the release's format
    torch.save({"a": torch.zeros(1)}, tmp_path / "zip.pkl")
    with pytest.raises(RawFileError, match=r"zip\.pkl: a torch\.save zip archive"):
        pickles.load_fit(tmp_path / "zip.pkl")


class _LegacyFrame:  # stand-ins pickled under pandas 1.x's names
    def __init__(self, state):
        self.state = state


class _LegacyManager(_LegacyFrame):
    pass


class _LegacyIndex:
    def __init__(self, kind, d):
        self.kind, self.d = kind, d


def _legacy_new_index():
    pass


class _IndexClass:
    pass


class _RangeClass:
    pass


LEGACY_NAMES = {_LegacyFrame: ("pandas.core.frame", "DataFrame"),
                _LegacyManager: ("pandas.core.internals.managers", "BlockManager"),
                _legacy_new_index: ("pandas.core.indexes.base", "_new_Index"),
                _IndexClass: ("pandas.core.indexes.base", "Index"),
                _RangeClass: ("pandas.core.indexes.range", "RangeIndex")}


class _LegacyPickler(pickle._Pickler):
    """Writes a frame as pandas 1.x did (NDFrame.__getstate__, BlockManager.__getstate__ with its '0.14.1' state,
    indexes through _new_Index)."""

    def reducer_override(self, obj):
        import copyreg

        if isinstance(obj, _LegacyFrame):
            return copyreg.__newobj__, (type(obj),), obj.state
        if isinstance(obj, _LegacyIndex):
            return _legacy_new_index, (obj.kind, obj.d)
        return NotImplemented

    def save_global(self, obj, name=None):
        if obj in LEGACY_NAMES:
            module, name = LEGACY_NAMES[obj]
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)

    dispatch = pickle._Pickler.dispatch.copy()
    dispatch[type] = save_global
    dispatch[type(_legacy_new_index)] = save_global


def test_a_pandas_1x_dataframe_pickle_loads(tmp_path):
    """The release's dataframes were written by pandas 1.x (2021): their classes by their defining modules."""
    columns = ["imgPath", "camX", "isValid", "gt_joints_2d"]
    axes = [_LegacyIndex(_IndexClass, {"data": np.array(columns, object), "name": None}),
            _LegacyIndex(_RangeClass, {"name": None, "start": 0, "stop": 2, "step": 1})]
    objects = np.empty((3, 2), object)
    objects[0] = ["a_5_10_00001.png", "b_5_10_00002.png"]
    objects[1, 0], objects[1, 1] = [True, False], [True]
    objects[2, 0], objects[2, 1] = [np.zeros((45, 2)), np.ones((45, 2))], [np.full((45, 2), 2.0)]
    floats = np.array([[1.5, -2.0]])
    blocks = [{"values": objects, "mgr_locs": np.array([0, 2, 3])}, {"values": floats, "mgr_locs": slice(1, 2, 1)}]
    manager = _LegacyManager((axes, [objects, floats], [], {"0.14.1": {"axes": axes, "blocks": blocks}}))
    frame = _LegacyFrame({"_mgr": manager, "_typ": "dataframe", "_metadata": [], "attrs": {},
                          "_flags": {"allows_duplicate_labels": True}})
    buf = io.BytesIO()
    _LegacyPickler(buf, protocol=4).dump(frame)
    path = tmp_path / "train_0_withjv.pkl"
    path.write_bytes(buf.getvalue())
    back = pickles.load_dataframe(path)
    assert list(back.columns) == columns and back["imgPath"].tolist() == ["a_5_10_00001.png", "b_5_10_00002.png"]
    assert back["camX"].tolist() == [1.5, -2.0] and back["isValid"].tolist() == [[True, False], [True]]
    np.testing.assert_array_equal(back["gt_joints_2d"][1][0], np.full((45, 2), 2.0))


def test_real_agora_pickle_of_numpy_arrays_loads():
    """agora_evaluation's sample SMPL-X parameter file (numpy 1.x names, protocol 4) reads as a fit file does."""
    fit = pickles.load_fit(sample("agora/smplx_param_rm_personId_0.pkl"))
    assert fit["gender"] in ("male", "female", "neutral") and fit["joints"].shape == (144, 2)
    shapes = {k: v.shape for k, v in fit["params"].items()}
    assert shapes["body_pose"] == (1, 21, 3, 3) and shapes["left_hand_pose"] == (1, 15, 3, 3)
    assert shapes["betas"] == (1, 10) and fit["params"]["betas"].dtype == np.float32


# ------------------------------------------------------------------------------------------- broken trees
def test_missing_files_are_named(agora_raw, tmp_path):
    raw = copy_raw(agora_raw, tmp_path)
    (raw / "SMPLX" / "validation_1_withjv.pkl").unlink()
    with pytest.raises(RawLayoutError, match=r"missing SMPLX/validation_1_withjv\.pkl$"):
        agora.check_layout(raw, PARAMS)
    assert agora.instances(raw, {**PARAMS, "dataframes": [0]})
    image = raw / "train_1" / "ag_trainset_3dpeople_bfh_brushifyforest_5_15_00007_1280x720.png"
    image.unlink()
    fit = sorted((raw / "smplx_gt" / "validationset_renderpeople_adults_bfh").glob("*.pkl"))[0]
    fit.unlink()
    out = tmp_path / "out" / "agora"
    with pytest.raises(RawLayoutError) as e:
        convert("agora", raw, out, {**PARAMS, "dataframes": [0, 1], "splits": ["train"]}, progress=False)
    assert e.value.missing == ["train_1/ag_trainset_3dpeople_bfh_brushifyforest_5_15_00007_1280x720.png"]
    assert_no_output(out)
    with pytest.raises(RawLayoutError, match=rf"missing smplx_gt/validationset_renderpeople_adults_bfh/{fit.name}"):
        agora.instances(raw, {**PARAMS, "dataframes": [0], "splits": ["val"]})
    assert agora.instances(raw, {**PARAMS, "dataframes": [0], "splits": ["val"], "body_model": "smpl"})
    shutil.rmtree(raw / "validation" / "ag_validationset_renderpeople_bfh_flowers")
    with pytest.raises(RawLayoutError, match=r"missing validation/ag_validationset_renderpeople_bfh_flowers/"):
        agora.instances(raw, {**PARAMS, "dataframes": [0], "splits": ["val"], "body_model": "smpl"})
    insts = agora.instances(raw, {**PARAMS, "dataframes": [0], "splits": ["val"], "body_model": "smpl",
                                  "masks": False})
    assert len(insts) == 2 and all(r.mask_source is None for r in insts)


def test_malformed_dataframes_are_named(agora_raw, tmp_path):
    raw = copy_raw(agora_raw, tmp_path)
    path = raw / "SMPL" / "train_1_withjv.pkl"
    df = pd.read_pickle(path)
    df.at[0, "gt_joints_3d"] = [np.zeros((45, 2))] + df.at[0, "gt_joints_3d"][1:]
    df.to_pickle(path)
    with pytest.raises(RawFileError, match=r"train_1_withjv\.pkl: row 0 \(ag_trainset_3dpeople_bfh_brushifyforest"
                                           r"_5_15_00007\.png\) person 0: gt_joints_3d has shape \(45, 2\)"):
        agora.instances(raw, PARAMS)
    df.drop(columns=["occlusion"]).to_pickle(path)
    with pytest.raises(RawFileError, match=r"train_1_withjv\.pkl: dataframe has no column 'occlusion'"):
        agora.instances(raw, PARAMS)
    other = pd.read_pickle(raw / "SMPLX" / "train_1_withjv.pkl")
    other.at[0, "imgPath"] = "ag_trainset_3dpeople_bfh_brushifyforest_5_15_00008.png"
    other.to_pickle(raw / "SMPLX" / "train_1_withjv.pkl")
    shutil.copy(agora_raw / "SMPL" / "train_1_withjv.pkl", path)
    with pytest.raises(RawFileError, match=r"SMPLX/train_1_withjv\.pkl: row 0: imgPath '.*00008\.png' differs"):
        agora.instances(raw, PARAMS)
    (raw / "SMPLX" / "train_1_withjv.pkl").write_bytes(pickle.dumps({"not": "a frame"}))
    with pytest.raises(RawFileError, match=r"holds a dict, not a pandas DataFrame"):
        agora.instances(raw, PARAMS)


def test_bad_params(agora_raw, tmp_path):
    for key, value, message in (("dataframes", [0, 10], "must be distinct integers 0..9"),
                                ("splits", ["test"], "must be distinct splits of train, val"),
                                ("resolution", "640x360", "must be one of 3840x2160, 1280x720"),
                                ("body_model", "smplh", "must be one of smplx, smpl, none"),
                                ("max_occlusion", 120.0, "must be a percentage"),
                                ("min_box_px", -1.0, "must be >= 0")):
        with pytest.raises(ParamsError, match=rf"^datasets\.agora\.{key}: {message}"):
            agora.instances(agora_raw, {**PARAMS, key: value})
    assert agora.splits({"splits": ["val"]}) == ("val",) and agora.splits() == ("train", "val")
    with pytest.raises(ParamsError):
        convert("agora", agora_raw, tmp_path / "x", {"dataframes": [11]}, progress=False)
    assert_no_output(tmp_path / "x")
    # the default resolution is the release's 3840x2160: the fixture's 1280x720 images are then missing
    with pytest.raises(RawLayoutError) as e:
        agora.instances(agora_raw, {"dataframes": [0, 1]})
    assert "train_0/ag_trainset_renderpeople_bfh_archviz_5_10_cam02_00001.png" in e.value.missing


def test_image_names():
    assert agora.image_name("ag_x_5_10_00003.png", "1280x720") == "ag_x_5_10_00003_1280x720.png"
    assert agora.image_name("ag_x_5_10_00003.png", "3840x2160") == "ag_x_5_10_00003.png"
    m = agora.parse_image_name("ag_trainset_renderpeople_body_hdri_50mm_5_10_00012.png", "x")
    assert (m["scene"], m["name"], m["cam"], int(m["num"])) == (
        "ag_trainset_renderpeople_body_hdri", "ag_trainset_renderpeople_body_hdri_50mm_5_10", "", 12)
    with pytest.raises(RawFileError, match="is not an AGORA image name"):
        agora.parse_image_name("frame_0001.png", "x")
