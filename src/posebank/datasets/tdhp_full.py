"""MPI-INF-3DHP, full variant (posepile's ``3dhp_full``, used by huge8 and medium3).

The same raw tree as ``tdhp`` (see :mod:`posebank.datasets.tdhp` for the layout and readers), converted
differently, as posepile's ``tdhp/full.py`` does:

* all 14 cameras, including the ceiling and low cameras;
* all 28 joints, in posepile's order (joint 0, ``spine3`` in the release, is named ``thor``);
* every frame is a candidate (no 5-frame step): adaptive pose sampling (100 mm) alone thins the frames, and it
  runs before the visibility filter;
* truncated poses are kept as long as a third of the joints (9 of 28) project inside the image;
* all eight subjects are training data (no validation split).
"""

from __future__ import annotations

from posebank.datasets import tdhp
from posebank.datasets.base import DatasetInfo, RawInstance

INFO = DatasetInfo(
    name="tdhp_full",
    full_name="MPI-INF-3DHP (all cameras, 28 joints)",
    homepage=tdhp.INFO.homepage,
    licence=tdhp.INFO.licence,
    citation=tdhp.INFO.citation,
)
JOINT_INFO = tdhp.FULL_JOINT_INFO
SELECTED_JOINTS = tdhp.FULL_SELECTED_JOINTS

DEFAULT_PARAMS = {
    "train_subjects": [1, 2, 3, 4, 5, 6, 7, 8],
    "val_subjects": [],
    "sequences": [1, 2],
    "cameras": list(range(tdhp.N_CAMERAS)),
    "frame_step": 1,
    "adaptive_sampling_mm": 100,
    "min_visible_joints": len(SELECTED_JOINTS) // 3,
}

# the raw tree, its readers and its fixture are those of tdhp
read_calibration = tdhp.read_calibration
read_annot = tdhp.read_annot
make_fixture = tdhp.make_fixture


def check_layout(root, params: dict | None = None) -> list[tuple[int, int]]:
    return tdhp.check_layout(root, {**DEFAULT_PARAMS, **(params or {})}, dataset="tdhp_full")


def instances(root, params: dict | None = None) -> list[RawInstance]:
    """Every selected person instance of the raw tree, in a deterministic order."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    return tdhp.make_instances("tdhp_full", root, p, SELECTED_JOINTS, sample_first=True)
