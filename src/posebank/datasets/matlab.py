"""Reading MATLAB files: one loader for the MAT v5 files (scipy.io) and the v7.3 files (HDF5, h5py) of the datasets.

:func:`load_mat` returns ``{variable: value}`` in MATLAB's own orientation whatever the file version: a v7.3 file
stores arrays transposed (h5py shows MATLAB's (2, 17, 1, T) as (T, 1, 17, 2)) and is transposed back, so a reader
sees the same shapes as in MATLAB and as scipy gives for a v5 file. Values of a v5 file are what
``scipy.io.loadmat`` returns with its defaults (cell arrays are object arrays, structs record arrays); in a v7.3
file numeric and logical arrays become numpy arrays, char arrays strings, cell arrays object arrays and structs
dicts of their fields.

Every failure names the file (:class:`RawFileError`): a missing file, a truncated or corrupt one, one that is not a
MATLAB file at all, and a required variable that the file does not hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from posebank.datasets.base import RawFileError

__all__ = ["load_mat", "mat_version", "write_mat73"]

MAT73_HEADER = "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 ."
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_SHOWN_NAMES = 12  # variables listed in a "no such variable" message


def mat_version(path) -> str:
    """``"7.3"`` for an HDF5-based MAT file, ``"5"`` for a level 5 MAT file (v5 to v7), ``"4"`` for a level 4 file;
    RawFileError when the file cannot be read or is too short to be any of them."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(128)
            f.seek(512)
            at512 = f.read(8)
    except OSError as e:
        raise RawFileError(path, f"cannot read ({e.strerror or e})") from e
    if head.startswith(HDF5_SIGNATURE) or at512 == HDF5_SIGNATURE:
        return "7.3"
    if len(head) >= 4 and 0 in head[:4]:  # a level 4 file starts with a type code holding zero bytes
        return "4"
    if len(head) == 128 and head[126:128] in (b"IM", b"MI"):
        return "7.3" if head[124:126] in (b"\x00\x02", b"\x02\x00") else "5"
    raise RawFileError(path, "not a MATLAB file (no MAT-file header), or truncated")


def _names_shown(names: Iterable[str]) -> str:
    names = sorted(names)
    shown = names[:_SHOWN_NAMES]
    more = f" and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
    return f"{shown}{more}"


def load_mat(path, variables: Iterable[str] | None = None, what: str = "file", optional: Iterable[str] = ()
             ) -> dict:
    """The variables of a MATLAB file (v5 or v7.3), in MATLAB's orientation.

    ``variables``: the names that must be present (only these and ``optional`` are read); None reads every
    variable. ``what`` says what the file is for the messages (``"annotation file"``). Raises RawFileError naming
    the file when it is missing, unreadable (truncated, corrupt, not a MATLAB file) or lacks a required variable.
    """
    path = Path(path)
    if not path.is_file():
        raise RawFileError(path, f"{what} not found")
    required = None if variables is None else list(dict.fromkeys(variables))
    wanted = None if required is None else list(dict.fromkeys([*required, *optional]))
    version = mat_version(path)
    if version == "7.3":
        values, present = _load_v73(path, wanted, what)
    else:
        values, present = _load_v5(path, wanted, what)
    missing = [name for name in (required or []) if name not in values]
    if missing:
        raise RawFileError(path, f"no {missing[0]!r} variable (has {_names_shown(present())})")
    return values


def _unreadable(path: Path, what: str, e: Exception) -> RawFileError:
    detail = f"{type(e).__name__}: {e}"
    return RawFileError(path, f"unreadable {what}: not a MATLAB file, or truncated or corrupt ({detail})")


# ------------------------------------------------------------------------------------------- v5 (scipy)
def _load_v5(path: Path, wanted, what: str):
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path), variable_names=wanted)
    except Exception as e:  # scipy raises assorted errors on truncated or foreign files
        raise _unreadable(path, what, e) from e
    values = {k: v for k, v in mat.items() if not k.startswith("__")}

    def present():
        try:
            return [name for name, _shape, _cls in scipy.io.whosmat(str(path))]
        except Exception:  # the listing is only for the message
            return list(values)

    return values, present


# ------------------------------------------------------------------------------------------- v7.3 (h5py)
def _load_v73(path: Path, wanted, what: str):
    import h5py

    try:
        with h5py.File(path, "r") as f:
            names = [k for k in f.keys() if not k.startswith("#")]  # "#refs#" holds the cells' contents
            values = {name: _h5_value(f, f[name]) for name in names if wanted is None or name in wanted}
    except (OSError, KeyError, ValueError, RuntimeError) as e:  # h5py: truncated files, broken references
        raise _unreadable(path, what, e) from e
    return values, lambda: names


def _matlab_class(node) -> str:
    cls = node.attrs.get("MATLAB_class", b"")
    return cls.decode() if isinstance(cls, bytes) else str(cls)


def _h5_value(f, node):
    """One variable of a v7.3 file as MATLAB holds it (arrays transposed back to MATLAB's order)."""
    import h5py

    if isinstance(node, h5py.Group):  # a struct (or an object): its fields
        return {k: _h5_value(f, node[k]) for k in node.keys()}
    cls = _matlab_class(node)
    data = node[()]
    if node.attrs.get("MATLAB_empty", 0):
        shape = tuple(int(n) for n in np.asarray(data).ravel()) if np.asarray(data).size else (0, 0)
        return np.zeros(shape, np.float64)
    if cls == "cell" or (isinstance(data, np.ndarray) and data.dtype == object):
        cells = np.empty(data.shape, object)
        for idx, ref in np.ndenumerate(data):
            cells[idx] = _h5_value(f, f[ref])
        return cells.T
    arr = np.asarray(data)
    if cls == "char":  # UTF-16 code units; a row of text becomes a str
        return "".join(map(chr, arr.ravel())) if arr.ndim <= 2 and min(arr.shape, default=0) <= 1 else arr.T
    if cls == "logical":
        return arr.T.astype(bool)
    if arr.dtype.names and {"real", "imag"} <= set(arr.dtype.names):  # complex numbers
        arr = arr["real"] + 1j * arr["imag"]
    return arr.T


def write_mat73(path, arrays: dict[str, np.ndarray]) -> None:
    """Write numeric arrays (given in MATLAB's orientation) into a MATLAB v7.3 file the way MATLAB does: an HDF5
    file behind a 512-byte MAT header, one double dataset per variable with its ``MATLAB_class``."""
    import h5py

    path = Path(path)
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr in arrays.items():
            d = f.create_dataset(name, data=np.asarray(arr, np.float64).T)
            d.attrs["MATLAB_class"] = np.bytes_("double")
    header = MAT73_HEADER.ljust(116).encode("ascii") + b" " * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header.ljust(512, b"\x00"))
