"""Contact sheets: a grid of random crops per split with the skeleton, box and mask drawn over them.

One row per split (train / val / test; empty splits are left out), ``per_split`` tiles per row chosen at
random with a fixed seed, so the same cache and seed always give the same, byte-identical PNG. Each tile is
the stored crop resized to ``tile`` pixels (aspect kept, padded) with

* the person mask as a translucent tint plus its contour,
* the box as a rectangle,
* the skeleton: edges as lines (left side, right side and centre in three colours) and joints as dots
  (hollow for joints marked occluded); joints without coordinates are skipped,

and a caption (subject, sequence, frame). Left and right come from the joint names (``l``/``r`` prefix whose
mirrored name is also a joint, as in :mod:`posebank.core.skeleton`).

:func:`overlay` draws onto one crop and returns where the joints went, :func:`make_tile` does the same
for one letterboxed tile, :func:`render_contact_sheet` writes the whole sheet (atomically, as
:mod:`posebank.core.atomic` writes every output). Crops are decoded by :meth:`Example.decode_image`
(:func:`posebank.core.jpeg.decode_jpeg`); one that does not decode gets a placeholder tile.
"""

from __future__ import annotations

import cv2
import numpy as np

from posebank.core.atomic import prepare_output, write_bytes
from posebank.core.errors import DataError
from posebank.core.skeleton import JointInfo, mirror_name
from posebank.core.store import OCCLUDED, SPLITS, Cache, Example

# colours (BGR)
LEFT_COLOR = (255, 150, 0)  # azure
RIGHT_COLOR = (0, 70, 255)  # red-orange
CENTER_COLOR = (0, 215, 255)  # yellow
SIDE_COLORS = {"left": LEFT_COLOR, "right": RIGHT_COLOR, "center": CENTER_COLOR}
BOX_COLOR = (90, 230, 90)  # green
MASK_COLOR = (220, 60, 220)  # magenta
MASK_ALPHA = 0.35
BACKGROUND = (32, 32, 32)
TILE_PAD = (16, 16, 16)
TEXT_COLOR = (235, 235, 235)
MUTED_TEXT = (170, 170, 170)
FONT = cv2.FONT_HERSHEY_SIMPLEX
GAP = 4
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_FAR = 1e4  # projected joints further than this from the image (pixels) are not drawn


# ------------------------------------------------------------------------------------------- geometry
def joint_sides(joint_info: JointInfo) -> list[str]:
    """``"left"``, ``"right"`` or ``"center"`` for every joint (a side prefix counts if its mirror exists)."""
    ids = joint_info.ids
    out = []
    for name in joint_info.names:
        mirrored = mirror_name(name)
        if mirrored != name and mirrored in ids:
            out.append("left" if name[0] == "l" else "right")
        else:
            out.append("center")
    return out


def edge_sides(joint_info: JointInfo) -> list[str]:
    """Side of every edge: left or right if either end is on that side (and none on the other), else centre."""
    sides = joint_sides(joint_info)
    out = []
    for a, b in joint_info.edges:
        pair = {sides[a], sides[b]} - {"center"}
        out.append(pair.pop() if len(pair) == 1 else "center")
    return out


def joint_pixels(example: Example) -> np.ndarray:
    """Projected joints in the stored crop's pixels, (J, 2), NaN for missing joints or joints behind the camera."""
    world = np.asarray(example.world_coords, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cam = example.camera.world_to_camera(world)
        px = example.camera.camera_to_image(cam)
    bad = ~np.isfinite(world).all(axis=1) | ~(cam[:, 2] > 0) | ~np.isfinite(px).all(axis=1)
    px[bad] = np.nan
    return px


def _fixed(pt) -> tuple[int, int]:
    return int(round(pt[0] * (1 << _SHIFT))), int(round(pt[1] * (1 << _SHIFT)))


def _drawable(pt, shape) -> bool:
    h, w = shape[:2]
    return bool(np.isfinite(pt).all() and -_FAR < pt[0] < w + _FAR and -_FAR < pt[1] < h + _FAR)


def overlay(example: Example, joint_info: JointInfo, scale: float = 1.0,
            image: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw mask, box and skeleton onto the example's crop resized by ``scale``.

    Returns ``(image, joint_pixels)``: the drawn BGR image and the (J, 2) joint positions drawn, in that
    image's pixels (pixel centres at integers), NaN for joints that were skipped. ``image`` may supply the
    already decoded crop.
    """
    crop = example.decode_image() if image is None else image
    h0, w0 = crop.shape[:2]
    if scale != 1.0:
        size = (max(1, round(w0 * scale)), max(1, round(h0 * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        img = cv2.resize(crop, size, interpolation=interp)
    else:
        img = crop.copy()
    h, w = img.shape[:2]
    sx, sy = w / w0, h / h0
    unit = max(1, round(max(h, w) / 192))  # line width that stays visible at any tile size

    mask = example.decode_mask()
    if mask is not None and mask.shape == (h0, w0) and mask.any():
        m = cv2.resize(mask.astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_LINEAR) >= 128
        tint = np.empty_like(img)
        tint[:] = MASK_COLOR
        blended = cv2.addWeighted(img, 1 - MASK_ALPHA, tint, MASK_ALPHA, 0)
        img[m] = blended[m]
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(img, contours, -1, MASK_COLOR, 1, cv2.LINE_AA)

    bbox = np.asarray(example.bbox, np.float64)
    if bbox.shape == (4,) and np.isfinite(bbox).all() and bbox[2] > 0 and bbox[3] > 0:
        x, y, bw, bh = bbox
        cv2.rectangle(img, _fixed((x * sx, y * sy)), _fixed(((x + bw) * sx - 1, (y + bh) * sy - 1)),
                      BOX_COLOR, unit, cv2.LINE_AA, _SHIFT)

    px = joint_pixels(example)
    px[:, 0] = (px[:, 0] + 0.5) * sx - 0.5
    px[:, 1] = (px[:, 1] + 0.5) * sy - 0.5
    ok = np.array([_drawable(p, img.shape) for p in px], bool)
    px[~ok] = np.nan
    for (a, b), side in zip(joint_info.edges, edge_sides(joint_info)):
        if ok[a] and ok[b]:
            cv2.line(img, _fixed(px[a]), _fixed(px[b]), SIDE_COLORS[side], unit, cv2.LINE_AA, _SHIFT)
    vis = example.visibility
    radius = unit + 1
    for j, side in enumerate(joint_sides(joint_info)):
        if not ok[j]:
            continue
        occluded = vis is not None and j < len(vis) and int(vis[j]) == OCCLUDED
        centre = _fixed(px[j])
        cv2.circle(img, centre, (radius + 1) << _SHIFT, (20, 20, 20), -1 if not occluded else 2, cv2.LINE_AA,
                   _SHIFT)
        cv2.circle(img, centre, radius << _SHIFT, SIDE_COLORS[side], -1 if not occluded else 1, cv2.LINE_AA,
                   _SHIFT)
    return img, px


def make_tile(example: Example, joint_info: JointInfo, tile: int = 192,
              image: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """One ``tile`` x ``tile`` letterboxed, drawn crop.

    Returns ``(tile_image, joint_pixels, (scale, x_offset, y_offset))``: joint positions in tile pixels (NaN
    if skipped), and the map from crop pixel centres to tile pixels: ``tile = (crop + 0.5) * scale - 0.5 +
    offset``, ``scale`` = (x scale, y scale) (each may differ from the nominal one by the rounding of the resized
    size; crops need not be square).
    """
    crop = example.decode_image() if image is None else image
    h0, w0 = crop.shape[:2]
    scale = tile / max(h0, w0)
    drawn, px = overlay(example, joint_info, scale, crop)
    h, w = drawn.shape[:2]
    out = np.empty((tile, tile, 3), np.uint8)
    out[:] = TILE_PAD
    ox, oy = (tile - w) // 2, (tile - h) // 2
    out[oy:oy + h, ox:ox + w] = drawn
    px = px + [ox, oy]
    return out, px, (np.array([w / w0, h / h0]), float(ox), float(oy))


# --------------------------------------------------------------------------------------------- text
def _font_scale(height_px: int) -> float:
    """A Hershey font scale whose capital letters are about ``height_px`` tall."""
    return height_px / 22.0


def _fit(text: str, width: int, scale: float, thickness: int = 1) -> str:
    """``text`` shortened with '...' until it fits ``width`` pixels."""
    if cv2.getTextSize(text, FONT, scale, thickness)[0][0] <= width:
        return text
    while text and cv2.getTextSize(text + "...", FONT, scale, thickness)[0][0] > width:
        text = text[:-1]
    return text + "..."


def _put(img, text: str, org, height_px: int, color=TEXT_COLOR, thickness: int = 1, width: int | None = None):
    scale = _font_scale(height_px)
    if width is not None:
        text = _fit(text, width, scale, thickness)
    cv2.putText(img, text, (int(org[0]), int(org[1])), FONT, scale, color, thickness, cv2.LINE_AA)


def _placeholder(tile: int, text: str) -> np.ndarray:
    out = np.empty((tile, tile, 3), np.uint8)
    out[:] = TILE_PAD
    _put(out, text, (6, tile // 2), max(8, tile // 16), MUTED_TEXT, width=tile - 12)
    return out


# --------------------------------------------------------------------------------------------- sheet
def choose_examples(splits: np.ndarray, per_split: int, seed: int = 0) -> dict[str, list[int]]:
    """Random example indices per split (sorted), the same for the same seed; splits with no example left out.

    Each split has its own random stream, so one split's choice does not depend on the others.
    """
    splits = np.asarray(splits)
    out = {}
    for k, name in enumerate(SPLITS):
        idx = np.flatnonzero(splits == k)
        if len(idx) == 0 or per_split <= 0:
            continue
        rng = np.random.default_rng([int(seed), k])
        pick = rng.choice(idx, size=min(per_split, len(idx)), replace=False)
        out[name] = sorted(int(i) for i in pick)
    return out


def _layout(tile: int, per_split: int) -> dict[str, int]:
    caption = max(12, round(tile * 0.09))
    return {
        "tile": tile,
        "caption": caption,
        "label": max(96, round(tile * 0.62)),
        "title": max(30, round(tile * 0.2)),
        "cols": max(1, per_split),
        "cell_w": tile + GAP,
        "cell_h": tile + caption + GAP,
    }


def sheet_size(tile: int, per_split: int, n_rows: int) -> tuple[int, int]:
    """(width, height) in pixels of a sheet with ``n_rows`` split rows (an empty cache counts as one row)."""
    lay = _layout(tile, per_split)
    width = GAP + lay["label"] + lay["cols"] * lay["cell_w"]
    height = lay["title"] + max(1, n_rows) * lay["cell_h"] + GAP
    return width, height


def _caption(ex: Example) -> str:
    parts = [p for p in (ex.subject, ex.sequence) if p]
    parts.append(f"#{ex.frame_index}")
    return " ".join(parts)


def compose_sheet(cache: Cache, chosen: dict[str, list[int]], per_split: int, tile: int) -> np.ndarray:
    counts = cache.split_counts()
    lay = _layout(tile, per_split)
    width, height = sheet_size(tile, per_split, len(chosen))
    sheet = np.empty((height, width, 3), np.uint8)
    sheet[:] = BACKGROUND
    n_total = len(cache)
    th = lay["title"]
    split_text = ", ".join(f"{s} {counts[s]}" for s in SPLITS if counts[s])
    title = f"{cache.dataset}: {n_total} examples" + (f" ({split_text})" if split_text else "")
    _put(sheet, title, (GAP + 4, round(th * 0.68)), max(10, round(th * 0.42)), TEXT_COLOR, 1 + (tile >= 256),
         width=width - 2 * GAP - 8)
    if not chosen:
        y = th + lay["cell_h"] // 2
        _put(sheet, "empty cache: no examples", (GAP + 8, y), max(10, tile // 12), MUTED_TEXT,
             width=width - 2 * GAP - 16)
        return sheet
    ji = cache.joint_info
    label_h = max(10, round(tile * 0.075))
    for row, (split, indices) in enumerate(chosen.items()):
        y0 = th + row * lay["cell_h"]
        lx = GAP + 4
        _put(sheet, split, (lx, y0 + label_h + 8), round(label_h * 1.3), TEXT_COLOR, 2, width=lay["label"] - 8)
        _put(sheet, f"{counts[split]} in split", (lx, y0 + 2 * label_h + 22), label_h, MUTED_TEXT,
             width=lay["label"] - 8)
        _put(sheet, f"{len(indices)} shown", (lx, y0 + 3 * label_h + 32), label_h, MUTED_TEXT,
             width=lay["label"] - 8)
        for col, i in enumerate(indices):
            x0 = GAP + lay["label"] + col * lay["cell_w"]
            ex = cache[i]
            try:
                img, _, _ = make_tile(ex, ji, tile)
            except (DataError, cv2.error):
                img = _placeholder(tile, f"example {i}: undecodable")
            sheet[y0:y0 + tile, x0:x0 + tile] = img
            _put(sheet, _caption(ex), (x0 + 2, y0 + tile + round(lay["caption"] * 0.8)),
                 round(lay["caption"] * 0.62), MUTED_TEXT, width=tile - 4)
    return sheet


def encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError(f"could not encode a {image.shape} image as PNG")
    return buf.tobytes()


def render_contact_sheet(cache_path, out_png, per_split: int = 8, seed: int = 0, tile: int = 192) -> dict:
    """Write a contact sheet of ``cache_path`` (a cache file or an open :class:`Cache`) to ``out_png``.

    Returns ``{"path", "n_tiles", "splits", "size"}``: ``splits`` maps each shown split to the example
    indices drawn (in order), ``size`` is the sheet's (width, height).
    """
    if per_split < 1:
        raise ValueError(f"per_split must be at least 1, got {per_split}")
    if tile < 32:
        raise ValueError(f"tile must be at least 32 pixels, got {tile}")
    prepare_output(out_png)  # an unwritable output is found before the work
    from posebank.merging.reader import Merge, open_any

    own = not isinstance(cache_path, (Cache, Merge))
    cache = open_any(cache_path) if own else cache_path
    try:
        chosen = choose_examples(cache.column("split") if len(cache) else np.zeros(0, np.uint8), per_split, seed)
        sheet = compose_sheet(cache, chosen, per_split, tile)
    finally:
        if own:
            cache.close()
    path = write_bytes(out_png, encode_png(sheet))
    return {"path": str(path), "n_tiles": sum(len(v) for v in chosen.values()), "splits": chosen,
            "size": (int(sheet.shape[1]), int(sheet.shape[0]))}
