"""validate@<dataset>: the cache -> <reports>/validation/<dataset>.json (Great Expectations suites from
``pipeline.expectations``, thresholds from ``validate:``), Data Docs, the dataset's statistics
<reports>/stats/<dataset>.json and box-size histogram <reports>/stats/<dataset>_boxes.csv (a DVC metric and plot:
posebank.validation.stats) and the contact sheet. A failed expectation fails the stage (exit status 1) after the
report and the statistics are written."""

from __future__ import annotations

import logging
from pathlib import Path

from posebank.core.errors import StageError
from posebank.entry import StageContext, stage_main
from posebank.pipeline.layout import Layout

log = logging.getLogger(__name__)


def run(ctx: StageContext, layout: Layout | None = None) -> None:
    from posebank.validation.contact_sheet import render_contact_sheet
    from posebank.validation.stats import write_stats
    from posebank.validation.validate import ValidationFailed, validate

    layout = layout or Layout.from_params(ctx.dataset, ctx.params.pipeline)
    layout.check_outputs("validate")
    if not layout.index.is_file():
        raise StageError(layout.index, f"missing: run the crop stage first (dvc repro crop@{ctx.dataset})")
    failed = None
    try:
        s = validate(layout.cache, ctx.dataset, ctx.params.validate, layout.validation_report,
                     data_docs_dir=layout.data_docs, gx_root=Path(ctx.params.pipeline.expectations))
    except ValidationFailed as e:  # the statistics are written for a failed run too (they say what it holds)
        s, failed = e.summary, e
    log.info("%s: %d/%d expectations passed on %d examples; report %s", ctx.dataset, s["expectations_passed"],
             s["expectations"], s["examples"], layout.validation_report)
    stats = write_stats(layout.cache, layout.stats, layout.stats_plot, s, ctx.params.validate.chunk_rows)
    per_split = ", ".join(f"{k} {v}" for k, v in stats["examples_per_split"].items())
    log.info("%s: statistics %s (%s; box median %s px), box histogram %s", ctx.dataset, layout.stats, per_split,
             stats["box_px"]["median"], layout.stats_plot)
    if failed is not None:
        raise failed
    sheet = render_contact_sheet(layout.cache, layout.contact_sheet)
    log.info("%s: contact sheet %s", ctx.dataset, sheet["path"])


def main(argv=None) -> int:
    return stage_main("validate", run, argv)
