"""convert@<dataset>: the raw tree -> records.h5 (every selected person instance, the frames it needs, what
was dropped and why)."""

from __future__ import annotations

import logging
from collections import Counter

from posebank import datasets
from posebank.core.errors import UsageError
from posebank.core.settings import params_digest
from posebank.entry import StageContext, stage_main
from posebank.pipeline.checks import check_instances
from posebank.pipeline.layout import Layout
from posebank.pipeline.records import write_records

log = logging.getLogger(__name__)


def log_dropped(dataset: str, dropped) -> None:
    """One log line per drop reason with its count and an example."""
    if not dropped:
        return
    counts, example = Counter(), {}
    for d in dropped:
        counts[d.reason] += d.count
        example.setdefault(d.reason, d.where)
    for reason, n in counts.most_common():
        log.info("%s: dropped %d (%s), e.g. %s", dataset, n, reason, example[reason])


def run(ctx: StageContext, layout: Layout | None = None) -> dict:
    layout = layout or Layout.from_params(ctx.dataset, ctx.params.pipeline)
    layout.check_outputs("convert")
    module = datasets.get(ctx.dataset)
    if ctx.raw is None:
        raise UsageError(f"{ctx.params.source}: datasets.{ctx.dataset}.raw",
                         "no raw folder set: point it at the dataset as its authors distribute it")
    p = ctx.dataset_params
    dropped: list = []
    instances = module.instances(ctx.raw, p, dropped)
    log.info("%s: %d instances selected from %s", ctx.dataset, len(instances), ctx.raw)
    log_dropped(ctx.dataset, dropped)
    # what no dataset may hand over (wrong joint count, infinite joints, bad cameras, duplicates, metres, empty
    # splits): checked here for all of them; the drops are logged by the check
    instances = check_instances(ctx.dataset, module.JOINT_INFO, instances, dropped, module.splits(p), p,
                                ctx.params.pipeline.bad_instances, ctx.raw, ctx.params.source)
    provenance = module.provenance(ctx.raw, p) if hasattr(module, "provenance") else {}
    write_records(layout.records, ctx.dataset, module.JOINT_INFO, instances, {
        "provenance": provenance or {},
        "params_digest": params_digest(p), "params": p, "citation": module.INFO.citation,
        "licence": module.INFO.licence, "homepage": module.INFO.homepage,
        "expected_splits": list(module.splits(p)),
        "dropped": [{"where": d.where, "reason": d.reason, "count": d.count} for d in dropped]})
    return {"instances": len(instances), "dropped": sum(d.count for d in dropped)}


def main(argv=None) -> int:
    return stage_main("convert", run, argv)
