"""All stages in one call, without DVC (``posebank convert``): the intermediate products go to a temporary
folder beside the output, which is removed afterwards (and by the next run when this one is killed)."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

from posebank import datasets
from posebank.core.atomic import prepare_output, temp_dir
from posebank.core.errors import CacheFormatError, OutputError, UsageError
from posebank.core.settings import check_params
from posebank.core.store import INDEX_NAME, Cache, CacheFile
from posebank.entry import StageContext
from posebank.pipeline import STAGES, crop, detect, frames, segment
from posebank.pipeline import convert as convert_stage
from posebank.pipeline.layout import Layout
from posebank.pipeline.plan import stage_part


def check_output(out, dataset: str | None = None) -> Path:
    """``out`` may be written as ``dataset``'s cache folder: it does not exist, or is an empty folder, or holds only
    that dataset's cache shards (with or without their index: a killed build's shards count too; the current ones
    are then kept) and writers' temporaries, in a writable folder. Nothing is created here."""
    if str(out).strip() in ("", "."):
        raise OutputError(repr(str(out)), "an output folder name is needed")
    out = Path(out)
    if out.is_file():
        raise OutputError(out, "is a file; a cache is a folder (give a folder path; a single-file cache written "
                          "by an older posebank stays readable but is not overwritten)")
    if out.is_dir() and (out / INDEX_NAME).is_file():
        try:
            with Cache(out) as cache:
                found = cache.dataset
        except CacheFormatError:
            raise OutputError(out, "exists and is not a readable posebank cache; refusing to overwrite it") from None
        if dataset is not None and found != dataset:
            raise OutputError(out, f"holds the cache of {found}, not {dataset}; refusing to overwrite it")
    if out.is_dir():
        for p in out.iterdir():
            if p.name == INDEX_NAME or (p.name.startswith(".") and p.name.endswith((".tmp", ".tmpdir"))):
                continue  # the index (checked above), a writer's temporary (removed once its process is gone)
            of = _cache_file_dataset(p) if p.is_file() and p.suffix == ".h5" else None
            if of is None:
                raise OutputError(out, f"exists, is not empty and is not a posebank cache folder ({p.name} is not "
                                  "a cache shard); refusing to write into it")
            if dataset is not None and of != dataset:
                raise OutputError(out, f"{p.name} is a shard of {of}, not {dataset}; refusing to write into it")
    prepare_output(out.parent / f"{out.name}.probe")  # the parent exists and is writable
    return out


def _cache_file_dataset(path: Path) -> str | None:
    """The dataset of a cache file, None when the file is not one."""
    try:
        f = CacheFile(path)
    except CacheFormatError:
        return None
    f.close()
    return f.dataset


def run_all(ctx: StageContext, layout: Layout) -> dict:
    convert_stage.run(ctx, layout)
    for stage in (frames, detect, segment):
        stage.run(ctx, layout)
    return crop.run(ctx, layout)


def convert(name: str, raw, out, dataset_params: dict | None = None, crop_params: dict | None = None,
            progress: bool = True, detect_params: dict | None = None, segment_params: dict | None = None,
            frames_params: dict | None = None, shard_frames: int | None = None, params: dict | None = None) -> dict:
    """Check the raw layout, select instances, extract frames, box, segment and crop them, and write ``out``
    atomically. Returns counts per split. ``params`` is a whole params.yaml mapping (its other arguments override
    its sections); without ``segment_params`` (or a ``segment:`` section) no masks are computed (datasets that
    ship masks keep theirs)."""
    p = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (params or {}).items()}
    p["datasets"] = {name: {**dict((p.get("datasets") or {}).get(name) or {}), **dict(dataset_params or {}),
                            "raw": str(raw)}}
    for key, value in (("crop", crop_params), ("frames", frames_params), ("detect", detect_params),
                       ("segment", segment_params)):
        if value is not None:
            p[key] = value
    p.setdefault("segment", {"backend": "none"})
    if shard_frames is not None:
        p["pipeline"] = {**(p.get("pipeline") or {}), "shard_frames": shard_frames}
    checked = check_params(p, source="params", known_datasets=datasets.names())
    module = datasets.get(name)
    ds = module.check_params(checked.dataset_entry(name))
    out = check_output(out, name)
    existed = out.exists()
    try:
        with temp_dir(beside=out) as tmp:
            ctx = StageContext(name, checked, progress, ds)
            return run_all(ctx, Layout(name, tmp, out))
    except BaseException:
        if not existed and out.is_dir() and not (out / INDEX_NAME).exists():
            shutil.rmtree(out, ignore_errors=True)  # a failed first build leaves no folder behind
        raise


def run_stage(stage: str, dataset: str, params: dict, progress: bool = False, shard: str | None = None):
    """One stage of one dataset with the settings of a params.yaml mapping (what ``stages/<stage>.py`` does,
    without the command line): the params are checked whole first. ``shard``: ``"I/N"``, one part of a sharded
    stage's plan (``--shard``)."""
    if stage not in STAGES:
        raise UsageError(f"stage {stage!r}", f"unknown; stages: {', '.join(STAGES)}")
    checked = check_params(params, source="params", known_datasets=datasets.names())
    module = datasets.get(dataset)
    ds = module.check_params(checked.dataset_entry(dataset))
    part = stage_part(stage, shard)
    return importlib.import_module(f"posebank.pipeline.{stage}").run(StageContext(dataset, checked, progress, ds,
                                                                                  part))
