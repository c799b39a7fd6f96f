"""The code a stage runs, read from the source: the import closure of its module inside posebank.

Every import counts, also those inside functions (they run when the stage does); the dataset's family folder is
added where the stage runs the dataset's own code. dvc.yaml lists exactly these files as each stage's deps
(``scripts/stage_deps.py`` writes and checks them), and the shard digests of the sharded stages include a digest of
their bytes, so a stage that DVC reruns because its code changed rebuilds its shards instead of finding them done.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

import posebank

SRC = Path(posebank.__file__).resolve().parent.parent  # the folder holding the posebank package
# stages whose output depends on the dataset's own code (convert: instances; frames: frame_source; validate: the
# registered skeleton); every stage imports the dataset's module to check its params entry
RUNS_DATASET_CODE = ("convert", "frames", "validate")


def module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """posebank modules a file imports (submodules named by ``from X import sub`` and parent packages included)."""
    tree = ast.parse(Path(path).read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    found = set()
    for n in names:
        if n == "posebank" or n.startswith("posebank."):
            parts = n.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
                if module_file(".".join(parts[:i])) is not None:
                    found.add(".".join(parts[:i]))
    return found


def closure(files) -> set[Path]:
    todo, seen = [Path(f).resolve() for f in files], set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        todo.extend(module_file(m).resolve() for m in imported_modules(f))
    return seen


def family_files(family: str) -> set[Path]:
    folder = SRC / "posebank" / "datasets" / family
    return closure(sorted(folder.rglob("*.py")))


@functools.cache
def stage_files(stage: str, family: str | None = None) -> tuple[Path, ...]:
    """The files whose code ``stage`` runs (with ``family``'s folder for the stages that run dataset code)."""
    files = closure([module_file(f"posebank.pipeline.{stage}")])
    if family is not None and stage in RUNS_DATASET_CODE:
        files |= family_files(family)
    return tuple(sorted(files))


@functools.cache
def code_digest(stage: str, family: str | None = None) -> str:
    """SHA-256 (16 hex digits) of the bytes of :func:`stage_files`, in order."""
    h = hashlib.sha256()
    for f in stage_files(stage, family):
        h.update(f.relative_to(SRC).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()[:16]
