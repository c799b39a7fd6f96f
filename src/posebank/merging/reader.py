"""Reading a merged file (docs/format.md, "The merged file"): :class:`Merge`, lazy, with the reading interface of
:class:`posebank.core.store.Cache` (``column``, ``blob``, ``blobs``, ``[i]``, ``split_counts``, ``summary``; joints
expanded to the union on request), and :meth:`Merge.parts`: each run of the merged order as a cache-like view with
its source's own joints (what validation reads, block by block, without ever making an N x J_union array). Images
and masks are read from the source caches, each checked to be the one the merge was built from.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from posebank.core.camera import DISTORTION_MODELS, Camera
from posebank.core.errors import CacheFormatError
from posebank.core.skeleton import JointInfo
from posebank.core.store import SPLITS, VISIBILITY_UNKNOWN, Cache, Example
from posebank.merging.store import (
    FORMAT_NAME,
    FORMAT_VERSION,
    JOINT_COLUMNS,
    cache_digest,
    cache_location,
    is_merge_file,
    merged_columns,
)


def _json(value):
    return json.loads(value) if isinstance(value, (str, bytes)) else value


@dataclasses.dataclass(frozen=True)
class Segment:
    split: int
    source: int
    start: int  # first merged row
    block_start: int  # first row in the source's block
    count: int


class Merge:
    """Lazy reader of a merged file. ``cache_dir`` overrides where the source caches are looked for (default: the
    paths recorded at merge time, relative to the merged file)."""

    def __init__(self, path, cache_dir=None, verify: bool = True):
        self.path = Path(path)
        try:
            self._f = h5py.File(self.path, "r")
        except (OSError, ValueError) as e:
            raise CacheFormatError(self.path, f"not an HDF5 file ({e})") from None
        a = self._f.attrs
        if a.get("format") != FORMAT_NAME:
            self._f.close()
            raise CacheFormatError(self.path, f"not a posebank merge (format attribute {a.get('format')!r})")
        if int(a["format_version"]) > FORMAT_VERSION:
            self._f.close()
            raise CacheFormatError(self.path, f"merge format version {a['format_version']} is newer than this "
                                   f"posebank reads ({FORMAT_VERSION})")
        self.dataset = self.name = str(a["name"])
        self.joint_info = JointInfo.from_json(a["joint_info"])
        self.sources: list[dict] = _json(a["sources"])
        self.skeletons: dict[str, list[int]] = _json(a.get("skeletons", "{}"))
        self._n = int(a["n_examples"])
        seg = self._f["segments"][()]
        self.segments = [Segment(*map(int, row)) for row in seg]
        self._starts = [s.start for s in self.segments]
        self._groups = [self._f["sources"][s["dataset"]] for s in self.sources]
        self.joint_maps = [g["joint_map"][()].astype(np.int64) for g in self._groups]
        self.source_joint_infos = [JointInfo.from_json(g.attrs["joint_info"]) for g in self._groups]
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._verify = verify
        self._caches: list[Cache | None] = [None] * len(self.sources)

    # ------------------------------------------------------------------------------------------ basics
    def close(self) -> None:
        for c in self._caches:
            if c is not None:
                c.close()
        self._caches = [None] * len(self.sources)
        self._f.close()

    def __enter__(self) -> Merge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return self._n

    @property
    def attrs(self) -> dict:
        out = {}
        for k, v in self._f.attrs.items():
            out[k] = v.item() if hasattr(v, "item") else v
        present = {s for src in self.sources for s in src["splits"].values()}
        out["expected_splits"] = json.dumps([s for s in SPLITS if s in present])
        return out

    @property
    def missing(self) -> list[dict]:
        return _json(self._f.attrs.get("missing", "[]"))

    @property
    def quarantine(self) -> list[dict]:
        """What the merge's filter dropped, one entry per source and reason (with its count)."""
        return [{"path": s["dataset"], "reason": reason, "count": int(n)}
                for s in self.sources for reason, n in s.get("dropped", {}).items() if n]

    @property
    def files(self) -> list[Path]:
        return [self.path]

    def split_counts(self) -> dict[str, int]:
        counts = _json(self._f.attrs["examples_per_split"])
        return {s: int(counts.get(s, 0)) for s in SPLITS}

    def split_range(self, split: str) -> tuple[int, int]:
        """Merged rows [start, stop) of ``split`` (the merged order is split-major)."""
        counts = self.split_counts()
        start = sum(counts[s] for s in SPLITS[:SPLITS.index(split)])
        return start, start + counts[split]

    # ------------------------------------------------------------------------------------------ sources
    def cache_path(self, k: int) -> Path:
        s = self.sources[k]
        if self.cache_dir is not None:
            found = cache_location(self.cache_dir, s["dataset"])
            return found if found is not None else self.cache_dir / s["dataset"]
        return (self.path.parent / s["cache"]).resolve()

    def source_cache(self, k: int) -> Cache:
        """The source cache of source ``k``, checked to be the one the merge was built from."""
        cache = self._caches[k]
        if cache is None:
            path = self.cache_path(k)
            s = self.sources[k]
            if not path.exists():
                raise CacheFormatError(path, f"source cache of merge {self.name!r} ({s['dataset']}) not found; "
                                       "build or pull it, or give the folder holding the caches (cache_dir)")
            if self._verify and cache_digest(path) != s["cache_digest"]:
                raise CacheFormatError(path, f"changed since merge {self.name!r} was built from it (digest "
                                       f"{s['cache_digest'][:12]}...): rebuild the merge")
            cache = Cache(path)
            self._caches[k] = cache
        return cache

    def locate(self, i: int) -> tuple[int, int]:
        """(source, row in the source's block) of merged row ``i``."""
        if not -self._n <= i < self._n:
            raise IndexError(f"example {i} out of range for {self._n} examples")
        i = int(i) % self._n
        seg = self.segments[bisect.bisect_right(self._starts, i) - 1]
        return seg.source, seg.block_start + i - seg.start

    def source_row(self, i: int) -> tuple[str, int]:
        """(source dataset, row in its cache) of merged row ``i``: where its image and full record are."""
        k, j = self.locate(i)
        return self.sources[k]["dataset"], int(self._groups[k]["row"][j])

    def local(self, k: int, name: str, sel) -> np.ndarray:
        """Column ``name`` of source ``k``'s block (its own joints), rows ``sel``."""
        return self._groups[k][name][sel]

    # ------------------------------------------------------------------------------------------ rows
    def _runs(self, start: int, stop: int) -> Iterator[tuple[Segment, int, int]]:
        """(segment, first offset in it, last offset + 1) covering merged rows [start, stop)."""
        if start >= stop:
            return
        s = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while start < stop and s < len(self.segments):
            seg = self.segments[s]
            end = seg.start + seg.count
            if end > start:
                b = min(stop, end)
                yield seg, start - seg.start, b - seg.start
                start = b
            s += 1

    def _expand(self, k: int, name: str, values: np.ndarray) -> np.ndarray:
        m = self.joint_maps[k]
        n = values.shape[0]
        if name == "world_coords":
            out = np.full((n, self.joint_info.n_joints, 3), np.nan, np.float32)
        else:
            out = np.full((n, self.joint_info.n_joints), VISIBILITY_UNKNOWN, np.uint8)
        out[:, m] = values
        return out

    def column(self, name: str, sel=slice(None)) -> np.ndarray:
        """A column over merged rows ``sel`` (slice, index or index array); joints in the union (dense: for small
        selections; :meth:`parts` reads sparse)."""
        if isinstance(sel, slice):
            ids = np.arange(*sel.indices(self._n))
        elif np.ndim(sel) == 0:
            return self.column(name, np.array([int(sel)]))[0]
        else:
            ids = np.asarray(sel)
            if ids.dtype == bool:
                ids = np.flatnonzero(ids)
            ids = np.where(ids < 0, ids + self._n, ids).astype(np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self._n):
            raise IndexError(f"rows out of range for {self._n} examples")
        if name == "split":
            seg_of = np.searchsorted(self._starts, ids, side="right") - 1
            return np.array([self.segments[s].split for s in seg_of], np.uint8).reshape(ids.shape)
        out = None
        seg_of = np.searchsorted(self._starts, ids, side="right") - 1
        for s in np.unique(seg_of):
            seg = self.segments[int(s)]
            mask = seg_of == s
            local = ids[mask] - seg.start + seg.block_start
            uniq, inverse = np.unique(local, return_inverse=True)
            values = self._groups[seg.source][name][uniq][inverse]
            if name in JOINT_COLUMNS:
                values = self._expand(seg.source, name, values)
            if out is None:
                out = np.empty((len(ids), *values.shape[1:]), values.dtype)
            out[mask] = values
        if out is None:
            if name in JOINT_COLUMNS:
                trailing = (self.joint_info.n_joints, 3) if name == "world_coords" else (self.joint_info.n_joints,)
                return np.zeros((0, *trailing), "float32" if name == "world_coords" else "uint8")
            dtype, trailing = merged_columns(1)[name]
            return np.zeros((0, *trailing), dtype)
        return out

    def blob(self, name: str, i: int) -> bytes:
        k, j = self.locate(i)
        return self.source_cache(k).blob(name, int(self._groups[k]["row"][j]))

    def blobs(self, name: str, start: int, stop: int) -> list[bytes]:
        out: list[bytes] = []
        for seg, a, b in self._runs(start, min(stop, self._n)):
            rows = self._groups[seg.source]["row"][seg.block_start + a:seg.block_start + b]
            out.extend(_blobs_at(self.source_cache(seg.source), name, rows))
        return out

    def camera(self, i: int) -> Camera:
        k, j = self.locate(i)
        g = self._groups[k]
        return Camera(g["camera/intrinsic_matrix"][j], g["camera/R"][j], g["camera/t"][j],
                      g["camera/distortion_coeffs"][j], g["camera/world_up"][j],
                      DISTORTION_MODELS[int(g["camera/distortion_model"][j])])

    def __getitem__(self, i: int) -> Example:
        """Merged example ``i``: the source cache's example with the joints in the union skeleton."""
        k, j = self.locate(i)
        ex = self.source_cache(k)[int(self._groups[k]["row"][j])]
        ex.world_coords = self.column("world_coords", i)
        ex.visibility = self.column("visibility", i)
        ex.split = SPLITS[self.column("split", i)]
        return ex

    def parts(self) -> Iterator[tuple[int, SegmentView]]:
        """(first merged row, view) per run of the merged order: a cache-like view with the source's joints."""
        for seg in self.segments:
            yield seg.start, SegmentView(self, seg)

    # ------------------------------------------------------------------------------------------ summary
    def summary(self) -> dict:
        a = self._f.attrs
        per_source = []
        for k, s in enumerate(self.sources):
            per_source.append({"dataset": s["dataset"], "suffix": s["suffix"], "joints": len(self.joint_maps[k]),
                               "examples_per_split": s["examples_per_split"], "dropped": s.get("dropped", {}),
                               "cache": s["cache"]})
        return {
            "dataset": self.name,
            "file": str(self.path),
            "layout": "merge",
            "size_bytes": self.path.stat().st_size,
            "examples": self._n,
            "examples_per_split": self.split_counts(),
            "joints": self.joint_info.n_joints,
            "edges": len(self.joint_info.edges),
            "skeletons": {k: len(v) for k, v in self.skeletons.items()},
            "sources": per_source,
            "missing": self.missing,
            "partial": bool(a.get("partial", False)),
            "filter": _json(a.get("filter", "{}")).get("kind", "none"),
            "dropped": sum(int(q["count"]) for q in self.quarantine),
            "posebank_version": a.get("posebank_version"),
            "params_digest": a.get("params_digest"),
        }


def _blobs_at(cache: Cache, name: str, rows: np.ndarray, span: int = 4096) -> list[bytes]:
    """Blobs of increasing cache ``rows``, read as a few contiguous ranges."""
    out: list[bytes] = []
    rows = np.asarray(rows, np.int64)
    i = 0
    while i < len(rows):
        j = i + 1
        while j < len(rows) and rows[j] - rows[i] < span:
            j += 1
        lo = int(rows[i])
        got = cache.blobs(name, lo, int(rows[j - 1]) + 1)
        out.extend(got[int(r) - lo] for r in rows[i:j])
        i = j
    return out


class SegmentView:
    """One run of a merge as a cache: the source's own joints, merged split, rows numbered from 0."""

    def __init__(self, merge: Merge, seg: Segment):
        self._m, self._seg = merge, seg
        self.joint_info = merge.source_joint_infos[seg.source]
        self.dataset = merge.sources[seg.source]["dataset"]
        self.path = merge.path

    def __len__(self) -> int:
        return self._seg.count

    def _sel(self, sel):
        b = self._seg.block_start
        if isinstance(sel, slice):
            start, stop, step = sel.indices(self._seg.count)
            return slice(b + start, b + stop, step)
        return np.asarray(sel) + b

    def column(self, name: str, sel=slice(None)) -> np.ndarray:
        if name == "split":
            n = len(range(*sel.indices(self._seg.count))) if isinstance(sel, slice) else np.size(sel)
            return np.full(n, self._seg.split, np.uint8)
        return self._m.local(self._seg.source, name, self._sel(sel))

    def blobs(self, name: str, start: int, stop: int) -> list[bytes]:
        return self._m.blobs(name, self._seg.start + start, self._seg.start + min(stop, self._seg.count))

    def blob(self, name: str, i: int) -> bytes:
        return self._m.blob(name, self._seg.start + int(i))


def open_any(path, cache_dir=None):
    """A cache (folder or file) or a merged file, by what ``path`` holds."""
    return Merge(path, cache_dir=cache_dir) if is_merge_file(path) else Cache(path)
