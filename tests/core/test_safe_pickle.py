"""The restricted unpickler: the data datasets ship loads, anything that would run code is refused by name."""

import os
import pickle

import numpy as np
import pytest

from posebank.core import safe_pickle
from posebank.core.errors import RawFileError


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_arrays_and_builtins_load_exactly(tmp_path):
    data = {"sequence": "courtyard_basketball_00", "poses": [np.arange(72.0).reshape(1, 72)],
            "genders": ["m", "f"], "campose_valid": [np.array([1, 0, 1], np.uint8)], "n": 3.5,
            "intr": np.eye(3, dtype=np.float32), "s": {1, 2}}
    path = tmp_path / "seq.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    back = safe_pickle.load(path)
    assert back["sequence"] == data["sequence"] and back["genders"] == ["m", "f"] and back["s"] == {1, 2}
    np.testing.assert_array_equal(back["poses"][0], data["poses"][0])
    assert back["intr"].dtype == np.float32
    # a Python 2 pickle's byte strings decode as latin-1 (3DPW's files are Python 2 pickles)
    py2 = b"\x80\x02}q\x00U\x08sequenceq\x01U\x04caf\xe9q\x02s."
    assert safe_pickle.load(tmp_path / "py2.pkl", data=py2) == {"sequence": "caf\xe9"}


def test_a_pickle_that_would_run_code_is_refused_naming_file_and_class(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"poses": RunsCode()}))
    with pytest.raises(RawFileError, match=r"evil\.pkl: refused to unpickle posix\.system"):
        safe_pickle.load(path)
    assert not (tmp_path / "pwned").exists()
    # a class only the caller admits
    path.write_bytes(pickle.dumps(RawFileError("x", "y")))
    with pytest.raises(RawFileError, match="refused to unpickle posebank.core.errors.RawFileError"):
        safe_pickle.load(path)


def test_truncated_or_foreign_files_are_clear_errors(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"a": np.zeros(100)})[:50])
    with pytest.raises(RawFileError, match=r"cut\.pkl: not a readable pickle, truncated or corrupt"):
        safe_pickle.load(path)
    with pytest.raises(RawFileError, match="unreadable"):
        safe_pickle.load(tmp_path / "absent.pkl")
