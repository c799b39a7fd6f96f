"""`make airflow`, `make airflow-stop`, `make airflow-screenshot`: a local Airflow 3 for posebank's DAGs.

``start`` runs ``airflow standalone`` (api-server, scheduler, dag-processor, triggerer) with every setting given as an
``AIRFLOW__*`` environment variable: its home (default ``.airflow/`` of this checkout: sqlite metadata DB, logs,
generated airflow.cfg), this repository's ``dags/`` over a DVC workspace (default this checkout), the API server on
127.0.0.1 with one worker, the LocalExecutor with a small parallelism (each slot is a resident worker process), the
simple auth manager with the user ``admin`` and a password generated once and kept in the home. Before it, the
metadata DB is migrated and the pools the DAGs use are created from the workspace's params.yaml. It runs in its own
session (process group), logs to ``<home>/standalone.log`` and is recorded in ``<home>/standalone.pid``; ``start``
returns once the health endpoint reports the metadata DB and the scheduler healthy and the REST API lists every
posebank DAG.

``stop`` ends the process group (SIGTERM, then SIGKILL after a grace period) and every other process whose
environment names this home (task processes may leave the group). ``status`` says whether it runs. ``trigger``
unpauses a DAG, starts a run through the REST API and waits for it, printing each task's state. ``screenshot``
renders a DAG's grid with headless Chromium, logged in with a token from the API (the UI's own token cookie), and
writes a PNG.

User errors are one line, ``error: <file or key>: <problem>``, exit status 2.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from posebank.core.atomic import atomic_path, write_json
from posebank.core.errors import OutputError, PosebankError, UsageError
from posebank.entry import run_guarded

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "dags"
BIN = Path(sys.executable).parent  # the virtualenv's bin (not resolved: the venv's python may be a symlink)
DEFAULT_HOME = ROOT / ".airflow"
DEFAULT_PORT = 8080
DEFAULT_SCREENSHOT = ROOT / "build" / "airflow-grid.png"
PID_FILE, LOG_FILE = "standalone.pid", "standalone.log"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"  # the simple auth manager's own file name
USER = "admin"
PARALLELISM = 4  # LocalExecutor: one resident worker process per slot (the default 32 take about 5.5 GB)
STOP_GRACE_S = 20.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")
# the simple auth manager's password alphabet (no look-alike characters)
PASSWORD_ALPHABET = "abcdefghkmnpqrstuvwxyzABCDEFGHKMNPQRSTUVWXYZ23456789"


class ServiceError(PosebankError):
    """The Airflow service cannot be started, reached or stopped as asked."""


# --- processes -------------------------------------------------------------------------------------------------


def _proc_state(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a live process from /proc/<pid>/stat; None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[1]), int(fields[2])


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped, counts as gone)."""
    state = _proc_state(pid)
    return state is not None and state[0] not in ("Z", "X")


def _ancestors() -> set[int]:
    """This process and its ancestors: a shell that exported AIRFLOW_HOME is not one of Airflow's processes."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        state = _proc_state(pid)
        pid = state[1] if state else 0
    return pids


def home_processes(home: Path, pgid: int | None = None) -> set[int]:
    """The live processes of this Airflow home: those whose environment (as they were exec'd) holds
    ``AIRFLOW_HOME=<home>``, those of the process group ``pgid``, and every descendant of these (Airflow's forked
    workers rename themselves, which overwrites the environment /proc shows; a task supervisor may setsid)."""
    needle = f"AIRFLOW_HOME={home}".encode()
    mine = _ancestors()
    parent, roots = {}, set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        pid = int(entry.name)
        state = _proc_state(pid)
        if state is None or state[0] in ("Z", "X"):
            continue
        parent[pid] = state[1]
        if pgid is not None and state[2] == pgid:
            roots.add(pid)
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if needle in environ.split(b"\0"):
            roots.add(pid)
    found, children = set(roots), {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _signal(pids: set[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


# --- the home: pid file, password, environment -------------------------------------------------------------------


def read_pidfile(home: Path) -> dict | None:
    """The record ``start`` wrote (pid, pgid, port, url, workspace, ...), or None when there is none."""
    path = home / PID_FILE
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ServiceError(path, f"unreadable pid file ({e}); remove it once no Airflow of this home runs") from None
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
        raise ServiceError(path, "not a pid file written by this script; remove it once no Airflow of this home runs")
    return info


def running(home: Path) -> dict | None:
    """The pid file's record when its process still runs with this home (a reused pid is not ours)."""
    info = read_pidfile(home)
    if info is not None and info["pid"] in home_processes(home):
        return info
    return None


def password(home: Path) -> str:
    """The ``admin`` password: generated once, kept in the simple auth manager's password file in ``home``."""
    path = home / PASSWORDS_FILE
    if path.is_file():
        try:
            passwords = json.loads(path.read_text() or "{}")
        except ValueError as e:
            raise ServiceError(path, f"not the simple auth manager's password file ({e})") from None
        if isinstance(passwords, dict) and isinstance(passwords.get(USER), str):
            return passwords[USER]
    else:
        passwords = {}
    passwords[USER] = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(16))
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(passwords) + "\n")
    path.chmod(0o600)
    return passwords[USER]


def free_port() -> int:
    """A TCP port nothing listens on at the moment (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    """True when a server could listen on 127.0.0.1:``port`` now (as uvicorn does, with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def airflow_env(home: Path, workspace: Path, port: int, log_ports: tuple[int, int]) -> dict[str, str]:
    """Every setting of the instance, as Airflow's environment variables (airflow.cfg keeps its defaults)."""
    url = f"http://127.0.0.1:{port}"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "POSEBANK_WORKSPACE": str(workspace),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",  # the task processes report here
        # the scheduler's and the triggerer's log servers, should one start (fixed ports by default: 8793, 8794);
        # the home's `airflow` wrapper starts both components without them (airflow_wrapper)
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_ports[0]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(log_ports[1]),
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / PASSWORDS_FILE),
        # standalone starts its components as `airflow ...` from PATH: the home's wrapper first (airflow_wrapper)
        "PATH": f"{home / 'bin'}:{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "GX_ANALYTICS_ENABLED": "false",
        "DVC_NO_ANALYTICS": "1",
    }


WRAPPER = """#!/bin/sh
# written by posebank's scripts/airflow_service.py: `airflow standalone` starts its components as `airflow <name>`
# from PATH; the scheduler and the triggerer start without their log servers, which Airflow binds to every network
# interface (no setting changes that); the API server reads the task logs from this home's logs/ folder
case "$1" in
  scheduler|triggerer) exec {airflow} "$@" --skip-serve-logs ;;
esac
exec {airflow} "$@"
"""


def airflow_wrapper(home: Path) -> Path:
    """``<home>/bin/airflow``: the ``airflow`` that standalone's components are started with (see WRAPPER)."""
    path = home / "bin" / "airflow"
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(".airflow.tmp")
    tmp.write_text(WRAPPER.replace("{airflow}", shlex.quote(str(BIN / "airflow"))))
    tmp.chmod(0o755)
    tmp.replace(path)
    return path


# --- the REST API --------------------------------------------------------------------------------------------------


def http_json(url: str, method: str = "GET", body=None, token: str | None = None, timeout: float = 10.0):
    """One JSON request; an HTTP error status raises urllib's HTTPError (its body is the API's detail)."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def get_token(url: str, pw: str) -> str:
    """A JWT for ``admin`` from the simple auth manager (POST /auth/token)."""
    return http_json(f"{url}/auth/token", "POST", {"username": USER, "password": pw})["access_token"]


def healthy(url: str) -> dict | None:
    """The health endpoint's answer when the metadata DB and the scheduler are healthy, else None."""
    try:
        health = http_json(f"{url}/api/v2/monitor/health", timeout=5)
    except (OSError, ValueError):
        return None
    ok = all((health.get(part) or {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))
    return health if ok else None


def posebank_dags(url: str, token: str) -> list[str]:
    """The dag_ids of the posebank DAGs the API lists (parsed by the dag-processor)."""
    found = http_json(f"{url}/api/v2/dags?dag_id_pattern=posebank_&limit=1000", token=token)["dags"]
    return sorted(d["dag_id"] for d in found if d["dag_id"].startswith("posebank_"))


def import_errors(url: str, token: str) -> list[dict]:
    """The DAG files of this DAG folder that failed to import."""
    errors = http_json(f"{url}/api/v2/importErrors?limit=100", token=token)["import_errors"]
    return [e for e in errors if str(e.get("filename", "")).startswith(str(DAGS)) or
            not str(e.get("filename", "")).startswith("/")]


# --- start ---------------------------------------------------------------------------------------------------------


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def expected_dags(workspace: Path) -> list[str]:
    """The dag_ids the DAG files build over ``workspace`` (posebank_dags._build, as the dag-processor runs it)."""
    sys.path.insert(0, str(DAGS))
    try:
        from posebank_dags import _build

        return sorted([*_build.dataset_dags(), *_build.merge_dags()])
    except (OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as e:
        raise UsageError(workspace / "params.yaml", f"the DAGs cannot be built from it ({_one_line(e)})") from None
    finally:
        sys.path.remove(str(DAGS))


def pool_file(workspace: Path, home: Path) -> Path:
    """``<home>/pools.json``, the pools the DAGs use with the slots of the workspace's params.yaml, in the format
    of ``airflow pools import``."""
    sys.path.insert(0, str(DAGS))
    try:
        from posebank_dags import _build

        pools = _build.pools(_build.load_params(workspace))
    except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError) as e:
        raise UsageError(workspace / "params.yaml", f"the pools cannot be read from it ({_one_line(e)})") from None
    finally:
        sys.path.remove(str(DAGS))
    path = home / "pools.json"
    write_json(path, {name: {"slots": slots, "description": description, "include_deferred": False}
                      for name, (slots, description) in pools.items()})
    return path


def airflow_cli(args: list[str], env: dict, log: Path) -> None:
    """``airflow ARGS`` to completion, its output appended to the log; a failure names the log."""
    with log.open("a") as out:
        out.write(f"$ airflow {' '.join(args)}\n")
        out.flush()
        r = subprocess.run([str(BIN / "airflow"), *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=600)
    if r.returncode != 0:
        raise ServiceError(log, f"`airflow {' '.join(args)}` failed with exit status {r.returncode}")


def wait_ready(url: str, pw: str, expected: list[str], proc: subprocess.Popen, log: Path, timeout: float) -> list[str]:
    """Wait until the API answers healthy and lists every expected DAG; returns the posebank dag_ids listed."""
    deadline = time.monotonic() + timeout
    token = None
    while True:
        if proc.poll() is not None:
            raise ServiceError(log, f"airflow standalone exited with status {proc.returncode} before it was ready")
        if healthy(url):
            try:
                token = token or get_token(url, pw)
                errors = import_errors(url, token)
                if errors:
                    first = errors[0]
                    lines = str(first.get("stack_trace", "")).strip().splitlines() or ["?"]
                    raise UsageError(first.get("filename"), f"the DAG file does not import: {lines[-1]}")
                listed = posebank_dags(url, token)
                if set(expected) <= set(listed):
                    return listed
            except (OSError, ValueError, KeyError):  # the API still starting (connection reset, 5xx, ...)
                pass
        if time.monotonic() > deadline:
            raise ServiceError(log, f"Airflow did not come up within {timeout:.0f} s (healthy scheduler and "
                                    f"{len(expected)} posebank DAGs listed); its log says why")
        time.sleep(1.0)


def start(home: Path, workspace: Path, port: int, timeout: float) -> int:
    """``airflow standalone`` from ``home`` over ``workspace`` on 127.0.0.1:``port``; returns when it is ready."""
    t0 = time.monotonic()
    if info := running(home):
        raise ServiceError(home / PID_FILE, f"Airflow of this home already runs (pid {info['pid']}, "
                                            f"{info.get('url')}); `make airflow-stop` stops it")
    if others := home_processes(home):
        raise ServiceError(home, f"{len(others)} processes of this Airflow home still run (pid "
                                 f"{min(others)}, ...); `make airflow-stop` stops them")
    if not port_free(port):
        raise ServiceError(f"port {port}", "already in use on 127.0.0.1; choose another with --port or AIRFLOW_PORT")
    if not (workspace / "params.yaml").is_file():
        raise UsageError(workspace, "not a posebank workspace (no params.yaml)")
    if not (BIN / "airflow").is_file():
        raise ServiceError(BIN / "airflow", "not installed in this environment (see requirements.lock)")
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(home, f"cannot create the Airflow home ({e.strerror or e})") from None
    (home / PID_FILE).unlink(missing_ok=True)  # a stale record: its process no longer runs
    log = home / LOG_FILE
    if log.exists():
        log.replace(home / f"{LOG_FILE}.1")
    pw = password(home)
    url = f"http://127.0.0.1:{port}"
    airflow_wrapper(home)
    env = {**os.environ, **airflow_env(home, workspace, port, (free_port(), free_port()))}
    os.environ.update(env)  # posebank_dags._build reads POSEBANK_WORKSPACE; airflow.sdk reads AIRFLOW_HOME
    pools = pool_file(workspace, home)  # params.yaml's errors before anything runs
    expected = expected_dags(workspace)
    print(f"==> Airflow home {home}: migrating the metadata DB, creating the pools", flush=True)
    airflow_cli(["db", "migrate"], env, log)
    airflow_cli(["pools", "import", str(pools)], env, log)
    print(f"==> starting airflow standalone on {url} (log {log})", flush=True)
    with log.open("a") as out:
        out.write("$ airflow standalone\n")
        out.flush()
        proc = subprocess.Popen([str(BIN / "airflow"), "standalone"], cwd=workspace, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    write_json(home / PID_FILE, {"pid": proc.pid, "pgid": os.getpgid(proc.pid), "port": port, "url": url,
                                 "home": str(home), "workspace": str(workspace), "log": str(log),
                                 "log_server_ports": [int(env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]),
                                                      int(env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"])],
                                 "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")})
    try:
        listed = wait_ready(url, pw, expected, proc, log, timeout)
    except BaseException:
        stop(home, quiet=True)  # nothing half-started is left behind
        raise
    print(f"\nAirflow is ready after {time.monotonic() - t0:.0f} s\n"
          f"  URL        {url}\n"
          f"  user       {USER}\n"
          f"  password   {pw}\n"
          f"  home       {home} (log {LOG_FILE}, pid file {PID_FILE})\n"
          f"  workspace  {workspace}\n"
          f"  DAGs       {len(listed)} posebank DAGs parsed (new DAGs start paused: unpause them in the UI)\n"
          f"make airflow-stop to stop", flush=True)
    return 0


# --- stop, status --------------------------------------------------------------------------------------------------


def stop(home: Path, grace: float = STOP_GRACE_S, quiet: bool = False) -> int:
    """SIGTERM to the process group and to every process of this home, SIGKILL to what is left after ``grace``
    seconds; removes the pid file. Returns the number of processes stopped."""
    info = read_pidfile(home)
    group = None
    if info is not None and info["pid"] in home_processes(home):  # the group is ours (its leader has our home)
        group = int(info.get("pgid", info["pid"]))

    def ours() -> set[int]:
        return home_processes(home, group)

    seen = ours()
    if group is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGTERM)
    _signal(seen, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while (left := ours()) and time.monotonic() < deadline:
        _signal(left - seen, signal.SIGTERM)  # started while shutting down (a task's supervisor, ...)
        seen |= left
        time.sleep(0.2)
    killed = set()
    for _ in range(3):  # what ignored SIGTERM; repeated for what forks meanwhile
        if not (left := ours()):
            break
        seen |= left
        killed |= left
        if group is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        _signal(left, signal.SIGKILL)
        time.sleep(0.5)
    if left := ours():
        raise ServiceError(home, f"{len(left)} processes of this Airflow home did not stop (pid {min(left)}, ...)")
    (home / PID_FILE).unlink(missing_ok=True)
    if not quiet:
        if seen:
            print(f"stopped Airflow of {home}: {len(seen)} processes"
                  + (f" ({len(killed)} killed after {grace:.0f} s)" if killed else ""))
        else:
            print(f"no Airflow of {home} is running")
    return len(seen)


def status(home: Path) -> int:
    """Prints whether Airflow of ``home`` runs (exit status 0) or not (3)."""
    info = running(home)
    if info is None:
        others = home_processes(home)
        print(f"Airflow of {home}: not running" + (f" ({len(others)} stray processes: make airflow-stop)"
                                                     if others else ""))
        return 3
    health = healthy(info["url"])
    state = "healthy" if health else "not healthy yet (starting, or see the log)"
    n = len(home_processes(home, info.get("pgid")))
    print(f"Airflow of {home}: running, pid {info['pid']}, {info['url']} ({state}), {n} processes, "
          f"workspace {info.get('workspace')}, log {info.get('log')}")
    return 0


# --- screenshot ----------------------------------------------------------------------------------------------------


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket (commands in order, events skipped)."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0

    def call(self, method: str, timeout: float = 30.0, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise ServiceError(f"chromium {method}", str(msg["error"].get("message", msg["error"])))
                return msg.get("result", {})

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return r.get("result", {}).get("value")


def find_chromium(path: str | None) -> str:
    """The Chromium binary, or a clear error saying how to install it."""
    candidates = [path] if path else [CHROMIUM, shutil.which("chromium"), shutil.which("chromium-browser")]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    raise ServiceError(path or CHROMIUM, "Chromium is not installed; on Debian or Ubuntu: "
                                         "`sudo apt-get install -y chromium` (or give its path with --chromium)")


def _devtools_page(user_data: Path, browser: subprocess.Popen, timeout: float = 30.0) -> str:
    """The websocket URL of the browser's first page (the port Chromium chose is in DevToolsActivePort)."""
    deadline = time.monotonic() + timeout
    active = user_data / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if browser.poll() is not None:
            raise ServiceError("chromium", f"exited with status {browser.returncode} at start-up")
        if active.is_file() and (lines := active.read_text().split()):
            try:
                targets = http_json(f"http://127.0.0.1:{lines[0]}/json/list", timeout=5)
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            except (OSError, ValueError):
                pass
        time.sleep(0.2)
    raise ServiceError("chromium", f"its DevTools endpoint did not come up within {timeout:.0f} s")


def api_session(home: Path) -> tuple[str, str]:
    """The running instance's URL and an API token; ServiceError when none of this home runs."""
    info = running(home)
    if info is None:
        raise ServiceError(home, "no Airflow of this home is running; `make airflow` starts it")
    with api_errors(info["url"]):
        return info["url"], get_token(info["url"], password(home))


@contextlib.contextmanager
def api_errors(url: str, dag_id: str | None = None):
    """The REST API's failures as one-line errors: an unknown DAG (404), another status, no answer."""
    try:
        yield
    except urllib.error.HTTPError as e:
        if e.code == 404 and dag_id is not None:
            raise UsageError(dag_id, "no such DAG in this Airflow (`make airflow` lists them)") from None
        raise ServiceError(url, f"the REST API answered {e.code} {e.reason}") from None
    except OSError as e:
        raise ServiceError(url, f"the REST API does not answer ({e})") from None


def trigger(home: Path, dag_id: str, timeout: float) -> int:
    """Unpause ``dag_id``, start a run through the REST API and wait for it: one line per task (its state, how many
    mapped instances, seconds); exit status 0 when the run succeeds, 1 when it fails (naming the failed tasks'
    log folder)."""
    url, token = api_session(home)
    with api_errors(url, dag_id):
        http_json(f"{url}/api/v2/dags/{dag_id}", "PATCH", {"is_paused": False}, token)
        run_id = http_json(f"{url}/api/v2/dags/{dag_id}/dagRuns", "POST", {"logical_date": None}, token)["dag_run_id"]
        print(f"{dag_id}: triggered run {run_id}", flush=True)
        t = time.monotonic()
        while (state := http_json(f"{url}/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}",
                                  token=token)["state"]) not in ("success", "failed"):
            if time.monotonic() - t > timeout:
                raise ServiceError(dag_id, f"run {run_id} still {state} after {timeout:.0f} s (it goes on; see the UI)")
            time.sleep(2)
        tis = http_json(f"{url}/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances?limit=1000",
                        token=token)["task_instances"]
    by_task: dict[str, list[dict]] = {}
    for ti in tis:
        by_task.setdefault(ti["task_id"], []).append(ti)

    def started(task_id: str) -> str:  # the run's order (the API lists the tasks by name)
        return min(str(ti.get("start_date") or "~") for ti in by_task[task_id])

    for task_id in sorted(by_task, key=started):
        group = by_task[task_id]
        states = sorted({str(ti["state"]) for ti in group})
        seconds = sum(float(ti.get("duration") or 0) for ti in group)
        mapped = f" x{len(group)}" if len(group) > 1 or group[0]["map_index"] >= 0 else ""
        print(f"  {task_id + mapped:<22} {'/'.join(states):<9} {seconds:6.1f} s")
    elapsed = time.monotonic() - t
    if state != "success":
        failed = sorted({ti["task_id"] for ti in tis if ti["state"] not in ("success", "skipped")})
        print(f"{dag_id}: run {run_id} failed after {elapsed:.0f} s; failed tasks: {', '.join(failed)}; logs in "
              f"{home / 'logs' / f'dag_id={dag_id}' / f'run_id={run_id}'}", file=sys.stderr)
        return 1
    print(f"{dag_id}: run {run_id} succeeded in {elapsed:.0f} s")
    return 0


def screenshot(home: Path, dag_id: str, out: Path, chromium: str | None, width: int, height: int,
               timeout: float) -> int:
    """A PNG of ``dag_id``'s page (the grid of its runs and task instances) in the running instance's UI."""
    binary = find_chromium(chromium)
    url, token = api_session(home)
    with api_errors(url, dag_id):
        tasks = [t["task_id"] for t in http_json(f"{url}/api/v2/dags/{dag_id}/tasks", token=token)["tasks"]]
        runs = http_json(f"{url}/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit=1", token=token)
    last = runs["dag_runs"][0] if runs["dag_runs"] else None
    page_url = f"{url}/dags/{urllib.parse.quote(dag_id)}"
    with tempfile.TemporaryDirectory(prefix="posebank-chromium-") as tmp:
        user_data = Path(tmp)
        browser = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={user_data}",
                                    f"--window-size={width},{height}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        try:
            from websockets.sync.client import connect

            with connect(_devtools_page(user_data, browser), max_size=None, open_timeout=10) as ws:
                png = _render(DevTools(ws), url, page_url, token, tasks, last and last["dag_run_id"], width, height,
                              timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(browser.pid, signal.SIGTERM)
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(browser.pid, signal.SIGKILL)
                browser.wait()
    with atomic_path(out) as tmp_png:
        tmp_png.write_bytes(png)
    state = f"last run {last['dag_run_id']}: {last['state']}" if last else "no runs yet"
    print(f"wrote {out} ({width}x{height}): the grid of {dag_id} ({len(tasks)} tasks, {state}) from {page_url}")
    return 0


HREFS = "JSON.stringify(Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')))"


def _render(cdp: DevTools, url: str, page_url: str, token: str, tasks: list[str], run_id: str | None, width: int,
            height: int, timeout: float) -> bytes:
    """Log in with the UI's token cookie, open ``page_url``, wait until the grid names every task and (when the DAG
    has run) shows the last run's square of each task (a link to its task instance), capture the page."""
    cdp.call("Network.enable")
    cdp.call("Network.setCookie", name="_token", value=token, url=url, path="/", httpOnly=True, sameSite="Lax")
    cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
    cdp.call("Page.enable")
    cdp.call("Page.navigate", url=page_url)
    deadline = time.monotonic() + timeout
    while True:
        if "/login" in str(cdp.evaluate("location.href")):
            raise ServiceError(page_url, "the UI asked for a login: the token was refused")
        text = str(cdp.evaluate("document.body ? document.body.innerText : ''"))
        hrefs = {urllib.parse.unquote(h).rstrip("/") for h in json.loads(cdp.evaluate(HREFS) or "[]")}
        missing = [t for t in tasks if t not in text]
        if run_id is not None:
            missing += [f"{t} of {run_id}" for t in tasks  # a task instance's link (mapped ones: .../mapped)
                        if not any(f"{h}/".endswith(f"/runs/{run_id}/tasks/{t}/") or
                                   f"/runs/{run_id}/tasks/{t}/" in h for h in hrefs)]
        if tasks and not missing:
            break
        if time.monotonic() > deadline:
            raise ServiceError(page_url, f"the grid did not show {', '.join(missing[:4])} within {timeout:.0f} s")
        time.sleep(0.5)
    time.sleep(0.5)  # one more frame for the last squares to paint
    shot = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
    return base64.b64decode(shot["data"])


# --- command line --------------------------------------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise UsageError("--port", f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise UsageError("--port", f"{port} is not between 1 and 65535")
    return port


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/airflow_service.py",
                                     description="a local Airflow (airflow standalone) for posebank's DAGs")
    parser.add_argument("command", choices=("start", "stop", "status", "trigger", "screenshot"))
    parser.add_argument("--home", default=str(DEFAULT_HOME), help=f"AIRFLOW_HOME (default {DEFAULT_HOME})")
    parser.add_argument("--workspace", default=str(ROOT), help=f"the DVC workspace the DAGs run in (default {ROOT})")
    parser.add_argument("--port", default=None,
                        help=f"the API server's port on 127.0.0.1 (default $AIRFLOW_PORT or {DEFAULT_PORT})")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds start waits for Airflow to be ready (300), trigger for the run (3600)")
    parser.add_argument("--grace", type=float, default=STOP_GRACE_S,
                        help=f"stop: seconds between SIGTERM and SIGKILL (default {STOP_GRACE_S:.0f})")
    parser.add_argument("--dag", default="posebank_h36m",
                        help="trigger: the DAG to run (and wait for); screenshot: the DAG whose grid is shown")
    parser.add_argument("--out", default=str(DEFAULT_SCREENSHOT), help=f"screenshot: the PNG (default "
                                                                       f"{DEFAULT_SCREENSHOT.relative_to(ROOT)})")
    parser.add_argument("--chromium", default=None, help=f"screenshot: the Chromium binary (default {CHROMIUM})")
    parser.add_argument("--size", default="1600x1000", help="screenshot: WIDTHxHEIGHT in pixels")
    args = parser.parse_args(argv)
    home = Path(args.home).resolve()  # one spelling: processes are found by AIRFLOW_HOME=<home>

    def go() -> int:
        if args.command == "start":
            port = _port(args.port or os.environ.get("AIRFLOW_PORT") or str(DEFAULT_PORT))
            return start(home, Path(args.workspace).resolve(), port, args.timeout or 300.0)
        if args.command == "stop":
            stop(home, args.grace)
            return 0
        if args.command == "status":
            return status(home)
        if args.command == "trigger":
            return trigger(home, args.dag, args.timeout or 3600.0)
        try:
            width, height = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise UsageError("--size", f"not WIDTHxHEIGHT: {args.size!r}") from None
        out = Path(args.out).absolute()
        return screenshot(home, args.dag, out, args.chromium, width, height, args.timeout or 300.0)

    return run_guarded(go)


if __name__ == "__main__":
    sys.exit(main())
