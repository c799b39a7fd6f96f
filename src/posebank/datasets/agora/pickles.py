"""Reading AGORA's pickles without running code: the pandas dataframes and the per-person body-model fits.

Dataframes (``SMPL/`` and ``SMPLX/<section>_withjv.pkl``) are pandas ``to_pickle`` files. They are loaded through
:func:`posebank.core.safe_pickle.load` admitting exactly the classes a DataFrame of plain columns pickles to
(:data:`DATAFRAME_CLASSES`): the frame, its block manager and blocks, its indexes, and (pandas >= 2 with string
columns) the string array; numpy's and the builtins' classes come with ``safe_pickle`` itself.

Fits (``gt_path_smpl`` / ``gt_path_smplx`` with ``.obj`` -> ``.pkl``) are plain ``pickle.dump`` files of a dict,
which is how AGORA's own tools read them (``pickle.load(open(path, 'rb'))``: pixelite1201/agora_evaluation,
agora_evaluation/get_joints_verts_from_dataframe.py). The SMPL-X fits hold numpy arrays (posepile reads
``data[x][0].astype(np.float32)``: isarandi/posepile, src/posepile/ds/agora/add_parametric.py,
``load_smplx_params``); the SMPL fits hold torch tensors (``.detach().cpu().numpy()`` in the same file's
``load_smpl_params``; ReFit loads them with a ``MappedUnpickler`` that maps the storages to the CPU:
yufu-wang/ReFit, lib/datasets/preprocess/agora.py). A tensor pickles as ``torch._utils._rebuild_tensor_v2(storage,
offset, size, stride, requires_grad, hooks)`` whose storage pickles as ``torch.storage._load_from_bytes(b)``, ``b``
being a legacy ``torch.save`` stream (magic number, protocol 1001, system info, the storage as a *persistent id*
``('storage', <torch.FloatStorage>, key, location, numel, view)``, the storage keys, then per storage an int64
element count and the raw little-endian data).

:func:`load_fit` reads those with a subclass of safe_pickle's restricted unpickler in which the torch names are
*replaced* by posebank's own numpy implementations (:func:`rebuild_tensor`, :func:`storage_from_bytes`): torch is
never imported and nothing a file names is called except numpy's array reconstruction. A tensor comes back as a
numpy array of its dtype, whatever device it was saved from (the location is ignored, as ReFit maps it to the CPU).
"""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np

from posebank.core import safe_pickle
from posebank.core.errors import RawFileError

# pandas 1.x, as the release's dataframes were written in 2021 (DataFrame and BlockManager by their defining
# modules, indexes through pandas.core.indexes.base._new_Index, block placements as slices)
LEGACY_PANDAS = frozenset({
    ("pandas.core.frame", "DataFrame"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.range", "RangeIndex"),
    ("builtins", "slice"),
})
# what a current pandas (2.x, 3.x) writes for the same frame (a file re-saved with it, the fixture's)
CURRENT_PANDAS = frozenset({
    ("pandas", "DataFrame"), ("pandas", "Index"), ("pandas", "RangeIndex"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas", "StringDtype"), ("pandas.arrays", "StringArray"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
    ("builtins", "slice"),
})
DATAFRAME_CLASSES = LEGACY_PANDAS | CURRENT_PANDAS

# ------------------------------------------------------------------------------------------- torch
REBUILD_TENSOR = ("torch._utils", "_rebuild_tensor_v2")
LOAD_FROM_BYTES = ("torch.storage", "_load_from_bytes")

class _StorageKind:
    """What a storage class name stands for: its element dtype (never a torch class)."""

    def __init__(self, name: str, dtype: np.dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self) -> str:
        return self.name


# the storage classes of legacy torch.save streams (torch 1.x; torch.cuda's when the fit was saved from a GPU),
# each standing for the dtype of its elements
STORAGE_KINDS = {
    (module, f"{kind}Storage"): _StorageKind(f"{module}.{kind}Storage", np.dtype(dtype))
    for module in ("torch", "torch.cuda")
    for kind, dtype in (("Float", "<f4"), ("Double", "<f8"), ("Half", "<f2"), ("Long", "<i8"), ("Int", "<i4"),
                        ("Short", "<i2"), ("Char", "i1"), ("Byte", "u1"), ("Bool", "?"))
}
STORAGE_CLASSES = frozenset(STORAGE_KINDS)
FIT_CLASSES = frozenset({REBUILD_TENSOR, LOAD_FROM_BYTES})
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch/serialization.py MAGIC_NUMBER
LEGACY_PROTOCOL = 1001


class _Unpickler(safe_pickle._Restricted):
    """safe_pickle's restricted unpickler whose admitted names may be replaced by local functions (never imported)
    and which may resolve persistent ids (torch's storages)."""

    def __init__(self, file, allowed: frozenset, where, substitutes: dict, persistent=None, **kw):
        super().__init__(file, allowed | frozenset(substitutes), where, **kw)
        self._substitutes = substitutes
        self._persistent = persistent

    def find_class(self, module: str, name: str):
        if (module, name) in self._substitutes:
            return self._substitutes[(module, name)]
        return super().find_class(module, name)

    def persistent_load(self, pid):
        if self._persistent is None:
            return super().persistent_load(pid)
        return self._persistent(pid)


def rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """numpy stand-in for ``torch._utils._rebuild_tensor_v2``: the strided view of ``storage`` (a 1-D array), copied.
    ``requires_grad`` and empty ``backward_hooks`` are accepted and dropped (a fit's values are all that is read)."""
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise ValueError(f"tensor storage is {type(storage).__name__}, not a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    offset = int(storage_offset)
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size + stride):
        raise ValueError(f"tensor of size {size}, stride {stride}, offset {offset} is malformed")
    if backward_hooks:
        raise ValueError("tensor has backward hooks (code): not loaded")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise ValueError(f"tensor of size {size}, stride {stride}, offset {offset} exceeds its storage of "
                         f"{storage.size} elements")
    item = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=[s * item for s in stride])
    return np.array(view, copy=True)


def _plain(stream, where):
    """One pickle of plain data (no class at all) from ``stream``."""
    return _Unpickler(stream, frozenset(), where, {}).load()


def storage_from_bytes(where, data: bytes) -> np.ndarray:
    """numpy stand-in for ``torch.storage._load_from_bytes``: the storage of a legacy ``torch.save`` stream as a
    1-D array (the layout of torch/serialization.py ``_legacy_save``; torch 1.x wrote it for every pickled
    tensor). Only storage classes are admitted in it."""
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError(f"tensor storage data is {type(data).__name__}, not bytes")
    f = io.BytesIO(bytes(data))
    if _plain(f, where) != LEGACY_MAGIC or _plain(f, where) != LEGACY_PROTOCOL:
        raise ValueError("tensor storage is not a legacy torch.save stream (magic number / protocol 1001)")
    info = _plain(f, where)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise ValueError(f"tensor storage was saved on a machine that is not little-endian ({info!r})")
    roots: dict[str, list] = {}  # key -> [kind, numel, array]

    def persistent(pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageKind) and isinstance(pid[2], str)):
            raise ValueError(f"unknown persistent object {pid!r:.80}")
        kind, key, numel = pid[1], pid[2], int(pid[4])
        view = pid[5] if len(pid) == 6 else None
        root = roots.setdefault(key, [kind, numel, None])
        if root[0] is not kind or root[1] != numel:
            raise ValueError(f"storage {key} is declared twice differently")
        if view is None:
            return ("root", key)
        view_key, offset, view_numel = view
        return ("view", key, int(offset), int(view_numel))

    ref = _Unpickler(f, frozenset(), where, dict(STORAGE_KINDS), persistent=persistent).load()
    keys = _plain(f, where)
    if not isinstance(keys, list) or set(keys) != set(roots):
        raise ValueError(f"storage keys {keys!r:.80} do not match the storages of the stream")
    for key in keys:
        kind, numel, _ = roots[key]
        head = f.read(8)
        if len(head) != 8 or struct.unpack("<q", head)[0] != numel:
            raise ValueError(f"storage {key}: element count missing or not {numel}")
        raw = f.read(numel * kind.dtype.itemsize)
        if len(raw) != numel * kind.dtype.itemsize:
            raise ValueError(f"storage {key}: data cut short")
        roots[key][2] = np.frombuffer(raw, kind.dtype).copy()
    if not isinstance(ref, tuple) or ref[0] not in ("root", "view"):
        raise ValueError("the stream holds no storage")
    array = roots[ref[1]][2]
    if ref[0] == "view":
        offset, numel = ref[2], ref[3]
        if offset < 0 or offset + numel > array.size:
            raise ValueError("storage view exceeds its storage")
        array = array[offset:offset + numel]
    return array


def load_fit(path, data: bytes | None = None) -> dict:
    """One person's fit pickle as a dict; torch tensors come back as numpy arrays. Errors name the file."""
    where = Path(path)
    try:
        raw = where.read_bytes() if data is None else data
    except OSError as e:
        raise RawFileError(where, f"unreadable ({e.strerror or e})") from None
    if raw[:4] == b"PK\x03\x04":
        raise RawFileError(where, "a torch.save zip archive, not a plain pickle as AGORA's fits are")
    substitutes = {REBUILD_TENSOR: rebuild_tensor, LOAD_FROM_BYTES: lambda b: storage_from_bytes(where, b)}
    allowed = safe_pickle.NUMPY | safe_pickle.BUILTINS
    try:
        out = _Unpickler(io.BytesIO(raw), allowed, where, substitutes, encoding="latin1").load()
    except RawFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError,
            KeyError, MemoryError, struct.error) as e:
        raise RawFileError(where, f"not a readable pickle, truncated or corrupt ({type(e).__name__}: {e})") from None
    if not isinstance(out, dict):
        raise RawFileError(where, f"holds a {type(out).__name__}, not the dict of a body-model fit")
    return out


def load_dataframe(path):
    """A ``*_withjv.pkl`` dataframe, through :func:`posebank.core.safe_pickle.load` with the pandas classes of
    :data:`DATAFRAME_CLASSES`."""
    import pandas as pd

    df = safe_pickle.load(path, allowed=DATAFRAME_CLASSES)
    if not isinstance(df, pd.DataFrame):
        raise RawFileError(path, f"holds a {type(df).__name__}, not a pandas DataFrame")
    return df
