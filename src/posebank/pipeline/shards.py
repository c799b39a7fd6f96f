"""The shard machinery of the image stages (frames, detect, segment, crop) and their shard formats.

Work is cut into the shards of :func:`posebank.pipeline.plan.shard_plan` (stable boundaries: subject / sequence /
camera, a target size), the same for every stage; the crop stage's shards are the cache's. Every shard file is
written atomically and carries the digest of what it was built from, in a chain: a frames shard's digest covers
the records of its own frames (not the rest of records.h5), the raw files it reads, the frames settings and code;
a detect shard's covers its frames shard's digest and the detect settings; and so on. So

* a rerun after an interruption, or after a change to one sequence, rebuilds only the shards whose digest
  changed, and the others stay byte-identical;
* a stage refuses to run (naming the shards) when a shard it reads is missing or stale, e.g. the frames were
  rebuilt with another plan but detect was not rerun: never a partial result with exit status 0.

A stage can also build one part of the plan, ``--shard I/N`` (:class:`~posebank.pipeline.plan.Part`): the shards
whose position in the plan is I modulo N, so N processes on as many machines or GPUs build disjoint shards of one
dataset at once (each shard is written atomically by whoever builds it). A part run checks only the upstream
shards of its own part and leaves the folder as a whole alone (no pruning, and the crop stage writes no cache
index); the run without ``--shard`` afterwards assembles: it checks every shard, builds any still missing, prunes
and, for crop, writes the index. The shard files are the same whichever process built them, so the sharded build
is byte-identical to the single-process one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from posebank import datasets
from posebank.core.atomic import remove_stale_temps
from posebank.core.errors import StageError
from posebank.core.settings import Params
from posebank.core.tables import Table, is_complete
from posebank.pipeline.code import code_digest
from posebank.pipeline.layout import Layout
from posebank.pipeline.plan import DEFAULT_SHARD_KEY, Part, Shard, shard_plan
from posebank.pipeline.records import read_records

log = logging.getLogger(__name__)
# what each sharded stage reads of the stages before it
UPSTREAM = {"frames": (), "detect": ("frames",), "segment": ("frames", "detect"),
            "crop": ("frames", "detect", "segment")}
BOX_SOURCES = ("projected", "detection", "dataset", "hull", "dropped")
MASK_METHODS = ("none", "dataset", "grabcut", "sam")


def _h(*parts) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_signature(path) -> list | None:
    """(size, mtime in ns) of a file, None when it does not exist: cheap enough for every raw file a shard reads."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


class DigestChain:
    """The digest every shard of every sharded stage must carry: what it was built from.

    A frames shard's covers records.h5, its frame range, the frames settings, the frames stage's code (with the
    dataset's family, whose frame source may render the images) and the size and time of every raw file it reads;
    a later stage's covers the digests of the shards it reads, its settings, its code and, for detect and
    segment, the model file's size and time.
    """

    def __init__(self, layout: Layout, params: Params, records, raw=None, family: str | None = None):
        if not layout.records.is_file():
            raise StageError(layout.records, "missing: run the convert stage first "
                             f"(dvc repro convert@{layout.dataset})")
        self.records = records
        self.raw = None if raw is None else Path(raw)
        self.family = family
        self.dataset = layout.dataset
        self.params = params
        module = datasets.get(records.dataset) if records.dataset in datasets.names() else None
        self.shards = shard_plan(records, params.pipeline, getattr(module, "SHARD_KEY", DEFAULT_SHARD_KEY))
        # frames rendered by the dataset's own frame source depend on the parameters it says it reads
        # (FRAME_SOURCE_PARAMS; all of them when it does not say)
        self.source_params = None
        if getattr(module, "frame_source", None):
            given = records.attrs.get("params") or {}
            keys = getattr(module, "FRAME_SOURCE_PARAMS", None)
            self.source_params = given if keys is None else {k: given.get(k) for k in keys}
        # ... and on the raw files it renders them from besides the source (e.g. a calibration it undistorts with)
        self.source_files = getattr(module, "frame_source_files", None) if self.raw is not None else None
        self._cache: dict[tuple[str, int], str] = {}
        self._by_frame = None

    @property
    def n_shards(self) -> int:
        return len(self.shards)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.shards]

    def settings(self, stage: str):
        s = getattr(self.params, stage)
        if stage == "detect":  # what applies to this dataset: another dataset's override does not matter here
            s = s.for_dataset(self.dataset)
        return output_settings(stage, s)

    def _raw_files(self, k: int) -> list:
        if self._by_frame is None:
            self._by_frame = self.records.instances_by_frame()
        by_frame = self._by_frame
        files = set()
        for fid in self.shards[k].frame_ids:
            files.add(self.records.frames[fid][0])
            if self.source_files is not None:
                files.update(self.source_files(self.raw, self.records.frames[fid][0]))
            files.update(self.records.instances[i].mask_source for i in by_frame[fid]
                         if self.records.instances[i].mask_source)
        if self.raw is None:
            return sorted(files)
        return [[f, file_signature(self.raw / f)] for f in sorted(files)]

    def _models(self, stage: str) -> list:
        s = getattr(self.params, stage)
        s = s.for_dataset(self.dataset) if stage == "detect" else s
        path = {"detect": getattr(s, "weights", None) if getattr(s, "backend", "") == "torchvision" else None,
                "segment": getattr(s, "checkpoint", None) if getattr(s, "backend", "") == "sam" else None}.get(stage)
        return [] if path is None else [path, file_signature(path)]

    def digest(self, stage: str, k: int) -> str:
        key = (stage, k)
        if key not in self._cache:
            own = [stage, self.settings(stage), code_digest(stage, self.family), self._models(stage)]
            if stage == "frames":
                if self._by_frame is None:
                    self._by_frame = self.records.instances_by_frame()
                rows = self.records.rows_digest(self.shards[k].frame_ids, self._by_frame)
                value = _h(rows, self.shards[k].name, own, self._raw_files(k), self.source_params)
            else:
                value = _h([self.digest(u, k) for u in UPSTREAM[stage]], own)
            self._cache[key] = value
        return self._cache[key]


# settings that cannot change a stage's output (the crop stage's output order is fixed whatever its thread count)
NOT_IN_OUTPUT = {"crop": ("workers",)}


def output_settings(stage: str, section) -> dict:
    """A stage's settings that its output depends on (its shards' digests and recorded parameters)."""
    return {k: v for k, v in dataclasses.asdict(section).items() if k not in NOT_IN_OUTPUT.get(stage, ())}


def check_upstream(stage: str, layout: Layout, chain: DigestChain, positions: list[int] | None = None) -> None:
    """StageError naming the shards of earlier stages that are missing or built from other inputs (of the shards
    at ``positions`` only, when given)."""
    wanted = range(chain.n_shards) if positions is None else positions
    for upstream in UPSTREAM[stage]:
        bad = [chain.shards[k].name for k in wanted if not is_complete(layout.shard(upstream, chain.shards[k].name),
                                                                       chain.digest(upstream, k))]
        if bad:
            shown = ", ".join(bad[:8]) + (f" (and {len(bad) - 8} more)" if len(bad) > 8 else "")
            of = f"the part's {len(wanted)}" if positions is not None else f"{chain.n_shards}"
            raise StageError(layout.shard_folder(upstream),
                             f"{len(bad)} of {of} {upstream} shards are missing or stale (built from "
                             f"other inputs or parameters): shards {shown}; rerun the {upstream} stage first "
                             f"(dvc repro {upstream}@{layout.dataset})")


def prune(folder: Path, names: list[str]) -> list[Path]:
    """Remove the shard files of ``folder`` that are not in the plan (left by a run with another plan)."""
    keep = set(names)
    removed = []
    if folder.is_dir():
        for p in sorted(folder.glob("*.h5")):
            if p.stem not in keep:
                p.unlink()
                removed.append(p)
    return removed


def run_sharded(stage: str, layout: Layout, chain: DigestChain, work: Callable[[Shard, str], None],
                progress: bool, before_changes: Callable[[], None] | None = None, part: Part | None = None) -> None:
    """Run ``work(shard, digest)`` for every shard of ``stage`` (of ``part`` only, when given) that is not complete
    with its current digest; ``before_changes`` is called once before the first shard file is removed or rewritten
    (the crop stage removes the cache's index there, so a half-rebuilt folder is never taken for a cache)."""
    positions = None if part is None else part.positions(chain.n_shards)
    check_upstream(stage, layout, chain, positions)
    folder = layout.shard_folder(stage)
    remove_stale_temps(folder)  # only those of dead writers: the other parts' running writers keep theirs
    todo = [k for k in (range(chain.n_shards) if positions is None else positions)
            if not is_complete(layout.shard(stage, chain.shards[k].name), chain.digest(stage, k))]
    keep = set(chain.names)
    if before_changes is not None and (todo or (part is None and any(p.stem not in keep
                                                                     for p in folder.glob("*.h5")))):
        before_changes()
    if part is not None:
        log.info("%s %s: shard part %s, %d of the plan's %d shards, %d to build", stage, layout.dataset, part,
                 len(positions), chain.n_shards, len(todo))
        for k in tqdm(todo, desc=f"{stage} {layout.dataset} {part}", unit="shard", disable=not progress):
            work(chain.shards[k], chain.digest(stage, k))
        return
    removed = prune(folder, chain.names)
    if removed:
        log.info("%s %s: removed %d shard files not in the plan", stage, layout.dataset, len(removed))
    if not todo:
        log.info("%s %s: all %d shards already done", stage, layout.dataset, chain.n_shards)
    elif len(todo) < chain.n_shards:
        log.info("%s %s: %d of %d shards current, %d to build", stage, layout.dataset, chain.n_shards - len(todo),
                 chain.n_shards, len(todo))
    for k in tqdm(todo, desc=f"{stage} {layout.dataset}", unit="shard", disable=not progress):
        work(chain.shards[k], chain.digest(stage, k))


def begin(ctx, stage: str, layout: Layout | None):
    """The common start of the sharded stages: the layout (from params unless given), its outputs checked before
    any work, records.h5, the digest chain and the run's part of the plan (``--shard I/N``; None: all of it)."""
    layout = layout or Layout.from_params(ctx.dataset, ctx.params.pipeline)
    part = getattr(ctx, "shard", None)
    layout.check_outputs(stage)
    records = read_records(layout.records)
    return layout, records, DigestChain(layout, ctx.params, records, ctx.raw, datasets.family(ctx.dataset)), part


# ------------------------------------------------------------------------------------------- shard formats
# The interim shards refer to frames and instances by their position in the shard (the shard's frames in order,
# each frame's instances in records order), never by records-wide numbers: a shard kept because its own records
# did not change stays right when frames elsewhere in the dataset were added or removed (the numbers shift).
class ShardRows:
    """A shard's frames and instances: records-wide ids <-> positions in the shard."""

    def __init__(self, shard: Shard, by_frame: dict[int, list[int]]):
        self.frames = list(shard.frame_ids)
        self.rows = [i for f in self.frames for i in by_frame.get(f, [])]
        self._frame_pos = {f: k for k, f in enumerate(self.frames)}
        self._row_pos = {i: j for j, i in enumerate(self.rows)}

    def frame_positions(self, fids) -> np.ndarray:
        return np.array([self._frame_pos[int(f)] for f in fids], np.int64)

    def row_positions(self, rows) -> np.ndarray:
        return np.array([self._row_pos[int(i)] for i in rows], np.int64)

    def frame_id(self, pos) -> int:
        return self.frames[int(pos)]

    def row(self, pos) -> int:
        return self.rows[int(pos)]


@dataclasses.dataclass
class FrameShard:
    frame_ids: list[int]
    images: dict[int, bytes]
    problems: dict[int, str]
    sizes: dict[int, tuple[int, int]]  # (height, width) per frame
    dataset_masks: dict[int, bytes]  # by instance row
    visibility: dict[int, np.ndarray]  # by instance row (255 = unknown)


def read_frame_shard(path, ids: ShardRows) -> FrameShard:
    with Table(path) as t:
        fids = [ids.frame_id(k) for k in t.column("frame_pos")]
        images = dict(zip(fids, t.blobs("image")))
        sizes = {f: (int(h), int(w)) for f, (h, w) in zip(fids, t.column("size"))}
        problems = {f: p.decode() for f, p in zip(fids, t.blobs("problem")) if p}
        rows = [ids.row(j) for j in t.column("inst_pos")]
        masks = dict(zip(rows, t.blobs("inst_mask")))
        vis = dict(zip(rows, t.column("inst_visibility")))
    return FrameShard(fids, images, problems, sizes, masks, vis)


def read_box_shard(path, ids: ShardRows) -> dict[int, tuple[np.ndarray, str]]:
    with Table(path) as t:
        return {ids.row(j): (b, BOX_SOURCES[s]) for j, b, s in zip(t.column("inst_pos"), t.column("box"),
                                                                   t.column("box_source"))}


def read_mask_shard(path, ids: ShardRows) -> dict[int, bytes]:
    with Table(path) as t:
        return dict(zip((ids.row(j) for j in t.column("inst_pos")), t.blobs("mask")))
