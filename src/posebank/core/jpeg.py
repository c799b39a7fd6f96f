"""JPEG encoding and decoding.

:func:`decode_jpeg` is posebank's one path from JPEG bytes to pixels (``cv2.imdecode`` is called nowhere else):
bytes that do not decode are a :class:`~posebank.core.errors.DataError` naming what was decoded (``where``).
"""

from __future__ import annotations

import cv2
import numpy as np

from posebank.core.errors import DataError


def encode_jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def decode_jpeg(data: bytes, flags: int = cv2.IMREAD_COLOR, where: str | None = None) -> np.ndarray:
    """Decode JPEG bytes with OpenCV's ``flags`` (``cv2.IMREAD_*``; default 3-channel BGR).

    Empty or undecodable bytes raise :class:`DataError`; ``where`` names what was being decoded (e.g.
    ``"cache.h5: image of example 12"``) and becomes the error's ``where``.
    """
    arr = None
    if len(data):
        try:
            arr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        except cv2.error:  # OpenCV raises for some malformed inputs instead of returning None
            arr = None
    if arr is None:
        problem = "no image bytes" if not len(data) else f"{len(data)} bytes that do not decode as a JPEG image"
        raise DataError(where or "JPEG data", problem)
    return arr


_REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                  8: cv2.IMREAD_REDUCED_COLOR_8}
DECODE_FACTORS = tuple(sorted(_REDUCED_FLAGS))


def decode_jpeg_reduced(data: bytes, factor: int, where: str | None = None) -> np.ndarray:
    """Decode a JPEG at 1/``factor`` of its size (``factor`` in 1, 2, 4, 8), as libjpeg's scaled IDCT does it.

    The decoder never builds the full-resolution image: each 8x8 DCT block is inverse-transformed straight to
    (8/factor)^2 pixels, which saves most of the inverse-DCT, chroma upsampling and colour conversion work (the
    entropy decoding of the whole file remains). The result is ``ceil(w / factor)`` x ``ceil(h / factor)``
    pixels. Geometry: reduced pixel ``u`` is (close to) the average of full-resolution pixels
    ``[factor u, factor u + factor)``, whose centre is at ``factor u + (factor - 1) / 2``; that is exactly the
    pixel convention of ``Camera.zoomed(1 / factor)`` (``x -> (x + 0.5) / factor - 0.5``), so
    ``camera.zoomed(1 / factor)`` is the camera of the reduced image.

    OpenCV decodes the whole frame: it offers no way to decode only a region of interest (libjpeg's
    ``jpeg_crop_scanline``/``jpeg_skip_scanlines`` are not exposed), so a reduced full-frame decode is the
    cheapest decode available here. An unsupported ``factor`` is a ValueError (a programming error), bytes that
    do not decode a :class:`DataError` as in :func:`decode_jpeg`.
    """
    flag = _REDUCED_FLAGS.get(factor)
    if flag is None:
        raise ValueError(f"decode factor must be one of {DECODE_FACTORS}, got {factor!r}")
    return decode_jpeg(data, flag, where=where)


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_size(data: bytes, where: str | None = None) -> tuple[int, int]:
    """(width, height) of JPEG bytes from the frame header, without decoding."""
    i = 2
    if data[:2] != b"\xff\xd8":
        raise DataError(where or "JPEG data", "not a JPEG (no start-of-image marker)")
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in _SOF_MARKERS:
            height = int.from_bytes(data[i + 5:i + 7], "big")
            width = int.from_bytes(data[i + 7:i + 9], "big")
            return width, height
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 2 if marker != 0xFF else 1
            continue
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    raise DataError(where or "JPEG data", "no frame header (truncated or not a JPEG)")
