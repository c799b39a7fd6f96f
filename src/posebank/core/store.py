"""The dataset cache (specified in docs/format.md): a folder of shards, each a self-contained columnar, chunked
HDF5 file, and ``index.json`` (shard list, row ranges, digests, counts, quarantine), or one such file alone.

Writing is streaming (bounded memory), atomic (a temporary file in the destination folder is renamed over
the destination only after it was completely written and closed) and deterministic (no timestamps, fixed
chunking and compression, rows in the order given), so identical input gives a byte-identical file.

Reading is lazy: :class:`Cache` opens a folder or a single file alike, with global row numbers; a row is read
from the one shard that holds it, and a shard is opened when first touched.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np

from posebank import __version__
from posebank.core import bodymodel
from posebank.core.atomic import atomic_path, write_bytes
from posebank.core.bodymodel import BodyModelFit
from posebank.core.camera import DISTORTION_MODELS, Camera
from posebank.core.errors import CacheFormatError
from posebank.core.skeleton import JointInfo

FORMAT_NAME = "posebank.cache"
FORMAT_VERSION = 2  # 2: 2D keypoints, intrinsics-only cameras, body-model fits (version-1 files read as without)
INDEX_NAME = "index.json"  # a folder cache's index, written after its shards
INDEX_FORMAT = "posebank.cache-index"
INDEX_VERSION = 1
SPLITS = ("train", "val", "test")
ROWS_PER_CHUNK = 1024
BLOB_CHUNK_BYTES = 1 << 20
MAX_OPEN_SHARDS = 16  # a folder cache keeps at most this many shard files open (each holds HDF5 chunk caches)

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
        **V2_COLUMNS(n_joints),
    }


def V2_COLUMNS(n_joints: int) -> dict[str, tuple[str, tuple[int, ...], bool]]:  # noqa: N802 - a table
    """The columns format version 2 added: what a version-1 file reads as (:data:`V2_DEFAULTS`) is what a version-2
    writer stores for an example without them."""
    return {
        "keypoints2d": ("float32", (n_joints, 2), True),  # pixels in the crop, NaN = absent
        "camera/has_extrinsics": ("uint8", (), True),  # 0: intrinsics only (2D-only images: R = I, t = 0)
        "body_model/has": ("uint8", (), True),
        "body_model/model": ("uint8", (), True),  # index into bodymodel.MODELS
        "body_model/gender": ("uint8", (), True),  # index into bodymodel.GENDERS
        "body_model/pose": ("float64", (bodymodel.MAX_POSE,), True),  # axis-angle, world frame, zero-padded
        "body_model/betas": ("float64", (bodymodel.MAX_BETAS,), True),  # zero-padded
        "body_model/n_betas": ("uint8", (), True),
        "body_model/trans": ("float64", (3,), True),  # metres, world frame
        "body_model/root": ("float64", (3,), True),  # metres, model rest frame; NaN = unknown
        "body_model/global_orient_cam": ("float64", (3,), True),  # axis-angle in the crop camera's frame
        "body_model/trans_cam": ("float64", (3,), True),  # metres, crop camera's frame; NaN = unknown
    }


# what a version-1 file's rows read as in the version-2 columns (and what an example without them stores)
V2_DEFAULTS = {"keypoints2d": np.nan, "camera/has_extrinsics": 1, "body_model/root": np.nan,
               "body_model/global_orient_cam": np.nan, "body_model/trans_cam": np.nan}


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
    keypoints2d: np.ndarray | None = None  # (J, 2) pixels in the stored image, NaN = absent; None = all absent
    has_extrinsics: bool = True  # False: the camera is intrinsics only (R = I, t = 0), no 3D
    body_model: BodyModelFit | None = None  # the person's fit, world frame
    body_model_cam: tuple[np.ndarray, np.ndarray] | None = None  # (global orientation, translation) in the crop camera

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


def _create(root: h5py.Group, path: str, shape, maxshape, dtype, chunks, compress: bool | str) -> h5py.Dataset:
    """A chunked, resizable dataset; ``compress``: True = gzip 4 + shuffle, ``"lzf"`` = LZF + shuffle (h5py's
    built-in filter: several times faster to write, slightly larger), False = none."""
    parent_path, _, name = path.rpartition("/")
    parent = _require_group(root, parent_path) if parent_path else root
    kw = (dict(compression="lzf", shuffle=True) if compress == "lzf"
          else dict(compression="gzip", compression_opts=4, shuffle=True) if compress else {})
    return parent.create_dataset(name, shape=shape, maxshape=maxshape, dtype=dtype, chunks=chunks,
                                 track_times=False, **kw)


def _v2_values(rows: Sequence[Example], n_joints: int) -> dict[str, np.ndarray]:
    n = len(rows)
    out = {}
    for name, (dtype, trailing, _c) in V2_COLUMNS(n_joints).items():
        out[name] = np.full((n, *trailing), V2_DEFAULTS.get(name, 0), dtype)
    for i, r in enumerate(rows):
        if r.keypoints2d is not None:
            out["keypoints2d"][i] = np.asarray(r.keypoints2d, np.float32).reshape(n_joints, 2)
        out["camera/has_extrinsics"][i] = bool(r.has_extrinsics)
        b = r.body_model
        if b is not None:
            out["body_model/has"][i] = 1
            out["body_model/model"][i] = bodymodel.MODELS.index(b.model)
            out["body_model/gender"][i] = bodymodel.GENDERS.index(b.gender)
            out["body_model/pose"][i, :b.pose.size] = b.pose
            out["body_model/betas"][i, :b.betas.size] = b.betas
            out["body_model/n_betas"][i] = b.betas.size
            out["body_model/trans"][i] = b.trans
            if b.root is not None:
                out["body_model/root"][i] = b.root
            if r.body_model_cam is not None:
                out["body_model/global_orient_cam"][i], out["body_model/trans_cam"][i] = r.body_model_cam
    return out


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
        if example.keypoints2d is not None and np.shape(example.keypoints2d) != (self.joint_info.n_joints, 2):
            raise ValueError(f"keypoints2d shape {np.shape(example.keypoints2d)} != ({self.joint_info.n_joints}, 2)")
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
            **_v2_values(rows, self.joint_info.n_joints),
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


class CacheFile:
    """Lazy reader of one cache file (a single-file cache or one shard of a folder cache)."""

    def __init__(self, path_or_fileobj):
        self.path = path_or_fileobj if not hasattr(path_or_fileobj, "read") else None
        try:
            self._f = h5py.File(path_or_fileobj, "r")
        except (OSError, ValueError) as e:
            raise CacheFormatError(path_or_fileobj, f"not an HDF5 file ({e})") from None
        a = self._f.attrs
        if a.get("format") != FORMAT_NAME:
            self._f.close()
            raise CacheFormatError(path_or_fileobj, f"not a posebank cache (format attribute {a.get('format')!r})")
        version = int(a["format_version"])  # read before the file is closed: the message names it
        if version > FORMAT_VERSION:
            self._f.close()
            raise CacheFormatError(path_or_fileobj, f"format version {version} is newer than this posebank reads "
                                   f"({FORMAT_VERSION})")
        self.joint_info = JointInfo.from_json(a["joint_info"])
        self.dataset = str(a["dataset"])
        self._n = int(a["n_examples"])
        self._categories: dict[str, list[str]] = {}
        # the names this file holds, looked up once (a merge reads many small blocks); the datasets themselves are
        # opened per read: an open dataset keeps its chunk cache (up to 1 MB), and a folder cache has up to 16
        # shard files open
        self._names: set[str] = set()

    def close(self) -> None:
        self._f.close()

    def __len__(self) -> int:
        return self._n

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
        if name not in self._names:
            if name not in self._f and name in V2_COLUMNS(1):  # a version-1 file: the column as without the data
                dtype, trailing, _c = V2_COLUMNS(self.joint_info.n_joints)[name]
                rows = np.arange(len(self))[sel]
                return np.full((*np.shape(rows), *trailing), V2_DEFAULTS.get(name, 0), dtype)
            self._names.add(name)
        return self._f[name][sel]

    @property
    def format_version(self) -> int:
        return int(self._f.attrs["format_version"])

    def blobs(self, name: str, start: int, stop: int) -> list[bytes]:
        off = self._f[f"{name}/offsets"][start:stop + 1]
        data = self._f[f"{name}/data"][off[0]:off[-1]].tobytes() if len(off) else b""
        return [data[a - off[0]:b - off[0]] for a, b in zip(off[:-1], off[1:])]

    def blob_stats(self, name: str) -> tuple[int, int, int]:
        """(rows, total bytes, non-empty rows) of a blob column."""
        offsets = self._f[f"{name}/offsets"][()]
        return int(offsets.shape[0] - 1), int(offsets[-1]), int(np.count_nonzero(np.diff(offsets)))


def is_folder_cache(path) -> bool:
    return Path(path).is_dir() and (Path(path) / INDEX_NAME).is_file()


def read_index(folder) -> dict:
    """The index of a folder cache, checked; CacheFormatError naming the file when it is not one."""
    path = Path(folder) / INDEX_NAME
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise CacheFormatError(folder, f"not a posebank cache folder (no {INDEX_NAME}; is the crop stage "
                               "finished?)") from None
    except (OSError, ValueError) as e:
        raise CacheFormatError(path, f"unreadable index ({e})") from None
    found = index.get("format") if isinstance(index, dict) else None
    if found != INDEX_FORMAT:
        raise CacheFormatError(path, f"not a posebank cache index (format {found!r})")
    if int(index.get("format_version", 0)) > INDEX_VERSION:
        raise CacheFormatError(path, f"index format version {index['format_version']} is newer than this "
                               f"posebank reads ({INDEX_VERSION})")
    for key in ("dataset", "joint_info", "n_examples", "shards", "attrs"):
        if key not in index:
            raise CacheFormatError(path, f"index lacks {key!r}")
    # the shards' version as the index records it: refused here, before a shard is opened (a merge would otherwise
    # read a folder whose index says its shards are of a format this posebank does not know)
    if int(index.get("cache_format_version", 1)) > FORMAT_VERSION:
        raise CacheFormatError(path, f"cache format version {index['cache_format_version']} (its shards') is newer "
                               f"than this posebank reads ({FORMAT_VERSION})")
    return index


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def write_index(folder, dataset: str, joint_info: JointInfo, shard_files: Sequence[Path], attrs: dict,
                quarantine: Sequence[dict] = (), state=None) -> dict:
    """Write ``folder/index.json`` (atomically, last; left untouched when unchanged) for the shard files given in
    row order: their row ranges, sizes, SHA-256 digests, split counts and quarantine. ``quarantine`` (e.g. what
    was dropped at conversion) comes before the shards' own entries. The index holds no times, so equal shards give
    an equal index. ``state`` (a JSON file outside the cache, e.g. in the interim folder) remembers each shard's
    size, time and SHA-256, so an unchanged shard is not re-read to hash it. Returns the index."""
    folder = Path(folder)
    previous = {}
    if state is not None and Path(state).is_file():
        with contextlib.suppress(OSError, ValueError, TypeError):
            previous = dict(json.loads(Path(state).read_text()))
    shards, entries, totals, start = [], list(quarantine), dict.fromkeys(SPLITS, 0), 0
    hashed: dict[str, list] = {}
    for path in shard_files:
        path = Path(path)
        part = CacheFile(path)
        try:
            a = part.attrs
            if part.dataset != dataset or part.joint_info.to_json() != joint_info.to_json():
                raise CacheFormatError(path, f"shard of another dataset or joint set ({part.dataset})")
            counts = dict(zip(SPLITS, np.bincount(part.column("split"), minlength=len(SPLITS)).tolist()))
            n = len(part)
            entries.extend(part.quarantine)
        finally:
            part.close()
        st = path.stat()
        seen = [a.get("digest"), st.st_size, st.st_mtime_ns]
        old = previous.get(path.name)
        sha = old[1] if isinstance(old, list) and len(old) == 2 and old[0] == seen else sha256_file(path)
        hashed[path.name] = [seen, sha]
        shards.append({"file": path.name, "shard": a.get("shard", path.stem), "start": start, "stop": start + n,
                       "examples_per_split": counts, "bytes": st.st_size, "digest": a.get("digest"),
                       "sha256": sha})
        for k, v in counts.items():
            totals[k] += v
        start += n
    index = {"format": INDEX_FORMAT, "format_version": INDEX_VERSION, "cache_format": FORMAT_NAME,
             "cache_format_version": FORMAT_VERSION, "posebank_version": __version__, "dataset": dataset,
             "joint_info": joint_info.to_json(), "n_examples": start, "examples_per_split": totals,
             "n_shards": len(shards), "shards": shards, "quarantine": entries,
             "attrs": {k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
                       for k, v in sorted(attrs.items())}}
    path = folder / INDEX_NAME
    text = json.dumps(index, indent=2, sort_keys=True) + "\n"
    if not path.is_file() or path.read_text() != text:  # an unchanged index is left untouched
        write_bytes(path, text.encode())
    if state is not None:
        write_bytes(state, json.dumps(hashed, sort_keys=True).encode())
    return index


class Cache:
    """Lazy reader of a cache: a folder (``index.json`` + shards) or a single file, with global row numbers.

    ``cache[i]`` reads one example (from one shard); ``cache.read(a, b)`` a block of columns; categorical columns
    come as codes into ``categories(name)``, which for a folder is the union of its shards' labels in order.
    """

    def __init__(self, path_or_fileobj, max_open: int | None = None):
        """``max_open``: shard files kept open at most (default MAX_OPEN_SHARDS; a reader going through the cache
        in order needs 2)."""
        is_fileobj = hasattr(path_or_fileobj, "read")
        self.path = None if is_fileobj else Path(path_or_fileobj)
        self.max_open = max(1, int(MAX_OPEN_SHARDS if max_open is None else max_open))
        self.index: dict | None = None
        self._categories: dict[str, list[str]] = {}
        self._remaps: dict[tuple[int, str], np.ndarray] = {}
        if not is_fileobj and self.path.is_dir():
            self.index = read_index(self.path)
            self.joint_info = JointInfo.from_json(self.index["joint_info"])
            self.dataset = str(self.index["dataset"])
            self._shards = self.index["shards"]
            self._starts = [int(s["start"]) for s in self._shards]
            self._parts: list[CacheFile | None] = [None] * len(self._shards)
            self._open: list[int] = []  # the open shards, least recently used first
            self._n = int(self.index["n_examples"])
        else:
            part = CacheFile(path_or_fileobj)
            self.joint_info, self.dataset = part.joint_info, part.dataset
            self._shards = [{"file": None, "start": 0, "stop": len(part)}]
            self._starts = [0]
            self._parts = [part]
            self._n = len(part)

    # ------------------------------------------------------------------------------------------ parts
    def _part(self, k: int) -> CacheFile:
        """Shard k, opened on first use; the least recently used one is closed beyond ``max_open`` (memory stays
        bounded however many shards a pass reads)."""
        part = self._parts[k]
        if part is not None and self.index is not None and self._open[-1] != k:
            self._open.remove(k)
            self._open.append(k)
        if part is None:
            shard = self._shards[k]
            path = self.path / shard["file"]
            if not path.is_file():
                raise CacheFormatError(path, f"shard listed in {INDEX_NAME} is missing")
            part = CacheFile(path)
            n = len(part)
            if n != int(shard["stop"]) - int(shard["start"]):
                part.close()
                raise CacheFormatError(path, f"holds {n} examples, {INDEX_NAME} says "
                                       f"{int(shard['stop']) - int(shard['start'])}: the shard changed after the "
                                       "index was written (rebuild the cache)")
            self._parts[k] = part
            self._open.append(k)
            if len(self._open) > self.max_open:
                oldest = self._open.pop(0)
                self._parts[oldest].close()
                self._parts[oldest] = None
        return part

    def _spans(self, start: int, stop: int) -> Iterator[tuple[int, int, int]]:
        """(shard, local start, local stop) covering global rows [start, stop)."""
        if start >= stop:
            return
        k = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while start < stop and k < len(self._shards):
            s0, s1 = int(self._shards[k]["start"]), int(self._shards[k]["stop"])
            if s1 > start:
                b = min(stop, s1)
                yield k, start - s0, b - s0
                start = b
            k += 1

    def _locate(self, i: int) -> tuple[int, int]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"example {i} out of range for {n} examples")
        i = int(i) % n
        k = bisect.bisect_right(self._starts, i) - 1
        return k, i - int(self._shards[k]["start"])

    def _remap(self, k: int, name: str) -> np.ndarray:
        """Shard k's codes of a categorical column -> the cache's codes."""
        key = (k, name)
        if key not in self._remaps:
            table = {label: j for j, label in enumerate(self.categories(name))}
            self._remaps[key] = np.array([table[label] for label in self._part(k).categories(name)], np.int32)
        return self._remaps[key]

    def release(self) -> None:
        """Close a folder cache's open shard files (they reopen when read again): a pass over one cache of many
        does not hold them all open. A single-file cache stays open."""
        if self.index is not None:
            self.close()

    def close(self) -> None:
        for part in self._parts:
            if part is not None:
                part.close()
        if self.index is not None:
            self._parts, self._open = [None] * len(self._parts), []

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return self._n

    @property
    def n_shards(self) -> int:
        return len(self._shards)

    @property
    def files(self) -> list[Path]:
        """The files of the cache (a folder's index and shards, or the single file)."""
        if self.index is None:
            return [self.path] if self.path is not None else []
        return [self.path / INDEX_NAME] + [self.path / s["file"] for s in self._shards]

    @property
    def attrs(self) -> dict:
        if self.index is None:
            return self._parts[0].attrs
        return {**self.index["attrs"], "format": FORMAT_NAME,
                "format_version": int(self.index.get("cache_format_version", 1)),
                "dataset": self.dataset, "n_examples": self._n, "joint_info": self.index["joint_info"],
                "posebank_version": self.index.get("posebank_version"),
                "quarantine": json.dumps(self.quarantine)}

    @property
    def quarantine(self) -> list[dict]:
        return list(self.index["quarantine"]) if self.index is not None else self._parts[0].quarantine

    def categories(self, name: str) -> list[str]:
        if self.index is None:
            return self._parts[0].categories(name)
        if name not in self._categories:
            seen: dict[str, None] = {}
            for k in range(len(self._shards)):
                seen.update(dict.fromkeys(self._part(k).categories(name)))
            self._categories[name] = list(seen)
        return self._categories[name]

    # ------------------------------------------------------------------------------------------ rows
    def _local_column(self, k: int, name: str, sel) -> np.ndarray:
        values = self._part(k).column(name, sel)
        if self.index is not None and name in CATEGORICAL_COLUMNS:
            values = self._remap(k, name)[values]
        return values

    def column(self, name: str, sel=slice(None)) -> np.ndarray:
        """A numeric or categorical column (categorical as integer codes), rows ``sel`` (a slice, an index or an
        array of indices)."""
        if self.index is None and name not in CATEGORICAL_COLUMNS and (isinstance(sel, slice) or np.ndim(sel) == 0):
            return self._parts[0].column(name, sel)
        if isinstance(sel, slice):
            start, stop, step = sel.indices(len(self))
            if step == 1:
                pieces = [self._local_column(k, name, slice(a, b)) for k, a, b in self._spans(start, stop)]
                return np.concatenate(pieces) if pieces else self._empty(name)
            sel = np.arange(start, stop, step)
        if np.ndim(sel) == 0:
            k, j = self._locate(int(sel))
            return self._local_column(k, name, j)
        sel = np.asarray(sel)
        if sel.dtype == bool:  # a row mask
            if sel.shape != (len(self),):
                raise IndexError(f"a row mask needs {len(self)} entries, got shape {sel.shape}")
            sel = np.flatnonzero(sel)
        ids = sel.astype(np.int64).reshape(-1)
        if ids.size == 0:
            return self._empty(name)
        ids = np.where(ids < 0, ids + len(self), ids)
        if ids.min() < 0 or ids.max() >= len(self):
            raise IndexError(f"rows out of range for {len(self)} examples")
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        shard_of = np.searchsorted(self._starts, sorted_ids, side="right") - 1
        out = None
        for k in np.unique(shard_of):
            mask = shard_of == k
            local = sorted_ids[mask] - int(self._shards[k]["start"])
            uniq, inverse = np.unique(local, return_inverse=True)  # h5py wants increasing, distinct indices
            values = self._local_column(int(k), name, uniq)[inverse]
            if out is None:
                out = np.empty((len(ids), *values.shape[1:]), values.dtype)
            out[order[mask]] = values
        return out

    def _empty(self, name: str) -> np.ndarray:
        if name in CATEGORICAL_COLUMNS:
            return np.zeros(0, np.int32)
        columns = _numeric_columns(self.joint_info.n_joints)
        if name not in columns:
            raise KeyError(f"no column {name!r}")
        dtype, trailing, _ = columns[name]
        return np.zeros((0, *trailing), dtype)

    def blob(self, name: str, i: int) -> bytes:
        k, j = self._locate(i)
        return self._part(k).blobs(name, j, j + 1)[0]

    def blobs(self, name: str, start: int, stop: int) -> list[bytes]:
        out: list[bytes] = []
        for k, a, b in self._spans(start, min(stop, len(self))):
            out.extend(self._part(k).blobs(name, a, b))
        return out

    def read(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Rows [start, stop) of every numeric and categorical column (strings decoded), no images."""
        stop = len(self) if stop is None else min(stop, len(self))
        names = list(_numeric_columns(self.joint_info.n_joints))
        out = {name: self.column(name, slice(start, stop)) for name in names}
        for name in CATEGORICAL_COLUMNS:
            labels = np.array(self.categories(name), dtype=object)
            codes = self.column(name, slice(start, stop))
            out[name] = labels[codes] if len(labels) else np.array([], object)
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
                yield _example(cols, blobs, j)

    def camera(self, i: int) -> Camera:
        k, j = self._locate(i)
        f = self._part(k)
        return Camera(
            f.column("camera/intrinsic_matrix", j), f.column("camera/R", j), f.column("camera/t", j),
            f.column("camera/distortion_coeffs", j), f.column("camera/world_up", j),
            DISTORTION_MODELS[int(f.column("camera/distortion_model", j))])

    def __getitem__(self, i: int) -> Example:
        k, j = self._locate(i)
        start = int(self._shards[k]["start"]) + j
        return next(self.examples(start, start + 1, 1))

    def split_counts(self) -> dict[str, int]:
        if self.index is not None:
            return {s: int(self.index["examples_per_split"].get(s, 0)) for s in SPLITS}
        counts = np.zeros(len(SPLITS), np.int64)
        for start in range(0, len(self), 1 << 20):
            counts += np.bincount(self.column("split", slice(start, start + (1 << 20))), minlength=len(SPLITS))
        return {s: int(c) for s, c in zip(SPLITS, counts)}

    def distinct_pairs(self, a: str, b: str) -> int:
        """Number of distinct (a, b) combinations of two categorical columns, e.g. (subject, camera_name)."""
        seen: set[tuple[int, int]] = set()
        for start in range(0, len(self), 1 << 20):
            sel = slice(start, start + (1 << 20))
            pairs = np.stack([self.column(a, sel), self.column(b, sel)], 1)
            seen.update(map(tuple, np.unique(pairs, axis=0).tolist()))
        return len(seen)

    def summary(self) -> dict:
        a = self.attrs
        counts = self.split_counts()
        images = image_bytes = masks = 0
        for k in range(len(self._shards)):
            part = self._part(k)
            n, size, _ = part.blob_stats("image")
            images, image_bytes = images + n, image_bytes + size
            masks += part.blob_stats("mask")[2]
        size = sum(p.stat().st_size for p in self.files) if self.path is not None else None
        return {
            "dataset": self.dataset,
            "file": str(self.path) if self.path is not None else None,
            "layout": "folder" if self.index is not None else "file",
            "shards": len(self._shards),
            "size_bytes": size,
            "examples": len(self),
            "examples_per_split": counts,
            "joints": self.joint_info.n_joints,
            "joint_names": list(self.joint_info.names),
            "camera_names": len(self.categories("camera_name")),
            "cameras": self.distinct_pairs("subject", "camera_name"),
            "subjects": len(self.categories("subject")),
            "sequences": self.distinct_pairs("subject", "sequence"),
            "images": images,
            "image_bytes": image_bytes,
            "masks": masks,
            "quarantined": len(self.quarantine),
            "quarantined_frames": sum(int(q.get("count", 1)) for q in self.quarantine),
            "posebank_version": a.get("posebank_version"),
            "params_digest": a.get("params_digest"),
        }


def _example(cols: dict, blobs: dict, j: int) -> Example:
    return Example(
        world_coords=cols["world_coords"][j],
        camera=Camera(cols["camera/intrinsic_matrix"][j], cols["camera/R"][j], cols["camera/t"][j],
                      cols["camera/distortion_coeffs"][j], cols["camera/world_up"][j],
                      DISTORTION_MODELS[int(cols["camera/distortion_model"][j])]),
        bbox=cols["bbox"][j], split=SPLITS[int(cols["split"][j])], image=blobs["image"][j],
        image_size=tuple(int(v) for v in cols["image_size"][j]),
        **{name: str(cols[name][j]) for name in CATEGORICAL_COLUMNS},
        frame_index=int(cols["frame_index"][j]), source_path=blobs["source_path"][j].decode(),
        mask=blobs["mask"][j], visibility=cols["visibility"][j],
        keypoints2d=None if np.isnan(cols["keypoints2d"][j]).all() else cols["keypoints2d"][j],
        has_extrinsics=bool(cols["camera/has_extrinsics"][j]), **_body_model(cols, j))


def _body_model(cols: dict, j: int) -> dict:
    if not cols["body_model/has"][j]:
        return {}
    model = bodymodel.MODELS[int(cols["body_model/model"][j])]
    root = cols["body_model/root"][j]
    fit = BodyModelFit(model, bodymodel.GENDERS[int(cols["body_model/gender"][j])],
                       cols["body_model/pose"][j, :bodymodel.POSE_SIZE[model]],
                       cols["body_model/betas"][j, :int(cols["body_model/n_betas"][j])], cols["body_model/trans"][j],
                       None if np.isnan(root).any() else root)
    return {"body_model": fit, "body_model_cam": (cols["body_model/global_orient_cam"][j],
                                                  cols["body_model/trans_cam"][j])}
