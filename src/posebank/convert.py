"""Convert one raw dataset tree into its cache file in one call: every pipeline stage, in a temporary folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

from posebank.pipeline import Layout, run_all


def convert(name: str, raw, out, dataset_params: dict | None = None, crop_params: dict | None = None,
            progress: bool = True, detect_params: dict | None = None, segment_params: dict | None = None,
            frames_params: dict | None = None, shard_frames: int = 256) -> dict:
    """Check the raw layout, select instances, extract frames, box, segment and crop them, and write ``out``
    atomically. Returns counts per split. Without ``segment_params`` no masks are computed (datasets that ship
    masks keep theirs)."""
    out = Path(out)
    params = {
        "datasets": {name: dict(dataset_params or {})},
        "crop": crop_params,
        "frames": frames_params,
        "detect": detect_params,
        "segment": segment_params or {"backend": "none"},
        "pipeline": {"shard_frames": shard_frames},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        return run_all(name, raw, Layout(name, Path(tmp), out), params, progress)
