"""Reading (and, for fixtures, writing) the 3D points of a C3D file, the motion-capture format of c3d.org.

A C3D file is a sequence of 512-byte blocks: a header block, the parameter blocks (groups such as ``POINT`` and
``ANALOG`` holding typed parameters such as ``POINT:LABELS``), then the data: per frame, per point, X Y Z and a
residual word, followed by the frame's analog samples. The data are stored either as 16-bit integers (multiplied
by the scale factor ``POINT:SCALE``) or as 32-bit floats (the scale factor is negative; its magnitude then only
scales the residual). A negative residual marks a point as invalid in that frame (not seen by the cameras).

:func:`read_points` returns the points in the file's own units (``POINT:UNITS``) with NaN where the residual marks
a point invalid. Intel (little-endian) and MIPS/SGI (big-endian) files are read; a DEC (VAX float) file, a file
that is not a C3D file, a truncated or corrupt one: each is a :class:`RawFileError` naming the file.

:func:`write_points` writes a minimal but complete C3D file (header, POINT and ANALOG groups, data) that any C3D
reader can open; the fixtures use it to write raw files in the real format.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posebank.datasets.base import RawFileError

__all__ = ["C3DPoints", "read_points", "write_points"]

BLOCK = 512
KEY = 0x50  # the second byte of the header and of the parameter section
PROCESSORS = {84: "intel", 85: "dec", 86: "mips"}  # parameter section byte 4 (83 + processor type)
_ENDIAN = {"intel": "<", "mips": ">"}
_TYPES = {-1: 1, 1: 1, 2: 2, 4: 4}  # parameter data type -> bytes per element (char, byte, int16, float)


@dataclass(frozen=True)
class C3DPoints:
    """The 3D points of a C3D file: ``points`` float64 (frames, n, 3) in ``units`` (NaN: invalid in that frame),
    ``labels`` (n names, ``POINT:LABELS`` then ``LABELS2``..., trailing blanks stripped), ``rate`` (frames per
    second) and ``units`` (``POINT:UNITS``, ``""`` when the file has none)."""

    points: np.ndarray
    labels: list[str]
    rate: float
    units: str


def _parameters(path: Path, data: bytes, start: int, end: str) -> dict[tuple[str, str], object]:
    """``{(GROUP, PARAMETER): value}`` of the parameter section starting at byte ``start``: a str for a 1-d char
    array, a list of str for a 2-d one, a numpy array (Fortran order of the dims) for numbers."""
    groups: dict[int, str] = {}
    raw: list[tuple[int, str, int, list[int], bytes]] = []
    pos = start + 4
    stop = min(len(data), start + BLOCK * max(1, data[start + 2]))
    while pos + 2 <= stop:
        n_name, gid = struct.unpack_from("bb", data, pos)
        if n_name == 0:
            break
        n_name = abs(n_name)  # negative: locked
        if pos + 4 + n_name > stop:
            raise RawFileError(path, "C3D parameter section truncated")
        name = data[pos + 2:pos + 2 + n_name].decode("latin-1").strip().upper()
        at = pos + 2 + n_name
        (offset,) = struct.unpack_from(end + "h", data, at)
        if gid < 0:
            groups[-gid] = name
        else:
            if at + 4 > stop:
                raise RawFileError(path, f"C3D parameter {name} truncated")
            kind, n_dims = struct.unpack_from("bB", data, at + 2)
            if kind not in _TYPES:
                raise RawFileError(path, f"C3D parameter {name} has an unknown data type {kind}")
            dims = list(data[at + 4:at + 4 + n_dims])
            size = _TYPES[kind] * math.prod(dims)
            body = data[at + 4 + n_dims:at + 4 + n_dims + size]
            if len(body) < size:
                raise RawFileError(path, f"C3D parameter {name} truncated")
            raw.append((gid, name, kind, dims, body))
        if offset == 0:
            break
        pos = at + offset
    params: dict[tuple[str, str], object] = {}
    for gid, name, kind, dims, body in raw:
        group = groups.get(gid, str(gid))
        if kind == -1:
            text = body.decode("latin-1")
            if len(dims) <= 1:
                params[group, name] = text.rstrip(" \x00")
            else:
                width, count = dims[0], math.prod(dims[1:])
                params[group, name] = [text[i * width:(i + 1) * width].rstrip(" \x00") for i in range(count)]
        else:
            dtype = {1: "i1", 2: end + "i2", 4: end + "f4"}[kind]
            params[group, name] = np.frombuffer(body, dtype=dtype).reshape(dims[::-1] or [1])
    return params


def _number(params: dict, key: tuple[str, str], unsigned: bool = False) -> float | None:
    value = params.get(key)
    if not isinstance(value, np.ndarray) or value.size == 0:
        return None
    first = value.reshape(-1)[0]
    if unsigned and value.dtype.kind == "i" and first < 0:
        return float(int(first) + (1 << (8 * value.dtype.itemsize)))
    return float(first)


def read_points(path) -> C3DPoints:
    """The 3D points of the C3D file ``path`` (see :class:`C3DPoints`); RawFileError naming the file when it cannot
    be read, is not a C3D file, uses DEC floats, or is truncated."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RawFileError(path, f"cannot read ({e.strerror or e})") from e
    if len(data) < BLOCK or data[1] != KEY:
        raise RawFileError(path, "not a C3D file (no C3D header), or truncated")
    param_start = (data[0] - 1) * BLOCK
    if data[0] < 2 or param_start + 4 > len(data) or data[param_start + 1] not in (KEY, 0):
        raise RawFileError(path, "C3D parameter section missing or corrupt")
    processor = PROCESSORS.get(data[param_start + 3])
    if processor is None:
        raise RawFileError(path, f"C3D processor type {data[param_start + 3]} unknown (84 Intel, 85 DEC, 86 MIPS)")
    if processor == "dec":
        raise RawFileError(path, "C3D file in DEC (VAX float) byte order, which is not supported")
    end = _ENDIAN[processor]
    n_points, n_analog, first, last = struct.unpack_from(end + "HHHH", data, 2)
    (scale,) = struct.unpack_from(end + "f", data, 12)
    (data_block,) = struct.unpack_from(end + "H", data, 16)
    (rate,) = struct.unpack_from(end + "f", data, 20)
    params = _parameters(path, data, param_start, end)
    n_frames = last - first + 1 if last >= first else 0
    frames_param = _number(params, ("POINT", "FRAMES"), unsigned=True)
    used = _number(params, ("POINT", "USED"), unsigned=True)
    if used is not None and int(used) != n_points:
        raise RawFileError(path, f"C3D header says {n_points} points, POINT:USED {int(used)}")
    rate = _number(params, ("POINT", "RATE")) or float(rate)
    is_float = scale < 0
    size = 4 if is_float else 2
    per_frame = 4 * n_points + n_analog
    start = (data_block - 1) * BLOCK
    fit = (len(data) - start) // (per_frame * size) if per_frame else 0
    if frames_param is not None and (frames_param > n_frames or n_frames > fit):
        # more than 65535 frames (the header's word saturates), or a header that some writers leave wrong
        n_frames = int(frames_param)
    need = start + n_frames * per_frame * size
    if data_block < 2 or need > len(data):
        raise RawFileError(path, f"C3D data truncated: {n_frames} frames of {n_points} points need {need} bytes, "
                           f"the file has {len(data)}")
    values = np.frombuffer(data, dtype=end + ("f4" if is_float else "i2"), count=n_frames * per_frame, offset=start)
    values = values.reshape(n_frames, per_frame)[:, :4 * n_points].reshape(n_frames, n_points, 4)
    if is_float:
        residual = np.trunc(values[..., 3]).astype(np.int64)
        points = values[..., :3].astype(np.float64)
    else:
        residual = values[..., 3].astype(np.int64)
        points = values[..., :3].astype(np.float64) * abs(float(scale))
    points[residual < 0] = np.nan
    labels: list[str] = []
    for key in ["LABELS"] + [f"LABELS{i}" for i in range(2, 100)]:
        value = params.get(("POINT", key))
        if value is None:
            break
        labels += [value] if isinstance(value, str) else list(value)
    labels = labels[:n_points] + [f"point{i}" for i in range(len(labels), n_points)]
    units = params.get(("POINT", "UNITS"), "")
    if isinstance(units, list):  # some writers store one unit per point
        units = units[0] if units else ""
    return C3DPoints(points=points, labels=labels, rate=float(rate), units=str(units))


def _record(name: str, gid: int, body: bytes, last: bool = False) -> bytes:
    encoded = name.encode("ascii")
    offset = 0 if last else 2 + len(body)
    return struct.pack("<bb", len(encoded), gid) + encoded + struct.pack("<h", offset) + body


def _param(name: str, gid: int, kind: int, dims: list[int], payload: bytes) -> bytes:
    return _record(name, gid, struct.pack("<bB", kind, len(dims)) + bytes(dims) + payload + b"\x00")


def _chars(name: str, gid: int, strings: list[str]) -> bytes:
    width = max([1] + [len(s) for s in strings])
    payload = b"".join(s.ljust(width).encode("ascii") for s in strings)
    return _param(name, gid, -1, [width, len(strings)], payload)


def write_points(path, points, labels, rate: float, units: str = "mm", float_format: bool = True,
                 processor: str = "intel") -> None:
    """Write ``points`` (frames, n, 3; NaN: invalid, stored with residual -1) with ``labels`` at ``rate`` frames
    per second as a C3D file: float storage, or 16-bit integers times a scale factor chosen to fit the largest
    coordinate; Intel byte order, or ``processor="mips"`` for big-endian."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 3 or points.shape[2] != 3 or points.shape[1] != len(labels):
        raise ValueError(f"points must be (frames, {len(labels)}, 3), not {points.shape}")
    end = _ENDIAN[processor]
    n_frames, n_points = points.shape[:2]
    invalid = ~np.isfinite(points).all(axis=2)
    finite = np.abs(points[~invalid])
    if float_format:
        scale = -1.0
    else:
        scale = float(finite.max()) / 32000 if finite.size and finite.max() > 0 else 0.1
    def section(data_block: int) -> bytes:
        gp, ga = 1, 2
        records = [_record("POINT", -gp, b"\x00"),
                   _param("USED", gp, 2, [], struct.pack("<h", n_points)),
                   _param("SCALE", gp, 4, [], struct.pack("<f", scale)),
                   _param("RATE", gp, 4, [], struct.pack("<f", rate)),
                   _param("DATA_START", gp, 2, [], struct.pack("<h", data_block)),
                   _param("FRAMES", gp, 2, [], struct.pack("<H", n_frames)),
                   _param("UNITS", gp, -1, [len(units)], units.encode("ascii"))]
        for i in range(0, max(n_points, 1), 255):
            records.append(_chars("LABELS" if i == 0 else f"LABELS{i // 255 + 1}", gp, list(labels[i:i + 255])))
        records += [_record("ANALOG", -ga, b"\x00"),
                    _param("USED", ga, 2, [], b"\x00\x00"),
                    _param("RATE", ga, 4, [], struct.pack("<f", rate))]
        last = records[-1]  # its offset is 0: the end of the parameter section
        records[-1] = last[:2 + last[0]] + b"\x00\x00" + last[4 + last[0]:]
        return b"".join(records)

    n_blocks = (4 + len(section(0)) + BLOCK - 1) // BLOCK
    data_block = 2 + n_blocks
    section = section(data_block)
    if end == ">":  # the numbers of the parameter section in the file's byte order
        section = _swap_parameters(section)
    params_bytes = bytes([1, KEY, n_blocks, 84 if processor == "intel" else 86]) + section
    params_bytes = params_bytes.ljust(n_blocks * BLOCK, b"\x00")
    header = bytearray(BLOCK)
    header[0], header[1] = 2, KEY
    struct.pack_into(end + "HHHHH", header, 2, n_points, 0, 1, max(n_frames, 1), 0)
    struct.pack_into(end + "f", header, 12, scale)
    struct.pack_into(end + "HH", header, 16, data_block, 0)
    struct.pack_into(end + "f", header, 20, rate)
    values = np.zeros((n_frames, n_points, 4))
    values[..., :3] = np.where(invalid[..., None], 0.0, points)
    values[..., 3] = np.where(invalid, -1.0, 0.0)
    if float_format:
        body = values.astype(end + "f4").tobytes()
    else:
        values[..., :3] = np.round(values[..., :3] / scale)
        body = values.astype(end + "i2").tobytes()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(bytes(header) + params_bytes + body)
    tmp.replace(path)


def _swap_parameters(section: bytes) -> bytes:
    """The little-endian parameter ``section`` written by :func:`write_points` in big-endian byte order."""
    out = bytearray(section)
    pos = 0
    while pos + 2 <= len(out):
        n_name, gid = struct.unpack_from("bb", out, pos)
        if n_name == 0:
            break
        at = pos + 2 + abs(n_name)
        (offset,) = struct.unpack_from("<h", out, at)
        struct.pack_into(">h", out, at, offset)
        if gid > 0:
            kind, n_dims = struct.unpack_from("bB", out, at + 2)
            dims = list(out[at + 4:at + 4 + n_dims])
            body = at + 4 + n_dims
            if kind in (2, 4):
                count = math.prod(dims)
                fmt = "h" if kind == 2 else "f"
                vals = struct.unpack_from(f"<{count}{fmt}", out, body)
                struct.pack_into(f">{count}{fmt}", out, body, *vals)
        if offset == 0:
            break
        pos = at + offset
    return bytes(out)
