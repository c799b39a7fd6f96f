"""fetch@<dataset>: the raw tree checked, or downloaded where the dataset's authors publish direct downloads.

1. The raw folder (``datasets.<ds>.raw``) passes the dataset's ``check_layout``: nothing is downloaded.
2. Otherwise, when the dataset module has ``RESOURCES`` (direct URLs with published checksums): each is downloaded
   into ``<fetch.downloads>/<family>/`` (resumably, verified), unpacked safely into the raw folder (or copied there),
   and the layout is checked again.
3. Otherwise (datasets behind a registration): a DatasetError naming the raw folder and what is missing, and the
   dataset's instructions (homepage, ``RAW_INSTRUCTIONS``) printed below the error line.

The stage writes ``<interim>/<ds>/fetch.json`` (atomically, no times: deterministic): the dataset, the raw path,
``present`` or ``downloaded`` and, when downloaded, each resource with its digest, size and what was unpacked.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from posebank import datasets
from posebank.core.atomic import prepare_output, write_json
from posebank.core.errors import DatasetError, RawLayoutError, UsageError
from posebank.core.settings import FetchParams
from posebank.entry import StageContext, load_checked, run_guarded, stage_args
from posebank.fetching.resources import Resource, instructions_of, resources_of
from posebank.pipeline.layout import Layout

log = logging.getLogger(__name__)

MANIFEST = "fetch.json"  # <interim>/<dataset>/fetch.json


class RawDataMissing(DatasetError):
    """The raw tree is incomplete and posebank cannot download what is missing; ``instructions`` says what to get
    and where to put it (printed below the error line)."""

    def __init__(self, where, problem: str, instructions: str):
        super().__init__(where, problem)
        self.instructions = instructions


def manifest_path(layout: Layout) -> Path:
    return layout.interim / MANIFEST


def instructions(name: str, module: ModuleType, raw) -> str:
    """What a user does to get dataset ``name`` into ``raw``: its homepage and the module's instructions."""
    info = module.INFO
    lines = [f"{info.full_name} ({name}): {info.homepage}",
             f"Put it into {raw}, or point params.yaml's datasets.{name}.raw at the folder holding it."]
    text = instructions_of(module)
    if text:
        lines += ["", *text.splitlines()]
    return "\n".join(lines)


def fetch(name: str, raw, params: dict | None, settings: FetchParams, module: ModuleType | None = None,
          resources: Sequence[Resource] | None = None, progress: bool = False, backoff_s: float | None = None
          ) -> dict:
    """Make the raw tree of dataset ``name`` at ``raw`` complete (module docstring) and return the manifest.
    ``resources`` replaces the module's ``RESOURCES`` (a mirror); ``params`` are the dataset's checked params."""
    from posebank.fetching.download import BACKOFF_S, download
    from posebank.fetching.extract import Limits, extract, is_archive, place

    module = module or datasets.get(name)
    raw = Path(raw)
    try:
        module.check_layout(raw, params)
        log.info("%s: raw tree complete at %s; nothing to download", name, raw)
        return {"dataset": name, "raw": str(raw), "state": "present", "resources": []}
    except RawLayoutError as e:
        missing = e
    found = tuple(resources) if resources is not None else resources_of(module, params)
    if not found:
        raise RawDataMissing(missing.where, f"{missing.problem}; posebank cannot download {name} (its authors "
                             "hand it out after a registration): get it by hand, as said below",
                             instructions(name, module, raw))
    folder = Path(settings.downloads) / datasets.family(name)
    log.info("%s: raw tree incomplete at %s (%s); downloading %d file%s into %s", name, raw, missing.problem,
             len(found), "s" if len(found) > 1 else "", folder)
    limits = Limits(settings.max_extract_bytes, settings.max_members)
    for r in found:
        if r.extract and not is_archive(r.filename):
            raise UsageError(r.filename, "extract is set but the file is not a .zip, .tar, .tar.gz, .tgz, "
                             ".tar.bz2 or .tar.xz archive")
    files = [download(r, folder, retries=settings.retries, timeout_s=settings.timeout_s, progress=progress,
                      backoff_s=BACKOFF_S if backoff_s is None else backoff_s) for r in found]
    entries = []
    for r, path in zip(found, files):
        target = raw / r.subdir if r.subdir else raw
        entry = {"url": r.url, "filename": r.filename, r.algorithm: r.digest, "size": path.stat().st_size,
                 "into": r.subdir or "."}
        if r.extract:
            done = extract(path, target, limits)
            entry["extracted"] = {"files": done.files, "folders": done.folders, "bytes": done.bytes}
        else:
            place(path, target, r.filename)
        entries.append(entry)
    try:
        module.check_layout(raw, params)
    except RawLayoutError as e:
        raise RawDataMissing(e.where, f"{e.problem}, after downloading {', '.join(r.filename for r in found)}: "
                             "the rest is not downloadable, get it by hand as said below",
                             instructions(name, module, raw)) from None
    log.info("%s: raw tree complete at %s", name, raw)
    return {"dataset": name, "raw": str(raw), "state": "downloaded", "resources": entries}


def run(ctx: StageContext, layout: Layout | None = None) -> dict:
    layout = layout or Layout.from_params(ctx.dataset, ctx.params.pipeline)
    out = prepare_output(manifest_path(layout))
    if ctx.raw is None:
        raise UsageError(f"{ctx.params.source}: datasets.{ctx.dataset}.raw",
                         "no raw folder set: point it at the dataset as its authors distribute it")
    manifest = fetch(ctx.dataset, ctx.raw, ctx.dataset_params, ctx.params.fetch, progress=ctx.progress)
    write_json(out, manifest)
    return {"raw": manifest["state"], "resources": len(manifest["resources"])}


def main(argv=None) -> int:
    """``stages/fetch.py DATASET [--params params.yaml] [-q] [-v]``: as every stage (params checked whole, one
    error line, exit 2), and the dataset's instructions below the error line when its raw tree is missing."""
    args = stage_args("fetch", "dataset", None, argv)

    def go():
        params, dataset_params = load_checked(args.params, args.dataset)
        try:
            result = run(StageContext(args.dataset, params, not args.quiet, dataset_params))
        except RawDataMissing as e:
            print(f"error: {e}", file=sys.stderr)
            print(e.instructions, file=sys.stderr)
            return e.exit_code
        log.info("fetch %s: %s", args.dataset, ", ".join(f"{k} {v}" for k, v in sorted(result.items())))
        return 0

    return run_guarded(go)

