"""The ``posebank`` command: what dvc.yaml stages, Airflow DAGs and people call."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import yaml

log = logging.getLogger("posebank")


def load_params(path) -> dict:
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path) as f:
        return yaml.safe_load(f) or {}


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
        f"file         {s['file']} ({_human_size(s['size_bytes'])})",
        f"examples     {s['examples']} ({splits})",
        f"joints       {s['joints']}: {','.join(s['joint_names'])}",
        f"cameras      {s['cameras']} calibrated cameras ({s['camera_names']} camera names x subjects), "
        f"{s['subjects']} subjects, {s['sequences']} sequences",
        f"images       {s['images']} JPEG crops, {_human_size(s['image_bytes'])}; {s['masks']} person masks",
        f"quarantined  {s['quarantined']}",
        f"built by     posebank {s['posebank_version']}, params digest {s['params_digest']}",
    ]
    return "\n".join(lines)


def cmd_datasets(args) -> int:
    from posebank import datasets

    params = load_params(args.params).get("datasets", {})
    rows = datasets.status()
    print(f"{'name':<11} {'status':<12} {'joints':>6}  {'raw tree':<40} {'cache'}")
    for r in rows:
        p = params.get(r["name"], {})
        raw = p.get("raw")
        raw_state = "-" if raw is None else f"{raw} ({'present' if Path(raw).is_dir() else 'missing'})"
        cache = Path(args.cache_dir) / f"{r['name']}.h5"
        cache_state = f"{cache} ({_human_size(cache.stat().st_size)})" if cache.is_file() else "-"
        joints = r["joints"] if r["joints"] is not None else "-"
        print(f"{r['name']:<11} {r['status']:<12} {joints:>6}  {raw_state:<40} {cache_state}")
    return 0


def cmd_convert(args) -> int:
    from posebank.convert import convert

    params = load_params(args.params)
    ds_params = dict(params.get("datasets", {}).get(args.name, {}))
    raw = args.raw or ds_params.get("raw")
    if raw is None:
        raise SystemExit(f"error: no raw folder for {args.name}: pass --raw or set datasets.{args.name}.raw "
                         f"in {args.params}")
    counts = convert(args.name, raw, args.out, ds_params, params.get("crop"), progress=not args.quiet,
                     detect_params=params.get("detect"), segment_params=params.get("segment"),
                     frames_params=params.get("frames"),
                     shard_frames=params.get("pipeline", {}).get("shard_frames", 256))
    log.info("%s: wrote %s (%s)", args.name, args.out, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def cmd_stage(args) -> int:
    from posebank.pipeline import run_stage

    params = load_params(args.params)
    if args.name not in params.get("datasets", {}):
        raise ValueError(f"dataset {args.name!r} has no entry under datasets: in {args.params}")
    result = run_stage(args.stage, args.name, params, progress=not args.quiet)
    if isinstance(result, dict):
        log.info("%s %s: %s", args.stage, args.name, ", ".join(f"{k} {v}" for k, v in sorted(result.items())))
    return 0


def cmd_info(args) -> int:
    from posebank.store import Cache

    with Cache(args.file) as cache:
        s = cache.summary()
        if args.json:
            print(json.dumps({**s, "quarantine": cache.quarantine}, indent=2))
        else:
            print(format_summary(s))
            for q in cache.quarantine[:20]:
                print(f"  quarantined {q['path']}: {q['reason']}")
    return 0


def cmd_validate(args) -> int:
    from posebank.validate import ValidationFailed, validate

    params = load_params(args.params)
    cache = args.cache or Path(params.get("pipeline", {}).get("cache", "data/cache")) / f"{args.name}.h5"
    report = args.report or Path("reports/validation") / f"{args.name}.json"
    try:
        s = validate(cache, args.name, params.get("validate", {}), report,
                     data_docs_dir=None if args.no_docs else args.data_docs, gx_root=args.gx_root)
    except ValidationFailed as e:
        print(f"validation failed: {e}", file=sys.stderr)
        return 1
    print(f"{args.name}: {s['expectations_passed']}/{s['expectations']} expectations passed on "
          f"{s['examples']} examples; report {report}")
    if args.contact:
        from posebank.contact import render_contact_sheet

        res = render_contact_sheet(cache, Path(args.contact) / f"{args.name}.png")
        print(f"{args.name}: contact sheet {res['path']}")
    return 0


def cmd_show(args) -> int:
    from posebank.contact import render_contact_sheet

    cache = args.cache or Path(args.cache_dir) / f"{args.name}.h5"
    out = args.out or Path("reports/contact") / f"{args.name}.png"
    if not Path(cache).is_file():
        raise FileNotFoundError(f"no cache file {cache} (pass --cache)")
    res = render_contact_sheet(cache, out, per_split=args.per_split, seed=args.seed, tile=args.tile)
    shown = ", ".join(f"{k} {len(v)}" for k, v in res["splits"].items()) or "none"
    print(f"{args.name}: wrote {res['path']} ({res['n_tiles']} tiles: {shown})")
    return 0


def cmd_fixture(args) -> int:
    from posebank import datasets

    module = datasets.get(args.name)
    root = module.make_fixture(Path(args.dir), seed=args.seed)
    print(f"{args.name}: fixture written to {root}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="posebank", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("datasets", help="list registered datasets with their status")
    s.add_argument("--params", default="params.yaml")
    s.add_argument("--cache-dir", default="data/cache")
    s.set_defaults(func=cmd_datasets)

    s = sub.add_parser("convert", help="convert a raw dataset tree into a cache file")
    s.add_argument("name")
    s.add_argument("--raw", help="raw dataset folder (default: datasets.NAME.raw in params)")
    s.add_argument("--out", required=True, help="cache file to write (.h5)")
    s.add_argument("--params", default="params.yaml", help="params file (dataset and crop settings)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_convert)

    s = sub.add_parser("stage", help="run one pipeline stage for one dataset (what dvc.yaml calls)")
    s.add_argument("stage", choices=["convert", "frames", "detect", "segment", "crop"])
    s.add_argument("name")
    s.add_argument("--params", default="params.yaml")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_stage)

    s = sub.add_parser("info", help="summarise a cache file")
    s.add_argument("file")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("validate", help="check a cache with the Great Expectations suites in expectations/")
    s.add_argument("name")
    s.add_argument("--cache", help="cache file (default: pipeline.cache/NAME.h5)")
    s.add_argument("--params", default="params.yaml")
    s.add_argument("--report", help="JSON report (default: reports/validation/NAME.json)")
    s.add_argument("--data-docs", default="reports/data_docs")
    s.add_argument("--no-docs", action="store_true")
    s.add_argument("--gx-root", default="expectations")
    s.add_argument("--contact", help="also draw the contact sheet into this folder (e.g. reports/contact)")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("show", help="draw a contact sheet of a cache: random crops per split with skeleton, box, mask")
    s.add_argument("name")
    s.add_argument("--cache", help="cache file (default: CACHE_DIR/NAME.h5)")
    s.add_argument("--cache-dir", default="data/cache")
    s.add_argument("--out", help="PNG to write (default: reports/contact/NAME.png)")
    s.add_argument("--per-split", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--tile", type=int, default=192)
    s.set_defaults(func=cmd_show)

    s = sub.add_parser("fixture", help="write a miniature raw tree of a dataset in its real layout")
    s.add_argument("name")
    s.add_argument("dir")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_fixture)
    return p


def main(argv=None) -> int:
    from posebank.datasets.base import DatasetError
    from posebank.store import CacheFormatError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (DatasetError, CacheFormatError, KeyError, ValueError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
