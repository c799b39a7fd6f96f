"""Which torch device to run a model on: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:N``."""

from __future__ import annotations

import torch

from posebank.core.errors import DeviceError


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The torch device for ``name``; asking for a CUDA device that is not there is an error, not a fallback."""
    if isinstance(name, torch.device):
        spec = str(name)
    else:
        spec = str(name).strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as e:
        raise DeviceError(f"device {name!r}", "unknown; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from e
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise DeviceError(f"device {name!r}", "unsupported; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"device {name!r}", "asked for, but CUDA is not available here (no GPU, no driver, or a CPU-only torch "
            "build); use device 'auto' or 'cpu'")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise DeviceError(f"device {name!r}", f"asked for, but only {count} CUDA device(s) are visible")
    return device
