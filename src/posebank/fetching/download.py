"""Resumable HTTP(S) downloads checked against a published digest.

A resource is written to ``<folder>/<filename>.part`` and renamed to ``<folder>/<filename>`` only once its digest
equals the published one, so a file without ``.part`` is always a verified download. An interrupted download
(a dropped connection, a killed run) resumes from the bytes it has with a ``Range: bytes=N-`` request; a server that
answers such a request with the whole file (200 instead of 206) restarts the file from its first byte. Connection
errors, timeouts and 5xx answers are retried ``retries`` times with exponential backoff; other HTTP errors are final.
A digest mismatch deletes the ``.part`` file (its bytes are wrong, resuming would keep them) and names the URL, the
expected and the actual digest. One process downloads a file at a time (a lock file beside it).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import hashlib
import http.client
import logging
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from posebank import __version__
from posebank.core.errors import DataError
from posebank.fetching.resources import Resource

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # bytes read and written at a time
BACKOFF_S = 2.0  # first retry after this, then twice as long each time
LOG_EVERY = 0.1  # without a progress bar: a log line per this fraction of the file (per GiB when the size is unknown)
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class DownloadError(DataError):
    """A download failed for good (HTTP error, retries used up, wrong size or digest); ``where`` is the URL."""


class _Retry(Exception):
    """A failure worth retrying (connection, timeout, 5xx, a body cut short)."""


class _NoCrossHostAuth(urllib.request.HTTPRedirectHandler):
    """Redirects that never carry the credentials to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_NoCrossHostAuth)


def hash_file(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def is_verified(path: Path, resource: Resource) -> bool:
    """``path`` has the resource's published size (when published) and digest."""
    if not path.is_file() or (resource.size is not None and path.stat().st_size != resource.size):
        return False
    return hash_file(path, resource.algorithm) == resource.digest


@contextlib.contextmanager
def _locked(lock: Path, url: str) -> Iterator[None]:
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                raise DownloadError(url, f"another process is downloading it into {lock.parent} (lock {lock.name} "
                                    "held); wait for it to finish") from None
            raise
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class _Progress:
    """A tqdm bar when stderr is a terminal, else a log line per tenth of the file (per GiB without a size)."""

    def __init__(self, name: str, total: int | None, done: int, show: bool):
        self.name, self.total, self.done = name, total, done
        self.bar = None
        self.step = int(total * LOG_EVERY) if total else 1 << 30
        self.next_log = (done // max(self.step, 1) + 1) * max(self.step, 1)
        if show and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                            file=sys.stderr, leave=False)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.done >= self.next_log:
            shown = f"{self.done / self.total:.0%} of {_size(self.total)}" if self.total else _size(self.done)
            log.info("%s: %s", self.name, shown)
            self.next_log += max(self.step, 1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


class _Partial:
    """The ``.part`` file and the digest of the bytes it holds (kept across attempts; recomputed from the file when
    they disagree)."""

    def __init__(self, path: Path, algorithm: str):
        self.path, self.algorithm = path, algorithm
        self.hasher, self.hashed = hashlib.new(algorithm), 0

    def size(self) -> int:
        return self.path.stat().st_size if self.path.is_file() else 0

    def sync(self) -> int:
        """The number of bytes on disk, with the digest state matching them."""
        have = self.size()
        if have != self.hashed:
            self.hasher, self.hashed = hashlib.new(self.algorithm), 0
            if have:
                with open(self.path, "rb") as f:
                    while chunk := f.read(CHUNK):
                        self.hasher.update(chunk)
                        self.hashed += len(chunk)
        return have

    def restart(self) -> None:
        self.path.write_bytes(b"")
        self.hasher, self.hashed = hashlib.new(self.algorithm), 0

    def append(self, f, chunk: bytes) -> None:
        f.write(chunk)
        self.hasher.update(chunk)
        self.hashed += len(chunk)


def download(resource: Resource, folder, *, retries: int = 3, timeout_s: float = 60.0, progress: bool = False,
             backoff_s: float = BACKOFF_S) -> Path:
    """Download ``resource`` into ``folder`` (resuming a ``.part`` file), verify its digest and return the final
    path. A final file already there is checked and reused (or downloaded again when it does not match)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(folder, f"cannot create the downloads folder ({e.strerror or e})") from None
    final = folder / resource.filename
    with _locked(folder / f".{resource.filename}.lock", resource.url):
        if final.exists():
            if is_verified(final, resource):
                log.info("%s: already downloaded and verified (%s)", resource.filename, final)
                return final
            log.warning("%s: %s does not match the published %s; downloading it again", resource.filename, final,
                        resource.algorithm)
            final.unlink()
        auth = resource.credentials()
        part = _Partial(folder / f"{resource.filename}.part", resource.algorithm)
        attempt = 0
        while True:
            try:
                _attempt(resource, part, auth, timeout_s, progress)
                break
            except _Retry as e:
                attempt += 1
                if attempt > retries:
                    raise DownloadError(resource.url, f"{e} (gave up after {attempt} attempt"
                                        f"{'s' if attempt > 1 else ''}; rerun to resume from the "
                                        f"{part.size()} bytes in {part.path})") from None
                wait = backoff_s * 2 ** (attempt - 1)
                log.warning("%s: %s; retrying in %.1f s (%d of %d)", resource.filename, e, wait, attempt, retries)
                time.sleep(wait)
        part.sync()
        actual = part.hasher.hexdigest()
        if actual != resource.digest:
            n = part.size()
            part.path.unlink()
            raise DownloadError(resource.url, f"checksum mismatch: expected {resource.algorithm} {resource.digest}, "
                                f"got {actual} ({n} bytes); the download was deleted")
        if resource.size is not None and part.hashed != resource.size:  # a digest collision aside, unreachable
            part.path.unlink()
            raise DownloadError(resource.url, f"got {part.hashed} bytes, the published size is {resource.size}")
        with open(part.path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(part.path, final)
    log.info("%s: downloaded and verified (%s, %s %s)", resource.filename, _size(final.stat().st_size),
             resource.algorithm, resource.digest)
    return final


def _headers(resource: Resource, have: int, auth) -> dict:
    headers = {"User-Agent": f"posebank/{__version__}", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return headers


def _attempt(resource: Resource, part: _Partial, auth, timeout_s: float, progress: bool) -> None:
    """One request: the rest of the file appended to the ``.part`` file. _Retry for what a retry may mend."""
    have = part.sync()
    if resource.size is not None and have > resource.size:
        log.warning("%s: the partial download is larger than the published size; restarting", resource.filename)
        part.restart()
        have = 0
    if resource.size is not None and have == resource.size:
        return  # complete: the digest decides
    request = urllib.request.Request(resource.url, headers=_headers(resource, have, auth))
    try:
        response = _OPENER.open(request, timeout=timeout_s)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and have:  # nothing after byte `have`: the server's file is not longer than ours
            if e.headers.get("Content-Range", "") == f"bytes */{have}":
                return  # the part holds the whole file: the digest decides
            log.warning("%s: the server has no bytes after %d; restarting", resource.filename, have)
            part.restart()
            raise _Retry(f"HTTP 416 for bytes {have}-") from None
        if e.code >= 500:
            raise _Retry(f"HTTP {e.code} {e.reason}") from None
        if e.code in (401, 403) and resource.auth_env:
            raise DownloadError(resource.url, f"HTTP {e.code} {e.reason}: the server refused the credentials in "
                                f"{resource.auth_env[0]} / {resource.auth_env[1]}") from None
        if e.code in (401, 403):
            raise DownloadError(resource.url, f"HTTP {e.code} {e.reason}: the server asks for an account (register "
                                "at the dataset's homepage)") from None
        raise DownloadError(resource.url, f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise _Retry(f"cannot connect ({getattr(e, 'reason', None) or e})") from None
    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        total = None
        if have and response.status == 200:
            log.warning("%s: the server ignored the range request; downloading the whole file again",
                        resource.filename)
            part.restart()
            have = 0
        if response.status == 206:
            m = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if m is None or int(m.group(1)) != have:
                part.restart()
                raise _Retry(f"the server sent a range other than bytes {have}- "
                             f"({response.headers.get('Content-Range')!r}); restarting")
            total = int(m.group(3)) if m.group(3) != "*" else None
        elif length is not None:
            total = length
        if total is not None and resource.size is not None and total != resource.size:
            part.path.unlink(missing_ok=True)
            raise DownloadError(resource.url, f"the server's file has {total} bytes, the published size is "
                                f"{resource.size}: not the published file")
        need = (total - have) if total is not None else None
        if need:
            free = shutil.disk_usage(part.path.parent).free
            if free < need:
                raise DownloadError(part.path.parent, f"{_size(need)} needed for {resource.filename}, "
                                    f"{_size(free)} free")
        got = 0
        bar = _Progress(resource.filename, total, have, progress)
        try:
            with open(part.path, "ab") as f:
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except (http.client.HTTPException, OSError) as e:
                        raise _Retry(f"connection lost after {have + got} bytes ({e.__class__.__name__}: {e})"
                                     ) from None
                    if not chunk:
                        break
                    part.append(f, chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()
        if length is not None and got < length:
            raise _Retry(f"connection closed after {have + got} of {have + length} bytes")
