"""Raw fixture trees and their conversions (the dataset conformance suite, the exports), built once per session by the
``builds`` fixture (tests/conftest.py).

Each registered dataset converts its fixture with its default parameters, overridden only where the runtime asks
for it (MuCo-3DHP: a few composites; tdhp_full: the cameras the shared tree has). tdhp, tdhp_full and muco_3dhp
share one MPI-INF-3DHP training tree, as in the pipeline (their ``raw`` is the same folder).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from posebank import datasets

# the fixture trees: key -> (dataset whose make_fixture writes it, make_fixture options)
TREES = {
    "h36m": ("h36m", {"n_frames": 10}),
    "tdhp": ("tdhp", {"n_frames": 20, "cameras": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)}),
    "tdhp_test": ("tdhp_test", {"n_frames": 6}),
    "mupots": ("mupots", {"n_frames": 4}),
    "surreal": ("surreal", {"n_frames": 6}),
    "tdpw": ("tdpw", {"n_frames": 8}),
    "mpii": ("mpii", {}),
    "agora": ("agora", {}),
    "coco": ("coco", {}),
    "bedlam": ("bedlam", {}),
    "aist": ("aist", {"n_frames": 4}),
    "panoptic": ("panoptic", {}),
    "humbi": ("humbi", {}),
    "hspace": ("hspace", {}),
    "tdpeople": ("tdpeople", {}),
    "jta": ("jta", {}),
    "totalcapture": ("totalcapture", {}),
    "rich": ("rich", {}),
    "sailvos": ("sailvos", {}),
    "umpm": ("umpm", {}),
    "bmhad": ("bmhad", {}),
    "mads": ("mads", {}),
    "tdoh": ("tdoh", {}),
    "bml_movi": ("bml_movi", {}),
    "gpa": ("gpa", {}),
    "aspset": ("aspset", {}),
    "ikea": ("ikea", {}),
    "fit3d": ("fit3d", {}),
    "chi3d": ("chi3d", {}),
    "humansc3d": ("humansc3d", {}),
    "behave": ("behave", {}),
    "human4d": ("human4d", {}),
    "spec": ("spec", {}),
}


@dataclasses.dataclass(frozen=True)
class Case:
    tree: str  # key of TREES
    params: dict  # overrides of DEFAULT_PARAMS (the runtime's sake only)


CASES = {
    "h36m": Case("h36m", {}),
    "h36m_alljoints": Case("h36m", {}),
    "tdhp": Case("tdhp", {}),
    "tdhp_full": Case("tdhp", {"cameras": [0, 2, 3, 9]}),  # the tree has cameras 0..9; each kind of camera
    "tdhp_test": Case("tdhp_test", {}),
    "muco_3dhp": Case("tdhp", {"n_composites": 6}),  # posepile's 200000 would take hours
    "mupots": Case("mupots", {}),
    "surreal": Case("surreal", {}),
    "tdpw": Case("tdpw", {}),
    "mpii": Case("mpii", {}),
    "agora": Case("agora", {"resolution": "1280x720", "dataframes": [0, 1]}),  # what the fixture writes
    "coco": Case("coco", {}),
    "bedlam": Case("bedlam", {}),
    "aist": Case("aist", {"cameras": ["c01", "c04", "c09"]}),  # 3 of the 9 views: a few seconds
    "panoptic": Case("panoptic", {}),
    "humbi": Case("humbi", {}),
    "hspace": Case("hspace", {}),
    "tdpeople": Case("tdpeople", {}),
    "jta": Case("jta", {}),
    "totalcapture": Case("totalcapture", {"cameras": [1, 4, 7]}),  # 3 of the 8 cameras: about a second
    "rich": Case("rich", {}),
    "sailvos": Case("sailvos", {}),
    "umpm": Case("umpm", {}),
    "bmhad": Case("bmhad", {}),
    "mads": Case("mads", {}),
    "tdoh": Case("tdoh", {}),
    "bml_movi": Case("bml_movi", {}),
    "gpa": Case("gpa", {}),
    "aspset": Case("aspset", {}),
    "ikea": Case("ikea", {}),
    "fit3d": Case("fit3d", {}),
    "chi3d": Case("chi3d", {}),
    "humansc3d": Case("humansc3d", {}),
    "behave": Case("behave", {}),
    "human4d": Case("human4d", {}),
    "spec": Case("spec", {}),
}
FIXTURE_SEED = 0


@dataclasses.dataclass
class Converted:
    raw: Path
    cache: Path
    counts: dict
    dropped: list  # what instances() reported


class Builds:
    """Fixture trees and conversions, each made once and on first use."""

    def __init__(self, tmp_path_factory):
        self.tmp = tmp_path_factory
        self.trees: dict[str, Path] = {}
        self.conversions: dict[str, Converted] = {}

    def raw(self, name: str) -> Path:
        key = CASES[name].tree
        if key not in self.trees:
            writer, options = TREES[key]
            self.trees[key] = datasets.get(writer).make_fixture(self.tmp.mktemp(f"{key}_raw"), FIXTURE_SEED,
                                                                 **options)
        return self.trees[key]

    def converted(self, name: str) -> Converted:
        if name not in self.conversions:
            from posebank.pipeline.run import convert

            raw = self.raw(name)
            out = self.tmp.mktemp(f"{name}_cache") / name
            counts = convert(name, raw, out, CASES[name].params, progress=False)
            dropped: list = []
            datasets.get(name).instances(raw, CASES[name].params, dropped)
            self.conversions[name] = Converted(raw, out, counts, dropped)
        return self.conversions[name]
