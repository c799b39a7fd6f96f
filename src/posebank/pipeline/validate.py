"""validate@<dataset>: the cache -> <reports>/validation/<dataset>.json (Great Expectations suites from
``pipeline.expectations``, thresholds from ``validate:``), Data Docs and the contact sheet. A failed expectation
fails the stage (exit status 1) after the report is written."""

from __future__ import annotations

import logging
from pathlib import Path

from posebank.core.errors import StageError
from posebank.entry import StageContext, stage_main
from posebank.pipeline.layout import Layout

log = logging.getLogger(__name__)


def run(ctx: StageContext, layout: Layout | None = None) -> None:
    from posebank.validation.contact_sheet import render_contact_sheet
    from posebank.validation.validate import validate

    layout = layout or Layout.from_params(ctx.dataset, ctx.params.pipeline)
    layout.check_outputs("validate")
    if not layout.index.is_file():
        raise StageError(layout.index, f"missing: run the crop stage first (dvc repro crop@{ctx.dataset})")
    s = validate(layout.cache, ctx.dataset, ctx.params.validate, layout.validation_report,
                 data_docs_dir=layout.data_docs, gx_root=Path(ctx.params.pipeline.expectations))
    log.info("%s: %d/%d expectations passed on %d examples; report %s", ctx.dataset, s["expectations_passed"],
             s["expectations"], s["examples"], layout.validation_report)
    sheet = render_contact_sheet(layout.cache, layout.contact_sheet)
    log.info("%s: contact sheet %s", ctx.dataset, sheet["path"])


def main(argv=None) -> int:
    return stage_main("validate", run, argv)
