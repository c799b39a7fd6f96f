"""Human3.6M with every distinct joint of the release (``h36m_alljoints``), as posepile's ``make_h36m_alljoints``.

The release's poses have 32 joints, seven of which duplicate others; this variant keeps the 25 others, in
posepile's order and with posepile's names (so that merged skeletons line up with posepile's, which merges this
dataset into huge8 with the suffix ``h36m``). Everything else is :mod:`posebank.datasets.h36m`'s: the raw tree,
the settings (``datasets.h36m_alljoints`` in params.yaml, the same keys and defaults), cameras, boxes, the S9
correction, and the frames: they are selected on the 17 joints of ``h36m`` (posepile takes the examples of
``h36m`` and replaces their joints), so both datasets hold the same frames in the same splits.

Left out, with the joint each duplicates (which the fixture reproduces): 11 (pelvis, 0), 16 and 24 (neck, 13),
20 (left wrist, 19), 23 (22), 28 (right wrist, 27), 31 (30). Each conversion logs, at INFO, the largest distance
between each left-out joint and its twin over the converted frames, so the assumption can be read off a run on
the real release.
"""

from __future__ import annotations

import logging

import numpy as np

from posebank.core.skeleton import JointInfo
from posebank.datasets.base import DatasetInfo, Dropped, RawInstance
from posebank.datasets.h36m import (
    DEFAULT_PARAMS,
    SPLIT_KEYS,
    check_h36m_params,
    collect_instances,
    layout_actions,
    make_fixture,  # the same raw tree as h36m, so the same writer (a demo then writes the shared tree once)
)
from posebank.datasets.h36m import INFO as H36M_INFO

log = logging.getLogger(__name__)

NAME = "h36m_alljoints"
INFO = DatasetInfo(
    name=NAME,
    full_name="Human3.6M, all joints",
    homepage=H36M_INFO.homepage,
    licence=H36M_INFO.licence,
    citation=H36M_INFO.citation,
)

# posepile ds/h36m/main.py, make_h36m_alljoints: release joint indices, names and edges
ALL_JOINTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19, 21, 22, 25, 26, 27, 29, 30, 0)
JOINT_INFO = JointInfo(
    "rhip,rkne,rank,rfoo,rtoe,lhip,lkne,lank,lfoo,ltoe,spin,neck,head,htop,"
    "lsho,lelb,lwri,lthu,lfin,rsho,relb,rwri,rthu,rfin,pelv",
    "htop-head-neck-spin-pelv-lhip-lkne-lank-lfoo-ltoe,lthu-lwri-lelb-lsho-neck-rsho-relb-rwri-rthu,rwri-rfin,"
    "lwri-lfin,pelv-rhip-rkne-rank-rfoo-rtoe")
# the release joints left out, each with the kept joint it duplicates
DUPLICATES = {11: 0, 16: 13, 20: 19, 23: 22, 24: 13, 28: 27, 31: 30}

__all__ = ["ALL_JOINTS", "DEFAULT_PARAMS", "DUPLICATES", "INFO", "JOINT_INFO", "NAME", "check_layout", "check_params",
           "instances", "make_fixture", "splits"]


def check_params(params: dict | None = None) -> dict:
    """``params`` over DEFAULT_PARAMS (those of h36m), checked; ParamsError names ``datasets.h36m_alljoints.<key>``."""
    return check_h36m_params(NAME, params)


def splits(params: dict | None = None) -> tuple[str, ...]:
    """The splits the params select: those with subjects (as h36m)."""
    p = check_params(params)
    return tuple(split for split, key in SPLIT_KEYS if p[key])


def check_layout(root, params: dict | None = None) -> dict[int, list[str]]:
    """Verify that the raw tree (h36m's) holds what the conversion needs; returns the actions per subject."""
    return layout_actions(root, check_params(params), NAME)


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """h36m's instances (the same frames, splits, cameras and boxes) with the 25 distinct release joints."""
    p = check_params(params)
    largest = {dup: 0.0 for dup in DUPLICATES}

    def seen(_cdf: str, poses: np.ndarray, frames: list[int]) -> None:
        if not frames:
            return
        for dup, twin in DUPLICATES.items():
            d = np.linalg.norm(poses[frames, dup] - poses[frames, twin], axis=-1)
            if np.isfinite(d).any():
                largest[dup] = max(largest[dup], float(np.nanmax(d)))

    out = collect_instances(root, p, dropped, NAME, ALL_JOINTS, poses_seen=seen)
    log.info("%s: release joints left out as duplicates, largest distance to their twin over the converted frames: "
             "%s", NAME, ", ".join(f"{dup} (of {twin}) {largest[dup]:.1f} mm" for dup, twin in DUPLICATES.items()))
    return out
