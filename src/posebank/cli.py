"""The ``posebank`` command: what people (and later the DAGs) call; each command is a thin wrapper of the library.

Every user or data error ends as one line, ``error: <file or key>: <problem>``, and exit status 2 (see
:mod:`posebank.entry`); ``-v`` shows debug logging, the dependencies' included.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from posebank import __version__
from posebank.core.errors import OutputError, UsageError
from posebank.entry import SHARD_HELP, load_checked, run_guarded, setup_logging
from posebank.pipeline import SHARDED_STAGES, STAGES

log = logging.getLogger("posebank")


def _human_size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def format_summary(s: dict) -> str:
    splits = ", ".join(f"{k} {v}" for k, v in s["examples_per_split"].items())
    lines = [
        f"dataset      {s['dataset']}",
        (f"cache        {s['file']} ({_human_size(s['size_bytes'])}; {s['shards']} shard"
         f"{'s' if s['shards'] != 1 else ''} + index.json)" if s.get("layout") == "folder"
         else f"file         {s['file']} ({_human_size(s['size_bytes'])})"),
        f"examples     {s['examples']} ({splits})",
        f"joints       {s['joints']}: {','.join(s['joint_names'])}",
        f"cameras      {s['cameras']} calibrated cameras ({s['camera_names']} camera names x subjects), "
        f"{s['subjects']} subjects, {s['sequences']} sequences",
        f"images       {s['images']} JPEG crops, {_human_size(s['image_bytes'])}; {s['masks']} person masks",
        f"quarantined  {s['quarantined']} entries ({s['quarantined_frames']} frames or instances)",
        f"built by     posebank {s['posebank_version']}, params digest {s['params_digest']}",
    ]
    return "\n".join(lines)


def _params(args):
    """The checked params: ``--params FILE`` (which must exist), else ./params.yaml when there is one, else the
    defaults."""
    from posebank.core.settings import check_params

    if args.params is None and not Path("params.yaml").is_file():
        return check_params({}, source="defaults")
    return load_checked(args.params or "params.yaml", require_family=False)[0]


def _cache_path(args, params) -> Path:
    return Path(args.cache) if args.cache else Path(params.pipeline.cache) / args.name


def cmd_datasets(args) -> int:
    from posebank import datasets

    params = _params(args)
    entries, cache_dir = params.datasets, Path(params.pipeline.cache)
    print(f"{'name':<11} {'status':<12} {'joints':>6}  {'raw tree':<40} {'cache'}")
    for r in datasets.status():
        raw = entries.get(r["name"], {}).get("raw")
        raw_state = "-" if raw is None else f"{raw} ({'present' if Path(raw).is_dir() else 'missing'})"
        cache = cache_dir / r["name"]
        index = cache / "index.json"
        cache_state = (f"{cache} ({_human_size(sum(p.stat().st_size for p in cache.iterdir() if p.is_file()))})"
                       if index.is_file() else "-")
        joints = r["joints"] if r["joints"] is not None else "-"
        print(f"{r['name']:<11} {r['status']:<12} {joints:>6}  {raw_state:<40} {cache_state}")
    return 0


def cmd_params(args) -> int:
    """Check a params file whole: every section, and every dataset entry against its module."""
    from posebank import datasets
    from posebank.core.errors import PosebankError
    params, _ = load_checked(args.params)
    for name, entry in params.datasets.items():
        try:
            datasets.get(name).check_params(entry)
        except PosebankError as e:
            raise type(e)(f"{args.params}: {e.where}", e.problem) from None
    print(f"{args.params}: {len(params.datasets)} datasets and every section are valid")
    return 0


def cmd_convert(args) -> int:
    from posebank import datasets
    from posebank.core.settings import load_params
    from posebank.pipeline.run import check_output, convert

    datasets.get(args.name)  # a registered name, else the error naming the registered ones
    raw_params = load_params(args.params, required=args.params_given)
    params, _ = load_checked(args.params, None, require_family=False) if raw_params else (None, None)
    entry = params.datasets.get(args.name, {}) if params else {}
    raw = args.raw or entry.get("raw")
    if raw is None:
        raise UsageError(f"dataset {args.name}", f"no raw folder: pass --raw or set datasets.{args.name}.raw "
                         f"in {args.params}")
    check_output(args.out, args.name)  # before any work
    counts = convert(args.name, raw, args.out, {k: v for k, v in entry.items() if k != "raw"},
                     progress=not args.quiet, params={k: v for k, v in raw_params.items() if k != "datasets"})
    log.info("%s: wrote %s (%s)", args.name, args.out, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def cmd_stage(args) -> int:
    import importlib

    from posebank.pipeline.plan import stage_part

    shard = getattr(args, "shard", None)
    stage_part(args.stage, shard)  # a usage error before the stage starts
    module = importlib.import_module(f"posebank.pipeline.{args.stage}")
    argv = [args.name, "--params", args.params] + (["-q"] if args.quiet else []) + (["-v"] if args.verbose else [])
    return module.main(argv + (["--shard", shard] if shard is not None else []))


def format_merge_summary(s: dict) -> str:
    splits = ", ".join(f"{k} {v}" for k, v in s["examples_per_split"].items())
    lines = [
        f"merge        {s['dataset']}{'  (PARTIAL: sources missing)' if s['partial'] else ''}",
        f"file         {s['file']} ({_human_size(s['size_bytes'])}; images stay in the source caches)",
        f"examples     {s['examples']} ({splits})",
        f"joints       {s['joints']} in the union skeleton, {s['edges']} edges",
        f"skeletons    {', '.join(f'{k} ({v})' for k, v in s['skeletons'].items()) or 'none'}",
        f"filter       {s['filter']}: {s['dropped']} training examples dropped",
        f"sources      {len(s['sources'])} present, {len(s['missing'])} missing",
    ]
    for src in s["sources"]:
        per = ", ".join(f"{k} {v}" for k, v in src["examples_per_split"].items() if v) or "none"
        dropped = "; ".join(f"{n} {reason}" for reason, n in src["dropped"].items())
        lines.append(f"  {src['dataset']:<15} {src['joints']:>3} joints  {per}"
                     + (f"  (dropped: {dropped})" if dropped else "") + f"  <- {src['cache']}")
    for m in s["missing"]:
        lines.append(f"  {m['dataset']:<15} MISSING: {m['reason']}")
    lines.append(f"built by     posebank {s['posebank_version']}, params digest {s['params_digest']}")
    return "\n".join(lines)


def cmd_merge(args) -> int:
    from posebank.pipeline.merge import run_merge

    params = _params(args)
    params.merge(args.name)  # a known merge, else the error naming them
    r = run_merge(args.name, params, cache_dir=args.cache_dir, out=args.out,
                  allow_missing=True if args.allow_missing else None)
    log.debug("merge %s: %s", args.name, r)
    return 0


def cmd_export(args) -> int:
    from posebank.core.settings import EXPORT_FORMATS, ExportParams, section
    from posebank.pipeline.export import export, resolve_source, run_refit_config

    params = _params(args)
    if args.format == "refit-config":
        if args.name is not None:
            raise UsageError("export refit-config", f"takes no NAME (got {args.name!r}): it writes ReFit's mixes "
                             "over the spin exports of params.yaml's exports:")
        r = run_refit_config(params, out=args.out)
        missing = sorted({d for mix in r["configs"].values() for d in mix["missing"]})
        print(f"refit config: {args.out or Path(params.pipeline.exports) / 'refit'}: {', '.join(r['configs'])}, "
              f"{r['data_config']}" + (f"; not exported: {', '.join(missing)}" if missing else ""))
        return 0
    if args.format not in EXPORT_FORMATS:
        raise UsageError(f"export format {args.format!r}", f"not a format; formats: {', '.join(EXPORT_FORMATS)}, "
                         "refit-config")
    if args.name is None:
        raise UsageError(f"export {args.format}", "needs NAME: a dataset's or subset's cache, a merge, or a path")
    entry = section(ExportParams, {"format": args.format, "source": args.name, "split": args.split or "",
                                   "file": args.file or "", "cropped": args.cropped, "crop_px": args.crop_px},
                    "export")
    source = resolve_source(params, args.name, args.cache_dir)
    out = Path(args.out) if args.out else Path(params.pipeline.exports) / f"{Path(args.name).stem}-{args.format}"
    m = export(entry, source, out, cache_dir=args.cache_dir)
    print(format_export(m, out))
    return 0


def format_export(m: dict, folder) -> str:
    from posebank.pipeline.export import exported_files

    src, s = m["source"], m["summary"]
    options = ", ".join(f"{k}={v}" for k, v in m["options"].items() if v not in (None, False)) or "-"
    lines = [f"export       {m['export']} of {src['kind']} {src['name']} -> {folder}",
             f"examples     {s.get('examples', src['examples'])} exported (source: {src['examples']}; "
             f"{', '.join(f'{k} {v}' for k, v in src['examples_per_split'].items())})",
             f"files        {', '.join(exported_files(s)) or '-'}",
             f"options      {options}",
             f"from         {', '.join(f'{k} {v[:12]}' for k, v in src['digests'].items())}",
             f"built by     posebank {m['posebank_version']}"]
    for k, v in s.items():
        if k not in ("examples", "files", "file") and isinstance(v, (int, float, str)):
            lines.append(f"  {k}: {v}")
    return "\n".join(lines)


def cmd_info(args) -> int:
    from posebank.exporting.common import is_export, read_manifest
    from posebank.merging.reader import Merge, open_any

    if is_export(args.file):
        m = read_manifest(args.file)
        print(json.dumps(m, indent=2) if args.json else format_export(m, args.file))
        return 0
    with open_any(args.file) as cache:
        if isinstance(cache, Merge):
            s = cache.summary()
            print(json.dumps({**s, "quarantine": cache.quarantine}, indent=2) if args.json
                  else format_merge_summary(s))
            return 0
        s = cache.summary()
        if args.json:
            print(json.dumps({**s, "quarantine": cache.quarantine}, indent=2))
        else:
            print(format_summary(s))
            for q in cache.quarantine[:20]:
                n = f" ({q['count']} frames)" if q.get("count", 1) != 1 else ""
                print(f"  quarantined {q['path']}: {q['reason']}{n}")
    return 0


def cmd_validate(args) -> int:
    from posebank.validation.contact_sheet import render_contact_sheet
    from posebank.validation.validate import validate

    params = _params(args)
    cache = _cache_path(args, params)
    if not args.cache and args.name in params.merges:  # a merge: its merged file
        cache = Path(params.pipeline.merged) / f"{args.name}.h5"
    reports = Path(params.pipeline.reports)
    report = Path(args.report) if args.report else reports / "validation" / f"{args.name}.json"
    if not cache.exists():
        raise UsageError(cache, "no such cache (pass --cache, or build it: dvc repro crop@NAME)")
    s = validate(cache, args.name, params.validate, report,
                 data_docs_dir=None if args.no_docs else (args.data_docs or reports / "data_docs"),
                 gx_root=args.gx_root or params.pipeline.expectations)
    print(f"{args.name}: {s['expectations_passed']}/{s['expectations']} expectations passed on "
          f"{s['examples']} examples; report {report}")
    if args.contact:
        res = render_contact_sheet(cache, Path(args.contact) / f"{args.name}.png")
        print(f"{args.name}: contact sheet {res['path']}")
    return 0


def cmd_show(args) -> int:
    from posebank.validation.contact_sheet import render_contact_sheet

    if args.out is not None and not args.out.strip():
        raise UsageError("--out ''", "a PNG file name is needed")
    params = _params(args)
    cache = _cache_path(args, params)
    out = args.out or Path(params.pipeline.reports) / "contact" / f"{args.name}.png"
    if not cache.exists():
        raise UsageError(cache, "no such cache (pass --cache)")
    if args.per_split < 1 or args.tile < 32:
        raise UsageError("--per-split/--tile", "need --per-split >= 1 and --tile >= 32")
    res = render_contact_sheet(cache, out, per_split=args.per_split, seed=args.seed, tile=args.tile)
    shown = ", ".join(f"{k} {len(v)}" for k, v in res["splits"].items()) or "none"
    print(f"{args.name}: wrote {res['path']} ({res['n_tiles']} tiles: {shown})")
    return 0


def cmd_fixture(args) -> int:
    from posebank import datasets

    module = datasets.get(args.name)
    if not args.dir.strip():
        raise UsageError(repr(args.dir), "a folder to write the fixture into is needed")
    target = Path(args.dir)
    if target.exists() and not target.is_dir():
        raise OutputError(target, "exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not args.force:
        raise OutputError(target, "folder is not empty; a fixture is written only into an empty or new folder "
                          "(pass --force to write into it anyway)")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(target, f"cannot create the folder ({e.strerror or e})") from None
    root = module.make_fixture(target, seed=args.seed)
    print(f"{args.name}: fixture written to {root}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="posebank", description=__doc__.split("\n")[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging, the dependencies' included")
    p.add_argument("--version", action="version", version=f"posebank {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("datasets", help="list registered datasets with their status")
    s.add_argument("--params", help="params file (default: ./params.yaml when present)")
    s.set_defaults(func=cmd_datasets)

    s = sub.add_parser("params", help="check a params file whole (every section, every dataset entry)")
    s.add_argument("--params", default="params.yaml")
    s.set_defaults(func=cmd_params)

    s = sub.add_parser("fetch", help="check a dataset's raw tree, or download it where the dataset has direct "
                       "downloads with published checksums (docs/fetching.md)")
    s.add_argument("name")
    s.add_argument("--params", default="params.yaml")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_stage, stage="fetch")

    s = sub.add_parser("convert", help="convert a raw dataset tree into a cache folder (all stages, without DVC)")
    s.add_argument("name")
    s.add_argument("--raw", help="raw dataset folder (default: datasets.NAME.raw in params)")
    s.add_argument("--out", required=True, help="cache folder to write (shards + index.json)")
    s.add_argument("--params", help="params file (default: params.yaml when present)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_convert)

    s = sub.add_parser("stage", help="run one pipeline stage for one dataset (as stages/STAGE.py does)")
    s.add_argument("stage", choices=STAGES)
    s.add_argument("name")
    s.add_argument("--params", default="params.yaml")
    s.add_argument("--shard", metavar="I/N", help=f"{', '.join(SHARDED_STAGES)}: {SHARD_HELP}")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_stage)

    s = sub.add_parser("merge", help="build a merge of params.yaml's merges: (small5, medium3, huge8)")
    s.add_argument("name")
    s.add_argument("--params", help="params file (default: ./params.yaml when present)")
    s.add_argument("--cache-dir", help="folder holding the source caches (default: pipeline.cache)")
    s.add_argument("--out", help="merged file to write (default: pipeline.merged/NAME.h5)")
    s.add_argument("--allow-missing", action="store_true",
                   help="build from the sources that are built; the merge records the missing ones")
    s.set_defaults(func=cmd_merge)

    s = sub.add_parser("export", help="write a cache or merge for a consumer's training code (spin, humandata, "
                       "barecat), or ReFit's mixes (refit-config)")
    s.add_argument("format", help="spin (SPIN / ReFit npz), humandata (mmhuman3d), barecat (posepile / NLF), or "
                   "refit-config")
    s.add_argument("name", nargs="?", help="a dataset's or subset's cache (under --cache-dir), a merge of params.yaml, "
                   "or a path to a cache folder or merged file")
    s.add_argument("--split", choices=("train", "val", "test"), help="only this split (default: every split)")
    s.add_argument("--file", help="output file name (default: the format's for the source)")
    s.add_argument("--cropped", action="store_true", help="spin: ReFit's pre-cropped layout (square crops, "
                   "orig_shape)")
    s.add_argument("--crop-px", type=int, default=256, help="spin --cropped: crop side (default 256)")
    s.add_argument("--out", help="export folder (default: pipeline.exports/NAME-FORMAT; refit-config: "
                   "pipeline.exports/refit)")
    s.add_argument("--cache-dir", help="folder holding the caches (default: pipeline.cache)")
    s.add_argument("--params", help="params file (default: ./params.yaml when present)")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("info", help="summarise a cache (folder or file), a merged file or an export folder")
    s.add_argument("file", help="cache folder (pipeline.cache/NAME), single cache file, merged file or export folder")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("validate", help="check a cache with the Great Expectations suites")
    s.add_argument("name")
    s.add_argument("--cache", help="cache folder or file (default: pipeline.cache/NAME)")
    s.add_argument("--params", help="params file (default: ./params.yaml when present)")
    s.add_argument("--report", help="JSON report (default: pipeline.reports/validation/NAME.json)")
    s.add_argument("--data-docs", help="Data Docs folder (default: pipeline.reports/data_docs)")
    s.add_argument("--no-docs", action="store_true")
    s.add_argument("--gx-root", help="GX project folder (default: pipeline.expectations)")
    s.add_argument("--contact", help="also draw the contact sheet into this folder (e.g. reports/contact)")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("show", help="draw a contact sheet of a cache: random crops per split with skeleton, box, mask")
    s.add_argument("name")
    s.add_argument("--cache", help="cache folder or file (default: pipeline.cache/NAME)")
    s.add_argument("--params", help="params file (default: ./params.yaml when present)")
    s.add_argument("--out", help="PNG to write (default: pipeline.reports/contact/NAME.png)")
    s.add_argument("--per-split", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--tile", type=int, default=192)
    s.set_defaults(func=cmd_show)

    s = sub.add_parser("fixture", help="write a miniature raw tree of a dataset in its real layout")
    s.add_argument("name")
    s.add_argument("dir")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    s.set_defaults(func=cmd_fixture)

    from posebank.registry.commands import add_commands

    add_commands(sub)  # pull, release, versions, import
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "convert":
        args.params_given = args.params is not None
        args.params = args.params or "params.yaml"
    setup_logging(args.verbose)
    return run_guarded(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
