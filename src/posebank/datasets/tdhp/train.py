"""MPI-INF-3DHP training set (Mehta et al., 3DV 2017), converted as posepile's ``3dhp``.

The raw tree, its readers and the world frame are described in :mod:`posebank.datasets.tdhp.common`.

Frame selection follows posepile: cameras 0 1 2 4 5 6 7 8 (chest height), every 5th frame, only frames where all
17 joints project inside the image, then adaptive pose sampling (100 mm) per camera; S1..S7 train, S8 validation.
Frames left out because the person is not fully inside the image, because no joint is annotated, or because they
lie past the end of a known short video are reported as dropped (the frame step and the sampler are selection).

Masks: the release's own FGmasks videos, read as posepile reads them (red > 32, the 4-connected component that best
overlaps the 17 joints' box): :func:`frame_source` hands them to the pipeline, so the segment stage keeps them. The
FGmasks videos are therefore part of the raw layout.
"""

from __future__ import annotations

from posebank.core.errors import ParamsError
from posebank.core.settings import check_dataset_params
from posebank.datasets.base import DatasetInfo, Dropped, RawInstance
from posebank.datasets.tdhp import common
from posebank.datasets.tdhp.fixture import make_fixture  # noqa: F401  (the contract: the tree's fixture)

NAME = "tdhp"
INFO = DatasetInfo(
    name=NAME,
    full_name="MPI-INF-3DHP",
    homepage=common.HOMEPAGE,
    licence=common.LICENCE,
    citation=common.CITATION,
)
JOINT_INFO = common.JOINT_INFO  # posepile's 17 joints
SELECTED_JOINTS = common.SELECTED_JOINTS

DEFAULT_PARAMS = {
    "train_subjects": [1, 2, 3, 4, 5, 6, 7],
    "val_subjects": [8],
    "sequences": [1, 2],
    "cameras": list(common.CHEST_CAMERAS),
    "frame_step": 5,
    "adaptive_sampling_mm": 100.0,
    "min_visible_joints": 17,
}


def check_training_params(dataset: str, params: dict | None, defaults: dict, n_joints: int) -> dict:
    """Shared by tdhp and tdhp_full: ``params`` over ``defaults``, checked (ParamsError names the key)."""
    p = check_dataset_params(dataset, params, defaults)
    common.check_subject_params(dataset, p, ("train_subjects", "val_subjects"))
    if not 0 <= p["min_visible_joints"] <= n_joints:
        raise ParamsError(f"datasets.{dataset}.min_visible_joints",
                          f"must be in 0..{n_joints}, got {p['min_visible_joints']}")
    return p


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
    return common.make_instances(NAME, root, check_params(params), SELECTED_JOINTS, sample_first=False,
                                 dropped=dropped)


FRAME_SOURCE_PARAMS: tuple[str, ...] = ()  # the frame source reads no parameter (frames are the raw files')


def frame_source(raw_root, params: dict | None = None):
    """The videos' frames with each person's mask from the release's FGmasks videos (posepile's rule, see
    :func:`posebank.datasets.tdhp.common.training_frame_source`); the segment stage keeps these masks."""
    check_params(params)
    return common.training_frame_source(raw_root, SELECTED_JOINTS)
