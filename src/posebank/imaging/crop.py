"""Perspective crops of a person: the camera turns towards the box centre, distortion is removed, the image
is scaled so that the box's long side becomes ``target_box_px`` (never upscaled more than ``max_upscale``),
and the camera is updated so that projecting world points through it lands on the crop's pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from posebank.core.camera import Camera
from posebank.core.jpeg import DECODE_FACTORS, decode_jpeg_reduced
from posebank.core.settings import CropParams


def box_from_points(points2d, expansion: float = 1.0) -> np.ndarray:
    """Axis-aligned box [x, y, w, h] around the finite points, scaled by ``expansion`` about its centre."""
    p = np.asarray(points2d, np.float64).reshape(-1, 2)
    p = p[np.all(np.isfinite(p), axis=1)]
    if len(p) == 0:
        return np.full(4, np.nan)
    lo, hi = p.min(axis=0), p.max(axis=0)
    center, size = (lo + hi) / 2, (hi - lo) * expansion
    return np.concatenate([center - size / 2, size])


def reproject_points(points_image, old_camera: Camera, new_camera: Camera) -> np.ndarray:
    """Map pixels of one camera to another camera sharing its optical centre."""
    rays = old_camera.image_to_camera(points_image, 1.0)
    directions_world = rays @ old_camera.R
    return new_camera.camera_to_image(directions_world @ new_camera.R.T)


def reproject_box(box, old_camera: Camera, new_camera: Camera, n_per_side: int = 8) -> np.ndarray:
    """Bounding box, in the new camera, of the old box's outline (sampled along its sides)."""
    x, y, w, h = np.asarray(box, np.float64)
    s = np.linspace(0, 1, n_per_side)
    outline = np.concatenate([
        np.stack([x + s * w, np.full_like(s, y)], 1), np.stack([x + s * w, np.full_like(s, y + h)], 1),
        np.stack([np.full_like(s, x), y + s * h], 1), np.stack([np.full_like(s, x + w), y + s * h], 1)])
    return box_from_points(reproject_points(outline, old_camera, new_camera))


def crop_camera(camera: Camera, box, params: CropParams) -> tuple[Camera, tuple[int, int]]:
    """The camera of the crop around ``box`` and the crop size (width, height)."""
    x, y, w, h = np.asarray(box, np.float64)
    if not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
        raise ValueError(f"cannot crop around an empty or invalid box {box}")
    center = np.array([x + w / 2, y + h / 2])
    turned = camera.turned_towards(target_image_point=center).undistorted()
    long_side = max(w, h)
    scale = min(params.max_upscale, params.target_box_px / long_side)
    side = max(8, int(round(long_side * params.context * scale)))
    principal = turned.intrinsic_matrix[:2, 2]
    return turned.scaled_output(center_xy=principal, scale=scale, output_size_wh=(side, side)), (side, side)


_INTERP = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST}


def _source_map(old_camera: Camera, new_camera: Camera, out_w: int, out_h: int, grid_step: int = 8):
    """For each output pixel, the source pixel it shows: exact on a grid every ``grid_step`` pixels and
    bilinearly interpolated in between (the map is smooth; the interpolation error is far below 0.01 px)."""
    gw, gh = (out_w - 1) // grid_step + 2, (out_h - 1) // grid_step + 2
    u, v = np.meshgrid(np.arange(gw, dtype=np.float64) * grid_step, np.arange(gh, dtype=np.float64) * grid_step)
    grid = np.stack([u, v], axis=-1).reshape(-1, 2)
    kinv = np.linalg.inv(new_camera.intrinsic_matrix)
    rays = np.concatenate([grid @ kinv[:2, :2].T + kinv[:2, 2], np.ones((len(grid), 1))], axis=1)
    old_cam_dirs = rays @ new_camera.R @ old_camera.R.T
    with np.errstate(divide="ignore", invalid="ignore"):
        coarse = old_camera.camera_to_image(old_cam_dirs)
    coarse[(old_cam_dirs[:, 2] <= 0) | ~np.isfinite(coarse).all(-1)] = -1e6
    coarse = coarse.reshape(gh, gw, 2)
    valid = (coarse > -1e5).all(-1)
    both = valid[:, 1:] & valid[:, :-1]
    dx = np.linalg.norm(np.diff(coarse, axis=1), axis=-1)[both] / grid_step
    step = float(np.median(dx)) if dx.size else 1.0
    fu, fv = np.meshgrid(np.arange(out_w, dtype=np.float32) / grid_step,
                         np.arange(out_h, dtype=np.float32) / grid_step)
    full = cv2.remap(coarse.astype(np.float32), fu, fv, cv2.INTER_LINEAR)
    return full, coarse[valid], step


def reproject_image(image: np.ndarray, old_camera: Camera, new_camera: Camera, size_wh,
                    interpolation: str = "cubic", border_value=0) -> np.ndarray:
    """Render what ``new_camera`` (same optical centre) sees of ``image`` taken by ``old_camera``.

    Only the forward distortion of the old camera is evaluated, so any distortion model works. When the
    output is smaller than the source region, the region is first reduced with area averaging (antialiasing).
    """
    out_w, out_h = int(size_wh[0]), int(size_wh[1])
    src, valid_points, step = _source_map(old_camera, new_camera, out_w, out_h)
    h_img, w_img = image.shape[:2]
    if not len(valid_points):
        return np.full((out_h, out_w, *image.shape[2:]), border_value, image.dtype)
    lo = np.floor(valid_points.min(axis=0)).astype(int) - 2
    hi = np.ceil(valid_points.max(axis=0)).astype(int) + 3
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], w_img), min(hi[1], h_img)
    if x1 <= x0 or y1 <= y0:
        return np.full((out_h, out_w, *image.shape[2:]), border_value, image.dtype)
    region = image[y0:y1, x0:x1]
    src -= np.array([x0, y0], np.float32)
    if np.isfinite(step) and step > 1.5:  # downscaling: area-average first (antialiasing)
        factor = 1.0 / step
        rw, rh = max(1, int(round(region.shape[1] * factor))), max(1, int(round(region.shape[0] * factor)))
        fx, fy = rw / region.shape[1], rh / region.shape[0]
        region = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
        src = (src + 0.5) * np.array([fx, fy], np.float32) - 0.5
    return cv2.remap(region, src,  None, _INTERP[interpolation], borderMode=cv2.BORDER_CONSTANT,
                     borderValue=border_value)


def crop_person(image: np.ndarray, camera: Camera, box, params: CropParams):
    """Crop one person: returns (crop image, crop camera, box in the crop)."""
    new_camera, size = crop_camera(camera, box, params)
    crop = reproject_image(image, camera, new_camera, size, params.interpolation)
    return crop, new_camera, reproject_box(box, camera, new_camera)


def crop_scale(camera: Camera, new_camera: Camera) -> float:
    """Output pixels per source pixel of a crop camera made by :func:`crop_camera` (its zoom factor)."""
    k_old, k_new = camera.intrinsic_matrix, new_camera.intrinsic_matrix
    return float(max(k_new[0, 0] / k_old[0, 0], k_new[1, 1] / k_old[1, 1]))


def choose_decode_factor(scale: float, max_factor: int = 8) -> int:
    """The largest JPEG decode reduction ``f`` (1, 2, 4 or 8, at most ``max_factor``) that still leaves at least
    one decoded pixel per output pixel, i.e. ``f <= 1 / scale`` with ``scale`` = output px per source px."""
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be positive and finite, got {scale}")
    limit = 1.0 / scale * (1 + 1e-9)  # tolerate rounding when 1 / scale is exactly a power of two
    return max(f for f in DECODE_FACTORS if f == 1 or (f <= limit and f <= max_factor))


def crop_person_from_jpeg(jpeg: bytes, camera: Camera, box, params: CropParams, *, max_factor: int = 8):
    """:func:`crop_person` straight from JPEG bytes, decoding at reduced resolution when the crop shrinks.

    The crop camera and size are those of :func:`crop_camera` (they depend only on ``camera``, ``box`` and
    ``params``). The frame is decoded at 1/f of its size, f being the largest of 1, 2, 4, 8 with f <= 1/scale
    (:func:`choose_decode_factor`), so the decoded image still has at least about one pixel per crop pixel;
    its camera is ``camera.zoomed(1 / f)`` (see :func:`posebank.core.jpeg.decode_jpeg_reduced` for the
    pixel geometry), and :func:`reproject_image` renders the crop from it. OpenCV can only decode the whole
    frame, so the reduced full-frame decode is the saving on offer; the reprojection itself only touches the
    region under the crop.

    Returns (crop image, crop camera, box in the crop, decode factor f).
    """
    new_camera, size = crop_camera(camera, box, params)
    factor = choose_decode_factor(crop_scale(camera, new_camera), max_factor)
    image = decode_jpeg_reduced(jpeg, factor)
    source_camera = camera if factor == 1 else camera.zoomed(1.0 / factor)
    crop = reproject_image(image, source_camera, new_camera, size, params.interpolation)
    return crop, new_camera, reproject_box(box, camera, new_camera), factor
