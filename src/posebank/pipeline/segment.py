"""segment@<dataset>: frames + boxes -> masks/shard-*.h5, a person mask per instance: the dataset's own where
it has them, else the configured backend (SAM, GrabCut; ``none``: no masks). GrabCut is seeded per box, so a
resumed run gives the same masks as an uninterrupted one."""

from __future__ import annotations

import numpy as np

from posebank.core.jpeg import decode_jpeg
from posebank.core.masks import encode as encode_mask
from posebank.core.tables import write_table
from posebank.entry import StageContext, stage_main
from posebank.pipeline.layout import Layout
from posebank.pipeline.plan import Shard
from posebank.pipeline.shards import MASK_METHODS, ShardRows, begin, read_box_shard, read_frame_shard, run_sharded


def run(ctx: StageContext, layout: Layout | None = None) -> None:
    from posebank.vision.segment import make_segmenter

    layout, records, chain, part = begin(ctx, "segment", layout)
    sp = ctx.params.segment
    by_frame = records.instances_by_frame()
    segmenter = None

    def work(shard: Shard, digest: str) -> None:
        nonlocal segmenter
        ids = ShardRows(shard, by_frame)
        fs = read_frame_shard(layout.shard("frames", shard.name), ids)
        boxes = read_box_shard(layout.shard("detect", shard.name), ids)
        rows, masks, methods = [], [], []
        for fid in fs.frame_ids:
            insts = [i for i in by_frame[fid] if i in boxes]
            todo = [i for i in insts if not fs.dataset_masks.get(i)] if sp.backend != "none" else []
            found = {}
            if todo and fs.images.get(fid):
                if segmenter is None:
                    segmenter = make_segmenter(sp)
                image = decode_jpeg(fs.images[fid])
                points = [records.instances[i].image_points() for i in todo]
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
                    methods.append(MASK_METHODS.index("none"))
        write_table(layout.shard("segment", shard.name), {"inst_pos": ids.row_positions(rows),
                                                 "method": np.array(methods, np.uint8)},
                    {"mask": masks}, {"digest": digest})

    run_sharded("segment", layout, chain, work, ctx.progress, part=part)


def main(argv=None) -> int:
    return stage_main("segment", run, argv, sharded=True)
