"""Decoding selected frames from videos and image files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from posebank.core.errors import FrameReadError


def video_frame_count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise FrameReadError(path, "cannot open video")
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


def read_video_frames(path, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray | None]]:
    """Yield ``(index, frame)`` for the requested frame indices (BGR uint8), in increasing order.

    Frames are decoded sequentially (skipped frames are only grabbed, not converted), which is what the
    codecs of the raw datasets allow cheaply. Past the end of the video ``frame`` is None, so the caller can
    quarantine the missing frames with a reason.
    """
    wanted = sorted(set(int(i) for i in indices))
    if not wanted:
        return
    path = Path(path)
    if not path.is_file():
        raise FrameReadError(path, "video file not found")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FrameReadError(path, "cannot open video (unsupported codec or corrupt file)")
    try:
        pos = 0
        for target in wanted:
            ok = True
            while pos < target and ok:
                ok = cap.grab()
                pos += 1
            if ok:
                ok, frame = cap.read()
                pos += 1
            if not ok:
                yield target, None
                continue
            yield target, frame
    finally:
        cap.release()


def read_image(path) -> np.ndarray:
    arr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if arr is None:
        raise FrameReadError(path, "image missing or does not decode")
    return arr


def write_video(path, frames: Iterable[np.ndarray], fps: float = 50.0) -> None:
    """Write BGR frames as an MPEG-4 video (used by fixtures that imitate the datasets' .mp4/.avi files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                fourcc = cv2.VideoWriter_fourcc(*("XVID" if path.suffix == ".avi" else "mp4v"))
                writer = cv2.VideoWriter(str(path), fourcc, fps, (w, h))
                if not writer.isOpened():
                    raise FrameReadError(path, "cannot open a video writer")
            writer.write(frame)
    finally:
        if writer is not None:
            writer.release()
