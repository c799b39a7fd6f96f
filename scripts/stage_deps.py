"""The code each DVC stage runs, from the source: the import closure of its entry script inside posebank.

    python scripts/stage_deps.py            # print, per stage, the deps dvc.yaml must list
    python scripts/stage_deps.py --check    # exit 1 naming what dvc.yaml misses (tests/pipeline/test_deps.py)
    python scripts/stage_deps.py --write    # rewrite the code deps of dvc.yaml's stages from the source

Every import counts, also those inside functions (they run when the stage does). A stage that loads its
dataset's module through the registry (convert, frames, validate) also runs the dataset's family folder,
``src/posebank/datasets/${item.family}`` in dvc.yaml, and what that folder imports.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
STAGES = ("convert", "frames", "detect", "segment", "crop", "validate")
DATASET_STAGES = ("convert", "frames", "validate")  # stages that import the dataset's own module
FAMILY_DEP = "src/posebank/datasets/${item.family}"


def module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(path: Path) -> set[str]:
    """Module names a file imports (absolute ``posebank...`` only, submodules of ``from X import sub`` included)."""
    tree = ast.parse(path.read_text(), str(path))
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
            # importing a.b.c runs a/__init__, a/b/__init__ too
            for i in range(1, len(parts) + 1):
                if module_file(".".join(parts[:i])) is not None:
                    found.add(".".join(parts[:i]))
    return found


def closure(files) -> set[Path]:
    todo, seen = [Path(f) for f in files], set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        todo.extend(module_file(m) for m in _imported(f))
    return seen


def rel(p: Path) -> str:
    return p.resolve().relative_to(ROOT).as_posix()


def stage_code(stage: str) -> set[str]:
    """The posebank files a stage runs, apart from its dataset's family folder (entry script excluded)."""
    return {rel(p) for p in closure([ROOT / "stages" / f"{stage}.py"])} - {f"stages/{stage}.py"}


def family_code(family: str) -> set[str]:
    folder = SRC / "posebank" / "datasets" / family
    files = list(folder.rglob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]
    return {rel(p) for p in closure(files)}


def families() -> list[str]:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return sorted({(e or {}).get("family") for e in (params.get("datasets") or {}).values()} - {None})


def required(stage: str) -> list[str]:
    """The code files dvc.yaml lists for ``stage`` (besides its entry script and the family folder): what the
    stage imports and, for dataset stages, what any family folder imports outside itself."""
    need = stage_code(stage)
    if stage in DATASET_STAGES:
        for family in families():
            need |= {f for f in family_code(family) if not covered(f, [f"src/posebank/datasets/{family}"])}
    return sorted(need)


def write() -> None:
    """Replace each stage's ``- src/posebank/...`` deps (the family folder line excepted) by ``required()``."""
    lines = (ROOT / "dvc.yaml").read_text().split("\n")
    out, stage = [], None
    for line in lines:
        m = re.match(r"^  (\w+):", line)
        if m:
            stage = m.group(1)
        item = line.strip()
        if item == f"- stages/{stage}.py":
            out.append(line)
            indent = line[:len(line) - len(line.lstrip())]
            out.extend(f"{indent}- {f}" for f in required(stage))
            continue
        if item.startswith("- src/posebank/") and item != f"- {FAMILY_DEP}":
            continue
        out.append(line)
    (ROOT / "dvc.yaml").write_text("\n".join(out))


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def problems() -> list[str]:
    """What dvc.yaml misses or lists too broadly, per stage."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    out = []
    for stage in STAGES:
        spec = dvc.get(stage)
        if spec is None:
            out.append(f"{stage}: no stage in dvc.yaml")
            continue
        do = spec.get("do", spec)
        deps = [str(d) for d in do.get("deps", [])]
        if not do.get("cmd", "").startswith(f"python stages/{stage}.py"):
            out.append(f"{stage}: cmd should be `python stages/{stage}.py ${{key}}`, got {do.get('cmd')!r}")
        if not deps or deps[0] != f"stages/{stage}.py":
            out.append(f"{stage}: first dep should be stages/{stage}.py")
        if "src/posebank" in [d.rstrip("/") for d in deps] or "src" in deps:
            out.append(f"{stage}: depends on the whole src/posebank folder")
        if stage in DATASET_STAGES and FAMILY_DEP not in deps:
            out.append(f"{stage}: misses {FAMILY_DEP}")
        for name, entry in (params.get("datasets") or {}).items():
            if not (entry or {}).get("family"):
                out.append(f"datasets.{name}: no family in params.yaml")
        for f in required(stage):
            if not covered(f, deps):
                out.append(f"{stage}: misses {f}")
    return out


def main(argv) -> int:
    if "--write" in argv:
        write()
        return 0
    if "--check" in argv:
        found = problems()
        for p in found:
            print(p)
        return 1 if found else 0
    for stage in STAGES:
        print(f"{stage}:")
        for f in required(stage):
            print(f"  - {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
