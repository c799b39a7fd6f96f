"""What every export shares: the source (a cache or a merge) read example by example in bounded memory, the output
folder written atomically, and the manifest that says what the export was made from.

An exporter is a function ``export(source: ExportSource, out: Path, options: dict) -> dict``: it fills the empty
folder ``out`` (a temporary folder beside the final one) with its format's files and returns a summary (counts,
file names) that goes into the manifest. :func:`run_export` does the rest: checks, the temporary folder, the
manifest (``posebank-export.json``), the atomic rename.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from posebank import __version__
from posebank.core.atomic import _fsync_dir, remove_stale_temps, temp_dir
from posebank.core.errors import OutputError, UsageError
from posebank.core.skeleton import JointInfo
from posebank.core.store import SPLITS, Cache, Example
from posebank.merging.reader import Merge, open_any
from posebank.merging.store import cache_digest

MANIFEST = "posebank-export.json"
EXPORT_FORMAT = "posebank.export"
EXPORT_VERSION = 1
BLOCK_ROWS = 1024  # examples read at a time


@dataclasses.dataclass
class Item:
    """One example of the source, with where it comes from."""

    index: int  # its row in the source (a cache row, or a merged row)
    dataset: str  # the dataset it belongs to (the cache's, or the merge source's)
    source_row: int  # its row in that dataset's cache
    example: Example  # joints in ``ExportSource.joint_info`` (a merge: the union, NaN / 255 / NaN where absent)


class ExportSource:
    """A cache (folder or file) or a merged file, read for an export. ``joint_info`` is the cache's skeleton, or a
    merge's union skeleton; :meth:`items` yields every example of a split in order, a block at a time."""

    def __init__(self, path, cache_dir=None):
        self.path = Path(path)
        self.reader = open_any(self.path, cache_dir=cache_dir)
        self.kind = "merge" if isinstance(self.reader, Merge) else "cache"
        self.name = self.reader.name if self.kind == "merge" else self.reader.dataset
        self.joint_info: JointInfo = self.reader.joint_info

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> ExportSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.reader)

    def split_counts(self) -> dict[str, int]:
        return self.reader.split_counts()

    def datasets(self) -> list[str]:
        """The datasets the examples come from (a merge: its present sources in composition order)."""
        return [s["dataset"] for s in self.reader.sources] if self.kind == "merge" else [self.name]

    def digests(self) -> dict[str, str]:
        """Content digest of every cache the export reads (and of the merged file): for the manifest."""
        if self.kind == "cache":
            return {self.name: cache_digest(self.path)}
        out = {s["dataset"]: s["cache_digest"] for s in self.reader.sources}
        out[f"merge:{self.name}"] = cache_digest(self.path)
        return out

    def items(self, split: str | None = None, block_rows: int = BLOCK_ROWS) -> Iterator[Item]:
        """Every example of ``split`` (None: all), in source order."""
        if split is not None and split not in SPLITS:
            raise UsageError(f"split {split!r}", f"not a split; splits: {', '.join(SPLITS)}")
        if self.kind == "cache":
            yield from self._cache_items(split, block_rows)
        else:
            yield from self._merge_items(split, block_rows)

    def _cache_items(self, split, block_rows) -> Iterator[Item]:
        cache: Cache = self.reader
        n = len(cache)
        code = None if split is None else SPLITS.index(split)
        for start in range(0, n, block_rows):
            stop = min(start + block_rows, n)
            if code is not None:
                keep = np.flatnonzero(cache.column("split", slice(start, stop)) == code)
                if not len(keep):
                    continue
                a, b = start + int(keep[0]), start + int(keep[-1]) + 1
            else:
                keep, a, b = None, start, stop
            wanted = None if keep is None else set((keep + start).tolist())
            for i, ex in zip(range(a, b), cache.examples(a, b, block_rows)):
                if wanted is None or i in wanted:
                    yield Item(i, self.name, i, ex)

    def _merge_items(self, split, block_rows) -> Iterator[Item]:
        m: Merge = self.reader
        n_union = m.joint_info.n_joints
        for seg in m.segments:
            if split is not None and SPLITS[seg.split] != split:
                continue
            k = seg.source
            dataset = m.sources[k]["dataset"]
            cache = m.source_cache(k)
            picked = np.asarray(m.sources[k]["source_joint_index"], np.int64)
            mapped = m.joint_maps[k]
            for off in range(0, seg.count, block_rows):
                cnt = min(block_rows, seg.count - off)
                rows = m.local(k, "row", slice(seg.block_start + off, seg.block_start + off + cnt))
                j = 0
                for lo, hi in _spans(rows):  # increasing source rows, read a few contiguous ranges at a time
                    wanted = rows[j:j + int(np.searchsorted(rows[j:], hi, side="right"))]
                    got = dict(zip(range(lo, hi + 1), cache.examples(lo, hi + 1, block_rows)))
                    for row in wanted:
                        ex = _to_union(got[int(row)], picked, mapped, n_union, SPLITS[seg.split])
                        yield Item(seg.start + off + j, dataset, int(row), ex)
                        j += 1


def _spans(rows: np.ndarray, gap: int = 64) -> Iterator[tuple[int, int]]:
    """(first, last) of runs of increasing ``rows`` with gaps below ``gap``: read whole, skipping a few rows costs
    less than one read per row."""
    i = 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and rows[j + 1] - rows[j] < gap:
            j += 1
        yield int(rows[i]), int(rows[j])
        i = j + 1


def _to_union(ex: Example, picked: np.ndarray, mapped: np.ndarray, n_union: int, split: str) -> Example:
    """A source cache's example with its joints placed in the union (absent ones NaN / unknown)."""
    wc = np.full((n_union, 3), np.nan, np.float32)
    wc[mapped] = np.asarray(ex.world_coords, np.float32)[picked]
    vis = np.full(n_union, 255, np.uint8)
    if ex.visibility is not None:
        vis[mapped] = np.asarray(ex.visibility)[picked]
    kp = None
    if ex.keypoints2d is not None:
        kp = np.full((n_union, 2), np.nan, np.float32)
        kp[mapped] = np.asarray(ex.keypoints2d, np.float32)[picked]
    return dataclasses.replace(ex, world_coords=wc, visibility=vis, keypoints2d=kp, split=split)


# ------------------------------------------------------------------------------------------ the output folder
@contextlib.contextmanager
def atomic_folder(path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; when the block succeeds it replaces ``path`` (a previous
    export there is removed only after the new one is complete), otherwise it is removed."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(path, "exists and is not a folder; give a folder for the export")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(path.parent, f"cannot create the output folder ({e.strerror or e})") from e
    remove_stale_temps(path.parent)
    with temp_dir(path.parent / f"{path.name}.export") as tmp:
        out = tmp / "new"
        out.mkdir()
        yield out
        old = tmp / "old"
        if path.exists():
            os.replace(path, old)
        os.replace(out, path)
        _fsync_dir(path.parent)
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)


def manifest(fmt: str, source: ExportSource, options: dict, summary: dict) -> dict:
    return {"format": EXPORT_FORMAT, "format_version": EXPORT_VERSION, "export": fmt, "posebank_version": __version__,
            "source": {"kind": source.kind, "name": source.name, "path": str(source.path),
                       "examples": len(source), "examples_per_split": source.split_counts(),
                       "datasets": source.datasets(), "digests": source.digests()},
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(options.items())},
            "summary": summary}


def read_manifest(folder) -> dict:
    """The manifest of an export folder; :class:`~posebank.core.errors.UsageError` if it is not one."""
    p = Path(folder) / MANIFEST
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise UsageError(folder, f"not a posebank export (no readable {MANIFEST}: {e})") from None
    if m.get("format") != EXPORT_FORMAT:
        raise UsageError(p, f"not a posebank export manifest (format {m.get('format')!r})")
    return m


def is_export(folder) -> bool:
    return (Path(folder) / MANIFEST).is_file()


def run_export(fmt: str, exporter, source_path, out, options: dict | None = None, cache_dir=None) -> dict:
    """Export ``source_path`` (a cache or a merge) with ``exporter`` into the folder ``out``; returns the
    manifest. The folder appears complete, with its manifest, or not at all."""
    options = dict(options or {})
    with ExportSource(source_path, cache_dir=cache_dir) as source, atomic_folder(out) as tmp:
        summary = exporter(source, tmp, options)
        m = manifest(fmt, source, options, summary)
        (tmp / MANIFEST).write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")
    return m


# ------------------------------------------------------------------------------------------ deterministic npz
NPZ_DATE = (1980, 1, 1, 0, 0, 0)  # zip entries carry this time: the same arrays give the same bytes


def write_npz(path, arrays: dict, compress: bool = False, allow_pickle: bool = False) -> Path:
    """An ``.npz`` that ``numpy.load`` reads like ``numpy.savez`` (``savez_compressed`` with ``compress``), but
    byte-reproducible (fixed entry times, entries in the given order). Object arrays are refused unless
    ``allow_pickle`` (a consumer's format that needs them); a refusal names the key."""
    import io
    import zipfile

    path = Path(path)
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=mode, allowZip64=True) as zf:
        for key, value in arrays.items():
            arr = np.asanyarray(value)
            if arr.dtype.hasobject and not allow_pickle:
                raise ValueError(f"{path.name}: key {key!r} is an object array (would need pickle)")
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=NPZ_DATE)
            info.compress_type = mode
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())
    return path
