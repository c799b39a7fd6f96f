"""Every user or data error ends as one line, `error: <file or key>: <problem>`, exit status 2, no traceback,
and nothing half-written; the CLI's safety rails (fixture into a non-empty folder, --out over a foreign file)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import H36M_SMALL_PARAMS, REPO
from helpers import assert_no_output, folder_bytes
from posebank.core.camera import Camera
from posebank.core.skeleton import JointInfo
from posebank.core.store import CacheWriter, Example

POSEBANK = [sys.executable, "-m", "posebank.cli"]


def run(*args, cwd=None):
    return subprocess.run([*map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def assert_one_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, r.stderr
    for n in needles:
        assert str(n) in errors[0], (n, errors[0])
    return errors[0]


def write_params(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


@pytest.fixture
def workspace(h36m_raw, tmp_path):
    """A folder with a valid params.yaml for the small H36M fixture."""
    params = {"datasets": {"h36m": {"raw": str(h36m_raw), "family": "h36m", **H36M_SMALL_PARAMS}},
              "pipeline": {"interim": str(tmp_path / "interim"), "cache": str(tmp_path / "cache")},
              "segment": {"backend": "none"}}
    write_params(tmp_path / "params.yaml", params)
    return tmp_path, params


def stage(name, cwd, *extra):
    return run(sys.executable, REPO / "stages" / f"{name}.py", "h36m", "-q", *extra, cwd=cwd)


# ------------------------------------------------------------------------------------------- params
def test_malformed_yaml(workspace):
    tmp, _ = workspace
    write_params(tmp / "params.yaml", "crop:\n  jpeg_quality: [95\n")
    assert_one_error(stage("convert", tmp), "params.yaml", "malformed YAML", "line")


def test_missing_params_file_is_an_error_not_silence(workspace):
    tmp, _ = workspace
    assert_one_error(stage("convert", tmp, "--params", "nope.yaml"), "nope.yaml", "not found")
    r = run(*POSEBANK, "convert", "h36m", "--raw", tmp, "--out", tmp / "o", "--params", tmp / "nope.yaml")
    assert_one_error(r, "nope.yaml", "not found")


@pytest.mark.parametrize(("section", "value", "key"), [
    ("crop", {"jpeg_quality": "high"}, "crop.jpeg_quality"),
    ("crop", {"interpolation": "bogus"}, "crop.interpolation"),
    ("pipeline", {"shard_frames": 0}, "pipeline.shard_frames"),
    ("detect", {"treshold": 0.3}, "detect.treshold"),
    ("segment", {"backend": "sam"}, "segment.checkpoint"),
])
def test_every_stage_checks_the_whole_params_file_first(workspace, section, value, key):
    """A bad crop setting fails convert at once, before any work (nothing is written)."""
    tmp, params = workspace
    params[section] = {**params.get(section, {}), **value}
    write_params(tmp / "params.yaml", params)
    for name in ("convert", "frames", "detect", "segment", "crop", "validate"):
        assert_one_error(stage(name, tmp), key)
    assert not (tmp / "interim").exists()


def test_allowed_values_are_named(workspace):
    tmp, params = workspace
    params["crop"] = {"interpolation": "bogus"}
    write_params(tmp / "params.yaml", params)
    line = assert_one_error(stage("crop", tmp))
    assert "'cubic', 'linear', 'nearest'" in line


@pytest.mark.parametrize(("entry", "key"), [
    ({"train_frame_step": "five"}, "datasets.h36m.train_frame_step"),
    ({"correct_s9": 1}, "datasets.h36m.correct_s9"),
    ({"framestep": 5}, "datasets.h36m.framestep"),
    ({"train_subjects": [1, 12]}, "datasets.h36m.train_subjects"),
    ({"cameras": ["54138969", "1"]}, "datasets.h36m.cameras"),
])
def test_dataset_params_are_checked(workspace, entry, key):
    tmp, params = workspace
    params["datasets"]["h36m"].update(entry)
    write_params(tmp / "params.yaml", params)
    for name in ("convert", "detect", "crop"):
        assert_one_error(stage(name, tmp), key)
    assert_one_error(run(*POSEBANK, "params", "--params", tmp / "params.yaml"), key)


def test_family_must_name_the_datasets_code_folder(workspace):
    tmp, params = workspace
    params["datasets"]["h36m"]["family"] = "tdhp"
    write_params(tmp / "params.yaml", params)
    assert_one_error(stage("detect", tmp), "datasets.h36m.family", "'h36m'")
    del params["datasets"]["h36m"]["family"]
    write_params(tmp / "params.yaml", params)
    assert_one_error(run(*POSEBANK, "params", "--params", tmp / "params.yaml"), "datasets.h36m.family")
    params["datasets"]["tdhp"] = {"raw": str(tmp), "family": "h36m"}  # another dataset's entry is checked too
    params["datasets"]["h36m"]["family"] = "h36m"
    write_params(tmp / "params.yaml", params)
    assert_one_error(stage("crop", tmp), "datasets.tdhp.family")


def test_out_of_range_cameras_of_3dhp(tmp_path):
    params = write_params(tmp_path / "params.yaml", {"datasets": {"tdhp": {"raw": str(tmp_path), "family": "tdhp",
                                                                          "cameras": [0, 16]}}})
    assert_one_error(run(*POSEBANK, "params", "--params", params), "datasets.tdhp.cameras")
    assert_one_error(run(sys.executable, REPO / "stages" / "convert.py", "tdhp", cwd=tmp_path),
                     "datasets.tdhp.cameras")


def test_unknown_dataset_and_section(workspace):
    tmp, params = workspace
    assert_one_error(run(sys.executable, REPO / "stages" / "convert.py", "nosuch", cwd=tmp), "nosuch", "h36m")
    params["cropping"] = {}
    write_params(tmp / "params.yaml", params)
    assert_one_error(stage("convert", tmp), "cropping", "unknown section")


def test_the_repository_params_file_is_valid():
    r = run(*POSEBANK, "params", "--params", REPO / "params.yaml")
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------------------------------- outputs
def test_out_is_checked_before_any_work(h36m_raw, tmp_path):
    """Every unusable --out is refused before any work (the raw tree and params would fail later: this run has
    no params, so the default subjects are missing from the small fixture), and nothing is written."""
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir" / "mine.txt").write_text("keep")
    (tmp_path / "afile").write_text("keep")
    for out, needles in ((tmp_path / "adir", ("adir", "exists, is not empty and is not a posebank cache folder")),
                         (tmp_path / "afile", ("afile", "is a file; a cache is a folder")),
                         ("", ("output folder name",)),
                         (Path("/proc/posebank-test"), ("/proc", "not writable")),
                         (Path("/proc/posebank-test/out"), ("/proc/posebank-test", "cannot create"))):
        r = run(*POSEBANK, "convert", "h36m", "--raw", h36m_raw, "--out", out, cwd=tmp_path)
        assert_one_error(r, *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]
    assert [p.name for p in (tmp_path / "adir").iterdir()] == ["mine.txt"]
    assert (tmp_path / "adir" / "mine.txt").read_text() == "keep" and (tmp_path / "afile").read_text() == "keep"


def test_out_checked_but_failed_run_leaves_no_folder(h36m_raw, tmp_path):
    """A usable --out whose conversion then fails (raw tree incomplete for the default subjects): nothing is left,
    neither the cache folder (not even empty) nor a temporary beside it."""
    out = tmp_path / "out" / "h36m"
    r = run(*POSEBANK, "convert", "h36m", "--raw", h36m_raw, "--out", out, cwd=tmp_path)
    assert_one_error(r, "raw dataset incomplete")
    assert_no_output(out)


def test_out_refuses_to_overwrite_a_foreign_file(h36m_raw, tmp_path):
    out = tmp_path / "notes.h5"
    out.write_text("my notes")
    r = run(*POSEBANK, "convert", "h36m", "--raw", h36m_raw, "--out", out, cwd=tmp_path)
    assert_one_error(r, "notes.h5", "is a file; a cache is a folder")
    assert out.read_text() == "my notes"
    # nor a single-file cache (still readable, never overwritten), nor a folder that is not a cache
    params = write_params(tmp_path / "p.yaml", {"datasets": {"h36m": H36M_SMALL_PARAMS}})
    single = tmp_path / "single.h5"
    with CacheWriter(single, "h36m", JointInfo("pelv,head", "pelv-head")):
        pass
    before = single.read_bytes()
    r = run(*POSEBANK, "convert", "h36m", "--raw", h36m_raw, "--out", single, "--params", params, "-q")
    assert_one_error(r, "single.h5", "is a file; a cache is a folder")
    assert single.read_bytes() == before
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes")
    r = run(*POSEBANK, "convert", "h36m", "--raw", h36m_raw, "--out", folder, "--params", params, "-q")
    assert_one_error(r, "mine", "exists, is not empty and is not a posebank cache folder")
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "sub"]
    assert (folder / "notes.txt").read_text() == "my notes"
    # a folder with an index.json that is not a cache's
    (folder / "index.json").write_text('{"format": "something else"}')
    r = run(*POSEBANK, "convert", "h36m", "--raw", h36m_raw, "--out", folder, "--params", params, "-q")
    assert_one_error(r, "mine", "not a readable posebank cache")
    assert sorted(p.name for p in folder.iterdir()) == ["index.json", "notes.txt", "sub"]


def test_leftovers_of_killed_runs_are_removed(h36m_raw, tmp_path):
    from posebank.core.store import Cache

    out = tmp_path / "h36m"
    params = write_params(tmp_path / "p.yaml", {"datasets": {"h36m": H36M_SMALL_PARAMS}})
    # beside the cache folder: a killed run's temporary working folder (interim shards) and a stray temporary
    stale_file = tmp_path / ".h36m.pid4194401.abc123.tmp"
    stale_dir = tmp_path / ".h36m.pid4194402.def456.tmpdir"
    stale_file.write_bytes(b"half")
    (stale_dir / "frames").mkdir(parents=True)
    (stale_dir / "frames" / "all.h5").write_bytes(b"x" * 1000)
    r = run(*POSEBANK, "convert", "h36m", "--raw", h36m_raw, "--out", out, "--params", params, "-q")
    assert r.returncode == 0, r.stderr
    assert (out / "index.json").is_file() and not stale_file.exists() and not stale_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h36m", "p.yaml"]
    with Cache(out) as cache:
        assert len(cache) > 0
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in cache.files)
    first = folder_bytes(out)
    # inside the cache folder: a killed rebuild's half-written shard and index; and beside it again
    stale_shard = out / ".all.h5.pid4194403.ghi789.tmp"
    stale_index = out / ".index.json.pid4194404.jkl012.tmp"
    stale_shard.write_bytes(b"half a shard")
    stale_index.write_bytes(b"{")
    stale_dir.mkdir()
    (stale_dir / "records.h5").write_bytes(b"x" * 1000)
    r = run(*POSEBANK, "convert", "h36m", "--raw", h36m_raw, "--out", out, "--params", params, "-q")
    assert r.returncode == 0, r.stderr
    assert not stale_shard.exists() and not stale_index.exists() and not stale_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h36m", "p.yaml"]
    assert folder_bytes(out) == first  # the rebuild over the existing cache folder gives the same bytes


# ------------------------------------------------------------------------------------------- raw data
@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated"])
def test_damaged_video_is_one_line_or_a_quarantine_entry(h36m_raw, tmp_path, damage):
    raw = tmp_path / "raw"
    shutil.copytree(h36m_raw, raw)
    video = sorted((raw / "S1" / "Videos").glob("*.mp4"))[0]
    data = video.read_bytes()
    video.write_bytes({"empty": b"", "garbage": bytes(range(256)) * 64, "truncated": data[:len(data) // 3]}[damage])
    out = tmp_path / "o"
    params = write_params(tmp_path / "p.yaml", {"datasets": {"h36m": H36M_SMALL_PARAMS}})
    r = run(*POSEBANK, "convert", "h36m", "--raw", raw, "--out", out, "--params", params, "-q")
    assert "Traceback" not in r.stderr
    # MPEG-4 keeps its index at the end: none of the three opens; FFmpeg's own complaint stays off stderr
    assert_one_error(r, video.name, "cannot open video")
    assert "moov atom" not in r.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml", "raw"]


def test_short_video_frames_are_quarantined_and_counted(h36m_raw, tmp_path):
    """A video that opens but ends early: the missing frames are quarantined with a reason, and counted."""
    from posebank.datasets import h36m
    from posebank.imaging.video import read_video_frames, write_video

    raw = tmp_path / "raw"
    shutil.copytree(h36m_raw, raw)
    video = raw / "S1" / "Videos" / f"Directions 1.{h36m.CAMERA_IDS[0]}.mp4"
    frames = [f for _, f in read_video_frames(video, range(30))]
    write_video(video, frames)
    out = tmp_path / "o"
    params = write_params(tmp_path / "p.yaml", {"datasets": {"h36m": H36M_SMALL_PARAMS}})
    r = run(*POSEBANK, "convert", "h36m", "--raw", raw, "--out", out, "--params", params, "-q")
    assert r.returncode == 0, r.stderr
    info = json.loads(run(*POSEBANK, "info", out, "--json").stdout)
    short = [q for q in info["quarantine"] if q["path"].startswith(f"S1/Videos/{video.name}#")]
    assert short and all(int(q["path"].split("#")[1]) >= 30 for q in short)
    assert all("end of the video" in q["reason"] for q in short)
    assert f"{len(short)} left out: frame beyond the end of the video" in r.stderr


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_raw_jpeg_is_named(tmp_path, damage):
    from posebank.datasets import mupots

    raw = mupots.make_fixture(tmp_path / "raw", seed=0)
    image = sorted(raw.rglob("img_000000.jpg"))[0]
    data = image.read_bytes()
    image.write_bytes({"truncated": data[:len(data) // 2], "garbage": b"\xff\xd8" + bytes(200) + b"\xff\xd9",
                       "empty": b""}[damage])
    out = tmp_path / "o"
    r = run(*POSEBANK, "convert", "mupots", "--raw", raw, "--out", out, "-q", cwd=tmp_path)
    assert_one_error(r, image.name)
    assert "Premature end" not in r.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_broken_pipe_is_quiet(tmp_path):
    path = tmp_path / "many.h5"
    ji = JointInfo("pelv,head", "pelv-head")
    cam = Camera(np.array([[500, 0, 64], [0, 500, 64], [0, 0, 1.0]]), np.eye(3), np.zeros(3))
    with CacheWriter(path, "h36m", ji) as w:
        w.add(Example(np.array([[0, 0, 3000], [0, -300, 3000]], np.float32), cam, np.array([10, 10, 50, 90.]),
                      "train", image_size=(128, 128)))
        for i in range(5000):
            w.add_quarantine(f"S1/Videos/x.mp4#{i}", "frame beyond the end of the video")
    proc = subprocess.Popen([*POSEBANK, "info", str(path), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_version():
    from posebank import __version__

    r = run(*POSEBANK, "--version")
    assert r.returncode == 0 and r.stdout.strip() == f"posebank {__version__}"
    r = run(sys.executable, REPO / "stages" / "crop.py", "--version")
    assert r.stdout.strip() == f"posebank {__version__}"


def test_empty_names_are_refused(h36m_raw, tmp_path):
    assert_one_error(run(*POSEBANK, "fixture", "h36m", "", cwd=tmp_path), "a folder")
    assert_one_error(run(*POSEBANK, "convert", "h36m", "--raw", h36m_raw, "--out", "", cwd=tmp_path),
                     "''", "output folder name")
    assert_one_error(run(*POSEBANK, "show", "h36m", "--out", "", cwd=tmp_path), "--out")
    assert list(tmp_path.iterdir()) == []


def test_fixture_refuses_a_non_empty_folder(tmp_path):
    # MPII's fixture: the refusal is the command's, whatever the dataset, and MPII's tree is written in a second
    target = tmp_path / "data" / "raw" / "mpii"
    target.mkdir(parents=True)
    (target / "images").mkdir()
    (target / "mine.txt").write_text("keep")
    assert_one_error(run(*POSEBANK, "fixture", "mpii", target), str(target), "not empty", "--force")
    assert sorted(p.name for p in target.iterdir()) == ["images", "mine.txt"]
    r = run(*POSEBANK, "fixture", "mpii", target, "--force")
    assert r.returncode == 0, r.stderr
    assert (target / "mine.txt").read_text() == "keep" and any(target.rglob("*.mat"))
    empty = tmp_path / "new"
    assert run(*POSEBANK, "fixture", "mpii", empty).returncode == 0


def test_info_of_a_file_that_is_not_a_cache(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"nope")
    assert_one_error(run(*POSEBANK, "info", tmp_path / "bad.h5"), "bad.h5", "not an HDF5 file")
    assert_one_error(run(*POSEBANK, "info", tmp_path / "missing.h5"), "missing.h5")
    (tmp_path / "notacache").mkdir()  # a folder without index.json (e.g. a crop stage that did not finish)
    assert_one_error(run(*POSEBANK, "info", tmp_path / "notacache"), "notacache", "not a posebank cache folder")
    (tmp_path / "notacache" / "index.json").write_text("{")
    assert_one_error(run(*POSEBANK, "info", tmp_path / "notacache"), "index.json", "unreadable index")


def test_an_all_nan_sequence_is_counted_in_the_log_and_the_quarantine(h36m_raw, tmp_path):
    from cdflib.cdfwrite import CDF

    from posebank.datasets import h36m

    raw = tmp_path / "raw"
    shutil.copytree(h36m_raw, raw)
    rel = "S1/MyPoseFeatures/D3_Positions/Directions 1.cdf"
    poses = h36m.read_poses(raw / rel)
    (raw / rel).unlink()
    cdf = CDF(str(raw / rel), cdf_spec={"Majority": "row_major", "Compressed": False})
    cdf.write_var({"Variable": "Pose", "Data_Type": 44, "Num_Elements": 1, "Rec_Vary": True, "Compress": 0,
                   "Dim_Sizes": [len(poses), h36m.N_RAW_JOINTS * 3]},
                  var_data=np.full((1, len(poses), h36m.N_RAW_JOINTS * 3), np.nan, np.float32))
    cdf.close()
    out = tmp_path / "o"
    # S1's one sequence is the whole training split: an empty split is refused unless bad instances may be skipped
    params = write_params(tmp_path / "p.yaml", {"datasets": {"h36m": H36M_SMALL_PARAMS},
                                                "pipeline": {"bad_instances": "quarantine"}})
    r = run(*POSEBANK, "convert", "h36m", "--raw", raw, "--out", out, "--params", params, "-q")
    assert r.returncode == 0, r.stderr
    n_train = len(range(0, len(poses), 5))
    assert f"h36m: dropped {n_train} (every joint is missing (NaN) in the annotation)" in r.stderr
    info = json.loads(run(*POSEBANK, "info", out, "--json").stdout)
    assert {"path": rel, "reason": "every joint is missing (NaN) in the annotation", "count": n_train} \
        in info["quarantine"]
    assert info["quarantined_frames"] >= n_train
    assert not any(q["path"].startswith("S1/Videos/Directions 1.") for q in info["quarantine"])
    text = run(*POSEBANK, "info", out).stdout
    assert f"quarantined {rel}: every joint is missing" in text


def test_the_shards_of_a_killed_first_build_may_be_built_over(tmp_path):
    """A first build killed during crop leaves shards without an index: the folder is accepted again (its current
    shards are then kept); a folder holding an .h5 file that is not a cache shard is not."""
    from posebank.core.errors import OutputError
    from posebank.core.skeleton import JointInfo
    from posebank.core.store import CacheWriter
    from posebank.pipeline.run import check_output

    out = tmp_path / "h36m"
    with CacheWriter(out / "S1.h5", "h36m", JointInfo("a,b")):
        pass
    (out / ".S5.h5.pid4194999.x.tmp").write_bytes(b"partial")
    assert check_output(out) == out
    (out / "notes.h5").write_bytes(b"not hdf5")
    with pytest.raises(OutputError, match="notes.h5 is not a cache shard"):
        check_output(out)


def test_another_datasets_cache_folder_is_not_built_over(tmp_path):
    from posebank.core.errors import OutputError
    from posebank.core.skeleton import JointInfo
    from posebank.core.store import CacheWriter, write_index
    from posebank.pipeline.run import check_output

    out = tmp_path / "cache"
    with CacheWriter(out / "S1.h5", "h36m", JointInfo("a,b")):
        pass
    with pytest.raises(OutputError, match="S1.h5 is a shard of h36m, not tdhp"):
        check_output(out, "tdhp")
    write_index(out, "h36m", JointInfo("a,b"), [out / "S1.h5"], {})
    with pytest.raises(OutputError, match="holds the cache of h36m, not tdhp"):
        check_output(out, "tdhp")
    assert check_output(out, "h36m") == out
    (out / "my_results.h5").write_bytes(b"not a cache")
    with pytest.raises(OutputError, match="my_results.h5 is not a cache shard"):
        check_output(out, "h36m")  # an index beside it does not make the folder ours to prune
