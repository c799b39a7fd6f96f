"""The one prologue of every stage entry script and of the ``posebank`` command: arguments, params.yaml checked
whole before any work, quiet logging, and one exit path for errors.

A :class:`~posebank.core.errors.PosebankError` (a user or data error) ends as one line on stderr,
``error: <file or key>: <problem>``, with its exit status (2; 1 for a failed validation); anything else is a
programming error and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from posebank import __version__
from posebank.core.errors import PosebankError
from posebank.core.settings import Params, check_params, load_params
from posebank.pipeline.plan import Part

log = logging.getLogger("posebank")


def setup_logging(verbose: bool = False) -> None:
    """posebank's own INFO lines; the dependencies' (great_expectations, dvc, ...) only from WARNING, or
    everything at DEBUG with ``-v``."""
    root = logging.getLogger()
    if not any(getattr(h, "_posebank", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._posebank = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("posebank").setLevel(logging.DEBUG if verbose else logging.INFO)


def run_guarded(func: Callable[[], int | None]) -> int:
    """Run ``func``; a PosebankError becomes ``error: ...`` and its exit status; a closed stdout (``| head``)
    ends quietly."""
    try:
        return int(func() or 0)
    except PosebankError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:
        # the reader went away (e.g. `posebank info ... | head`): stop writing, no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


@dataclasses.dataclass
class StageContext:
    """What a stage's ``run`` gets: the dataset, the checked params and the dataset's converter settings."""

    dataset: str
    params: Params
    progress: bool = True
    dataset_params: dict | None = None  # the dataset's entry checked by its module (over DEFAULT_PARAMS)
    shard: Part | None = None  # a sharded stage's ``--shard I/N``; None: every shard of the plan

    @property
    def entry(self) -> dict:
        return self.params.dataset_entry(self.dataset)

    @property
    def raw(self) -> Path | None:
        raw = self.entry.get("raw")
        return None if raw is None else Path(raw)


def load_checked(params_path, dataset: str | None = None, require_family: bool = True
                 ) -> tuple[Params, dict | None]:
    """params.yaml read and checked whole (every section; every dataset entry's name, ``raw`` and ``family``);
    with ``dataset`` also that dataset's own entry against its module (types, ranges, subjects, cameras).

    The other datasets' converter settings are checked by their own stages and by ``posebank params``: checking
    them here would make every stage run (and depend on) every dataset's code."""
    from posebank import datasets

    params = check_params(load_params(params_path), source=str(params_path),
                          families={name: datasets.family(name) for name in datasets.names()},
                          require_family=require_family)
    dataset_params = None
    if dataset is not None:
        if dataset not in datasets.names():
            datasets.get(dataset)  # raises the UsageError naming the registered datasets
        entry = params.dataset_entry(dataset)
        try:
            dataset_params = datasets.get(dataset).check_params(entry)
        except PosebankError as e:
            raise type(e)(f"{params_path}: {e.where}", e.problem) from None
    return params, dataset_params


SHARD_HELP = ("build only part I of N of the shard plan (0 <= I < N; the shards at positions I, I+N, ...), e.g. "
              "on one of N GPU workers; the run without --shard afterwards checks every shard and assembles")


def stage_args(stage: str, target: str, target_help: str | None, argv=None, sharded: bool = False
               ) -> argparse.Namespace:
    """The command line of ``stages/<stage>.py TARGET [--params params.yaml] [--shard I/N] [-q] [-v]`` (TARGET: a
    dataset, or a merge for the merge stages; ``--shard`` for the sharded stages only), parsed; logging set up."""
    parser = argparse.ArgumentParser(prog=f"stages/{stage}.py", description=f"posebank's {stage} stage")
    parser.add_argument(target, help=target_help)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    if sharded:
        parser.add_argument("--shard", metavar="I/N", help=SHARD_HELP)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, dependencies included")
    parser.add_argument("--version", action="version", version=f"posebank {__version__}")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    return args


def stage_main(stage: str, run: Callable[[StageContext], object], argv=None, sharded: bool = False) -> int:
    """``stages/<stage>.py DATASET [--params params.yaml] [--shard I/N] [-q] [-v]``: check params.yaml, run the
    stage (``--shard`` when ``sharded``)."""
    args = stage_args(stage, "dataset", None, argv, sharded)

    def go():
        part = None if getattr(args, "shard", None) is None else Part.parse(args.shard)
        params, dataset_params = load_checked(args.params, args.dataset)
        result = run(StageContext(args.dataset, params, not args.quiet, dataset_params, part))
        if isinstance(result, dict):
            log.info("%s %s: %s", stage, args.dataset, ", ".join(f"{k} {v}" for k, v in sorted(result.items())))
        return 0

    return run_guarded(go)


def whole_params_main(stage: str, description: str, run: Callable[[Params], object], argv=None) -> int:
    """``stages/<stage>.py [--params params.yaml] [-v]`` of a stage over the whole params file (no dataset or
    merge argument: merge_sources, refit_config): check it, run the stage."""
    parser = argparse.ArgumentParser(prog=f"stages/{stage}.py", description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, dependencies included")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)

    def go():
        params, _ = load_checked(args.params, require_family=False)
        run(params)
        return 0

    return run_guarded(go)
