"""Person masks as COCO run-length encoding (the compressed ``counts`` string of pycocotools)."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask


def encode(mask) -> bytes:
    """Binary mask (H, W) -> COCO compressed RLE counts (bytes); the size is the image's."""
    m = np.asfortranarray(np.asarray(mask, dtype=bool).astype(np.uint8))
    return coco_mask.encode(m)["counts"]


def decode(counts: bytes, height: int, width: int) -> np.ndarray:
    """COCO compressed RLE counts -> boolean mask (H, W)."""
    return coco_mask.decode({"size": [int(height), int(width)], "counts": counts}).astype(bool)


def decode_fortran(counts: bytes, height: int, width: int) -> np.ndarray:
    """COCO compressed RLE counts -> uint8 0/1 mask (H, W) in the column-major order the RLE decodes to (no copy;
    its transpose is C-ordered)."""
    return coco_mask.decode({"size": [int(height), int(width)], "counts": counts})


def area(counts: bytes, height: int, width: int) -> int:
    return int(coco_mask.area({"size": [int(height), int(width)], "counts": counts}))


def from_uncompressed(rle: dict) -> bytes:
    """COCO's uncompressed RLE (``{"size": [h, w], "counts": [ints]}``, as in crowd annotations) -> compressed."""
    h, w = rle["size"]
    return coco_mask.frPyObjects(rle, h, w)["counts"]


def runs(counts: bytes) -> np.ndarray:
    """The run lengths of COCO compressed RLE counts (alternating 0-runs and 1-runs, column-major), decoded
    from pycocotools' string format (5 bits per character, a continuation bit, deltas from the run two back)."""
    out = []
    i, n = 0, len(counts)
    while i < n:
        x, k, more = 0, 0, True
        while more:
            c = counts[i] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            i += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        out.append(x)
    return np.asarray(out, np.int64)


def decode_columns(counts: bytes, height: int, width: int, x0: int, x1: int) -> np.ndarray:
    """Columns ``x0 .. x1 - 1`` of a COCO RLE mask, as a C-ordered uint8 0/1 array of shape (x1 - x0, height) (the
    transpose of those columns): RLE is column-major, so only the runs over those columns are expanded."""
    r = runs(counts)
    ends = np.cumsum(r)
    starts = ends - r
    lo, hi = x0 * height, x1 * height
    values = (np.arange(len(r)) % 2).astype(np.uint8)
    keep = (ends > lo) & (starts < hi)
    s = np.clip(starts[keep], lo, hi) - lo
    e = np.clip(ends[keep], lo, hi) - lo
    out = np.repeat(values[keep], e - s)
    if out.size != hi - lo:  # a malformed RLE that does not cover the image
        out = np.resize(out, hi - lo)
    return out.reshape(x1 - x0, height)
