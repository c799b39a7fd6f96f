"""The dataset registry: name -> module with INFO, JOINT_INFO, DEFAULT_PARAMS, check_layout, instances,
make_fixture."""

from __future__ import annotations

import importlib
from types import ModuleType

from posebank.datasets.base import DatasetError, DatasetInfo, RawFileError, RawLayoutError

# every dataset posebank knows of; modules are imported lazily
IMPLEMENTED = {
    "h36m": "posebank.datasets.h36m",
    "tdhp": "posebank.datasets.tdhp",
    "tdhp_full": "posebank.datasets.tdhp_full",
    "tdhp_test": "posebank.datasets.tdhp_test",
    "muco_3dhp": "posebank.datasets.muco",
    "mupots": "posebank.datasets.mupots",
    "surreal": "posebank.datasets.surreal",
}
PLANNED = ("tdpw", "panoptic", "aist", "agora", "bedlam", "coco", "mpii")

__all__ = ["DatasetError", "DatasetInfo", "RawFileError", "RawLayoutError", "get", "names", "status"]


def names() -> list[str]:
    return list(IMPLEMENTED)


def get(name: str) -> ModuleType:
    if name not in IMPLEMENTED:
        known = ", ".join(IMPLEMENTED)
        extra = " (planned, not implemented yet)" if name in PLANNED else ""
        raise KeyError(f"unknown dataset {name!r}{extra}; implemented: {known}")
    return importlib.import_module(IMPLEMENTED[name])


def status() -> list[dict]:
    rows = []
    for name in IMPLEMENTED:
        info: DatasetInfo = get(name).INFO
        rows.append({"name": name, "status": "implemented", "full_name": info.full_name,
                     "joints": get(name).JOINT_INFO.n_joints, "homepage": info.homepage})
    rows += [{"name": n, "status": "planned", "full_name": "", "joints": None, "homepage": ""}
             for n in PLANNED if n not in IMPLEMENTED]
    return rows
