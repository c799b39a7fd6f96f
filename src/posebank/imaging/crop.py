"""Perspective crops of a person, posepile's geometry (util/preproc_for_efficiency.py) by default.

The camera turns towards the box centre (upright: zero roll about the world's up direction) and loses its lens
distortion; the box, reprojected into the turned camera (its side midpoints, as posepile), is scaled so that its
long side becomes ``target_box_px`` (never upscaled more than ``max_upscale``). The crop covers that box rotated by
up to ``max_rotation_deg`` (a square of side ``max(c w + s h, c h + s w)``) times ``margin``, clipped to the
reprojected image (``clip_to_image``): a variable size, not square at image borders, leaving room for rotation
and scale augmentation at training time. ``geometry: fixed`` gives a square of ``context`` x the box's long side
instead. The camera is updated so that projecting world points through it lands on the crop's pixels.
"""

from __future__ import annotations

import dataclasses
import threading

import cv2
import numpy as np

from posebank.core.camera import Camera
from posebank.core.jpeg import DECODE_FACTORS, decode_jpeg_reduced, jpeg_size
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


def reproject_box(box, old_camera: Camera, new_camera: Camera) -> np.ndarray:
    """The box in the new camera: the bounding box of its four side midpoints reprojected (as posepile's
    ``reproject_box_side_midpoints``; a box's corners would overstate a person's extent after a turn)."""
    x, y, w, h = np.asarray(box, np.float64)
    cx, cy = x + w / 2, y + h / 2
    midpoints = np.array([[x, cy], [x + w, cy], [cx, y], [cx, y + h]])
    return box_from_points(reproject_points(midpoints, old_camera, new_camera))


def reproject_box_corners(box, old_camera: Camera, new_camera: Camera) -> np.ndarray:
    """Bounding box of the box's four corners in the new camera (for the image extent)."""
    x, y, w, h = np.asarray(box, np.float64)
    corners = np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]])
    return box_from_points(reproject_points(corners, old_camera, new_camera))


def rotated_extent(box, max_rotation_deg: float, margin: float) -> np.ndarray:
    """posepile's crop box: the square around the box centre that holds the box rotated by up to
    ``max_rotation_deg`` (side ``max(c w + s h, c h + s w)``), times ``margin``."""
    x, y, w, h = np.asarray(box, np.float64)
    a = np.deg2rad(max_rotation_deg)
    s, c = np.sin(a), np.cos(a)
    side = max(c * w + s * h, c * h + s * w) * margin
    return np.array([x + w / 2 - side / 2, y + h / 2 - side / 2, side, side])


def intersect(a, b) -> np.ndarray:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return np.array([x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0)])


def crop_geometry(camera: Camera, box, params: CropParams, image_size=None
                  ) -> tuple[Camera, tuple[int, int], np.ndarray]:
    """The camera of the crop around ``box``, the crop size (width, height) and the box in the crop;
    ``image_size`` (width, height) of the source image is needed to clip the crop to the image (posepile
    geometry, ``clip_to_image``)."""
    x, y, w, h = np.asarray(box, np.float64)
    if not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
        raise ValueError(f"cannot crop around an empty or invalid box {box}")
    cx, cy = x + w / 2, y + h / 2
    if params.geometry == "fixed":
        turned = camera.turned_towards(target_image_point=[cx, cy], upright=params.upright).undistorted()
        long_side = max(w, h)
        scale = min(params.max_upscale, params.target_box_px / long_side)
        side = max(8, int(round(long_side * params.context * scale)))
        principal = turned.intrinsic_matrix[:2, 2]
        new = turned.scaled_output(center_xy=principal, scale=scale, output_size_wh=(side, side))
        return new, (side, side), reproject_box(box, camera, new)
    # the box centre, its side midpoints and the image corners, undistorted in one go
    iw, ih = image_size if image_size is not None else (np.nan, np.nan)
    points = np.array([[cx, cy], [x, cy], [x + w, cy], [cx, y], [cx, y + h],
                       [-0.5, -0.5], [iw - 0.5, -0.5], [-0.5, ih - 0.5], [iw - 0.5, ih - 0.5]])
    n = 9 if params.clip_to_image and image_size is not None else 5
    rays = camera.image_to_camera(points[:n], 1.0)
    turned = camera.turned_towards(target_direction=rays[0], upright=params.upright).undistorted()
    in_turned = turned.camera_to_image(rays @ camera.R @ turned.R.T)  # the same rays, seen by the turned camera
    turned_box = box_from_points(in_turned[1:5])
    scale = min(params.max_upscale, params.target_box_px / max(turned_box[2:]))
    region = rotated_extent(turned_box, params.max_rotation_deg, params.margin)
    if n == 9:
        region = intersect(region, box_from_points(in_turned[5:9]))
    size = (max(8, int(round(region[2] * scale))), max(8, int(round(region[3] * scale))))
    # the region's top-left edge becomes the crop's top-left edge (pixel centres at integers in both): a turned
    # pixel p lands at (p - region) x scale - 0.5 in the crop
    new = turned.shifted(region[:2] + 0.5).zoomed(scale)
    box_in_crop = np.concatenate([(turned_box[:2] - region[:2]) * scale - 0.5, turned_box[2:] * scale])
    return new, size, box_in_crop


def crop_camera(camera: Camera, box, params: CropParams, image_size=None) -> tuple[Camera, tuple[int, int]]:
    """The camera of the crop around ``box`` and the crop size (width, height) (see :func:`crop_geometry`)."""
    new, size, _ = crop_geometry(camera, box, params, image_size)
    return new, size


def best_component(mask: np.ndarray, box, extent=None) -> np.ndarray:
    """The 4-connected component of a boolean mask whose bounding box has the highest IoU with ``box``
    (posepile's rule for person masks in a crop: stray blobs of other people or the background go). Only the
    mask's bounding rectangle (or ``extent`` (x, y, w, h), known to hold every set pixel) is labelled. A
    Fortran-ordered mask gives a Fortran-ordered result."""
    if mask.flags.f_contiguous and not mask.flags.c_contiguous:  # work on the C-ordered transpose
        bx, by, bw, bh = np.asarray(box, np.float64)
        flipped = None if extent is None else (extent[1], extent[0], extent[3], extent[2])
        return best_component(mask.T, (by, bx, bh, bw), flipped).T
    if extent is None:
        m = mask.astype(np.uint8)
        rx, ry, rw, rh = cv2.boundingRect(m)
    else:
        rx, ry, rw, rh = extent
        m = mask.view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8)
    if rw == 0 or rh == 0:
        return mask.astype(bool, copy=False)
    sub = np.ascontiguousarray(m[ry:ry + rh, rx:rx + rw])
    n, labels = cv2.connectedComponentsWithAlgorithm(sub, 4, cv2.CV_32S, cv2.CCL_DEFAULT)
    if n <= 2:
        return mask.astype(bool, copy=False)
    if n <= _FEW_COMPONENTS:
        # a few components: their rectangles from one comparison each (OpenCV's per-pixel statistics cost 3x
        # the labelling itself)
        members = [labels == k for k in range(1, n)]
        comp = np.array([cv2.boundingRect(c.view(np.uint8)) for c in members], np.float64)
    else:
        members = None
        n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(sub, 4, cv2.CV_32S, cv2.CCL_DEFAULT)
        comp = stats[1:, :4].astype(np.float64)  # x, y, w, h of each component in the sub-rectangle
    comp[:, 0] += rx - 0.5  # pixel edges, in the mask's coordinates
    comp[:, 1] += ry - 0.5
    bx, by, bw, bh = np.asarray(box, np.float64)
    ix = np.clip(np.minimum(comp[:, 0] + comp[:, 2], bx + bw) - np.maximum(comp[:, 0], bx), 0, None)
    iy = np.clip(np.minimum(comp[:, 1] + comp[:, 3], by + bh) - np.maximum(comp[:, 1], by), 0, None)
    inter = ix * iy
    iou = inter / (comp[:, 2] * comp[:, 3] + bw * bh - inter)
    best = int(np.argmax(iou))
    out = np.zeros(mask.shape, bool)
    out[ry:ry + rh, rx:rx + rw] = members[best] if members is not None else labels == 1 + best
    return out


_FEW_COMPONENTS = 9  # up to 8 components, rectangles by comparison; beyond, OpenCV's statistics


_INTERP = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST}


GRID_STEP = 8  # output pixels between the exactly computed points of a source map


def _coarse_map(old_camera: Camera, new_camera: Camera, out_w: int, out_h: int, grid_step: int = GRID_STEP):
    """The exact source pixels on a coarse grid (about every ``grid_step`` output pixels, overhanging the output by
    a cell on each side), laid out for :func:`_expand`. Returns (grid (gh, gw, 2) float32, its valid points,
    source pixels per output pixel)."""
    pad = grid_step
    gw, gh = (out_w + 2 * pad) // grid_step + 1, (out_h + 2 * pad) // grid_step + 1
    u = (np.arange(gw, dtype=np.float64) + 0.5) * grid_step - 0.5 - pad
    v = (np.arange(gh, dtype=np.float64) + 0.5) * grid_step - 0.5 - pad
    # the ray of output pixel (u, v) in the old camera's frame: (u, v, 1) @ a, one matrix for the new camera's
    # inverse intrinsics and the turn, summed over the grid's rows and columns
    a = np.linalg.inv(new_camera.intrinsic_matrix).T @ new_camera.R @ old_camera.R.T
    dirs = u[None, :, None] * a[0] + (v[:, None, None] * a[1] + a[2])
    with np.errstate(divide="ignore", invalid="ignore"):
        coarse = old_camera.camera_to_image(dirs)
    valid = (dirs[..., 2] > 0) & np.isfinite(coarse[..., 0]) & np.isfinite(coarse[..., 1])
    coarse[~valid] = -1e6
    both = valid[:, 1:] & valid[:, :-1]
    d = coarse[:, 1:] - coarse[:, :-1]
    dx = np.hypot(d[..., 0], d[..., 1])[both] / grid_step
    step = _median(dx) if dx.size else 1.0
    return coarse.astype(np.float32), coarse[valid], step


def _median(values: np.ndarray) -> float:
    """np.median of a 1-D float array, by one partition."""
    k = values.size // 2
    if values.size % 2:
        return float(np.partition(values, k)[k])
    part = np.partition(values, [k - 1, k])
    return float((part[k - 1] + part[k]) / 2)


_SCRATCH = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """A contiguous array of ``shape`` in a buffer kept per thread and ``name`` (its contents are garbage): the
    per-pixel maps are megabytes each, and a fresh allocation of that size is a fresh mapping whose first touch
    faults in every page (measured: 4.7x the cost of the resize that fills it). Valid until the thread's next call
    with the same name."""
    n = int(np.prod(shape))
    buffers = _SCRATCH.__dict__.setdefault("buffers", {})
    buf = buffers.get((name, np.dtype(dtype)))
    if buf is None or buf.size < n:
        buf = buffers[(name, np.dtype(dtype))] = np.empty(max(n, 1 << 20), dtype)
    return buf[:n].reshape(shape)


def _resize_map(coarse: np.ndarray, grid_step: int, scratch: str | None) -> np.ndarray:
    gh, gw = coarse.shape[:2]
    size = (gw * grid_step, gh * grid_step)
    if scratch is None:
        return cv2.resize(coarse, size, interpolation=cv2.INTER_LINEAR)
    out = _scratch(scratch, (size[1], size[0], coarse.shape[2]), coarse.dtype)
    return cv2.resize(coarse, size, dst=out, interpolation=cv2.INTER_LINEAR)


def _expand(coarse: np.ndarray, out_w: int, out_h: int, grid_step: int = GRID_STEP, scratch: str | None = None
            ) -> np.ndarray:
    """The per-pixel map from a coarse grid of :func:`_coarse_map`: one ``cv2.resize``, whose pixel-centre
    convention puts grid sample j at output pixel (j + 0.5) * step - 0.5 - pad; the border half-cells, which resize
    only clamps, fall in the overhang and are cut off. With ``scratch``, the map lives in that :func:`_scratch`
    buffer (for a map used at once and dropped)."""
    full = _resize_map(coarse, grid_step, scratch)
    return full[grid_step:grid_step + out_h, grid_step:grid_step + out_w]


def _expand_part(coarse: np.ndarray, u0: int, v0: int, u1: int, v1: int, grid_step: int = GRID_STEP,
                 scratch: str | None = None) -> np.ndarray:
    """``_expand(coarse, ...)[v0:v1, u0:u1]`` without expanding the rest: the grid samples around the part, one
    more each way (resize's clamped half-cells fall outside), resized at the same integer factor."""
    gh, gw = coarse.shape[:2]
    j0, i0 = max((u0 + grid_step) // grid_step - 1, 0), max((v0 + grid_step) // grid_step - 1, 0)
    j1 = min(-(-(u1 + grid_step) // grid_step) + 1, gw)
    i1 = min(-(-(v1 + grid_step) // grid_step) + 1, gh)
    part = _resize_map(np.ascontiguousarray(coarse[i0:i1, j0:j1]), grid_step, scratch)
    x, y = u0 + grid_step - j0 * grid_step, v0 + grid_step - i0 * grid_step
    return part[y:y + v1 - v0, x:x + u1 - u0]


def _source_map(old_camera: Camera, new_camera: Camera, out_w: int, out_h: int, grid_step: int = GRID_STEP):
    """For each output pixel, the source pixel it shows: exact on a coarse grid about every ``grid_step`` pixels
    and bilinearly interpolated in between (the map is smooth: below 0.02 px off on a 3DHP-like lens, k1 -0.25).
    Returns (map (H, W, 2) float32, the valid coarse points, source pixels per output pixel)."""
    coarse, valid, step = _coarse_map(old_camera, new_camera, out_w, out_h, grid_step)
    return _expand(coarse, out_w, out_h, grid_step), valid, step


def warp(image: np.ndarray, src: np.ndarray, valid_points: np.ndarray, step: float, size_wh,
         interpolation: str = "cubic", border_value=0, antialias: bool = True) -> np.ndarray:
    """Render ``image`` through a source map (``src``: per output pixel, the source pixel it shows) of
    :func:`source_map`; only the source region under the map is read. With ``antialias``, when the output is
    smaller than that region, the region is first reduced with area averaging."""
    out_w, out_h = int(size_wh[0]), int(size_wh[1])
    h_img, w_img = image.shape[:2]
    if not len(valid_points):
        return np.full((out_h, out_w, *image.shape[2:]), border_value, image.dtype)
    lo = np.floor(valid_points.min(axis=0)).astype(int) - 2
    hi = np.ceil(valid_points.max(axis=0)).astype(int) + 3
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], w_img), min(hi[1], h_img)
    if x1 <= x0 or y1 <= y0:
        return np.full((out_h, out_w, *image.shape[2:]), border_value, image.dtype)
    if not (antialias and np.isfinite(step) and step > 1.5):
        # no area reduction: remap reads only the pixels under the map, straight from the image
        if not image.flags.c_contiguous:
            image = np.ascontiguousarray(image)
        return cv2.remap(image, src, None, _INTERP[interpolation], borderMode=cv2.BORDER_CONSTANT,
                         borderValue=border_value)
    # downscaling: area-average the region under the map first (antialiasing), then remap from it
    region = image[y0:y1, x0:x1]
    factor = 1.0 / step
    rw, rh = max(1, int(round(region.shape[1] * factor))), max(1, int(round(region.shape[0] * factor)))
    fx, fy = rw / region.shape[1], rh / region.shape[0]
    region = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
    src = (src - np.array([x0, y0], np.float32) + 0.5) * np.array([fx, fy], np.float32) - 0.5
    return cv2.remap(region, src, None, _INTERP[interpolation], borderMode=cv2.BORDER_CONSTANT,
                     borderValue=border_value)


def source_map(old_camera: Camera, new_camera: Camera, size_wh):
    """(map, valid source points, source pixels per output pixel) for :func:`warp`."""
    return _source_map(old_camera, new_camera, int(size_wh[0]), int(size_wh[1]))


def reproject_image(image: np.ndarray, old_camera: Camera, new_camera: Camera, size_wh,
                    interpolation: str = "cubic", border_value=0) -> np.ndarray:
    """Render what ``new_camera`` (same optical centre) sees of ``image`` taken by ``old_camera``.

    Only the forward distortion of the old camera is evaluated, so any distortion model works. When the
    output is smaller than the source region, the region is first reduced with area averaging (antialiasing).
    """
    src, valid_points, step = source_map(old_camera, new_camera, size_wh)
    return warp(image, src, valid_points, step, size_wh, interpolation, border_value)


def warp_mask(counts: bytes, frame_size, coarse: np.ndarray, size_wh, factor: int = 1, with_extent: bool = False):
    """A full-frame COCO RLE mask warped into the crop, from the coarse map of :func:`_coarse_map` made for the
    frame decoded at 1/``factor``.

    RLE is column-major: only the columns under the map are expanded (:func:`posebank.core.masks.decode_columns`),
    as the C-ordered transpose of those columns, which is warped with the map's x and y swapped (swapped, shifted
    and scaled to full resolution on the coarse grid, before it is expanded). Linear interpolation of the 0/1
    values rounds at one half (threshold 0.5). The mask (H, W) is Fortran-ordered, as RLE encoding wants it. With
    ``with_extent``, also the (x, y, w, h) part of the crop that was warped (every set pixel lies in it)."""
    from posebank.core.masks import decode_columns

    def result(mask, extent=(0, 0, 0, 0)):
        return (mask, extent) if with_extent else mask

    width, height = frame_size
    out_w, out_h = int(size_wh[0]), int(size_wh[1])
    grid = np.array(coarse[..., ::-1], np.float32)  # (y, x) per point: the transposed mask's (column, row)
    if factor > 1:
        grid = (grid + 0.5) * factor - 0.5
    valid = coarse[..., 0] > -1e5  # invalid points have both coordinates at -1e6
    if not valid.any():
        return result(np.zeros((out_h, out_w), bool))
    xs = grid[..., 1][valid]
    x0, x1 = max(int(np.floor(xs.min())) - 2, 0), min(int(np.ceil(xs.max())) + 3, width)
    if x1 <= x0:
        return result(np.zeros((out_h, out_w), bool))
    columns = decode_columns(counts, height, width, x0, x1)  # (x1 - x0, H), C order
    grid[..., 1] -= x0
    # warp only the part of the crop where the mask can land: the grid cells whose source is near its pixels
    rows = np.flatnonzero(columns.any(axis=0))
    cols = np.flatnonzero(columns.any(axis=1))
    if not len(rows):
        return result(np.zeros((out_h, out_w), bool))
    both = valid[:, 1:] & valid[:, :-1]
    d = np.abs(grid[:, 1:] - grid[:, :-1])
    spans = (d[..., 0] + d[..., 1])[both]  # |dx| + |dy| >= the span: a margin on the safe side
    margin = 2 + 2 * (float(spans.max()) if spans.size else float(max(width, height)))  # two cells of source
    near = (valid & (grid[..., 0] >= rows[0] - margin) & (grid[..., 0] <= rows[-1] + margin)
            & (grid[..., 1] >= cols[0] - margin) & (grid[..., 1] <= cols[-1] + margin))
    grid[~valid] = -1e6
    out = np.zeros((out_w, out_h), bool)  # the crop's mask transposed (C order): its .T is Fortran-ordered
    gy, gx = np.nonzero(near)
    if not len(gy):
        return result(out.T)
    # grid sample j sits at output pixel (j + 0.5) * GRID_STEP - 0.5 - GRID_STEP: one cell of margin each way
    u0, u1 = max((gx.min() - 1) * GRID_STEP - GRID_STEP, 0), min((gx.max() + 2) * GRID_STEP, out_w)
    v0, v1 = max((gy.min() - 1) * GRID_STEP - GRID_STEP, 0), min((gy.max() + 2) * GRID_STEP, out_h)
    if u1 <= u0 or v1 <= v0:
        return result(out.T)
    # rendered transposed (the grid's rows and columns swapped), so the result is column-major like RLE itself
    sub = _expand_part(grid.transpose(1, 0, 2), v0, u0, v1, u1, scratch="mask_map")
    warped = cv2.remap(columns, sub, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    np.greater(warped, 0, out=out[u0:u1, v0:v1])
    return result(out.T, (u0, v0, u1 - u0, v1 - v0))


def crop_person(image: np.ndarray, camera: Camera, box, params: CropParams):
    """Crop one person: returns (crop image, crop camera, box in the crop)."""
    new_camera, size = crop_camera(camera, box, params, image.shape[1::-1])
    crop = reproject_image(image, camera, new_camera, size, params.interpolation)
    return crop, new_camera, reproject_box(box, camera, new_camera)


def crop_scale(camera: Camera, new_camera: Camera) -> float:
    """Output pixels per source pixel of a crop camera made by :func:`crop_camera` (its zoom factor)."""
    k_old, k_new = camera.intrinsic_matrix, new_camera.intrinsic_matrix
    return float(max(k_new[0, 0] / k_old[0, 0], k_new[1, 1] / k_old[1, 1]))


def choose_decode_factor(scale: float, max_factor: int = 8, max_upsample: float = 1.0) -> int:
    """The largest JPEG decode reduction ``f`` (1, 2, 4 or 8, at most ``max_factor``) after which the crop enlarges
    the decoded image at most ``max_upsample`` times, i.e. ``f <= max_upsample / scale`` with ``scale`` = output px
    per source px (1.0: at least one decoded pixel per output pixel)."""
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be positive and finite, got {scale}")
    limit = max_upsample / scale * (1 + 1e-9)  # tolerate rounding when 1 / scale is exactly a power of two
    return max(f for f in DECODE_FACTORS if f == 1 or (f <= limit and f <= max_factor))


def crop_person_from_jpeg(jpeg: bytes, camera: Camera, box, params: CropParams, *, max_factor: int = 8,
                          image_size=None):
    """:func:`crop_person` straight from JPEG bytes, decoding at reduced resolution when the crop shrinks.

    The crop camera and size are those of :func:`crop_camera` (they depend only on ``camera``, ``box`` and
    ``params``). The frame is decoded at 1/f of its size, f being the largest of 1, 2, 4, 8 with f <= 1/scale
    (:func:`choose_decode_factor`), so the decoded image still has at least about one pixel per crop pixel;
    its camera is ``camera.zoomed(1 / f)`` (see :func:`posebank.core.jpeg.decode_jpeg_reduced` for the
    pixel geometry), and :func:`reproject_image` renders the crop from it. OpenCV can only decode the whole
    frame, so the reduced full-frame decode is the saving on offer; the reprojection itself only touches the
    region under the crop.

    ``image_size`` (width, height) is read from the JPEG header when not given.

    Returns (crop image, crop camera, box in the crop, decode factor f).
    """
    if image_size is None:
        image_size = jpeg_size(jpeg)
    new_camera, size = crop_camera(camera, box, params, image_size)
    factor = choose_decode_factor(crop_scale(camera, new_camera), max_factor, params.max_decode_upsample)
    image = decode_jpeg_reduced(jpeg, factor)
    source_camera = camera if factor == 1 else camera.zoomed(1.0 / factor)
    crop = reproject_image(image, source_camera, new_camera, size, params.interpolation)
    return crop, new_camera, reproject_box(box, camera, new_camera), factor


@dataclasses.dataclass
class Person:
    """One person of a frame to crop: the frame's camera, the box, the person's full-frame mask (COCO RLE, b""
    when none)."""

    camera: Camera
    box: np.ndarray
    mask: bytes = b""


@dataclasses.dataclass
class CroppedPerson:
    image: bytes  # JPEG of the crop
    size: tuple[int, int]  # (width, height)
    camera: Camera  # of the crop
    box: np.ndarray  # in the crop
    mask: bytes  # COCO RLE in the crop (b"" when the person had none)
    mask_empty: bool = False  # a mask was given but none of it is left in the crop


def crop_frame_people(jpeg: bytes, image_size, people: list[Person], params: CropParams,
                      max_factor: int = 8) -> list[CroppedPerson]:
    """The whole per-person crop path for one frame: the frame is decoded once for all its people (at the largest
    reduction that every crop allows), then each person's image and mask are warped into its crop and encoded.
    Masks keep the connected component that best fits the box (posepile)."""
    from posebank.core.jpeg import encode_jpeg
    from posebank.core.masks import encode as encode_mask

    width, height = image_size
    plans = [crop_geometry(p.camera, p.box, params, image_size) for p in people]
    if not plans:
        return []
    factor = min(choose_decode_factor(crop_scale(p.camera, cam), max_factor, params.max_decode_upsample)
                 for p, (cam, _, _) in zip(people, plans))
    frame = decode_jpeg_reduced(jpeg, factor)
    out = []
    for person, (new_camera, size, new_box) in zip(people, plans):
        source_camera = person.camera if factor == 1 else person.camera.zoomed(1.0 / factor)
        coarse, valid, step = _coarse_map(source_camera, new_camera, *size)
        crop = warp(frame, _expand(coarse, *size, scratch="map"), valid, step, size,
                    params.interpolation)
        mask, empty = b"", False
        if person.mask:
            warped, extent = warp_mask(person.mask, (width, height), coarse, size, factor, with_extent=True)
            x, y, w, h = extent
            empty = not warped[y:y + h, x:x + w].any()
            if not empty:
                mask = encode_mask(best_component(warped, new_box, extent))
        out.append(CroppedPerson(encode_jpeg(crop, params.jpeg_quality), size, new_camera, new_box, mask, empty))
    return out
