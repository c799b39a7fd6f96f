"""Every registered dataset meets the dataset contract (posebank.datasets.base) on its own fixture.

The per-dataset test files hold only what is specific to their dataset.
"""

import ast
import inspect
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from builds import CASES
from helpers import assert_no_output, copy_raw, folder_bytes
from posebank import datasets
from posebank.core.camera import Camera
from posebank.core.errors import DatasetError, ParamsError, RawLayoutError, UsageError
from posebank.core.skeleton import JointInfo
from posebank.core.store import SPLITS, Cache
from posebank.datasets.base import DatasetInfo, DatasetModule, Dropped, RawInstance
from posebank.pipeline.run import convert

NAMES = datasets.names()
REPO = Path(__file__).resolve().parents[2]

# a raw annotation file of each dataset that a conversion reads (a glob for names the fixture draws at random), and
# what the error says of it once truncated (after the file's path)
UNREADABLE_MAT = "unreadable annotation file: not a MATLAB file, or truncated or corrupt"
TRUNCATED = {
    "h36m": ("S9/MyPoseFeatures/D3_Positions/Waiting 1.cdf", "unreadable CDF file, truncated or corrupt"),
    "h36m_alljoints": ("S9/MyPoseFeatures/D3_Positions/Waiting 1.cdf", "unreadable CDF file, truncated or corrupt"),
    "tdhp": ("S8/Seq2/annot.mat", UNREADABLE_MAT),
    "tdhp_full": ("S3/Seq1/annot.mat", UNREADABLE_MAT),
    "tdhp_test": ("TS5/annot_data.mat", UNREADABLE_MAT),
    "muco_3dhp": ("S5/Seq2/annot.mat", UNREADABLE_MAT),
    "mupots": ("MultiPersonTestSet/TS12/annot.mat", UNREADABLE_MAT),
    # a compressed v5 file cut between two variables reads as one without the later ones
    "surreal": ("cmu/val/run1/*/*_info.mat", rf"({UNREADABLE_MAT}|no 'joints3D' variable)"),
    "tdpw": ("sequenceFiles/validation/courtyard_drinking_00.pkl", "not a readable pickle, truncated or corrupt"),
    "mpii": ("mpii_human_pose_v1_u12_1.mat", UNREADABLE_MAT),
    "agora": ("SMPLX/validation_1_withjv.pkl", "not a readable pickle, truncated or corrupt"),
    "coco": ("annotations/person_keypoints_val2017.json",
             "unreadable annotation file: not valid JSON, truncated or corrupt"),
    "bedlam": ("all_npz_12_training/20221010_3_1000_batch01hand_6fps.npz",
               "unreadable label file: not an npz archive, or truncated or corrupt"),
    "aist": ("annotations/keypoints3d/gLO_sFM_cAll_d13_mLO2_ch04.pkl", "not a readable pickle, truncated or corrupt"),
    "panoptic": ("171204_pose1/calibration_171204_pose1.json",
                 "unreadable calibration file: not valid JSON, truncated or corrupt"),
    "humbi": ("subject_1/body/extrinsic.txt", "malformed calibration file: .*truncated or corrupt"),
    "hspace": ("2021_01/train/hspace_fixture_000.tfrecord", r"record \d+: truncated \(\d+ of \d+ data bytes\)"),
    "tdpeople": ("skeleton/man03/07_01_walk/camera01/0001.txt", "unreadable skeleton file: expected 67 rows"),
    "jta": ("annotations/val/seq_301.json", "unreadable annotation file: not valid JSON, truncated or corrupt"),
    "totalcapture": ("calibration.cal", r"\d+ non-empty lines, expected 1 \+ 7 x 8 cameras"),
    "rich": ("train_body/ParkingLot1_002_burpee3/00000/002.pkl", "not a readable pickle, truncated or corrupt"),
    "sailvos": ("fbi_4_mcs_2/31_Ped_a_f_y_tourist_02/000000_3d.txt", "unreadable 3D points file"),
    "umpm": ("Groundtruth/p2_chair_1_vm.c3d", "C3D data truncated"),
    "bmhad": ("Mocap/OpticalData/moc_s01_a01_r01.c3d", "C3D data truncated"),
    "mads": ("multi_view_data/*/*_GT.mat", UNREADABLE_MAT),
    "tdoh": ("trainset/annots.json", "unreadable annotation file: not valid JSON, truncated or corrupt"),
    "bml_movi": ("F_Subjects_1_45/F_v3d_Subject_1.mat", UNREADABLE_MAT),
    "gpa": ("xyz_gpa12_mdp_cntind_crop_cam_c2g.json",
            "unreadable annotation file: not valid JSON, truncated or corrupt"),
    "aspset": ("trainval/joints_3d/*/*.c3d", "C3D data truncated"),
    "ikea": ("*/*/dev1/pose3d/000000.json", "unreadable pose file: not valid JSON, truncated or corrupt"),
    "fit3d": ("train/s03/joints3d_25/squat.json", "unreadable joints file: not valid JSON, truncated or corrupt"),
    "chi3d": ("train/s02/joints3d_25/Grab 4.json", "unreadable joints file: not valid JSON, truncated or corrupt"),
    "humansc3d": ("train/s02/joints3d_25/001.json", "unreadable joints file: not valid JSON, truncated or corrupt"),
    "behave": ("sequences/*/t0000.000/person/person_J3d.json",
               "unreadable joints file: not valid JSON, truncated or corrupt"),
    "human4d": ("S1/*/Dump/gposes3d/0.npy", "unreadable pose file: not an npy array, truncated or corrupt"),
    "spec": ("annotations/train.npz", "unreadable annotation file: .*truncated or corrupt"),
}


def wrong_value(default):
    """A value of another type than ``default``'s."""
    if isinstance(default, bool):
        return "yes"
    if isinstance(default, (int, float)):
        return "many"
    if isinstance(default, str):
        return 5
    if isinstance(default, (list, tuple)):
        return 7
    return object()


def test_every_dataset_has_a_case():
    assert set(CASES) == set(TRUNCATED) == set(NAMES)
    assert len(NAMES) == 36


def test_registry(monkeypatch):
    assert datasets.folder("tdhp_full") == "src/posebank/datasets/tdhp"
    assert datasets.folder("h36m") == "src/posebank/datasets/h36m"
    assert {datasets.family(n) for n in NAMES} == {"h36m", "tdhp", "mupots", "surreal", "tdpw", "coco", "mpii",
                                                   "agora", "bedlam", "aist", "panoptic", "humbi", "hspace",
                                                   "tdpeople", "jta", "totalcapture", "rich", "sailvos", "umpm",
                                                   "bmhad", "mads", "tdoh", "bml_movi", "gpa", "aspset",
                                                   "ikea", "imar", "behave", "human4d", "spec"}
    for name in NAMES:
        assert (REPO / datasets.folder(name)).is_dir()
    with pytest.raises(UsageError, match=r"dataset 'nosuch': unknown; implemented: h36m, tdhp, "):
        datasets.get("nosuch")
    monkeypatch.setattr(datasets, "PLANNED", (*datasets.PLANNED, "notadataset"))  # a planned name, whichever
    with pytest.raises(UsageError, match=r"dataset 'notadataset': unknown \(planned, not implemented yet\)"):
        datasets.folder("notadataset")
    rows = {r["name"]: r for r in datasets.status()}
    assert rows["tdhp_full"]["joints"] == 28 and rows["notadataset"]["status"] == "planned"
    assert all(rows[n]["status"] == "implemented" for n in ("tdpw", "coco", "mpii", "agora", "bedlam", "aist",
                                                            "panoptic", "humbi", "sailvos", "jta", "tdpeople",
                                                            "totalcapture", "rich", "hspace", "umpm", "bmhad", "mads",
                                                            "tdoh", "bml_movi", "gpa", "aspset", "ikea", "fit3d",
                                                            "chi3d", "humansc3d", "behave", "human4d", "spec"))


@pytest.mark.parametrize("name", NAMES)
def test_module_meets_the_contract(name):
    module = datasets.get(name)
    assert isinstance(module, DatasetModule)
    info = module.INFO
    assert isinstance(info, DatasetInfo) and info.name == name and info.status == "implemented"
    assert all(isinstance(getattr(info, f), str) and getattr(info, f) for f in (
        "full_name", "homepage", "licence", "citation"))
    assert isinstance(module.JOINT_INFO, JointInfo) and module.JOINT_INFO.n_joints > 0
    assert len(set(module.JOINT_INFO.names)) == module.JOINT_INFO.n_joints
    assert all(0 <= a < module.JOINT_INFO.n_joints and 0 <= b < module.JOINT_INFO.n_joints
               for a, b in module.JOINT_INFO.edges)
    params = module.DEFAULT_PARAMS
    assert isinstance(params, Mapping) and params and not {"raw", "family"} & set(params)
    for key, value in params.items():
        assert isinstance(key, str)
        items = value if isinstance(value, list) else [value]
        assert all(isinstance(v, (bool, int, float, str)) for v in items), (key, value)  # YAML-writable
    # the functions, with the contract's parameters and defaults
    for fn, wanted in (("check_layout", [("root", inspect.Parameter.empty), ("params", None)]),
                       ("instances", [("root", inspect.Parameter.empty), ("params", None), ("dropped", None)]),
                       ("splits", [("params", None)]),
                       ("make_fixture", [("root", inspect.Parameter.empty), ("seed", 0)])):
        signature = inspect.signature(getattr(module, fn))
        given = [(p.name, p.default) for p in signature.parameters.values()
                 if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        assert given[:len(wanted)] == wanted, (fn, signature)
        assert all(p.default is not p.empty for p in list(signature.parameters.values())[len(wanted):]
                   if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)), (fn, signature)
    if hasattr(module, "frame_source"):
        assert list(inspect.signature(module.frame_source).parameters)[:2] == ["raw_root", "params"]
    # the module lives in its family folder
    assert Path(module.__file__).resolve().is_relative_to(REPO / datasets.folder(name))
    # splits: distinct, in the cache's order, the same for no params and the defaults
    splits = module.splits()
    assert isinstance(splits, tuple) and splits and splits == module.splits(dict(params))
    assert list(splits) == [s for s in SPLITS if s in splits]


def _imports(path: Path) -> list[str]:
    """Absolute names of the modules a file imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(REPO / "src").with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(REPO / "src").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[:len(parts) - node.level + 1], *([base] if base else [])])
            out += [base, *(f"{base}.{a.name}" for a in node.names)]
    return out


@pytest.mark.parametrize("family", sorted({datasets.family(n) for n in NAMES}))
def test_family_folders_import_no_other_family(family):
    """A dataset's DVC stages depend on its family folder and the shared modules only."""
    shared = {f"posebank.datasets.{m}" for m in datasets.SHARED_MODULES}
    files = sorted((REPO / "src/posebank/datasets" / family).rglob("*.py"))
    assert files
    for path in files:
        for name in _imports(path):
            if name.startswith("posebank.datasets.") and name != "posebank.datasets":
                top = ".".join(name.split(".")[:3])
                assert top in shared or top == f"posebank.datasets.{family}", (path.name, name)
            elif name == "posebank.datasets":
                pytest.fail(f"{path}: imports the registry (posebank.datasets) itself")


# ------------------------------------------------------------------------------------------- conversion
@pytest.mark.parametrize("name", NAMES)
def test_fixture_converts_with_default_params(builds, name):
    module = datasets.get(name)
    params = CASES[name].params
    c = builds.converted(name)
    module.check_layout(c.raw, params)
    assert (c.raw / ".posebank-fixture").is_file()  # make_fixture marks the trees it writes
    with Cache(c.cache) as cache:
        counts = cache.split_counts()
        assert len(cache) > 0 and sum(counts.values()) == len(cache)
        assert cache.joint_info.names == module.JOINT_INFO.names
        assert cache.attrs["citation"] == module.INFO.citation
        # the splits the params select are exactly the splits that end up with examples
        assert set(module.splits(params)) == {s for s, n in counts.items() if n}
        assert {k: v for k, v in c.counts.items() if k != "quarantined"} == {s: n for s, n in counts.items() if n}
        # what instances() dropped is in the cache's quarantine
        assert {d.where for d in c.dropped} <= {q["path"] for q in cache.quarantine}
    for d in c.dropped:
        assert isinstance(d, Dropped) and d.reason and isinstance(d.count, int) and d.count >= 0
        assert not Path(d.where).is_absolute() and str(c.raw) not in d.where
        assert (c.raw / d.where.split("#")[0]).exists(), d.where  # a file of the raw tree


@pytest.mark.parametrize("name", NAMES)
def test_instances_merge_the_params_and_are_deterministic(builds, name):
    module = datasets.get(name)
    raw = builds.raw(name)
    given = CASES[name].params
    merged = {**module.DEFAULT_PARAMS, **given}
    a, b = module.instances(raw, given), module.instances(raw, merged, [])
    assert len(a) == len(b) > 0
    splits = set(module.splits(given))
    for x, y in zip(a, b):
        assert isinstance(x, RawInstance) and isinstance(x.camera, Camera)
        assert (x.source, x.frame_index, x.split, x.subject, x.person_index) == (
            y.source, y.frame_index, y.split, y.subject, y.person_index)
        np.testing.assert_array_equal(x.world_coords, y.world_coords)
        assert x.world_coords.shape == (module.JOINT_INFO.n_joints, 3)
        assert x.split in splits and not Path(x.source).is_absolute()


@pytest.mark.parametrize("name", NAMES)
def test_conversion_is_byte_identical_when_repeated(builds, name, tmp_path):
    c = builds.converted(name)
    again = tmp_path / name
    convert(name, c.raw, again, CASES[name].params, progress=False)
    first, second = folder_bytes(c.cache), folder_bytes(again)
    assert "index.json" in first and len(first) >= 2  # the index and at least one shard
    assert sorted(p.name for p in again.iterdir()) == sorted(second)  # nothing but files (no temporaries)
    assert second == first


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", NAMES)
def test_missing_root_is_named(name, tmp_path):
    module = datasets.get(name)
    nowhere = tmp_path / "nowhere"
    params = CASES[name].params
    for call in (lambda: module.check_layout(nowhere, params), lambda: module.instances(nowhere, params, []),
                 lambda: convert(name, nowhere, tmp_path / "out" / "x", params, progress=False)):
        with pytest.raises(RawLayoutError) as e:
            call()
        assert e.value.dataset == name and e.value.root == nowhere
        assert str(e.value).startswith(f"{name}: raw dataset not found at {nowhere}")
    assert_no_output(tmp_path / "out" / "x")


@pytest.mark.parametrize("name", NAMES)
def test_unknown_param_is_named(name, tmp_path):
    module = datasets.get(name)
    bad = {"no_such_setting": 1}
    for call in (lambda: module.instances(tmp_path, bad), lambda: module.check_layout(tmp_path, bad),
                 lambda: module.splits(bad),
                 lambda: convert(name, tmp_path, tmp_path / "out" / "x", bad, progress=False)):
        with pytest.raises(ParamsError, match="unknown setting") as e:
            call()
        assert e.value.where == f"datasets.{name}.no_such_setting"
    assert_no_output(tmp_path / "out" / "x")


@pytest.mark.parametrize(("name", "key"), [(n, k) for n in NAMES for k in datasets.get(n).DEFAULT_PARAMS])
def test_wrongly_typed_param_is_named(name, key, tmp_path):
    module = datasets.get(name)
    bad = {key: wrong_value(module.DEFAULT_PARAMS[key])}
    with pytest.raises(ParamsError) as e:
        module.instances(tmp_path, bad)
    assert e.value.where == f"datasets.{name}.{key}"
    with pytest.raises(ParamsError) as e:
        module.splits(bad)
    assert e.value.where == f"datasets.{name}.{key}"


@pytest.mark.parametrize("name", NAMES)
def test_wrongly_typed_param_stops_the_conversion(name, tmp_path):
    key, default = next(iter(datasets.get(name).DEFAULT_PARAMS.items()))
    out = tmp_path / "out" / "x"
    with pytest.raises(ParamsError) as e:
        convert(name, tmp_path, out, {key: wrong_value(default)}, progress=False)
    assert e.value.where == f"datasets.{name}.{key}"
    assert_no_output(out)


@pytest.mark.parametrize("name", NAMES)
def test_truncated_annotation_file_is_named(builds, name, tmp_path):
    raw = copy_raw(builds.raw(name), tmp_path)
    pattern, problem = TRUNCATED[name]
    (path,) = sorted(raw.glob(pattern))[:1]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    out = tmp_path / "out" / name
    with pytest.raises(DatasetError) as e:
        convert(name, raw, out, CASES[name].params, progress=False)
    assert e.value.where == str(path)
    assert re.match(problem, e.value.problem), str(e.value)
    assert_no_output(out)
