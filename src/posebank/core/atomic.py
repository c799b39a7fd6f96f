"""Atomic outputs: every file posebank writes appears complete or not at all.

A writer works on a temporary file beside the target (same folder, so the rename cannot cross file systems),
flushes and fsyncs it, and renames it over the target; the folder is fsynced too, so the rename survives a crash.
Temporary names carry the writer's process id (``.<target>.pid<N>.<random>.tmp``): when a run is killed, the next
writer of the same folder removes the leftovers of processes that no longer exist.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from posebank.core.errors import OutputError

_TEMP = re.compile(r"^\..+\.pid(\d+)\.[^.]+\.tmp(dir)?$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder) -> list[Path]:
    """Remove the temporary files and folders that killed writers left in ``folder``; returns what was removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        m = _TEMP.match(p.name)
        if m and not _alive(int(m.group(1))):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            removed.append(p)
    return removed


def prepare_output(path) -> Path:
    """Check that ``path`` can be written as a file (before any work is done) and clean up old temporaries."""
    if str(path).strip() in ("", "."):
        raise OutputError(repr(str(path)), "an output file name is needed")
    path = Path(path)
    if path.is_dir():
        raise OutputError(path, "is a directory; give the path of a file")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(parent, f"cannot create the output folder ({e.strerror or e})") from e
    try:  # a real probe: permission bits say nothing for root, nor on read-only file systems
        fd, probe = tempfile.mkstemp(prefix=_temp_name(path), suffix=".tmp", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(parent, f"output folder is not writable ({e.strerror or e})") from None
    remove_stale_temps(parent)
    return path


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temp_name(path: Path) -> str:
    return f".{path.name}.pid{os.getpid()}."


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it is fsynced and renamed over ``path``,
    otherwise removed. The block writes the temporary file by name (h5py, cv2, ...)."""
    path = prepare_output(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_name(path), suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OutputError(path.parent, f"cannot write here ({e.strerror or e})") from e
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


@contextlib.contextmanager
def temp_dir(beside) -> Iterator[Path]:
    """A temporary working folder beside the output ``beside``, removed afterwards (and, when the process is
    killed, by the next run's clean-up)."""
    beside = Path(beside)
    if beside.is_dir():  # beside an output folder (a cache folder)
        remove_stale_temps(beside.parent)
    else:
        beside = prepare_output(beside)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_name(beside), suffix=".tmpdir", dir=beside.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
