"""A slow link in front of a TCP server: a threaded proxy on 127.0.0.1 that forwards every connection to an upstream
server (the moto S3 server of the remote-fault tests) and sleeps on the way.

Delays, each configurable and zero by default:

* ``connect_delay``: once per connection, before it is forwarded (a slow handshake);
* ``request_delay``: before each request, i.e. the first bytes the client sends on a connection and the first bytes
  it sends after the server has answered (HTTP/1.1 keep-alive sends requests one after the other);
* ``chunk_delay``: before every chunk the client sends (a slow upload);
* ``stall``: requests whose number (counted from 1 over all connections) is in ``stall_requests`` are held
  ``stall`` seconds instead of ``request_delay``, longer than a client's read timeout, so that the client gives up
  on them and retries; a held request whose client hung up meanwhile is dropped, as a lost request is.

The counters (``connections``, ``requests``, ``delayed``, ``stalled``, ``abandoned``: stalled requests the client
gave up on, ``delay_seconds``, ``bytes_up``, ``bytes_down``) show what the proxy did, so that a test can assert
the remote really was slow.
"""

from __future__ import annotations

import select
import socket
import threading
import time


class LatencyProxy:
    """``with LatencyProxy(("127.0.0.1", port), request_delay=0.2) as proxy:`` then point the client at
    ``proxy.url``."""

    def __init__(self, upstream: tuple[str, int], *, request_delay: float = 0.0, chunk_delay: float = 0.0,
                 connect_delay: float = 0.0, stall: float = 0.0, stall_requests=(), port: int = 0):
        self.upstream = upstream
        self.request_delay, self.chunk_delay, self.connect_delay = request_delay, chunk_delay, connect_delay
        self.stall, self.stall_requests = stall, set(stall_requests)
        self.connections = self.requests = self.delayed = self.stalled = self.abandoned = 0
        self.bytes_up = self.bytes_down = 0
        self.delay_seconds = 0.0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="latency-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LatencyProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every forwarded connection."""
        self._stopping.set()
        _close(self._listener)  # shutdown() wakes the accept() of the other thread, close() alone does not
        with self._lock:
            for s in list(self._open):
                _close(s)
            self._open.clear()
        self._thread.join(timeout=5)

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _sleep(self, seconds: float, stalled: bool = False) -> None:
        if seconds <= 0:
            return
        with self._lock:
            self.delayed += 1
            self.stalled += stalled
            self.delay_seconds += seconds
        time.sleep(seconds)

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._open.add(s)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _addr = self._listener.accept()
            except OSError:  # the listener was closed: stop
                return
            self._track(client)
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._sleep(self.connect_delay)
        try:
            server = socket.create_connection(self.upstream, timeout=10)
        except OSError:  # the upstream is down: the client sees its connection closed, as with a dead server
            _close(client)
            return
        server.settimeout(None)
        self._track(server)
        # True while the next bytes from the client start a new request (nothing sent yet, or the server answered)
        state = {"new_request": True}
        down = threading.Thread(target=self._downstream, args=(server, client, state), daemon=True)
        down.start()
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                if state["new_request"]:
                    state["new_request"] = False
                    with self._lock:
                        self.requests += 1
                        number = self.requests
                    if number in self.stall_requests:
                        self._sleep(self.stall, stalled=True)
                        if _hung_up(client):
                            with self._lock:
                                self.abandoned += 1
                            break
                    else:
                        self._sleep(self.request_delay)
                self._sleep(self.chunk_delay)
                server.sendall(data)
                with self._lock:
                    self.bytes_up += len(data)
        except OSError:
            pass
        finally:
            _close(server)
            _close(client)
            down.join(timeout=5)
            with self._lock:
                self._open.discard(server)
                self._open.discard(client)

    def _downstream(self, server: socket.socket, client: socket.socket, state: dict) -> None:
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                state["new_request"] = True
                client.sendall(data)
                with self._lock:
                    self.bytes_down += len(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(server)


def _hung_up(s: socket.socket) -> bool:
    """Whether the peer has closed its end (a read would return nothing)."""
    readable, _, _ = select.select([s], [], [], 0)
    if not readable:
        return False
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
