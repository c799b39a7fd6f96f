"""The same pipeline built twice, in two fresh DVC workspaces at different paths, records the same dvc.lock.

Each workspace is a copy of this repository's files with its own git repository (tests/workspaces.py); the raw
tree is copied into it, and ``dvc repro`` builds it from nothing. Then every stage of the two dvc.lock files has
the same command, the same params and, for every dependency and every output (paths relative to the workspace),
the same md5, size and file count: nothing a stage writes depends on the time, the process or the absolute path.
In CI that is H36M's seven stages (the small fixture, segmentation off) and a merge of its cache; under
POSEBANK_SOAK=1 every dataset of the demo (fixture-scale params as scripts/demo.py sets them, GrabCut masks), the
merges, subsets and exports.
"""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import yaml

from reliability.conftest import SOAK
from workspaces import GIT_ID, copy_repo, sh

REPO = Path(__file__).resolve().parents[2]


def _ci_workspace(repo: Path, h36m_raw: Path) -> list[str]:
    """H36M only (the small fixture: one training, one test subject), segmentation off; its seven stages and a
    merge of its cache (with the bookkeeping stage merge_sources before it)."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["datasets"] = {"h36m": {**params["datasets"]["h36m"], "train_subjects": [1], "test_subjects": [9]}}
    params["segment"]["backend"] = "none"
    params["merges"] = {"h36m_only": {"filter": "none", "sources": [
        {"dataset": "h36m", "suffix": "h36m", "splits": {"train": "train", "test": "test"}}]}}
    # the subsets, exports and ReFit's configs read caches this workspace does not have (as in test_dvc.py; the
    # 3DPW subset's cache folder is even under the caches folder that merge_sources reads)
    params["subsets"], params["exports"], params["merge_exports"] = {}, {}, {}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    del dvc["stages"]["refit_config"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    sh("git", *GIT_ID, "commit", "-qam", "one dataset", cwd=repo)
    shutil.copytree(h36m_raw, repo / params["datasets"]["h36m"]["raw"])
    return ["validate@h36m", "merge@h36m_only"]


def _soak_workspace(repo: Path, raw_from: Path | None = None) -> list[str]:
    """Every dataset of the demo with its fixture raw tree and fixture-scale params: the whole pipeline. The raw
    trees are written once (``raw_from``: a workspace that has them; what is compared is the pipeline's output,
    and the trees take minutes to write)."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from demo import OVERRIDES, merge
    finally:
        sys.path.remove(str(REPO / "scripts"))
    params = merge(yaml.safe_load((repo / "params.yaml").read_text()), OVERRIDES)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git", *GIT_ID, "commit", "-qam", "fixture scale", cwd=repo)
    if raw_from is not None:
        for name in params["datasets"]:
            raw = params["datasets"][name]["raw"]
            if not (repo / raw).exists():
                shutil.copytree(raw_from / raw, repo / raw, symlinks=True)
        return []
    written: set[str] = set()
    for name in params["datasets"]:
        raw = params["datasets"][name]["raw"]
        # several datasets share one raw tree (3DHP's training tree): written once, completed in place
        sh(sys.executable, "-m", "posebank.cli", "fixture", name, raw, *(["--force"] if raw in written else []),
           cwd=repo, env=_own_code(repo))
        written.add(raw)
    return []


def _own_code(repo: Path) -> dict:
    """The environment that makes a workspace's stages import the workspace's own copy of posebank (the files
    its dvc.lock hashes), not the checkout's that the test environment has installed."""
    return {"PYTHONPATH": str(repo / "src")}


def _json_difference(a: Path, b: Path) -> list[str]:
    """The top-level keys whose values differ between two JSON files (what makes a metric's md5 differ)."""
    import json

    try:
        x, y = json.loads(a.read_text()), json.loads(b.read_text())
    except (OSError, ValueError):
        return []
    return sorted(k for k in x.keys() | y.keys() if x.get(k) != y.get(k)) if isinstance(x, dict) else []


# outputs that name the workspace's absolute path by design: ReFit reads data_config.py from its own checkout, so
# its *_ROOT and DATASET_NPZ_PATH must be absolute (docs/exports.md); they differ only by the workspace's root
WRITES_ITS_PATH = {"refit_config"}


def _same_but_for_the_root(repos: list[Path], path: str) -> bool:
    """Every file under ``path`` of the first workspace equals the second's once the first's root is replaced by
    the second's (and the same files are there)."""
    a, b = repos[0] / path, repos[1] / path
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()) if a.is_dir() else [Path()]
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) if b.is_dir() else [Path()]
    if files_a != files_b:
        return False
    root_a, root_b = str(repos[0].resolve()).encode(), str(repos[1].resolve()).encode()
    return all((a / f).read_bytes().replace(root_a, root_b) == (b / f).read_bytes() for f in files_a)


def _lock_entries(lock: dict) -> dict[str, dict]:
    """Per stage: its command, params, and {path: (md5, size, nfiles)} of its deps and of its outs."""
    out = {}
    for stage, entry in lock["stages"].items():
        out[stage] = {"cmd": entry["cmd"], "params": entry.get("params", {}),
                      **{kind: {d["path"]: (d.get("md5"), d.get("size"), d.get("nfiles"))
                                for d in entry.get(kind, [])} for kind in ("deps", "outs")}}
    return out


def test_two_fresh_workspaces_record_the_same_lock(h36m_raw, tmp_path, record):
    repos, targets = [], []
    for name in ("a", "b"):
        repo = tmp_path / name / "posebank"  # different absolute paths, same relative layout
        repo.mkdir(parents=True)
        copy_repo(repo)
        targets = _soak_workspace(repo, repos[0] if repos else None) if SOAK else _ci_workspace(repo, h36m_raw)
        repos.append(repo)

    # the two builds at once: they share nothing (own workspace, DVC cache and git), and CI has two cores
    failures: list[str] = []

    def build(repo: Path) -> None:
        try:
            sh("dvc", "repro", *targets, cwd=repo, env=_own_code(repo))
        except AssertionError as e:
            failures.append(str(e))

    threads = [threading.Thread(target=build, args=(r,)) for r in repos]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[0]

    locks = [_lock_entries(yaml.safe_load((r / "dvc.lock").read_text())) for r in repos]
    a, b = locks
    assert a.keys() == b.keys(), sorted(a.keys() ^ b.keys())
    wanted = {f"{s}@h36m" for s in ("fetch", "convert", "frames", "detect", "segment", "crop", "validate")}
    wanted |= {"merge_sources"} | ({"merge@small5"} if SOAK else {"merge@h36m_only"})
    assert wanted <= a.keys(), sorted(wanted - a.keys())
    compared, differing, path_dependent = 0, [], []
    for stage in sorted(a):
        assert a[stage]["cmd"] == b[stage]["cmd"] and a[stage]["params"] == b[stage]["params"], stage
        for kind in ("deps", "outs"):
            assert a[stage][kind].keys() == b[stage][kind].keys(), (stage, kind)
            for path, entry in a[stage][kind].items():
                assert not Path(path).is_absolute(), (stage, path)
                assert entry[0], (stage, kind, path, "no md5")
                other = b[stage][kind][path]
                if entry != other and stage in WRITES_ITS_PATH and _same_but_for_the_root(repos, path):
                    path_dependent.append(f"{stage}: {path}")
                elif entry != other:
                    differing.append(f"{stage}: {kind[:-1]} {path}: {entry} != {other}; differing keys: "
                                     f"{_json_difference(repos[0] / path, repos[1] / path)}")
                compared += 1
    assert not differing, f"{len(differing)} of {compared} hashes differ between the builds:\n" + "\n".join(differing)
    # the cached outputs are the same objects, so the whole lock is the same file
    if not path_dependent:
        assert (repos[0] / "dvc.lock").read_bytes() == (repos[1] / "dvc.lock").read_bytes()
    record("determinism", workspaces=2, stages=len(a), hashes_compared=compared,
           path_dependent=len(path_dependent))
