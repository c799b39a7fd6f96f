"""Scratch DVC workspaces: a copy of this repository's tracked files with its own git repository, and commands
run in it with the test environment's executables."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

BIN = Path(sys.executable).parent
GIT_ID = ["-c", "user.name=t", "-c", "user.email=t@t"]


def sh(*cmd, cwd, env: dict | None = None, check: bool = True) -> str:
    full = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **(env or {})}
    r = subprocess.run(cmd, cwd=cwd, env=full, capture_output=True, text=True)
    if check:
        assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr


def commit(repo: Path, message: str, *paths: str) -> None:
    sh("git", *GIT_ID, "add", *(paths or ["-A"]), cwd=repo)
    sh("git", *GIT_ID, "commit", "-qm", message, cwd=repo)


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
    commit(dst, "copy")
    return dst


def stale_stages(repo) -> set[str]:
    """The stages `dvc status` reports as changed."""
    out = sh("dvc", "status", "--json", cwd=repo)
    return set(json.loads(out[out.index("{"):]) if "{" in out else {})


def ran_stages(output: str) -> set[str]:
    """The stages a `dvc repro` output says it ran."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}
