"""TFRecord files of ``tf.train.Example`` records, read and written without TensorFlow.

Framing (TensorFlow ``tensorflow/core/lib/io/record_writer.cc``): each record is

    uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)

with ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2^32) and CRC-32C (Castagnoli). Both CRCs are
verified; a truncated or corrupt record is a :class:`RawFileError` naming the file and the record's index.

``tf.train.Example`` (``tensorflow/core/example/example.proto``, ``feature.proto``) is the protobuf message
``Example { Features features = 1; }``, ``Features { map<string, Feature> feature = 1; }``, ``Feature { oneof kind
{ BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }``, each list ``repeated ...
value = 1`` (floats and int64s packed). :func:`parse_example` decodes these few wire types by hand (varint,
64-bit, length-delimited, 32-bit), accepting packed and unpacked repeated scalars; :func:`encode_example` writes
them as protobuf serialises them (packed lists, map entries in key order).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from posebank.datasets.base import RawFileError

try:  # the C implementation (a dependency of barecat); the table below otherwise
    from crc32c import crc32c as _crc32c_fast
except ImportError:  # pragma: no cover - depends on the environment
    _crc32c_fast = None

_POLY = 0x82F63B78  # CRC-32C, reflected


def _table() -> list[int]:
    out = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        out.append(c)
    return out


_TABLE = _table()


def crc32c_python(data: bytes) -> int:
    """CRC-32C of ``data`` (table-driven, pure Python)."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in bytes(data):
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``."""
    return _crc32c_fast(data) if _crc32c_fast is not None else crc32c_python(data)


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ------------------------------------------------------------------------------------------- framing
def read_records(path) -> Iterator[tuple[int, bytes]]:
    """``(index, data)`` of every record of a TFRecord file, in file order, both CRCs verified."""
    path = Path(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; a generator keeps it open between records
    except OSError as e:
        raise RawFileError(path, f"unreadable ({e.strerror or e})") from None
    with f:
        index = 0
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise RawFileError(path, f"record {index}: truncated header ({len(header)} of 12 bytes)")
            (length,), (length_crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != length_crc:
                raise RawFileError(path, f"record {index}: length CRC mismatch (corrupt or not a TFRecord file)")
            data = f.read(length)
            footer = f.read(4)
            if len(data) < length or len(footer) < 4:
                raise RawFileError(path, f"record {index}: truncated ({len(data)} of {length} data bytes)")
            if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise RawFileError(path, f"record {index}: data CRC mismatch (corrupt record)")
            yield index, data
            index += 1


def frame_record(data: bytes) -> bytes:
    """One record in TFRecord framing."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def write_records(path, records) -> None:
    """A TFRecord file of the ``records`` (bytes each)."""
    Path(path).write_bytes(b"".join(frame_record(r) for r in records))


# ------------------------------------------------------------------------------------------- protobuf wire format
class WireError(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """``(field number, wire type, value)`` of a message: an int for varint, bytes for the others."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise WireError(f"unsupported wire type {wire} (field {number})")
        if pos > n:
            raise WireError(f"field {number} runs past the end of its message")
        yield number, wire, value


def _int64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _feature(buf: bytes):
    """One ``Feature``: list[bytes], float32 array or int64 array (None when it holds no list)."""
    out = None
    for number, wire, value in _fields(buf):
        if wire != 2 or number not in (1, 2, 3):
            continue
        if number == 1:
            out = [bytes(v) for n, w, v in _fields(value) if n == 1 and w == 2]
        elif number == 2:
            parts = []
            for n, w, v in _fields(value):
                if n == 1 and w == 2:
                    if len(v) % 4:
                        raise WireError("packed float list of a length not a multiple of 4")
                    parts.append(np.frombuffer(v, "<f4"))
                elif n == 1 and w == 5:
                    parts.append(np.frombuffer(v, "<f4"))
            out = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
        else:
            ints = []
            for n, w, v in _fields(value):
                if n == 1 and w == 2:
                    pos = 0
                    while pos < len(v):
                        x, pos = _varint(v, pos)
                        ints.append(_int64(x))
                elif n == 1 and w == 0:
                    ints.append(_int64(v))
            out = np.array(ints, np.int64)
    return out


def parse_example(data: bytes) -> dict:
    """The features of a serialised ``tf.train.Example``: name -> list[bytes] / float32 array / int64 array.
    WireError when the bytes are not such a message."""
    features = {}
    for number, wire, value in _fields(memoryview(data)):  # views: the encoded image is copied once, at the end
        if number != 1 or wire != 2:
            continue
        for n, w, entry in _fields(value):
            if n != 1 or w != 2:
                continue
            key, feat = None, b""
            for en, ew, ev in _fields(entry):
                if en == 1 and ew == 2:
                    key = bytes(ev).decode("utf-8")
                elif en == 2 and ew == 2:
                    feat = ev
            if key is None:
                raise WireError("a feature map entry without a key")
            features[key] = _feature(feat)
    return features


def _encode_varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def encode_feature(value) -> bytes:
    """A ``Feature`` of bytes (a list of bytes), floats (float32 array) or int64s (int array)."""
    if isinstance(value, (list, tuple)) and all(isinstance(v, (bytes, bytearray)) for v in value):
        return _len_field(1, b"".join(_len_field(1, bytes(v)) for v in value))
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        packed = arr.astype("<f4").reshape(-1).tobytes()
        return _len_field(2, _len_field(1, packed) if packed else b"")
    if arr.dtype.kind in "iub":
        packed = b"".join(_encode_varint(int(v)) for v in arr.reshape(-1))
        return _len_field(3, _len_field(1, packed) if packed else b"")
    raise TypeError(f"cannot encode a feature of {arr.dtype}")


def encode_example(features: Mapping) -> bytes:
    """A serialised ``tf.train.Example`` of ``features`` (name -> value as :func:`encode_feature` takes)."""
    entries = b"".join(_len_field(1, _len_field(1, k.encode("utf-8")) + _len_field(2, encode_feature(features[k])))
                       for k in sorted(features))
    return _len_field(1, entries)
