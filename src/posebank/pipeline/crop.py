"""crop@<dataset>: records + frames + boxes + masks -> crops/shard-*.h5, then the dataset's cache file.

Per person a perspective crop (the camera turned to the box centre, distortion removed, scaled), the mask
reprojected into it and the camera updated to it. The cache is assembled from the crop shards in order, so an
interrupted and resumed run gives a byte-identical cache. Everything left out (dropped at conversion, unreadable
frames, rejected boxes, empty masks) is in the cache's quarantine list and counted in the log.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from posebank.core.store import Cache, CacheWriter, Example
from posebank.entry import StageContext, stage_main
from posebank.imaging.crop import Person, crop_frame_people
from posebank.pipeline.layout import Layout
from posebank.pipeline.records import CARRIED_ATTRS, Records
from posebank.pipeline.shards import begin, read_box_shard, read_frame_shard, read_mask_shard, run_sharded

log = logging.getLogger(__name__)


def run(ctx: StageContext, layout: Layout | None = None) -> dict:
    layout, records, chain = begin(ctx, "crop", layout)
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

    def work(k: int, digest: str) -> None:
        fs = read_frame_shard(layout.shard("frames", k))
        boxes = read_box_shard(layout.shard("detect", k))
        masks = read_mask_shard(layout.shard("segment", k))
        plans = [(fid, *frame_people(fs, boxes, masks, fid)) for fid in fs.frame_ids]
        # OpenCV releases the GIL while it decodes, warps and encodes: frames are cropped in threads, in order
        jobs = [(fs, people, fid) for fid, people, _ in plans if people]
        if workers > 1 and len(jobs) > 1:
            with ThreadPoolExecutor(workers) as pool:
                results = list(pool.map(lambda job: crop_frame(*job), jobs))
        else:
            results = [crop_frame(*job) for job in jobs]
        crops = dict(zip((fid for _, _, fid in jobs), results))
        with CacheWriter(layout.shard("crop", k), records.dataset, records.joint_info,
                         {"digest": digest, "part": k, "complete": True}) as writer:
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
                        frame_index=frame_index, source_path=where, mask=c.mask, visibility=visibility))

    run_sharded("crop", layout, chain, work, ctx.progress)
    return assemble(layout, records, {"crop_params": dataclasses.asdict(crop)}, chain.n_shards)


def assemble(layout: Layout, records: Records, attrs: dict, n_shards: int) -> dict:
    """Concatenate the crop shards, in order, into the dataset's cache file (atomic, deterministic), with what was
    dropped at conversion first in the quarantine list."""
    counts = defaultdict(int)
    reasons: Counter = Counter()
    attrs = {**{k: records.attrs[k] for k in CARRIED_ATTRS if records.attrs.get(k) is not None},
             "params": records.attrs.get("params") or {}, **attrs,
             "expected_splits": list(records.attrs.get("expected_splits") or [])}
    with CacheWriter(layout.cache, records.dataset, records.joint_info, attrs) as writer:
        for d in records.dropped:
            writer.add_quarantine(d.where, d.reason, d.count)
            reasons[d.reason] += d.count
        for k in range(n_shards):
            with Cache(layout.shard("crop", k)) as part:
                for q in part.quarantine:
                    writer.add_quarantine(q["path"], q["reason"], q.get("count", 1))
                    reasons[q["reason"]] += q.get("count", 1)
                for ex in part.examples():  # read in blocks of rows, not one example at a time
                    writer.add(ex)
                    counts[ex.split] += 1
    for reason, n in reasons.most_common():
        log.info("%s: %d left out: %s", records.dataset, n, reason)
    counts["quarantined"] = len(writer.quarantine)
    return dict(counts)


def main(argv=None) -> int:
    return stage_main("crop", run, argv)
