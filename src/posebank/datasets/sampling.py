"""Frame selection shared by the datasets: posepile's adaptive pose sampling, and recording what is left out.

Selection (a frame step, the adaptive sampler) is not a drop; frames left out for a data reason (no joint
annotated, the person outside the image, an annotation marked invalid, ...) are recorded as
:class:`~posebank.datasets.base.Dropped` by :func:`record_drop`, one entry per file and reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from posebank.datasets.base import Dropped


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


def record_drop(dropped: list | None, where: str, frames: Sequence[int], reason: str) -> None:
    """Append one :class:`Dropped` for ``frames`` of ``where`` left out for ``reason`` (``where#frame`` when it is
    a single frame; nothing when ``frames`` is empty or ``dropped`` is None)."""
    frames = [int(i) for i in frames]
    if dropped is None or not frames:
        return
    dropped.append(Dropped(f"{where}#{frames[0]}" if len(frames) == 1 else where, reason, len(frames)))


MISSING_POSE = "every joint is missing (NaN) in the annotation"


def drop_missing_poses(poses: np.ndarray, frames: Iterable[int], where: str, dropped: list | None) -> list[int]:
    """The ``frames`` whose pose (``poses[i]``, (J, 3)) has at least one finite joint; the others are recorded in
    ``dropped``. (The adaptive sampler never keeps such a pose either, so placing this before it changes nothing.)"""
    frames = [int(i) for i in frames]
    if not frames:
        return frames
    finite = np.isfinite(np.asarray(poses)[frames]).all(axis=-1).any(axis=-1)
    record_drop(dropped, where, [i for i, ok in zip(frames, finite) if not ok], MISSING_POSE)
    return [i for i, ok in zip(frames, finite) if ok]
