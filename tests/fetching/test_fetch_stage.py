"""The fetch stage: present raw trees pass, registration-only datasets fail with their instructions, and a dataset's
downloads served from 127.0.0.1 (a mirror of the real files' layout) end as a raw tree its converter reads."""

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from fetching.localhttp import LocalServer, Served
from posebank import datasets
from posebank.core.errors import ParamsError, UsageError
from posebank.core.settings import FetchParams, check_params
from posebank.fetching.resources import Resource
from posebank.pipeline.fetch import RawDataMissing, fetch


def stage(dataset: str, cwd: Path, params: dict) -> subprocess.CompletedProcess:
    (cwd / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run([sys.executable, str(REPO / "stages" / "fetch.py"), dataset, "-q"], cwd=cwd,
                          capture_output=True, text=True)


def error_lines(r) -> list[str]:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    return [line for line in r.stderr.splitlines() if line.startswith("error: ")]


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_present_raw_tree_downloads_nothing(tmp_path):
    """COCO has downloads, but its tree is there: nothing is fetched (no network is reachable from the tests)."""
    raw = datasets.get("coco").make_fixture(tmp_path / "raw" / "coco", seed=0)
    params = {"datasets": {"coco": {"raw": "raw/coco", "family": "coco"}}, "pipeline": {"interim": "interim"},
              "fetch": {"downloads": "downloads"}}
    r = stage("coco", tmp_path, params)
    assert r.returncode == 0, r.stderr
    manifest = tmp_path / "interim" / "coco" / "fetch.json"
    assert json.loads(manifest.read_text()) == {"dataset": "coco", "raw": "raw/coco", "state": "present",
                                                "resources": []}
    assert raw.is_dir() and not (tmp_path / "downloads").exists()
    first = manifest.read_bytes()
    assert stage("coco", tmp_path, params).returncode == 0 and manifest.read_bytes() == first  # deterministic


@pytest.mark.parametrize(("dataset", "exists", "needles"), [
    ("tdhp", True, ["incomplete", "missing S1/Seq1/annot.mat", "get_dataset.sh", "http://gvv.mpi-inf.mpg.de/3dhp"]),
    ("tdhp_test", True, ["missing TS1/annot_data.mat", "get_testset.sh"]),
    ("tdpw", False, ["not found", "the folder itself", "sequenceFiles.zip", "virtualhumans.mpi-inf.mpg.de/3DPW"]),
    ("h36m_alljoints", False, ["not found", "D3_Positions", "http://vision.imar.ro/human3.6m/"]),
])
def test_registration_only_datasets_say_what_to_download(tmp_path, dataset, exists, needles):
    raw = tmp_path / "raw" / dataset
    if exists:
        raw.mkdir(parents=True)
    params = {"datasets": {dataset: {"raw": str(raw), "family": datasets.family(dataset)}},
              "pipeline": {"interim": str(tmp_path / "interim")}}
    r = stage(dataset, tmp_path, params)
    errors = error_lines(r)
    assert len(errors) == 1, r.stderr
    assert errors[0].startswith(f"error: {dataset}: raw dataset ") and str(raw) in errors[0]
    assert "posebank cannot download" in errors[0]
    assert r.stderr.splitlines()[0] == errors[0]  # the error line first, the instructions below it
    for needle in needles:
        assert needle in r.stderr, (needle, r.stderr)
    assert not (tmp_path / "interim" / dataset / "fetch.json").exists()


def test_fetch_settings_are_checked(tmp_path):
    with pytest.raises(ParamsError, match=r"params\.yaml: fetch\.retries: must be at least 0"):
        check_params({"fetch": {"retries": -1}})
    params = {"datasets": {"coco": {"raw": "raw", "family": "coco"}}, "fetch": {"max_members": 0}}
    errors = error_lines(stage("coco", tmp_path, params))
    assert errors == ["error: params.yaml: fetch.max_members: must be at least 1, got 0"]


def zip_folders(src: Path, archive: Path, folders: list[str]) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for folder in folders:
            for p in sorted((src / folder).rglob("*")):
                zf.write(p, p.relative_to(src).as_posix())
    return archive


def mirror(server: LocalServer, archives: list[Path], drop_first: int | None = None) -> list[Resource]:
    """Resources served by ``server`` with the archives' real digests (the first one's connection dropped)."""
    out = []
    for i, path in enumerate(archives):
        data = path.read_bytes()
        url = server.serve(f"/files/{path.name}", Served(data, drop_after=drop_first if i == 0 else None))
        out.append(Resource(url=url, filename=path.name, sha256=hashlib.sha256(data).hexdigest(), size=len(data)))
    return out


def test_downloads_from_a_mirror_make_a_tree_the_converter_reads(tmp_path):
    coco = datasets.get("coco")
    src = coco.make_fixture(tmp_path / "fixture", seed=0, eft=False)
    made = tmp_path / "made"
    made.mkdir()
    archives = [zip_folders(src, made / "annotations_trainval2017.zip", ["annotations"]),
                zip_folders(src, made / "train2017.zip", ["train2017"]),
                zip_folders(src, made / "val2017.zip", ["val2017"])]
    p = coco.check_params({})
    raw = tmp_path / "data" / "raw" / "coco"
    settings = FetchParams(downloads=str(tmp_path / "downloads"))
    with LocalServer() as server:
        resources = mirror(server, archives, drop_first=1000)
        manifest = fetch("coco", raw, p, settings, resources=resources, backoff_s=0)
        first = server.ranges("/files/annotations_trainval2017.zip")
        again = fetch("coco", raw, p, settings, resources=resources)
        assert len(server.seen) == 4  # the present tree asks for nothing
    assert first == [None, "bytes=1000-"]  # the dropped download resumed
    assert manifest["state"] == "downloaded" and again["state"] == "present"
    assert [(e["filename"], e["sha256"], e["size"]) for e in manifest["resources"]] == [
        (a.name, hashlib.sha256(a.read_bytes()).hexdigest(), a.stat().st_size) for a in archives]
    assert manifest["resources"][0]["extracted"]["files"] == 2  # person_keypoints_{train,val}2017.json
    coco.check_layout(raw, p)
    assert tree(raw) == {k: v for k, v in tree(src).items() if k.split("/")[0] in ("annotations", "train2017",
                                                                                   "val2017")}
    assert sorted(p.name for p in (tmp_path / "downloads" / "coco").iterdir() if p.suffix != ".lock") == sorted(
        a.name for a in archives)
    assert [(i.source, i.person_index) for i in coco.instances(raw, p)] == [
        (i.source, i.person_index) for i in coco.instances(src, p)]


def test_a_tree_still_incomplete_after_the_downloads_says_what_is_left(tmp_path):
    """MPII's release holds images and the .mat; the default val split also needs the json conversion's val file,
    which no download has: the error names it, and the instructions where to get it."""
    mpii = datasets.get("mpii")
    src = mpii.make_fixture(tmp_path / "fixture", seed=0, eft=False)
    made = tmp_path / "made"
    made.mkdir()
    with tarfile.open(made / "mpii_human_pose_v1.tar.gz", "w:gz") as tf:
        tf.add(src / "images", "images")
    with zipfile.ZipFile(made / "mpii_human_pose_v1_u12_2.zip", "w") as zf:
        zf.write(src / "mpii_human_pose_v1_u12_1.mat", "mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat")
    raw = tmp_path / "raw"
    with LocalServer() as server:
        resources = mirror(server, sorted(made.iterdir()))
        with pytest.raises(RawDataMissing) as e:
            fetch("mpii", raw, mpii.check_params({}), FetchParams(downloads=str(tmp_path / "dl")), resources=resources)
    assert "missing annot/valid.json" in str(e.value) and "after downloading mpii_human_pose_v1.tar.gz" in str(e.value)
    assert "val_persons: none and splits: [train]" in e.value.instructions and "HRNet" in e.value.instructions
    assert tree(raw / "images") == tree(src / "images")
    # the release alone is a complete tree for a train-only conversion
    mpii.check_layout(raw, mpii.check_params({"val_persons": "none", "splits": ["train"]}))


def test_plain_files_are_copied_and_subdirs_respected(tmp_path):
    """A resource that is not unpacked lands under its name in ``<raw>/<subdir>``; an archive goes into its subdir."""
    coco = datasets.get("coco")
    src = coco.make_fixture(tmp_path / "fixture", seed=0, eft=False)
    made = tmp_path / "made"
    made.mkdir()
    images = [zip_folders(src, made / f"{split}2017.zip", [f"{split}2017"]) for split in ("train", "val")]
    ann = {name: (src / "annotations" / name).read_bytes() for name in sorted(os.listdir(src / "annotations"))}
    for name, data in ann.items():
        (made / name).write_bytes(data)
    raw = tmp_path / "raw"
    with LocalServer() as server:
        plain = [Resource(url=server.serve(f"/{name}", Served(data)), filename=name, extract=False,
                          subdir="annotations", sha256=hashlib.sha256(data).hexdigest()) for name, data in ann.items()]
        manifest = fetch("coco", raw, coco.check_params({}), FetchParams(downloads=str(tmp_path / "dl")),
                         resources=[*plain, *mirror(server, images)])
    assert tree(raw / "annotations") == ann
    assert [e["into"] for e in manifest["resources"]] == ["annotations", "annotations", ".", "."]
    assert "extracted" not in manifest["resources"][0] and manifest["resources"][0]["size"] == len(
        ann["person_keypoints_train2017.json"])
    with LocalServer() as server:
        data = b'{"not": "an archive"}'
        bad = Resource(url=server.serve("/x.json", Served(data)), filename="x.json",
                       sha256=hashlib.sha256(data).hexdigest())
        with pytest.raises(UsageError, match=r"x\.json: extract is set but the file is not"):
            fetch("coco", tmp_path / "other", coco.check_params({}), FetchParams(downloads=str(tmp_path / "dl")),
                  resources=[bad])
        assert server.ranges("/x.json") == []  # refused before any download
    assert not (tmp_path / "other").exists()
