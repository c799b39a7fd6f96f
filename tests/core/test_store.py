import io
import os
import time

import h5py
import numpy as np
import pytest

from posebank.core.camera import Camera
from posebank.core.jpeg import encode_jpeg
from posebank.core.masks import decode as decode_mask
from posebank.core.masks import encode as encode_mask
from posebank.core.skeleton import JointInfo
from posebank.core.store import Cache, CacheFormatError, CacheWriter, Example

JI = JointInfo("pelv,lhip,rhip,neck", "neck-pelv-rhip")


def make_examples(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = rng.integers(0, 255, (32 + i % 3, 24, 3), np.uint8)
        coords = rng.normal(size=(4, 3)).astype(np.float32) * 500
        if i % 7 == 0:
            coords[2] = np.nan
        cam = Camera([[500 + i, 0, 12], [0, 505, 16], [0, 0, 1]], np.eye(3), [i, 2 * i, -3000],
                     [0.1, -0.01, 0.001, 0.002, 0.0], distortion_model="h36m" if i % 2 else "opencv")
        out.append(Example(
            world_coords=coords, camera=cam, bbox=np.array([1, 2, 20, 28.5]), split=("train", "val", "test")[i % 3],
            image=encode_jpeg(img), image_size=(24, 32 + i % 3), subject=f"S{i % 2}", sequence=f"seq{i % 5}",
            activity="walk", camera_name=f"c{i % 4}", frame_index=i * 5, source_path=f"S{i % 2}/v.mp4#{i * 5}",
            mask=encode_mask(img[..., 0] > 128) if i % 4 else b"",
            visibility=np.array([1, 0, 1, 255], np.uint8) if i % 5 == 0 else None))
    return out


def write(path, examples, **kw):
    with CacheWriter(path, "toy", JI, {"citation": "nobody"}, **kw) as w:
        for e in examples:
            w.add(e)


def test_round_trip_values(tmp_path):
    examples = make_examples(50)
    write(tmp_path / "c.h5", examples, buffer_rows=16)  # several flushes
    with Cache(tmp_path / "c.h5") as c:
        assert len(c) == 50 and c.joint_info == JI and c.dataset == "toy"
        for i in (0, 7, 17, 49):
            got, exp = c[i], examples[i]
            np.testing.assert_array_equal(got.world_coords, exp.world_coords)  # NaN preserved
            assert got.image == exp.image and got.image_size == exp.image_size
            assert (got.split, got.subject, got.sequence, got.camera_name, got.frame_index, got.source_path) == (
                exp.split, exp.subject, exp.sequence, exp.camera_name, exp.frame_index, exp.source_path)
            assert got.camera.distortion_model == exp.camera.distortion_model
            assert got.mask == exp.mask
            if exp.mask:
                w, h = exp.image_size
                assert np.array_equal(got.decode_mask(), decode_mask(exp.mask, h, w))
            expected_vis = [255] * 4 if exp.visibility is None else exp.visibility
            np.testing.assert_array_equal(got.visibility, expected_vis)
            assert got.camera.allclose(exp.camera, rtol=1e-6, atol=1e-4)
        block = c.read(10, 20)
        assert block["world_coords"].shape == (10, 4, 3)
        assert list(block["subject"]) == [e.subject for e in examples[10:20]]
        assert c.blobs("image", 3, 6) == [e.image for e in examples[3:6]]
        assert c.split_counts() == {"train": 17, "val": 17, "test": 16}
        assert c[-1].frame_index == examples[-1].frame_index
        with pytest.raises(IndexError):
            c[50]


def test_byte_identical_rebuild(tmp_path):
    examples = make_examples(40)
    write(tmp_path / "a.h5", examples)
    time.sleep(1.1)  # any timestamp in the file would now differ
    write(tmp_path / "b.h5", examples)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "c.h5"
    with pytest.raises(RuntimeError):
        with CacheWriter(out, "toy", JI) as w:
            w.add(make_examples(1)[0])
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    # an existing cache is kept intact when a rebuild fails
    write(out, make_examples(3))
    before = out.read_bytes()
    with pytest.raises(ValueError, match="world_coords shape"):
        with CacheWriter(out, "toy", JI) as w:
            bad = make_examples(1)[0]
            bad.world_coords = np.zeros((5, 3))
            w.add(bad)
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["c.h5"]


class CountingFile(io.RawIOBase):
    def __init__(self, path):
        self.f = open(path, "rb")
        self.bytes_read = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        return self.f.seek(offset, whence)

    def tell(self):
        return self.f.tell()

    def readinto(self, b):
        n = self.f.readinto(b)
        self.bytes_read += n
        return n


def test_reading_one_example_reads_a_small_part_of_the_file(tmp_path):
    rng = np.random.default_rng(0)
    examples = make_examples(20)
    big = [Example(**{**e.__dict__, "image": encode_jpeg(rng.integers(0, 255, (256, 256, 3), np.uint8))})
           for e in examples for _ in range(100)]  # 2000 examples of ~45 kB noise JPEGs
    write(tmp_path / "big.h5", big)
    size = os.path.getsize(tmp_path / "big.h5")
    counter = CountingFile(tmp_path / "big.h5")
    with Cache(counter) as c:
        ex = c[1234]
        assert ex.image == big[1234].image
        np.testing.assert_array_equal(ex.world_coords, big[1234].world_coords)
    assert size > 50e6
    assert counter.bytes_read < 0.02 * size, (counter.bytes_read, size)


def test_not_a_cache(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"garbage")
    with pytest.raises(CacheFormatError, match="not an HDF5 file"):
        Cache(tmp_path / "x.h5")
    with h5py.File(tmp_path / "y.h5", "w") as f:
        f.attrs["format"] = "something else"
    with pytest.raises(CacheFormatError, match="not a posebank cache"):
        Cache(tmp_path / "y.h5")


def test_block_reads_give_the_same_examples(tmp_path):
    """Cache.examples() (blocks of rows) yields exactly what cache[i] reads row by row."""
    import dataclasses

    from posebank.core.camera import Camera
    from posebank.core.skeleton import JointInfo
    from posebank.core.store import Cache, CacheWriter, Example

    ji = JointInfo("pelv,head", "pelv-head")
    rng = np.random.default_rng(1)
    with CacheWriter(tmp_path / "c.h5", "h36m", ji, buffer_rows=7) as w:
        for i in range(23):
            cam = Camera(np.array([[500 + i, 0, 64], [0, 500, 64], [0, 0, 1.0]]), np.eye(3), rng.normal(size=3))
            w.add(Example(rng.normal(size=(2, 3)).astype(np.float32), cam, rng.uniform(0, 50, 4),
                          ["train", "test"][i % 2], image=bytes([i]) * (i + 1), image_size=(128, 100 + i),
                          subject=f"S{i % 3}",
                          frame_index=i, source_path=f"v.mp4#{i}", mask=b"m" * (i % 4)))
    with Cache(tmp_path / "c.h5") as c:
        blocks = list(c.examples(3, 21, block_rows=5))
        rows = [c[i] for i in range(3, 21)]
    assert len(blocks) == 18
    for a, b in zip(blocks, rows):
        for f in dataclasses.fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if f.name == "camera":
                assert x.allclose(y, rtol=0, atol=0)
            elif isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, y)
            else:
                assert x == y, f.name
