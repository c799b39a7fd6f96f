"""Loading the pickles that datasets ship (3DPW's sequence files, AGORA's dataframes and fits) without running code.

A pickle names the classes it is rebuilt from, and unpickling imports and calls them: a hostile file runs
whatever it names (``os.system``, ``builtins.eval``). :func:`load` admits only the classes a dataset's files really
hold, listed by the caller (:data:`NUMPY` for arrays, plus e.g. pandas' or torch's rebuild functions for AGORA);
anything else is refused with :class:`~posebank.core.errors.RawFileError` naming the file and the class, before
it is imported. posebank's own formats never use pickle (HDF5, JSON, npz read with ``allow_pickle=False``).
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
from collections.abc import Iterable
from pathlib import Path

from posebank.core.errors import RawFileError

# what numpy arrays and scalars pickle to (numpy 1.x and 2.x module names), and the builtins plain data needs
NUMPY = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
})
BUILTINS = frozenset({
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"), ("builtins", "slice"),
    ("builtins", "bytearray"), ("collections", "OrderedDict"), ("_codecs", "encode"),
})


class _Restricted(pickle.Unpickler):
    def __init__(self, file, allowed: frozenset, where, **kw):
        super().__init__(file, **kw)
        self._allowed = allowed
        self._where = where

    def find_class(self, module: str, name: str):
        # Python 2 names (__builtin__.set, copy_reg...) as the unpickler itself maps them
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) not in self._allowed:
            raise RawFileError(self._where, f"refused to unpickle {module}.{name}: not one of the classes this "
                               "dataset's files hold (a pickle can run code; only the known classes are loaded)")
        return super().find_class(module, name)

    def persistent_load(self, pid):  # torch's storages come through persistent ids: refused unless a loader allows
        raise RawFileError(self._where, f"refused to unpickle a persistent object ({type(pid).__name__}): not "
                           "supported for this file")


def load(path, allowed: Iterable[tuple[str, str]] = (), encoding: str = "latin1", data: bytes | None = None):
    """Unpickle ``path`` (or ``data``, read from it) admitting only :data:`NUMPY`, :data:`BUILTINS` and ``allowed``
    (module, name) pairs. ``encoding`` decodes Python 2 strings (3DPW's pickles: latin-1). Errors name the file."""
    where = Path(path)
    admit = NUMPY | BUILTINS | frozenset(allowed)
    try:
        raw = where.read_bytes() if data is None else data
    except OSError as e:
        raise RawFileError(where, f"unreadable ({e.strerror or e})") from None
    try:
        return _Restricted(io.BytesIO(raw), admit, where, encoding=encoding).load()
    except RawFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError,
            KeyError, MemoryError) as e:
        raise RawFileError(where, f"not a readable pickle, truncated or corrupt ({type(e).__name__}: {e})") from None
