"""Frame sources: where the frames stage gets its images.

By default the raw tree's videos and image files (each instance's ``mask_source`` image is its mask); a dataset
whose images do not exist as files (MuCo-3DHP composites) or need a transform (SURREAL's flip) provides its own
``frame_source(raw, params)`` that renders them, together with per-person masks and visibilities.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from posebank.core.errors import DataError
from posebank.core.jpeg import decode_jpeg
from posebank.datasets.base import Frame, FrameSource, RawFileError
from posebank.imaging.video import read_image, read_video_frames

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv"}


def read_mask(path) -> np.ndarray:
    """A mask image file (nonzero = person) as a boolean array."""
    try:
        data = Path(path).read_bytes()
        return decode_jpeg(data, cv2.IMREAD_GRAYSCALE, where=path) > 127
    except (OSError, DataError):
        raise RawFileError(path, "mask image missing or does not decode") from None


def file_frame_source(raw_root) -> FrameSource:
    """Frames of the raw tree's video files (decoded sequentially) and image files."""
    raw_root = Path(raw_root)

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        path = raw_root / source
        if path.suffix.lower() in VIDEO_SUFFIXES:
            for i, image in read_video_frames(path, indices):
                yield i, Frame(image)
        else:
            image = read_image(path)
            for i in sorted(set(indices)):
                yield i, Frame(image)

    return frames
