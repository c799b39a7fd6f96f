"""Data validation of a cache file with Great Expectations (GX Core 1.x): the entry point.

:func:`validate` derives the checked columns from the cache in blocks of ``chunk_rows`` rows (never the whole
file at once; :mod:`posebank.validation.columns`), runs the committed suites' checkpoints on each block
(:mod:`posebank.validation.suites`), combines the per-block results into one JSON report, written atomically, and
optionally GX Data Docs (:mod:`posebank.validation.report`). :class:`ValidationFailed` is raised when any
expectation fails.

GX and the libraries it brings log hundreds of INFO lines per run; they are kept at WARNING while validation runs
unless the ``posebank`` logger is enabled for DEBUG (``posebank -v``), see :func:`quiet_great_expectations`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping

from posebank.core.atomic import prepare_output
from posebank.core.errors import PosebankError
from posebank.core.settings import ValidateParams
from posebank.validation.columns import dataset_frame, example_frame, image_frame, root_joint_index
from posebank.validation.report import Collector, build_docs, failure_message, summarize, write_report
from posebank.validation.suites import SUITES, init_project, suite_parameters

log = logging.getLogger(__name__)

# top-level loggers of great_expectations and of the libraries it imports that log at INFO or below
DEPENDENCY_LOGGERS = ("great_expectations", "tzlocal", "urllib3", "requests", "charset_normalizer", "botocore",
                      "boto3", "s3transfer", "sqlalchemy", "marshmallow", "posthog", "altair")


class ValidationFailed(PosebankError):
    """At least one expectation failed; ``summary`` holds the combined report (already written)."""

    exit_code = 1

    def __init__(self, where, problem: str, summary: dict):
        super().__init__(where, problem)
        self.summary = summary


@contextlib.contextmanager
def quiet_great_expectations(level: int = logging.WARNING) -> Iterator[None]:
    """Keep the loggers of GX and its dependencies (:data:`DEPENDENCY_LOGGERS`) at ``level`` within the block.

    Nothing changes when the ``posebank`` logger is enabled for DEBUG. great_expectations is imported on entry,
    so the INFO lines of its import are quieted too and so is the logger it sets to INFO while importing;
    levels set by anyone else to ``level`` or above are left alone. The previous levels come back on exit.
    """
    if logging.getLogger("posebank").isEnabledFor(logging.DEBUG):
        yield
        return
    saved: dict[logging.Logger, int] = {}

    def quiet() -> None:
        for name in DEPENDENCY_LOGGERS:
            logging.getLogger(name)  # the top-level loggers exist, so their descendants inherit from them
        for name, lg in list(logging.Logger.manager.loggerDict.items()):
            top = name.split(".", 1)[0]
            if (isinstance(lg, logging.Logger) and top in DEPENDENCY_LOGGERS and lg not in saved
                    and (name == top or lg.level != logging.NOTSET) and lg.level < level):
                saved[lg] = lg.level
                lg.setLevel(level)

    try:
        quiet()
        import great_expectations  # noqa: F401 - imported here for the sake of its import-time log lines

        quiet()
        yield
    finally:
        for lg, previous in saved.items():
            lg.setLevel(previous)


def _params(params) -> ValidateParams:
    if isinstance(params, ValidateParams):
        return params
    if params is None or isinstance(params, Mapping):
        return ValidateParams.from_dict(params)
    raise TypeError(f"params must be ValidateParams or a mapping of the validate section, got {type(params)}")


def validate(cache_path, name: str, params: ValidateParams | Mapping | None, report_path, data_docs_dir=None,
             gx_root="expectations") -> dict:
    """Validate the cache (or merged file) ``cache_path`` of dataset (or merge) ``name``; write the JSON report;
    return the summary.

    ``params`` is the ``validate:`` section of params.yaml, as :class:`ValidateParams` or as a mapping (None: the
    defaults). Raises :class:`ValidationFailed` (after writing the report) when any expectation fails.
    """
    from posebank.merging.reader import Merge, open_any

    p = _params(params)
    prepare_output(report_path)  # an unwritable report is found before the work
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    t0 = time.perf_counter()
    chunk_rows = p.chunk_rows
    collector = Collector()
    run_name = f"{name}-{time.strftime('%Y%m%dT%H%M%S')}"

    with quiet_great_expectations(), open_any(cache_path) as cache:
        from great_expectations.core.run_identifier import RunIdentifier

        ctx = init_project(gx_root)
        checkpoints = {s: ctx.checkpoints.get(s) for s in SUITES}
        n = len(cache)
        ds = dataset_frame(cache, name, p.expected_counts.get(name))
        expectation_parameters = suite_parameters(p, ds.n_registered)

        def run(suite, df, part, parameters=expectation_parameters):
            return checkpoints[suite].run(batch_parameters={"dataframe": df}, expectation_parameters=parameters,
                                          run_id=RunIdentifier(run_name=f"{run_name}-{part}"))

        collector.add("posebank_dataset", run("posebank_dataset", ds.frame, "dataset"), ds.notes)
        # a merge is checked run by run, each with its source's own joints (never N x J_union)
        parts = cache.parts() if isinstance(cache, Merge) else [(0, cache)]
        n_chunks = 0
        for offset, part in parts:
            root = root_joint_index(part.joint_info.names)
            # a merge's run holds its source's joints (the joint map says which union joints they are)
            part_parameters = (expectation_parameters if part is cache else
                               {**expectation_parameters, "n_joints_expected": part.joint_info.n_joints})
            for start in range(0, len(part), chunk_rows):
                stop = min(start + chunk_rows, len(part))
                df = example_frame(part, start, stop, root)
                df["example_id"] += offset
                a, b = offset + start, offset + stop
                collector.add("posebank_examples", run("posebank_examples", df, f"rows{a}-{b}", part_parameters))
                del df
                n_chunks += 1
                log.info("%s: validated rows %d-%d of %d", name, a, b, n)
        img_df = image_frame(cache, p.image_sample_size, p.seed)
        collector.add("posebank_images", run("posebank_images", img_df, "images"))

        summary = summarize(collector, dataset=name, cache=cache_path, examples=n, chunks=n_chunks,
                            chunk_rows=chunk_rows, images_sampled=len(img_df), parameters=expectation_parameters)
        if data_docs_dir is not None:
            summary["data_docs"] = build_docs(ctx, data_docs_dir)
    write_report(report_path, summary)
    summary = {**summary, "seconds": round(time.perf_counter() - t0, 3)}  # the caller's: not in the report
    if not summary["success"]:
        raise ValidationFailed(name, failure_message(summary), summary)
    return summary
