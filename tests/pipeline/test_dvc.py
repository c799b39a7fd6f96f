"""The real DVC pipeline of this repository, run on a fixture in a scratch copy of the repository."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from posebank.core.store import Cache

BIN = Path(sys.executable).parent


def sh(*cmd, cwd):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr


def copy_repo(dst: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (REPO / f).is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, dst / f)
    for f in ("dvc.lock",):
        (dst / f).unlink(missing_ok=True)  # the scratch pipeline starts unbuilt
    sh("git", "init", "-q", cwd=dst)
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A", cwd=dst)
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy", cwd=dst)
    return dst


def md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def stale_stages(repo) -> set[str]:
    """The stages `dvc status` reports as changed."""
    out = sh("dvc", "status", "--json", cwd=repo)
    return set(json.loads(out[out.index("{"):]) if "{" in out else {})


@pytest.mark.slow
def test_dvc_repro_push_pull_and_honest_deps(h36m_raw, tmp_path):
    from posebank import datasets

    repo = copy_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    # two datasets: H36M (small fixture) and SURREAL (its fixture), GrabCut off to keep it short
    params["datasets"] = {"h36m": {**params["datasets"]["h36m"], "train_subjects": [1], "test_subjects": [9]},
                          "surreal": params["datasets"]["surreal"]}
    params["segment"]["backend"] = "none"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "small params", cwd=repo)
    shutil.copytree(h36m_raw, repo / "data/raw/h36m")
    datasets.get("surreal").make_fixture(repo / "data/raw/surreal", seed=0)
    storage = tmp_path / "storage"
    sh("dvc", "remote", "modify", "--local", "local", "url", str(storage), cwd=repo)

    out = sh("dvc", "repro", "crop@h36m", cwd=repo)
    for stage in ("convert", "frames", "detect", "segment", "crop"):
        assert f"Running stage '{stage}@h36m'" in out
    cache_file = repo / "data/cache/h36m.h5"
    with Cache(cache_file) as c:
        assert c.split_counts()["test"] == 16 and len(c) > 16
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    outs = {o["path"]: o for o in lock["stages"]["crop@h36m"]["outs"]}
    assert outs["data/cache/h36m.h5"]["md5"] == md5(cache_file)
    # nothing changed: nothing runs
    again = sh("dvc", "repro", "crop@h36m", cwd=repo)
    assert "Running stage" not in again
    # a param change makes exactly that stage stale
    params["datasets"]["h36m"]["test_frame_step"] = 32
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert stale_stages(repo) >= {"convert@h36m"} and "crop@h36m" not in stale_stages(repo)
    sh("git", "checkout", "params.yaml", cwd=repo)

    # the whole pipeline of both datasets, validation included: then nothing is stale
    sh("dvc", "repro", cwd=repo)
    assert stale_stages(repo) == set()
    # the contact-sheet drawing is validation code only
    sheet = repo / "src/posebank/validation/contact_sheet.py"
    original = sheet.read_text()
    sheet.write_text(original + "\n# edited\n")
    assert stale_stages(repo) == {"validate@h36m", "validate@surreal"}
    sheet.write_text(original)
    # one dataset's module: only that dataset's stages (each checks its dataset's params entry with it)
    module = repo / datasets.folder("h36m") / "__init__.py"
    original = module.read_text()
    module.write_text(original + "\n# edited\n")
    assert stale_stages(repo) == {f"{s}@h36m" for s in ("convert", "frames", "detect", "segment", "crop",
                                                         "validate")}
    module.write_text(original)
    # a module every stage imports
    errors = repo / "src/posebank/core/errors.py"
    errors.write_text(errors.read_text() + "\n# edited\n")
    assert {s.split("@")[0] for s in stale_stages(repo)} == {"convert", "frames", "detect", "segment", "crop",
                                                              "validate"}
    sh("git", "checkout", "src", cwd=repo)
    assert stale_stages(repo) == set()

    sh("dvc", "push", cwd=repo)
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "dvc.lock", cwd=repo)
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "built", cwd=repo)
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(repo), str(clone), cwd=tmp_path)
    sh("dvc", "remote", "modify", "--local", "local", "url", str(storage), cwd=clone)
    sh("dvc", "pull", "crop@h36m", cwd=clone)
    assert md5(clone / "data/cache/h36m.h5") == md5(cache_file)
