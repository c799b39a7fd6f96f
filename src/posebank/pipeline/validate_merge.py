"""validate_merge@<name>: the Great Expectations suites on a merged file (run by run, each with its source's own
joints) -> ``<reports>/validation/<name>.json`` and the contact sheet ``<reports>/contact/<name>.png``; a failed
expectation fails the stage after the report is written."""

from __future__ import annotations

import logging
from pathlib import Path

from posebank.core.errors import StageError
from posebank.core.settings import Params
from posebank.pipeline.merge import merged_path, stage_main

log = logging.getLogger(__name__)


def run_validate(name: str, params: Params, merged=None, report=None, contact=None, data_docs: bool = True
                 ) -> dict:
    from posebank.validation.contact_sheet import render_contact_sheet
    from posebank.validation.validate import validate

    merged = Path(merged) if merged is not None else merged_path(params, name)
    if not merged.is_file():
        raise StageError(merged, f"missing: build the merge first (dvc repro merge@{name} or posebank merge {name})")
    reports = Path(params.pipeline.reports)
    report = Path(report) if report is not None else reports / "validation" / f"{name}.json"
    s = validate(merged, name, params.validate, report, data_docs_dir=reports / "data_docs" if data_docs else None,
                 gx_root=Path(params.pipeline.expectations))
    log.info("%s: %d/%d expectations passed on %d examples; report %s", name, s["expectations_passed"],
             s["expectations"], s["examples"], report)
    sheet = render_contact_sheet(merged, Path(contact) if contact else reports / "contact" / f"{name}.png")
    log.info("%s: contact sheet %s", name, sheet["path"])
    return s


def main(argv=None) -> int:
    return stage_main("validate_merge", run_validate, argv)
