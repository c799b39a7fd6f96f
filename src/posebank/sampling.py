"""Frame sampling: posepile's adaptive pose sampling."""

from __future__ import annotations

import numpy as np


class AdaptivePoseSampler:
    """Keep a pose only when some valid joint moved at least ``threshold_mm`` since the last kept pose.

    Joints missing (NaN) in either pose are ignored; the first pose with any valid joint is kept.
    """

    def __init__(self, threshold_mm: float):
        self.threshold = float(threshold_mm)
        self.previous: np.ndarray | None = None

    def should_keep(self, pose) -> bool:
        pose = np.asarray(pose, np.float64)
        valid = np.all(np.isfinite(pose), axis=-1)
        if self.previous is None:
            if not valid.any():
                return False
            self.previous = pose.copy()
            return True
        both = valid & np.all(np.isfinite(self.previous), axis=-1)
        moved = np.linalg.norm(pose[both] - self.previous[both], axis=-1)
        if np.any(moved >= self.threshold):
            self.previous = pose.copy()
            return True
        return False
