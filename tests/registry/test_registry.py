"""posebank as a data registry, end to end against a real S3 protocol server on 127.0.0.1 (moto):

a scratch workspace builds two datasets (the H36M and SURREAL fixtures) and two merges (``pair`` holds both,
``solo`` only SURREAL), pushes every cache and merge to the loopback S3 remote and releases ``pair-v1``; a fresh
clone pulls exactly ``pair`` (its file and the two caches it references) with ``posebank pull`` and the loader
reads it; one H36M param changed reruns only H36M's stages and ``pair``'s; ``pair-v2`` is released, and checking
out ``pair-v1`` and pulling gives v1's bytes again; a separate training project imports ``pair-v1`` with
``posebank import`` (``dvc import`` from the local git URL, data from the S3 remote) and ``dvc get``.
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import H36M_SMALL_PARAMS
from helpers import folder_bytes
from workspaces import GIT_ID, commit, copy_repo, ran_stages, sh

H36M_STAGES = ("fetch", "convert", "frames", "detect", "segment", "crop", "validate")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "posebank-test", "AWS_SECRET_ACCESS_KEY": "posebank-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 (a free port) with an empty bucket; the AWS variables point boto at it."""
    import os

    import boto3
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket="posebank")
    yield url
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def s3_objects(url: str) -> dict[str, int]:
    import boto3

    pages = boto3.client("s3", endpoint_url=url).get_paginator("list_objects_v2").paginate(Bucket="posebank")
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


@pytest.fixture(scope="module")
def registry(s3, h36m_raw, tmp_path_factory):
    """The built, pushed and released workspace (pair-v1)."""
    from posebank import datasets

    repo = copy_repo(tmp_path_factory.mktemp("registry") / "posebank")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["datasets"] = {"h36m": {**params["datasets"]["h36m"], **H36M_SMALL_PARAMS},
                          "surreal": params["datasets"]["surreal"]}
    params["segment"]["backend"] = "none"
    params["merges"] = {
        "pair": {"filter": "none", "sources": [
            {"dataset": "surreal", "suffix": "", "splits": {"train": "train", "val": "train"}},
            {"dataset": "h36m", "suffix": "h36m", "splits": {"train": "train", "test": "val"}}],
            "sampler": {"kind": "round_robin", "counts": {"surreal": 4, "h36m": 4}}},
        "solo": {"filter": "none", "sources": [
            {"dataset": "surreal", "suffix": "", "splits": {"train": "train", "val": "train"}}]}}
    params["subsets"], params["exports"], params["merge_exports"] = {}, {}, {}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    del dvc["stages"]["refit_config"]  # over ReFit's exports, not in this workspace
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    # the lab's remote: S3 at an endpoint, in the committed config; the credentials stay in the environment
    sh("dvc", "remote", "add", "-d", "lab", "s3://posebank/registry", cwd=repo)
    sh("dvc", "remote", "modify", "lab", "endpointurl", s3, cwd=repo)
    commit(repo, "registry workspace")
    shutil.copytree(h36m_raw, repo / "data/raw/h36m")
    datasets.get("surreal").make_fixture(repo / "data/raw/surreal", seed=0)

    out = sh("dvc", "repro", cwd=repo)
    assert {"merge@pair", "merge@solo", "validate_merge@pair"} <= ran_stages(out)
    sh("dvc", "push", cwd=repo)
    commit(repo, "built", "dvc.lock")
    out = sh("posebank", "release", "pair", cwd=repo)
    assert "released pair-v1" in out, out
    return repo


def lock_md5(repo: Path, path: str) -> str:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return next(o["md5"] for s in lock["stages"].values() for o in s.get("outs", []) if o["path"] == path)


@pytest.mark.slow
def test_push_clone_pull_exactly_a_merge_and_load_it(registry, s3, tmp_path):
    from posebank.loader import PoseDataset
    from posebank.merging.reader import Merge

    objects = s3_objects(s3)
    # every cache and merge is in the remote: one object per file of each cache folder (+ its listing), the merges
    for path in ("data/cache/h36m", "data/cache/surreal"):
        d = lock_md5(registry, path)
        assert f"registry/files/md5/{d[:2]}/{d[2:]}" in objects
        for f in (registry / path).iterdir():
            h = md5(f)
            assert objects[f"registry/files/md5/{h[:2]}/{h[2:]}"] == f.stat().st_size
    for name in ("pair", "solo"):
        h = md5(registry / f"data/merged/{name}.h5")
        assert h == lock_md5(registry, f"data/merged/{name}.h5") and f"registry/files/md5/{h[:2]}/{h[2:]}" in objects

    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(registry), str(clone), cwd=tmp_path)
    sh("dvc", "remote", "modify", "--local", "lab", "endpointurl", s3, cwd=clone)  # the same server (as committed)
    out = sh("posebank", "pull", "pair", cwd=clone)
    assert "pulled merge pair and its 2 source caches" in out, out
    # exactly the merge and its caches: not the other merge, not the interim files, not the reports
    assert md5(clone / "data/merged/pair.h5") == md5(registry / "data/merged/pair.h5")
    for ds in ("h36m", "surreal"):
        assert folder_bytes(clone / f"data/cache/{ds}") == folder_bytes(registry / f"data/cache/{ds}")
    assert not (clone / "data/merged/solo.h5").exists() and not (clone / "data/interim").exists()
    pulled = sorted(str(p.relative_to(clone / "data")) for p in (clone / "data").rglob("*") if p.is_file())
    assert all(p.startswith(("merged/pair.h5", "cache/h36m/", "cache/surreal/")) for p in pulled), pulled

    # the loader reads the pulled merge (checking each source cache's digest) and its images
    with Merge(clone / "data/merged/pair.h5") as m:
        n = m.summary()["examples_per_split"]
    ds = PoseDataset(clone / "data/merged/pair.h5", split="train")
    orig = PoseDataset(registry / "data/merged/pair.h5", split="train")
    assert len(ds) == n["train"] > 0
    for i in (0, len(ds) - 1):
        a, b = ds[i], orig[i]
        assert a["image"].shape[2] == 3 and a["image"].dtype == np.uint8
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["world_coords"], b["world_coords"])

    # a dataset's cache alone
    clone2 = tmp_path / "clone2"
    sh("git", "clone", "-q", str(registry), str(clone2), cwd=tmp_path)
    out = sh("posebank", "pull", "surreal", cwd=clone2)
    assert "pulled cache surreal" in out
    assert folder_bytes(clone2 / "data/cache/surreal") == folder_bytes(registry / "data/cache/surreal")
    assert not (clone2 / "data/merged").exists()
    # a name that is nothing: one error line, exit 2
    out = sh("posebank", "pull", "nothing", cwd=clone2, check=False)
    assert "error: nothing: not a merge, dataset or subset" in out and "Traceback" not in out


@pytest.mark.slow
def test_one_param_reruns_its_stages_and_merges_and_versions_keep_their_bytes(registry, s3, tmp_path):
    repo = registry
    v1 = md5(repo / "data/merged/pair.h5")
    solo = md5(repo / "data/merged/solo.h5")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["datasets"]["h36m"]["test_frame_step"] = params["datasets"]["h36m"]["test_frame_step"] // 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh("dvc", "repro", cwd=repo)
    ran = ran_stages(out)
    # H36M's own stages, the merge that holds H36M and its validation; the digest bookkeeping stage runs after any
    # changed cache; the SURREAL stages and the merge without H36M do not run
    assert ran == {f"{s}@h36m" for s in H36M_STAGES} | {"merge_sources", "merge@pair", "validate_merge@pair"}, ran
    assert md5(repo / "data/merged/solo.h5") == solo and md5(repo / "data/merged/pair.h5") != v1

    # a release refuses what is not committed, then tags v2
    out = sh("posebank", "release", "pair", cwd=repo, check=False)
    assert "error: " in out and "commit dvc.lock" in out
    commit(repo, "h36m test frames doubled")
    out = sh("posebank", "release", "pair", cwd=repo, check=False)
    assert "are not in the remote (data/" in out and "posebank push first" in out, out
    out = sh("posebank", "release", "pair", "--push", cwd=repo)
    assert "released pair-v2" in out
    assert "pair-v2 already releases these bytes" in sh("posebank", "release", "pair", cwd=repo)
    listing = json.loads(sh("posebank", "versions", "pair", "--json", cwd=repo))
    assert [r["tag"] for r in listing] == ["pair-v1", "pair-v2"]
    assert listing[0]["md5"] == v1 and listing[1]["md5"] == md5(repo / "data/merged/pair.h5")
    from posebank.merging.reader import Merge

    with Merge(repo / "data/merged/pair.h5") as m:
        assert listing[1]["examples"] == {s: int(m.split_counts().get(s, 0)) for s in ("train", "val", "test")}
    assert listing[1]["examples"]["val"] > listing[0]["examples"]["val"]  # twice H36M's test frames
    table = sh("posebank", "versions", cwd=repo)
    assert "pair-v1" in table and "pair-v2" in table and v1 in table

    # a clone checked out at pair-v1 pulls v1's bytes
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(repo), str(clone), cwd=tmp_path)
    sh("git", "checkout", "-q", "pair-v1", cwd=clone)
    sh("posebank", "pull", "pair", cwd=clone)
    assert md5(clone / "data/merged/pair.h5") == v1


@pytest.mark.slow
def test_a_training_project_imports_a_release(registry, s3, tmp_path):
    """`posebank import` = `dvc import` of the merge and of each source cache it references, laid out so that the
    merged file finds them; `dvc get` fetches a file without tracking it."""
    from posebank.loader import PoseDataset

    project = tmp_path / "trainer"
    project.mkdir()
    sh("git", "init", "-q", cwd=project)
    sh("dvc", "init", "-q", cwd=project)
    sh("git", *GIT_ID, "commit", "-qm", "dvc init", cwd=project)
    out = sh("posebank", "import", str(registry), "pair", "--rev", "pair-v1", cwd=project)
    assert "imported pair@pair-v1" in out
    v1 = json.loads(sh("posebank", "versions", "pair", "--json", cwd=registry))[0]
    assert md5(project / "posebank/merged/pair.h5") == v1["md5"]
    for s in v1["sources"]:
        imported = yaml.safe_load((project / f"posebank/cache/{s['dataset']}.dvc").read_text())
        assert imported["deps"][0]["repo"]["rev"] == "pair-v1" and imported["outs"][0]["md5"] == s["md5"]
    ds = PoseDataset(project / "posebank/merged/pair.h5", split="train")
    assert len(ds) == v1["examples"]["train"] and ds[0]["image"].ndim == 3
    # dvc get: a copy, no .dvc file
    sh("dvc", "get", str(registry), "data/merged/pair.h5", "--rev", "pair-v1", "-o", "pair-v1.h5", cwd=tmp_path)
    assert md5(tmp_path / "pair-v1.h5") == v1["md5"]
    # outside a DVC project: one error line
    out = sh("posebank", "import", str(registry), "pair", cwd=tmp_path, check=False)
    assert "error: " in out and "not a DVC project" in out and "Traceback" not in out


@pytest.mark.slow
def test_an_import_refuses_an_object_corrupted_in_the_registry_remote(registry, s3, tmp_path):
    """One shard's object of pair-v1's h36m cache overwritten in the registry's S3 remote: ``dvc import`` checks
    the wrong bytes out; ``posebank import`` checks every shard against its index, fails with exit 2 and one error
    line naming the file and its md5, removes it, and imports it once the object is repaired (the same command)."""
    import boto3

    v1 = json.loads(sh("posebank", "versions", "pair", "--json", cwd=registry))[0]
    h36m = next(s for s in v1["sources"] if s["dataset"] == "h36m")
    entries = json.loads((registry / ".dvc/cache/files/md5" / h36m["md5"][:2] / h36m["md5"][2:]).read_text())
    victim = next(e for e in entries if e["relpath"].endswith(".h5"))  # a shard
    key = f"registry/files/md5/{victim['md5'][:2]}/{victim['md5'][2:]}"
    client = boto3.client("s3", endpoint_url=s3)
    original = client.get_object(Bucket="posebank", Key=key)["Body"].read()
    client.put_object(Bucket="posebank", Key=key, Body=bytes(b ^ 0x5A for b in original))
    project = tmp_path / "trainer"
    project.mkdir()
    sh("git", "init", "-q", cwd=project)
    sh("dvc", "init", "-q", cwd=project)
    sh("git", *GIT_ID, "commit", "-qm", "dvc init", cwd=project)
    import subprocess

    from workspaces import BIN

    # a clone of the registry (no DVC cache of its own, as a registry's git URL gives): the data comes from S3
    remote_repo = tmp_path / "registry-clone"
    sh("git", "clone", "-q", str(registry), str(remote_repo), cwd=tmp_path)
    cmd = [str(BIN / "posebank"), "import", str(remote_repo), "pair", "--rev", "pair-v1"]
    try:
        r = subprocess.run(cmd, cwd=project, capture_output=True, text=True)
    finally:
        client.put_object(Bucket="posebank", Key=key, Body=original)
    out = r.stdout + r.stderr
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert r.returncode == 2 and len(errors) == 1 and "Traceback" not in out, out
    assert f"posebank/cache/h36m/{victim['relpath']} (md5 {victim['md5']})" in errors[0], out
    assert "removed, not imported" in errors[0] and "corrupted in the remote" in errors[0], out
    shard = project / "posebank/cache/h36m" / victim["relpath"]
    assert not shard.exists()  # no wrong bytes left checked out, nor in the project's DVC cache
    assert not (project / ".dvc/cache/files/md5" / victim["md5"][:2] / victim["md5"][2:]).exists()
    # repaired: the same command in the same project imports it
    out = sh(*cmd, cwd=project)
    assert "imported pair@pair-v1" in out, out
    assert hashlib.md5(shard.read_bytes()).hexdigest() == victim["md5"]
