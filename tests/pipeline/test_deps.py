"""dvc.yaml's code deps are exactly what each stage imports (computed from the source), never all of src/."""

import importlib.util
from pathlib import Path

import yaml

from conftest import REPO


def stage_deps():
    spec = importlib.util.spec_from_file_location("stage_deps", REPO / "scripts" / "stage_deps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dvc_yaml_lists_every_imported_module():
    assert stage_deps().problems() == []


def test_closure_sees_function_level_imports_and_families():
    sd = stage_deps()
    detect = sd.stage_code("detect")
    assert "src/posebank/vision/detect.py" in detect  # imported inside run()
    assert "src/posebank/vision/segment.py" not in detect
    assert not any(f.startswith("src/posebank/validation/") for f in sd.stage_code("crop"))
    assert "src/posebank/validation/contact_sheet.py" in sd.stage_code("validate")
    assert not any("/datasets/h36m" in f for s in sd.STAGES for f in sd.stage_code(s))


def test_families_are_the_registry_folders():
    from posebank import datasets

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, entry in params["datasets"].items():
        assert f"src/posebank/datasets/{entry['family']}" == datasets.folder(name), name
        assert (REPO / datasets.folder(name)).is_dir()


def test_no_stage_depends_on_all_of_src():
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    for name, stage in dvc["stages"].items():
        deps = [d.rstrip("/") for d in stage.get("do", stage)["deps"]]  # foreach stages, and refit_config
        assert "src/posebank" not in deps and "src" not in deps, name
        assert deps[0] == f"stages/{name}.py"


DUMP = """
import atexit, json, os, runpy, sys
def dump():
    files = sorted({m.__file__ for m in list(sys.modules.values())
                    if getattr(m, "__name__", "").startswith("posebank") and getattr(m, "__file__", None)})
    with open(os.environ["LOADED_OUT"], "w") as f:
        json.dump(files, f)
atexit.register(dump)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_the_modules_a_stage_really_loads_are_its_deps(h36m_raw, tmp_path):
    """Each stage run on the fixture: every posebank module it loaded (sys.modules) is a dep in dvc.yaml."""
    import json
    import os
    import subprocess
    import sys

    from staging import params_for

    params = params_for(h36m_raw, tmp_path, segment={"backend": "grabcut"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage in stage_deps().STAGES:
        out = tmp_path / f"{stage}.json"
        r = subprocess.run([sys.executable, "-c", DUMP, str(REPO / "stages" / f"{stage}.py"), "h36m", "-q"],
                           cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "LOADED_OUT": str(out)})
        assert r.returncode == 0, r.stderr
        deps = [d.replace("${item.family}", "h36m") for d in dvc[stage]["do"]["deps"]]
        loaded = [str(Path(f).resolve().relative_to(REPO)) for f in json.loads(out.read_text())]
        assert f"src/posebank/pipeline/{stage}.py" in loaded
        missing = [f for f in loaded if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps)]
        assert missing == [], (stage, missing)
