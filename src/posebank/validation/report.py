"""Combining the checkpoint results of all blocks into one report, and GX Data Docs.

:class:`Collector` adds up the results of every run of a suite (one per block of examples) per expectation;
:func:`summarize` turns them into the JSON report (written atomically by :func:`write_report`);
:func:`failure_message` is the one line that names each failing expectation, its column and example ids.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from posebank.core.atomic import write_json
from posebank.validation.suites import INDEX_COLUMN, MAX_IDS

DOCS_SITE = "posebank_reports"

_FAILING_KEYS = ("suite", "expectation_type", "column", "unexpected_count", "element_count", "failing_example_ids",
                 "exceptions", "detail")
_RESULT_KEYS = ("suite", "expectation_type", "column", "success", "element_count", "unexpected_count",
                "missing_count")


class Collector:
    """Results per expectation, summed over the runs of its suite."""

    def __init__(self):
        self.results: dict[tuple, dict] = {}

    def add(self, suite: str, checkpoint_result, notes: dict[str, str] | None = None) -> None:
        """Add one checkpoint run of ``suite``; ``notes`` (column -> explanation) are kept for failing columns."""
        for vr in checkpoint_result.run_results.values():
            for er in vr.results:
                cfg = er.expectation_config
                kw = cfg.kwargs
                column = kw.get("column") or ",".join(str(kw[c]) for c in ("column_A", "column_B") if c in kw)
                key = (suite, cfg.type, column, json.dumps({k: v for k, v in kw.items() if k not in
                                                            ("column", "column_A", "column_B", "batch_id")},
                                                           sort_keys=True, default=str))
                r = er.result or {}
                agg = self.results.setdefault(key, {
                    "suite": suite, "expectation_type": cfg.type, "column": column,
                    "kwargs": {k: v for k, v in kw.items() if k != "batch_id"},
                    "success": True, "element_count": 0, "unexpected_count": 0, "missing_count": 0,
                    "failing_example_ids": [], "exceptions": [], "detail": None})
                agg["success"] = agg["success"] and bool(er.success)
                agg["element_count"] += int(r.get("element_count") or 0)
                agg["unexpected_count"] += int(r.get("unexpected_count") or 0)
                agg["missing_count"] += int(r.get("missing_count") or 0)
                info = er.exception_info or {}
                if info.get("raised_exception"):
                    agg["exceptions"].append(str(info.get("exception_message"))[:500])
                if not er.success and notes and column in notes:
                    agg["detail"] = notes[column]
                for row in r.get("partial_unexpected_index_list") or []:
                    if len(agg["failing_example_ids"]) >= MAX_IDS:
                        break
                    if isinstance(row, dict) and INDEX_COLUMN in row:
                        agg["failing_example_ids"].append(int(float(row[INDEX_COLUMN])))

    def failed(self) -> list[dict]:
        return [r for r in self.results.values() if not r["success"]]


def summarize(collector: Collector, *, dataset: str, cache, examples: int, chunks: int, chunk_rows: int,
              images_sampled: int, parameters: dict) -> dict:
    """The report (``data_docs`` is filled in by the caller at the end). It holds nothing of the run itself (no
    time, no host): it is a DVC metric, and the same cache gives the same report, byte for byte."""
    results = list(collector.results.values())
    failed = collector.failed()
    return {
        "dataset": dataset,
        "cache": str(cache),
        "success": not failed,
        "examples": examples,
        "chunks": chunks,
        "chunk_rows": chunk_rows,
        "images_sampled": images_sampled,
        "expectations": len(results),
        "expectations_passed": len(results) - len(failed),
        "expectations_failed": len(failed),
        "pass_rate": (len(results) - len(failed)) / len(results) if results else 1.0,
        "parameters": parameters,
        "failing": [{k: r[k] for k in _FAILING_KEYS} for r in failed],
        "results": [{k: r[k] for k in _RESULT_KEYS} for r in results],
        "data_docs": None,
    }


def failure_message(summary: dict) -> str:
    """What failed: every failing expectation with its column, suite, count, example ids, detail and error."""
    parts = [f"{r['expectation_type']} on {r['column']!r} ({r['suite']}): {r['unexpected_count']} failing, "
             f"example ids {r['failing_example_ids']}"
             + (f" ({r['detail']})" if r.get("detail") else "")
             + (f", error {r['exceptions'][0]}" if r["exceptions"] else "") for r in summary["failing"]]
    return (f"{summary['expectations_failed']} of {summary['expectations']} expectations failed: "
            + "; ".join(parts))


def write_report(path, summary: dict) -> Path:
    return write_json(path, summary)


def build_docs(ctx, data_docs_dir) -> str | None:
    """Build GX Data Docs of the stored validation results into ``data_docs_dir``; returns the index page."""
    site = {"class_name": "SiteBuilder", "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(Path(data_docs_dir).resolve()) + os.sep},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}
    # in memory only: the committed great_expectations.yml keeps no machine-specific path
    ctx.config.data_docs_sites = {**(ctx.config.data_docs_sites or {}), DOCS_SITE: site}
    urls = ctx.build_data_docs(site_names=[DOCS_SITE])
    index = Path(data_docs_dir) / "index.html"
    return str(index) if index.is_file() else urls.get(DOCS_SITE)
