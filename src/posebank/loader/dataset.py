"""A torch ``Dataset`` over a merge or a single cache: one dict per example, ready for a ``DataLoader``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from posebank.core.errors import UsageError
from posebank.core.store import SPLITS, Cache
from posebank.merging.reader import Merge
from posebank.merging.skeleton import NAMED_SKELETONS
from posebank.merging.store import is_merge_file

try:  # the loader is a torch Dataset when torch is there (posebank's requirements include it)
    from torch.utils.data import Dataset as _Base
except ImportError:  # pragma: no cover - torch is a dependency
    _Base = object


def _letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``image`` scaled to fit ``size`` x ``size`` and centred on a black square; the 3x3 pixel transform."""
    import cv2

    h, w = image.shape[:2]
    s = size / max(h, w)
    dx, dy = (size - w * s) / 2, (size - h * s) / 2
    A = np.array([[s, 0, dx + 0.5 * s - 0.5], [0, s, dy + 0.5 * s - 0.5], [0, 0, 1]], np.float64)
    flags = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    out = cv2.warpAffine(image, A[:2], (size, size), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    return out, A


class PoseDataset(_Base):
    """The examples of one split of a merge (``posebank merge``) or of one dataset cache.

    ``ds[i]`` is a dict: ``image`` (H x W x 3 uint8 RGB: the stored crop, or with ``output_size`` letterboxed into a
    square of that side, the camera adjusted), ``mask`` (H x W uint8, 1 = person; zeros when ``has_mask`` is
    false), ``bbox`` (4,) x y w h, ``intrinsic_matrix`` (3, 3), ``R`` (3, 3), ``t`` (3,) (world -> camera is
    ``R @ (X - t)``), ``distortion_coeffs`` (5,), ``world_coords`` (J, 3) float32 mm with NaN where absent,
    ``joint_valid`` (J,) bool, ``source`` (dataset name), ``index`` and ``source_row``. J is the union skeleton of a
    merge (the cache's joints for a cache), or the named ``skeleton`` (e.g. ``h36m_17``, ``smpl_24``: see
    ``skeletons``). HDF5 files are opened in the process that reads (each ``DataLoader`` worker its own).
    """

    def __init__(self, path, split: str = "train", skeleton: str | None = None, cache_dir=None,
                 output_size: int | None = None, verify: bool = True):
        if split not in SPLITS:
            raise UsageError(f"split {split!r}", f"not a split; splits: {', '.join(SPLITS)}")
        self.path = Path(path)
        if not self.path.exists():
            raise UsageError(self.path, "no such merge or cache")
        self.split = split
        self.cache_dir = cache_dir
        self.output_size = output_size
        self.verify = verify
        self.is_merge = is_merge_file(self.path)
        self._pid = None
        self._reader = None
        r = self._open()
        code = SPLITS.index(split)
        if self.is_merge:
            self.start, stop = r.split_range(split)
            self._rows = None
            self.n = stop - self.start
            self.joint_names = list(r.joint_info.names)
            self.skeletons = dict(r.skeletons)
            self.sources = [s["dataset"] for s in r.sources]
            self._source_ranges = {}
            for seg in r.segments:
                if seg.split == code:
                    a = seg.start - self.start
                    self._source_ranges.setdefault(self.sources[seg.source], []).append((a, a + seg.count))
        else:
            self._rows = np.flatnonzero(r.column("split") == code)
            self.start, self.n = 0, len(self._rows)
            self.joint_names = list(r.joint_info.names)
            ids = {n: i for i, n in enumerate(self.joint_names)}
            self.skeletons = {name: [ids[n] for n in names.split(",")]
                              for name, (_suffix, names) in NAMED_SKELETONS.items()
                              if names is not None and all(n in ids for n in names.split(","))}
            self.sources = [r.dataset]
            self._source_ranges = {r.dataset: [(0, self.n)]} if self.n else {}
        self.skeleton = skeleton
        self._select = None
        if skeleton is not None:
            if skeleton not in self.skeletons:
                raise UsageError(f"skeleton {skeleton!r}", f"not available in {self.path.name}; available: "
                                 f"{', '.join(self.skeletons) or 'none'}")
            self._select = np.asarray(self.skeletons[skeleton], np.int64)
            self.joint_names = [self.joint_names[i] for i in self._select]

    # ------------------------------------------------------------------------------------------ process-local
    def _open(self):
        if self._reader is None or self._pid != os.getpid():
            self._reader = (Merge(self.path, cache_dir=self.cache_dir, verify=self.verify) if self.is_merge
                            else Cache(self.path))
            self._pid = os.getpid()
        return self._reader

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_reader"] = None  # HDF5 handles never cross process boundaries
        state["_pid"] = None
        return state

    def close(self) -> None:
        if self._reader is not None and self._pid == os.getpid():
            self._reader.close()
        self._reader = None

    # ------------------------------------------------------------------------------------------ items
    def __len__(self) -> int:
        return self.n

    def source_indices(self) -> dict[str, np.ndarray]:
        """Indices of this dataset (0 .. len-1) per source, for the samplers."""
        return {name: np.concatenate([np.arange(a, b) for a, b in ranges])
                for name, ranges in self._source_ranges.items()}

    def sampler_params(self) -> dict:
        """The sampler the merge was composed with (params.yaml ``merges.<name>.sampler``); uniform for a cache."""
        if not self.is_merge:
            return {"kind": "uniform", "seed": 0}
        import json

        raw = self._open().attrs.get("sampler")
        return json.loads(raw) if raw else {"kind": "uniform", "seed": 0}

    def _record(self, i: int) -> dict:
        r = self._open()
        if self.is_merge:
            k, j = r.locate(self.start + i)
            g = r.local
            row = int(g(k, "row", j))
            cols = {name: g(k, name, j) for name in ("world_coords", "bbox", "image_size", "camera/intrinsic_matrix",
                                                    "camera/R", "camera/t", "camera/distortion_coeffs")}
            coords = np.full((len(r.joint_info.names), 3), np.nan, np.float32)
            coords[r.joint_maps[k]] = cols["world_coords"]
            cache = r.source_cache(k)
            source = r.sources[k]["dataset"]
        else:
            row = int(self._rows[i])
            cache = r
            cols = {name: r.column(name, row) for name in ("bbox", "image_size", "camera/intrinsic_matrix",
                                                           "camera/R", "camera/t", "camera/distortion_coeffs")}
            coords = r.column("world_coords", row).astype(np.float32)
            source = r.dataset
        return {"row": row, "cache": cache, "coords": coords, "cols": cols, "source": source}

    def __getitem__(self, i: int) -> dict:
        import cv2

        from posebank.core.jpeg import decode_jpeg
        from posebank.core.masks import decode as decode_mask

        if not -self.n <= i < self.n:
            raise IndexError(f"example {i} out of range for {self.n} examples")
        i = int(i) % self.n
        rec = self._record(i)
        cache, row, cols = rec["cache"], rec["row"], rec["cols"]
        image = cv2.cvtColor(decode_jpeg(cache.blob("image", row), where=f"image of {rec['source']} row {row}"),
                             cv2.COLOR_BGR2RGB)
        h, w = image.shape[:2]
        blob = cache.blob("mask", row)
        mask = decode_mask(blob, h, w).astype(np.uint8) if blob else np.zeros((h, w), np.uint8)
        K = cols["camera/intrinsic_matrix"].astype(np.float32)
        bbox = cols["bbox"].astype(np.float32)
        if self.output_size is not None:
            image, A = _letterbox(image, int(self.output_size))
            mask = cv2.warpAffine(mask, A[:2], image.shape[1::-1], flags=cv2.INTER_NEAREST)
            K = (A @ K.astype(np.float64)).astype(np.float32)
            s = A[0, 0]
            bbox = np.array([s * bbox[0] + A[0, 2], s * bbox[1] + A[1, 2], s * bbox[2], s * bbox[3]], np.float32)
        coords = rec["coords"]
        if self._select is not None:
            coords = coords[self._select]
        return {"image": image, "mask": mask, "has_mask": bool(blob), "bbox": bbox, "intrinsic_matrix": K,
                "R": cols["camera/R"].astype(np.float32), "t": cols["camera/t"].astype(np.float32),
                "distortion_coeffs": cols["camera/distortion_coeffs"].astype(np.float32),
                "world_coords": coords, "joint_valid": np.isfinite(coords).all(axis=1),
                "source": rec["source"], "index": i, "source_row": row}


def collate(batch: list[dict]) -> dict:
    """``DataLoader`` collate: arrays stacked into tensors; images and masks stacked when their sizes agree (with
    ``output_size``), else kept as lists; strings as lists."""
    import torch

    out = {}
    for key in batch[0]:
        values = [b[key] for b in batch]
        if isinstance(values[0], np.ndarray):
            if all(v.shape == values[0].shape for v in values):
                out[key] = torch.from_numpy(np.stack(values))
            else:
                out[key] = [torch.from_numpy(v) for v in values]
        elif isinstance(values[0], (bool, int, float, np.bool_)):
            out[key] = torch.tensor(values)
        else:
            out[key] = values
    return out
