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


def test_column_decode_equals_the_full_decode():
    """posebank's own reader of COCO's compressed counts gives pycocotools' runs, for any column range."""
    import cv2

    from posebank.core.masks import decode, decode_columns, encode

    rng = np.random.default_rng(0)
    for _ in range(20):
        h, w = int(rng.integers(5, 300)), int(rng.integers(5, 300))
        m = np.zeros((h, w), np.uint8)
        for _ in range(int(rng.integers(0, 6))):
            cv2.ellipse(m, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                        (int(rng.integers(1, 80)), int(rng.integers(1, 80))), 0, 0, 360, 1, -1)
        if rng.random() < 0.2:
            m[:] = 1
        rle = encode(m.astype(bool))
        full = decode(rle, h, w)
        for _ in range(5):
            x0 = int(rng.integers(0, w))
            x1 = int(rng.integers(x0 + 1, w + 1))
            cols = decode_columns(rle, h, w, x0, x1)
            assert cols.flags.c_contiguous and cols.shape == (x1 - x0, h)
            np.testing.assert_array_equal(cols.T.astype(bool), full[:, x0:x1])
