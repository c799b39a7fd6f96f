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

import numpy as np

from posebank.core.jpeg import encode_jpeg
from posebank.core.masks import decode as decode_mask
from posebank.core.masks import encode as encode_mask
from posebank.core.store import Cache, CacheWriter, Example
from posebank.entry import StageContext, stage_main
from posebank.imaging.crop import crop_person_from_jpeg, reproject_image
from posebank.pipeline.layout import Layout
from posebank.pipeline.records import CARRIED_ATTRS, Records
from posebank.pipeline.shards import begin, read_box_shard, read_frame_shard, read_mask_shard, run_sharded

log = logging.getLogger(__name__)


def run(ctx: StageContext, layout: Layout | None = None) -> dict:
    layout, records, chain = begin(ctx, "crop", layout)
    crop = ctx.params.crop
    by_frame = records.instances_by_frame()

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
                    box, box_source = boxes[i]
                    if box_source == "dropped":
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
                for i in range(len(part)):
                    ex = part[i]
                    writer.add(ex)
                    counts[ex.split] += 1
    for reason, n in reasons.most_common():
        log.info("%s: %d left out: %s", records.dataset, n, reason)
    counts["quarantined"] = len(writer.quarantine)
    return dict(counts)


def main(argv=None) -> int:
    return stage_main("crop", run, argv)
