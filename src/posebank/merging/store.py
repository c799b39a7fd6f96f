"""The merged-dataset file (``posebank.merge``, docs/format.md): annotations copied sparse, images referenced.

One HDF5 file per merge. For every present source a group ``sources/<dataset>`` holds the source's selected rows
(``row``: the example's row in the source cache) with the source's own joints (``world_coords`` (n, J_k, 3),
``visibility``; J_k the joints the merge keeps of that source) and its box and crop camera; the group's
``joint_map`` gives the union index of each of its joints. Images and masks stay in the source caches: a merged
example is (source, row), and the three merges built from the same caches share every image. ``segments`` lists
the contiguous runs of the merged order: (split, source, first merged row, first row of the source's block, count);
the merged order is by split (train, val, test), then source (composition order), then source row.

:class:`MergeWriter` streams source blocks into a new file (atomic, deterministic: no times, pinned HDF5 layout,
fixed chunks); :mod:`posebank.merging.reader` reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from posebank import __version__
from posebank.core.atomic import atomic_path
from posebank.core.camera import DISTORTION_MODELS
from posebank.core.skeleton import JointInfo
from posebank.core.store import (
    INDEX_NAME,
    ROWS_PER_CHUNK,
    SPLITS,
    _create,
    _no_times_group,
    is_folder_cache,
    sha256_file,
)

FORMAT_NAME = "posebank.merge"
FORMAT_VERSION = 1
# Compression of the per-example columns (docs/format.md): gzip 4 + shuffle (HDF5's standard filter:
# deterministic, readable by any HDF5 build) for what compresses; none for the float columns that hardly do
# (every example has its own crop camera and box: measured 0.80-0.90 of their raw size in the source caches), so
# a merge does not spend its time recompressing them. A source's joints are compressed only where its cache
# stores them in at most JOINTS_COMPRESS_BELOW of their raw bytes (many missing joints, say).
COMPRESSION = True
RAW_COLUMNS = ("camera/R", "camera/t", "bbox")
JOINTS_COMPRESS_BELOW = 0.6

# the per-example columns a merge copies from its sources (name -> dtype, trailing shape given J_k joints)
def merged_columns(n_joints: int) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {
        "row": ("int64", ()),
        "world_coords": ("float32", (n_joints, 3)),
        "visibility": ("uint8", (n_joints,)),
        "bbox": ("float32", (4,)),
        "image_size": ("int32", (2,)),
        "camera/intrinsic_matrix": ("float32", (3, 3)),
        "camera/R": ("float32", (3, 3)),
        "camera/t": ("float32", (3,)),
        "camera/distortion_coeffs": ("float32", (5,)),
        "camera/distortion_model": ("uint8", ()),
        "camera/world_up": ("float32", (3,)),
    }


COPIED_FROM_SOURCE = tuple(k for k in merged_columns(1) if k != "row")
JOINT_COLUMNS = ("world_coords", "visibility")


def is_merge_file(path) -> bool:
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT_NAME
    except OSError:
        return False


def cache_location(cache_dir, dataset: str) -> Path | None:
    """The cache of ``dataset`` under ``cache_dir``: the folder ``<dataset>/`` (with its index) or a single file
    ``<dataset>.h5``; None when neither is there."""
    folder = Path(cache_dir) / dataset
    if is_folder_cache(folder):
        return folder
    single = Path(cache_dir) / f"{dataset}.h5"
    return single if single.is_file() else None


def joints_compress(path) -> bool:
    """Whether a merge compresses the joints of the cache at ``path``: where the cache stores its
    ``world_coords`` in at most :data:`JOINTS_COMPRESS_BELOW` of their raw bytes (read from the files' metadata)."""
    path = Path(path)
    files = sorted(path.glob("*.h5")) if path.is_dir() else [path]
    stored = raw = 0
    for file in files:
        with h5py.File(file, "r") as f:
            ds = f["world_coords"]
            stored += ds.id.get_storage_size()
            raw += ds.size * ds.dtype.itemsize
    return raw > 0 and stored <= JOINTS_COMPRESS_BELOW * raw


def cache_digest(path: Path) -> str:
    """Content digest of a cache: SHA-256 of a folder's index (which holds every shard's SHA-256) or of the file."""
    path = Path(path)
    return sha256_file(path / INDEX_NAME if path.is_dir() else path)


# ------------------------------------------------------------------------------------------ writing
class MergeWriter:
    """Streams source blocks into a new merged file; use as a context manager (atomic: on an error the target is
    left as it was)."""

    def __init__(self, path, name: str, joint_info: JointInfo, attrs: dict):
        self.path = Path(path)
        self.name = name
        self.joint_info = joint_info
        self.attrs = dict(attrs)
        self._file: h5py.File | None = None
        self._atomic = None
        self._sources: list[str] = []
        self._sizes: dict[str, int] = {}
        self._segments: list[tuple[int, int, int, int, int]] = []
        self._n = 0

    def __enter__(self) -> MergeWriter:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._file = h5py.File(tmp, "w", libver=("v110", "v110"), track_order=False)
        _no_times_group(self._file, "sources")
        return self

    def add_source(self, dataset: str, joint_info: JointInfo, joint_map: np.ndarray,
                   compress_joints: bool = False, max_rows: int | None = None) -> int:
        """Declare the next source (in composition order); returns its index. ``compress_joints``: gzip its
        ``world_coords`` (see :func:`joints_compress`); ``max_rows``: at most this many rows will come (the source's
        rows in the merged splits): a smaller source gets smaller chunks, as HDF5 stores uncompressed chunks whole."""
        g = _no_times_group(self._file["sources"], dataset)
        rows = ROWS_PER_CHUNK if max_rows is None else max(1, min(ROWS_PER_CHUNK, int(max_rows)))
        for name, (dtype, trailing) in merged_columns(joint_info.n_joints).items():
            compress = (compress_joints if name == "world_coords" else False if name in RAW_COLUMNS
                        else COMPRESSION)
            _create(g, name, (0, *trailing), (None, *trailing), dtype, (rows, *trailing), compress)
        g.create_dataset("joint_map", data=np.asarray(joint_map, np.int32), track_times=False)
        g.attrs["joint_info"] = joint_info.to_json()
        self._sources.append(dataset)
        self._sizes[dataset] = 0
        return len(self._sources) - 1

    def append(self, source: int, split: str, cols: dict[str, np.ndarray]) -> None:
        """Rows of one source going to merged ``split`` (calls for one split come before the next split's)."""
        dataset = self._sources[source]
        n = len(cols["row"])
        if n == 0:
            return
        b0 = self._sizes[dataset]
        g = self._file["sources"][dataset]
        for name in merged_columns(1):
            # opened per block and closed explicitly: a dataset's chunk cache is written out (compressed, space
            # allocated in the file) when it closes, so the merge's memory does not grow with its sources' sizes,
            # and the file's layout does not depend on when the garbage collector gets to the handle
            ds = g[name]
            try:
                ds.resize(b0 + n, axis=0)
                ds[b0:b0 + n] = np.asarray(cols[name], ds.dtype)
            finally:
                ds.id.close()
        code = SPLITS.index(split)
        last = self._segments[-1] if self._segments else None
        if last is not None and last[0] == code and last[1] == source and last[3] + last[4] == b0:
            self._segments[-1] = (*last[:4], last[4] + n)
        else:
            if last is not None and (last[0], last[1]) > (code, source):
                raise ValueError("merged rows must come in (split, source) order")
            self._segments.append((code, source, self._n, b0, n))
        self._sizes[dataset] = b0 + n
        self._n += n

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                f = self._file
                seg = np.asarray(self._segments, np.int64).reshape(-1, 5)
                f.create_dataset("segments", data=seg, track_times=False)
                counts = dict.fromkeys(SPLITS, 0)
                for code, _s, _g, _b, n in self._segments:
                    counts[SPLITS[code]] += int(n)
                attrs = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "posebank_version": __version__,
                         "name": self.name, "n_examples": self._n, "examples_per_split": counts,
                         "joint_info": self.joint_info.to_json(), "splits": list(SPLITS),
                         "distortion_models": list(DISTORTION_MODELS), **self.attrs}
                for k in sorted(attrs):
                    v = attrs[k]
                    f.attrs[k] = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list, tuple)) else v
            self._file.close()
            self._file = None
        finally:
            if self._file is not None:
                with contextlib.suppress(Exception):
                    self._file.close()
            self._atomic.__exit__(exc_type, exc, tb)


def relative_cache_path(cache: Path, out: Path) -> str:
    return os.path.relpath(Path(cache).resolve(), Path(out).resolve().parent)


def annotation_bytes(path) -> int:
    """Bytes on disk of a cache's or merge's annotations: every dataset except image, mask and source-path blobs."""
    path = Path(path)
    files: Sequence[Path] = [path] if path.is_file() else [p for p in sorted(path.glob("*.h5"))]
    total = 0
    for file in files:
        with h5py.File(file, "r") as f:
            def visit(name, obj):
                nonlocal total
                if isinstance(obj, h5py.Dataset) and name.split("/")[0] not in ("image", "mask", "source_path"):
                    total += obj.id.get_storage_size()
            f.visititems(visit)
    return total
