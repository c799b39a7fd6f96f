"""Shared helpers of the pipeline tests: params for the small H36M fixture, the layout, all stages in order."""

from conftest import H36M_SMALL_PARAMS
from posebank.core.settings import PipelineParams
from posebank.pipeline import STAGES
from posebank.pipeline.layout import Layout
from posebank.pipeline.run import run_stage

BUILD = STAGES[:-1]  # every stage but validate


def params_for(raw, tmp, shard_frames=4, **over):
    p = {"datasets": {"h36m": {"raw": str(raw), "family": "h36m", **H36M_SMALL_PARAMS}},
         "pipeline": {"shard_frames": shard_frames, "interim": str(tmp / "interim"), "cache": str(tmp / "cache"),
                      "reports": str(tmp / "reports")},
         "segment": {"backend": "none"}}
    p.update(over)
    return p


def layout_of(params) -> Layout:
    return Layout.from_params("h36m", PipelineParams.from_dict(params["pipeline"]))


def run_all_stages(params):
    for stage in BUILD:
        result = run_stage(stage, "h36m", params)
    return result
