import numpy as np

from posebank.core import masks


def test_rle_round_trip_and_area():
    rng = np.random.default_rng(0)
    m = np.zeros((37, 53), bool)
    m[5:20, 10:40] = True
    m[rng.random(m.shape) < 0.05] = True
    counts = masks.encode(m)
    assert isinstance(counts, bytes)
    np.testing.assert_array_equal(masks.decode(counts, 37, 53), m)
    assert masks.area(counts, 37, 53) == m.sum()


def test_uncompressed_coco_rle():
    # column-major runs starting with background: 3 off, 4 on, rest off, in a 4x3 image
    counts = masks.from_uncompressed({"size": [4, 3], "counts": [3, 4, 5]})
    m = masks.decode(counts, 4, 3)
    expected = np.zeros(12, bool)
    expected[3:7] = True
    np.testing.assert_array_equal(m, expected.reshape(3, 4).T)
