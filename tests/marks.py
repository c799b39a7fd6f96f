"""Locating the marks that fixtures draw at projected joints."""

import numpy as np


def mark_centroid(image, point, radius: int) -> np.ndarray | None:
    """Intensity-weighted centroid of the bright mark near ``point`` (None when no mark is there)."""
    x0, y0 = int(round(point[0])), int(round(point[1]))
    ya, yb, xa, xb = y0 - radius, y0 + radius + 1, x0 - radius, x0 + radius + 1
    if ya < 0 or xa < 0 or yb > image.shape[0] or xb > image.shape[1]:
        return None
    win = image[ya:yb, xa:xb].astype(np.float64)
    win = win.mean(-1) if win.ndim == 3 else win
    threshold = (win.max() + np.median(win)) / 2
    w = np.clip(win - threshold, 0, None)
    if win.max() < 160 or w.sum() == 0:
        return None
    ys, xs = np.mgrid[ya:yb, xa:xb]
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


def isolated(points, min_distance: float) -> np.ndarray:
    """Mask of the points farther than ``min_distance`` from every other point (their marks don't touch)."""
    p = np.asarray(points, np.float64)
    d = np.linalg.norm(p[:, None] - p[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1) > min_distance


def mark_errors(image, points, radius: int, min_distance: float) -> np.ndarray:
    """Distances (px) between each isolated, fully visible projected point and the centroid of its mark."""
    errors = []
    for p, ok in zip(points, isolated(points, min_distance)):
        if not ok:
            continue
        c = mark_centroid(image, p, radius)
        if c is not None:
            errors.append(np.linalg.norm(c - p))
    return np.array(errors)
