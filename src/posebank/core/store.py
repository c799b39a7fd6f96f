"""The dataset cache: one columnar, chunked HDF5 file per dataset (specified in docs/format.md).

Writing is streaming (bounded memory), atomic (a temporary file in the destination folder is renamed over
the destination only after it was completely written and closed) and deterministic (no timestamps, fixed
chunking and compression, rows in the order given), so identical input gives a byte-identical file.

Reading is lazy: :class:`Cache` opens the file and reads only the rows asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np

from posebank import __version__
from posebank.core.atomic import atomic_path
from posebank.core.camera import DISTORTION_MODELS, Camera
from posebank.core.errors import CacheFormatError
from posebank.core.skeleton import JointInfo

FORMAT_NAME = "posebank.cache"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
ROWS_PER_CHUNK = 1024
BLOB_CHUNK_BYTES = 1 << 20

# name -> (dtype, trailing shape given joints J, gzip compressed)
def _numeric_columns(n_joints: int) -> dict[str, tuple[str, tuple[int, ...], bool]]:
    return {
        "world_coords": ("float32", (n_joints, 3), True),
        "bbox": ("float32", (4,), True),
        "split": ("uint8", (), True),
        "frame_index": ("int32", (), True),
        "image_size": ("int32", (2,), True),
        "camera/intrinsic_matrix": ("float32", (3, 3), True),
        "camera/R": ("float32", (3, 3), True),
        "camera/t": ("float32", (3,), True),
        "camera/distortion_coeffs": ("float32", (5,), True),
        "camera/distortion_model": ("uint8", (), True),
        "camera/world_up": ("float32", (3,), True),
        "visibility": ("uint8", (n_joints,), True),
    }


CATEGORICAL_COLUMNS = ("subject", "sequence", "activity", "camera_name")
# name -> gzip compressed (JPEG bytes are already compressed)
BLOB_COLUMNS = {"image": False, "source_path": True, "mask": True}
VISIBLE, OCCLUDED, VISIBILITY_UNKNOWN = 1, 0, 255


@dataclasses.dataclass
class Example:
    """One person instance: its crop, box, 3D joints and the crop's camera."""

    world_coords: np.ndarray  # (J, 3) float32 mm, NaN for missing joints
    camera: Camera  # camera of the stored image (the crop)
    bbox: np.ndarray  # (4,) x, y, w, h in the stored image, pixels
    split: str  # train / val / test
    image: bytes = b""  # JPEG bytes of the stored image
    image_size: tuple[int, int] = (0, 0)  # width, height of the stored image
    subject: str = ""
    sequence: str = ""
    activity: str = ""
    camera_name: str = ""
    frame_index: int = -1
    source_path: str = ""  # raw-tree relative path of the source image or video (#frame appended)
    mask: bytes = b""  # person mask in the stored image as COCO compressed RLE counts; b"" = no mask
    visibility: np.ndarray | None = None  # (J,) uint8: 1 visible, 0 occluded, 255 unknown; None = all unknown

    def decode_mask(self) -> np.ndarray | None:
        from posebank.core.masks import decode

        return decode(self.mask, self.image_size[1], self.image_size[0]) if self.mask else None

    def decode_image(self) -> np.ndarray:
        """The stored crop as BGR pixels; :class:`~posebank.core.errors.DataError` if its bytes do not decode."""
        from posebank.core.jpeg import decode_jpeg

        return decode_jpeg(self.image, where=f"image of {self.source_path or 'example'}")


def _no_times_group(parent: h5py.Group, name: str) -> h5py.Group:
    """Create a group whose object header carries no timestamps (for byte-identical output)."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    gid = h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl)
    return h5py.Group(gid)


def _require_group(root: h5py.Group, path: str) -> h5py.Group:
    g = root
    for part in path.split("/"):
        g = g[part] if part in g else _no_times_group(g, part)
    return g


def _create(root: h5py.Group, path: str, shape, maxshape, dtype, chunks, compress: bool) -> h5py.Dataset:
    parent_path, _, name = path.rpartition("/")
    parent = _require_group(root, parent_path) if parent_path else root
    kw = dict(compression="gzip", compression_opts=4, shuffle=True) if compress else {}
    return parent.create_dataset(name, shape=shape, maxshape=maxshape, dtype=dtype, chunks=chunks,
                                 track_times=False, **kw)


class CacheWriter:
    """Streams examples into a new cache file; use as a context manager.

    On normal exit the file is finalised and atomically renamed to ``path``; on an exception the temporary
    file is removed and ``path`` is left untouched.
    """

    def __init__(self, path, dataset: str, joint_info: JointInfo, attrs: dict | None = None,
                 buffer_rows: int = ROWS_PER_CHUNK):
        self.path = Path(path)
        self.dataset = dataset
        self.joint_info = joint_info
        self.attrs = dict(attrs or {})
        self.buffer_rows = buffer_rows
        self._numeric = _numeric_columns(joint_info.n_joints)
        self._buffer: list[Example] = []
        self._categories: dict[str, dict[str, int]] = {c: {} for c in CATEGORICAL_COLUMNS}
        self._n = 0
        self._blob_sizes = {b: 0 for b in BLOB_COLUMNS}
        self._file: h5py.File | None = None
        self._atomic = None
        self.quarantine: list[dict] = []

    def __enter__(self) -> CacheWriter:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        # libver pinned so that the on-disk layout does not depend on the HDF5 library's defaults
        self._file = h5py.File(tmp, "w", libver=("v110", "v110"), track_order=False)
        f = self._file
        for name, (dtype, trailing, compress) in self._numeric.items():
            _create(f, name, (0, *trailing), (None, *trailing), dtype, (ROWS_PER_CHUNK, *trailing), compress)
        for name in CATEGORICAL_COLUMNS:
            _create(f, name, (0,), (None,), "int32", (ROWS_PER_CHUNK,), True)
        for name, compress in BLOB_COLUMNS.items():
            _create(f, f"{name}/data", (0,), (None,), "uint8", (BLOB_CHUNK_BYTES,), compress)
            offsets = _create(f, f"{name}/offsets", (1,), (None,), "int64", (ROWS_PER_CHUNK,), True)
            offsets[0] = 0
        return self

    def add(self, example: Example) -> None:
        wc = np.asarray(example.world_coords)
        if wc.shape != (self.joint_info.n_joints, 3):
            raise ValueError(f"world_coords shape {wc.shape} != ({self.joint_info.n_joints}, 3)")
        if example.split not in SPLITS:
            raise ValueError(f"split {example.split!r} not one of {SPLITS}")
        self._buffer.append(example)
        if len(self._buffer) >= self.buffer_rows:
            self._flush()

    def add_quarantine(self, path: str, reason: str, count: int = 1) -> None:
        """Record an input that was left out, with the reason (stored in the file, reported by ``info``)."""
        entry = {"path": str(path), "reason": reason}
        if count != 1:  # one entry standing for several frames (a sequence's worth), or for none (an empty file)
            entry["count"] = int(count)
        self.quarantine.append(entry)

    def _flush(self) -> None:
        if not self._buffer:
            return
        f, rows, n0 = self._file, self._buffer, self._n
        n1 = n0 + len(rows)
        cams = [r.camera for r in rows]
        values = {
            "world_coords": [r.world_coords for r in rows],
            "bbox": [r.bbox for r in rows],
            "split": [SPLITS.index(r.split) for r in rows],
            "frame_index": [r.frame_index for r in rows],
            "image_size": [r.image_size for r in rows],
            "camera/intrinsic_matrix": [c.intrinsic_matrix for c in cams],
            "camera/R": [c.R for c in cams],
            "camera/t": [c.t for c in cams],
            "camera/distortion_coeffs": [c.distortion_coeffs for c in cams],
            "camera/distortion_model": [DISTORTION_MODELS.index(c.distortion_model) for c in cams],
            "camera/world_up": [c.world_up for c in cams],
            "visibility": [np.full(self.joint_info.n_joints, VISIBILITY_UNKNOWN, np.uint8) if r.visibility is None
                           else r.visibility for r in rows],
        }
        for name, (dtype, _trailing, _c) in self._numeric.items():
            ds = f[name]
            ds.resize(n1, axis=0)
            ds[n0:n1] = np.asarray(values[name], dtype)
        for name in CATEGORICAL_COLUMNS:
            table = self._categories[name]
            codes = [table.setdefault(getattr(r, name), len(table)) for r in rows]
            ds = f[name]
            ds.resize(n1, axis=0)
            ds[n0:n1] = np.asarray(codes, np.int32)
        for name in BLOB_COLUMNS:
            items = [r.source_path.encode() if name == "source_path" else getattr(r, name) for r in rows]
            self._append_blobs(name, items)
        self._n = n1
        self._buffer = []

    def _append_blobs(self, name: str, items: Sequence[bytes]) -> None:
        data, offsets = self._file[f"{name}/data"], self._file[f"{name}/offsets"]
        start = self._blob_sizes[name]
        lengths = np.array([len(b) for b in items], np.int64)
        ends = start + np.cumsum(lengths)
        total = int(ends[-1]) if len(ends) else start
        data.resize(total, axis=0)
        if total > start:
            data[start:total] = np.frombuffer(b"".join(items), np.uint8)
        n_off = offsets.shape[0]
        offsets.resize(n_off + len(items), axis=0)
        offsets[n_off:] = ends
        self._blob_sizes[name] = total

    def _write_categories(self) -> None:
        f = self._file
        for name in CATEGORICAL_COLUMNS:
            labels = list(self._categories[name])
            g = _require_group(f, f"categories/{name}")
            enc = [s.encode() for s in labels]
            ends = np.cumsum([len(b) for b in enc], dtype=np.int64)
            d = g.create_dataset("data", data=np.frombuffer(b"".join(enc), np.uint8) if enc else
                                 np.zeros(0, np.uint8), track_times=False)
            del d
            g.create_dataset("offsets", data=np.concatenate([[0], ends]).astype(np.int64), track_times=False)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._flush()
                self._write_categories()
                f = self._file
                attrs = {
                    "format": FORMAT_NAME,
                    "format_version": FORMAT_VERSION,
                    "posebank_version": __version__,
                    "dataset": self.dataset,
                    "n_examples": self._n,
                    "joint_info": self.joint_info.to_json(),
                    "splits": json.dumps(list(SPLITS)),
                    "distortion_models": json.dumps(list(DISTORTION_MODELS)),
                    "quarantine": json.dumps(self.quarantine),
                    **{k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
                       for k, v in self.attrs.items()},
                }
                for k in sorted(attrs):
                    f.attrs[k] = attrs[k]
            self._file.close()
            self._file = None
        finally:
            if self._file is not None:
                with contextlib.suppress(Exception):
                    self._file.close()
            # renames the finished file over the target, or removes it after an error
            self._atomic.__exit__(exc_type, exc, tb)

    @property
    def n_examples(self) -> int:
        return self._n + len(self._buffer)


class Cache:
    """Lazy reader of a cache file. ``cache[i]`` reads one example; ``cache.read(a, b)`` a block of columns."""

    def __init__(self, path_or_fileobj):
        self.path = path_or_fileobj if not hasattr(path_or_fileobj, "read") else None
        try:
            self._f = h5py.File(path_or_fileobj, "r")
        except (OSError, ValueError) as e:
            raise CacheFormatError(path_or_fileobj, f"not an HDF5 file ({e})") from None
        a = self._f.attrs
        if a.get("format") != FORMAT_NAME:
            raise CacheFormatError(path_or_fileobj, f"not a posebank cache (format attribute {a.get('format')!r})")
        if int(a["format_version"]) > FORMAT_VERSION:
            raise CacheFormatError(path_or_fileobj, f"format version {a['format_version']} is newer than "
                                   f"this posebank reads ({FORMAT_VERSION})")
        self.joint_info = JointInfo.from_json(a["joint_info"])
        self.dataset = str(a["dataset"])
        self._categories: dict[str, list[str]] = {}

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self._f.attrs["n_examples"])

    @property
    def attrs(self) -> dict:
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in self._f.attrs.items()}

    @property
    def quarantine(self) -> list[dict]:
        return json.loads(self._f.attrs.get("quarantine", "[]"))

    def categories(self, name: str) -> list[str]:
        if name not in self._categories:
            g = self._f[f"categories/{name}"]
            data, offsets = g["data"][()].tobytes(), g["offsets"][()]
            self._categories[name] = [data[a:b].decode() for a, b in zip(offsets[:-1], offsets[1:])]
        return self._categories[name]

    def column(self, name: str, sel=slice(None)) -> np.ndarray:
        """A numeric or categorical column (categorical as integer codes), rows ``sel``."""
        return self._f[name][sel]

    def blob(self, name: str, i: int) -> bytes:
        off = self._f[f"{name}/offsets"][i:i + 2]
        return self._f[f"{name}/data"][off[0]:off[1]].tobytes()

    def blobs(self, name: str, start: int, stop: int) -> list[bytes]:
        off = self._f[f"{name}/offsets"][start:stop + 1]
        data = self._f[f"{name}/data"][off[0]:off[-1]].tobytes() if len(off) else b""
        return [data[a - off[0]:b - off[0]] for a, b in zip(off[:-1], off[1:])]

    def read(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Rows [start, stop) of every numeric and categorical column (strings decoded), no images."""
        stop = len(self) if stop is None else min(stop, len(self))
        out = {name: self._f[name][start:stop] for name in _numeric_columns(self.joint_info.n_joints)}
        for name in CATEGORICAL_COLUMNS:
            labels = np.array(self.categories(name), dtype=object)
            out[name] = labels[self._f[name][start:stop]] if len(labels) else np.array([], object)
        return out

    def iter_blocks(self, block_rows: int = 65536) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        for start in range(0, len(self), block_rows):
            yield start, self.read(start, start + block_rows)

    def examples(self, start: int = 0, stop: int | None = None, block_rows: int = ROWS_PER_CHUNK
                 ) -> Iterator[Example]:
        """Examples ``start`` to ``stop`` in order, read a block of rows at a time (a few reads per block instead of
        a few per example)."""
        stop = len(self) if stop is None else min(stop, len(self))
        for a in range(start, stop, block_rows):
            b = min(a + block_rows, stop)
            cols = self.read(a, b)
            blobs = {name: self.blobs(name, a, b) for name in BLOB_COLUMNS}
            for j in range(b - a):
                yield Example(
                    world_coords=cols["world_coords"][j],
                    camera=Camera(cols["camera/intrinsic_matrix"][j], cols["camera/R"][j], cols["camera/t"][j],
                                  cols["camera/distortion_coeffs"][j], cols["camera/world_up"][j],
                                  DISTORTION_MODELS[int(cols["camera/distortion_model"][j])]),
                    bbox=cols["bbox"][j], split=SPLITS[int(cols["split"][j])], image=blobs["image"][j],
                    image_size=tuple(int(v) for v in cols["image_size"][j]),
                    **{name: str(cols[name][j]) for name in CATEGORICAL_COLUMNS},
                    frame_index=int(cols["frame_index"][j]), source_path=blobs["source_path"][j].decode(),
                    mask=blobs["mask"][j], visibility=cols["visibility"][j])

    def camera(self, i: int) -> Camera:
        f = self._f
        return Camera(
            f["camera/intrinsic_matrix"][i], f["camera/R"][i], f["camera/t"][i],
            f["camera/distortion_coeffs"][i], f["camera/world_up"][i],
            DISTORTION_MODELS[int(f["camera/distortion_model"][i])])

    def __getitem__(self, i: int) -> Example:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"example {i} out of range for {n} examples")
        i = int(i) % n
        f = self._f
        return Example(
            world_coords=f["world_coords"][i], camera=self.camera(i), bbox=f["bbox"][i],
            split=SPLITS[int(f["split"][i])], image=self.blob("image", i),
            image_size=tuple(int(v) for v in f["image_size"][i]),
            **{name: self.categories(name)[int(f[name][i])] for name in CATEGORICAL_COLUMNS},
            frame_index=int(f["frame_index"][i]), source_path=self.blob("source_path", i).decode(),
            mask=self.blob("mask", i), visibility=f["visibility"][i])

    def split_counts(self) -> dict[str, int]:
        counts = np.zeros(len(SPLITS), np.int64)
        for start in range(0, len(self), 1 << 20):
            counts += np.bincount(self._f["split"][start:start + (1 << 20)], minlength=len(SPLITS))
        return {s: int(c) for s, c in zip(SPLITS, counts)}

    def distinct_pairs(self, a: str, b: str) -> int:
        """Number of distinct (a, b) combinations of two categorical columns, e.g. (subject, camera_name)."""
        seen: set[tuple[int, int]] = set()
        for start in range(0, len(self), 1 << 20):
            pairs = np.stack([self._f[a][start:start + (1 << 20)], self._f[b][start:start + (1 << 20)]], 1)
            seen.update(map(tuple, np.unique(pairs, axis=0).tolist()))
        return len(seen)

    def summary(self) -> dict:
        a = self.attrs
        counts = self.split_counts()
        size = os.path.getsize(self.path) if self.path is not None else None
        return {
            "dataset": self.dataset,
            "file": str(self.path) if self.path is not None else None,
            "size_bytes": size,
            "examples": len(self),
            "examples_per_split": counts,
            "joints": self.joint_info.n_joints,
            "joint_names": list(self.joint_info.names),
            "camera_names": len(self.categories("camera_name")),
            "cameras": self.distinct_pairs("subject", "camera_name"),
            "subjects": len(self.categories("subject")),
            "sequences": self.distinct_pairs("subject", "sequence"),
            "images": int(self._f["image/offsets"].shape[0] - 1),
            "image_bytes": int(self._f["image/offsets"][-1]),
            "masks": int(np.count_nonzero(np.diff(self._f["mask/offsets"][()]))),
            "quarantined": len(self.quarantine),
            "quarantined_frames": sum(int(q.get("count", 1)) for q in self.quarantine),
            "posebank_version": a.get("posebank_version"),
            "params_digest": a.get("params_digest"),
        }
