"""Small columnar HDF5 files for the pipeline's intermediate products (records, frame/box/mask shards).

Each file holds numeric columns (first axis = row), byte columns (concatenated bytes + offsets, as in the
cache) and JSON-able attributes. Written whole, atomically (temporary file, then rename) and deterministically
(no timestamps), so DVC and resumption logic can trust what exists.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from posebank.core.atomic import atomic_path
from posebank.core.errors import CacheFormatError
from posebank.core.store import _create, _require_group

COMPLETE = "complete"


def write_table(path, columns: dict[str, np.ndarray], blobs: dict[str, Sequence[bytes]] | None = None,
                attrs: dict | None = None) -> None:
    """Write one table file atomically; attribute ``complete`` marks a finished file."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w", libver=("v110", "v110"), track_order=False) as f:
        for name in sorted(columns):
            arr = np.ascontiguousarray(columns[name])
            chunks = (max(1, min(len(arr), 4096)), *arr.shape[1:]) if arr.ndim and len(arr) else None
            ds = _create(f, name, arr.shape, arr.shape, arr.dtype, chunks, compress=chunks is not None)
            if arr.size:
                ds[...] = arr
        for name in sorted(blobs or {}):
            items = list(blobs[name])
            ends = np.cumsum([len(b) for b in items], dtype=np.int64)
            data = np.frombuffer(b"".join(items), np.uint8)
            g = _require_group(f, name)
            g.create_dataset("data", data=data, track_times=False,
                             chunks=(min(len(data), 1 << 20),) if len(data) else None)
            g.create_dataset("offsets", data=np.concatenate([[0], ends]).astype(np.int64), track_times=False)
        for k in sorted(attrs or {}):
            v = attrs[k]
            f.attrs[k] = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list, tuple)) else v
        f.attrs[COMPLETE] = True


class Table:
    """Reader of a table file."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self._f = h5py.File(self.path, "r")
        except (OSError, ValueError) as e:
            raise CacheFormatError(self.path, f"not a readable posebank table ({e})") from None

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()

    def close(self) -> None:
        self._f.close()

    def attr(self, name, default=None):
        v = self._f.attrs.get(name, default)
        return v.item() if hasattr(v, "item") else v

    def json_attr(self, name):
        return json.loads(self._f.attrs[name])

    def column(self, name: str, sel=slice(None)) -> np.ndarray:
        return self._f[name][sel]

    def has(self, name: str) -> bool:
        return name in self._f

    def blobs(self, name: str) -> list[bytes]:
        data, off = self._f[f"{name}/data"][()].tobytes(), self._f[f"{name}/offsets"][()]
        return [data[a:b] for a, b in zip(off[:-1], off[1:])]


def is_complete(path, digest: str) -> bool:
    """True when ``path`` is a finished table built from inputs with this digest (used to resume)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with Table(path) as t:
            return bool(t.attr(COMPLETE, False)) and t.attr("digest") == digest
    except (OSError, CacheFormatError):
        return False


def file_digest(*paths, extra=None) -> str:
    """SHA-256 (16 hex digits) over the bytes of files and a JSON-able extra (parameters)."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]
