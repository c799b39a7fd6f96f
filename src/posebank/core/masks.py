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
