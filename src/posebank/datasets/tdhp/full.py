"""MPI-INF-3DHP, full variant (posepile's ``3dhp_full``, used by huge8 and medium3).

The same raw tree as ``tdhp`` (see :mod:`posebank.datasets.tdhp.common` for the layout and readers), converted
differently, as posepile's ``tdhp/full.py`` does:

* all 14 cameras, including the ceiling and low cameras;
* all 28 joints, in posepile's order (joint 0, ``spine3`` in the release, is named ``thor``);
* every frame is a candidate (no 5-frame step): adaptive pose sampling (100 mm) alone thins the frames, and it
  runs before the visibility filter;
* truncated poses are kept as long as a third of the joints (9 of 28) project inside the image (frames with fewer
  are reported as dropped);
* all eight subjects are training data (no validation split);
* masks from the FGmasks videos with tdhp's rule (red > 32, the component that best overlaps the 28 joints' box,
  clipped to the image). posepile's ``full.py`` takes the whole thresholded frame (``mask_frame[..., 0] > 32``), which
  also holds the chair, the ceiling and markers.
"""

from __future__ import annotations

from posebank.datasets.base import DatasetInfo, Dropped, RawInstance
from posebank.datasets.tdhp import common
from posebank.datasets.tdhp.common import FULL_JOINT_INFO, FULL_SELECTED_JOINTS, N_CAMERAS
from posebank.datasets.tdhp.fixture import make_fixture  # noqa: F401  (the contract: the tree's fixture)
from posebank.datasets.tdhp.train import check_training_params

NAME = "tdhp_full"
INFO = DatasetInfo(
    name=NAME,
    full_name="MPI-INF-3DHP (all cameras, 28 joints)",
    homepage=common.HOMEPAGE,
    licence=common.LICENCE,
    citation=common.CITATION,
)
JOINT_INFO = FULL_JOINT_INFO
SELECTED_JOINTS = FULL_SELECTED_JOINTS

DEFAULT_PARAMS = {
    "train_subjects": [1, 2, 3, 4, 5, 6, 7, 8],
    "val_subjects": [],
    "sequences": [1, 2],
    "cameras": list(range(N_CAMERAS)),
    "frame_step": 1,
    "adaptive_sampling_mm": 100.0,
    "min_visible_joints": len(SELECTED_JOINTS) // 3,
}


def check_params(params: dict | None) -> dict:
    return check_training_params(NAME, params, DEFAULT_PARAMS, len(SELECTED_JOINTS))


def splits(params: dict | None = None) -> tuple[str, ...]:
    """``train`` and ``val``, each when it has subjects."""
    p = check_params(params)
    return tuple(s for s, key in (("train", "train_subjects"), ("val", "val_subjects")) if p[key])


def check_layout(root, params: dict | None = None) -> list[tuple[int, int]]:
    """Verify that the raw tree holds what the conversion needs; returns the (subject, sequence) pairs."""
    p = check_params(params)
    return common.check_layout(root, NAME, [*p["train_subjects"], *p["val_subjects"]], p["sequences"],
                               p["cameras"], common.MASK_KINDS)


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance of the raw tree, in a deterministic order."""
    return common.make_instances(NAME, root, check_params(params), SELECTED_JOINTS, sample_first=True,
                                 dropped=dropped)


FRAME_SOURCE_PARAMS: tuple[str, ...] = ()  # the frame source reads no parameter (frames are the raw files')


def frame_source(raw_root, params: dict | None = None):
    """The videos' frames with each person's mask from the release's FGmasks videos (posepile's rule, see
    :func:`posebank.datasets.tdhp.common.training_frame_source`); the segment stage keeps these masks."""
    check_params(params)
    return common.training_frame_source(raw_root, SELECTED_JOINTS)
