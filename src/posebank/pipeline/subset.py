"""subset@<name>: a fixed-seed sample of one split of a cache, re-cropped square: ``<pipeline.cache>/<source>`` ->
``<pipeline.cache>/<name>/`` (a cache folder of one shard), as ``subsets.<name>`` of params.yaml says.

ReFit's 3DPW fast-validation subset (ReFit scripts/subsample_3dpw.py): of the N examples of the split, in cache
order, ``np.random.seed(0); permutation(N)[:3000]``, sorted, each cropped to 256 x 256 around its box (centre =
the box's centre, side = 1.2 x its long side: SPIN's ``center`` / ``scale = 1.2 max(w, h) / 200``). Here the new
crop is cut from the stored one (a scale and a shift of its pixels: the camera keeps its rotation and centre, so
the 3D joints, the body-model fit and its camera-frame parameters stay exact), with the mask, the 2D joints and the
camera updated; an example's ``source_path`` and row in the source cache are kept (``source_row`` attribute).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from posebank.core.errors import StageError
from posebank.core.settings import Params, SubsetParams
from posebank.core.store import SPLITS, Cache, CacheWriter, Example, write_index

log = logging.getLogger(__name__)


def subset_rows(split_codes: np.ndarray, split: str, size: int, seed: int) -> np.ndarray:
    """Rows of the examples of ``split`` chosen as ReFit does: the split's examples in order, a seeded permutation,
    its first ``size``, sorted (NumPy's legacy generator: ``np.random.seed(seed); np.random.permutation(N)``)."""
    rows = np.flatnonzero(split_codes == SPLITS.index(split))
    pick = np.random.RandomState(seed).permutation(len(rows))[:size]
    return rows[np.sort(pick)]


def recrop(ex: Example, p: SubsetParams) -> Example:
    """The example cut to a ``crop_px`` square of side ``box_scale`` x its box's long side, centred on the box."""
    import cv2

    from posebank.core import masks

    x, y, w, h = (float(v) for v in ex.bbox)
    side = p.box_scale * max(w, h)
    scale = p.crop_px / side
    size = (p.crop_px, p.crop_px)
    camera = ex.camera.scaled_output(center_xy=(x + w / 2, y + h / 2), scale=scale, output_size_wh=size)
    # pixel x of the stored crop -> (x + 0.5) * scale - 0.5 - offset (Camera.zoomed, Camera.shifted)
    offset = ex.camera.intrinsic_matrix[:2, 2] * scale + 0.5 * scale - 0.5 - camera.intrinsic_matrix[:2, 2]
    A = np.array([[scale, 0.0, 0.5 * scale - 0.5 - offset[0]], [0.0, scale, 0.5 * scale - 0.5 - offset[1]]])
    image = cv2.warpAffine(ex.decode_image(), A, size, flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_CONSTANT)
    from posebank.core.jpeg import encode_jpeg

    mask = b""
    if ex.mask:
        m = cv2.warpAffine(ex.decode_mask().astype(np.uint8), A, size, flags=cv2.INTER_NEAREST)
        mask = masks.encode(m > 0)
    bbox = np.array([x * scale + A[0, 2], y * scale + A[1, 2], w * scale, h * scale], np.float32)
    kp = None
    if ex.keypoints2d is not None:
        kp = (np.asarray(ex.keypoints2d, np.float64) * scale + A[:, 2]).astype(np.float32)
    return Example(world_coords=ex.world_coords, camera=camera, bbox=bbox, split=ex.split,
                   image=encode_jpeg(image, p.jpeg_quality), image_size=size, subject=ex.subject,
                   sequence=ex.sequence, activity=ex.activity, camera_name=ex.camera_name,
                   frame_index=ex.frame_index, source_path=ex.source_path, mask=mask, visibility=ex.visibility,
                   keypoints2d=kp, has_extrinsics=ex.has_extrinsics, body_model=ex.body_model,
                   body_model_cam=ex.body_model_cam)


def build_subset(name: str, p: SubsetParams, source_cache, out) -> dict:
    """Write the subset ``name`` of ``source_cache`` as the cache folder ``out``; returns its counts."""
    source_cache, out = Path(source_cache), Path(out)
    if not source_cache.exists():
        raise StageError(source_cache, f"missing: the subset {name} samples the {p.source} cache; build it first "
                         f"(dvc repro crop@{p.source})")
    with Cache(source_cache) as src:
        codes = src.column("split")
        rows = subset_rows(codes, p.split, p.size, p.seed)
        n_split = int(np.count_nonzero(codes == SPLITS.index(p.split)))
        if not len(rows):
            raise StageError(source_cache, f"has no {p.split} examples to sample for the subset {name}")
        out.mkdir(parents=True, exist_ok=True)
        shard = out / "shard-00000.h5"
        attrs = {k: v for k, v in src.attrs.items() if k in ("citation", "licence", "homepage")}
        attrs.update({"subset_of": p.source, "subset_params": {k: getattr(p, k) for k in p.__dataclass_fields__},
                      "source_row": rows.tolist(), "shard": "shard-00000", "complete": True})
        with CacheWriter(shard, src.dataset, src.joint_info, attrs) as w:
            for r in rows:
                w.add(recrop(src[int(r)], p))
        index_attrs = {k: v for k, v in src.attrs.items()
                       if k in ("citation", "licence", "homepage", "params", "params_digest", "provenance")}
        index_attrs.update({"subset_of": p.source, "expected_splits": [p.split],
                            "subset_params": {k: getattr(p, k) for k in p.__dataclass_fields__}})
        for k in ("params", "provenance"):  # an index keeps mappings as JSON text
            if isinstance(index_attrs.get(k), str):
                index_attrs[k] = json.loads(index_attrs[k])
        index = write_index(out, src.dataset, src.joint_info, [shard], index_attrs)
    log.info("subset %s: %d of the %d %s examples of %s -> %s", name, len(rows), n_split, p.split, p.source, out)
    return {"examples": index["n_examples"], "out": str(out)}


def run_subset(name: str, params: Params, cache_dir=None, out=None, validate: bool = True) -> dict:
    """Build the subset and (``validate``) check it with the suites: report ``<reports>/validation/<name>.json``,
    contact sheet ``<reports>/contact/<name>.png``; a failed expectation fails the stage after the report."""
    p = params.subset(name)
    cache_dir = Path(cache_dir) if cache_dir is not None else Path(params.pipeline.cache)
    out = Path(out) if out is not None else cache_dir / name
    result = build_subset(name, p, cache_dir / p.source, out)
    if validate:
        from posebank.validation.contact_sheet import render_contact_sheet
        from posebank.validation.validate import validate as run_validate

        reports = Path(params.pipeline.reports)
        s = run_validate(out, name, params.validate, reports / "validation" / f"{name}.json",
                         gx_root=Path(params.pipeline.expectations))
        log.info("%s: %d/%d expectations passed on %d examples", name, s["expectations_passed"], s["expectations"],
                 s["examples"])
        render_contact_sheet(out, reports / "contact" / f"{name}.png")
        result["validated"] = s["examples"]
    return result


def main(argv=None) -> int:
    from posebank.entry import load_checked, run_guarded, stage_args

    args = stage_args("subset", "subset", "a subset of params.yaml's subsets: (tdpw_test_sub)", argv)

    def go():
        params, _ = load_checked(args.params, require_family=False)
        params.subset(args.subset)
        run_subset(args.subset, params)
        return 0

    return run_guarded(go)
