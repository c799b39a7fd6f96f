"""BEDLAM: what is specific to it (the contract is checked for every dataset in test_conformance.py).

The fixture's labels are made as BEDLAM's df_full_body.py makes them, with a tiny SMPL-X model posed by an
independent numpy forward kinematics; the tests save that model as an SMPLX_NEUTRAL.npz, convert with it through
the ``smplx`` package and compare with the fixture's ``gtkps``.
"""

import csv
import json
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import sample
from helpers import copy_raw
from marks import mark_errors
from posebank.core.bodymodel import rodrigues, to_camera
from posebank.core.errors import ParamsError
from posebank.core.jpeg import decode_jpeg
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, bedlam
from posebank.datasets.base import Dropped
from posebank.datasets.bedlam import fixture as fx
from posebank.datasets.bedlam.labels import read_labels
from posebank.datasets.sampling import AdaptivePoseSampler2
from posebank.pipeline.run import convert

SEED = 3
SCENE_A = "20221010_3_1000_batch01hand"  # landscape, 6 fps, two sequences (the second a zoom from far)
SCENE_B = "20221011_1_250_batch01hand_closeup_suburb_a"  # closeup (portrait), 6 fps, one PNG missing
SCENE_C = "20221022_3_250_batch01handhair_static_bigOffice"  # 30 fps labels, no masks, a rigid translating pose
LABELS = {SCENE_A: f"all_npz_12_training/{SCENE_A}_6fps.npz", SCENE_B: f"all_npz_12_training/{SCENE_B}_6fps.npz",
          SCENE_C: f"all_npz_12_training/{SCENE_C}_30fps.npz"}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return bedlam.make_fixture(tmp_path_factory.mktemp("bedlam_raw"), SEED)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("body_models")
    fx.write_tiny_smplx(folder)
    return folder


@pytest.fixture(scope="module")
def labels(raw) -> dict[str, dict]:
    return {scene: dict(np.load(raw / rel)) for scene, rel in LABELS.items()}


@pytest.fixture(scope="module")
def plain(raw):
    dropped = []
    return bedlam.instances(raw, {}, dropped), dropped


@pytest.fixture(scope="module")
def with_model(raw, models):
    dropped = []
    return bedlam.instances(raw, {"body_model_dir": str(models)}, dropped), dropped


def row_of(inst, labels) -> tuple[str, int]:
    """The scene and label row an instance comes from."""
    scene = inst.camera_name
    lab = labels[scene]
    seq = inst.sequence.split("/")[1]
    rows = [i for i, n in enumerate(lab["imgname"]) if n == f"{seq}/{seq}_{inst.frame_index:04d}.png"]
    return scene, rows[inst.person_index]


def expected_drops(labels) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Rows whose posepile box has a side under 100 px, and the rows whose PNG the fixture left out."""
    small, missing = [], []
    for scene, lab in labels.items():
        for i, kp in enumerate(lab["gtkps"][:, :55, :2].astype(np.float64)):
            side = (kp.max(0) - kp.min(0)) * 1.05
            if side.min() < 100:
                small.append((scene, i))
    spec = {s.name: s for s in fx.fixture_scenes(SEED)}
    for scene, lab in labels.items():
        for seq, frame in spec[scene].missing_png:
            missing += [(scene, i) for i, n in enumerate(lab["imgname"]) if n == f"{seq}/{seq}_{frame:04d}.png"]
    return small, missing


# ------------------------------------------------------------------------------------------- real sample
def test_real_scene_names_parse_as_label_files():
    """BEDLAM's own list of its scenes (data_processing/bedlam_scene_names.csv): every folder is a scene whose label
    file posebank recognises, the one spelt with '-' gets its full-release folder spelling, and the scenes that
    BEDLAM's processing rotates ('closeup' in the scene name) are exactly the folders named closeup."""
    with open(sample("bedlam/bedlam_scene_names.csv"), newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Folder name", "Scene name"] and len(rows) == 31
    folders = [r[0] for r in rows[1:]]
    for folder in folders:
        m = bedlam._LABEL_FILE.fullmatch(f"{folder}_6fps.npz")
        assert m and m["scene"] == folder and m["fps"] == "6"
    assert bedlam._LABEL_FILE.fullmatch("agora-bfh.npz") is None
    assert bedlam.scene_folders("20221020-3-8_250_highbmihand_zoom_highSchoolGym_a") == [
        "20221020-3-8_250_highbmihand_zoom_highSchoolGym_a", "20221020_3-8_250_highbmihand_zoom_highSchoolGym_a"]
    assert "20221020-3-8_250_highbmihand_zoom_highSchoolGym_a" in folders
    closeup = [r[0] for r in rows[1:] if "closeup" in r[1]]
    assert len(closeup) == 7 and closeup == [f for f in folders if "closeup" in f]


# ------------------------------------------------------------------------------------------- layout
def test_layout_finds_the_scenes_and_their_folders(raw):
    scenes = bedlam.check_layout(raw)
    assert [(s.name, s.fps, s.images, s.masks) for s in scenes] == [
        (SCENE_A, 6, f"{SCENE_A}_6fps/png", f"{SCENE_A}/masks"),  # the 6 fps image archive's folder
        (SCENE_B, 6, f"{SCENE_B}/png", f"{SCENE_B}/masks"),  # the 30 fps release's folder
        (SCENE_C, 30, f"{SCENE_C}_30fps/png", None)]  # no masks/ folder; agora-bfh.npz is not a scene
    assert [s.images for s in bedlam.check_layout(raw, {"images": "mp4"})] == [
        f"{SCENE_A}/mp4", f"{SCENE_B}/mp4", f"{SCENE_C}/mp4"]
    assert [s.masks for s in bedlam.check_layout(raw, {"masks": False})] == [None, None, None]
    assert [s.name for s in bedlam.check_layout(raw, {"scenes": [SCENE_C]})] == [SCENE_C]
    with pytest.raises(RawLayoutError, match="missing all_npz_12_training/20221099_x_6fps.npz"):
        bedlam.check_layout(raw, {"scenes": ["20221099_x"]})


def test_layout_errors_name_what_is_missing(raw, tmp_path):
    tree = copy_raw(raw, tmp_path)
    shutil.rmtree(tree / f"{SCENE_C}_30fps")
    with pytest.raises(RawLayoutError, match=rf"missing {SCENE_C}_30fps/png or {SCENE_C}/png/"):
        bedlam.check_layout(tree)
    shutil.rmtree(tree / "all_npz_12_training")
    with pytest.raises(RawLayoutError, match="missing all_npz_12_training/"):
        bedlam.instances(tree)


def test_a_scene_with_both_spellings_and_both_label_rates(raw, tmp_path):
    """posepile prefers <scene>_6fps.npz over _30fps.npz; the label file 20221020-3-8_... has its release folders
    spelt 20221020_3-8_..."""
    tree = tmp_path / "raw"
    (tree / "all_npz_12_training").mkdir(parents=True)
    name = "20221020-3-8_250_highbmihand_zoom_highSchoolGym_a"
    shutil.copy(raw / LABELS[SCENE_C], tree / f"all_npz_12_training/{name}_30fps.npz")
    shutil.copy(raw / LABELS[SCENE_A], tree / f"all_npz_12_training/{name}_6fps.npz")
    shutil.copytree(raw / f"{SCENE_A}_6fps", tree / "20221020_3-8_250_highbmihand_zoom_highSchoolGym_a")
    (scene,) = bedlam.check_layout(tree)
    assert (scene.fps, scene.images) == (6, "20221020_3-8_250_highbmihand_zoom_highSchoolGym_a/png")


# ------------------------------------------------------------------------------------------- labels, instances
def test_label_file_reads_back_exactly(raw, labels):
    lab = read_labels(raw / LABELS[SCENE_B])
    ref = labels[SCENE_B]
    assert lab.imgname == ref["imgname"].tolist() and lab.sub == ref["sub"].tolist()
    for key in ("pose_world", "shape", "trans_world", "cam_int", "cam_ext"):
        np.testing.assert_array_equal(getattr(lab, key), ref[key])
    np.testing.assert_array_equal(lab.gtkps, ref["gtkps"][:, :, :2])
    assert ref["gtkps"].shape[1:] == (127, 3) and ref["pose_world"].shape[1] == 165 and ref["shape"].shape[1] == 11
    assert lab.frame.tolist() == [0, 5, 10, 15] and lab.sequence == ["seq_000000"] * 4


def test_instances_without_a_body_model(plain, labels):
    insts, dropped = plain
    small, missing = expected_drops(labels)
    assert small == [(SCENE_A, 8)] and missing == [(SCENE_B, 2)]  # the zoom's first (far) frame; frame 10
    assert dropped == [Dropped(f"{LABELS[SCENE_A]}#8", bedlam.SMALL_BOX, 1),
                       Dropped(f"{LABELS[SCENE_B]}#2", bedlam.NO_IMAGE, 1)]
    n_rows = sum(len(lab["imgname"]) for lab in labels.values())
    assert len(insts) == n_rows - 2 == 24
    keys = [(i.camera_name, i.sequence, i.frame_index, i.person_index) for i in insts]
    assert keys == sorted(keys)
    for inst in insts:
        scene, r = row_of(inst, labels)
        lab = labels[scene]
        assert np.isnan(inst.world_coords).all() and inst.world_coords.shape == (55, 3)
        np.testing.assert_array_equal(inst.keypoints2d, lab["gtkps"][r, :55, :2])
        # the fit round-trips exactly; the neutral model the parameters belong to
        b = inst.body_model
        assert (b.model, b.gender, b.root) == ("smplx", "neutral", None)
        np.testing.assert_array_equal(b.pose, lab["pose_world"][r])
        np.testing.assert_array_equal(b.betas, lab["shape"][r])
        np.testing.assert_array_equal(b.trans, lab["trans_world"][r])
        # camera: R = cam_ext[:3, :3], centre -R^T T (mm); the world -> camera map is BEDLAM's
        ext = lab["cam_ext"][r]
        np.testing.assert_array_equal(inst.camera.intrinsic_matrix, lab["cam_int"][r])
        np.testing.assert_allclose(inst.camera.world_to_camera([[1000.0, -500, 2000]]),
                                   [(ext[:3, :3] @ [1.0, -0.5, 2] + ext[:3, 3]) * 1000], atol=1e-9)
        kp = inst.keypoints2d
        lo, hi = kp.min(0), kp.max(0)
        np.testing.assert_allclose(inst.bbox, [*((lo + hi) / 2 - (hi - lo) * 0.525), *((hi - lo) * 1.05)])
        assert inst.subject == lab["sub"][r] and inst.split == "train"
        assert inst.source.endswith(f"/{inst.sequence.split('/')[1]}_{inst.frame_index:04d}.png")
    a = [i for i in insts if i.sequence == f"{SCENE_A}/seq_000000" and i.frame_index == 0]
    assert [i.person_index for i in a] == [0, 1] and a[0].camera.R.tolist() == a[1].camera.R.tolist()
    assert not np.allclose(a[0].camera.t, a[1].camera.t)  # BEDLAM's world is per person: another origin
    # without a body model nothing samples: every labelled frame of the 30 fps scene
    assert [i.frame_index for i in insts if i.camera_name == SCENE_C] == list(range(10))


def test_3d_joints_project_onto_gtkps(with_model, plain, labels, models):
    insts, dropped = with_model
    # the same rows as without the body model, less those the pose sampler skips
    assert dropped == plain[1]
    keys = {(i.source, i.person_index) for i in plain[0]}
    assert {(i.source, i.person_index) for i in insts} < keys and len(insts) >= 12
    errors = [np.abs(i.camera.project(i.world_coords) - i.keypoints2d).max() for i in insts]
    assert max(errors) < 1e-2  # px (gtkps are float32)
    model = fx.tiny_smplx()
    for inst in insts:
        scene, r = row_of(inst, labels)
        lab = labels[scene]
        rest = fx.rest_joints(model, lab["shape"][r])
        np.testing.assert_allclose(inst.body_model.root, rest[0], atol=1e-12)
        np.testing.assert_allclose(inst.world_coords / 1000, fx.forward_kinematics(lab["pose_world"][r], rest)
                                   + lab["trans_world"][r], atol=1e-6)  # (smplx's Rodrigues adds 1e-8 to angles)
        # the fit moved into the camera is BEDLAM's own camera-frame fit (its trans_cam excludes cam_ext's T)
        orient, trans = to_camera(inst.body_model, inst.camera.R, inst.camera.t / 1000)
        np.testing.assert_allclose(rodrigues(orient), rodrigues(lab["pose_cam"][r, :3]), atol=1e-9)
        np.testing.assert_allclose(trans, lab["trans_cam"][r] + lab["cam_ext"][r][:3, 3], atol=1e-9)


def test_joints_are_smplx_forward_joints(with_model, labels, models):
    """The first 55 joints of smplx.SMPLX.forward (flat hand mean, 11 betas) on the tiny model file: the vertex
    joints it appends are indexed beyond the tiny mesh, so they are pointed at its vertices."""
    import smplx
    import torch

    insts, _ = with_model
    model = smplx.SMPLX(str(models / "smplx"), gender="neutral", num_betas=11, flat_hand_mean=True,
                        use_pca=False, batch_size=len(insts))
    selector = model.vertex_joint_selector
    selector.extra_joints_idxs = selector.extra_joints_idxs % model.v_template.shape[0]
    rows = [row_of(i, labels) for i in insts]
    pose = torch.tensor(np.array([labels[s]["pose_world"][r] for s, r in rows]), dtype=torch.float32)
    out = model(betas=torch.tensor(np.array([labels[s]["shape"][r] for s, r in rows]), dtype=torch.float32),
                global_orient=pose[:, :3], body_pose=pose[:, 3:66], jaw_pose=pose[:, 66:69],
                leye_pose=pose[:, 69:72], reye_pose=pose[:, 72:75], left_hand_pose=pose[:, 75:120],
                right_hand_pose=pose[:, 120:165],
                transl=torch.tensor(np.array([labels[s]["trans_world"][r] for s, r in rows]), dtype=torch.float32))
    ours = np.array([i.world_coords for i in insts]) / 1000
    assert out.joints.shape[1] == 127
    np.testing.assert_allclose(out.joints[:, :55].detach().numpy(), ours, atol=2e-5)


def test_adaptive_sampling_and_frame_step(raw, models, with_model, labels):
    insts, _ = with_model
    frames = {s: [i.frame_index for i in insts if i.camera_name == s] for s in (SCENE_A, SCENE_B, SCENE_C)}
    # 40 mm per frame: posepile's sampler keeps a pose 100 mm away from each of its last 100 kept ones
    assert frames[SCENE_C] == [0, 3, 6, 9]
    assert all(f % 5 == 0 for f in frames[SCENE_A] + frames[SCENE_B])  # the 6 fps files: every 5th frame
    params = {"body_model_dir": str(models), "scenes": [SCENE_C]}
    assert [i.frame_index for i in bedlam.instances(raw, {**params, "frame_step": 5})] == [0, 5]
    assert [i.frame_index for i in bedlam.instances(raw, {**params, "adaptive_sampling_mm": 0})] == list(range(10))
    # the 6 fps scenes are the same with a step of 5: their frames are multiples of 5 already
    a = bedlam.instances(raw, {"scenes": [SCENE_A], "frame_step": 5})
    assert len(a) == len(bedlam.instances(raw, {"scenes": [SCENE_A]})) == len(labels[SCENE_A]["imgname"]) - 1


def test_sampler_remembers_the_last_kept_poses():
    """posepile's AdaptivePoseSampler2 compares with the last ``memory`` kept poses, not only the last one."""
    a, b = np.zeros((3, 3)), np.full((3, 3), 150.0 / np.sqrt(3))  # b is 150 mm from a
    recent, last_only = AdaptivePoseSampler2(100, 100), AdaptivePoseSampler2(100, 1)
    assert [recent.should_keep(p) for p in (a, b, a + 10)] == [True, True, False]
    assert [last_only.should_keep(p) for p in (a, b, a + 10)] == [True, True, True]
    nan = a.copy()
    nan[0] = np.nan
    s = AdaptivePoseSampler2(100, 100)
    assert [s.should_keep(p) for p in (nan, a)] == [True, True]  # a joint valid again is new information


# ------------------------------------------------------------------------------------------- frames
def test_closeup_frames_are_turned_upright(raw, labels):
    spec = {s.name: s for s in fx.fixture_scenes(SEED)}
    stored = cv2.imread(str(raw / SCENE_B / "png/seq_000000/seq_000000_0005.png"))
    assert stored.shape == (720, 1280, 3)  # as Unreal rendered it
    lab = labels[SCENE_B]
    np.testing.assert_array_equal(lab["cam_int"][0][:2, 2], [360, 640])  # the labels describe the portrait image
    source = bedlam.frame_source(raw)
    ((i, frame),) = list(source(f"{SCENE_B}/png/seq_000000/seq_000000_0005.png", [5]))
    assert i == 5 and frame.image.shape == (1280, 720, 3)
    np.testing.assert_array_equal(frame.image, cv2.rotate(stored, cv2.ROTATE_90_CLOCKWISE))
    kp = lab["gtkps"][1, :55, :2].astype(np.float64)  # row 1: frame 5
    err = mark_errors(frame.image, kp, 5, 12)
    assert len(err) >= 8 and err.max() < 0.3
    mask = frame.masks[0]
    assert set(frame.masks) == {0} and mask.shape == (1280, 720)
    inside = np.round(kp).astype(int)
    inside = inside[(inside >= 0).all(1) & (inside < [720, 1280]).all(1)]
    assert len(inside) >= 30
    assert mask[inside[:, 1], inside[:, 0]].all() and not mask[:40, :40].any()
    # a landscape scene's frames and masks are used as stored
    ((_, frame),) = list(source(f"{SCENE_A}_6fps/png/seq_000000/seq_000000_0010.png", [10]))
    np.testing.assert_array_equal(frame.image, cv2.imread(str(raw / f"{SCENE_A}_6fps/png/seq_000000/"
                                                                    "seq_000000_0010.png")))
    assert set(frame.masks) == {0, 1}  # two people in the frame, both given the frame's person mask
    # the 30 fps scene has no masks
    ((_, frame),) = list(source(f"{SCENE_C}_30fps/png/seq_000000/seq_000000_0004.png", [4]))
    assert frame.masks == {} and frame.image.shape == (720, 1280, 3)
    assert spec[SCENE_B].closeup and not spec[SCENE_A].closeup


def test_mp4_frames_are_portrait_already(raw, labels):
    insts = bedlam.instances(raw, {"images": "mp4", "scenes": [SCENE_B]})
    # the video holds every frame: frame 10, whose PNG is missing, is there
    assert [(i.source, i.frame_index) for i in insts] == [(f"{SCENE_B}/mp4/seq_000000.mp4", f) for f in (0, 5, 10, 15)]
    frames = dict(bedlam.frame_source(raw, {"images": "mp4"})(insts[0].source, [0, 10]))
    assert frames[10].image.shape == (1280, 720, 3)
    err = mark_errors(frames[10].image, labels[SCENE_B]["gtkps"][2, :55, :2].astype(np.float64), 5, 12)
    assert len(err) >= 8 and np.median(err) < 0.5
    assert frames[10].masks[0].shape == (1280, 720)  # the landscape mask, turned


# ------------------------------------------------------------------------------------------- conversion
@pytest.fixture(scope="module")
def cache(raw, models, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bedlam_cache") / "bedlam"
    convert("bedlam", raw, out, {"body_model_dir": str(models)}, progress=False)
    return out


def test_conversion_keeps_fits_joints_and_marks(cache, labels, models, with_model):
    with Cache(cache) as c:
        examples = list(c.examples())
        assert len(examples) == len(with_model[0]) == c.split_counts()["train"]
        assert {q["path"] for q in c.quarantine} >= {f"{LABELS[SCENE_A]}#8", f"{LABELS[SCENE_B]}#2"}
        prov = c.attrs["provenance"]
        prov = json.loads(prov) if isinstance(prov, str) else prov
        assert prov["body_model"] == {"model": "smplx", "source": "BEDLAM's own SMPL-X parameters"}
        assert prov["body_model_dir"] == str(models)
    n_marks = 0
    for ex in examples:
        seq = ex.sequence.split("/")[1]
        lab = labels[ex.camera_name]
        rows = [i for i, n in enumerate(lab["imgname"]) if n == f"{seq}/{seq}_{ex.frame_index:04d}.png"]
        r = next(i for i in rows if np.allclose(lab["pose_world"][i], ex.body_model.pose))
        np.testing.assert_array_equal(ex.body_model.betas[:11], lab["shape"][r])
        np.testing.assert_array_equal(ex.body_model.trans, lab["trans_world"][r])
        # the 3D joints through the crop camera land on the crop's 2D keypoints, and those on the marks
        proj = ex.camera.project(np.asarray(ex.world_coords, np.float64))
        assert np.abs(proj - ex.keypoints2d).max() < 0.05
        image = decode_jpeg(ex.image)
        err = mark_errors(image, ex.keypoints2d.astype(np.float64), 4, 12)
        n_marks += len(err)
        assert len(err) == 0 or np.median(err) < 0.6
    assert n_marks > 100


# ------------------------------------------------------------------------------------------- errors
def test_broken_label_files_are_named(raw, tmp_path):
    tree = copy_raw(raw, tmp_path)
    path = tree / LABELS[SCENE_C]
    data = dict(np.load(path))
    np.savez(path, **{k: v for k, v in data.items() if k != "cam_ext"})
    with pytest.raises(RawFileError, match="no 'cam_ext' array") as e:
        bedlam.instances(tree)
    assert e.value.where == str(path)
    np.savez(path, **{**data, "pose_world": np.array([None] * len(data["imgname"]), object)})
    with pytest.raises(RawFileError, match="'pose_world' holds Python objects"):
        bedlam.instances(tree)
    np.savez(path, **{**data, "imgname": np.array(["seq_000000/frame_0000.png"] * len(data["imgname"]))})
    with pytest.raises(RawFileError, match=r"imgname\[0\] is 'seq_000000/frame_0000.png'"):
        bedlam.instances(tree)
    np.savez(path, **{**data, "shape": data["shape"][:, None]})
    with pytest.raises(RawFileError, match="'shape' has shape"):
        bedlam.instances(tree)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(RawFileError, match="unreadable label file: not an npz archive, or truncated or corrupt"):
        bedlam.instances(tree)
    # a non-finite row is dropped and counted
    bad = {k: v.copy() for k, v in data.items()}
    bad["trans_world"][3] = np.nan
    np.savez(path, **bad)
    dropped = []
    insts = bedlam.instances(tree, {"scenes": [SCENE_C]}, dropped)
    assert len(insts) == 9 and dropped == [Dropped(f"{LABELS[SCENE_C]}#3", bedlam.NONFINITE, 1)]


def test_body_model_folder_errors(raw, models, tmp_path):
    with pytest.raises(ParamsError, match="smplx/SMPLX_NEUTRAL.npz") as e:
        bedlam.instances(raw, {"body_model_dir": str(tmp_path)})
    assert e.value.where == "datasets.bedlam.body_model_dir"
    assert bedlam.check_params({"body_model_dir": None})["body_model_dir"] == ""  # params.yaml's null
    arrays = fx.tiny_smplx()
    bad = tmp_path / "bad"
    (bad / "smplx").mkdir(parents=True)
    np.savez(bad / "smplx/SMPLX_NEUTRAL.npz", **{k: v for k, v in arrays.items() if k != "J_regressor"})
    with pytest.raises(RawFileError, match="no 'J_regressor' array"):
        bedlam.instances(raw, {"body_model_dir": str(bad)})
    # a pickled object in the model file is refused, never unpickled
    np.savez(bad / "smplx/SMPLX_NEUTRAL.npz", **{**arrays, "v_template": np.array([{"x": 1}], object)})
    with pytest.raises(RawFileError, match="'v_template' holds Python objects"):
        bedlam.instances(raw, {"body_model_dir": str(bad)})
    np.savez(bad / "smplx/SMPLX_NEUTRAL.npz", **{**arrays, "shapedirs": arrays["shapedirs"][:, :, :20]})
    with pytest.raises(RawFileError, match="10 shape components, the fits have 11 betas"):
        bedlam.instances(raw, {"body_model_dir": str(bad)})
    assert zipfile.is_zipfile(models / "smplx/SMPLX_NEUTRAL.npz")


def test_params_are_checked():
    for bad, key in (({"images": "jpg"}, "images"), ({"frame_step": 0}, "frame_step"),
                     ({"sampler_memory": 0}, "sampler_memory"), ({"scenes": ["a", "a"]}, "scenes"),
                     ({"min_box_px": -1}, "min_box_px"), ({"adaptive_sampling_mm": -5}, "adaptive_sampling_mm")):
        with pytest.raises(ParamsError) as e:
            bedlam.check_params(bad)
        assert e.value.where == f"datasets.bedlam.{key}"
    assert bedlam.splits() == ("train",)
    assert bedlam.JOINT_INFO.n_joints == 55 and bedlam.JOINT_INFO.names[22:25] == ("jaw", "leyehf", "reyehf")
    names = bedlam.JOINT_INFO.names
    edges = {frozenset((names[a], names[b])) for a, b in bedlam.JOINT_INFO.edges}
    # the edges are SMPL-X's kinematic tree
    assert edges == {frozenset((names[k], names[p])) for k, p in enumerate(bedlam.SMPLX_PARENTS) if p >= 0}


def test_orientation_comes_from_the_labels_not_the_name(raw, tmp_path):
    """A scene named closeup whose labels describe a landscape image (BEDLAM's 20221017_1_250_batch01hand_closeup_
    suburb_a, 'staticzoomed-suburba-frameocc' in its training config, is not rotated there) is used as stored."""
    tree = tmp_path / "raw"
    name = "20221017_1_250_batch01hand_closeup_suburb_a"
    (tree / "all_npz_12_training").mkdir(parents=True)
    shutil.copy(raw / LABELS[SCENE_A], tree / f"all_npz_12_training/{name}_6fps.npz")
    shutil.copytree(raw / f"{SCENE_A}_6fps", tree / f"{name}_6fps")
    ((_, frame),) = list(bedlam.frame_source(tree)(f"{name}_6fps/png/seq_000000/seq_000000_0005.png", [5]))
    assert frame.image.shape == (720, 1280, 3)
    # and an image of the wrong size is named
    cv2.imwrite(str(tree / f"{name}_6fps/png/seq_000000/seq_000000_0010.png"), np.zeros((600, 800, 3), np.uint8))
    with pytest.raises(RawFileError, match="image is 800x600 .* intrinsics are for 1280x720"):
        list(bedlam.frame_source(tree)(f"{name}_6fps/png/seq_000000/seq_000000_0010.png", [10]))
