"""posebank's one error hierarchy.

Every error a user or a data file can cause is a :class:`PosebankError`: the CLI and the stage entry scripts print
it as one line, ``error: <file or key>: <problem>``, and exit with status 2 (``exit_code``). Anything else that
escapes is a programming error and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class PosebankError(Exception):
    """A user or data error; ``str(e)`` is ``<where>: <problem>`` (``where`` names the file or the key)."""

    exit_code = 2

    def __init__(self, where, problem: str | None = None):
        if problem is None:
            self.where, self.problem = None, str(where)
            super().__init__(str(where))
        else:
            self.where, self.problem = str(where), problem
            super().__init__(f"{where}: {problem}")


class ParamsError(PosebankError, ValueError):
    """A params.yaml key is unknown, missing, wrongly typed or out of range; ``where`` is the file and key."""


class UsageError(PosebankError):
    """A command line that cannot be carried out (unknown dataset, missing option, ...)."""


class OutputError(PosebankError):
    """An output path cannot be written (not writable, a directory, a file that is not ours, ...)."""


class DataError(PosebankError):
    """An input file (raw data, an intermediate product) is unreadable or holds something unexpected."""


class DatasetError(DataError):
    """A raw dataset tree cannot be converted; the message names the file and the problem."""


class RawLayoutError(DatasetError):
    """The raw tree is missing or incomplete."""

    def __init__(self, dataset: str, root, missing: list[str] | str):
        missing = [missing] if isinstance(missing, str) else list(missing)
        self.dataset, self.root, self.missing = dataset, Path(root), missing
        shown = ", ".join(missing[:5]) + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
        state = "not found" if not Path(root).exists() else "incomplete"
        super().__init__(f"{dataset}: raw dataset {state} at {root}", f"missing {shown}")


class RawFileError(DatasetError):
    """One raw file is unreadable or holds something other than the dataset's format."""

    def __init__(self, path, problem: str):
        self.path = Path(path)
        super().__init__(path, problem)


class FrameReadError(DataError):
    """A video or image could not be read."""


class CacheFormatError(DataError, ValueError):
    """The file is not a readable posebank cache (or intermediate table)."""


class ModelError(PosebankError, ValueError):
    """A model checkpoint (detector, SAM) is missing, unreadable or of another architecture."""


class DeviceError(PosebankError, RuntimeError):
    """The compute device asked for does not exist here."""


class StageError(PosebankError):
    """A stage cannot run: its inputs are missing, stale or built with other parameters."""
