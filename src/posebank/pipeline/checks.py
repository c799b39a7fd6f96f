"""The checks every dataset's instances pass before they are written to records.h5 (the convert stage), whatever
the dataset: what a converter hands over must be something the pipeline can crop and a model can learn from.

* joint count: every instance has as many joints as the dataset's ``JOINT_INFO`` (else a converter bug or a wrong
  file: always an error naming the file and both counts);
* infinite joint coordinates: never a valid "missing" (that is NaN), so the instance is dropped with the reason
  :data:`NON_FINITE`, always;
* the camera: a finite camera with positive focal lengths and a rotation R that is orthonormal (``|R R^T - I| <=``
  :data:`ORTHONORMAL_TOL`) and proper (``det R > 0``);
* duplicates: one person of one frame (``source``, ``frame_index``, ``person_index`` and the same joints) is one
  instance;
* units: the median bone length (over ``JOINT_INFO``'s edges, finite joints) of each source file is at least
  :data:`MIN_BONE_MM` (a human bone in millimetres is 50-500; in metres it is below 1): always an error;
* splits: every split the params select (``module.splits(params)``) receives instances.

A bad camera or a duplicate is an error naming the file (``pipeline.bad_instances: error``, the default), or, with
``quarantine``, a :class:`~posebank.datasets.base.Dropped` entry with the reason (duplicates: the first is kept),
counted in the log and in the cache's quarantine. An empty split is an error naming the split and the params key
that selects it; with ``quarantine`` it is a warning (the validation stage still fails on it).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from posebank.core.errors import DatasetError
from posebank.core.skeleton import JointInfo
from posebank.datasets.base import Dropped, RawInstance

log = logging.getLogger(__name__)

NON_FINITE = "non-finite joint coordinates"
DUPLICATE = "duplicate instance: the same person (source, frame and person_index) as an earlier instance"
ORTHONORMAL_TOL = 1e-3  # |R R^T - I| (Frobenius): float32 storage of a rotation stays near 1e-7
MIN_BONE_MM = 20.0  # a median bone below this is not millimetres


def _where(root, r: RawInstance) -> str:
    """The instance's file (in the raw tree when ``root`` is given) and frame."""
    path = Path(root) / r.source if root is not None else Path(r.source)
    return f"{path}#{r.frame_index}" if r.frame_index >= 0 else str(path)


def _source(root, r: RawInstance) -> str:
    return str(Path(root) / r.source if root is not None else r.source)


def check_joint_count(instances: Sequence[RawInstance], joint_info: JointInfo, root=None) -> None:
    """DatasetError naming the first instance whose joints are not (J, 3), J of the dataset's skeleton."""
    j = joint_info.n_joints
    for r in instances:
        shape = np.shape(r.world_coords)
        if shape != (j, 3):
            found = shape[0] if len(shape) == 2 and shape[1] == 3 else f"shape {shape}"
            raise DatasetError(_where(root, r), f"the instance has {found} joints, the dataset's skeleton "
                               f"{j} ({', '.join(joint_info.names[:4])}, ...): a converter bug or a file of "
                               "another skeleton")
        if r.keypoints2d is not None and np.shape(r.keypoints2d) != (j, 2):
            raise DatasetError(_where(root, r), f"the instance's 2D joints have shape {np.shape(r.keypoints2d)}, "
                               f"the dataset's skeleton ({j}, 2)")


def camera_problems(instances: Sequence[RawInstance]) -> list[str | None]:
    """Per instance what is wrong with its camera (None: nothing). Cameras shared by instances are checked once."""
    seen: dict[int, str | None] = {}
    out = []
    for r in instances:
        c = r.camera
        if id(c) not in seen:
            seen[id(c)] = camera_problem(c)
        out.append(seen[id(c)])
    return out


def camera_problem(camera) -> str | None:
    """What is wrong with one camera, or None."""
    for name in ("intrinsic_matrix", "R", "t", "distortion_coeffs"):
        if not np.all(np.isfinite(np.asarray(getattr(camera, name), np.float64))):
            return f"camera has non-finite {name}"
    k = np.asarray(camera.intrinsic_matrix, np.float64)
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        return f"camera has a non-positive focal length (fx {k[0, 0]:g}, fy {k[1, 1]:g})"
    rot = np.asarray(camera.R, np.float64)
    dev = float(np.linalg.norm(rot @ rot.T - np.eye(3)))
    if dev > ORTHONORMAL_TOL:
        return f"camera rotation R is not orthonormal (|R R^T - I| = {dev:.3g}, more than {ORTHONORMAL_TOL:g})"
    det = float(np.linalg.det(rot))
    if det < 0:
        return f"camera rotation R is a reflection (det R = {det:.3g}), not a rotation"
    return None


def duplicate_key(r: RawInstance) -> tuple:
    """What makes two instances the same person listed twice: the frame (``source``, ``frame_index``), the
    ``person_index`` and the joints. Two different people of one frame with the same ``person_index`` (a dataset
    without a frame source may leave it 0, MuPoTS does) are two instances."""
    kp = b"" if r.keypoints2d is None else np.asarray(r.keypoints2d, np.float64).tobytes()
    return (r.source, int(r.frame_index), int(r.person_index), np.asarray(r.world_coords, np.float64).tobytes(), kp)


def median_bone_mm(instances: Sequence[RawInstance], joint_info: JointInfo) -> float:
    """The median length over the skeleton's edges and the instances of the bones whose joints are finite; NaN
    when there is none."""
    if not instances or not joint_info.edges:
        return float("nan")
    wc = np.stack([np.asarray(r.world_coords, np.float64) for r in instances])
    edges = np.asarray(joint_info.edges, np.int64)
    lengths = np.linalg.norm(wc[:, edges[:, 0]] - wc[:, edges[:, 1]], axis=-1)
    lengths = lengths[np.isfinite(lengths)]
    return float(np.median(lengths)) if lengths.size else float("nan")


def check_units(instances: Sequence[RawInstance], joint_info: JointInfo, root=None) -> None:
    """DatasetError naming the first source file whose joints look like metres (median bone < MIN_BONE_MM)."""
    by_source: dict[str, list[RawInstance]] = {}
    for r in instances:
        by_source.setdefault(r.source, []).append(r)
    for group in by_source.values():
        bone = median_bone_mm(group, joint_info)
        if np.isfinite(bone) and bone < MIN_BONE_MM:
            raise DatasetError(_source(root, group[0]), f"the joints look like metres (median bone {bone:.3g}, "
                               f"expected millimetres: a human bone is 50-500 mm)")


def split_key(dataset: str, params: dict | None, split: str) -> str:
    """The params key that selects ``split`` (``datasets.<ds>.<split>_subjects``, ``.splits`` or ``.split``)."""
    p = params or {}
    for key in (f"{split}_subjects", "splits", "split"):
        if key in p:
            return f"datasets.{dataset}.{key}"
    return f"datasets.{dataset}"


def check_instances(dataset: str, joint_info: JointInfo, instances: list[RawInstance], dropped: list[Dropped],
                    splits: Sequence[str] = (), params: dict | None = None, policy: str = "error",
                    root=None, params_source: str = "params.yaml") -> list[RawInstance]:
    """The instances that pass the checks of the module docstring; drops are appended to ``dropped`` and counted
    in the log. ``policy``: ``pipeline.bad_instances``; ``root``: the raw tree, to name files in errors;
    ``params_source``: the params file, to name the key of an empty split."""
    check_joint_count(instances, joint_info, root)
    keep = np.ones(len(instances), bool)
    new: list[Dropped] = []

    def bad(i: int, reason: str, hint: str = "") -> None:
        if policy != "quarantine":
            raise DatasetError(_where(root, instances[i]), reason + hint)
        keep[i] = False
        new.append(Dropped(_where(None, instances[i]), reason))

    for i, r in enumerate(instances):
        wc = np.asarray(r.world_coords, np.float64)
        kp = None if r.keypoints2d is None else np.asarray(r.keypoints2d, np.float64)
        if np.isinf(wc).any() or (kp is not None and np.isinf(kp).any()):
            keep[i] = False
            new.append(Dropped(_where(None, r), NON_FINITE))
    for i, problem in enumerate(camera_problems(instances)):
        if problem is not None and keep[i]:
            bad(i, problem)
    seen: dict[tuple, int] = {}
    for i, r in enumerate(instances):
        if not keep[i]:
            continue
        key = duplicate_key(r)
        if key in seen:
            bad(i, DUPLICATE, f" (person_index {r.person_index}, the same joints: the person is listed twice; two "
                "people of one frame must differ in person_index)")
        else:
            seen[key] = i
    kept = [r for r, k in zip(instances, keep) if k]
    check_units(kept, joint_info, root)
    counts = Counter(d.reason for d in new)
    for reason, n in counts.most_common():
        log.info("%s: dropped %d (%s), e.g. %s", dataset, n, reason, next(d.where for d in new if d.reason == reason))
    dropped.extend(new)
    present = Counter(r.split for r in kept)
    for split in splits:
        if not present[split]:
            key = split_key(dataset, params, split)
            if policy != "quarantine":
                raise DatasetError(f"{params_source}: {key}", f"the {split} split it selects has no instances "
                                   "(every one was dropped, or the raw tree has none for it)")
            log.warning("%s: the %s split (%s) has no instances", dataset, split, key)
    return kept
