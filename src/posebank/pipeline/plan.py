"""How a dataset is cut into shards: at stable boundaries, so a change to one sequence changes only its shards.

The dataset module names the levels to cut at (``SHARD_KEY``, default subject / sequence / camera_name, each an
attribute of its instances). Starting from the whole dataset, a group of frames becomes one shard when it holds at
most ``pipeline.shard_frames`` frames and its estimated size (instances x ``pipeline.example_kb``) is at most
``pipeline.shard_mb``; otherwise it is split by the next level (subjects, then their sequences, then cameras),
and a group still too big at the last level is cut into equal consecutive parts. A small dataset is one shard
(``all``); a change to one sequence changes the one shard that holds it (or, when it crosses the size limit, only
the shards of its subject). Shard names are the group's path (``S1.Directions_1.54138969``); every image stage
(frames, detect, segment, crop) uses the same plan, and the crop stage's shards are the cache's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re

from posebank.core.errors import UsageError
from posebank.core.settings import PipelineParams
from posebank.pipeline import SHARDED_STAGES

DEFAULT_SHARD_KEY = ("subject", "sequence", "camera_name")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
MAX_NAME = 96


@dataclasses.dataclass(frozen=True)
class Shard:
    name: str  # stable name, the stem of its files
    key: tuple[str, ...]  # the group's path (values of the shard key's levels, then "part i of n")
    frame_ids: tuple[int, ...]  # indices into the records' frame table, in records order


def shard_name(key: tuple[str, ...]) -> str:
    """A file-safe name for a group path; a path that is not file-safe as it is gets a digest of itself appended,
    so distinct paths never share a name."""
    if not key:
        return "all"
    parts = [_UNSAFE.sub("_", p) or "_" for p in key]
    name = ".".join(parts)
    if parts == list(key) and len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(json.dumps(list(key)).encode()).hexdigest()[:8]
    return f"{name[:MAX_NAME]}-{digest}"


def shard_plan(records, pipeline: PipelineParams, shard_key: tuple[str, ...] = DEFAULT_SHARD_KEY) -> list[Shard]:
    """The shards of a dataset's records (see the module docstring), in a stable order: groups in the order in
    which their first frame appears in the records."""
    by_frame = records.instances_by_frame()
    n_frames = len(records.frames)
    if n_frames == 0:
        return [Shard("all", (), ())]
    keys, weights = [], []
    for fid in range(n_frames):
        rows = by_frame.get(fid, [])
        first = records.instances[rows[0]] if rows else None
        keys.append(tuple("" if first is None else str(getattr(first, level, "")) for level in shard_key))
        weights.append(max(len(rows), 1))
    max_frames = pipeline.shard_frames
    max_examples = max(1, int(pipeline.shard_mb * 1024 // max(pipeline.example_kb, 1e-9)))
    shards: list[Shard] = []

    def fits(fids) -> bool:
        return len(fids) <= max_frames and sum(weights[f] for f in fids) <= max_examples

    def cut(prefix: tuple[str, ...], fids: list[int], depth: int) -> None:
        if fits(fids):
            shards.append(Shard(shard_name(prefix), prefix, tuple(fids)))
            return
        if depth < len(shard_key):
            groups: dict[str, list[int]] = {}
            for f in fids:
                groups.setdefault(keys[f][depth], []).append(f)
            for value, members in groups.items():
                cut((*prefix, value), members, depth + 1)
            return
        total = sum(weights[f] for f in fids)
        n = max(math.ceil(len(fids) / max_frames), math.ceil(total / max_examples))
        bounds = [round(i * len(fids) / n) for i in range(n + 1)]
        width = max(4, len(str(n)))
        for i in range(n):
            key = (*prefix, f"part{i + 1:0{width}d}of{n:0{width}d}")
            shards.append(Shard(shard_name(key), key, tuple(fids[bounds[i]:bounds[i + 1]])))

    cut((), list(range(n_frames)), 0)
    return shards


@dataclasses.dataclass(frozen=True)
class Part:
    """Part ``index`` of ``count`` of a stage's shard plan: the shards at positions ``index``, ``index + count``,
    ... (round robin, so the parts get shards of every subject and sequence alike)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Part:
        """``"I/N"`` with 0 <= I < N; UsageError otherwise."""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
        if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
            raise UsageError("--shard", f"{text!r} is not I/N with 0 <= I < N (e.g. 0/4 ... 3/4)")
        return cls(int(m.group(1)), int(m.group(2)))

    def positions(self, n_shards: int) -> list[int]:
        return list(range(self.index, n_shards, self.count))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def stage_part(stage: str, text: str | None) -> Part | None:
    """The part ``--shard text`` of ``stage`` (None without one); UsageError when the stage is not sharded."""
    if text is None:
        return None
    if stage not in SHARDED_STAGES:
        raise UsageError("--shard", f"the {stage} stage is not sharded (sharded: {', '.join(SHARDED_STAGES)})")
    return Part.parse(text)
