"""merge@<name>: a meta-dataset over the caches: the source caches (``<pipeline.cache>/<dataset>``) ->
``<pipeline.merged>/<name>.h5``, composed as ``merges.<name>`` of params.yaml (:mod:`posebank.merging.build`).
Its validation is :mod:`posebank.pipeline.validate_merge`; both stages' command lines are here."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from posebank import __version__
from posebank.core.settings import Params

log = logging.getLogger(__name__)


def merged_path(params: Params, name: str) -> Path:
    return Path(params.pipeline.merged) / f"{name}.h5"


def run_merge(name: str, params: Params, cache_dir=None, out=None, allow_missing: bool | None = None) -> dict:
    from posebank.merging.build import build_merge

    spec = params.merge(name)
    out = Path(out) if out is not None else merged_path(params, name)
    cache_dir = Path(cache_dir) if cache_dir is not None else Path(params.pipeline.cache)
    result = build_merge(name, spec, cache_dir, out, allow_missing=allow_missing)
    return {**result, "out": str(out)}


def stage_main(stage: str, run, argv=None) -> int:
    """``stages/<stage>.py MERGE [--params params.yaml] [-v]`` for the merge stages: ``run(name, params)``."""
    from posebank.entry import load_checked, run_guarded, setup_logging

    parser = argparse.ArgumentParser(prog=f"stages/{stage}.py", description=f"posebank's {stage} stage")
    parser.add_argument("merge", help="a merge of params.yaml's merges: (small5, medium3, huge8)")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("-q", "--quiet", action="store_true", help="(no progress bar is drawn)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, dependencies included")
    parser.add_argument("--version", action="version", version=f"posebank {__version__}")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)

    def go():
        params, _ = load_checked(args.params, require_family=False)
        params.merge(args.merge)  # a known merge, else the error naming them
        run(args.merge, params)
        return 0

    return run_guarded(go)


def main(argv=None) -> int:
    return stage_main("merge", run_merge, argv)
