"""records.h5: every selected person instance of a dataset (the convert stage's output) and its frame table."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from posebank.core import bodymodel
from posebank.core.bodymodel import BodyModelFit
from posebank.core.camera import DISTORTION_MODELS, Camera
from posebank.core.errors import StageError
from posebank.core.skeleton import JointInfo
from posebank.core.store import SPLITS
from posebank.core.tables import Table, write_table
from posebank.datasets.base import Dropped, RawInstance

# attributes of records.h5 that travel on into the cache
CARRIED_ATTRS = ("params_digest", "citation", "licence", "homepage")
JSON_ATTRS = ("params", "expected_splits", "dropped", "provenance")


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
                # what version 2 added (nothing for a dataset without it: its digests stay as they were)
                if r.keypoints2d is not None or r.intrinsics_only:
                    h.update(json.dumps(["2d", bool(r.intrinsics_only)]).encode())
                    if r.keypoints2d is not None:
                        h.update(np.ascontiguousarray(r.keypoints2d, np.float64).tobytes())
                if r.body_model is not None:
                    b = r.body_model
                    h.update(json.dumps(["body", b.model, b.gender]).encode())
                    for a in (b.pose, b.betas, b.trans, np.nan if b.root is None else b.root):
                        h.update(np.ascontiguousarray(a, np.float64).tobytes())
        return h.hexdigest()[:16]

    @property
    def dropped(self) -> list[Dropped]:
        return [Dropped(**d) for d in self.attrs.get("dropped") or []]


def frame_table(instances: Sequence[RawInstance]) -> tuple[np.ndarray, list[tuple[str, int]]]:
    ids: dict[tuple[str, int], int] = {}
    frame_id = np.array([ids.setdefault((r.source, r.frame_index), len(ids)) for r in instances], np.int64)
    return frame_id, list(ids)


def body_model_columns(instances: Sequence[RawInstance], n_joints: int) -> dict[str, np.ndarray]:
    """The version-2 columns of the records: annotated 2D joints, intrinsics-only cameras, body-model fits."""
    n = len(instances)
    kp = np.full((n, n_joints, 2), np.nan, np.float32)
    has = np.zeros(n, np.uint8)
    model = np.zeros(n, np.uint8)
    gender = np.zeros(n, np.uint8)
    pose = np.zeros((n, bodymodel.MAX_POSE), np.float64)
    betas = np.zeros((n, bodymodel.MAX_BETAS), np.float64)
    n_betas = np.zeros(n, np.uint8)
    trans = np.zeros((n, 3), np.float64)
    root = np.full((n, 3), np.nan, np.float64)
    for i, r in enumerate(instances):
        if r.keypoints2d is not None:
            kp[i] = np.asarray(r.keypoints2d, np.float32).reshape(n_joints, 2)
        b = r.body_model
        if b is not None:
            has[i] = 1
            model[i] = bodymodel.MODELS.index(b.model)
            gender[i] = bodymodel.GENDERS.index(b.gender)
            pose[i, :b.pose.size] = b.pose
            betas[i, :b.betas.size] = b.betas
            n_betas[i] = b.betas.size
            trans[i] = b.trans
            if b.root is not None:
                root[i] = b.root
    return {"keypoints2d": kp, "has_keypoints2d": np.array([r.keypoints2d is not None for r in instances], np.uint8),
            "intrinsics_only": np.array([bool(r.intrinsics_only) for r in instances], np.uint8),
            "body_model/has": has, "body_model/model": model, "body_model/gender": gender, "body_model/pose": pose,
            "body_model/betas": betas, "body_model/n_betas": n_betas, "body_model/trans": trans,
            "body_model/root": root}


def _body_model(c: dict, i: int) -> BodyModelFit | None:
    if not c["body_model/has"][i]:
        return None
    model = bodymodel.MODELS[int(c["body_model/model"][i])]
    root = c["body_model/root"][i]
    return BodyModelFit(model, bodymodel.GENDERS[int(c["body_model/gender"][i])],
                        c["body_model/pose"][i, :bodymodel.POSE_SIZE[model]],
                        c["body_model/betas"][i, :int(c["body_model/n_betas"][i])], c["body_model/trans"][i],
                        None if np.isnan(root).any() else root)


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
    cols.update(body_model_columns(instances, j))
    blobs = {name: [getattr(r, name).encode() for r in instances]
             for name in ("subject", "sequence", "activity", "camera_name")}
    blobs["mask_source"] = [(r.mask_source or "").encode() for r in instances]
    blobs["frames/source"] = [s.encode() for s, _ in frames]
    write_table(path, cols, blobs, {**attrs, "dataset": dataset, "joint_info": joint_info.to_json(),
                                    "n_instances": len(instances)})


def _empty_v2(n: int, n_joints: int) -> dict[str, np.ndarray]:
    """The version-2 columns of ``n`` instances without any of it."""
    empty = body_model_columns([], n_joints)
    return {k: np.zeros((n, *v.shape[1:]), v.dtype) if v.dtype != np.float32 and k != "body_model/root"
            else np.full((n, *v.shape[1:]), np.nan, v.dtype) for k, v in empty.items()}


def read_records(path) -> Records:
    if not Path(path).is_file():
        raise StageError(path, "missing: run the convert stage first (dvc repro convert@<dataset>)")
    with Table(path) as t:
        c = {name: t.column(name) for name in (
            "world_coords", "bbox", "split", "frame_id", "person_index", "visibility", "camera/intrinsic_matrix",
            "camera/R", "camera/t", "camera/distortion_coeffs", "camera/world_up", "camera/distortion_model",
            "frames/frame_index")}
        n_joints = JointInfo.from_json(t.attr("joint_info")).n_joints
        if t.has("body_model/has"):
            c.update({name: t.column(name) for name in body_model_columns([], n_joints)})
        else:  # records written before version 2 hold none of it
            c.update(_empty_v2(len(c["split"]), n_joints))
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
            person_index=int(c["person_index"][i]),
            keypoints2d=c["keypoints2d"][i] if c["has_keypoints2d"][i] else None,
            body_model=_body_model(c, i), intrinsics_only=bool(c["intrinsics_only"][i])))
    return Records(dataset, joint_info, instances, c["frame_id"], frames, attrs)
