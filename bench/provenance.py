"""What a benchmark result was measured with: the code's git state, shared by the scripts of bench/."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _git(*args) -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.rstrip()
    except (OSError, subprocess.SubprocessError):
        return ""


def code_state(script, extra: Iterable = ()) -> dict:
    """The git commit and whether what was measured differs from it: the benchmark ``script``, the posebank modules
    this run loaded (call it once everything is imported) and the ``extra`` files it read (``changed_files``: their
    uncommitted changes), with a digest of them all."""
    files = {Path(script).resolve(), *(Path(p).resolve() for p in extra)}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and (module.__name__ == "posebank" or module.__name__.startswith("posebank.")):
            files.add(Path(path).resolve())
    rel = sorted(str(p.relative_to(REPO)) for p in files if p.is_file() and p.is_relative_to(REPO))
    digest = hashlib.sha256()
    for r in rel:
        digest.update(r.encode() + b"\0" + (REPO / r).read_bytes())
    changed = [line[3:] for line in _git("status", "--porcelain", "--untracked-files=all", "--", *rel).splitlines()
               if line]
    commit = _git("rev-parse", "HEAD")
    return {"git_commit": commit or None, "clean": bool(commit) and not changed, "changed_files": changed,
            "measured_files": len(rel), "measured_sha256": digest.hexdigest()}
