"""The pipeline's stages for one dataset, as dvc.yaml runs them (``posebank stage NAME DATASET``):

    convert  raw tree -> records.h5       every selected person instance (camera, joints, split, ...) + frame table
    frames   records -> frames/shard-*.h5 the selected frames as JPEG (videos decoded once, composites rendered),
                                          with the masks and visibilities a dataset provides itself
    detect   frames  -> boxes/shard-*.h5  person boxes (backend from params: projected, hog, torchvision),
                                          matched to the ground-truth people; the example box per instance
    segment  frames + boxes -> masks/shard-*.h5   a person mask per instance (dataset's own, SAM or GrabCut)
    crop     all of it -> crops/shard-*.h5, then data/cache/<ds>.h5

Work is sharded by frames (``pipeline.shard_frames`` frames a shard). A shard file is written atomically and
carries a digest of its inputs and parameters, so a rerun after an interruption skips finished shards and redoes
only what is missing or stale; the final cache is assembled from the crop shards in order, so an interrupted and
resumed run gives a byte-identical cache.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from posebank import datasets
from posebank.build import Frame, file_frame_source, read_mask
from posebank.camera import DISTORTION_MODELS, Camera
from posebank.datasets.base import RawInstance
from posebank.imaging.crop import CropParams, box_from_points, crop_person_from_jpeg, reproject_image
from posebank.imaging.jpeg import decode_jpeg, encode_jpeg
from posebank.imaging.masks import decode as decode_mask
from posebank.imaging.masks import encode as encode_mask
from posebank.skeleton import JointInfo
from posebank.store import SPLITS, Cache, CacheWriter, Example
from posebank.tables import Table, file_digest, is_complete, write_table

log = logging.getLogger(__name__)
STAGES = ("convert", "frames", "detect", "segment", "crop")
BOX_SOURCES = ("projected", "detection", "dataset", "hull", "dropped")
MASK_METHODS = ("none", "dataset", "grabcut", "sam")
DEFAULT_PIPELINE = {"shard_frames": 256, "interim": "data/interim", "cache": "data/cache"}
DEFAULT_FRAMES = {"jpeg_quality": 95}


# ------------------------------------------------------------------------------------------- records
@dataclasses.dataclass
class Records:
    dataset: str
    joint_info: JointInfo
    instances: list[RawInstance]
    frame_id: np.ndarray  # (N,) index into the frame table for each instance
    frames: list[tuple[str, int]]  # (source, frame_index) per frame, in order
    attrs: dict


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
    with Table(path) as t:
        c = {name: t.column(name) for name in (
            "world_coords", "bbox", "split", "frame_id", "person_index", "visibility", "camera/intrinsic_matrix",
            "camera/R", "camera/t", "camera/distortion_coeffs", "camera/world_up", "camera/distortion_model",
            "frames/frame_index")}
        text = {name: [b.decode() for b in t.blobs(name)]
                for name in ("subject", "sequence", "activity", "camera_name", "mask_source", "frames/source")}
        dataset = str(t.attr("dataset"))
        joint_info = JointInfo.from_json(t.attr("joint_info"))
        attrs = {k: t.attr(k) for k in ("params_digest", "citation", "licence", "homepage")}
        attrs["params"] = t.json_attr("params")
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


# ------------------------------------------------------------------------------------------- layout
@dataclasses.dataclass
class Layout:
    """Where one dataset's products live."""

    dataset: str
    interim: Path
    cache: Path

    @classmethod
    def from_params(cls, dataset: str, params: dict) -> Layout:
        p = {**DEFAULT_PIPELINE, **params.get("pipeline", {})}
        return cls(dataset, Path(p["interim"]) / dataset, Path(p["cache"]) / f"{dataset}.h5")

    @property
    def records(self) -> Path:
        return self.interim / "records.h5"

    def shard(self, stage: str, k: int) -> Path:
        return self.interim / {"frames": "frames", "detect": "boxes", "segment": "masks", "crop": "crops"}[stage] \
            / f"shard-{k:05d}.h5"


def shards(n_frames: int, shard_frames: int) -> list[range]:
    return [range(a, min(a + shard_frames, n_frames)) for a in range(0, n_frames, shard_frames)] or [range(0, 0)]


def _prune(folder: Path, n: int) -> None:
    """Remove shard files a previous, larger run left beyond the current count."""
    if folder.is_dir():
        for p in folder.glob("shard-*.h5"):
            if int(p.stem.split("-")[1]) >= n:
                p.unlink()


def _run_sharded(stage: str, layout: Layout, n_shards: int, digest_of: Callable[[int], str],
                 work: Callable[[int, str], None], progress: bool) -> None:
    _prune(layout.shard(stage, 0).parent, n_shards)
    todo = [k for k in range(n_shards) if not is_complete(layout.shard(stage, k), digest_of(k))]
    if len(todo) < n_shards:
        log.info("%s %s: %d of %d shards already done, resuming", stage, layout.dataset, n_shards - len(todo),
                 n_shards)
    for k in tqdm(todo, desc=f"{stage} {layout.dataset}", unit="shard", disable=not progress):
        work(k, digest_of(k))


def _instances_by_frame(records: Records) -> dict[int, list[int]]:
    by_frame = defaultdict(list)
    for i, f in enumerate(records.frame_id):
        by_frame[int(f)].append(i)
    return by_frame


# ------------------------------------------------------------------------------------------- stages
def run_convert(dataset: str, raw, layout: Layout, dataset_params: dict | None) -> int:
    from posebank.build import params_digest

    module = datasets.get(dataset)
    p = _dataset_params(module, dataset, dataset_params)
    instances = module.instances(Path(raw), p)
    log.info("%s: %d instances selected from %s", dataset, len(instances), raw)
    write_records(layout.records, dataset, module.JOINT_INFO, instances, {
        "params_digest": params_digest(p), "params": p, "citation": module.INFO.citation,
        "licence": module.INFO.licence, "homepage": module.INFO.homepage})
    return len(instances)


def _dataset_params(module, dataset: str, dataset_params: dict | None) -> dict:
    given = dict(dataset_params or {})
    given.pop("raw", None)
    unknown = set(given) - set(module.DEFAULT_PARAMS)
    if unknown:
        raise ValueError(f"{dataset}: unknown parameters {sorted(unknown)}; known: {sorted(module.DEFAULT_PARAMS)}")
    return {**module.DEFAULT_PARAMS, **given}


def run_frames(raw, layout: Layout, frames_params: dict | None, shard_frames: int, progress: bool = True) -> None:
    fp = {**DEFAULT_FRAMES, **(frames_params or {})}
    records = read_records(layout.records)
    module = datasets.get(records.dataset)
    make_source = getattr(module, "frame_source", None)
    source = make_source(Path(raw), records.attrs["params"]) if make_source else file_frame_source(raw)
    by_frame = _instances_by_frame(records)
    parts = shards(len(records.frames), shard_frames)
    base = file_digest(layout.records, extra=[fp, shard_frames])

    def work(k: int, digest: str) -> None:
        frame_ids = list(parts[k])
        images, problems, sizes = {}, {}, {}
        rows, masks, vis = [], [], []
        wanted = defaultdict(list)
        for fid in frame_ids:
            src, idx = records.frames[fid]
            wanted[src].append((idx, fid))
        for src, items in wanted.items():
            fid_of = dict(items)
            for idx, frame in source(src, sorted(fid_of)):
                fid = fid_of[idx]
                if frame.image is None:
                    images[fid], problems[fid] = b"", frame.problem
                    continue
                images[fid] = encode_jpeg(frame.image, fp["jpeg_quality"])
                sizes[fid] = frame.image.shape[:2]
                for i in by_frame[fid]:
                    inst = records.instances[i]
                    m = _dataset_mask(inst, frame, Path(raw))
                    rows.append(i)
                    masks.append(b"" if m is None else encode_mask(m))
                    v = frame.visibility.get(inst.person_index)
                    vis.append(np.full(records.joint_info.n_joints, 255, np.uint8) if v is None else v)
        write_table(layout.shard("frames", k), {
            "frame_id": np.array(frame_ids, np.int64), "inst_row": np.array(rows, np.int64),
            "size": np.array([sizes.get(f, (0, 0)) for f in frame_ids], np.int32).reshape(-1, 2),
            "inst_visibility": np.array(vis, np.uint8).reshape(-1, records.joint_info.n_joints)},
            {"image": [images.get(f, b"") for f in frame_ids], "problem": [problems.get(f, "").encode()
                                                                          for f in frame_ids],
             "inst_mask": masks}, {"digest": digest, "shard_frames": shard_frames})

    _run_sharded("frames", layout, len(parts), lambda k: f"{base}-{k}", work, progress)


def _dataset_mask(inst: RawInstance, frame: Frame, raw: Path) -> np.ndarray | None:
    if inst.person_index in frame.masks:
        return frame.masks[inst.person_index]
    if inst.mask_source:
        return read_mask(raw / inst.mask_source)
    return None


@dataclasses.dataclass
class FrameShard:
    frame_ids: list[int]
    images: dict[int, bytes]
    problems: dict[int, str]
    sizes: dict[int, tuple[int, int]]  # (height, width) per frame
    dataset_masks: dict[int, bytes]  # by instance row
    visibility: dict[int, np.ndarray]  # by instance row (255 = unknown)


def read_frame_shard(path) -> FrameShard:
    with Table(path) as t:
        fids = [int(f) for f in t.column("frame_id")]
        images = dict(zip(fids, t.blobs("image")))
        sizes = {f: (int(h), int(w)) for f, (h, w) in zip(fids, t.column("size"))}
        problems = {f: p.decode() for f, p in zip(fids, t.blobs("problem")) if p}
        rows = [int(r) for r in t.column("inst_row")]
        masks = dict(zip(rows, t.blobs("inst_mask")))
        vis = dict(zip(rows, t.column("inst_visibility")))
    return FrameShard(fids, images, problems, sizes, masks, vis)


def run_detect(layout: Layout, detect_params: dict | None, progress: bool = True) -> None:
    from posebank.vision.detect import DetectParams, make_detector, select_boxes

    dp = DetectParams.from_dict(detect_params)
    records, by_frame, n = _after_frames(layout)
    detector = None

    def work(k: int, digest: str) -> None:
        nonlocal detector
        fs = read_frame_shard(layout.shard("frames", k))
        decoded = {f: decode_jpeg(b) for f, b in fs.images.items() if b} if dp.backend != "projected" else {}
        if decoded and detector is None:
            detector = make_detector(dp)
        order = sorted(decoded)
        dets = dict(zip(order, detector.detect([decoded[f] for f in order]))) if decoded else {}
        rows, boxes, sources, scores = [], [], [], []
        det_blobs = []
        for fid in fs.frame_ids:
            d = np.asarray(dets.get(fid, np.zeros((0, 5), np.float32)), np.float32).reshape(-1, 5)
            det_blobs.append(d.tobytes())
            insts = by_frame[fid]
            # the ground-truth box: the dataset's own (e.g. from its masks) or the projected joints'
            gt = np.array([records.instances[i].bbox if records.instances[i].bbox is not None else box_from_points(
                records.instances[i].camera.project(records.instances[i].world_coords), dp.expansion)
                for i in insts]).reshape(-1, 4)
            for i, (box, label) in zip(insts, select_boxes(gt, d, dp)):
                if label == "projected" and records.instances[i].bbox is not None:
                    label = "dataset"
                rows.append(i)
                boxes.append(np.full(4, np.nan) if box is None else box)
                sources.append(BOX_SOURCES.index(label))
                used = d[np.argmin(np.abs(d[:, :4] - box).sum(1))] if label == "detection" else \
                    (d[np.argmax(d[:, 4])] if label == "hull" else None)
                scores.append(np.nan if used is None else float(used[4]))
        write_table(layout.shard("detect", k), {
            "inst_row": np.array(rows, np.int64), "box": np.array(boxes, np.float64).reshape(-1, 4),
            "box_source": np.array(sources, np.uint8), "score": np.array(scores, np.float32),
            "frame_id": np.array(fs.frame_ids, np.int64)}, {"detections": det_blobs}, {"digest": digest})

    _run_sharded("detect", layout, n, lambda k: file_digest(layout.shard("frames", k),
                                                            extra=dataclasses.asdict(dp)), work, progress)


def _after_frames(layout: Layout) -> tuple[Records, dict[int, list[int]], int]:
    """What every stage after ``frames`` starts from: the records, instance rows per frame, the shard count."""
    records = read_records(layout.records)
    with Table(layout.shard("frames", 0)) as t:
        shard_frames = int(t.attr("shard_frames", 0)) or len(t.column("frame_id"))
    return records, _instances_by_frame(records), len(shards(len(records.frames), shard_frames))


def read_box_shard(path) -> dict[int, tuple[np.ndarray, str]]:
    with Table(path) as t:
        return {int(r): (b, BOX_SOURCES[s]) for r, b, s in zip(t.column("inst_row"), t.column("box"),
                                                               t.column("box_source"))}


def run_segment(layout: Layout, segment_params: dict | None, progress: bool = True) -> None:
    """Masks per instance: the dataset's own where it has them, else the configured backend ("none": no masks)."""
    from posebank.vision.segment import SegmentParams, make_segmenter

    sp = None if (segment_params or {}).get("backend") == "none" else SegmentParams.from_dict(segment_params)
    records, by_frame, n = _after_frames(layout)
    segmenter = None

    def work(k: int, digest: str) -> None:
        nonlocal segmenter
        fs = read_frame_shard(layout.shard("frames", k))
        boxes = read_box_shard(layout.shard("detect", k))
        rows, masks, methods = [], [], []
        for fid in fs.frame_ids:
            insts = [i for i in by_frame[fid] if i in boxes]
            todo = [i for i in insts if not fs.dataset_masks.get(i)] if sp is not None else []
            found = {}
            if todo and fs.images.get(fid):
                if segmenter is None:
                    segmenter = make_segmenter(sp)
                image = decode_jpeg(fs.images[fid])
                points = [records.instances[i].camera.project(records.instances[i].world_coords) for i in todo]
                for i, m in zip(todo, segmenter.segment(image, np.array([boxes[i][0] for i in todo]), points)):
                    found[i] = encode_mask(m)
            for i in insts:
                rows.append(i)
                if fs.dataset_masks.get(i):
                    masks.append(fs.dataset_masks[i])
                    methods.append(MASK_METHODS.index("dataset"))
                elif i in found:
                    masks.append(found[i])
                    methods.append(MASK_METHODS.index(sp.backend))
                else:
                    masks.append(b"")
                    methods.append(0)
        write_table(layout.shard("segment", k), {"inst_row": np.array(rows, np.int64),
                                                 "method": np.array(methods, np.uint8)},
                    {"mask": masks}, {"digest": digest})

    settings = "none" if sp is None else dataclasses.asdict(sp)
    _run_sharded("segment", layout, n, lambda k: file_digest(
        layout.shard("frames", k), layout.shard("detect", k), extra=settings), work, progress)


def read_mask_shard(path) -> dict[int, bytes]:
    with Table(path) as t:
        return dict(zip((int(r) for r in t.column("inst_row")), t.blobs("mask")))


def run_crop(layout: Layout, crop: CropParams, progress: bool = True) -> dict:
    records, by_frame, n = _after_frames(layout)
    attrs = {**records.attrs, "crop_params": dataclasses.asdict(crop)}

    def work(k: int, digest: str) -> None:
        fs = read_frame_shard(layout.shard("frames", k))
        boxes = read_box_shard(layout.shard("detect", k))
        masks = read_mask_shard(layout.shard("segment", k))
        with CacheWriter(layout.shard("crop", k), records.dataset, records.joint_info,
                         {"digest": digest, "part": k, "complete": True}) as writer:
            for fid in fs.frame_ids:
                source, frame_index = records.frames[fid]
                where = f"{source}#{frame_index}"
                if fid in fs.problems:
                    for _ in by_frame[fid]:
                        writer.add_quarantine(where, fs.problems[fid])
                    continue
                for i in by_frame[fid]:
                    inst = records.instances[i]
                    box, source = boxes[i]
                    if source == "dropped":
                        writer.add_quarantine(where, "no detection agreed with the person (detect.fallback: drop)")
                        continue
                    if not (np.all(np.isfinite(box)) and box[2] > 1 and box[3] > 1):
                        writer.add_quarantine(where, "no valid joints to place a box on")
                        continue
                    # decoded at reduced resolution when the crop is much smaller than the person in the frame
                    crop_img, camera, new_box, _ = crop_person_from_jpeg(fs.images[fid], inst.camera, box, crop)
                    mask = b""
                    if masks.get(i):
                        height, width = fs.sizes[fid]
                        full = decode_mask(masks[i], height, width)
                        warped = reproject_image(full.astype(np.uint8) * 255, inst.camera, camera,
                                                 crop_img.shape[1::-1], "linear")
                        if not (warped > 127).any():
                            writer.add_quarantine(where, "empty person mask: the person is not visible in the crop "
                                                         "(hidden behind others or outside the frame)")
                            continue
                        mask = encode_mask(warped > 127)
                    v = fs.visibility.get(i)
                    visibility = v if v is not None and not (v == 255).all() else inst.visibility
                    writer.add(Example(
                        world_coords=np.asarray(inst.world_coords, np.float32), camera=camera, bbox=new_box,
                        split=inst.split, image=encode_jpeg(crop_img, crop.jpeg_quality),
                        image_size=(crop_img.shape[1], crop_img.shape[0]), subject=inst.subject,
                        sequence=inst.sequence, activity=inst.activity, camera_name=inst.camera_name,
                        frame_index=frame_index, source_path=where, mask=mask, visibility=visibility))

    _run_sharded("crop", layout, n, lambda k: file_digest(
        layout.records, layout.shard("frames", k), layout.shard("detect", k), layout.shard("segment", k),
        extra=dataclasses.asdict(crop)), work, progress)
    return assemble(layout, records, attrs, n)


def assemble(layout: Layout, records: Records, attrs: dict, n_shards: int) -> dict:
    """Concatenate the crop shards, in order, into the dataset's cache file (atomic, deterministic)."""
    counts = defaultdict(int)
    with CacheWriter(layout.cache, records.dataset, records.joint_info, attrs) as writer:
        for k in range(n_shards):
            with Cache(layout.shard("crop", k)) as part:
                for q in part.quarantine:
                    writer.add_quarantine(q["path"], q["reason"])
                    counts["quarantined"] += 1
                for i in range(len(part)):
                    ex = part[i]
                    writer.add(ex)
                    counts[ex.split] += 1
    for q in writer.quarantine:
        log.warning("quarantined %s: %s", q["path"], q["reason"])
    return dict(counts)


def run_all(dataset: str, raw, layout: Layout, params: dict, progress: bool = True) -> dict:
    """Every stage in order (what ``posebank convert`` does without DVC)."""
    for stage in STAGES[:-1]:
        run_stage(stage, dataset, params, raw, progress, layout)
    return run_stage("crop", dataset, params, raw, progress, layout)


def run_stage(stage: str, dataset: str, params: dict, raw=None, progress: bool = True,
              layout: Layout | None = None) -> dict | int | None:
    """Run one stage for one dataset with the settings of a params.yaml mapping."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {STAGES}")
    layout = layout or Layout.from_params(dataset, params)
    ds_params = dict(params.get("datasets", {}).get(dataset, {}))
    raw = raw or ds_params.get("raw")
    shard_frames = int({**DEFAULT_PIPELINE, **params.get("pipeline", {})}["shard_frames"])
    crop = CropParams.from_dict(params.get("crop"))
    if stage == "convert":
        if raw is None:
            raise ValueError(f"no raw folder for {dataset}: set datasets.{dataset}.raw")
        return run_convert(dataset, raw, layout, ds_params)
    if stage == "frames":
        return run_frames(raw, layout, params.get("frames"), shard_frames, progress)
    if stage == "detect":
        return run_detect(layout, params.get("detect"), progress)
    if stage == "segment":
        return run_segment(layout, params.get("segment"), progress)
    return run_crop(layout, crop, progress)
