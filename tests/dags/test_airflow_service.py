"""``scripts/airflow_service.py`` for real: ``start`` brings up ``airflow standalone`` over a scratch DVC workspace
(H36M only, small fixture) on a free port of 127.0.0.1; its REST API, with a token of the simple auth manager,
lists the DAG, and a run triggered through the API builds the cache with every task successful; ``screenshot``
renders the DAG's grid with headless Chromium; ``stop`` leaves no process of the home and frees the port. The fast
tests: ``stop`` with nothing running, ``start`` on a busy port."""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import H36M_SMALL_PARAMS, REPO
from helpers import script
from posebank.core.store import Cache
from workspaces import commit, copy_repo, sh

SCRIPT = REPO / "scripts" / "airflow_service.py"
BIN = Path(sys.executable).parent
DAG = "posebank_h36m"
TASKS = ("fetch", "convert", "frames", "detect", "segment", "crop", "validate", "dvc_commit")
# the scratch workspace's airflow: section over params.yaml's: manual runs only (no scheduled run on unpausing),
# quick retries; detect and segment mapped over four shard parts, two at a time (pool gpu of 2 slots)
SHARDS = 4
AIRFLOW_PARAMS = {"schedule": None, "retries": 1, "retry_delay_s": 1, "max_retry_delay_s": 2, "gpu_shards": SHARDS,
                  "gpu_slots": 2}
RUN_TIMEOUT_S = 600


def service(*args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    """``scripts/airflow_service.py ARGS`` with this environment's interpreter."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("AIRFLOW_HOME", None)
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=REPO)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def listeners(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp* spell them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def proc_table() -> dict[int, dict]:
    """Every live process: ppid, pgid, RSS (kB), the environment it was exec'd with, its command line."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] in ("Z", "X"):
            continue
        rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        table[int(entry.name)] = {"ppid": int(fields[1]), "pgid": int(fields[2]), "rss_kb": rss,
                                  "environ": environ, "cmdline": cmdline}
    return table


def with_home(home: Path) -> set[int]:
    """The live processes whose environment holds ``AIRFLOW_HOME=<home>``."""
    needle = f"AIRFLOW_HOME={home}".encode()
    return {pid for pid, p in proc_table().items() if needle in p["environ"]}


def instance(home: Path) -> dict[int, dict]:
    """The running instance's processes: its process group, the processes with its home, their descendants."""
    table = proc_table()
    pgid = json.loads((home / "standalone.pid").read_text())["pgid"]
    needle = f"AIRFLOW_HOME={home}".encode()
    found = {pid for pid, p in table.items() if p["pgid"] == pgid or needle in p["environ"]}
    grew = True
    while grew:
        more = {pid for pid, p in table.items() if p["ppid"] in found} - found
        found |= more
        grew = bool(more)
    return {pid: table[pid] for pid in found}


def api(url: str, method: str = "GET", body=None, token: str | None = None):
    """One REST API request, as the service script makes them (an HTTP error raises urllib's HTTPError)."""
    return script("airflow_service").http_json(url, method, body, token, timeout=30)


def write_params(repo: Path, airflow: dict | None = None) -> dict:
    """The workspace's params.yaml: this repository's with H36M only (the small fixture's subjects, small shards),
    segmentation off, no merges, subsets or exports, and ``airflow:`` updated with AIRFLOW_PARAMS, then
    ``airflow``."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"] = {"h36m": {**params["datasets"]["h36m"], **H36M_SMALL_PARAMS}}
    params["segment"]["backend"] = "none"
    params["pipeline"]["shard_frames"] = 3  # several shards, so that each of the SHARDS parts has work
    params["merges"], params["subsets"], params["exports"], params["merge_exports"] = {}, {}, {}, {}
    params["airflow"] = {**params["airflow"], **AIRFLOW_PARAMS, **(airflow or {})}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


@pytest.fixture(scope="module")
def workspace(h36m_raw, tmp_path_factory) -> Path:
    """This repository copied with H36M only and its raw fixture in data/raw/h36m; ``dvc status`` works there."""
    repo = copy_repo(tmp_path_factory.mktemp("airflow_service_ws") / "repo")
    write_params(repo)
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    del dvc["stages"]["refit_config"]  # over ReFit's exports, not in this workspace
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    commit(repo, "h36m only")
    shutil.copytree(h36m_raw, repo / "data/raw/h36m")
    status = sh("dvc", "status", cwd=repo)
    assert "crop@h36m" in status and "merge@" not in status, status
    return repo


@pytest.fixture(scope="module")
def airflow(workspace, tmp_path_factory, request) -> dict:
    """The service started by the script on a free port, home in tmp; stopped at the end whatever happens."""
    home = tmp_path_factory.mktemp("airflow_service") / "home"
    port = free_port()
    request.addfinalizer(lambda: service("stop", "--home", str(home), timeout=120))
    t = time.perf_counter()
    r = service("start", "--home", str(home), "--workspace", str(workspace), "--port", str(port))
    seconds = time.perf_counter() - t
    assert r.returncode == 0, f"start failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n" + (
        (home / "standalone.log").read_text()[-5000:] if (home / "standalone.log").exists() else "")
    fields = dict(line.split(None, 1) for line in r.stdout.splitlines() if line.startswith("  "))
    print(f"\nairflow start: {seconds:.1f} s")
    return {"home": home, "port": port, "url": f"http://127.0.0.1:{port}", "password": fields["password"].strip(),
            "stdout": r.stdout, "start_s": seconds, "workspace": workspace}


@pytest.fixture(scope="module")
def token(airflow) -> str:
    return api(f"{airflow['url']}/auth/token", "POST", {"username": "admin", "password": airflow["password"]}
               )["access_token"]


@pytest.mark.slow
def test_start_serves_a_healthy_api_on_localhost_listing_the_dag(airflow, token):
    url, home = airflow["url"], airflow["home"]
    health = api(f"{url}/api/v2/monitor/health")
    assert health["metadatabase"]["status"] == "healthy" and health["scheduler"]["status"] == "healthy", health
    # the password printed is the one kept in the home, and the API refuses another
    assert json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"] == \
        airflow["password"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(f"{url}/auth/token", "POST", {"username": "admin", "password": airflow["password"] + "x"})
    assert refused.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        api(f"{url}/api/v2/dags")
    assert anonymous.value.code == 401
    dags = api(f"{url}/api/v2/dags?limit=100", token=token)["dags"]
    assert [d["dag_id"] for d in dags] == [DAG]  # no example DAGs; the workspace has one dataset and no merge
    assert dags[0]["is_paused"] is True  # Airflow's default for new DAGs is kept
    assert "1 posebank DAGs parsed" in airflow["stdout"] and f"URL        {url}" in airflow["stdout"]
    pools = {p["name"]: p["slots"] for p in api(f"{url}/api/v2/pools", token=token)["pools"]}
    assert pools["gpu"] == 2 and pools["dvc"] == 1  # from the workspace's params.yaml
    # bound to 127.0.0.1 only
    assert listeners(airflow["port"]) == {"0100007F"}
    procs = instance(home)
    workers = [p for p in procs.values() if "LocalExecutor" in p["cmdline"]]
    assert len(workers) == 4  # core.parallelism
    rss_mb = sum(p["rss_kb"] for p in procs.values()) / 1024
    print(f"\nairflow instance: {len(procs)} processes, RSS {rss_mb:.0f} MB")
    assert rss_mb < 3500
    status = service("status", "--home", str(home))
    pid = json.loads((home / "standalone.pid").read_text())["pid"]
    assert status.returncode == 0 and f"running, pid {pid}, {url}" in status.stdout, status.stdout
    unknown = service("trigger", "--home", str(home), "--dag", "posebank_nope")
    assert unknown.returncode == 2 and unknown.stderr.splitlines() == [
        "error: posebank_nope: no such DAG in this Airflow (`make airflow` lists them)"], unknown.stderr
    again = service("start", "--home", str(home), "--port", str(free_port()))
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
    assert again.stderr.startswith(f"error: {home / 'standalone.pid'}: Airflow of this home already runs")


@pytest.mark.slow
def test_every_socket_the_instance_listens_on_is_on_127_0_0_1(airflow, token):
    """The API server, and no log server: Airflow binds the scheduler's and the triggerer's to every interface,
    so the home's `airflow` wrapper starts both with --skip-serve-logs."""
    import psutil

    home = airflow["home"]
    wrapper = (home / "bin" / "airflow").read_text()
    assert "scheduler|triggerer) exec" in wrapper and "--skip-serve-logs" in wrapper
    listening = {}
    for pid in instance(home):
        try:
            for c in psutil.Process(pid).net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    listening[(c.laddr.ip, c.laddr.port)] = psutil.Process(pid).name()
        except psutil.NoSuchProcess:
            continue
    assert ("127.0.0.1", airflow["port"]) in listening, listening
    assert {ip for ip, _port in listening} == {"127.0.0.1"}, listening
    for port in json.loads((home / "standalone.pid").read_text())["log_server_ports"]:
        assert listeners(port) == set(), port  # no log server at all
    # the components standalone started, each through the wrapper
    commands = [p["cmdline"] for p in instance(home).values()]
    assert any("scheduler --skip-serve-logs" in c for c in commands), commands
    assert any("triggerer --skip-serve-logs" in c for c in commands), commands


def task_log(home: Path, run_id: str, task_id: str, map_index: int | None = None) -> str:
    folder = home / "logs" / f"dag_id={DAG}" / f"run_id={run_id}" / f"task_id={task_id}"
    if map_index is not None:
        folder = folder / f"map_index={map_index}"
    logs = sorted(folder.rglob("attempt=*"))
    return logs[-1].read_text()[-4000:] if logs else "(no log file)"


@pytest.fixture(scope="module")
def run(airflow, token) -> dict:
    """posebank_h36m unpaused and triggered through the REST API, polled until it ends."""
    url, home = airflow["url"], airflow["home"]
    assert api(f"{url}/api/v2/dags/{DAG}", "PATCH", {"is_paused": False}, token)["is_paused"] is False
    t = time.perf_counter()
    created = api(f"{url}/api/v2/dags/{DAG}/dagRuns", "POST", {"logical_date": None}, token)
    run_id = created["dag_run_id"]
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while (state := api(f"{url}/api/v2/dags/{DAG}/dagRuns/{run_id}", token=token)["state"]) not in (
            "success", "failed") and time.monotonic() < deadline:
        time.sleep(2)
    seconds = time.perf_counter() - t
    tis = api(f"{url}/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances?limit=1000", token=token)["task_instances"]
    states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in tis}
    if state != "success":
        failed = [t for (t, _), s in states.items() if s not in ("success", None)] or [t for t, _ in states]
        pytest.fail(f"run {run_id} ended {state} after {seconds:.0f} s; tasks {states}\n"
                    + "\n".join(f"--- {t}:\n{task_log(home, run_id, t)}" for t in failed[:2]))
    print(f"\n{DAG} run: {seconds:.1f} s")
    tasks = [t["task_id"] for t in api(f"{url}/api/v2/dags/{DAG}/tasks", token=token)["tasks"]]
    return {"run_id": run_id, "states": states, "seconds": seconds, "tis": tis, "tasks": tasks}


@pytest.mark.slow
def test_a_run_triggered_through_the_api_builds_the_cache_with_every_task_successful(airflow, run):
    workspace = airflow["workspace"]
    # every task instance of every task of the DAG (the seven stages, dvc_commit, the mapped shard tasks)
    assert set(TASKS) <= set(run["tasks"]) and {t for t, _ in run["states"]} == set(run["tasks"])
    for stage in ("detect", "segment"):
        mapped = sorted((ti["map_index"], ti["rendered_map_index"]) for ti in run["tis"]
                        if ti["task_id"] == f"{stage}_shards")
        assert mapped == [(i, f"shard {i}/{SHARDS}") for i in range(SHARDS)]
        assert f"shard part 1/{SHARDS}" in task_log(airflow["home"], run["run_id"], f"{stage}_shards", 1)
        assert f"{stage} h36m: all " in task_log(airflow["home"], run["run_id"], stage)  # the assembly
    assert set(run["states"].values()) == {"success"}, run["states"]
    assert all(ti["try_number"] == 1 for ti in run["tis"])  # no retry was needed
    assert (workspace / "data/cache/h36m/index.json").is_file()
    with Cache(workspace / "data/cache/h36m") as c:
        assert c.split_counts()["test"] == 16 and len(c) > 16
    assert json.loads((workspace / "reports/validation/h36m.json").read_text())["success"] is True
    # dvc_commit recorded the seven stages in dvc.lock
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())["stages"]
    assert {f"{s}@h36m" for s in TASKS[:-1]} <= set(lock)
    # the stage's own output is the task's log
    assert "expectations passed" in task_log(airflow["home"], run["run_id"], "validate")


@pytest.mark.slow
def test_the_sharded_run_built_the_bytes_of_the_single_process_stages(airflow, run, tmp_path):
    """detect and segment as four mapped task instances each (LocalExecutor), crop after them: rebuilt here by the
    stages in one process each from the same records and frames, every shard and the cache are the same bytes."""
    from helpers import folder_bytes
    from posebank.core.settings import PipelineParams
    from posebank.pipeline.layout import Layout
    from posebank.pipeline.run import run_stage

    workspace = airflow["workspace"]
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["datasets"]["h36m"]["raw"] = str(workspace / "data/raw/h36m")

    def layout(pipeline: dict) -> Layout:
        return Layout.from_params("h36m", PipelineParams.from_dict(pipeline))

    built = layout({k: str(workspace / v) if k in ("interim", "cache", "reports") else v
                    for k, v in params["pipeline"].items()})
    params["pipeline"].update(interim=str(tmp_path / "interim"), cache=str(tmp_path / "cache"),
                              reports=str(tmp_path / "reports"))
    single = layout(params["pipeline"])
    shutil.copytree(built.interim, single.interim, ignore=shutil.ignore_patterns("boxes", "masks"))
    assert not single.shard_folder("detect").exists() and single.shard_folder("frames").is_dir()
    for stage in ("detect", "segment", "crop"):
        run_stage(stage, "h36m", params)
    n = len(list(built.shard_folder("frames").glob("*.h5")))
    assert n >= SHARDS  # every part had work
    for stage in ("detect", "segment", "crop"):
        assert len(list(built.shard_folder(stage).glob("*.h5"))) == n
        assert folder_bytes(single.shard_folder(stage)) == folder_bytes(built.shard_folder(stage)), stage
    assert single.index.read_bytes() == built.index.read_bytes()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
def test_the_screenshot_shows_the_grid_of_the_run(airflow, run, tmp_path):
    if not Path("/usr/bin/chromium").is_file():
        pytest.skip("Chromium is not installed (Debian package chromium)")
    out = tmp_path / "grid.png"
    r = service("screenshot", "--home", str(airflow["home"]), "--dag", DAG, "--out", str(out), "--size", "1280x800",
                timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    # the script waited until the page showed every task and the run's task instances
    assert f"last run {run['run_id']}: success" in r.stdout, r.stdout
    data = out.read_bytes()
    assert png_size(data) == (1280, 800) and len(data) > 20_000


@pytest.mark.slow
def test_stop_ends_every_process_of_the_home_and_frees_the_port(airflow, run):
    home, port = airflow["home"], airflow["port"]
    # a process of this home outside the process group (as a task process that called setsid)
    straggler = subprocess.Popen(["sleep", "600"], env={**os.environ, "AIRFLOW_HOME": str(home)},
                                 start_new_session=True)
    pgid = json.loads((home / "standalone.pid").read_text())["pgid"]
    before = set(instance(home))
    assert straggler.pid in with_home(home) and os.getpgid(straggler.pid) != pgid
    t = time.perf_counter()
    r = service("stop", "--home", str(home), timeout=120)
    seconds = time.perf_counter() - t
    assert r.returncode == 0, r.stdout + r.stderr
    assert straggler.wait(timeout=10) == -signal.SIGTERM
    stopped = int(r.stdout.split(": ")[1].split()[0])
    assert stopped >= len(before), (r.stdout, sorted(before))
    print(f"\nairflow stop: {stopped} processes in {seconds:.1f} s")
    assert with_home(home) == set()
    assert not before & set(proc_table())  # none of the instance's processes is left (zombies aside)
    assert port_free(port) and not listeners(port)
    assert not (home / "standalone.pid").exists()
    again = service("stop", "--home", str(home))
    assert again.returncode == 0 and "no Airflow" in again.stdout


def test_stop_with_nothing_running_exits_0(tmp_path):
    home = tmp_path / "home"
    r = service("stop", "--home", str(home))
    assert r.returncode == 0 and r.stdout.strip() == f"no Airflow of {home} is running" and not r.stderr
    s = service("status", "--home", str(home))
    assert s.returncode == 3 and "not running" in s.stdout
    assert not home.exists()


IGNORES_SIGTERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); " \
                  "time.sleep(600)"


def test_stop_kills_the_processes_of_the_home_that_outlive_sigterm(tmp_path):
    """No pid file, two processes of the home in their own sessions: one ends on SIGTERM, the other only on SIGKILL
    after the grace period; the processes of another home are left alone."""
    home, other = tmp_path / "home", tmp_path / "other"

    def spawn(code: str, airflow_home: Path) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "AIRFLOW_HOME": str(airflow_home)},
                             start_new_session=True, stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        return p

    obeys = spawn("import time; print('ready', flush=True); time.sleep(600)", home)
    stubborn = spawn(IGNORES_SIGTERM, home)
    elsewhere = spawn("import time; print('ready', flush=True); time.sleep(600)", other)
    try:
        t = time.perf_counter()
        r = service("stop", "--home", str(home), "--grace", "1")
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.strip() == f"stopped Airflow of {home}: 2 processes (1 killed after 1 s)"
        assert time.perf_counter() - t < 10
        assert obeys.wait(timeout=5) == -signal.SIGTERM and stubborn.wait(timeout=5) == -signal.SIGKILL
        assert elsewhere.poll() is None
    finally:
        for p in (obeys, stubborn, elsewhere):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_start_refuses_a_busy_port_with_one_error_line(tmp_path):
    home = tmp_path / "home"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = service("start", "--home", str(home), "--port", str(port), timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.splitlines() == [f"error: port {port}: already in use on 127.0.0.1; choose another with --port "
                                     "or AIRFLOW_PORT"]
    assert "Traceback" not in r.stdout and not home.exists()
