"""posebank.datasets.c3d: the C3D point reader (float and integer storage, Intel and MIPS byte order), its fixture
writer, a file built byte by byte from the C3D specification, and real C3D files."""

import struct

import numpy as np
import pytest

from conftest import sample
from posebank.datasets.base import RawFileError
from posebank.datasets.c3d import read_points, write_points


def motion(frames=5, n=4, seed=0):
    rng = np.random.default_rng(seed)
    points = rng.uniform(-2000, 2000, (frames, n, 3))
    points[1, 2] = np.nan  # invalid in frame 1
    points[3, 0] = np.nan
    return points


@pytest.mark.parametrize("processor", ["intel", "mips"])
@pytest.mark.parametrize("float_format", [True, False])
def test_round_trip(tmp_path, float_format, processor):
    points, labels = motion(), ["HEAD", "NECK", "LSHO", "RSHO"]
    path = tmp_path / "m.c3d"
    write_points(path, points, labels, rate=50.0, units="mm", float_format=float_format, processor=processor)
    got = read_points(path)
    assert got.labels == labels and got.rate == 50.0 and got.units == "mm"
    assert got.points.dtype == np.float64 and got.points.shape == points.shape
    np.testing.assert_array_equal(np.isnan(got.points), np.isnan(points))
    # float32 storage, or 16-bit integers times 2000/32000 mm
    tolerance = 1e-3 if float_format else 2000 / 32000 / 2 + 1e-9
    np.testing.assert_allclose(got.points, points, rtol=0, atol=tolerance, equal_nan=True)
    assert not list(tmp_path.glob("*.tmp"))


def test_more_than_255_labels_use_labels2(tmp_path):
    labels = [f"P{i}" for i in range(300)]
    points = np.arange(2 * 300 * 3, dtype=float).reshape(2, 300, 3)
    write_points(tmp_path / "m.c3d", points, labels, rate=100.0)
    got = read_points(tmp_path / "m.c3d")
    assert got.labels == labels
    np.testing.assert_allclose(got.points, points, atol=1e-3)


def handbuilt(float_format: bool) -> bytes:
    """A C3D file written by hand from the specification: 2 points, 3 frames, 2 analog samples per frame."""
    scale = -0.5 if float_format else 0.5

    def param(name, gid, kind, dims, payload, last=False):
        body = struct.pack("<bB", kind, len(dims)) + bytes(dims) + payload + b"\x00"  # no description
        offset = 0 if last else 2 + len(body)
        return struct.pack("<bb", len(name), gid) + name + struct.pack("<h", offset) + body

    group = struct.pack("<bb", 5, -1) + b"POINT" + struct.pack("<h", 3) + b"\x00"
    params = (group
              + param(b"USED", 1, 2, [], struct.pack("<h", 2))
              + param(b"SCALE", 1, 4, [], struct.pack("<f", scale))
              + param(b"RATE", 1, 4, [], struct.pack("<f", 25.0))
              + param(b"LABELS", 1, -1, [4, 2], b"LHIPRHIP")
              + param(b"UNITS", 1, -1, [2], b"mm", last=True))
    param_block = (bytes([1, 0x50, 1, 84]) + params).ljust(512, b"\x00")
    header = bytearray(512)
    header[0:2] = bytes([2, 0x50])
    struct.pack_into("<HHHHH", header, 2, 2, 2, 1, 3, 10)  # points, analog per frame, first, last, max gap
    struct.pack_into("<f", header, 12, scale)
    struct.pack_into("<HH", header, 16, 3, 2)  # data start block, analog samples per frame
    struct.pack_into("<f", header, 20, 25.0)
    # frame f: LHIP = (100, 200, 300) + f, RHIP = (-10, -20, -30) - f with residual -1 (invalid) in frame 1
    rows = []
    for f in range(3):
        rows.append([100 + f, 200 + f, 300 + f, 0])
        rows.append([-10 - f, -20 - f, -30 - f, -1 if f == 1 else 3])
        rows.append([7, 8])  # analog samples, skipped
    if float_format:
        body = b"".join(struct.pack(f"<{len(r)}f", *r) for r in rows)
    else:
        body = b"".join(struct.pack(f"<{len(r)}h", *[v * 2 if i < 3 and len(r) == 4 else v
                                                     for i, v in enumerate(r)]) for r in rows)
    return bytes(header) + param_block + body


@pytest.mark.parametrize("float_format", [True, False])
def test_a_file_built_from_the_specification(tmp_path, float_format):
    path = tmp_path / "spec.c3d"
    path.write_bytes(handbuilt(float_format))
    got = read_points(path)
    assert got.labels == ["LHIP", "RHIP"] and got.rate == 25.0 and got.units == "mm"
    assert got.points.shape == (3, 2, 3)
    # integer storage: stored 2 x value, times the scale 0.5; float storage: the value itself
    for f in range(3):
        assert got.points[f, 0].tolist() == [100 + f, 200 + f, 300 + f]
        if f == 1:
            assert np.isnan(got.points[f, 1]).all()
        else:
            assert got.points[f, 1].tolist() == [-10 - f, -20 - f, -30 - f]


def test_real_sample01_from_c3d_org():
    """Sample01.Eb015pi.c3d (c3d.org's sample 01, Intel, integer storage with analog channels): every value equals
    the file's 16-bit words times its scale, decoded here straight from the bytes."""
    path = sample("c3d/Sample01.Eb015pi.c3d")
    got = read_points(path)
    raw = path.read_bytes()
    n_points, n_analog, first, last = struct.unpack_from("<HHHH", raw, 2)
    (scale,) = struct.unpack_from("<f", raw, 12)
    (data_block,) = struct.unpack_from("<H", raw, 16)
    assert (n_points, n_analog, first, last, data_block) == (26, 64, 1, 450, 11)
    assert got.points.shape == (450, 26, 3) and got.rate == 50.0 and got.units == "mm"
    assert got.labels[:8] == ["RFT1", "RFT2", "RFT3", "LFT1", "LFT2", "LFT3", "RSK1", "RSK2"]
    assert len(set(got.labels)) == 26
    per_frame = 2 * (4 * n_points + n_analog)
    invalid = 0
    for f in range(450):
        words = struct.unpack_from(f"<{4 * n_points}h", raw, (data_block - 1) * 512 + f * per_frame)
        for p in range(n_points):
            x, y, z, residual = words[4 * p:4 * p + 4]
            if residual < 0:
                invalid += 1
                assert np.isnan(got.points[f, p]).all()
            else:
                np.testing.assert_allclose(got.points[f, p], np.array([x, y, z]) * scale, rtol=0, atol=1e-9)
    assert invalid == np.isnan(got.points[..., 0]).sum() > 0
    # a marker set on a walking subject: metres of travel, a body a metre or two tall
    assert 500 < np.nanmax(got.points) - np.nanmin(got.points) < 10000


def test_real_truncated_optotrak_file_names_the_file():
    """An Optotrak export whose header and POINT:FRAMES declare 1149 frames but whose data hold 29."""
    path = sample("c3d/Optotrak_truncated.c3d")
    with pytest.raises(RawFileError, match="Optotrak_truncated.c3d.*truncated"):
        read_points(path)


def test_bad_files_name_the_file(tmp_path):
    good = tmp_path / "good.c3d"
    write_points(good, motion(), ["A", "B", "C", "D"], rate=30.0)
    data = good.read_bytes()
    cases = {"missing.c3d": None, "text.c3d": b"x" * 600, "short.c3d": data[:300], "cut.c3d": data[:-40]}
    dec = bytearray(data)
    dec[512 + 3] = 85
    cases["dec.c3d"] = bytes(dec)
    unknown = bytearray(data)
    unknown[512 + 3] = 99
    cases["unknown.c3d"] = bytes(unknown)
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(RawFileError) as e:
            read_points(path)
        assert name in str(e.value)
