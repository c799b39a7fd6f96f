"""Data validation of a cache file with Great Expectations (GX Core 1.x).

Per-example quantities are derived from the cache in blocks of ``chunk_rows`` rows (never the whole file at
once) into pandas DataFrames, and GX checkpoints evaluate the committed expectation suites on each block:

* ``posebank_examples``  one row per example: joint counts, finiteness of coordinates and camera, intrinsics,
  principal point inside the image, rotation orthonormality and determinant, subject distance, lens distortion,
  up vector, box inside the crop, mask area, split code, reprojected root inside the crop;
* ``posebank_dataset``   one row per file: example count against the expected one (when known), joint count of
  the data against the file's joint_info and the registered skeleton (when the name is a registered dataset);
* ``posebank_images``    a seeded random sample of examples whose JPEG crops must decode to the stored size.

The suites live as JSON in the GX project folder (``expectations/`` by default) and take their thresholds as
suite parameters (``{"$PARAMETER": ...}``) filled from the ``validate:`` section of params.yaml at run time, so
the committed suites do not change when a threshold does. No check depends on one particular skeleton: the root
is the joint named ``pelv`` (or ``pelv_<tag>`` in a merged skeleton) and otherwise the mean of the valid joints.

The per-block results are combined into one JSON report (written atomically) and, optionally, GX Data Docs.
:class:`ValidationFailed` is raised when any expectation fails.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DATASOURCE = "posebank_pandas"
SUITES = ("posebank_examples", "posebank_dataset", "posebank_images")
ASSETS = {"posebank_examples": "examples", "posebank_dataset": "dataset", "posebank_images": "images"}
DOCS_SITE = "posebank_reports"
MAX_IDS = 10

DEFAULTS = {
    "chunk_rows": 200_000,
    "min_valid_joints": 4,
    "focal_range": [100.0, 10_000.0],
    "distance_range_mm": [300.0, 30_000.0],
    "max_distortion": 1.0,
    "max_rot_orth_err": 1.0e-4,
    "rot_det_tolerance": 1.0e-4,
    "world_up_tolerance": 1.0e-3,
    "bbox_tolerance_px": 0.5,
    "image_sample_size": 500,
    "seed": 0,
    "expected_counts": {},
}


class ValidationFailed(RuntimeError):
    """At least one expectation failed; ``summary`` holds the combined report."""

    def __init__(self, message: str, summary: dict):
        super().__init__(message)
        self.summary = summary


# --------------------------------------------------------------------------------------------- params
def resolve_params(params: dict | None) -> dict:
    """The ``validate:`` section merged over the defaults (accepts the section or the whole params file)."""
    params = dict(params or {})
    if "validate" in params and isinstance(params["validate"], dict):
        params = dict(params["validate"])
    out = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    out["expected_counts"] = dict(out.get("expected_counts") or {})
    return out


def suite_parameters(p: dict, n_joints_expected: int) -> dict:
    """Values of the ``$PARAMETER`` placeholders of the suites."""
    tol = float(p["bbox_tolerance_px"])
    return {
        "n_joints_expected": int(n_joints_expected),
        "min_valid_joints": int(p["min_valid_joints"]),
        "min_focal_px": float(p["focal_range"][0]),
        "max_focal_px": float(p["focal_range"][1]),
        "min_distance_mm": float(p["distance_range_mm"][0]),
        "max_distance_mm": float(p["distance_range_mm"][1]),
        "max_distortion": float(p["max_distortion"]),
        "max_rot_orth_err": float(p["max_rot_orth_err"]),
        "min_rot_det": 1.0 - float(p["rot_det_tolerance"]),
        "max_rot_det": 1.0 + float(p["rot_det_tolerance"]),
        "min_world_up_norm": 1.0 - float(p["world_up_tolerance"]),
        "max_world_up_norm": 1.0 + float(p["world_up_tolerance"]),
        "min_bbox_gap_px": -tol,
    }


# --------------------------------------------------------------------------------------------- suites
def build_suites() -> dict[str, list]:
    """The expectations of each suite (thresholds as suite parameters)."""
    import great_expectations.expectations as gxe

    def P(name):  # noqa: N802
        return {"$PARAMETER": name}

    def between(column, lo=None, hi=None, **kw):
        return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=lo, max_value=hi, **kw)

    def true(column):
        return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[True])

    examples = [
        between("n_joints", P("n_joints_expected"), P("n_joints_expected")),
        between("n_valid_joints", P("min_valid_joints")),
        gxe.ExpectColumnValuesToBeInSet(column="any_inf", value_set=[False]),
        true("camera_finite"),
        true("t_finite"),
        between("fx", P("min_focal_px"), P("max_focal_px")),
        between("fy", P("min_focal_px"), P("max_focal_px")),
        between("cx_frac", 0.0, 1.0, strict_max=True),
        between("cy_frac", 0.0, 1.0, strict_max=True),
        between("rot_orth_err", 0.0, P("max_rot_orth_err")),
        between("rot_det", P("min_rot_det"), P("max_rot_det")),
        gxe.ExpectColumnValuesToNotBeNull(column="subject_distance_mm"),
        between("subject_distance_mm", P("min_distance_mm"), P("max_distance_mm")),
        between("max_abs_distortion", 0.0, P("max_distortion")),
        between("world_up_norm", P("min_world_up_norm"), P("max_world_up_norm")),
        between("image_width", 1),
        between("image_height", 1),
        between("bbox_left_gap", P("min_bbox_gap_px")),
        between("bbox_top_gap", P("min_bbox_gap_px")),
        between("bbox_right_gap", P("min_bbox_gap_px")),
        between("bbox_bottom_gap", P("min_bbox_gap_px")),
        between("bbox_min_side", 0.0, strict_min=True),
        # NaN (no mask stored) is skipped; a stored mask must cover part of the crop
        between("mask_area_frac", 0.0, 1.0, strict_min=True),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=[0, 1, 2]),
        between("root_x_frac", 0.0, 1.0),
        between("root_y_frac", 0.0, 1.0),
    ]
    dataset = [
        gxe.ExpectColumnPairValuesToBeEqual(column_A="n_examples", column_B="expected_n_examples"),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="n_joints_data", column_B="n_joints_file"),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="n_joints_file", column_B="n_joints_registered"),
        gxe.ExpectColumnValuesToBeInSet(column="joint_names_unique", value_set=[True]),
        between("n_examples", 1),
    ]
    images = [
        true("image_decodes"),
        true("image_size_matches"),
    ]
    return {"posebank_examples": examples, "posebank_dataset": dataset, "posebank_images": images}


def _context(gx_root):
    import great_expectations as gx

    return gx.get_context(mode="file", context_root_dir=str(gx_root))


def init_project(gx_root="expectations", overwrite_suites: bool = False):
    """Create (or complete) the GX project: data source, assets, suites, validation definitions, checkpoints.

    Objects that already exist are left as they are (unless ``overwrite_suites``), so a committed project is only
    read. Returns the context.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = _context(gx_root)
    bars = ctx.variables.progress_bars
    globally = bars.get("globally") if isinstance(bars, dict) else getattr(bars, "globally", None)
    if globally is not False:
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        ctx.variables.save()
    try:
        ds = ctx.data_sources.get(DATASOURCE)
    except (KeyError, ValueError, LookupError):
        ds = ctx.data_sources.add_pandas(name=DATASOURCE)
    suites = build_suites()
    for suite_name, expectations in suites.items():
        asset_name = ASSETS[suite_name]
        try:
            asset = ds.get_asset(asset_name)
        except LookupError:
            asset = ds.add_dataframe_asset(name=asset_name)
        try:
            bd = asset.get_batch_definition("whole")
        except (KeyError, LookupError, ValueError):
            bd = asset.add_batch_definition_whole_dataframe("whole")
        names = {s.name for s in ctx.suites.all()}
        if suite_name in names and overwrite_suites:
            ctx.suites.delete(suite_name)
            names.discard(suite_name)
        if suite_name not in names:
            suite = ctx.suites.add(gx.ExpectationSuite(name=suite_name))
            for e in expectations:
                suite.add_expectation(e)
            suite.save()
        suite = ctx.suites.get(suite_name)
        vd_names = {v.name for v in ctx.validation_definitions.all()}
        if suite_name not in vd_names:
            ctx.validation_definitions.add(gx.ValidationDefinition(name=suite_name, data=bd, suite=suite))
        vd = ctx.validation_definitions.get(suite_name)
        cp_names = {c.name for c in ctx.checkpoints.all()}
        if suite_name not in cp_names:
            ctx.checkpoints.add(gx.Checkpoint(
                name=suite_name, validation_definitions=[vd], actions=[],
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_IDS,
                               "unexpected_index_column_names": ["example_id"]}))
    return ctx


# --------------------------------------------------------------------------------------------- derived columns
def root_joint_index(names) -> int | None:
    """Index of the pelvis (``pelv`` or, in a merged skeleton, the first ``pelv_<tag>``), else None."""
    names = list(names)
    if "pelv" in names:
        return names.index("pelv")
    for i, n in enumerate(names):
        if n.startswith("pelv_"):
            return i
    return None


def _distort(xn: np.ndarray, yn: np.ndarray, d: np.ndarray, model: np.ndarray):
    k1, k2, p1, p2, k3 = (d[:, i] for i in range(5))
    r2 = xn * xn + yn * yn
    radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
    xo = xn * radial + 2 * p1 * xn * yn + p2 * (r2 + 2 * xn * xn)
    yo = yn * radial + p1 * (r2 + 2 * yn * yn) + 2 * p2 * xn * yn
    tan = p1 * yn + p2 * xn
    xh = xn * (radial + tan) + p2 * r2
    yh = yn * (radial + tan) + p1 * r2
    h36m = model == 1
    return np.where(h36m, xh, xo), np.where(h36m, yh, yo)


def example_frame(cache, start: int, stop: int, root: int | None):
    """Per-example derived columns of rows [start, stop) as a DataFrame (float64 / int / bool columns)."""
    import pandas as pd

    from posebank.imaging.masks import area as mask_area

    col = lambda name: cache.column(name, slice(start, stop))  # noqa: E731
    wc = col("world_coords").astype(np.float64)
    n = wc.shape[0]
    K = col("camera/intrinsic_matrix").astype(np.float64)
    R = col("camera/R").astype(np.float64)
    t = col("camera/t").astype(np.float64)
    dist = col("camera/distortion_coeffs").astype(np.float64)
    dmodel = col("camera/distortion_model")
    up = col("camera/world_up").astype(np.float64)
    size = col("image_size").astype(np.float64)
    bbox = col("bbox").astype(np.float64)
    split = col("split")
    w, h = size[:, 0], size[:, 1]

    finite_joint = np.isfinite(wc).all(axis=2)
    n_valid = finite_joint.sum(axis=1)
    any_inf = np.isinf(wc).any(axis=(1, 2))
    camera_finite = (np.isfinite(K).all(axis=(1, 2)) & np.isfinite(R).all(axis=(1, 2)) & np.isfinite(t).all(axis=1)
                     & np.isfinite(dist).all(axis=1) & np.isfinite(up).all(axis=1))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        fx, fy, cx, cy = K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]
        rrt = np.einsum("nij,nkj->nik", R, R) - np.eye(3)
        rot_orth_err = np.abs(rrt).max(axis=(1, 2))
        rot_det = np.linalg.det(np.where(np.isfinite(R), R, 0.0))
        rot_det[~np.isfinite(R).all(axis=(1, 2))] = np.nan

        # subject position: the root joint when valid, else the mean of the valid joints
        wz = np.where(finite_joint[..., None], wc, 0.0)
        mean_valid = wz.sum(axis=1) / n_valid[:, None]
        if root is not None:
            subj = np.where(finite_joint[:, root, None], wc[:, root], mean_valid)
        else:
            subj = mean_valid
        distance = np.linalg.norm(subj - t, axis=1)
        pc = np.einsum("nij,nj->ni", R, subj - t)
        z = pc[:, 2]
        xd, yd = _distort(pc[:, 0] / z, pc[:, 1] / z, dist, dmodel)
        u = K[:, 0, 0] * xd + K[:, 0, 1] * yd + K[:, 0, 2]
        v = K[:, 1, 1] * yd + K[:, 1, 2]
        root_x = np.where(z > 0, (u + 0.5) / w, -1.0)
        root_y = np.where(z > 0, (v + 0.5) / h, -1.0)

    # masks: NaN where none is stored; -1 where the stored one does not decode
    mask_frac = np.full(n, np.nan)
    for i, blob in enumerate(cache.blobs("mask", start, stop)):
        if blob:
            try:
                mask_frac[i] = mask_area(blob, int(h[i]), int(w[i])) / max(w[i] * h[i], 1.0)
            except Exception:  # noqa: BLE001 - any decoding error makes the mask invalid
                mask_frac[i] = -1.0

    frame = pd.DataFrame({
        "example_id": np.arange(start, start + n, dtype=np.int64),
        "n_joints": np.full(n, wc.shape[1], np.int64),
        "n_valid_joints": n_valid.astype(np.int64),
        "any_inf": any_inf,
        "camera_finite": camera_finite,
        "t_finite": np.isfinite(t).all(axis=1),
        "fx": fx, "fy": fy,
        "cx_frac": cx / w, "cy_frac": cy / h,
        "rot_orth_err": rot_orth_err, "rot_det": rot_det,
        "subject_distance_mm": distance,
        "max_abs_distortion": np.abs(dist).max(axis=1),
        "world_up_norm": np.linalg.norm(up, axis=1),
        "image_width": size[:, 0].astype(np.int64), "image_height": size[:, 1].astype(np.int64),
        "bbox_left_gap": bbox[:, 0],
        "bbox_top_gap": bbox[:, 1],
        "bbox_right_gap": w - (bbox[:, 0] + bbox[:, 2]),
        "bbox_bottom_gap": h - (bbox[:, 1] + bbox[:, 3]),
        "bbox_min_side": np.minimum(bbox[:, 2], bbox[:, 3]),
        "mask_area_frac": mask_frac,
        "split": split.astype(np.int64),
        "root_x_frac": root_x, "root_y_frac": root_y,
    })
    return frame


def image_frame(cache, sample_size: int, seed: int):
    """Decode a seeded random sample of the stored JPEG crops."""
    import cv2
    import pandas as pd

    n = len(cache)
    k = min(int(sample_size), n)
    ids = np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False)) if k else np.zeros(0, np.int64)
    sizes = cache.column("image_size", ids) if k else np.zeros((0, 2), np.int32)
    decodes, matches = [], []
    for i, (wi, hi) in zip(ids, sizes):
        blob = cache.blob("image", int(i))
        arr = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED) if blob else None
        decodes.append(arr is not None)
        matches.append(arr is not None and arr.shape[1] == wi and arr.shape[0] == hi)
    return pd.DataFrame({"example_id": ids.astype(np.int64), "image_decodes": np.array(decodes, bool),
                         "image_size_matches": np.array(matches, bool)})


def dataset_frame(cache, name: str, expected_count: int | None):
    import pandas as pd

    from posebank import datasets

    n_file = cache.joint_info.n_joints
    try:
        n_registered = datasets.get(name).JOINT_INFO.n_joints
    except KeyError:  # not a registered dataset (e.g. a merged one): its own joint_info is the reference
        n_registered = n_file
    n = len(cache)
    n_data = int(cache.column("world_coords", slice(0, 1)).shape[1]) if n else n_file
    names = list(cache.joint_info.names)
    return pd.DataFrame({
        "example_id": [-1],
        "n_examples": [n],
        "expected_n_examples": [n if expected_count is None else int(expected_count)],
        "n_joints_data": [n_data],
        "n_joints_file": [n_file],
        "n_joints_registered": [n_registered],
        "joint_names_unique": [len(set(names)) == len(names)],
    }), n_registered


# --------------------------------------------------------------------------------------------- combining
class _Collector:
    def __init__(self):
        self.results: dict[tuple, dict] = {}

    def add(self, suite: str, checkpoint_result):
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
                    "failing_example_ids": [], "exceptions": []})
                agg["success"] = agg["success"] and bool(er.success)
                agg["element_count"] += int(r.get("element_count") or 0)
                agg["unexpected_count"] += int(r.get("unexpected_count") or 0)
                agg["missing_count"] += int(r.get("missing_count") or 0)
                info = er.exception_info or {}
                if info.get("raised_exception"):
                    agg["exceptions"].append(str(info.get("exception_message"))[:500])
                for row in r.get("partial_unexpected_index_list") or []:
                    if len(agg["failing_example_ids"]) >= MAX_IDS:
                        break
                    if isinstance(row, dict) and "example_id" in row:
                        agg["failing_example_ids"].append(int(float(row["example_id"])))


def _atomic_write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False, default=str)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _build_docs(ctx, data_docs_dir) -> str | None:
    site = {"class_name": "SiteBuilder", "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(Path(data_docs_dir).resolve()) + os.sep},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}
    # in memory only: the committed great_expectations.yml keeps no machine-specific path
    ctx.config.data_docs_sites = {**(ctx.config.data_docs_sites or {}), DOCS_SITE: site}
    urls = ctx.build_data_docs(site_names=[DOCS_SITE])
    index = Path(data_docs_dir) / "index.html"
    return str(index) if index.is_file() else urls.get(DOCS_SITE)


# --------------------------------------------------------------------------------------------- entry point
def validate(cache_path, name: str, params: dict | None, report_path, data_docs_dir=None,
             gx_root="expectations") -> dict:
    """Validate the cache ``cache_path`` of dataset ``name``; write the JSON report; return the summary.

    Raises :class:`ValidationFailed` (after writing the report) when any expectation fails.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from great_expectations.core.run_identifier import RunIdentifier

    from posebank.store import Cache

    t0 = time.perf_counter()
    p = resolve_params(params)
    chunk_rows = max(1, int(p["chunk_rows"]))
    ctx = init_project(gx_root)
    checkpoints = {s: ctx.checkpoints.get(s) for s in SUITES}
    collector = _Collector()
    run_name = f"{name}-{time.strftime('%Y%m%dT%H%M%S')}"

    with Cache(cache_path) as cache:
        n = len(cache)
        expected = p["expected_counts"].get(name)
        ds_df, n_registered = dataset_frame(cache, name, expected)
        expectation_parameters = suite_parameters(p, n_registered)
        run = lambda suite, df, part: checkpoints[suite].run(  # noqa: E731
            batch_parameters={"dataframe": df}, expectation_parameters=expectation_parameters,
            run_id=RunIdentifier(run_name=f"{run_name}-{part}"))
        collector.add("posebank_dataset", run("posebank_dataset", ds_df, "dataset"))
        root = root_joint_index(cache.joint_info.names)
        n_chunks = 0
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            df = example_frame(cache, start, stop, root)
            collector.add("posebank_examples", run("posebank_examples", df, f"rows{start}-{stop}"))
            del df
            n_chunks += 1
            log.info("%s: validated rows %d-%d of %d", name, start, stop, n)
        img_df = image_frame(cache, p["image_sample_size"], int(p["seed"]))
        collector.add("posebank_images", run("posebank_images", img_df, "images"))
        n_sampled = len(img_df)

    results = list(collector.results.values())
    failed = [r for r in results if not r["success"]]
    summary = {
        "dataset": name,
        "cache": str(cache_path),
        "success": not failed,
        "examples": n,
        "chunks": n_chunks,
        "chunk_rows": chunk_rows,
        "images_sampled": n_sampled,
        "expectations": len(results),
        "expectations_passed": len(results) - len(failed),
        "expectations_failed": len(failed),
        "pass_rate": (len(results) - len(failed)) / len(results) if results else 1.0,
        "parameters": expectation_parameters,
        "failing": [{k: r[k] for k in ("suite", "expectation_type", "column", "unexpected_count",
                                       "element_count", "failing_example_ids", "exceptions")} for r in failed],
        "results": [{k: r[k] for k in ("suite", "expectation_type", "column", "success", "element_count",
                                       "unexpected_count", "missing_count")} for r in results],
        "seconds": None,
        "data_docs": None,
    }
    if data_docs_dir is not None:
        summary["data_docs"] = _build_docs(ctx, data_docs_dir)
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    _atomic_write_json(Path(report_path), summary)
    if failed:
        parts = [f"{r['expectation_type']} on {r['column']!r} ({r['suite']}): {r['unexpected_count']} failing, "
                 f"example ids {r['failing_example_ids']}"
                 + (f", error {r['exceptions'][0]}" if r["exceptions"] else "") for r in failed]
        raise ValidationFailed(f"{name}: {len(failed)} of {len(results)} expectations failed: " + "; ".join(parts),
                               summary)
    return summary
