"""The Great Expectations project: the expectation suites, their parameters, and the committed GX objects.

Three suites, each checked by a checkpoint of the same name on a pandas data frame asset:

* ``posebank_examples``  one row per example (:func:`posebank.validation.columns.example_frame`);
* ``posebank_dataset``   one row per file (:func:`posebank.validation.columns.dataset_frame`);
* ``posebank_images``    one row per sampled example whose JPEG crop was decoded
  (:func:`posebank.validation.columns.image_frame`).

The suites live as JSON in the GX project folder (``expectations/`` by default) and take their thresholds as
suite parameters (``{"$PARAMETER": ...}``) filled from the ``validate:`` section of params.yaml at run time
(:func:`suite_parameters`), so the committed suites do not change when a threshold does. :func:`build_suites` is
their definition; :func:`init_project` creates whatever the project folder lacks and, with ``overwrite_suites``,
brings the committed suites in line with :func:`build_suites` (expectations that did not change keep their ids,
so the JSON diff shows only what changed).
"""

from __future__ import annotations

from posebank.core.settings import ValidateParams

DATASOURCE = "posebank_pandas"
SUITES = ("posebank_examples", "posebank_dataset", "posebank_images")
ASSETS = {"posebank_examples": "examples", "posebank_dataset": "dataset", "posebank_images": "images"}
MAX_IDS = 10  # failing example ids kept per expectation (GX's partial_unexpected_count)
INDEX_COLUMN = "example_id"  # every frame's row id, reported for the failing rows


def suite_parameters(p: ValidateParams, n_joints_expected: int) -> dict:
    """Values of the ``$PARAMETER`` placeholders of the suites."""
    return {
        "n_joints_expected": int(n_joints_expected),
        "min_valid_joints": int(p.min_valid_joints),
        "min_focal_px": float(p.focal_range[0]),
        "max_focal_px": float(p.focal_range[1]),
        "min_distance_mm": float(p.distance_range_mm[0]),
        "max_distance_mm": float(p.distance_range_mm[1]),
        "max_distortion": float(p.max_distortion),
        "max_rot_orth_err": float(p.max_rot_orth_err),
        "min_rot_det": 1.0 - float(p.rot_det_tolerance),
        "max_rot_det": 1.0 + float(p.rot_det_tolerance),
        "min_world_up_norm": 1.0 - float(p.world_up_tolerance),
        "max_world_up_norm": 1.0 + float(p.world_up_tolerance),
        "min_bbox_visible_frac": float(p.min_bbox_visible_frac),
        "max_keypoint_reproj_px": float(p.max_keypoint_reproj_px),
        "max_abs_beta": float(p.max_abs_beta),
    }


def build_suites() -> dict[str, list]:
    """The expectations of each suite (thresholds as suite parameters)."""
    import great_expectations.expectations as gxe

    def P(name):  # noqa: N802
        return {"$PARAMETER": name}

    def between(column, lo=None, hi=None, **kw):
        return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=lo, max_value=hi, **kw)

    def true(column):
        return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[True])

    body = dict(row_condition="has_body_model==True", condition_parser="pandas")  # rows with a fit only

    examples = [
        between("n_joints", P("n_joints_expected"), P("n_joints_expected")),
        between("n_valid_joints", P("min_valid_joints")),
        gxe.ExpectColumnValuesToBeInSet(column="any_inf", value_set=[False]),
        true("camera_finite"),
        true("t_finite"),
        between("fx", P("min_focal_px"), P("max_focal_px")),
        between("fy", P("min_focal_px"), P("max_focal_px")),
        between("principal_x_in_box", 0.0, 1.0),
        between("principal_y_in_box", 0.0, 1.0),
        between("rot_orth_err", 0.0, P("max_rot_orth_err")),
        between("rot_det", P("min_rot_det"), P("max_rot_det")),
        # 3D examples only: 2D-only examples (COCO, MPII) have no distance
        gxe.ExpectColumnValuesToNotBeNull(column="subject_distance_mm", row_condition="has_3d==True",
                                          condition_parser="pandas"),
        between("subject_distance_mm", P("min_distance_mm"), P("max_distance_mm")),
        between("max_abs_distortion", 0.0, P("max_distortion")),
        between("world_up_norm", P("min_world_up_norm"), P("max_world_up_norm")),
        between("image_width", 1),
        between("image_height", 1),
        between("bbox_visible_frac", P("min_bbox_visible_frac"), 1.0),
        between("bbox_min_side", 0.0, strict_min=True),
        # NaN (no mask stored) is skipped; a stored mask must cover part of the crop
        between("mask_area_frac", 0.0, 1.0, strict_min=True),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=[0, 1, 2]),
        between("root_x_frac", 0.0, 1.0),
        between("root_y_frac", 0.0, 1.0),
        # version 2: an example without extrinsics is 2D-only; stored 2D joints of a 3D example are its projection
        gxe.ExpectColumnPairValuesToBeEqual(column_A="has_3d", column_B="has_extrinsics",
                                            row_condition="has_extrinsics==False", condition_parser="pandas"),
        between("keypoints2d_reproj_err_px", 0.0, P("max_keypoint_reproj_px")),
        gxe.ExpectColumnValuesToBeInSet(column="body_model_code", value_set=[0, 1], **body),
        gxe.ExpectColumnValuesToBeInSet(column="body_gender_code", value_set=[0, 1, 2], **body),
        true("body_params_finite"),
        between("body_betas_abs_max", 0.0, P("max_abs_beta"), **body),
        between("body_orient_cam_err_rad", 0.0, 1e-3, **body),
    ]
    dataset = [
        gxe.ExpectColumnPairValuesToBeEqual(column_A="n_examples", column_B="expected_n_examples"),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="n_joints_data", column_B="n_joints_file"),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="n_joints_file", column_B="n_joints_registered"),
        gxe.ExpectColumnValuesToBeInSet(column="joint_names_unique", value_set=[True]),
        between("n_examples", 1),
        # every split the dataset's params asked for has an example; NaN (the cache names none) is skipped
        between("min_expected_split_count", 1),
    ]
    images = [
        true("image_decodes"),
        true("image_size_matches"),
    ]
    return {"posebank_examples": examples, "posebank_dataset": dataset, "posebank_images": images}


def context(gx_root):
    """The file data context of the GX project folder ``gx_root``."""
    import great_expectations as gx

    return gx.get_context(mode="file", context_root_dir=str(gx_root))


def _same(a, b) -> bool:
    """Two expectations that check the same thing (ids, notes, meta and rendered content aside)."""
    skip = {"id", "rendered_content", "notes", "meta"}
    return a.expectation_type == b.expectation_type and a.dict(exclude=skip) == b.dict(exclude=skip)


def _sync_suite(suite, expectations: list) -> None:
    """Make the saved ``suite`` hold exactly ``expectations``, in that order; unchanged ones keep their ids."""
    for e in list(suite.expectations):
        if not any(_same(e, w) for w in expectations):
            suite.delete_expectation(e)
    for w in expectations:
        if not any(_same(e, w) for e in suite.expectations):
            suite.add_expectation(w)
    ordered = [next(e for e in suite.expectations if _same(e, w)) for w in expectations]
    if [e.id for e in ordered] != [e.id for e in suite.expectations]:
        suite.expectations = ordered
        suite.save()


def init_project(gx_root="expectations", overwrite_suites: bool = False):
    """Create (or complete) the GX project: data source, assets, suites, validation definitions, checkpoints.

    Objects that already exist are left as they are, so a committed project is only read. With
    ``overwrite_suites`` the existing suites are updated in place to :func:`build_suites` (their ids, those of
    their unchanged expectations and the validation definitions that refer to them stay). Returns the context.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = context(gx_root)
    bars = ctx.variables.progress_bars
    globally = bars.get("globally") if isinstance(bars, dict) else getattr(bars, "globally", None)
    if globally is not False:
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        ctx.variables.save()
    try:
        ds = ctx.data_sources.get(DATASOURCE)
    except (KeyError, ValueError, LookupError):
        ds = ctx.data_sources.add_pandas(name=DATASOURCE)
    for suite_name, expectations in build_suites().items():
        asset_name = ASSETS[suite_name]
        try:
            asset = ds.get_asset(asset_name)
        except LookupError:
            asset = ds.add_dataframe_asset(name=asset_name)
        try:
            bd = asset.get_batch_definition("whole")
        except (KeyError, LookupError, ValueError):
            bd = asset.add_batch_definition_whole_dataframe("whole")
        if suite_name not in {s.name for s in ctx.suites.all()}:
            suite = ctx.suites.add(gx.ExpectationSuite(name=suite_name))
            for e in expectations:
                suite.add_expectation(e)
            suite.save()
        elif overwrite_suites:
            _sync_suite(ctx.suites.get(suite_name), expectations)
        suite = ctx.suites.get(suite_name)
        if suite_name not in {v.name for v in ctx.validation_definitions.all()}:
            ctx.validation_definitions.add(gx.ValidationDefinition(name=suite_name, data=bd, suite=suite))
        vd = ctx.validation_definitions.get(suite_name)
        if suite_name not in {c.name for c in ctx.checkpoints.all()}:
            ctx.checkpoints.add(gx.Checkpoint(
                name=suite_name, validation_definitions=[vd], actions=[],
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_IDS,
                               "unexpected_index_column_names": [INDEX_COLUMN]}))
    return ctx
