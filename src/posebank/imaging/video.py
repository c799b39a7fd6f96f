"""Decoding selected frames from videos and image files."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from posebank.core.errors import FrameReadError
from posebank.core.jpeg import decode_jpeg

# FFmpeg (inside OpenCV) prints its own lines for damaged videos ("moov atom not found"); posebank reports them
# itself, as one error naming the file
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "0")
JPEG_SUFFIXES = {".jpg", ".jpeg"}


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
    """An image file as BGR uint8; FrameReadError for a missing, truncated (a JPEG without its end marker) or
    undecodable file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FrameReadError(path, f"image cannot be read ({e.strerror or e})") from None
    if not data:
        raise FrameReadError(path, "image file is empty")
    if path.suffix.lower() in JPEG_SUFFIXES and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        raise FrameReadError(path, "truncated JPEG (no end-of-image marker)")
    try:
        return decode_jpeg(data, where=path)
    except Exception as e:  # noqa: BLE001 - the decoder's error, whatever it is, names this file
        raise FrameReadError(path, f"image does not decode ({getattr(e, 'problem', e)})") from None


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
