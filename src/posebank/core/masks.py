"""Person masks as COCO run-length encoding (the compressed ``counts`` string of pycocotools)."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask


def encode(mask) -> bytes:
    """Binary mask (H, W) -> COCO compressed RLE counts (bytes); the size is the image's."""
    mask = np.asarray(mask)
    if mask.dtype == bool and mask.flags.f_contiguous:
        m = mask.view(np.uint8)  # no copy: already in RLE's column-major order
    else:
        m = np.asfortranarray(mask.astype(bool).astype(np.uint8))
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
    from pycocotools' string format, vectorised: 5 bits per character (offset 48), 0x20 = more characters follow,
    0x10 in a number's last character = negative; from the third run on, each number is the difference from the
    run two before."""
    c = np.frombuffer(counts, np.uint8).astype(np.int64) - 48
    if not c.size:
        return np.zeros(0, np.int64)
    last = (c & 0x20) == 0  # the last character of each number
    ends = np.flatnonzero(last)
    starts = np.concatenate([[0], ends[:-1] + 1])
    k = np.arange(c.size) - np.repeat(starts, ends - starts + 1)  # the character's position within its number
    x = np.add.reduceat((c & 0x1F) << (5 * k), starts)
    negative = (c[ends] & 0x10) != 0
    x[negative] -= np.left_shift(1, 5 * (k[ends[negative]] + 1))
    out = x.copy()
    out[1::2] = np.cumsum(x[1::2])  # odd runs: each is the sum of its differences (the first has none)
    out[2::2] = np.cumsum(x[2::2])  # even runs from the third on: likewise (the first run stands alone)
    return out


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
