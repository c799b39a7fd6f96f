"""RICH: the SMPL-X joints against the smplx package, the cameras against the fixture's XML, the projection onto the
fixture's drawn marks, units, up direction, sampling and drops, and the gender table against the toolkit's file."""

import json
import os
import pickle

import cv2
import numpy as np
import pytest

from conftest import sample
from marks import mark_errors
from posebank.core.errors import ParamsError
from posebank.datasets import RawFileError, RawLayoutError, rich
from posebank.datasets.rich import body, fixture

TRAIN = "train/ParkingLot1_002_burpee3"
VAL = "val/LectureHall_009_021_reparingprojector1"
# posepile ds/rich/main.py make_joint_info and make_rich_body (isarandi/posepile@bc129c3)
POSEPILE_NAMES = (
    "pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,relb,lwri,rwri,"
    "jaw,leyehf,reyehf,lindex1,lindex2,lindex3,lmiddle1,lmiddle2,lmiddle3,lpinky1,lpinky2,lpinky3,lring1,lring2,"
    "lring3,lthumb1,lthumb2,lthumb3,rindex1,rindex2,rindex3,rmiddle1,rmiddle2,rmiddle3,rpinky1,rpinky2,rpinky3,"
    "rring1,rring2,rring3,rthumb1,rthumb2,rthumb3,nose,reye,leye,rear,lear,lto2,lto3,lhee,rto2,rto3,rhee,lthu,"
    "lindex,lmiddle,lring,lpinky,rthu,rindex,rmiddle,rring,rpinky").split(",")
POSEPILE_SELECTION = [*range(25), 28, 43, *range(55, 67), 68, 71, 73]
POSEPILE_MALES, POSEPILE_FEMALES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 20], [13, 16, 18]


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return rich.make_fixture(tmp_path_factory.mktemp("rich"))


@pytest.fixture(scope="module")
def converted(raw):
    dropped = []
    return rich.instances(raw, None, dropped), dropped


def fits_of(raw, inst):
    split = inst.source.split("/")[0]
    path = raw / f"{split}_body" / inst.sequence / f"{inst.frame_index:05d}" / f"{inst.subject}.pkl"
    with open(path, "rb") as f:
        return {k: np.asarray(v, np.float64) for k, v in pickle.load(f).items()}


def test_joint_names_and_selection_are_posepiles():
    assert list(body.SELECTION) == POSEPILE_SELECTION
    assert rich.JOINT_INFO.names == tuple(POSEPILE_NAMES[i] for i in POSEPILE_SELECTION)
    assert rich.JOINT_INFO.n_joints == 42


def test_vertex_joints_are_smplx_vertex_ids():
    from smplx.vertex_ids import vertex_ids

    assert dict(body.VERTEX_JOINTS) == {k: vertex_ids["smplx"][k] for k, _ in body.VERTEX_JOINTS}


def test_genders_are_the_toolkits_gender_json():
    real = json.loads(sample("rich/gender.json").read_text())
    assert rich.GENDERS == {int(k): v for k, v in real.items()}
    assert all(rich.GENDERS[s] == "male" for s in POSEPILE_MALES)
    assert all(rich.GENDERS[s] == "female" for s in POSEPILE_FEMALES)


def test_joints_are_smplx_forward_joints(raw, converted):
    """posepile's smplx.create settings on the tiny model files: output.joints[i_sel] x 1000."""
    import smplx
    import torch

    instances, _ = converted
    models = {g: smplx.create(str(raw / "body_models"), model_type="smplx", gender=g, use_face_contour=False,
                              num_betas=10, num_pca_comps=12, num_expression_coeffs=10, use_pca=True, ext="npz")
              for g in ("male", "female")}
    seen = set()
    for inst in instances:
        if (inst.sequence, inst.subject, inst.frame_index) in seen:
            continue
        seen.add((inst.sequence, inst.subject, inst.frame_index))
        fit = fits_of(raw, inst)
        out = models[inst.body_model.gender](**{k: torch.from_numpy(v.astype(np.float32)) for k, v in fit.items()},
                                             return_verts=False)
        expected = out.joints.detach().numpy()[0][POSEPILE_SELECTION] * 1000
        np.testing.assert_allclose(inst.world_coords, expected, atol=0.05)
        # the independent numpy forward of the fixture agrees too
        mine = fixture.forward(fixture.tiny_smplx(inst.body_model.gender), fit) * 1000
        np.testing.assert_allclose(inst.world_coords, mine, atol=1e-4)  # (smplx adds 1e-8 to angles)
    assert len(seen) >= 8


def test_camera_from_the_calibration_xml(raw):
    for scene in ("ParkingLot1", "LectureHall"):
        for cam_id, cam in fixture.fixture_cameras(scene).items():
            c = rich.read_camera(raw / "scan_calibration" / scene / "calibration" / f"{cam_id:03d}.xml")
            np.testing.assert_allclose(c.R, cam["R"], atol=1e-12)
            np.testing.assert_allclose(c.t, -cam["R"].T @ cam["T"] * 1000, atol=1e-9)  # optical centre, mm
            np.testing.assert_allclose(c.intrinsic_matrix, cam["K"])
            np.testing.assert_allclose(c.distortion_coeffs, cam["dist"])
            np.testing.assert_allclose(c.world_up, -cam["R"][1])
    ref = rich.read_camera(raw / "scan_calibration/ParkingLot1/calibration/000.xml")
    np.testing.assert_allclose(ref.world_up, [0, -1, 0])  # the reference camera's up: its -y


def test_projection_onto_the_drawn_marks(raw, converted):
    instances, _ = converted
    by_image = {}
    for inst in instances:
        by_image.setdefault(inst.source, []).append(inst)
    checked = 0
    for source, people in by_image.items():
        image = cv2.imread(str(raw / source))
        assert image.shape[:2] == (fixture.SIZE[1], fixture.SIZE[0])
        scene = people[0].sequence.split("_")[0]
        cam = fixture.fixture_cameras(scene)[int(people[0].camera_name[-2:])]
        points = []
        for inst in people:
            projected = inst.camera.project(inst.world_coords)
            expected = fixture.project(fixture.forward(fixture.tiny_smplx(inst.body_model.gender),
                                                       fits_of(raw, inst)), cam)
            np.testing.assert_allclose(projected, expected, atol=1e-3)
            points.append(projected)
        errors = mark_errors(image, np.concatenate(points), 4, 10)
        assert len(errors) and errors.max() < 1.0, (source, errors)
        checked += len(errors)
    assert checked > 100


def test_units_and_up_direction(converted):
    instances, _ = converted
    ids = {n: i for i, n in enumerate(rich.JOINT_INFO.names)}
    for inst in instances:
        w = inst.world_coords
        for a, b, lo, hi in (("lhip", "lkne", 300, 500), ("lkne", "lank", 300, 500), ("lsho", "lelb", 150, 350),
                             ("pelv", "head", 400, 800)):
            assert lo < np.linalg.norm(w[ids[a]] - w[ids[b]]) < hi, (a, b)  # mm
        up = inst.camera.world_up
        assert np.dot(w[ids["head"]] - w[ids["pelv"]], up) > 300
        assert np.dot(w[ids["head"]] - (w[ids["lhee"]] + w[ids["rhee"]]) / 2, up) > 1000


def test_instances_sampling_and_drops(raw, converted):
    instances, dropped = converted
    assert {i.split for i in instances} == {"train", "val"}
    assert {i.camera_name for i in instances} == {"cam_00", "cam_01"}  # cam_02 moves: no calibration
    assert not [i for i in instances if i.frame_index == fixture.REPEATED_FRAME]  # the sampler leaves it out
    assert not [i for i in instances if i.sequence == VAL.split("/")[1] and i.subject == "021" and i.frame_index == 1]
    moving = [d for d in dropped if d.reason == rich.NO_CALIBRATION]
    assert sorted(d.where for d in moving) == [f"{TRAIN}/cam_02", f"{VAL}/cam_02"]
    assert all(d.count == fixture.N_FRAMES for d in moving)
    assert [d.where for d in dropped if rich.NO_FIT in d.reason] == [f"{VAL}#1"]
    val = [i for i in instances if i.split == "val"]
    assert {(i.subject, i.person_index, i.body_model.gender) for i in val} == {("009", 0, "female"),
                                                                                 ("021", 1, "female")}
    # 2 views x (4 kept frames x people, less the missing fit), less one person clipped at the image border
    assert len(instances) == 2 * 4 + 2 * (2 * 4 - 1) - 1
    assert [(d.where, d.count) for d in dropped if d.reason == rich.SMALL_BOX] == [(f"{VAL}/cam_01/00002_01.jpg", 1)]
    for inst in instances:
        fit = fits_of(raw, inst)
        np.testing.assert_array_equal(inst.body_model.betas[:10], fit["betas"].ravel())
        np.testing.assert_array_equal(inst.body_model.trans, fit["transl"].ravel())


def test_min_box_rule(raw):
    dropped = []
    assert rich.instances(raw, {"min_box_px": 10000.0}, dropped) == []
    assert sum(d.count for d in dropped if d.reason == rich.SMALL_BOX) == 22


def test_without_a_body_model_the_key_is_named(raw, tmp_path):
    with pytest.raises(ParamsError, match="SMPLX_(MALE|FEMALE).npz") as e:
        rich.instances(raw, {"body_model_dir": str(tmp_path)})
    assert e.value.where == "datasets.rich.body_model_dir" and e.value.exit_code == 2
    with pytest.raises(ParamsError) as e:
        rich.instances(raw, {"body_model_dir": None})
    assert e.value.where == "datasets.rich.body_model_dir"


def test_missing_calibration_folder_is_named(raw, tmp_path):
    from helpers import copy_raw

    copy = copy_raw(raw, tmp_path)
    for f in (copy / "scan_calibration/LectureHall/calibration").iterdir():
        f.unlink()
    (copy / "scan_calibration/LectureHall/calibration").rmdir()
    with pytest.raises(RawLayoutError, match="scan_calibration/LectureHall/calibration/"):
        rich.check_layout(copy)


def test_hostile_or_bad_files_are_named(raw, tmp_path):
    from helpers import copy_raw

    copy = copy_raw(raw, tmp_path)
    fit = copy / "train_body/ParkingLot1_002_burpee3/00001/002.pkl"
    fit.write_bytes(pickle.dumps(os.system))
    with pytest.raises(RawFileError, match="refused to unpickle") as e:
        rich.instances(copy)
    assert e.value.where == str(fit)
    fit.write_bytes(pickle.dumps({"betas": np.zeros((1, 10), np.float32)}))
    with pytest.raises(RawFileError, match="no global_orient, body_pose, transl"):
        rich.instances(copy)
    xml = copy / "scan_calibration/ParkingLot1/calibration/001.xml"
    xml.write_text("<opencv_storage><Intrinsics><data>1 0 0 0 1 0 0 0 1</data></Intrinsics></opencv_storage>")
    with pytest.raises(RawFileError, match="no <CameraMatrix><data>"):
        rich.read_camera(xml)


def test_frames_that_are_not_jpeg_are_named(raw, tmp_path):
    from helpers import copy_raw

    copy = copy_raw(raw, tmp_path)
    folder = copy / TRAIN / "cam_00"
    for f in folder.iterdir():
        f.rename(f.with_suffix(".bmp"))
    with pytest.raises(RawLayoutError, match=r"cam_00/<frame:05d>_00.jpg \(no JPEG frames; found .bmp"):
        rich.check_layout(copy)


def test_convert_without_a_body_model_exits_2(raw, tmp_path, capsys):
    import yaml

    from posebank.cli import main

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"datasets": {"rich": {"raw": str(raw), "family": "rich",
                                                            "body_model_dir": str(tmp_path / "none")}}}))
    assert main(["convert", "rich", "--raw", str(raw), "--out", str(tmp_path / "out"), "--params", str(params),
                 "-q"]) == 2
    assert "datasets.rich.body_model_dir" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
