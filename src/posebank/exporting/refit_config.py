"""ReFit's training mixes and ``data_config.py`` for a set of spin exports (:mod:`posebank.exporting.spin`).

Consumer: yufu-wang/ReFit@3167cbf ``configs/config.yaml``, ``configs/config_bedlam.yaml``, ``configs/config_all.yaml``
(copied verbatim, a comment header added: which of their DATASET.LIST were not exported) and ``data_config.py``
(the same names and structure; ``*_ROOT`` point at the exports' image roots, ``DATASET_NPZ_PATH`` at
``<out>/dataset_extras``, a folder of symbolic links to the exported npz files (copies where links cannot be
made), ``DATASET_FILES`` as ReFit's, ``DATASET_FOLDERS`` per dataset key since 3dpw, 3dpw_test and
3dpw_test_sub are three exports with three image roots where ReFit has one ``PW3D_ROOT``). The SMPL files,
regressors and occluders stay ReFit's relative ``data/...`` paths (they are not datasets).

``exports`` maps a ReFit dataset key (``coco``, ``mpii``, ``3dpw``, ``h36m``, ``mpi-inf-3dhp``, ``bedlam``,
``agora``, ``3dpw_test``, ``3dpw_test_sub``) or its npz file name (``coco_2014_eft.npz`` ...) to a spin export
folder (its manifest names the npz; the image root is ``<folder>/images``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from posebank.core.errors import UsageError
from posebank.exporting.common import read_manifest
from posebank.exporting.spin import IMAGE_ROOT

# ReFit data_config.py DATASET_FILES: (eval, train) key -> file name
EVAL_FILES = {"3dpw_test": "3dpw_test.npz", "3dpw_test_sub": "3dpw_test_sub.npz"}
TRAIN_FILES = {"coco": "coco_2014_eft.npz", "mpii": "mpii_train_eft.npz", "3dpw": "3dpw_train.npz",
               "h36m": "h36m_train.npz", "mpi-inf-3dhp": "mpii3d_train.npz", "bedlam": "bedlam_train.npz",
               "agora": "agora_train.npz"}
KEY_FILES = {**EVAL_FILES, **TRAIN_FILES}
# data_config.py's root variables and the keys of DATASET_FOLDERS they serve
ROOTS = {"H36M_ROOT": ["h36m"], "MPII_ROOT": ["mpii"], "COCO_ROOT": ["coco"], "MPI_INF_3DHP_ROOT": ["mpi-inf-3dhp"],
         "PW3D_ROOT": ["3dpw", "3dpw_test", "3dpw_test_sub"], "BEDLAM_ROOT": ["bedlam"], "AGORA_ROOT": ["agora"]}
FOLDER_ROOT = {"h36m": "H36M_ROOT", "mpii": "MPII_ROOT", "mpi-inf-3dhp": "MPI_INF_3DHP_ROOT", "coco": "COCO_ROOT",
               "3dpw": "PW3D_ROOT", "3dpw_test": "PW3D_ROOT", "3dpw_test_sub": "PW3D_ROOT",
               "bedlam": "BEDLAM_ROOT", "agora": "AGORA_ROOT"}

_TRAIN = """TRAIN:
  RESUME: None
  LOAD_LATEST: True
  BATCH_SIZE: 64
  LR: 1e-4
  START_EPOCH: 0
  END_EPOCH: 100
  SUMMARY_STEP: 10
  VALID_STEP: 100
  SAVE_STEP: {save}
  MAX_STEP: {max_step}
  GAMMA: 0.85
  UPDATE_ITER: 5
  CLIP_GRADIENT: True
  CLIP_NORM: 4.0
  MASKED_PROB: 0.25
  WD: 0.0
  OPT: 'Adam'
  """
_MODEL = """MODEL:
  RADIUS: 3
  POINT_DIM: 1
  LOCAL_DIM: 256
  HIDDEN_DIM: 32
  CORR_LAYER: 2
  REG_LAYER: 1
  BACKBONE: 'hrnet_w48'
  PTYPE: 'marker'
  VERSION: 'refit'
"""
_HEAD = """LOGDIR: ''
DEVICE: 'cuda'
OUTPUT_DIR: 'results'
NUM_WORKERS: 12
SEED_VALUE: 0
IMG_RES: 256

DATASET:
  LIST: {list}
  PARTITION: {partition}

LOSS:
  KPT2D: 5.0
  KPT3D: 5.0
  SMPL: 1.0
{v3d}

"""


def _config(lst, partition, v3d, save, max_step, name, comment) -> str:
    return (_HEAD.format(list=lst, partition=partition, v3d="  V3D: 1.0\n" if v3d else "")
            + _TRAIN.format(save=save, max_step=max_step) + "\n\n" + _MODEL
            + f"\nEXP_NAME: '{name}'\nCOMMENT:\n  '{comment}'\n\n\n")


# ReFit's three configs, byte for byte (configs/*.yaml at 3167cbf)
CONFIGS = {
    "config.yaml": (["coco", "mpii", "mpi-inf-3dhp", "h36m", "3dpw"], _config(
        "['coco', 'mpii', 'mpi-inf-3dhp', 'h36m', '3dpw']", "[0.25, 0.05, 0.1, 0.4, 0.2]", False, 2000, 80000,
        "refit", "Default ReFit configs")),
    "config_bedlam.yaml": (["bedlam", "agora"], _config(
        "['bedlam', 'agora']", "[0.95, 0.05]", True, 5000, 200000, "refit_bedlam",
        "Default ReFit configs, bedlam+agora, + vertice loss")),
    "config_all.yaml": (["bedlam", "agora", "coco", "h36m", "3dpw"], _config(
        "['bedlam', 'agora', 'coco', 'h36m', '3dpw']", "[0.50, 0.05, 0.05, 0.20, 0.20]", True, 5000, 250000,
        "refit_all", "Default ReFit configs, bedlam+real dataset + V3D loss")),
}


def _resolve(exports: dict) -> dict[str, tuple[Path, str]]:
    """ReFit key -> (export folder, npz file name), checked."""
    by_file = {f: k for k, f in KEY_FILES.items()}
    out = {}
    for key, folder in exports.items():
        k = by_file.get(key, key)
        if k not in KEY_FILES:
            raise UsageError(f"export {key!r}", f"not a ReFit dataset key or file; known: {', '.join(KEY_FILES)}")
        folder = Path(folder)
        m = read_manifest(folder)
        if m.get("export") != "spin":
            raise UsageError(folder, f"is a {m.get('export')!r} export, not a spin one")
        file = m["summary"]["file"]
        if file != KEY_FILES[k]:
            raise UsageError(folder, f"holds {file}, ReFit's {k!r} reads {KEY_FILES[k]}")
        if not (folder / file).is_file() or not (folder / IMAGE_ROOT).is_dir():
            raise UsageError(folder, f"incomplete spin export (no {file} or {IMAGE_ROOT}/)")
        if k in out:
            raise UsageError(f"export {key!r}", f"{k} given twice")
        out[k] = (folder.resolve(), file)
    return out


def _data_config(npz_dir: Path, folders: dict[str, str], roots: dict[str, str]) -> str:
    lines = ['"""', "This file contains definitions of useful data stuctures and the paths",
             "for the datasets and data files necessary to run the code.",
             "Written by posebank (posebank.exporting.refit_config) after ReFit's data_config.py",
             "(yufu-wang/ReFit@3167cbf):",
             "the *_ROOT point at posebank's spin exports (their images/ folders), '' where not exported.",
             '"""', "from os.path import join", ""]
    lines += [f"{name} = {roots.get(name, '')!r}" for name in ROOTS]
    lines += ["", "# Output folder to save test/train npz files", f"DATASET_NPZ_PATH = {str(npz_dir)!r}", "", "",
              "# Path to test/train npz files",
              "DATASET_FILES = [ {'3dpw_test': join(DATASET_NPZ_PATH, '3dpw_test.npz'),",
              "                   '3dpw_test_sub': join(DATASET_NPZ_PATH, '3dpw_test_sub.npz'),",
              "                   'multiview_examples': 'data/examples/multiview_examples/multiview_examples.npz',",
              "                  },", ""]
    lines += [("                  {" if i == 0 else "                   ") + f"{k!r}: join(DATASET_NPZ_PATH, {f!r}),"
              for i, (k, f) in enumerate(TRAIN_FILES.items())]
    lines += ["                  }", "                ]", "", "DATASET_FOLDERS = {"]
    lines += [f"    {k!r}: {folders[k]!r},  # {FOLDER_ROOT[k]}" for k in FOLDER_ROOT]
    lines += ["    'multiview_examples': '.'", "}", "", "",
              "PASCAL_OCCLUDERS = 'data/dataset_extras/pascal_occluders.pkl'",
              "JOINT_REGRESSOR_TRAIN_EXTRA = 'data/smpl/J_regressor_extra.npy'",
              "JOINT_REGRESSOR_H36M = 'data/smpl/J_regressor_h36m.npy'",
              "SMPL_MEAN_PARAMS = 'data/smpl/smpl_mean_params.npz'", "SMPL_MODEL_DIR = 'data/smpl'", ""]
    return "\n".join(lines)


def write_refit_config(exports: dict, out: Path, at: Path | None = None) -> dict:
    """Write ``config.yaml``, ``config_bedlam.yaml``, ``config_all.yaml``, ``data_config.py`` and
    ``dataset_extras/`` (links to the npz files) into the folder ``out``; returns what was written and what each
    mix lacks. ``at``: where the folder will be (``out`` is a temporary folder renamed there): the paths written
    into data_config.py and the links are made for it."""
    resolved = _resolve(exports)
    out = Path(out)
    at = Path(at if at is not None else out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    npz_dir = out / "dataset_extras"
    npz_dir.mkdir(exist_ok=True)
    linked = {}
    for folder, file in sorted(resolved.values()):
        target, dest = folder / file, npz_dir / file
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        try:  # relative to where the folder will be: it survives moving the exports folder whole
            os.symlink(os.path.relpath(target, at / "dataset_extras"), dest)
            linked[file] = "link"
        except OSError:
            shutil.copyfile(target, dest)
            linked[file] = "copy"
    folders = {k: str(resolved[k][0] / IMAGE_ROOT) if k in resolved else "" for k in FOLDER_ROOT}
    roots = {}
    for name, keys in ROOTS.items():
        present = [k for k in keys if k in resolved]
        if present:
            roots[name] = folders[present[0]]
    (out / "data_config.py").write_text(_data_config(at / "dataset_extras", folders, roots))
    mixes = {}
    for file, (datasets, text) in CONFIGS.items():
        missing = [d for d in datasets if d not in resolved]
        header = ("# written by posebank from ReFit's configs/" + file + " (yufu-wang/ReFit@3167cbf), unchanged below\n"
                  + (f"# NOT EXPORTED (BaseDataset will fail to load them): {', '.join(missing)}\n" if missing
                     else "# every dataset of DATASET.LIST is exported\n"))
        (out / file).write_text(header + text)
        mixes[file] = {"datasets": datasets, "missing": missing}
    return {"configs": mixes, "data_config": "data_config.py", "npz_folder": "dataset_extras", "npz": linked,
            "roots": {k: v for k, v in folders.items() if v}, "exports": {k: str(v[0]) for k, v in resolved.items()}}

