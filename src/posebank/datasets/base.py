"""The dataset contract: what every dataset module provides, and the types it hands to the pipeline.

A dataset module (``posebank.datasets.<family>...``, registered by name in ``posebank.datasets``) is checked
against :class:`DatasetModule` by the conformance tests. It provides

* ``INFO`` (:class:`DatasetInfo`: names, homepage, licence, citation) and ``JOINT_INFO`` (the skeleton);
* ``DEFAULT_PARAMS``: every converter setting with its default (params.yaml ``datasets.<name>`` overrides them;
  types follow the defaults, unknown keys are rejected);
* ``check_params(params)``: the params.yaml entry over the defaults, checked (types, ranges, known subjects and
  cameras); a :class:`~posebank.core.errors.ParamsError` names ``datasets.<name>.<key>``;
* ``check_layout(root, params)``: raises :class:`RawLayoutError` naming what is missing;
* ``instances(root, params, dropped)``: every selected person instance (:class:`RawInstance`), in a deterministic
  order; frames or sequences left out for a data reason (all joints missing, an unreadable file, ...) are appended
  to ``dropped`` as :class:`Dropped` (selection by frame step or pose sampling is not a drop);
* ``splits(params)``: the splits the params ask for (each must end up with examples);
* ``make_fixture(root, seed)``: a miniature raw tree in the dataset's real layout; returns the root;
* optionally ``frame_source(root, params)``: a :data:`FrameSource` for images that are not plain files of the
  raw tree (rendered composites, flipped frames), with per-person masks and visibilities, and then optionally
  ``FRAME_SOURCE_PARAMS``: the names of the params it reads (default: all; a shard's frames are rebuilt when one
  of them changes) and ``frame_source_files(root, source)``: the raw files, relative to the root, that the frames
  of ``source`` are rendered from besides the source itself (e.g. the calibration an undistortion reads; a shard's
  frames are rebuilt when one of them changes);
* optionally ``SHARD_KEY``: the instance attributes, outermost first, at which the dataset is cut into shards
  (default ``("subject", "sequence", "camera_name")``; ``()`` cuts the frame order into equal parts), see
  :mod:`posebank.pipeline.plan`;
* optionally ``provenance(root, params)``: a JSON-able dict stored with the cache (``provenance`` attribute): where
  the body-model fits come from (``{"body_model": {"model": "smpl", "source": "3DPW's own SMPL fits"}}``) and
  the optional inputs attached (``"attached": [{"kind": "eft", "path": ..., "sha256": ...}]``);
* optionally ``RESOURCES``: the raw files the fetch stage downloads (:class:`posebank.fetching.resources.Resource`:
  a direct URL, the digest a public source publishes for it, named in a comment above the constant, and how it is
  unpacked into the raw tree), or a function of the checked params returning them; only where such a URL and
  checksum exist;
* optionally ``RAW_INSTRUCTIONS`` (str): what to download by hand and where to put it, printed by the fetch stage
  when the raw tree is incomplete (a family package's own applies to its datasets that define none).

2D-only datasets (COCO, MPII) give ``keypoints2d`` and no 3D (``world_coords`` all NaN) and an intrinsics-only
camera (``intrinsics_only``: R = I, t = 0, the world frame is the camera's); datasets with body-model fits give
``body_model`` (:class:`~posebank.core.bodymodel.BodyModelFit`, world frame).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from posebank.core.bodymodel import BodyModelFit
from posebank.core.camera import Camera
from posebank.core.errors import DatasetError, RawFileError, RawLayoutError
from posebank.core.skeleton import JointInfo

__all__ = ["DatasetError", "DatasetInfo", "DatasetModule", "Dropped", "Frame", "FrameSource", "RawFileError",
           "RawInstance", "RawLayoutError", "check_finite_camera"]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    full_name: str
    homepage: str
    licence: str
    citation: str
    status: str = "implemented"  # implemented / planned


@dataclasses.dataclass
class RawInstance:
    """One person in one source frame, before cropping; coordinates in the raw camera's image."""

    source: str  # path of the video or image file relative to the raw root
    frame_index: int  # frame in the video; for image files the number in the file name or -1
    world_coords: np.ndarray  # (J, 3) mm, NaN = missing
    camera: Camera  # the raw camera
    split: str
    subject: str = ""
    sequence: str = ""
    activity: str = ""
    camera_name: str = ""
    bbox: np.ndarray | None = None  # [x, y, w, h] in the raw image; None: from projected joints
    mask_source: str | None = None  # person mask image (nonzero = person), relative to the raw root or absolute
    visibility: np.ndarray | None = None  # (J,) uint8: 1 visible, 0 occluded, 255 unknown; None = unknown
    person_index: int = 0  # which person of a multi-person frame (keys a frame source's masks/visibility)
    # (J, 2) annotated 2D joints in the raw image, NaN = not labelled; None: projected from the 3D joints
    keypoints2d: np.ndarray | None = None
    body_model: BodyModelFit | None = None  # the person's SMPL / SMPL-X fit (world frame), when the dataset has one
    intrinsics_only: bool = False  # the camera has no extrinsics (2D-only images: R = I, t = 0)

    def image_points(self) -> np.ndarray:
        """(J, 2) the person's joints in the raw image: the 3D joints projected, or, for a person without 3D, the
        annotated 2D joints (what boxes and segmentation prompts are placed on); NaN where absent."""
        wc = np.asarray(self.world_coords, np.float64)
        if self.keypoints2d is not None and not np.isfinite(wc).any():
            return np.asarray(self.keypoints2d, np.float64)
        return self.camera.project(wc)


@dataclasses.dataclass(frozen=True)
class Dropped:
    """A frame, sequence or file the converter left out for a data reason (stored in the cache's quarantine)."""

    where: str  # raw-tree relative path, with #frame when it is one frame
    reason: str
    count: int = 1  # frames or instances this entry stands for


@dataclasses.dataclass
class Frame:
    """A decoded source frame; ``masks``/``visibility`` per ``RawInstance.person_index`` when the source knows."""

    image: np.ndarray | None  # None: the frame could not be read (quarantined with ``problem``)
    masks: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    visibility: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    problem: str = "frame beyond the end of the video (truncated or short video)"


# (source, frame indices) -> (frame index, Frame) in increasing index order
FrameSource = Callable[[str, Sequence[int]], Iterator[tuple[int, Frame]]]


@runtime_checkable
class DatasetModule(Protocol):
    """What a registered dataset module holds (module attributes; ``frame_source`` is optional)."""

    INFO: DatasetInfo
    JOINT_INFO: JointInfo
    DEFAULT_PARAMS: Mapping

    def check_params(self, params: dict | None = None) -> dict: ...

    def check_layout(self, root, params: dict | None = None): ...

    def instances(self, root, params: dict | None = None, dropped: list[Dropped] | None = None
                  ) -> list[RawInstance]: ...

    def splits(self, params: dict | None = None) -> tuple[str, ...]: ...

    def make_fixture(self, root, seed: int = 0) -> Path: ...


OPTIONAL = ("frame_source", "FRAME_SOURCE_PARAMS", "frame_source_files", "SHARD_KEY", "provenance", "RESOURCES",
            "RAW_INSTRUCTIONS")


def check_finite_camera(camera: Camera, where) -> None:
    for name in ("intrinsic_matrix", "R", "t", "distortion_coeffs"):
        if not np.all(np.isfinite(getattr(camera, name))):
            raise RawFileError(where, f"camera has non-finite {name}")
    if camera.intrinsic_matrix[0, 0] <= 0 or camera.intrinsic_matrix[1, 1] <= 0:
        raise RawFileError(where, "camera has a non-positive focal length")
