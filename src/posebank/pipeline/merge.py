"""merge@<name>: a meta-dataset over the caches: the source caches (``<pipeline.cache>/<dataset>``) ->
``<pipeline.merged>/<name>.h5``, composed as ``merges.<name>`` of params.yaml (:mod:`posebank.merging.build`).
Its validation is :mod:`posebank.pipeline.validate_merge`; both stages' command lines are here."""

from __future__ import annotations

import logging
from pathlib import Path

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
    from posebank.entry import load_checked, run_guarded, stage_args

    args = stage_args(stage, "merge", "a merge of params.yaml's merges: (small5, medium3, huge8)", argv)

    def go():
        params, _ = load_checked(args.params, require_family=False)
        params.merge(args.merge)  # a known merge, else the error naming them
        run(args.merge, params)
        return 0

    return run_guarded(go)


def main(argv=None) -> int:
    return stage_main("merge", run_merge, argv)
