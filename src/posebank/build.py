"""From raw instances to a dataset cache: decode the needed frames, crop each person, write the cache."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from posebank.datasets.base import RawInstance
from posebank.imaging.crop import CropParams, box_from_points, crop_person
from posebank.imaging.jpeg import encode_jpeg
from posebank.imaging.video import read_image, read_video_frames
from posebank.skeleton import JointInfo
from posebank.store import CacheWriter, Example

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv"}


def params_digest(*parts) -> str:
    """Stable digest of parameter dicts (stored in the cache so that a reader knows what built it)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _frames(raw_root: Path, source: str, indices):
    path = raw_root / source
    if path.suffix.lower() in VIDEO_SUFFIXES:
        yield from read_video_frames(path, indices)
    else:
        image = read_image(path)
        for i in sorted(set(indices)):
            yield i, image


def build_cache(out_path, dataset: str, joint_info: JointInfo, instances: Sequence[RawInstance], raw_root,
                crop: CropParams, attrs: dict | None = None, progress: bool = True) -> dict:
    """Crop every instance from its source frame and write the cache atomically; returns counts."""
    raw_root = Path(raw_root)
    counts = defaultdict(int)
    bar = tqdm(total=len(instances), desc=f"crop {dataset}", unit="ex", disable=not progress, mininterval=1)
    with CacheWriter(out_path, dataset, joint_info, attrs) as writer:
        for source, group in itertools.groupby(instances, key=lambda r: r.source):
            by_frame = defaultdict(list)
            for inst in group:
                by_frame[inst.frame_index].append(inst)
            for frame_index, frame in _frames(raw_root, source, by_frame):
                for inst in by_frame[frame_index]:
                    bar.update(1)
                    where = f"{source}#{frame_index}"
                    if frame is None:
                        writer.add_quarantine(where, "frame beyond the end of the video (truncated or short video)")
                        counts["quarantined"] += 1
                        continue
                    box = inst.bbox if inst.bbox is not None else box_from_points(
                        inst.camera.project(inst.world_coords), crop.box_expansion)
                    if not (np.all(np.isfinite(box)) and box[2] > 1 and box[3] > 1):
                        writer.add_quarantine(where, "no valid joints to place a box on")
                        counts["quarantined"] += 1
                        continue
                    image, camera, new_box = crop_person(frame, inst.camera, box, crop)
                    writer.add(Example(
                        world_coords=np.asarray(inst.world_coords, np.float32), camera=camera, bbox=new_box,
                        split=inst.split, image=encode_jpeg(image, crop.jpeg_quality),
                        image_size=(image.shape[1], image.shape[0]), subject=inst.subject,
                        sequence=inst.sequence, activity=inst.activity, camera_name=inst.camera_name,
                        frame_index=frame_index, source_path=where))
                    counts[inst.split] += 1
    bar.close()
    for q in writer.quarantine:
        log.warning("quarantined %s: %s", q["path"], q["reason"])
    return dict(counts)
