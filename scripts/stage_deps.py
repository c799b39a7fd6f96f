"""The code each DVC stage runs, from the source: the import closure of its entry script inside posebank.

    python scripts/stage_deps.py            # print, per stage, the deps dvc.yaml must list
    python scripts/stage_deps.py --check    # exit 1 naming what dvc.yaml misses (tests/pipeline/test_deps.py)
    python scripts/stage_deps.py --write    # rewrite the code deps of dvc.yaml's stages from the source

Every import counts, also those inside functions (they run when the stage does); the closure is computed by
posebank.pipeline.code, which the shard digests use too. Every stage loads its dataset's module through the
registry (to check the dataset's params entry), so it also depends on the dataset's family folder,
``src/posebank/datasets/${item.family}`` in dvc.yaml, and what that folder imports. The merge and subset stages
(foreach merge, foreach subset) have no dataset module of their own.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from posebank import pipeline
from posebank.pipeline import code

ROOT = Path(__file__).resolve().parent.parent
STAGES = pipeline.STAGES
MERGE_STAGES = pipeline.NON_DATASET_STAGES  # foreach merge or subset: no dataset module of their own (no family folder)
FAMILY_DEP = "src/posebank/datasets/${item.family}"


def rel(p: Path) -> str:
    return p.resolve().relative_to(ROOT).as_posix()


def stage_code(stage: str) -> set[str]:
    """The posebank files a stage imports, apart from its dataset's family folder (entry script excluded)."""
    return {rel(p) for p in code.closure([ROOT / "stages" / f"{stage}.py"])} - {f"stages/{stage}.py"}


def family_code(family: str) -> set[str]:
    return {rel(p) for p in code.family_files(family)}


def families() -> list[str]:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return sorted({(e or {}).get("family") for e in (params.get("datasets") or {}).values()} - {None})


def required(stage: str) -> list[str]:
    """The code files dvc.yaml lists for ``stage`` (besides its entry script and the family folder): what the
    stage imports and what any family folder imports outside itself (every stage imports its dataset's module,
    to check the dataset's params entry)."""
    need = stage_code(stage)
    if stage in MERGE_STAGES:
        return sorted(need)
    for family in families():
        need |= {f for f in family_code(family) if not covered(f, [f"src/posebank/datasets/{family}"])}
    return sorted(need)


def write() -> None:
    """Replace each stage's ``- src/posebank/...`` deps by ``required()`` and the family folder."""
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
            if stage not in MERGE_STAGES:
                out.append(f"{indent}- {FAMILY_DEP}")
            continue
        if item.startswith("- src/posebank/"):
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
    for stage in (*STAGES, *MERGE_STAGES):
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
        if FAMILY_DEP not in deps and stage not in MERGE_STAGES:
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
    for stage in (*STAGES, *MERGE_STAGES):
        print(f"{stage}:")
        for f in required(stage):
            print(f"  - {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
