"""A real HTTP server on 127.0.0.1 for the download tests: byte ranges (206 / 416), and on request a dropped
connection after N bytes, an ignored Range header, 5xx answers and basic authentication; it records every request."""

from __future__ import annotations

import base64
import dataclasses
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"^bytes=(\d+)-$")


@dataclasses.dataclass
class Served:
    """One file and how the server misbehaves with it."""

    data: bytes
    drop_after: int | None = None  # the first `drops` answers close the connection after this many body bytes
    drops: int = 1
    ignore_range: bool = False  # answer 200 with the whole file to a Range request
    fail_first: int = 0  # answer 503 to this many first requests
    auth: tuple[str, str] | None = None  # basic auth (user, password) required
    requests: int = 0


@dataclasses.dataclass(frozen=True)
class Seen:
    path: str
    range: str | None
    authorization: str | None
    status: int


class LocalServer:
    """``with LocalServer() as s: s.serve("/a.zip", Served(data)); url = s.url("/a.zip")``."""

    def __init__(self):
        self.files: dict[str, Served] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def serve(self, path: str, served: Served) -> str:
        self.files[path] = served
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def ranges(self, path: str) -> list[str | None]:
        return [s.range for s in self.seen if s.path == path]

    def _record(self, h, status: int) -> None:
        with self._lock:
            self.seen.append(Seen(h.path, h.headers.get("Range"), h.headers.get("Authorization"), status))

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        served = self.files.get(h.path)
        if served is None:
            self._record(h, 404)
            h.send_error(404)
            return
        with self._lock:
            served.requests += 1
            n = served.requests
        if n <= served.fail_first:
            self._record(h, 503)
            h.send_error(503)
            return
        if served.auth is not None:
            token = base64.b64encode(f"{served.auth[0]}:{served.auth[1]}".encode()).decode()
            if h.headers.get("Authorization") != f"Basic {token}":
                self._record(h, 401)
                h.send_response(401)
                h.send_header("WWW-Authenticate", 'Basic realm="test"')
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
        data, start = served.data, 0
        m = _RANGE.match(h.headers.get("Range") or "")
        if m and not served.ignore_range:
            start = int(m.group(1))
            if start >= len(data):
                self._record(h, 416)
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            self._record(h, 206)
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self._record(h, 200)
            h.send_response(200)
        body = data[start:]
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Content-Type", "application/octet-stream")
        h.end_headers()
        drop = served.drop_after is not None and n - served.fail_first <= served.drops
        h.wfile.write(body[:served.drop_after] if drop else body)
        h.wfile.flush()
        if drop:
            h.close_connection = True
