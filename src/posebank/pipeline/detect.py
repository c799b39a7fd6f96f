"""detect@<dataset>: frames -> boxes/shard-*.h5, person boxes (backend from params: projected, hog,
torchvision) matched to the ground-truth people; the example box per instance."""

from __future__ import annotations

import numpy as np

from posebank.core.jpeg import decode_jpeg
from posebank.core.tables import write_table
from posebank.entry import StageContext, stage_main
from posebank.imaging.crop import box_from_points
from posebank.pipeline.layout import Layout
from posebank.pipeline.plan import Shard
from posebank.pipeline.shards import BOX_SOURCES, ShardRows, begin, read_frame_shard, run_sharded


def run(ctx: StageContext, layout: Layout | None = None) -> None:
    from posebank.vision.detect import make_detector, select_boxes

    layout, records, chain, part = begin(ctx, "detect", layout)
    dp = ctx.params.detect.for_dataset(ctx.dataset)  # with the dataset's per_dataset overrides
    by_frame = records.instances_by_frame()
    detector = None

    def work(shard: Shard, digest: str) -> None:
        nonlocal detector
        ids = ShardRows(shard, by_frame)
        fs = read_frame_shard(layout.shard("frames", shard.name), ids)
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
                records.instances[i].image_points(), dp.expansion)
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
        write_table(layout.shard("detect", shard.name), {
            "inst_pos": ids.row_positions(rows), "box": np.array(boxes, np.float64).reshape(-1, 4),
            "box_source": np.array(sources, np.uint8), "score": np.array(scores, np.float32),
            "frame_pos": ids.frame_positions(fs.frame_ids)}, {"detections": det_blobs}, {"digest": digest})

    run_sharded("detect", layout, chain, work, ctx.progress, part=part)


def main(argv=None) -> int:
    return stage_main("detect", run, argv, sharded=True)
