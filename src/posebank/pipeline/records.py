"""records.h5: every selected person instance of a dataset (the convert stage's output) and its frame table."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from posebank.core.camera import DISTORTION_MODELS, Camera
from posebank.core.errors import StageError
from posebank.core.skeleton import JointInfo
from posebank.core.store import SPLITS
from posebank.core.tables import Table, write_table
from posebank.datasets.base import Dropped, RawInstance

# attributes of records.h5 that travel on into the cache
CARRIED_ATTRS = ("params_digest", "citation", "licence", "homepage")
JSON_ATTRS = ("params", "expected_splits", "dropped")


@dataclasses.dataclass
class Records:
    dataset: str
    joint_info: JointInfo
    instances: list[RawInstance]
    frame_id: np.ndarray  # (N,) index into the frame table for each instance
    frames: list[tuple[str, int]]  # (source, frame_index) per frame, in order
    attrs: dict

    def instances_by_frame(self) -> dict[int, list[int]]:
        by_frame = defaultdict(list)
        for i, f in enumerate(self.frame_id):
            by_frame[int(f)].append(i)
        return by_frame

    def rows_digest(self, frame_ids, by_frame: dict[int, list[int]] | None = None) -> str:
        """SHA-256 (16 hex digits) of everything the records hold about these frames and their instances: what a
        shard is built from, so a change elsewhere in the dataset leaves the shard's digest alone."""
        by_frame = self.instances_by_frame() if by_frame is None else by_frame
        h = hashlib.sha256()
        for fid in frame_ids:
            source, index = self.frames[fid]
            h.update(json.dumps([source, index]).encode())
            for i in by_frame.get(fid, []):
                r, c = self.instances[i], self.instances[i].camera
                h.update(json.dumps([r.split, r.subject, r.sequence, r.activity, r.camera_name, r.mask_source,
                                     r.person_index, c.distortion_model]).encode())
                for a in (r.world_coords, np.nan if r.bbox is None else r.bbox,
                          255 if r.visibility is None else r.visibility, c.intrinsic_matrix, c.R, c.t,
                          c.distortion_coeffs, c.world_up):
                    h.update(np.ascontiguousarray(a, np.float64).tobytes())
        return h.hexdigest()[:16]

    @property
    def dropped(self) -> list[Dropped]:
        return [Dropped(**d) for d in self.attrs.get("dropped") or []]


def frame_table(instances: Sequence[RawInstance]) -> tuple[np.ndarray, list[tuple[str, int]]]:
    ids: dict[tuple[str, int], int] = {}
    frame_id = np.array([ids.setdefault((r.source, r.frame_index), len(ids)) for r in instances], np.int64)
    return frame_id, list(ids)


def write_records(path, dataset: str, joint_info: JointInfo, instances: Sequence[RawInstance], attrs: dict):
    frame_id, frames = frame_table(instances)
    j = joint_info.n_joints
    cams = [r.camera for r in instances]
    cols = {
        "world_coords": np.array([r.world_coords for r in instances], np.float32).reshape(-1, j, 3),
        "bbox": np.array([np.full(4, np.nan) if r.bbox is None else r.bbox for r in instances],
                         np.float64).reshape(-1, 4),
        "split": np.array([SPLITS.index(r.split) for r in instances], np.uint8),
        "frame_id": frame_id,
        "person_index": np.array([r.person_index for r in instances], np.int32),
        "visibility": np.array([np.full(j, 255) if r.visibility is None else r.visibility for r in instances],
                               np.uint8).reshape(-1, j),
        "camera/intrinsic_matrix": np.array([c.intrinsic_matrix for c in cams]).reshape(-1, 3, 3),
        "camera/R": np.array([c.R for c in cams]).reshape(-1, 3, 3),
        "camera/t": np.array([c.t for c in cams]).reshape(-1, 3),
        "camera/distortion_coeffs": np.array([c.distortion_coeffs for c in cams]).reshape(-1, 5),
        "camera/world_up": np.array([c.world_up for c in cams]).reshape(-1, 3),
        "camera/distortion_model": np.array([DISTORTION_MODELS.index(c.distortion_model) for c in cams],
                                            np.uint8),
        "frames/frame_index": np.array([f for _, f in frames], np.int64),
    }
    blobs = {name: [getattr(r, name).encode() for r in instances]
             for name in ("subject", "sequence", "activity", "camera_name")}
    blobs["mask_source"] = [(r.mask_source or "").encode() for r in instances]
    blobs["frames/source"] = [s.encode() for s, _ in frames]
    write_table(path, cols, blobs, {**attrs, "dataset": dataset, "joint_info": joint_info.to_json(),
                                    "n_instances": len(instances)})


def read_records(path) -> Records:
    if not Path(path).is_file():
        raise StageError(path, "missing: run the convert stage first (dvc repro convert@<dataset>)")
    with Table(path) as t:
        c = {name: t.column(name) for name in (
            "world_coords", "bbox", "split", "frame_id", "person_index", "visibility", "camera/intrinsic_matrix",
            "camera/R", "camera/t", "camera/distortion_coeffs", "camera/world_up", "camera/distortion_model",
            "frames/frame_index")}
        text = {name: [b.decode() for b in t.blobs(name)]
                for name in ("subject", "sequence", "activity", "camera_name", "mask_source", "frames/source")}
        dataset = str(t.attr("dataset"))
        joint_info = JointInfo.from_json(t.attr("joint_info"))
        attrs = {k: t.attr(k) for k in CARRIED_ATTRS}
        attrs.update({k: t.json_attr(k) for k in JSON_ATTRS if t.attr(k) is not None})
    frames = list(zip(text["frames/source"], (int(i) for i in c["frames/frame_index"])))
    instances = []
    for i in range(len(c["split"])):
        source, frame_index = frames[c["frame_id"][i]]
        bbox = c["bbox"][i]
        instances.append(RawInstance(
            source=source, frame_index=frame_index, world_coords=c["world_coords"][i],
            camera=Camera(c["camera/intrinsic_matrix"][i], c["camera/R"][i], c["camera/t"][i],
                          c["camera/distortion_coeffs"][i], c["camera/world_up"][i],
                          DISTORTION_MODELS[int(c["camera/distortion_model"][i])]),
            split=SPLITS[int(c["split"][i])], subject=text["subject"][i], sequence=text["sequence"][i],
            activity=text["activity"][i], camera_name=text["camera_name"][i],
            bbox=None if np.isnan(bbox).any() else bbox, mask_source=text["mask_source"][i] or None,
            visibility=None if (c["visibility"][i] == 255).all() else c["visibility"][i],
            person_index=int(c["person_index"][i])))
    return Records(dataset, joint_info, instances, c["frame_id"], frames, attrs)
