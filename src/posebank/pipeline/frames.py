"""frames@<dataset>: records -> frames/shard-*.h5, the selected frames as JPEG (videos decoded once, composites
rendered by the dataset's frame source) with the masks and visibilities a dataset provides itself."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from posebank import datasets
from posebank.core.jpeg import encode_jpeg
from posebank.core.masks import encode as encode_mask
from posebank.core.tables import write_table
from posebank.datasets.base import Frame, RawInstance
from posebank.datasets.frames import file_frame_source, read_mask
from posebank.entry import StageContext, stage_main
from posebank.pipeline.layout import Layout
from posebank.pipeline.plan import Shard
from posebank.pipeline.shards import ShardRows, begin, run_sharded


def _dataset_mask(inst: RawInstance, frame: Frame, raw: Path) -> np.ndarray | None:
    if inst.person_index in frame.masks:
        return frame.masks[inst.person_index]
    if inst.mask_source:
        return read_mask(raw / inst.mask_source)
    return None


def run(ctx: StageContext, layout: Layout | None = None) -> None:
    layout, records, chain, part = begin(ctx, "frames", layout)
    fp = ctx.params.frames
    raw = ctx.raw
    module = datasets.get(records.dataset)
    make_source = getattr(module, "frame_source", None)
    source = make_source(raw, records.attrs["params"]) if make_source else file_frame_source(raw)
    by_frame = records.instances_by_frame()
    n_joints = records.joint_info.n_joints

    def work(shard: Shard, digest: str) -> None:
        frame_ids = list(shard.frame_ids)
        ids = ShardRows(shard, by_frame)
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
                images[fid] = encode_jpeg(frame.image, fp.jpeg_quality)
                sizes[fid] = frame.image.shape[:2]
                for i in by_frame[fid]:
                    inst = records.instances[i]
                    m = _dataset_mask(inst, frame, raw)
                    rows.append(i)
                    masks.append(b"" if m is None else encode_mask(m))
                    v = frame.visibility.get(inst.person_index)
                    vis.append(np.full(n_joints, 255, np.uint8) if v is None else v)
        write_table(layout.shard("frames", shard.name), {
            "frame_pos": ids.frame_positions(frame_ids), "inst_pos": ids.row_positions(rows),
            "size": np.array([sizes.get(f, (0, 0)) for f in frame_ids], np.int32).reshape(-1, 2),
            "inst_visibility": np.array(vis, np.uint8).reshape(-1, n_joints)},
            {"image": [images.get(f, b"") for f in frame_ids],
             "problem": [problems.get(f, "").encode() for f in frame_ids], "inst_mask": masks},
            {"digest": digest})

    run_sharded("frames", layout, chain, work, ctx.progress, part=part)


def main(argv=None) -> int:
    return stage_main("frames", run, argv, sharded=True)
