"""From raw instances to a dataset cache: decode the needed frames, crop each person, write the cache.

Frames come from a *frame source*: by default the raw tree's videos and image files (with each instance's
``mask_source`` image as its mask); a dataset whose images do not exist as files (MuCo-3DHP composites) passes
its own callable that renders them, together with per-person masks and visibilities.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from posebank.datasets.base import RawFileError, RawInstance
from posebank.imaging.crop import CropParams, box_from_points, crop_person, reproject_image
from posebank.imaging.jpeg import encode_jpeg
from posebank.imaging.masks import encode as encode_mask
from posebank.imaging.video import read_image, read_video_frames
from posebank.skeleton import JointInfo
from posebank.store import CacheWriter, Example

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv"}


@dataclasses.dataclass
class Frame:
    """A decoded source frame; ``masks``/``visibility`` per ``RawInstance.person_index`` when the source knows."""

    image: np.ndarray | None  # None: the frame could not be read (quarantined with ``problem``)
    masks: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    visibility: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    problem: str = "frame beyond the end of the video (truncated or short video)"


# (source, frame indices) -> (frame index, Frame) in increasing index order
FrameSource = Callable[[str, Sequence[int]], Iterator[tuple[int, Frame]]]


def params_digest(*parts) -> str:
    """Stable digest of parameter dicts (stored in the cache so that a reader knows what built it)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_mask(path) -> np.ndarray:
    """A mask image file (nonzero = person) as a boolean array."""
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise RawFileError(path, "mask image missing or does not decode")
    return m > 127


def file_frame_source(raw_root) -> FrameSource:
    """Frames of the raw tree's video files (decoded sequentially) and image files."""
    raw_root = Path(raw_root)

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        path = raw_root / source
        if path.suffix.lower() in VIDEO_SUFFIXES:
            for i, image in read_video_frames(path, indices):
                yield i, Frame(image)
        else:
            image = read_image(path)
            for i in sorted(set(indices)):
                yield i, Frame(image)

    return frames


def _instance_mask(inst: RawInstance, frame: Frame, raw_root: Path) -> np.ndarray | None:
    if inst.person_index in frame.masks:
        return frame.masks[inst.person_index]
    if inst.mask_source is None:
        return None
    mask = read_mask(raw_root / inst.mask_source)
    if mask.shape != frame.image.shape[:2]:
        raise RawFileError(raw_root / inst.mask_source,
                           f"mask size {mask.shape[::-1]} differs from its image's {frame.image.shape[1::-1]}")
    return mask


def build_cache(out_path, dataset: str, joint_info: JointInfo, instances: Sequence[RawInstance], raw_root,
                crop: CropParams, attrs: dict | None = None, progress: bool = True,
                frame_source: FrameSource | None = None) -> dict:
    """Crop every instance from its source frame and write the cache atomically; returns counts."""
    raw_root = Path(raw_root)
    frames = frame_source or file_frame_source(raw_root)
    counts = defaultdict(int)
    bar = tqdm(total=len(instances), desc=f"crop {dataset}", unit="ex", disable=not progress, mininterval=1)
    with CacheWriter(out_path, dataset, joint_info, attrs) as writer:
        for source, group in itertools.groupby(instances, key=lambda r: r.source):
            by_frame = defaultdict(list)
            for inst in group:
                by_frame[inst.frame_index].append(inst)
            for frame_index, frame in frames(source, sorted(by_frame)):
                for inst in by_frame[frame_index]:
                    bar.update(1)
                    where = f"{source}#{frame_index}"
                    if frame.image is None:
                        writer.add_quarantine(where, frame.problem)
                        counts["quarantined"] += 1
                        continue
                    box = inst.bbox if inst.bbox is not None else box_from_points(
                        inst.camera.project(inst.world_coords), crop.box_expansion)
                    if not (np.all(np.isfinite(box)) and box[2] > 1 and box[3] > 1):
                        writer.add_quarantine(where, "no valid joints to place a box on")
                        counts["quarantined"] += 1
                        continue
                    image, camera, new_box = crop_person(frame.image, inst.camera, box, crop)
                    full_mask = _instance_mask(inst, frame, raw_root)
                    mask = b""
                    if full_mask is not None:
                        crop_mask = reproject_image(full_mask.astype(np.uint8) * 255, inst.camera, camera,
                                                    image.shape[1::-1], "linear")
                        mask = encode_mask(crop_mask > 127)
                    visibility = frame.visibility.get(inst.person_index, inst.visibility)
                    writer.add(Example(
                        world_coords=np.asarray(inst.world_coords, np.float32), camera=camera, bbox=new_box,
                        split=inst.split, image=encode_jpeg(image, crop.jpeg_quality),
                        image_size=(image.shape[1], image.shape[0]), subject=inst.subject,
                        sequence=inst.sequence, activity=inst.activity, camera_name=inst.camera_name,
                        frame_index=frame_index, source_path=where, mask=mask, visibility=visibility))
                    counts[inst.split] += 1
    bar.close()
    for q in writer.quarantine:
        log.warning("quarantined %s: %s", q["path"], q["reason"])
    return dict(counts)
