"""What every dataset module shares: metadata, raw-layout errors and the instance record."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from posebank.camera import Camera


class DatasetError(RuntimeError):
    """A raw dataset tree cannot be converted; the message names the file and the problem."""


class RawLayoutError(DatasetError):
    """The raw tree is missing or incomplete."""

    def __init__(self, dataset: str, root, missing: list[str] | str):
        missing = [missing] if isinstance(missing, str) else list(missing)
        self.dataset, self.root, self.missing = dataset, Path(root), missing
        shown = ", ".join(missing[:5]) + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
        state = "not found" if not Path(root).exists() else "incomplete"
        super().__init__(f"{dataset}: raw dataset {state} at {root}: missing {shown}")


class RawFileError(DatasetError):
    """One raw file is unreadable or holds something other than the dataset's format."""

    def __init__(self, path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


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


def check_finite_camera(camera: Camera, where) -> None:
    for name in ("intrinsic_matrix", "R", "t", "distortion_coeffs"):
        if not np.all(np.isfinite(getattr(camera, name))):
            raise RawFileError(where, f"camera has non-finite {name}")
    if camera.intrinsic_matrix[0, 0] <= 0 or camera.intrinsic_matrix[1, 1] <= 0:
        raise RawFileError(where, "camera has a non-positive focal length")
