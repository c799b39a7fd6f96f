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


class ValidatingPoseSampler:
    """posepile's ``AdaptivePoseSampler(threshold, check_validity=True)`` (``util/adaptive_pose_sampling.py``): the
    first pose is kept when it has a valid joint; later a pose is kept when a joint valid now is missing in the last
    kept pose, or when some joint valid now moved at least ``threshold_mm`` since the last kept pose (which then
    becomes this pose, its missing joints included)."""

    def __init__(self, threshold_mm: float):
        self.threshold = float(threshold_mm)
        self.previous: np.ndarray | None = None

    def should_keep(self, pose) -> bool:
        pose = np.asarray(pose, np.float64)
        valid = np.isfinite(pose).all(axis=-1)
        if self.previous is None:
            self.previous = pose.copy()
            return bool(valid.any())
        if np.any(valid & ~np.isfinite(self.previous).all(axis=-1)):
            self.previous = pose.copy()
            return True
        moved = np.linalg.norm(pose[valid] - self.previous[valid], axis=-1)
        if np.any(moved >= self.threshold):
            self.previous = pose.copy()
            return True
        return False


class AdaptivePoseSampler2:
    """posepile's ``AdaptivePoseSampler2(threshold, check_validity=True, assume_nan_unchanged=True, buffer_size)``
    (src/posepile/util/adaptive_pose_sampling.py), as a keep decision: the first pose is kept when some joint is
    valid; later, a pose is kept when a joint valid now is missing in the last kept pose, or when against every one
    of the last ``buffer_size`` kept poses its farthest moved valid joint moved at least ``threshold_mm``; a kept
    pose's missing joints are carried over from the last kept one (the ring buffer holds the filled pose)."""

    def __init__(self, threshold_mm: float, buffer_size: int):
        if int(buffer_size) < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        self.threshold, self.size = float(threshold_mm), int(buffer_size)
        self.kept: list[np.ndarray] = []

    def _add(self, pose: np.ndarray) -> None:
        if self.kept:
            pose = np.where(np.isnan(pose), self.kept[-1], pose)
        self.kept = [*self.kept, pose][-self.size:]

    def should_keep(self, pose) -> bool:
        pose = np.asarray(pose, np.float64)
        valid = np.isfinite(pose).all(axis=-1)
        if not self.kept:
            self._add(pose)
            return bool(valid.any())
        if np.any(valid & ~np.isfinite(self.kept[-1]).all(axis=-1)):
            self._add(pose)
            return True
        change = np.linalg.norm(pose[valid] - np.stack(self.kept)[:, valid], axis=-1)  # (kept, valid joints)
        if change.size == 0:
            return False
        with np.errstate(invalid="ignore"):
            farthest = np.where(np.isnan(change), -np.inf, change).max(axis=1)
        farthest = farthest[np.isfinite(farthest)]
        if not len(farthest) or farthest.min() < self.threshold:
            return False
        self._add(pose)
        return True


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
