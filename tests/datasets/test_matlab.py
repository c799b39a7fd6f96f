"""posebank.datasets.matlab: one loader for MAT v5 and v7.3 files, failures naming the file."""

import h5py
import numpy as np
import pytest
import scipy.io

from conftest import sample
from posebank.datasets.base import RawFileError
from posebank.datasets.matlab import load_mat, mat_version, write_mat73

ARRAYS = {"annot2": np.arange(2 * 17 * 1 * 5, dtype=np.float64).reshape(2, 17, 1, 5),
          "valid_frame": np.array([[1.0, 0.0, 1.0, 1.0, 0.0]])}


def test_v5_and_v73_give_the_same_arrays_in_matlab_order(tmp_path):
    v5, v73 = tmp_path / "v5.mat", tmp_path / "v73.mat"
    scipy.io.savemat(v5, ARRAYS)
    write_mat73(v73, ARRAYS)
    assert (mat_version(v5), mat_version(v73)) == ("5", "7.3")
    with h5py.File(v73, "r") as f:  # stored transposed, as MATLAB does
        assert f["annot2"].shape == (5, 1, 17, 2)
    for path in (v5, v73):
        mat = load_mat(path)
        assert sorted(mat) == ["annot2", "valid_frame"]
        for name, arr in ARRAYS.items():
            np.testing.assert_array_equal(mat[name], arr)
        only = load_mat(path, ["valid_frame"], optional=["nothing"])
        assert sorted(only) == ["valid_frame"]


def test_v73_cells_structs_text_and_logicals(tmp_path):
    path = tmp_path / "cells.mat"
    write_mat73(path, {"x": np.ones((2, 3))})
    with h5py.File(path, "r+") as f:
        refs = f.create_group("#refs#")
        a = refs.create_dataset("a", data=np.arange(3.0)[None])
        a.attrs["MATLAB_class"] = np.bytes_("double")
        b = refs.create_dataset("b", data=np.array([[ord(c)] for c in "hello"], np.uint16))
        b.attrs["MATLAB_class"] = np.bytes_("char")
        cell = f.create_dataset("c", data=np.array([[a.ref], [b.ref]], dtype=h5py.ref_dtype))
        cell.attrs["MATLAB_class"] = np.bytes_("cell")
        flag = f.create_dataset("flag", data=np.array([[1], [0]], np.uint8))
        flag.attrs["MATLAB_class"] = np.bytes_("logical")
        s = f.create_group("s")
        s.attrs["MATLAB_class"] = np.bytes_("struct")
        v = s.create_dataset("value", data=np.array([[4.0]]))
        v.attrs["MATLAB_class"] = np.bytes_("double")
    mat = load_mat(path)
    assert sorted(mat) == ["c", "flag", "s", "x"]  # "#refs#" is not a variable
    assert mat["x"].shape == (2, 3)
    assert mat["c"].shape == (1, 2) and mat["c"].dtype == object
    np.testing.assert_array_equal(mat["c"][0, 0], np.arange(3.0)[:, None])
    assert mat["c"][0, 1] == "hello"
    np.testing.assert_array_equal(mat["flag"], [[True, False]])
    assert mat["s"] == {"value": np.array([[4.0]])}


def test_real_v5_file():
    mat = load_mat(sample("surreal/01_01_c0001_info.mat"), ["joints3D", "camLoc"], what="annotation file")
    assert sorted(mat) == ["camLoc", "joints3D"] and mat["joints3D"].shape == (3, 24, 100)


@pytest.mark.parametrize("fraction", [0.5, 0.9])
@pytest.mark.parametrize("version", ["5", "7.3"])
def test_truncated_files_are_named(tmp_path, version, fraction):
    path = tmp_path / "annot.mat"
    (scipy.io.savemat if version == "5" else write_mat73)(path, ARRAYS)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * fraction)])
    with pytest.raises(RawFileError) as e:
        load_mat(path, ["annot2", "valid_frame"], what="annotation file")
    assert e.value.path == path and str(e.value).startswith(f"{path}: ")
    assert "unreadable annotation file: not a MATLAB file, or truncated or corrupt" in str(e.value) or \
        "no 'valid_frame' variable" in str(e.value)


@pytest.mark.parametrize("content", [b"", b"MATLAB", b"hello world, not a MAT file at all\n" * 10,
                                     b"\x89HDF\r\n\x1a\n" + b"\x00" * 100])
def test_garbage_files_are_named(tmp_path, content):
    path = tmp_path / "annot.mat"
    path.write_bytes(content)
    with pytest.raises(RawFileError, match=rf"^{path}: (not a MATLAB file|unreadable file: not a MATLAB file)"):
        load_mat(path)


def test_missing_file_and_variable_are_named(tmp_path):
    with pytest.raises(RawFileError, match=rf"^{tmp_path}/x\.mat: segmentation file not found$"):
        load_mat(tmp_path / "x.mat", what="segmentation file")
    v5, v73 = tmp_path / "v5.mat", tmp_path / "v73.mat"
    many = {f"segm_{i}": np.zeros((2, 2)) for i in range(2, 40)}
    scipy.io.savemat(v5, many)
    write_mat73(v73, many)
    for path in (v5, v73):
        with pytest.raises(RawFileError, match=r"no 'segm_1' variable \(has \['segm_10', 'segm_11', .*\] and 26 "
                                               r"more\)$") as e:
            load_mat(path, ["segm_1", "segm_2"])
        assert e.value.path == path
