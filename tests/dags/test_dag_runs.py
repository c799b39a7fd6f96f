"""The DAGs run for real on fixtures in a scratch DVC workspace: the H36M and SURREAL dataset DAGs at the same
time (``dag.test()`` and ``airflow dags test``, each with its own metadata DB, one workspace), the DAGs of small5's
other three sources, then small5's merge DAG over its five caches; afterwards dvc.lock records every output
(``dvc status`` is clean) and git holds dvc.lock."""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from airflow_env import BIN, DAGS, airflow_env, prepare_home
from conftest import H36M_SMALL_PARAMS
from helpers import folder_bytes
from posebank.core.store import Cache
from workspaces import commit, copy_repo, sh, stale_stages

STAGES = ("fetch", "convert", "frames", "detect", "segment", "crop", "validate")
DAG_TEST = """
import sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
run = bag.dags[sys.argv[2]].test()
print("dag run state:", run.state)
sys.exit(0 if run.state == "success" else 1)
"""


@pytest.fixture(scope="module")
def airflow_template(tmp_path_factory) -> Path:
    """A migrated metadata DB with the pools; each DAG run below works on a copy of it."""
    home = tmp_path_factory.mktemp("airflow_template")
    prepare_home(home)
    return home


def airflow_home(template: Path, home: Path) -> Path:
    home.mkdir(parents=True)
    shutil.copy2(template / "airflow.db", home / "airflow.db")
    return home


@pytest.fixture(scope="module")
def workspace(h36m_raw, tmp_path_factory) -> Path:
    """This repository copied with H36M (small fixture), SURREAL and small5's sources (small fixtures, the
    session's small5 options), segmentation off, small5 as params.yaml composes it with its barecat export, and a
    local DVC remote."""
    from conftest import SMALL5_SOURCES, SMALL5_TREES
    from posebank import datasets

    repo = copy_repo(tmp_path_factory.mktemp("airflow_ws") / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    small = {"h36m": H36M_SMALL_PARAMS}
    params["datasets"] = {ds: {**params["datasets"][ds], **small.get(tree, {}), **over}
                          for ds, (tree, over) in {"h36m": ("h36m", {}), **SMALL5_SOURCES}.items()}
    params["segment"]["backend"] = "none"
    params["merges"] = {"small5": params["merges"]["small5"]}
    params["subsets"], params["exports"] = {}, {}
    params["merge_exports"] = {"small5_barecat": params["merge_exports"]["small5_barecat"]}
    params["airflow"].update(retries=1, retry_delay_s=1, max_retry_delay_s=2)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    del dvc["stages"]["refit_config"]  # over ReFit's exports, not in this workspace
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    commit(repo, "two datasets, one merge")
    shutil.copytree(h36m_raw, repo / "data/raw/h36m")
    for tree, (writer, options) in SMALL5_TREES.items():
        if tree != "h36m":
            datasets.get(writer).make_fixture(repo / f"data/raw/{tree}", 0, **options)
    sh("dvc", "remote", "modify", "--local", "local", "url", str(repo.parent / "storage"), cwd=repo)
    return repo


def start(cmd: list[str], home: Path, workspace: Path, log: Path) -> subprocess.Popen:
    import os

    env = {**os.environ, **airflow_env(home, workspace)}
    return subprocess.Popen(cmd, cwd=workspace, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def finish(p: subprocess.Popen, log: Path, timeout: float = 600) -> str:
    try:
        p.wait(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
    text = log.read_text()
    assert p.returncode == 0, text[-6000:]
    return text


@pytest.fixture(scope="module")
def built(workspace, airflow_template, tmp_path_factory):
    """The H36M DAG by ``dag.test()`` and the SURREAL DAG by ``airflow dags test``, started together."""
    tmp = tmp_path_factory.mktemp("dag_runs")
    t = time.perf_counter()
    runs = {"h36m": start([str(BIN / "python"), "-c", DAG_TEST, str(DAGS), "posebank_h36m"],
                          airflow_home(airflow_template, tmp / "home_h36m"), workspace, tmp / "h36m.log"),
            "surreal": start([str(BIN / "airflow"), "dags", "test", "posebank_surreal"],
                             airflow_home(airflow_template, tmp / "home_surreal"), workspace, tmp / "surreal.log")}
    logs = {ds: finish(p, tmp / f"{ds}.log") for ds, p in runs.items()}
    return {"logs": logs, "seconds": time.perf_counter() - t, "tmp": tmp}


OTHER_SOURCES = ("h36m_alljoints", "muco_3dhp", "tdhp_test", "mupots")  # small5's, beside surreal


@pytest.fixture(scope="module")
def small5_built(workspace, built, airflow_template):
    """The DAGs of small5's other four sources, all four at once (``dag.test()``, one workspace)."""
    tmp = built["tmp"]
    runs = {ds: start([str(BIN / "python"), "-c", DAG_TEST, str(DAGS), f"posebank_{ds}"],
                      airflow_home(airflow_template, tmp / f"home_{ds}"), workspace, tmp / f"{ds}.log")
            for ds in OTHER_SOURCES}
    return {ds: finish(p, tmp / f"{ds}.log") for ds, p in runs.items()}


def lock_stages(repo: Path) -> dict:
    return yaml.safe_load((repo / "dvc.lock").read_text())["stages"]


@pytest.mark.slow
def test_the_h36m_dag_builds_its_cache_and_records_it_in_dvc_lock(workspace, built):
    assert "dag run state: success" in built["logs"]["h36m"]
    # the stage's own output is the task's log (here the validation line naming the report)
    assert re.search(r"h36m: (\d+)/\1 expectations passed on \d+ examples; report reports/validation/h36m\.json",
                     built["logs"]["h36m"])
    with Cache(workspace / "data/cache/h36m") as c:
        assert c.split_counts()["test"] == 16 and len(c) > 16
    report = json.loads((workspace / "reports/validation/h36m.json").read_text())
    assert report["success"] is True
    lock = lock_stages(workspace)
    assert {f"{s}@h36m" for s in STAGES} <= set(lock)
    cache_out = {o["path"]: o for o in lock["crop@h36m"]["outs"]}["data/cache/h36m"]
    assert cache_out["nfiles"] == len(list((workspace / "data/cache/h36m").iterdir()))
    # the outputs the stage tasks built are those dvc.lock records: nothing of H36M is stale, nothing reruns
    assert not {s for s in stale_stages(workspace) if s.endswith("@h36m")}
    out = sh("dvc", "repro", "--dry", "validate@h36m", cwd=workspace)
    assert "Running stage" not in out, out


HOLD_LOCK = """
import sys, time
from dvc.repo import Repo

with Repo(sys.argv[1]) as repo, repo.lock:
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@pytest.mark.slow
def test_the_commit_task_waits_for_a_dvc_lock_another_process_holds(workspace, built):
    """Another DVC process in the workspace (a maintainer's dvc command, a DAG run outside the pool): the
    dvc_commit task's command waits for the lock and succeeds; without the wait, dvc would fail at once."""
    import os

    from airflow_env import airflow_env as env_of

    env = {**os.environ, **env_of(built["tmp"] / "unused", workspace)}
    sys.path.insert(0, str(DAGS))
    try:
        from posebank_dags._build import STAGES as DAG_STAGES
        from posebank_dags._build import dvc_command
    finally:
        sys.path.remove(str(DAGS))
    assert DAG_STAGES == STAGES
    command = dvc_command("commit", "-f", *(f"{s}@h36m" for s in STAGES))
    holder = subprocess.Popen([str(BIN / "python"), "-c", HOLD_LOCK, str(workspace), "6"], cwd=workspace, env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        without = subprocess.run(["bash", "-c", command.replace(" --wait-for-lock", "")], cwd=workspace, env=env,
                                 capture_output=True, text=True)
        assert without.returncode != 0 and "Unable to acquire lock" in without.stderr + without.stdout
        t = time.perf_counter()
        waited = subprocess.run(["bash", "-c", command], cwd=workspace, env=env, capture_output=True, text=True)
        assert waited.returncode == 0, waited.stdout + waited.stderr
        assert holder.wait(timeout=30) == 0
        assert time.perf_counter() - t > 1.0  # it waited for the holder to let go
    finally:
        if holder.poll() is None:
            holder.kill()


@pytest.mark.slow
def test_two_dataset_dags_at_once_build_both_caches_without_a_dvc_lock_failure(workspace, built):
    logs = built["logs"]
    for ds in ("h36m", "surreal"):
        assert re.search(rf"DagRun Finished: dag_id=posebank_{ds},.* state=success", logs[ds]), logs[ds][-3000:]
        assert "Unable to acquire lock" not in logs[ds] and "LockError" not in logs[ds]
        assert (workspace / f"data/cache/{ds}/index.json").is_file()
        assert json.loads((workspace / f"reports/validation/{ds}.json").read_text())["success"] is True
    lock = lock_stages(workspace)
    assert {f"{s}@{ds}" for s in STAGES for ds in ("h36m", "surreal")} <= set(lock)
    assert not {st for st in stale_stages(workspace) if st.endswith(("@h36m", "@surreal"))}


@pytest.mark.slow
def test_the_small5_merge_dag_builds_validates_exports_pushes_and_commits_dvc_lock(workspace, built, small5_built,
                                                                                  airflow_template):
    from posebank.merging.reader import Merge

    for ds, log in small5_built.items():
        assert "dag run state: success" in log, (ds, log[-3000:])
        assert "Unable to acquire lock" not in log and "LockError" not in log
    tmp = built["tmp"]
    p = start([str(BIN / "python"), "-c", DAG_TEST, str(DAGS), "posebank_merge_small5"],
              airflow_home(airflow_template, tmp / "home_small5"), workspace, tmp / "small5.log")
    log = finish(p, tmp / "small5.log")
    assert "dag run state: success" in log
    spec = yaml.safe_load((workspace / "params.yaml").read_text())["merges"]["small5"]
    with Merge(workspace / "data/merged/small5.h5") as m:
        assert [s["dataset"] for s in m.sources] == [s["dataset"] for s in spec["sources"]]
        assert not m.summary()["partial"]
        expected = 0
        for s in spec["sources"]:
            counts = Cache(workspace / f"data/cache/{s['dataset']}").split_counts()
            expected += sum(counts[split] for split in s["splits"])
        assert len(m) == expected
    assert json.loads((workspace / "reports/validation/small5.json").read_text())["success"] is True
    assert any((workspace / "data/exports/small5_barecat").iterdir())
    # everything is recorded: no stage is stale, and git's last commit holds that dvc.lock
    assert stale_stages(workspace) == set()
    assert sh("git", "status", "--porcelain", "--", "dvc.lock", cwd=workspace).strip() == ""
    assert "posebank_merge_small5" in sh("git", "log", "-1", "--format=%s", cwd=workspace)
    # the remote holds the merge and its caches: a fresh clone pulls them with the same bytes
    clone = tmp / "clone"
    sh("git", "clone", "-q", str(workspace), str(clone), cwd=tmp)
    sh("dvc", "remote", "modify", "--local", "local", "url", str(workspace.parent / "storage"), cwd=clone)
    sh("dvc", "pull", "merge@small5", "crop@muco_3dhp", cwd=clone)
    assert folder_bytes(clone / "data/cache/muco_3dhp") == folder_bytes(workspace / "data/cache/muco_3dhp")
    assert (clone / "data/merged/small5.h5").read_bytes() == (workspace / "data/merged/small5.h5").read_bytes()
