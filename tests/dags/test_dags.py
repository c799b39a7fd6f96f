"""The DAG files of dags/: they import cleanly and cheaply, and build the DAGs params.yaml describes (task order,
pools, retries, Asset wiring); a failed validation task names its report in the task's log."""

import dataclasses
import datetime
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from airflow_env import DAGS, airflow_env
from conftest import REPO

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
STAGES = ("fetch", "convert", "frames", "detect", "segment", "crop", "validate")
DAG_FILES = sorted(DAGS.glob("*.py"))


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    """Airflow configured (before its first import in this process) with a private home and no examples."""
    home = tmp_path_factory.mktemp("airflow_home")
    saved = dict(os.environ)
    os.environ.update(airflow_env(home))
    yield home
    os.environ.clear()
    os.environ.update(saved)


def dagbag(workspace: Path | None = None):
    from airflow.dag_processing.dagbag import DagBag

    old = os.environ.pop("POSEBANK_WORKSPACE", None)
    if workspace is not None:
        os.environ["POSEBANK_WORKSPACE"] = str(workspace)
    try:
        return DagBag(dag_folder=str(DAGS), known_pools={"default_pool", "gpu", "dvc"})
    finally:
        os.environ.pop("POSEBANK_WORKSPACE", None)
        if old is not None:
            os.environ["POSEBANK_WORKSPACE"] = old


@pytest.fixture(scope="module")
def bag(airflow_home):
    return dagbag()


def build_module():
    sys.path.insert(0, str(DAGS))
    try:
        from posebank_dags import _build
    finally:
        sys.path.remove(str(DAGS))
    return _build


def command(t) -> str:
    """The bash command a task runs (a ``@task.bash`` task returns it); its docs show it too."""
    assert t.doc_md == f"`{t.python_callable()}`"
    return t.python_callable()


def chain(dag) -> list[str]:
    """The task ids in order, asserting the tasks form one straight line."""
    order = [t.task_id for t in dag.topological_sort()]
    for before, after in zip(order, order[1:]):
        assert dag.task_dict[after].upstream_task_ids == {before}, (dag.dag_id, after)
    assert dag.task_dict[order[0]].upstream_task_ids == set()
    return order


def cache_uri(ds: str, root: Path = REPO) -> str:
    return (root / "data/cache" / ds).as_uri()


def test_dagbag_imports_every_dag_file_with_one_dag_per_dataset_and_merge(bag):
    assert bag.import_errors == {}
    assert {Path(d.fileloc).name for d in bag.dags.values()} == {f.name for f in DAG_FILES}
    assert set(bag.dag_ids) == {f"posebank_{ds}" for ds in PARAMS["datasets"]} | {
        f"posebank_merge_{m}" for m in PARAMS["merges"]}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_each_dag_file_parses_in_under_2_s_reading_only_params_yaml(path, tmp_path):
    """A fresh interpreter per file (Airflow itself imported first, as in the DAG processor): the file's own
    top-level code takes under 2 s, imports nothing heavy, and the code of dags/ opens no file but params.yaml
    (its own modules aside)."""
    probe = textwrap.dedent("""
        import json, runpy, sys, sysconfig, time
        import yaml, airflow.sdk
        from airflow.sdk import DAG, Asset, task
        before = set(sys.modules)
        opened = []
        stdlib = sysconfig.get_paths()["stdlib"]

        def opener(frame):  # the first frame outside the standard library: who asked for the file
            while frame is not None and frame.f_code.co_filename.startswith((stdlib, "<")):
                frame = frame.f_back
            return frame.f_code.co_filename if frame is not None else ""

        def hook(event, args):
            if event == "open" and opener(sys._getframe(1)).startswith(sys.argv[2]):
                opened.append(str(args[0]))

        sys.addaudithook(hook)
        t = time.perf_counter()
        runpy.run_path(sys.argv[1], run_name="dag_file")
        seconds = time.perf_counter() - t
        new = sorted(set(sys.modules) - before)
        print(json.dumps({"seconds": seconds, "opened": [o for o in opened if not o.endswith((".py", ".pyc"))],
                          "modules": new}))
    """)
    r = subprocess.run([sys.executable, "-c", probe, str(path), str(DAGS)], env={**os.environ, **airflow_env(tmp_path)},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    import json

    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["seconds"] < 2.0, out["seconds"]
    assert out["opened"] == [str(REPO / "params.yaml")]
    heavy = ("posebank", "dvc", "numpy", "h5py", "cv2", "great_expectations", "torch", "pandas")
    assert not [m for m in out["modules"] if m.split(".")[0] in heavy], out["modules"]


def test_dataset_dags_run_the_stages_in_order_with_pools_retries_and_the_cache_asset(bag):
    af = PARAMS["airflow"]
    for ds in PARAMS["datasets"]:
        dag = bag.dags[f"posebank_{ds}"]
        assert chain(dag) == [*STAGES, "dvc_commit"]
        assert dag.catchup is False and dag.max_active_runs == 1
        assert set(dag.tags) == {*af["tags"], "dataset"}
        assert af["schedule"] == "@weekly" and dag.timetable.expression == "0 0 * * 0"
        for stage in STAGES:
            t = dag.task_dict[stage]
            assert command(t) == f"{sys.executable} stages/{stage}.py {ds}"
            assert t.cwd == str(REPO)
            assert t.pool == ("gpu" if stage in ("detect", "segment") else "default_pool"), (ds, stage)
            assert t.retries == (0 if stage == "validate" else af["retries"])
            assert t.retry_delay == datetime.timedelta(seconds=af["retry_delay_s"])
            assert t.retry_exponential_backoff == af["retry_exponential_backoff"]
            assert t.max_retry_delay == datetime.timedelta(seconds=af["max_retry_delay_s"])
            assert t.outlets == []
        commit = dag.task_dict["dvc_commit"]
        assert commit.pool == "dvc" and commit.retries == af["retries"]
        assert command(commit) == (f"{sys.executable} -m dvc --wait-for-lock commit -f "
                                       + " ".join(f"{s}@{ds}" for s in STAGES))
        [asset] = commit.outlets
        assert (asset.name, asset.uri) == (f"posebank-cache-{ds}", cache_uri(ds))


def test_merge_dags_wait_for_their_registered_sources_assets_then_commit_push_and_record(bag):
    for m, entry in PARAMS["merges"].items():
        dag = bag.dags[f"posebank_merge_{m}"]
        sources = [s["dataset"] for s in entry["sources"] if s["dataset"] in PARAMS["datasets"]]
        assert sources, m  # every merge of params.yaml holds some implemented source
        condition = dag.timetable.asset_condition
        assert type(condition).__name__ == "AssetAll"
        assert [(a.name, a.uri) for a in condition.objects] == [(f"posebank-cache-{ds}", cache_uri(ds))
                                                                for ds in sources]
        exports = [e for e, x in PARAMS["merge_exports"].items() if x["source"] == m]
        assert chain(dag) == ["merge_sources", "merge", "validate_merge", *(f"export_{e}" for e in exports),
                              "dvc_commit", "push", "record"]  # airflow.release is false: no release task
        assert command(dag.task_dict["merge"]) == f"{sys.executable} stages/merge.py {m}"
        assert dag.task_dict["validate_merge"].retries == 0
        assert command(dag.task_dict["dvc_commit"]).endswith(
            "commit -f merge_sources " + " ".join([f"merge@{m}", f"validate_merge@{m}",
                                                   *(f"export_merge@{e}" for e in exports)]))
        assert command(dag.task_dict["push"]).endswith(
            "posebank push --wait-for-lock " + " ".join([f"merge@{m}", *(f"crop@{ds}" for ds in sources),
                                *(f"export_merge@{e}" for e in exports)]))
        assert {dag.task_dict[t].pool for t in ("dvc_commit", "push", "record")} == {"dvc"}
        assert [a.name for a in dag.task_dict["record"].outlets] == [f"posebank-merge-{m}"]
    # small5's five sources are all datasets of params.yaml; huge8 waits only for those posebank implements
    small5 = bag.dags["posebank_merge_small5"].timetable.asset_condition.objects
    assert len(small5) == 5
    huge8 = [a.name for a in bag.dags["posebank_merge_huge8"].timetable.asset_condition.objects]
    assert set(huge8) == {f"posebank-cache-{s['dataset']}" for s in PARAMS["merges"]["huge8"]["sources"]
                          if s["dataset"] in PARAMS["datasets"]}
    assert "posebank-cache-agora" in huge8 and "posebank-cache-aist" in huge8


def test_the_dags_follow_another_workspaces_params(airflow_home, tmp_path):
    """POSEBANK_WORKSPACE: that workspace's datasets and merges, schedule, retries and release."""
    params = {"datasets": {"h36m": PARAMS["datasets"]["h36m"]},
              "pipeline": {"cache": "built/caches"},
              "merges": {"solo": {"sources": [{"dataset": "h36m", "suffix": "", "splits": {"train": "train"}},
                                              {"dataset": "notadataset", "suffix": "",
                                               "splits": {"train": "train"}}]},
                         "none_here": {"sources": [{"dataset": "notadataset", "suffix": "",
                                                    "splits": {"train": "train"}}]}},
              "airflow": {"schedule": None, "retries": 5, "retry_delay_s": 2, "release": True, "tags": ["lab"]}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    bag = dagbag(tmp_path)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"posebank_h36m", "posebank_merge_solo", "posebank_merge_none_here"}
    h36m = bag.dags["posebank_h36m"]
    assert type(h36m.timetable).__name__ == "NullTimetable" and set(h36m.tags) == {"lab", "dataset"}
    assert h36m.task_dict["convert"].retries == 5 and h36m.task_dict["convert"].cwd == str(tmp_path)
    assert h36m.task_dict["convert"].max_retry_delay == datetime.timedelta(seconds=1800)  # the default
    assert h36m.task_dict["dvc_commit"].outlets[0].uri == (tmp_path / "built/caches/h36m").as_uri()
    solo = bag.dags["posebank_merge_solo"]
    assert [a.name for a in solo.timetable.asset_condition.objects] == ["posebank-cache-h36m"]
    assert chain(solo)[-2:] == ["record", "release"]
    assert command(solo.task_dict["release"]).endswith("posebank release solo")
    # no source of this workspace publishes an Asset: manual runs only
    assert type(bag.dags["posebank_merge_none_here"].timetable).__name__ == "NullTimetable"


def test_with_gpu_shards_detect_and_segment_are_mapped_over_the_parts_then_assembled(airflow_home, tmp_path):
    """airflow.gpu_shards 4: ``<stage>_shards`` is one mapped task over shard 0..3 (``--shard i/4``, pool gpu,
    queue gpu_queue), and the ``<stage>`` task after it runs the stage over all shards (the assembly)."""
    params = {"datasets": {"h36m": PARAMS["datasets"]["h36m"]},
              "airflow": {"gpu_shards": 4, "gpu_queue": "gpu_workers", "schedule": None}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    bag = dagbag(tmp_path)
    assert bag.import_errors == {}
    dag = bag.dags["posebank_h36m"]
    assert chain(dag) == ["fetch", "convert", "frames", "detect_shards", "detect", "segment_shards", "segment",
                          "crop", "validate", "dvc_commit"]
    for stage in ("detect", "segment"):
        mapped = dag.task_dict[f"{stage}_shards"]
        assert type(mapped).__name__.endswith("MappedOperator")
        assert mapped.pool == "gpu" and mapped.queue == "gpu_workers"
        assert mapped.op_kwargs_expand_input.value == {"shard": [0, 1, 2, 3]}
        assert [mapped.python_callable(i) for i in range(4)] == [
            f"{sys.executable} stages/{stage}.py h36m --shard {i}/4" for i in range(4)]
        assemble = dag.task_dict[stage]
        assert command(assemble) == f"{sys.executable} stages/{stage}.py h36m"
        assert assemble.pool == "gpu" and assemble.queue == "gpu_workers"
    assert dag.task_dict["crop"].queue == "default"
    # without gpu_shards: no mapped task (the default DAG of test_dataset_dags_run_the_stages_in_order...)
    params["airflow"]["gpu_shards"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert chain(dagbag(tmp_path).dags["posebank_h36m"]) == [*STAGES, "dvc_commit"]


def test_the_dag_defaults_are_the_settings_defaults():
    from posebank.core.settings import AirflowParams, check_params

    assert build_module().DEFAULTS == dataclasses.asdict(AirflowParams())
    assert check_params(PARAMS).airflow == AirflowParams.from_dict(PARAMS["airflow"])
    assert build_module().pools(PARAMS) == {
        "gpu": (PARAMS["airflow"]["gpu_slots"], "posebank detect and segment tasks (GPU work)"),
        "dvc": (1, "posebank tasks taking the DVC repository lock (commit, push, git)")}


def test_airflow_params_name_the_key():
    from posebank.core.errors import ParamsError
    from posebank.core.settings import AirflowParams, check_params

    with pytest.raises(ParamsError, match=r"^airflow\.gpu_slots: must be at least 1, got 0"):
        AirflowParams.from_dict({"gpu_slots": 0})
    with pytest.raises(ParamsError, match=r"^airflow\.retry_exponential_backoff: must be 0 \(constant delay\)"):
        AirflowParams.from_dict({"retry_exponential_backoff": 0.5})
    with pytest.raises(ParamsError, match=r"^airflow\.max_retry_delay_s: must be at least retry_delay_s"):
        AirflowParams.from_dict({"retry_delay_s": 600, "max_retry_delay_s": 60})
    with pytest.raises(ParamsError, match=r"^airflow\.gpu_shards: must be at least 1, got 0"):
        AirflowParams.from_dict({"gpu_shards": 0})
    with pytest.raises(ParamsError, match=r"^airflow\.schedule: must be a cron preset"):
        AirflowParams.from_dict({"schedule": " "})
    with pytest.raises(ParamsError, match=r"params\.yaml: airflow\.retry: unknown setting"):
        check_params({"airflow": {"retry": 3}})
    assert AirflowParams.from_dict({"schedule": None, "retries": 0}).schedule is None


def test_a_failed_validation_fails_the_task_and_its_log_names_the_report(bag, h36m_cache, tmp_path):
    """The validate task's own command on a cache that fails validation (an expected count it does not have):
    exit status 1, and the output the task log records names the Great Expectations report."""
    ws = tmp_path / "ws"
    for folder in ("stages", "expectations"):
        shutil.copytree(REPO / folder, ws / folder)
    shutil.copytree(h36m_cache, ws / "data/cache/h36m")
    params = {**PARAMS, "datasets": {"h36m": PARAMS["datasets"]["h36m"]}, "subsets": {}, "exports": {},
              "merges": {}, "merge_exports": {}, "validate": {**PARAMS["validate"], "expected_counts": {"h36m": 1}}}
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    validate = dagbag(ws).dags["posebank_h36m"].task_dict["validate"]
    assert validate.retries == 0 and validate.cwd == str(ws)
    r = subprocess.run(["bash", "-c", command(validate)], cwd=validate.cwd, capture_output=True, text=True,
                       timeout=300)
    log = r.stdout + r.stderr
    assert r.returncode == 1, log
    assert "report reports/validation/h36m.json" in log and "error: " in log and "Traceback" not in log
    report = yaml.safe_load((ws / "reports/validation/h36m.json").read_text())
    assert report["success"] is False
