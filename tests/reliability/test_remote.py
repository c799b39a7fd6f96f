"""Remote faults against a real S3 protocol server on 127.0.0.1 (moto's, in this process): the server dying in the
middle of a push, an object corrupted in the remote, a remote that answers slowly.

The workspace is a small DVC workspace of its own (two cache folders of generated shards, written by two stages of
its dvc.yaml, with the repository's params.yaml so that ``posebank pull`` knows the names), pushed with ``dvc push``
as docs/operations.md tells users (posebank has no push verb) and pulled with ``posebank pull``. Every test pushes
under its own prefix of one bucket, so that each push starts from an empty remote.

The server keeps its objects in moto's in-process backends, not in the server: stopping it (the listening socket
closed and every open connection reset, as when the process dies) and starting a new one on the same port gives a
restarted server over the same storage.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from reliability.conftest import SOAK, seeds
from reliability.latency_proxy import LatencyProxy

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # dvc and posebank of the test environment
GIT_ID = ["-c", "user.name=t", "-c", "user.email=t@t"]
BUCKET = "posebank-reliability"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "posebank-test", "AWS_SECRET_ACCESS_KEY": "posebank-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}
# the generated caches: dataset -> shard files (+ index.json; each file, and the folder's listing, is one object
# in the remote)
CACHES = {"h36m": 8, "surreal": 4}
MAKE_CACHE = """\
import random, sys
from pathlib import Path
name, n = sys.argv[1], int(sys.argv[2])
out = Path("data/cache") / name
out.mkdir(parents=True, exist_ok=True)
r = random.Random(name)
for i in range(n):
    (out / f"shard-{i:05d}.h5").write_bytes(r.randbytes(16384 + 977 * i))
(out / "index.json").write_text('{"shards": %d}' % n)
"""

pytestmark = pytest.mark.slow


class MotoS3:
    """moto's S3 server on 127.0.0.1 that can be stopped the hard way and started again on the same port.

    It counts the object uploads it stored (``puts``) and, armed with ``die_after(n)``, stops itself once ``n`` of
    them have arrived, while the client is still uploading (and, with ``back_after``, starts again that many seconds
    later)."""

    def __init__(self):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self._app = DomainDispatcherApplication(create_backend_app)
        self.port = 0
        self.puts: list[str] = []
        self._lock = threading.Lock()
        self._die_after: int | None = None
        self._back_after: float | None = None
        self._server = None
        self.deaths = 0  # stops of the armed trigger since die_after()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def _wsgi(self, environ, start_response):
        body = self._app(environ, start_response)
        # an object upload (PUT /bucket/key) the backend has stored: count it, and die once armed and reached
        if environ["REQUEST_METHOD"] == "PUT" and environ["PATH_INFO"].strip("/").count("/") >= 1:
            with self._lock:
                self.puts.append(environ["PATH_INFO"])
                if self._die_after is not None and len(self.puts) >= self._die_after:
                    self._die_after = None
                    threading.Thread(target=self._die, args=(self._back_after,), daemon=True).start()
        return body

    def start(self) -> MotoS3:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import ThreadedWSGIServer

        class Server(ThreadedWSGIServer):
            """Werkzeug's threaded server, remembering its connections so that stop() can reset them."""

            def __init__(self, *args, **kwargs):
                self.connections: set[socket.socket] = set()
                super().__init__(*args, **kwargs)

            def get_request(self):
                conn, addr = super().get_request()
                self.connections.add(conn)
                return conn, addr

        self._server = Server("127.0.0.1", self.port, self._wsgi, handler=MotoRequestHandler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="moto-s3", daemon=True).start()
        return self

    def die_after(self, n: int | None, back_after: float | None = None) -> None:
        """Stop once ``n`` more objects have been stored (None: disarm); restart ``back_after`` s later if given."""
        with self._lock:
            self.puts.clear()
            self.deaths = 0
            self._die_after, self._back_after = n, back_after

    def _die(self, back_after: float | None) -> None:
        self.stop()
        self.deaths += 1
        if back_after is not None:
            time.sleep(back_after)
            self.start()

    def stop(self) -> None:
        """Stop as a killed server does: no more connections, and the open ones (keep-alive) reset."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for conn in list(server.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")

    def objects(self, prefix: str) -> dict[str, bytes]:
        """Every object under ``prefix``, by key, read straight from the server."""
        s3 = self.client()
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        return {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


@pytest.fixture(scope="module")
def moto_module():
    server = MotoS3().start()
    if BUCKET not in {b["Name"] for b in server.client().list_buckets()["Buckets"]}:
        server.client().create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


@pytest.fixture
def moto_s3(moto_module):
    """The module's server, running and disarmed for each test (whatever the previous one left)."""
    if not moto_module.running:
        moto_module.start()
    moto_module.die_after(None)
    yield moto_module
    moto_module.die_after(None)


def run(*cmd, cwd, env: dict | None = None) -> subprocess.CompletedProcess:
    """A command of the test environment (dvc, posebank, git) with the credentials of the test server."""
    full = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **CREDENTIALS, **(env or {})}
    return subprocess.run(cmd, cwd=cwd, env=full, capture_output=True, text=True)


def ok(*cmd, cwd, env: dict | None = None) -> str:
    r = run(*cmd, cwd=cwd, env=env)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The built workspace every test copies: dvc.lock committed, the caches in the workspace and its DVC cache,
    the remote ``lab`` (S3) the default one; each copy points it at its prefix and endpoint."""
    ws = tmp_path_factory.mktemp("remote") / "workspace"
    ws.mkdir()
    shutil.copy2(REPO / "params.yaml", ws / "params.yaml")
    (ws / "make_cache.py").write_text(MAKE_CACHE)
    stages = {f"cache_{name}": {"cmd": f"python make_cache.py {name} {n}", "deps": ["make_cache.py"],
                                "outs": [f"data/cache/{name}"]} for name, n in CACHES.items()}
    (ws / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    ok("git", "init", "-q", cwd=ws)
    ok("dvc", "init", "-q", cwd=ws)
    (ws / ".dvc" / "config").write_text(f"[core]\n    remote = lab\n    analytics = false\n"
                                        f"['remote \"lab\"']\n    url = s3://{BUCKET}/unset\n")
    ok("dvc", "repro", cwd=ws)
    ok("git", *GIT_ID, "add", "-A", cwd=ws)
    ok("git", *GIT_ID, "commit", "-qm", "built", cwd=ws)
    return ws


def point_remote(ws: Path, prefix: str, endpoint: str, **options) -> None:
    """The workspace's remote ``lab`` at ``s3://<bucket>/<prefix>`` behind ``endpoint`` (in .dvc/config.local, as
    a user's own settings are)."""
    lines = [f"url = s3://{BUCKET}/{prefix}", f"endpointurl = {endpoint}", *(f"{k} = {v}" for k, v in options.items())]
    (ws / ".dvc" / "config.local").write_text("['remote \"lab\"']\n" + "".join(f"    {x}\n" for x in lines))


def copy_workspace(template: Path, dst: Path, prefix: str, endpoint: str, **options) -> Path:
    shutil.copytree(template, dst, symlinks=True)
    point_remote(dst, prefix, endpoint, **options)
    return dst


def clone(ws: Path, dst: Path, prefix: str, endpoint: str, **options) -> Path:
    """A fresh clone of the workspace's git repository: dvc.lock and the config, no data, no DVC cache."""
    ok("git", "clone", "-q", str(ws), str(dst), cwd=dst.parent)
    point_remote(dst, prefix, endpoint, **options)
    return dst


def expected_objects(ws: Path, prefix: str) -> dict[str, str]:
    """Every object a push of the workspace puts in the remote, key -> md5 (DVC's name of it): each file of each
    cache and each folder's listing (``<md5>.dir``)."""
    lock = yaml.safe_load((ws / "dvc.lock").read_text())
    out = {}
    for stage in lock["stages"].values():
        for o in stage["outs"]:
            md5 = o["md5"]
            out[f"{prefix}/files/md5/{md5[:2]}/{md5[2:]}"] = md5
            listing = ws / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
            for entry in json.loads(listing.read_text()):
                out[f"{prefix}/files/md5/{entry['md5'][:2]}/{entry['md5'][2:]}"] = entry["md5"]
    return out


def name_of(key: str) -> str:
    """The md5 an object's key names (``.../md5/ab/cdef...[.dir]`` -> ``abcdef...``)."""
    *_, head, tail = key.split("/")
    return head + tail.removesuffix(".dir")


def assert_remote_holds(moto_s3: MotoS3, ws: Path, prefix: str) -> int:
    """The remote holds every object of the workspace, each with the bytes its md5 names; returns the bytes
    compared."""
    expected = expected_objects(ws, prefix)
    held = moto_s3.objects(prefix)
    assert set(held) == set(expected), sorted(set(expected) ^ set(held))
    for key, data in held.items():
        assert hashlib.md5(data).hexdigest() == name_of(key), key
    return sum(len(d) for d in held.values())


def pushed(out: str) -> int:
    """The number of objects ``dvc push`` (``1 file pushed``, ``9 files pushed``) or ``posebank push`` (``9 objects
    uploaded``) says it uploaded."""
    found = re.search(r"(\d+) files? pushed", out) or re.search(r"(\d+) objects uploaded", out)
    assert found, out
    return int(found[1])


def cache_files(ws: Path, name: str) -> dict[str, bytes]:
    folder = ws / "data" / "cache" / name
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.is_dir() else {}


@pytest.mark.parametrize("seed", seeds(ci=1, soak=5))
def test_a_push_cut_off_by_the_server_dying_fails_clearly_and_a_rerun_uploads_only_the_rest(
        moto_s3, template, tmp_path, seed, record):
    prefix = f"push-cut-{seed}"
    ws = copy_workspace(template, tmp_path / "ws", prefix, moto_s3.url)
    total = len(expected_objects(ws, prefix))
    die_after = random.Random(seed).randint(1, total - 2)  # after the first objects, before the last
    port = moto_s3.port
    moto_s3.die_after(die_after)
    # botocore retries a refused connection (5 attempts by default, ~20 s here); two are enough to show it gives up
    r = run("dvc", "push", "-j", "2", cwd=ws, env=None if SOAK else {"AWS_MAX_ATTEMPTS": "2"})
    out = r.stdout + r.stderr
    assert moto_s3.deaths == 1 and not moto_s3.running, "the server did not die during the push"
    # DVC's own message: which objects failed and the endpoint it could not reach; its summary line depends on
    # whether the server died while files were uploading or just before a folder's listing was
    assert r.returncode != 0, out
    assert "failed to push data to the cloud" in out or "ERROR: unexpected error" in out, out
    assert f'Could not connect to the endpoint URL: "{moto_s3.url}/{BUCKET}/{prefix}/files/md5/' in out, out
    assert "Traceback" not in out, out

    # what arrived arrived whole (an S3 PUT is atomic): no object with bytes other than its name
    moto_s3.start()
    assert moto_s3.port == port
    landed = moto_s3.objects(prefix)
    assert die_after <= len(landed) < total, (die_after, len(landed), total)
    assert all(hashlib.md5(data).hexdigest() == name_of(key) for key, data in landed.items())
    # and no folder looks complete that is not: a listing is in the remote only with every file it lists
    for listing in (k for k in landed if k.endswith(".dir")):
        files = json.loads(landed[listing])
        assert all(f"{prefix}/files/md5/{e['md5'][:2]}/{e['md5'][2:]}" in landed for e in files), listing

    # the server back on the same port over the same storage: the rerun (posebank push: DVC's push, then every
    # object checked in the remote itself) uploads exactly what is missing
    moto_s3.die_after(None)
    out = ok("posebank", "push", cwd=ws)
    assert pushed(out) == total - len(landed), out
    assert f"{total} objects verified in the remote" in out, out
    assert len(moto_s3.puts) == total - len(landed), moto_s3.puts
    compared = assert_remote_holds(moto_s3, ws, prefix)
    record("remote_fault", fault="server stopped mid-push", faults=1, recovered=1, objects=total,
           objects_landed_before=len(landed), bytes_compared=compared)


def test_a_push_rides_out_a_short_outage_within_its_retries(moto_s3, template, tmp_path, record):
    """The server dies after the first objects and is back 0.5 s later: botocore's retries (the default 5 attempts)
    carry the push through without a rerun."""
    prefix = "push-outage"
    ws = copy_workspace(template, tmp_path / "ws", prefix, moto_s3.url)
    total = len(expected_objects(ws, prefix))
    moto_s3.die_after(2, back_after=0.5)
    out = ok("dvc", "push", "-j", "2", cwd=ws, env={"AWS_MAX_ATTEMPTS": "5"})
    assert moto_s3.deaths == 1 and moto_s3.running, "the server did not die and come back during the push"
    assert pushed(out) == total, out
    compared = assert_remote_holds(moto_s3, ws, prefix)
    record("remote_fault", fault="server restarted during a push", faults=1, recovered=1, objects=total,
           bytes_compared=compared)


def test_a_corrupted_remote_object_is_refused_on_pull(moto_s3, template, tmp_path, record):
    """One shard's object overwritten through boto3: ``posebank pull`` (which turns the remote's ``verify`` on)
    fails with one error line naming the file and its md5, checks out none of the wrong bytes, and pulls the right
    ones once the object is repaired. (A clean verified pull of a fresh clone is the slow-remote test's.)"""
    prefix = "corrupt"
    ws = copy_workspace(template, tmp_path / "ws", prefix, moto_s3.url)
    ok("dvc", "push", cwd=ws)
    want = cache_files(ws, "h36m")

    # one shard's object overwritten in the remote with bytes of the same size
    lock = yaml.safe_load((ws / "dvc.lock").read_text())
    listing = lock["stages"]["cache_h36m"]["outs"][0]["md5"]
    entries = json.loads((ws / ".dvc/cache/files/md5" / listing[:2] / listing[2:]).read_text())
    victim = random.Random(0).choice([e for e in entries if e["relpath"].startswith("shard-")])
    key = f"{prefix}/files/md5/{victim['md5'][:2]}/{victim['md5'][2:]}"
    s3 = moto_s3.client()
    original = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(b ^ 0x5A for b in original))

    fresh = clone(ws, tmp_path / "fresh", prefix, moto_s3.url)
    r = run("posebank", "pull", "h36m", cwd=fresh)
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: dvc pull data/cache/h36m: "), out
    assert f"data/cache/h36m/{victim['relpath']} (md5 {victim['md5']}): corrupted in the remote" in errors[0], out
    assert errors[0].endswith("remote lab)"), errors[0]
    # refused, not checked out: no file of the cache has other bytes than the built one
    got = cache_files(fresh, "h36m")
    assert all(got[n] == want[n] for n in got), "wrong bytes checked out"
    assert victim["relpath"] not in got

    # the object repaired, the same clone pulls the right bytes (the refused object was not kept in its cache)
    s3.put_object(Bucket=BUCKET, Key=key, Body=original)
    out = ok("posebank", "pull", "h36m", cwd=fresh)
    assert cache_files(fresh, "h36m") == want
    record("remote_fault", fault="object corrupted in the remote", faults=1, recovered=1,
           bytes_compared=2 * sum(len(b) for b in want.values()))


def test_a_slow_remote_still_completes_a_push_and_a_pull(moto_s3, template, tmp_path, record):
    """Every request 0.2 s late (0.5 s under soak), and during the push one request held past the remote's read
    timeout: the push and a fresh clone's ``posebank pull`` complete within the remote's timeouts and botocore's
    retries, with the right bytes."""
    delay = float(0.5 if SOAK else 0.2)
    timeouts = {"connect_timeout": 2, "read_timeout": 2}  # DVC's S3 options; botocore's default is 60 s
    prefix = "slow"
    with LatencyProxy(("127.0.0.1", moto_s3.port), request_delay=delay, stall=timeouts["read_timeout"] + 1.5,
                      stall_requests={3}) as proxy:
        start = time.monotonic()
        ws = copy_workspace(template, tmp_path / "ws", prefix, proxy.url, **timeouts)
        out = ok("dvc", "push", cwd=ws)
        push_seconds = time.monotonic() - start
    total = len(expected_objects(ws, prefix))
    assert pushed(out) == total, out
    compared = assert_remote_holds(moto_s3, ws, prefix)  # read straight from the server, not through the proxy
    # the proxy really was slow: every request waited, and one was held until the client gave up on it (its read
    # timeout) and retried
    assert proxy.requests >= total and proxy.delayed == proxy.requests, (proxy.requests, proxy.delayed)
    assert proxy.stalled == proxy.abandoned == 1 and push_seconds >= timeouts["read_timeout"], push_seconds
    push_requests = proxy.requests

    with LatencyProxy(("127.0.0.1", moto_s3.port), request_delay=delay) as proxy:
        pulled = clone(ws, tmp_path / "clone", prefix, proxy.url, **timeouts)
        out = ok("posebank", "pull", "h36m", cwd=pulled)
    assert "pulled cache h36m" in out and f"{CACHES['h36m'] + 2} objects downloaded" in out, out
    assert cache_files(pulled, "h36m") == cache_files(ws, "h36m")
    compared += sum(len(b) for b in cache_files(ws, "h36m").values())
    assert proxy.requests >= CACHES["h36m"] + 2 and proxy.delayed == proxy.requests
    record("remote_fault", fault="slow remote", faults=1, recovered=1, delayed_requests=push_requests + proxy.requests,
           delay_s=delay, bytes_compared=compared)
