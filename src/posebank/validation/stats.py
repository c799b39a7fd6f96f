"""Per-dataset statistics of a cache (or a merged file), written by the validate stage as a DVC metric and a DVC
plot, so that ``dvc metrics diff`` and ``dvc plots diff`` show what a rebuild changed.

:func:`compute_stats` reads the cache's ``split``, ``bbox``, ``world_coords`` and ``keypoints2d`` columns in blocks
of ``chunk_rows`` rows (a merge run by run, each with its source's own joints), never whole, and returns

* the metric (:func:`write_stats`: ``<reports>/stats/<name>.json``): examples in total and per split, the joint
  count, valid 3D joints per example (mean over all examples; a 2D-only example has none) and the fraction of
  valid 3D joints, the same of the 2D joints (``keypoints2d``; what a 2D-only dataset has), examples with 3D joints
  and 2D-only ones, the person box size in the crop (``sqrt(w * h)``, px) at the 5th, 50th and 95th percentile,
  the boxes without a finite positive size, the quarantine (entries and the frames they stand for), the validation
  pass rate and expectation counts of the same run's report, and for a merge the examples per source and split;
* the plot data (``<reports>/stats/<name>_boxes.csv``): a box-size histogram with fixed bins of :data:`BOX_BIN_PX`
  px from 0 (``box_px`` is a bin's start; the last bin also counts every larger box), one count column per split
  and ``examples`` (all splits), so every file has the same rows and a rebuild's plot lines up with the old one.

Quantiles are exact in bounded memory: box sizes are counted per value at a resolution of 1 / :data:`BOX_QUANTUM`
px (0.01 px; a dict of at most a few ten thousand distinct sizes), and the quantile is numpy's default (linear
interpolation between order statistics) of those values. Nothing depends on time or on the chunk size; floats are
rounded (:data:`DECIMALS`), so an unchanged cache gives byte-identical files.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping

import numpy as np

from posebank.core.atomic import prepare_output, write_json, write_text
from posebank.core.store import SPLITS

BOX_BIN_PX = 16  # histogram bin width (px)
BOX_BINS = 64  # bins from 0 px: 0 .. 1024 px, the last one open-ended
BOX_QUANTUM = 100  # box sizes are counted at 1 / BOX_QUANTUM px for the quantiles
BOX_QUANTILES = {"p5": 0.05, "median": 0.5, "p95": 0.95}
DECIMALS = 4  # rounding of the means and fractions (the box quantiles: 3 decimals, 0.1 quantum)
VALIDATION_KEYS = ("pass_rate", "expectations", "expectations_passed", "expectations_failed")


def _column(part, name: str, start: int, stop: int) -> np.ndarray | None:
    """Rows [start, stop) of a column; None when the file has no such column (a version-1 cache's keypoints2d, a
    merge's)."""
    try:
        return part.column(name, slice(start, stop))
    except KeyError:
        return None


class _Counts:
    """The sums one pass adds up (for the whole file, and per source of a merge)."""

    def __init__(self):
        self.per_split = dict.fromkeys(SPLITS, 0)
        self.joint_slots = 0  # examples x their joints
        self.valid_3d = self.valid_2d = 0
        self.examples_3d = self.examples_2d_only = 0

    def add(self, split: np.ndarray, wc: np.ndarray, kp: np.ndarray | None) -> None:
        counts = np.bincount(split.astype(np.int64), minlength=len(SPLITS))
        for s, c in zip(SPLITS, counts.tolist()):
            self.per_split[s] += int(c)
        n, j = wc.shape[:2]
        self.joint_slots += n * j
        ok3 = np.isfinite(wc).all(axis=2)
        has3 = ok3.any(axis=1)
        self.valid_3d += int(ok3.sum())
        self.examples_3d += int(has3.sum())
        if kp is not None:
            ok2 = np.isfinite(kp).all(axis=2)
            self.valid_2d += int(ok2.sum())
            self.examples_2d_only += int((~has3 & ok2.any(axis=1)).sum())


def _ratio(a: float, b: float) -> float:
    return round(a / b, DECIMALS) if b else 0.0


def quantile_of_counts(counts: Mapping[int, int], q: float) -> float | None:
    """numpy's default quantile (linear between order statistics) of integer values given as value -> count."""
    if not counts:
        return None
    values = np.array(sorted(counts), np.int64)
    cum = np.cumsum([counts[v] for v in values])
    h = (int(cum[-1]) - 1) * q
    lo, hi = int(np.floor(h)), int(np.ceil(h))
    a = int(values[np.searchsorted(cum, lo, side="right")])
    b = int(values[np.searchsorted(cum, hi, side="right")])
    return a + (h - lo) * (b - a)


def box_sizes(bbox: np.ndarray) -> np.ndarray:
    """``sqrt(w * h)`` of boxes ``[x, y, w, h]`` (px, float64); NaN where w or h is not finite and positive."""
    w, h = bbox[:, 2].astype(np.float64), bbox[:, 3].astype(np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(w) & np.isfinite(h) & (w > 0) & (h > 0)
        return np.where(ok, np.sqrt(np.where(ok, w * h, 1.0)), np.nan)


def box_bins(size: np.ndarray) -> np.ndarray:
    """Histogram bin of each (finite) box size: floor(size / BOX_BIN_PX), the larger ones in the last bin."""
    return np.minimum((size // BOX_BIN_PX).astype(np.int64), BOX_BINS - 1)


def compute_stats(cache, chunk_rows: int = 200_000) -> tuple[dict, np.ndarray]:
    """The statistics of an open cache or merge (:func:`posebank.merging.reader.open_any`) and its box histogram
    (``BOX_BINS x len(SPLITS)`` counts), reading ``chunk_rows`` rows at a time. The validation and quarantine
    entries are the caller's (:func:`write_stats`)."""
    from posebank.merging.reader import Merge

    chunk_rows = max(1, int(chunk_rows))
    total = _Counts()
    per_source: dict[str, _Counts] = {}
    hist = np.zeros((BOX_BINS, len(SPLITS)), np.int64)
    sizes: Counter[int] = Counter()
    invalid_boxes = 0
    is_merge = isinstance(cache, Merge)
    parts = cache.parts() if is_merge else [(0, cache)]
    for _offset, part in parts:
        source = per_source.setdefault(part.dataset, _Counts()) if is_merge else None
        for start in range(0, len(part), chunk_rows):
            stop = min(start + chunk_rows, len(part))
            split = part.column("split", slice(start, stop)).astype(np.int64)
            wc = part.column("world_coords", slice(start, stop))
            kp = _column(part, "keypoints2d", start, stop)
            for counts in (total, source) if source is not None else (total,):
                counts.add(split, wc, kp)
            size = box_sizes(part.column("bbox", slice(start, stop)))
            ok = np.isfinite(size)
            invalid_boxes += int((~ok).sum())
            np.add.at(hist, (box_bins(size[ok]), split[ok]), 1)
            values, n = np.unique(np.rint(size[ok] * BOX_QUANTUM).astype(np.int64), return_counts=True)
            sizes.update(dict(zip(values.tolist(), n.tolist())))
            del wc, kp
    n = sum(total.per_split.values())
    box = {}
    for key, q in BOX_QUANTILES.items():
        v = quantile_of_counts(sizes, q)
        box[key] = None if v is None else round(v / BOX_QUANTUM, 3)
    stats = {
        "examples": n,
        "examples_per_split": dict(total.per_split),
        "joints": int(cache.joint_info.n_joints),
        "examples_3d": total.examples_3d,
        "examples_2d_only": total.examples_2d_only,
        "joints_3d_valid_mean": _ratio(total.valid_3d, n),
        "joints_3d_valid_frac": _ratio(total.valid_3d, total.joint_slots),
        "joints_2d_valid_mean": _ratio(total.valid_2d, n),
        "joints_2d_valid_frac": _ratio(total.valid_2d, total.joint_slots),
        "box_px": box,
        "boxes_invalid": invalid_boxes,
    }
    if is_merge:
        stats["sources"] = {name: {"examples": sum(c.per_split.values()), "examples_per_split": dict(c.per_split),
                                   "joints_3d_valid_frac": _ratio(c.valid_3d, c.joint_slots)}
                            for name, c in per_source.items()}
    return stats, hist


def histogram_csv(hist: np.ndarray) -> str:
    """The box histogram as CSV: ``box_px`` (bin start), one count column per split, ``examples`` (their sum)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["box_px", *SPLITS, "examples"])
    for i, row in enumerate(hist.tolist()):
        w.writerow([i * BOX_BIN_PX, *row, sum(row)])
    return out.getvalue()


def write_stats(cache_path, stats_path, plot_path, report: Mapping | None = None, chunk_rows: int = 200_000
                ) -> dict:
    """Compute the statistics of the cache or merge at ``cache_path``, add the validation counts of ``report``
    (the summary :func:`posebank.validation.validate.validate` returned or wrote; None: left out) and write the
    metric JSON and the histogram CSV atomically; returns the metric."""
    from posebank.merging.reader import open_any

    prepare_output(stats_path)  # both outputs are probed before the pass over the cache
    prepare_output(plot_path)
    with open_any(cache_path) as cache:
        stats, hist = compute_stats(cache, chunk_rows)
        quarantine = cache.quarantine
    stats["quarantined"] = len(quarantine)
    stats["quarantined_frames"] = sum(int(q.get("count", 1)) for q in quarantine)
    if report is not None:
        stats["validation"] = {k: (round(float(report[k]), DECIMALS) if k == "pass_rate" else int(report[k]))
                               for k in VALIDATION_KEYS}
    write_json(stats_path, stats)
    write_text(plot_path, histogram_csv(hist))
    return stats

