"""posepile's plausibility filter (datasets3d.filter_dataset_by_plausibility), vectorised over blocks of examples.

A merged training example is dropped when fewer than ``min_joints_in_box`` of its valid joints project into its
person box, or when any bone (an edge of the union skeleton whose two joints are valid) is shorter than
``rel_small`` x or longer than ``rel_big`` x the mean training length of that bone and more than ``abs_big_mm``
off it. The mean is over every merged training example that has the bone (posepile's ``train_bones`` of the merged
dataset: sources sharing joint names share bones), computed in a first pass before anything is dropped. A bone
without any training example is not checked (posepile would divide by zero and drop every such example).
Exempt sources (posepile: SURREAL, ``surreal_always_plausible``) are kept whole.
"""

from __future__ import annotations

import numpy as np

from posebank.core.camera import distort_normalized

FEW_JOINTS_IN_BOX = "fewer joints in the box than min_joints_in_box"
IMPLAUSIBLE_BONE = "implausible bone length"
REASONS = (FEW_JOINTS_IN_BOX, IMPLAUSIBLE_BONE)


def bone_lengths(coords: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """(N, E) lengths of the bones ``pairs`` (local joint pairs), NaN where a joint is missing (the coordinates'
    precision; the means are summed in float64). Per coordinate axis: gathers of contiguous (N, J) planes are
    about 3x faster than gathering (N, J, 3) rows."""
    if len(pairs) == 0:
        return np.zeros((coords.shape[0], 0), np.float32)
    a, b = pairs[:, 0], pairs[:, 1]
    total = None
    for k in range(3):
        plane = np.ascontiguousarray(coords[..., k])  # float32, as stored: 0.1 mm at 10 m
        d = np.take(plane, a, axis=1)
        d -= np.take(plane, b, axis=1)
        d *= d
        total = d if total is None else np.add(total, d, out=total)
    return np.sqrt(total, out=total)


class BoneMeans:
    """Running sums of bone lengths per union edge (the first pass)."""

    def __init__(self, n_edges: int):
        self.sum = np.zeros(n_edges, np.float64)
        self.count = np.zeros(n_edges, np.int64)

    def add(self, coords: np.ndarray, pairs: np.ndarray, numbers: np.ndarray) -> None:
        lengths = bone_lengths(coords, pairs)
        valid = np.isfinite(lengths)
        np.add.at(self.sum, numbers, np.where(valid, lengths, 0.0).sum(axis=0, dtype=np.float64))
        np.add.at(self.count, numbers, valid.sum(axis=0))

    @property
    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.sum / np.maximum(self.count, 1), np.nan)


def joints_in_box(coords: np.ndarray, cols: dict) -> np.ndarray:
    """(N,) number of valid joints whose projection through the example's camera lies in its box (float32: a
    pixel-level test; undistorted crops skip the distortion model). Written out per component on (N, J) planes:
    a stacked (N, J, 3) x (N, 3, 3) matmul is about 2.5x slower."""
    R = cols["camera/R"].astype(np.float32, copy=False)
    t = cols["camera/t"].astype(np.float32, copy=False)
    K = cols["camera/intrinsic_matrix"].astype(np.float32, copy=False)
    dist = cols["camera/distortion_coeffs"]
    box = cols["bbox"].astype(np.float32, copy=False)
    coords = coords.astype(np.float32, copy=False)
    rel = [coords[..., k] - t[:, None, k] for k in range(3)]
    x, y, z = (R[:, None, i, 0] * rel[0] + R[:, None, i, 1] * rel[1] + R[:, None, i, 2] * rel[2] for i in range(3))
    with np.errstate(invalid="ignore", divide="ignore"):
        x /= z
        y /= z
        if dist.any():  # the distortion model only where a camera has coefficients
            d = distort_normalized(np.stack([x, y], axis=-1), dist.astype(np.float64)[:, None, :],
                                   cols["camera/distortion_model"].astype(np.int64)[:, None])
            x, y = d[..., 0], d[..., 1]
        u = K[:, None, 0, 0] * x + K[:, None, 0, 1] * y + K[:, None, 0, 2]
        v = K[:, None, 1, 1] * y + K[:, None, 1, 2]
        x0, y0 = box[:, None, 0], box[:, None, 1]
        inside = (z > 0) & (u >= x0) & (v >= y0) & (u < x0 + box[:, None, 2]) & (v < y0 + box[:, None, 3])
    return np.count_nonzero(inside, axis=1)


def implausible(coords: np.ndarray, cols: dict, pairs: np.ndarray, numbers: np.ndarray, mean: np.ndarray,
                p) -> np.ndarray:
    """(N,) int8: 0 plausible, else 1 + the index in :data:`REASONS` of the first rule the example breaks
    (posepile checks the box first). ``p`` is the merge's PlausibilityParams."""
    out = np.zeros(coords.shape[0], np.int8)
    few = joints_in_box(coords, cols) < p.min_joints_in_box
    lengths = bone_lengths(coords, pairs)
    m = mean[numbers] if len(numbers) else np.zeros(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = lengths / m
        bad = ((rel < p.rel_small) | (rel > p.rel_big)) & (np.abs(lengths - m) > p.abs_big_mm)
    bad &= np.isfinite(m)[None, :]
    out[bad.any(axis=1)] = 2
    out[few] = 1
    return out
