"""crop@<dataset>: records + frames + boxes + masks -> the dataset's cache folder, <cache>/<dataset>/.

Per person a perspective crop (the camera turned to the box centre, distortion removed, scaled), the mask
reprojected into it and the camera updated to it. Each shard of the plan is written straight into the cache
folder as a self-contained cache file (atomic, deterministic: an interrupted and resumed run gives byte-identical
shards, and a shard whose inputs did not change is not rewritten); ``index.json`` is written last. Everything
left out (dropped at conversion, unreadable frames, rejected boxes, empty masks) is in the quarantine list,
counted in the log and, in the pipeline, written to ``<reports>/quarantine/<dataset>.jsonl`` (one JSON object per
entry: ``where``, ``reason``, ``count``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from posebank.core.atomic import write_text
from posebank.core.bodymodel import to_camera
from posebank.core.store import CacheWriter, Example, write_index
from posebank.entry import StageContext, stage_main
from posebank.imaging.crop import Person, crop_frame_people
from posebank.pipeline.layout import Layout
from posebank.pipeline.plan import Shard
from posebank.pipeline.records import CARRIED_ATTRS, Records
from posebank.pipeline.shards import (
    ShardRows,
    begin,
    output_settings,
    read_box_shard,
    read_frame_shard,
    read_mask_shard,
    run_sharded,
)

log = logging.getLogger(__name__)
SHARD_ATTRS = ("citation", "licence", "homepage")  # what every shard carries of the dataset (never changes it)


def run(ctx: StageContext, layout: Layout | None = None) -> dict:
    layout, records, chain, part = begin(ctx, "crop", layout)
    crop = ctx.params.crop
    workers = max(1, ctx.params.crop.workers)
    by_frame = records.instances_by_frame()

    def frame_people(fs, boxes, masks, fid):
        """The people of one frame to crop, and the quarantine entries of those left out."""
        source, frame_index = records.frames[fid]
        where = f"{source}#{frame_index}"
        if fid in fs.problems:
            return [], [(where, fs.problems[fid]) for _ in by_frame[fid]]
        people, left_out = [], []
        for i in by_frame[fid]:
            box, box_source = boxes[i]
            if box_source == "dropped":
                left_out.append((where, "no detection agreed with the person (detect.fallback: drop)"))
            elif not (np.all(np.isfinite(box)) and box[2] > 1 and box[3] > 1):
                left_out.append((where, "no valid joints to place a box on"))
            else:
                people.append((i, Person(records.instances[i].camera, box, masks.get(i, b""))))
        return people, left_out

    def crop_frame(fs, people, fid):
        height, width = fs.sizes[fid]
        return crop_frame_people(fs.images[fid], (width, height), [p for _, p in people], crop)

    shard_attrs = {**{k: records.attrs[k] for k in SHARD_ATTRS if records.attrs.get(k) is not None},
                   "crop_params": output_settings("crop", crop)}

    def work(shard: Shard, digest: str) -> None:
        ids = ShardRows(shard, by_frame)
        fs = read_frame_shard(layout.shard("frames", shard.name), ids)
        boxes = read_box_shard(layout.shard("detect", shard.name), ids)
        masks = read_mask_shard(layout.shard("segment", shard.name), ids)
        plans = [(fid, *frame_people(fs, boxes, masks, fid)) for fid in fs.frame_ids]
        # OpenCV releases the GIL while it decodes, warps and encodes: frames are cropped in threads, in order
        jobs = [(fs, people, fid) for fid, people, _ in plans if people]
        if workers > 1 and len(jobs) > 1:
            with ThreadPoolExecutor(workers) as pool:
                results = list(pool.map(lambda job: crop_frame(*job), jobs))
        else:
            results = [crop_frame(*job) for job in jobs]
        crops = dict(zip((fid for _, _, fid in jobs), results))
        with CacheWriter(layout.shard("crop", shard.name), records.dataset, records.joint_info,
                         {**shard_attrs, "digest": digest, "shard": shard.name, "complete": True}) as writer:
            for fid, people, left_out in plans:
                for where, reason in left_out:
                    writer.add_quarantine(where, reason)
                source, frame_index = records.frames[fid]
                where = f"{source}#{frame_index}"
                for (i, _), c in zip(people, crops.get(fid, [])):
                    inst = records.instances[i]
                    if c.mask_empty:
                        writer.add_quarantine(where, "empty person mask: the person is not visible in the crop "
                                                     "(hidden behind others or outside the frame)")
                        continue
                    v = fs.visibility.get(i)
                    visibility = v if v is not None and not (v == 255).all() else inst.visibility
                    writer.add(Example(
                        world_coords=np.asarray(inst.world_coords, np.float32), camera=c.camera, bbox=c.box,
                        split=inst.split, image=c.image, image_size=c.size, subject=inst.subject,
                        sequence=inst.sequence, activity=inst.activity, camera_name=inst.camera_name,
                        frame_index=frame_index, source_path=where, mask=c.mask, visibility=visibility,
                        keypoints2d=crop_keypoints(inst, c.camera), has_extrinsics=not inst.intrinsics_only,
                        body_model=inst.body_model,
                        body_model_cam=None if inst.body_model is None else
                        to_camera(inst.body_model, c.camera.R, c.camera.t / 1000.0)))

    run_sharded("crop", layout, chain, work, ctx.progress, before_changes=lambda: layout.index.unlink(missing_ok=True),
                part=part)
    if part is not None:  # the cache is assembled (its index written) by the run over all shards
        return {"shard part": str(part), "shards": len(part.positions(chain.n_shards))}
    return write_cache_index(layout, records, chain.names, {"crop_params": output_settings("crop", crop)})


def crop_keypoints(inst, crop_camera) -> np.ndarray:
    """The person's 2D joints in the crop: the annotated ones carried over from the raw image (the crop camera
    shares the raw camera's centre, so a raw pixel's ray lands on one crop pixel), else the 3D joints projected
    through the crop camera; NaN where absent."""
    if inst.keypoints2d is not None:
        raw = np.asarray(inst.keypoints2d, np.float64)
        out = np.full(raw.shape, np.nan)
        ok = np.isfinite(raw).all(axis=1)
        if ok.any():
            rays = inst.camera.image_to_world(raw[ok], depth=1000.0)
            out[ok] = crop_camera.project(rays)
        return out.astype(np.float32)
    wc = np.asarray(inst.world_coords, np.float64)
    out = np.full((len(wc), 2), np.nan)
    ok = np.isfinite(wc).all(axis=1)
    if ok.any():
        out[ok] = crop_camera.project(wc[ok])
    return out.astype(np.float32)


def write_cache_index(layout: Layout, records: Records, names: list[str], attrs: dict) -> dict:
    """The cache folder's index.json, written last (atomically) over the plan's shards in order, with what was
    dropped at conversion first in the quarantine list. Returns the counts per split and of quarantine entries."""
    attrs = {**{k: records.attrs[k] for k in CARRIED_ATTRS if records.attrs.get(k) is not None},
             "params": records.attrs.get("params") or {}, "provenance": records.attrs.get("provenance") or {},
             **attrs,
             "expected_splits": list(records.attrs.get("expected_splits") or [])}
    dropped = []
    for d in records.dropped:
        entry = {"path": d.where, "reason": d.reason}
        if d.count != 1:
            entry["count"] = int(d.count)
        dropped.append(entry)
    index = write_index(layout.cache, records.dataset, records.joint_info,
                        [layout.shard("crop", name) for name in names], attrs, dropped,
                        state=layout.interim / "index-state.json")
    if layout.quarantine_report is not None:
        write_quarantine_report(layout.quarantine_report, index["quarantine"])
    reasons: Counter = Counter()
    for q in index["quarantine"]:
        reasons[q["reason"]] += int(q.get("count", 1))
    for reason, n in reasons.most_common():
        log.info("%s: %d left out: %s", records.dataset, n, reason)
    log.info("%s: %d examples in %d shards (%s)", records.dataset, index["n_examples"], index["n_shards"],
             layout.cache)
    counts = {k: v for k, v in index["examples_per_split"].items() if v}
    counts["quarantined"] = len(index["quarantine"])
    return counts


def write_quarantine_report(path, quarantine: list[dict]) -> None:
    """The cache's quarantine as JSON lines (``where``, ``reason``, ``count``), in the index's order, atomically: an
    empty file when nothing was left out, so the report always says how much was."""
    lines = [json.dumps({"where": q["path"], "reason": q["reason"], "count": int(q.get("count", 1))},
                        sort_keys=True) + "\n" for q in quarantine]
    write_text(path, "".join(lines))


def main(argv=None) -> int:
    return stage_main("crop", run, argv, sharded=True)
