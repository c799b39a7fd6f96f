"""The real DVC pipeline of this repository, run on a fixture in a scratch copy of the repository."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import folder_bytes
from posebank.core.store import Cache
from workspaces import copy_repo, sh, stale_stages


@pytest.mark.slow
def test_dvc_repro_push_pull_and_honest_deps(h36m_raw, tmp_path):
    from posebank import datasets

    repo = copy_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    # two datasets: H36M (small fixture) and SURREAL (its fixture), GrabCut off to keep it short
    params["datasets"] = {"h36m": {**params["datasets"]["h36m"], "train_subjects": [1], "test_subjects": [9]},
                          "surreal": params["datasets"]["surreal"]}
    params["segment"]["backend"] = "none"
    # huge8 only (small5 would refuse: its other sources are not in this workspace): partial, from SURREAL, as the
    # params ask (a workspace with only some of the datasets sets allow_missing: true)
    params["merges"] = {"huge8": {**params["merges"]["huge8"], "allow_missing": True}}
    params["subsets"] = {}  # 3DPW's subset needs the 3DPW cache, not in this workspace
    params["exports"], params["merge_exports"] = {}, {}  # ReFit's datasets and small5 are not in it either
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    del dvc["stages"]["refit_config"]  # over ReFit's exports
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "small params", cwd=repo)
    shutil.copytree(h36m_raw, repo / "data/raw/h36m")
    datasets.get("surreal").make_fixture(repo / "data/raw/surreal", seed=0)
    storage = tmp_path / "storage"
    sh("dvc", "remote", "modify", "--local", "local", "url", str(storage), cwd=repo)

    out = sh("dvc", "repro", "crop@h36m", cwd=repo)
    for stage in ("convert", "frames", "detect", "segment", "crop"):
        assert f"Running stage '{stage}@h36m'" in out
    cache_dir = repo / "data/cache/h36m"
    with Cache(cache_dir) as c:
        assert c.split_counts()["test"] == 16 and len(c) > 16
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    outs = {o["path"]: o for o in lock["stages"]["crop@h36m"]["outs"]}
    assert outs["data/cache/h36m"]["md5"].endswith(".dir")  # one DVC directory output, an object per shard
    assert outs["data/cache/h36m"]["nfiles"] == len(list(cache_dir.iterdir()))
    # nothing changed: nothing runs
    again = sh("dvc", "repro", "crop@h36m", cwd=repo)
    assert "Running stage" not in again
    # a param change makes exactly that stage stale
    params["datasets"]["h36m"]["test_frame_step"] = 32
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert stale_stages(repo) >= {"convert@h36m"} and "crop@h36m" not in stale_stages(repo)
    sh("git", "checkout", "params.yaml", cwd=repo)

    # the whole pipeline of both datasets, validation included: then nothing is stale
    out = sh("dvc", "repro", cwd=repo)
    assert "merge huge8 is PARTIAL: 29 of 30 sources missing" in out
    assert stale_stages(repo) == set()
    from posebank.merging.reader import Merge

    with Merge(repo / "data/merged/huge8.h5") as m:
        assert [s["dataset"] for s in m.sources] == ["surreal"] and m.summary()["partial"]
        assert len(m) == Cache(repo / "data/cache/surreal").split_counts()["train"] + Cache(
            repo / "data/cache/surreal").split_counts()["val"] - m.summary()["dropped"]
    assert json.loads((repo / "reports/validation/huge8.json").read_text())["success"]
    # the contact-sheet drawing is validation code only
    sheet = repo / "src/posebank/validation/contact_sheet.py"
    original = sheet.read_text()
    sheet.write_text(original + "\n# edited\n")
    assert stale_stages(repo) == {"validate@h36m", "validate@surreal", "validate_merge@huge8"}
    sheet.write_text(original)
    # one dataset's module: only that dataset's stages (each checks its dataset's params entry with it)
    module = repo / datasets.folder("h36m") / "__init__.py"
    original = module.read_text()
    module.write_text(original + "\n# edited\n")
    assert stale_stages(repo) == {f"{s}@h36m" for s in ("fetch", "convert", "frames", "detect", "segment",
                                                         "crop", "validate")}
    module.write_text(original)
    # a module every stage imports
    errors = repo / "src/posebank/core/errors.py"
    errors.write_text(errors.read_text() + "\n# edited\n")
    assert {s.split("@")[0] for s in stale_stages(repo)} == {"fetch", "convert", "frames", "detect", "segment",
                                                              "crop", "validate", "merge_sources", "merge",
                                                              "validate_merge"}
    sh("git", "checkout", "src", cwd=repo)
    assert stale_stages(repo) == set()

    sh("dvc", "push", cwd=repo)
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "dvc.lock", cwd=repo)
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "built", cwd=repo)
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(repo), str(clone), cwd=tmp_path)
    sh("dvc", "remote", "modify", "--local", "local", "url", str(storage), cwd=clone)
    sh("dvc", "pull", "crop@h36m", cwd=clone)
    assert folder_bytes(clone / "data/cache/h36m") == folder_bytes(cache_dir)


def remote_objects(storage: Path) -> dict[str, int]:
    """The objects of a local DVC remote (files/md5/xx/...), with their sizes."""
    return {str(p.relative_to(storage)): p.stat().st_size for p in storage.rglob("*") if p.is_file()}


def md5_of(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_changed_sequence_rebuilds_and_pushes_only_its_shards(h36m_raw, tmp_path):
    """The H36M fixture cut into small shards (one per subject, or per camera where a subject is big); the test
    subject's frame step changes: `dvc repro` rewrites only that subject's shards and the index, every other shard
    keeps its bytes, and `dvc push` uploads exactly the changed objects (those shards, the index, the records and
    the folder's listing)."""
    from posebank.core.settings import PipelineParams
    from posebank.pipeline.plan import shard_plan
    from posebank.pipeline.records import read_records

    repo = copy_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["datasets"] = {"h36m": {**params["datasets"]["h36m"], "train_subjects": [1], "test_subjects": [9],
                                   "test_frame_step": 64}}
    params["segment"]["backend"] = "none"
    params["pipeline"].update(shard_mb=2, example_kb=100)  # at most 20 examples per shard
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "small shards", cwd=repo)
    shutil.copytree(h36m_raw, repo / "data/raw/h36m")
    storage = tmp_path / "storage"
    sh("dvc", "remote", "modify", "--local", "local", "url", str(storage), cwd=repo)
    sh("dvc", "repro", "crop@h36m", cwd=repo)
    sh("dvc", "push", cwd=repo)
    cache_dir = repo / "data/cache/h36m"
    before = {p.name: md5_of(p) for p in cache_dir.iterdir()}
    shards_before = {s.name: s.key for s in shard_plan(read_records(repo / "data/interim/h36m/records.h5"),
                                                         PipelineParams.from_dict(params["pipeline"]))}
    assert len(shards_before) >= 4 and len(before) == len(shards_before) + 1
    objects_before = remote_objects(storage)
    with Cache(cache_dir) as c:
        test_before, train_before = c.split_counts()["test"], c.split_counts()["train"]

    params["datasets"]["h36m"]["test_frame_step"] = 32  # the test subject (S9) only: twice its frames
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh("dvc", "repro", "crop@h36m", cwd=repo)
    assert "Running stage 'crop@h36m'" in out
    after = {p.name: md5_of(p) for p in cache_dir.iterdir()}
    changed = {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}
    s9 = {f"{n}" for n in (before.keys() | after.keys()) if n.startswith("S9")}
    assert s9 and changed == s9 | {"index.json"}, changed  # the other subject's shards are byte-identical
    with Cache(cache_dir) as c:
        assert c.split_counts()["test"] > test_before and c.split_counts()["train"] == train_before

    sh("dvc", "push", cwd=repo)
    new = {k: v for k, v in remote_objects(storage).items() if k not in objects_before}
    new_in_cache = {n for n in changed if n in after}
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    records_md5 = next(o["md5"] for o in lock["stages"]["convert@h36m"]["outs"])
    dir_md5 = next(o["md5"] for o in lock["stages"]["crop@h36m"]["outs"])
    expected = {after[n] for n in new_in_cache} | {records_md5, dir_md5.removesuffix(".dir") + ".dir"}
    assert {k.replace("files/md5/", "").replace("/", "") for k in new} == expected
    changed_bytes = sum((cache_dir / n).stat().st_size for n in new_in_cache)
    total_bytes = sum(p.stat().st_size for p in cache_dir.iterdir())
    assert sum(new.values()) < changed_bytes + (repo / "data/interim/h36m/records.h5").stat().st_size + 100_000
    assert changed_bytes < total_bytes
    print(f"\n{len(new_in_cache) - 1} of {len(after) - 1} shards rewritten; dvc push uploaded {len(new)} objects, "
          f"{sum(new.values())} bytes (cache folder {total_bytes} bytes)")
