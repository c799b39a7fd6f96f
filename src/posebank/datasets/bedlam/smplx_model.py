"""BEDLAM's SMPL-X joints: :mod:`posebank.core.smplx_model` (shared with RICH, which poses SMPL-X fits too)."""

from posebank.core.smplx_model import MODEL_FILE, N_JOINTS, SmplxJoints, model_path

__all__ = ["MODEL_FILE", "N_JOINTS", "SmplxJoints", "model_path"]
