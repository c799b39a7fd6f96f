"""Bad inputs, one test each: a raw tree or a cache that is broken in one way ends as one line naming the file (or
the params key) with exit status 2, or, where the data allows skipping, as quarantine entries with their reason,
counted in the stage's log, in the cache and in ``<reports>/quarantine/<dataset>.jsonl``.

The stages run in this process through their entry points (``posebank.pipeline.<stage>.main``: the same argument
parsing, params check and error exit as ``stages/<stage>.py``), so each case costs a conversion, not an interpreter
start. Faults a raw tree cannot hold (a converter handing over a wrong joint count, a non-orthonormal rotation, the
same person twice) are injected into the instances the real H36M reader returns, before the generic checks of
:mod:`posebank.pipeline.checks` see them.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from helpers import copy_raw
from posebank import datasets
from posebank.core.camera import Camera
from posebank.core.store import FORMAT_VERSION, INDEX_VERSION, Cache
from posebank.datasets.sampling import MISSING_POSE
from posebank.pipeline.checks import DUPLICATE, NON_FINITE

REPO = Path(__file__).resolve().parents[2]
H36M = {"train_subjects": [1], "test_subjects": [9]}  # the session's small H36M fixture (tests/conftest.py)
# a one-subject, one-sequence, one-camera MPI-INF-3DHP tree of three frames, and the params that select it
TDHP_TREE = {"subjects": (1,), "n_frames": 3, "cameras": (0,), "sequences": (1,)}
TDHP = {"train_subjects": [1], "val_subjects": [], "sequences": [1], "cameras": [0]}
HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in to download</body></html>\n"


# ------------------------------------------------------------------------------------------- running stages
@pytest.fixture
def stage(monkeypatch, capsys, request):
    """``stage(name, params_file, dataset) -> (exit status, stderr)``: one stage's entry point run in this process.
    Its log goes to the captured stderr (the stage installs its handler on the stream current at its first call)."""
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "posebank")}
    monkeypatch.setattr(root, "handlers", [h for h in root.handlers if not getattr(h, "_posebank", False)])
    request.addfinalizer(lambda: [logging.getLogger(n).setLevel(v) for n, v in levels.items()])

    def run(name: str, params: Path, dataset: str = "h36m") -> tuple[int, str]:
        capsys.readouterr()
        status = importlib.import_module(f"posebank.pipeline.{name}").main([dataset, "--params", str(params), "-q"])
        return status, capsys.readouterr().err

    return run


def write_params(tmp: Path, dataset: str, raw: Path, entry: dict | None = None, **pipeline) -> Path:
    """A params.yaml for one dataset, every product under ``tmp``."""
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump({
        "datasets": {dataset: {"raw": str(raw), "family": datasets.family(dataset), **(entry or {})}},
        "pipeline": {"interim": str(tmp / "interim"), "cache": str(tmp / "cache"), "reports": str(tmp / "reports"),
                     **pipeline},
        "segment": {"backend": "none"}}))
    return path


def one_error(status: int, err: str, *needles) -> str:
    """The one ``error:`` line of a failed stage (exit status 2, no traceback), holding every needle."""
    assert status == 2, (status, err)
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    for n in needles:
        assert str(n) in errors[0], (n, errors[0])
    return errors[0]


def records_of(tmp: Path, dataset: str = "h36m"):
    from posebank.pipeline.records import read_records

    return read_records(tmp / "interim" / dataset / "records.h5")


# ------------------------------------------------------------------------------------------- H36M raw files
CDF = "S{}/MyPoseFeatures/D3_Positions/{}.cdf"


def write_poses(path: Path, poses: np.ndarray) -> None:
    """A D3_Positions CDF holding ``poses`` (T, J, 3), written the way the release's files are."""
    from cdflib.cdfwrite import CDF as Writer

    path.unlink()
    flat = np.asarray(poses, np.float32).reshape(1, len(poses), -1)
    cdf = Writer(str(path), cdf_spec={"Majority": "row_major", "Compressed": False})
    cdf.write_var({"Variable": "Pose", "Data_Type": 44, "Num_Elements": 1, "Rec_Vary": True, "Compress": 0,
                   "Dim_Sizes": list(flat.shape[1:])}, var_data=flat)
    cdf.close()


def edit_poses(raw: Path, subject: int, action: str, edit) -> str:
    """Rewrite one sequence's poses as ``edit(poses)`` returns them; its raw-relative path."""
    from posebank.datasets import h36m

    rel = CDF.format(subject, action)
    write_poses(raw / rel, edit(h36m.read_poses(raw / rel).copy()))
    return rel


@pytest.fixture
def h36m_copy(h36m_raw, tmp_path) -> Path:
    return copy_raw(h36m_raw, tmp_path)


# ------------------------------------------------------------------------------------------- 1. damaged files
def test_truncated_video_is_named(h36m_copy, tmp_path, stage, record):
    """(tests/pipeline/test_errors.py has every kind of damaged video through ``posebank convert``.)"""
    video = h36m_copy / "S1" / "Videos" / "Directions 1.54138969.mp4"
    video.write_bytes(video.read_bytes()[:video.stat().st_size // 3])
    status, err = stage("convert", write_params(tmp_path, "h36m", h36m_copy, H36M))
    one_error(status, err, video, "cannot open video")
    assert not (tmp_path / "interim" / "h36m" / "records.h5").exists()
    record("bad_input", case="truncated video", errors=1)


def test_truncated_jpeg_is_quarantined_counted_and_reported(builds, tmp_path, stage, record):
    """COCO: an image without its end marker leaves out its people (quarantine entries with the reason, the count in
    crop's log, the report); MuPoTS names such a frame in an error instead (tests/pipeline/test_errors.py)."""
    raw = copy_raw(builds.raw("coco"), tmp_path)
    image = raw / "train2017" / "000000156746.jpg"
    image.write_bytes(image.read_bytes()[:image.stat().st_size // 2])
    params = write_params(tmp_path, "coco", raw)
    for name in ("convert", "frames", "detect", "segment", "crop"):
        status, err = stage(name, params, "coco")
        assert status == 0, err
    reason = "truncated JPEG (no end-of-image marker)"
    report = [json.loads(line) for line in (tmp_path / "reports" / "quarantine" / "coco.jsonl").read_text()
              .splitlines()]
    bad = [q for q in report if q["reason"] == reason]
    assert bad and {q["where"] for q in bad} == {"train2017/000000156746.jpg#156746"}
    assert f"coco: {len(bad)} left out: {reason}" in err
    with Cache(tmp_path / "cache" / "coco") as cache:
        assert [q for q in cache.quarantine if q["reason"] == reason] == [
            {"path": q["where"], "reason": reason} for q in bad]
    record("bad_input", case="truncated jpeg", quarantined=len(bad))


# ------------------------------------------------------------------------------------------- 2. calibration
def test_missing_h36m_cameras_are_named(h36m_copy, tmp_path, stage, record):
    (h36m_copy / "metadata.xml").unlink()
    status, err = stage("convert", write_params(tmp_path, "h36m", h36m_copy, H36M))
    one_error(status, err, h36m_copy, "missing metadata.xml")
    record("bad_input", case="missing calibration (h36m)", errors=1)


def test_missing_3dhp_calibration_is_named(tmp_path, stage, record):
    raw = datasets.get("tdhp").make_fixture(tmp_path / "raw", 0, **TDHP_TREE)
    (raw / "S1" / "Seq1" / "camera.calibration").unlink()
    params = write_params(tmp_path, "tdhp", raw, TDHP)
    status, err = stage("convert", params, "tdhp")
    one_error(status, err, raw, "missing S1/Seq1/camera.calibration")
    record("bad_input", case="missing calibration (3dhp)", errors=1)


# ------------------------------------------------------------------------------------------- 3. NaN / inf
def test_infinite_joints_are_dropped_and_some_nan_joints_kept(h36m_copy, tmp_path, stage, record):
    """In the test subject (every 10th frame): +inf at the pelvis of frame 0 and -inf in one coordinate of frame 20
    drop those frames' instances (one per camera) whatever pipeline.bad_instances says; NaN at one joint of frame 10
    is a missing joint (kept, NaN in the cache); a sequence all NaN is dropped as missing. Every drop is in
    convert's and crop's logs, the cache's quarantine and reports/quarantine/h36m.jsonl, with its count."""
    from posebank.datasets import h36m

    def poison(poses):
        poses[0, 0] = np.inf
        poses[20, 1, 0] = -np.inf
        poses[10, 12] = np.nan
        return poses

    edit_poses(h36m_copy, 9, "Posing 1", poison)
    all_nan = edit_poses(h36m_copy, 9, "Waiting 1", lambda poses: np.full_like(poses, np.nan))
    params = write_params(tmp_path, "h36m", h36m_copy, {**H36M, "test_frame_step": 10})
    cameras = h36m.check_params(H36M)["cameras"]
    n_inf = 2 * len(cameras)
    status, err = stage("convert", params)
    assert status == 0, err
    assert f"h36m: dropped {n_inf} ({NON_FINITE})" in err
    assert f"h36m: dropped 7 ({MISSING_POSE})" in err
    for name in ("frames", "detect", "segment", "crop"):
        status, err = stage(name, params)
        assert status == 0, err
    assert f"h36m: {n_inf} left out: {NON_FINITE}" in err
    report = [json.loads(line) for line in
              (tmp_path / "reports" / "quarantine" / "h36m.jsonl").read_text().splitlines()]
    inf = sorted(q["where"] for q in report if q["reason"] == NON_FINITE)
    assert inf == sorted(f"S9/Videos/Posing 1.{cam}.mp4#{frame}" for cam in cameras for frame in (0, 20))
    assert all(q["count"] == 1 for q in report if q["reason"] == NON_FINITE)
    assert {"where": all_nan, "reason": MISSING_POSE, "count": 7} in report
    with Cache(tmp_path / "cache" / "h36m") as cache:
        assert [{"where": q["path"], "reason": q["reason"], "count": q.get("count", 1)} for q in cache.quarantine] \
            == report
        rows = cache.read()
        posing = [i for i in range(len(cache)) if rows["sequence"][i] == "Posing 1"]
        assert sorted({int(rows["frame_index"][i]) for i in posing}) == [10, 30, 40, 50, 60]
        assert all(np.isfinite(rows["world_coords"][i]).all() for i in posing if rows["frame_index"][i] != 10)
        nan_joint = h36m.SELECTED_JOINTS.index(12)
        for i in (i for i in posing if rows["frame_index"][i] == 10):
            wc = rows["world_coords"][i]
            assert np.isnan(wc[nan_joint]).all() and np.isfinite(np.delete(wc, nan_joint, axis=0)).all()
    record("bad_input", case="inf joints", quarantined=n_inf)
    record("bad_input", case="all-nan sequence", quarantined=7)


# ------------------------------------------------------------------------------------------- injected faults
def inject(monkeypatch, dataset: str, fault) -> None:
    """The dataset's reader returns what ``fault(instances)`` makes of its instances."""
    module = datasets.get(dataset)
    real = module.instances

    def instances(root, params=None, dropped=None):
        return fault(real(root, params, dropped))

    monkeypatch.setattr(module, "instances", instances)


def with_camera(r, **change):
    c = r.camera
    fields = {f.name: getattr(c, f.name) for f in dataclasses.fields(Camera)}
    return dataclasses.replace(r, camera=Camera(**{**fields, **change}))


def _scaled_rotation(r):
    return with_camera(r, R=np.asarray(r.camera.R) * 1.1)


def _reflection(r):
    return with_camera(r, R=np.asarray(r.camera.R) @ np.diag([1.0, 1.0, -1.0]))


def _negative_focal(r):
    k = np.array(r.camera.intrinsic_matrix, np.float64)
    k[0, 0] = -k[0, 0]
    return with_camera(r, intrinsic_matrix=k)


CAMERA_FAULTS = {"non-orthonormal R": (_scaled_rotation, "camera rotation R is not orthonormal"),
                 "reflection R": (_reflection, "camera rotation R is a reflection"),
                 "negative focal length": (_negative_focal, "camera has a non-positive focal length")}


# ------------------------------------------------------------------------------------------- 4. joint count
def test_wrong_joint_count_from_a_converter_is_named(h36m_raw, tmp_path, stage, monkeypatch, record):
    def fault(instances):
        instances[3] = dataclasses.replace(instances[3], world_coords=instances[3].world_coords[:16])
        return instances

    inject(monkeypatch, "h36m", fault)
    status, err = stage("convert", write_params(tmp_path, "h36m", h36m_raw, H36M))
    line = one_error(status, err, h36m_raw / "S1" / "Videos", "has 16 joints", "skeleton 17")
    assert "#" in line  # the frame, too
    record("bad_input", case="wrong joint count (converter)", errors=1)


def test_wrong_joint_count_in_a_raw_file_is_named(h36m_copy, tmp_path, stage, record):
    rel = edit_poses(h36m_copy, 1, "Directions 1", lambda poses: poses[:, :31])
    status, err = stage("convert", write_params(tmp_path, "h36m", h36m_copy, H36M))
    one_error(status, err, h36m_copy / rel, "(T, 96)")
    record("bad_input", case="wrong joint count (raw file)", errors=1)


# ------------------------------------------------------------------------------------------- 5. metres
def test_joints_in_metres_are_named(h36m_copy, tmp_path, stage, record):
    edit_poses(h36m_copy, 1, "Directions 1", lambda poses: poses / 1000.0)
    status, err = stage("convert", write_params(tmp_path, "h36m", h36m_copy, H36M))
    line = one_error(status, err, h36m_copy / "S1" / "Videos" / "Directions 1.", "look like metres",
                     "expected millimetres")
    bone = float(line.split("median bone ")[1].split(",")[0])
    assert 0.05 < bone < 1.0, line  # a human bone, in metres
    record("bad_input", case="joints in metres", errors=1)


# ------------------------------------------------------------------------------------------- 6. cameras
def test_negative_focal_length_in_the_calibration_is_named(h36m_copy, tmp_path, stage, record):
    path = h36m_copy / "metadata.xml"
    tree = ET.parse(path)
    w0 = tree.getroot().find("w0")
    numbers = w0.text.strip().strip("[]").split()
    numbers[264] = str(-float(numbers[264]))  # fx of the first camera (after 4 x 11 x 6 extrinsics)
    w0.text = "[" + " ".join(numbers) + "]"
    tree.write(path)
    status, err = stage("convert", write_params(tmp_path, "h36m", h36m_copy, H36M))
    one_error(status, err, path, "non-positive focal length")
    record("bad_input", case="negative focal length (calibration)", errors=1)


@pytest.mark.parametrize("fault", list(CAMERA_FAULTS))
def test_bad_camera_of_an_instance_is_named(h36m_raw, tmp_path, stage, monkeypatch, record, fault):
    make, problem = CAMERA_FAULTS[fault]

    def bad(instances):
        instances[5] = make(instances[5])
        return instances

    inject(monkeypatch, "h36m", bad)
    status, err = stage("convert", write_params(tmp_path, "h36m", h36m_raw, H36M))
    one_error(status, err, h36m_raw / "S1" / "Videos", problem)
    record("bad_input", case=fault, errors=1)


# ------------------------------------------------------------------------------------------- 7. duplicates
def test_duplicate_instance_is_named(h36m_raw, tmp_path, stage, monkeypatch, record):
    inject(monkeypatch, "h36m", lambda instances: [*instances[:8], instances[7], *instances[8:]])
    status, err = stage("convert", write_params(tmp_path, "h36m", h36m_raw, H36M))
    one_error(status, err, h36m_raw / "S1" / "Videos", "duplicate instance", "person_index 0")
    record("bad_input", case="duplicate instance", errors=1)


def test_bad_instances_quarantine_drops_them_and_counts_them(h36m_raw, tmp_path, stage, monkeypatch, record):
    """pipeline.bad_instances: quarantine: the three bad cameras and the duplicate (its first kept) become drops
    with their reasons, counted in convert's log and carried in records.h5 to the cache's quarantine."""
    clean_tmp = tmp_path / "clean"
    clean_tmp.mkdir()
    status, _ = stage("convert", write_params(clean_tmp, "h36m", h36m_raw, H36M))
    assert status == 0
    n_clean = len(records_of(clean_tmp).instances)
    where = {}

    def faults(instances):
        for k, (name, (make, _)) in zip((2, 9, 20), CAMERA_FAULTS.items()):
            instances[k] = make(instances[k])
            where[name] = f"{instances[k].source}#{instances[k].frame_index}"
        where["duplicate"] = f"{instances[30].source}#{instances[30].frame_index}"
        return [*instances, instances[30]]

    inject(monkeypatch, "h36m", faults)
    status, err = stage("convert", write_params(tmp_path, "h36m", h36m_raw, H36M, bad_instances="quarantine"))
    assert status == 0, err
    records = records_of(tmp_path)
    dropped = {d.where: d.reason for d in records.dropped}
    assert len(dropped) == 4
    for name, (_, problem) in CAMERA_FAULTS.items():
        assert dropped[where[name]].startswith(problem), (name, dropped)
    assert dropped[where["duplicate"]] == DUPLICATE
    for problem in ("not orthonormal", "a reflection", "non-positive focal length", DUPLICATE):
        assert any(line.startswith("INFO") and "h36m: dropped 1 (" in line and problem in line
                   for line in err.splitlines()), (problem, err)
    assert len(records.instances) == n_clean - 3  # one more handed over, four dropped
    record("bad_input", case="bad instances quarantined", quarantined=4)


# ------------------------------------------------------------------------------------------- 8. empty split
@pytest.mark.parametrize("policy", ["error", "quarantine"])
def test_empty_split_names_the_key_that_selects_it(h36m_copy, tmp_path, stage, record, policy):
    """Every pose of the test subject missing: the test split (datasets.h36m.test_subjects) would be empty."""
    for action in ("Posing 1", "Waiting 1"):
        edit_poses(h36m_copy, 9, action, lambda poses: np.full_like(poses, np.nan))
    params = write_params(tmp_path, "h36m", h36m_copy, H36M, bad_instances=policy)
    status, err = stage("convert", params)
    if policy == "error":
        one_error(status, err, f"{params}: datasets.h36m.test_subjects", "the test split", "no instances")
        record("bad_input", case="empty split", errors=1)
    else:  # allowed, said so (and the validation stage fails on the empty expected split)
        assert status == 0, err
        assert "h36m: the test split (datasets.h36m.test_subjects) has no instances" in err
        assert records_of(tmp_path).attrs["expected_splits"] == ["train", "test"]
        record("bad_input", case="empty split allowed", quarantined=sum(
            d.count for d in records_of(tmp_path).dropped))


# ------------------------------------------------------------------------------------------- 9. formats
FORMAT_CASES = {  # dataset, fixture options, params, file, its bytes, what the error says was expected
    "coco json is html": ("coco", {}, {}, "annotations/person_keypoints_train2017.json", HTML, "not valid JSON"),
    "mpii mat is html": ("mpii", {}, {}, "mpii_human_pose_v1_u12_1.mat", HTML, "not a MATLAB file"),
    "3dhp annot.mat is text": ("tdhp", TDHP_TREE, TDHP, "S1/Seq1/annot.mat", b"annot3 = [1 2 3]\n",
                               "not a MATLAB file"),
    "h36m cdf is html": ("h36m", {"subjects": [1], "n_frames": 10}, {"train_subjects": [1], "test_subjects": []},
                         "S1/MyPoseFeatures/D3_Positions/Directions 1.cdf", HTML, "unreadable CDF file"),
}


@pytest.mark.parametrize("case", list(FORMAT_CASES))
def test_raw_file_in_another_format_is_named(tmp_path, stage, record, case):
    dataset, options, entry, rel, data, expected = FORMAT_CASES[case]
    raw = datasets.get(dataset).make_fixture(tmp_path / "raw", 0, **options)
    (raw / rel).write_bytes(data)
    status, err = stage("convert", write_params(tmp_path, dataset, raw, entry), dataset)
    one_error(status, err, raw / rel, expected)
    record("bad_input", case=case, errors=1)


# ------------------------------------------------------------------------------------------- 10. merge source
MERGE_PARAMS = {"merges": {"one": {"sources": [{"dataset": "h36m", "suffix": "",
                                                "splits": {"train": "train", "test": "test"}}]}}}


def _newer_index(folder: Path) -> tuple[Path, int, int]:
    index = json.loads((folder / "index.json").read_text())
    index["format_version"] = INDEX_VERSION + 1
    (folder / "index.json").write_text(json.dumps(index))
    return folder / "index.json", INDEX_VERSION + 1, INDEX_VERSION


def _newer_cache_format(folder: Path) -> tuple[Path, int, int]:
    index = json.loads((folder / "index.json").read_text())
    index["cache_format_version"] = FORMAT_VERSION + 1
    (folder / "index.json").write_text(json.dumps(index))
    return folder / "index.json", FORMAT_VERSION + 1, FORMAT_VERSION


def _newer_shard(folder: Path) -> tuple[Path, int, int]:
    shard = folder / json.loads((folder / "index.json").read_text())["shards"][0]["file"]
    with h5py.File(shard, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    return shard, FORMAT_VERSION + 1, FORMAT_VERSION


@pytest.mark.parametrize("damage", [_newer_index, _newer_cache_format, _newer_shard],
                         ids=["index version", "cache version in the index", "shard version"])
def test_merge_source_of_another_format_version_is_named(h36m_cache, tmp_path, record, damage):
    cache_dir = tmp_path / "cache"
    shutil.copytree(h36m_cache, cache_dir / "h36m")
    path, found, known = damage(cache_dir / "h36m")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({**MERGE_PARAMS, "pipeline": {"merged": str(tmp_path / "merged")}}))
    r = subprocess.run([sys.executable, "-m", "posebank.cli", "merge", "one", "--params", str(params),
                        "--cache-dir", str(cache_dir)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    one_error(r.returncode, r.stderr, path, f"version {found}", "is newer than this posebank reads", f"({known})")
    assert not (tmp_path / "merged").exists() or not any((tmp_path / "merged").iterdir())
    record("bad_input", case=f"merge source: {damage.__name__.strip('_')}", errors=1)


# ------------------------------------------------------------------------------------------- the knob
def test_bad_instances_setting_is_checked(h36m_raw, tmp_path, stage, record):
    status, err = stage("convert", write_params(tmp_path, "h36m", h36m_raw, H36M, bad_instances="skip"))
    one_error(status, err, "pipeline.bad_instances", "'error', 'quarantine'")
    assert not (tmp_path / "interim").exists()
    record("bad_input", case="bad_instances setting", errors=1)


def test_the_repository_params_declare_the_setting():
    assert yaml.safe_load((REPO / "params.yaml").read_text())["pipeline"]["bad_instances"] == "error"
