"""Convert one raw dataset tree into its cache file."""

from __future__ import annotations

import logging
from pathlib import Path

from posebank import datasets
from posebank.build import build_cache, params_digest
from posebank.imaging.crop import CropParams

log = logging.getLogger(__name__)


def convert(name: str, raw, out, dataset_params: dict | None = None, crop_params: dict | None = None,
            progress: bool = True) -> dict:
    """Check the raw layout, select instances, crop them and write ``out`` atomically. Returns counts."""
    module = datasets.get(name)
    p = {**module.DEFAULT_PARAMS, **(dataset_params or {})}
    unknown = set(dataset_params or {}) - set(module.DEFAULT_PARAMS) - {"raw"}
    if unknown:
        raise ValueError(f"{name}: unknown parameters {sorted(unknown)}; known: {sorted(module.DEFAULT_PARAMS)}")
    p.pop("raw", None)
    crop = CropParams.from_dict(crop_params)
    instances = module.instances(Path(raw), p)
    log.info("%s: %d instances selected from %s", name, len(instances), raw)
    attrs = {"params_digest": params_digest(p, crop.__dict__), "params": p, "crop_params": crop.__dict__,
             "citation": module.INFO.citation, "licence": module.INFO.licence, "homepage": module.INFO.homepage}
    # datasets whose images are rendered rather than read (composites) provide their own frame source
    make_source = getattr(module, "frame_source", None)
    frame_source = make_source(Path(raw), p) if make_source is not None else None
    return build_cache(out, name, module.JOINT_INFO, instances, raw, crop, attrs, progress=progress,
                       frame_source=frame_source)
