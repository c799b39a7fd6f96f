"""export@<name> and export_merge@<name>: a cache (``exports:``) or a merge (``merge_exports:``) of params.yaml
written in a format that a consumer's training code reads (:mod:`posebank.exporting`), into
``<pipeline.exports>/<name>/`` with its manifest; refit_config: ReFit's three dataset mixes and a data_config.py
over the SPIN / ReFit exports. Both stages' command lines are here, and ``posebank export``'s work."""

from __future__ import annotations

import logging
from pathlib import Path

from posebank.core.errors import UsageError
from posebank.core.settings import ExportParams, Params
from posebank.exporting import exporter
from posebank.exporting.common import run_export
from posebank.merging.store import cache_location, is_merge_file
from posebank.pipeline.merge import merged_path

log = logging.getLogger(__name__)


def export_folder(params: Params, name: str) -> Path:
    return Path(params.pipeline.exports) / name


def resolve_source(params: Params, source: str, cache_dir=None) -> Path:
    """A cache or merged file by name (a dataset's or subset's cache under the cache folder, then a merge of
    params.yaml under the merged folder) or by path."""
    path = Path(source)
    if path.exists() and (path.is_dir() or is_merge_file(path) or path.suffix == ".h5"):
        return path
    found = cache_location(Path(cache_dir) if cache_dir is not None else Path(params.pipeline.cache), source)
    if found is not None:
        return found
    if source in params.merges:
        merged = merged_path(params, source)
        if merged.is_file():
            return merged
        raise UsageError(f"merge {source}", f"not built: no merged file at {merged} (dvc repro merge@{source})")
    where = Path(cache_dir) if cache_dir is not None else Path(params.pipeline.cache)
    raise UsageError(f"export source {source!r}", f"no cache at {where / source} and not a built merge or a path "
                     "to a cache or merged file")


def run_export_entry(name: str, params: Params, cache_dir=None, out=None) -> dict:
    """The export ``name`` of params.yaml's ``exports:`` / ``merge_exports:``."""
    key, entry = params.export(name)
    if key == "merge_exports":
        source = merged_path(params, entry.source)
        if not source.is_file():
            raise UsageError(f"merge_exports.{name}", f"merge {entry.source} not built: no {source}")
    else:
        source = resolve_source(params, entry.source, cache_dir)
    out = Path(out) if out is not None else export_folder(params, name)
    return export(entry, source, out, cache_dir=None if key == "merge_exports" else cache_dir)


def export(entry: ExportParams, source: Path, out: Path, cache_dir=None) -> dict:
    m = run_export(entry.format, exporter(entry.format), source, out, entry.options(), cache_dir=cache_dir)
    s = m["summary"]
    files = exported_files(s)
    log.info("export %s of %s (%s, %d examples) -> %s%s", entry.format, m["source"]["name"], m["source"]["kind"],
             int(s.get("examples", m["source"]["examples"])), out, f": {', '.join(files)}" if files else "")
    return m


def exported_files(summary: dict) -> list[str]:
    """The files an exporter's summary names (``files``, or one ``file``)."""
    files = summary.get("files") or ([summary["file"]] if summary.get("file") else [])
    return [str(f) for f in files]


def run_refit_config(params: Params, out=None) -> dict:
    """ReFit's mixes and data_config.py over the SPIN exports of params.yaml that produce ReFit's files."""
    from posebank.exporting.common import atomic_folder
    from posebank.exporting.refit_config import KEY_FILES, write_refit_config

    exports = {}
    for name, entry in params.exports.items():
        if entry.format == "spin" and entry.file in KEY_FILES.values() and export_folder(params, name).is_dir():
            exports[entry.file] = export_folder(params, name)
    out = Path(out) if out is not None else Path(params.pipeline.exports) / "refit"
    with atomic_folder(out) as tmp:
        result = write_refit_config(exports, tmp, at=out)
    missing = sorted({d for mix in result["configs"].values() for d in mix["missing"]})
    log.info("refit config -> %s (%d exports%s)", out, len(exports),
             f"; not exported: {', '.join(missing)}" if missing else "")
    return result


def main(argv=None) -> int:
    from posebank.entry import load_checked, run_guarded, stage_args

    args = stage_args("export", "export", "an export of params.yaml's exports: / merge_exports:", argv)

    def go():
        params, _ = load_checked(args.params, require_family=False)
        run_export_entry(args.export, params)
        return 0

    return run_guarded(go)


def refit_config_main(argv=None) -> int:
    from posebank.entry import whole_params_main

    return whole_params_main("refit_config", "ReFit's mixes over the exports", run_refit_config, argv)
