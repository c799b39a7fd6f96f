"""Build a merge from the source caches, streaming: bounded memory whatever the sizes.

1. Resolve the sources (``<cache_dir>/<dataset>``): a merge whose sources are not all built refuses, naming the
   missing caches, unless it may be partial (``allow_missing``), which it then records.
2. Union skeleton (:mod:`posebank.merging.skeleton`).
3. With the plausibility filter: a first pass over the merged training rows for the mean bone lengths.
4. For each merged split, for each source in order: read the source in blocks of ``block_rows`` rows, keep the rows
   of the source splits mapped to that split, drop implausible training rows, append the rest (the source's own
   joints, box, camera, and its row number) to the source's block of the merged file.

Nothing but annotations is copied; the merged file is written atomically and is deterministic.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

from posebank import datasets
from posebank.core.errors import UsageError
from posebank.core.settings import MergeParams, params_digest
from posebank.core.skeleton import JointInfo
from posebank.core.store import ROWS_PER_CHUNK, SPLITS, Cache
from posebank.merging import plausibility
from posebank.merging.blocks import BlockStream, BlockTask
from posebank.merging.skeleton import local_edges, source_joints, union_skeleton
from posebank.merging.store import (
    COPIED_FROM_SOURCE,
    MergeWriter,
    cache_digest,
    cache_location,
    joints_compress,
    relative_cache_path,
)

log = logging.getLogger(__name__)
BLOCK_ROWS = 8192  # at most this many rows are read, filtered and written at a time ...
BLOCK_JOINT_ROWS = 1 << 18  # ... and at most this many rows x joints: memory per block is the same for every source


class MissingSourcesError(UsageError):
    """A merge's sources are not all built (and the merge may not be partial)."""


@dataclasses.dataclass
class Resolved:
    spec: object  # MergeSource
    path: Path
    cache: Cache


def missing_reason(dataset: str, cache_dir: Path) -> str:
    if dataset not in datasets.names():
        return "not implemented in posebank yet"
    folder = Path(cache_dir) / dataset
    if folder.is_dir():
        return f"not built: {folder} has no index.json (its crop stage has not finished)"
    return f"not built: no cache at {folder}"


def resolve_sources(name: str, spec: MergeParams, cache_dir, allow_missing: bool) -> tuple[list[Resolved], list]:
    cache_dir = Path(cache_dir)
    present, missing = [], []
    for s in spec.sources:
        path = cache_location(cache_dir, s.dataset)
        if path is None:
            missing.append({"dataset": s.dataset, "reason": missing_reason(s.dataset, cache_dir)})
        else:
            present.append(Resolved(s, path, Cache(path)))
    if missing and not allow_missing:
        for r in present:
            r.cache.close()
        listed = "; ".join(f"{m['dataset']} ({m['reason']})" for m in missing)
        raise MissingSourcesError(f"merge {name}", f"{len(missing)} of {len(spec.sources)} source caches are "
                                  f"missing under {cache_dir}: {listed}. Build them, or merge with --allow-missing "
                                  "for a partial merge")
    if not present:
        raise MissingSourcesError(f"merge {name}", f"none of its {len(spec.sources)} source caches is built under "
                                  f"{cache_dir}")
    return present, missing


def _target_joints(dataset: str, present: list[Resolved]) -> JointInfo:
    for r in present:
        if r.spec.dataset == dataset:
            return r.cache.joint_info
    if dataset in datasets.names():
        return datasets.get(dataset).JOINT_INFO
    raise UsageError(f"joints_as: {dataset}", "not a registered dataset nor a source of this merge")


def _block_rows(cache: Cache, block_rows: int) -> int:
    """At most ``block_rows`` rows and BLOCK_JOINT_ROWS rows x joints: memory per block is the same for every
    source."""
    return max(ROWS_PER_CHUNK, min(block_rows, BLOCK_JOINT_ROWS // max(cache.joint_info.n_joints, 1)))


def build_merge(name: str, spec: MergeParams, cache_dir, out, allow_missing: bool | None = None,
                block_rows: int = BLOCK_ROWS, reader: str = "auto") -> dict:
    """Merge ``spec``'s sources from ``cache_dir`` into ``out``; returns the merge's summary counts. ``reader``:
    where the sources are read ahead (:class:`posebank.merging.blocks.BlockStream`: a forked process, a thread, or
    ``auto``)."""
    t0 = time.perf_counter()
    allow = spec.allow_missing if allow_missing is None else allow_missing
    present, missing = resolve_sources(name, spec, cache_dir, allow)
    try:
        if missing:
            log.warning("merge %s is PARTIAL: %d of %d sources missing: %s", name, len(missing), len(spec.sources),
                        "; ".join(f"{m['dataset']} ({m['reason']})" for m in missing))
        joints = []
        for r in present:
            target = _target_joints(r.spec.joints_as, present) if r.spec.joints_as else None
            sj = source_joints(r.cache.joint_info, r.spec.suffix, target, r.spec.joints)
            if not len(sj.names):
                raise UsageError(f"merge {name}: source {r.spec.dataset}", "keeps no joints (joints_as / joints)")
            joints.append(sj)
        union = union_skeleton(joints)
        edges = [local_edges(m, union.joint_info) for m in union.joint_maps]
        filtering = spec.filter == "plausibility"
        p = spec.plausibility
        # the reads, in the order the merge consumes them: the filter's first pass (the training rows' joints, for
        # the mean bone lengths), then each merged split's sources in composition order (the columns it copies)
        subset = [None if np.array_equal(sj.source_index, np.arange(r.cache.joint_info.n_joints))
                  else tuple(int(i) for i in sj.source_index) for r, sj in zip(present, joints)]
        first, second = [], []
        if filtering:
            for k, r in enumerate(present):
                wanted = tuple(SPLITS.index(s) for s, d in r.spec.splits.items() if d == "train")
                first.append((k, BlockTask(r.path, wanted, _block_rows(r.cache, block_rows), ("world_coords",),
                                           subset[k])))
        for split in SPLITS:
            for k, r in enumerate(present):
                wanted = tuple(SPLITS.index(s) for s, d in r.spec.splits.items() if d == split)
                if wanted:
                    second.append((split, k, BlockTask(r.path, wanted, _block_rows(r.cache, block_rows),
                                                       COPIED_FROM_SOURCE, subset[k])))
        for r in present:  # the reader opens its own handles
            r.cache.release()
        dropped = [dict.fromkeys(plausibility.REASONS, 0) for _ in present]
        kept = [dict.fromkeys(SPLITS, 0) for _ in present]
        with BlockStream([t for _k, t in first] + [t for _s, _k, t in second], mode=reader) as stream:
            means = plausibility.BoneMeans(len(union.joint_info.edges))
            for j, (k, _task) in enumerate(first):
                pairs, numbers = edges[k]
                for _rows, cols in stream.task(j):
                    means.add(cols["world_coords"], pairs, numbers)
            mean = means.mean
            sources_attr = []
            for r, sj, m in zip(present, joints, union.joint_maps):
                sources_attr.append({"dataset": r.spec.dataset, "suffix": r.spec.suffix,
                                     "splits": dict(r.spec.splits), "joints_as": r.spec.joints_as,
                                     "joints": r.spec.joints, "cache": relative_cache_path(r.path, Path(out)),
                                     "cache_digest": cache_digest(r.path), "cache_examples": len(r.cache),
                                     "joint_names": list(sj.union_names),
                                     "source_joint_index": sj.source_index.tolist(), "joint_map": m.tolist()})
            attrs = {"skeletons": union.skeletons(), "missing": missing, "partial": bool(missing),
                     "filter": {"kind": spec.filter, **({"params": dataclasses.asdict(p), "mean_bone_mm":
                                [None if not np.isfinite(v) else round(float(v), 3) for v in mean]}
                                if filtering else {})},
                     "sampler": dataclasses.asdict(spec.sampler),
                     "params_digest": params_digest({k: v for k, v in dataclasses.asdict(spec).items()
                                                     if k != "allow_missing"})}
            with MergeWriter(out, name, union.joint_info, attrs) as w:
                ids = []
                for r, sj, m in zip(present, joints, union.joint_maps):
                    counts = r.cache.split_counts()
                    most = sum(counts[s] for s in r.spec.splits)
                    ids.append(w.add_source(r.spec.dataset, sj.joint_info, m, joints_compress(r.path), most))
                for j, (split, k, _task) in enumerate(second, len(first)):
                    pairs, numbers = edges[k]
                    check = filtering and split == "train" and present[k].spec.dataset not in p.exempt
                    for rows, cols in stream.task(j):
                        if check:
                            verdict = plausibility.implausible(cols["world_coords"], cols, pairs, numbers, mean, p)
                            for v, reason in enumerate(plausibility.REASONS, 1):
                                dropped[k][reason] += int(np.count_nonzero(verdict == v))
                            good = verdict == 0
                            if not good.all():
                                rows = rows[good]
                                cols = {c: v[good] for c, v in cols.items()}
                        w.append(ids[k], split, {"row": rows, **cols})
                        kept[k][split] += len(rows)
                for k, s in enumerate(sources_attr):
                    s["examples_per_split"] = kept[k]
                    s["dropped"] = {reason: n for reason, n in dropped[k].items() if n}
                w.attrs["sources"] = sources_attr
        reader_info = dict(stream.info)  # after the stream closed: the reader process reports its memory at the end
        totals = {s: sum(kp[s] for kp in kept) for s in SPLITS}
        n_dropped = sum(sum(d.values()) for d in dropped)
        result = {"examples": sum(totals.values()), **{f"examples_{s}": totals[s] for s in SPLITS},
                  "sources": len(present), "missing": len(missing), "joints": union.joint_info.n_joints,
                  "dropped": n_dropped, "seconds": round(time.perf_counter() - t0, 3), **reader_info}
        log.info("merge %s: %d examples (%s) from %d sources, %d union joints, %d dropped by the filter%s -> %s",
                 name, result["examples"], ", ".join(f"{s} {totals[s]}" for s in SPLITS), len(present),
                 union.joint_info.n_joints, n_dropped,
                 f"; PARTIAL: {len(missing)} sources missing ({', '.join(m['dataset'] for m in missing)})"
                 if missing else "", out)
        return result
    finally:
        for r in present:
            r.cache.close()
