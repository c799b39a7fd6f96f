"""dvc.yaml's code deps are exactly what each stage imports (computed from the source), never all of src/."""

import importlib.util

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
        deps = [d.rstrip("/") for d in stage["do"]["deps"]]
        assert "src/posebank" not in deps and "src" not in deps, name
        assert deps[0] == f"stages/{name}.py"
