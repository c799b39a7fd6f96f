"""The dataset registry: name -> dataset module (see :mod:`posebank.datasets.base` for the contract).

Each dataset lives in a family folder, ``src/posebank/datasets/<family>/``, which holds its readers, its fixture
writer and the datasets converted from the same release (the MPI-INF-3DHP family: tdhp, tdhp_full, tdhp_test,
muco_3dhp). A dataset's DVC stages depend on its family folder (:func:`folder`) and on the shared top-level
modules of this package (``base``, ``c3d``, ``frames``, ``matlab``, ``sampling``); a dataset module therefore imports
nothing from another family's folder. Modules are imported lazily.
"""

from __future__ import annotations

import importlib
from pathlib import PurePosixPath
from types import ModuleType

from posebank.core.errors import UsageError
from posebank.datasets.base import DatasetError, DatasetInfo, RawFileError, RawLayoutError

# every dataset posebank implements: name -> module
IMPLEMENTED = {
    "h36m": "posebank.datasets.h36m",
    "tdhp": "posebank.datasets.tdhp.train",
    "tdhp_full": "posebank.datasets.tdhp.full",
    "tdhp_test": "posebank.datasets.tdhp.test",
    "muco_3dhp": "posebank.datasets.tdhp.muco",
    "mupots": "posebank.datasets.mupots",
    "surreal": "posebank.datasets.surreal",
    "h36m_alljoints": "posebank.datasets.h36m.alljoints",
    "tdpw": "posebank.datasets.tdpw",
    "coco": "posebank.datasets.coco",
    "mpii": "posebank.datasets.mpii",
    "agora": "posebank.datasets.agora",
    "bedlam": "posebank.datasets.bedlam",
    "aist": "posebank.datasets.aist",
    "panoptic": "posebank.datasets.panoptic",
    "humbi": "posebank.datasets.humbi",
    "hspace": "posebank.datasets.hspace",
    "tdpeople": "posebank.datasets.tdpeople",
    "jta": "posebank.datasets.jta",
    "totalcapture": "posebank.datasets.totalcapture",
    "rich": "posebank.datasets.rich",
    "sailvos": "posebank.datasets.sailvos",
    "umpm": "posebank.datasets.umpm",
    "bmhad": "posebank.datasets.bmhad",
    "mads": "posebank.datasets.mads",
    "tdoh": "posebank.datasets.tdoh",
    "bml_movi": "posebank.datasets.bml_movi",
    "gpa": "posebank.datasets.gpa",
    "aspset": "posebank.datasets.aspset",
    "ikea": "posebank.datasets.ikea",
    "fit3d": "posebank.datasets.imar.fit3d",
    "chi3d": "posebank.datasets.imar.chi3d",
    "humansc3d": "posebank.datasets.imar.humansc3d",
    "behave": "posebank.datasets.behave",
    "human4d": "posebank.datasets.human4d",
    "spec": "posebank.datasets.spec",
}
# the rest of huge8's training sources, not implemented yet (none left)
PLANNED: tuple[str, ...] = ()
# the modules of this package every dataset shares (its stages depend on them as well as on its family folder)
SHARED_MODULES = ("base", "c3d", "frames", "matlab", "sampling")
PACKAGE_FOLDER = "src/posebank/datasets"  # relative to the repository root

__all__ = ["DatasetError", "DatasetInfo", "RawFileError", "RawLayoutError", "family", "folder", "get", "names",
           "status"]


def names() -> list[str]:
    return list(IMPLEMENTED)


def _check(name: str) -> str:
    if name not in IMPLEMENTED:
        planned = " (planned, not implemented yet)" if name in PLANNED else ""
        raise UsageError(f"dataset {name!r}", f"unknown{planned}; implemented: {', '.join(IMPLEMENTED)}")
    return IMPLEMENTED[name]


def get(name: str) -> ModuleType:
    """The dataset module registered as ``name``; UsageError for an unknown name."""
    return importlib.import_module(_check(name))


def family(name: str) -> str:
    """The family (folder name) of dataset ``name``: ``tdhp`` for tdhp_full, ``h36m`` for h36m."""
    return _check(name).split(".")[2]


def folder(name: str) -> str:
    """The family folder of dataset ``name`` relative to the repository root, e.g. ``src/posebank/datasets/tdhp``
    (what the dataset's DVC stages depend on, besides :data:`SHARED_MODULES`)."""
    return str(PurePosixPath(PACKAGE_FOLDER) / family(name))


def status() -> list[dict]:
    rows = []
    for name in IMPLEMENTED:
        module = get(name)
        info: DatasetInfo = module.INFO
        rows.append({"name": name, "status": "implemented", "full_name": info.full_name,
                     "joints": module.JOINT_INFO.n_joints, "homepage": info.homepage})
    rows += [{"name": n, "status": "planned", "full_name": "", "joints": None, "homepage": ""}
             for n in PLANNED if n not in IMPLEMENTED]
    return rows
