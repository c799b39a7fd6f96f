import cv2
import numpy as np
import pytest

from posebank.core.errors import DeviceError, ModelError
from posebank.imaging.crop import box_from_points
from posebank.vision.detect import (
    DetectParams,
    choose_box,
    choose_hull_box,
    iou,
    make_detector,
    match_detections,
    nms,
    select_boxes,
)


def background(size_hw):
    h, w = size_hw
    image = np.full((h, w, 3), 200, np.float32) * np.linspace(0.8, 1.1, h)[:, None, None]
    return image.clip(0, 255).astype(np.uint8)


def add_noise(image, seed):
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)


def draw_person(size_hw=(480, 640), center_x=320, top=100, height=260, seed=0):
    """A dark upright figure (head, torso, arms, legs) on a lit background; returns the image and its joints."""
    image = background(size_hw)
    s = height / 260
    dark = (40, 40, 40)

    def p(x, y):
        return int(round(center_x + x * s)), int(round(top + y * s))

    joints = {"htop": (0, 0), "neck": (0, 42), "lsho": (-24, 48), "rsho": (24, 48), "lelb": (-34, 95),
              "relb": (34, 95), "lwri": (-38, 140), "rwri": (38, 140), "lhip": (-12, 128), "rhip": (12, 128),
              "lkne": (-16, 195), "rkne": (16, 195), "lank": (-18, 255), "rank": (18, 255)}
    cv2.ellipse(image, p(0, 18), (int(14 * s), int(18 * s)), 0, 0, 360, dark, -1)
    cv2.line(image, p(0, 36), p(0, 42), dark, int(12 * s))
    cv2.fillConvexPoly(image, np.array([p(-26, 44), p(26, 44), p(20, 130), p(-20, 130)], np.int32), dark)
    for a, b, width in [("lsho", "lelb", 12), ("lelb", "lwri", 12), ("rsho", "relb", 12), ("relb", "rwri", 12),
                        ("lhip", "lkne", 16), ("lkne", "lank", 16), ("rhip", "rkne", 16), ("rkne", "rank", 16)]:
        cv2.line(image, p(*joints[a]), p(*joints[b]), dark, max(1, int(width * s)))
    image = add_noise(cv2.GaussianBlur(image, (0, 0), 1.5), seed)
    points = np.array([[center_x + x * s, top + y * s] for x, y in joints.values()])
    return image, points


def box(x0, x1, y0=0.0, y1=100.0):
    return [x0, y0, x1 - x0, y1 - y0]


# --------------------------------------------------------------------------------------------- geometry
def test_iou_and_nms():
    a = box(0, 100)
    assert iou(a, a) == pytest.approx(1)
    assert iou(a, box(100, 200)) == 0
    assert iou(a, box(50, 150)) == pytest.approx(50 / 150)
    assert iou(a, [np.nan, 0, 10, 10]) == 0 and iou(a, [0, 0, 0, 0]) == 0
    matrix = iou(np.array([a, box(50, 150)])[:, None], np.array([a, box(0, 50), box(300, 400)])[None])
    np.testing.assert_allclose(matrix, [[1, 0.5, 0], [1 / 3, 0, 0]])
    # the lower-scoring of two heavily overlapping boxes goes; a distant one stays
    boxes = np.array([box(0, 100), box(5, 105), box(300, 400)])
    assert nms(boxes, [0.5, 0.9, 0.7], 0.7).tolist() == [1, 2]
    assert nms(boxes, [0.5, 0.9, 0.7], 0.95).tolist() == [1, 2, 0]
    assert nms(np.zeros((0, 4)), [], 0.5).tolist() == []


# --------------------------------------------------------------------------------------------- matching
def test_hungarian_matching_where_greedy_would_fail():
    gt = np.array([box(0, 100), box(60, 160)])
    det = np.array([box(25, 125) + [0.9], box(-30, 70) + [0.8]])
    overlap = iou(gt[:, None], det[None])
    # greedy would give gt 0 its best detection 0 (the largest IoU of all), leaving gt 1 with a useless one
    assert overlap.argmax() == 0 and overlap[1, 1] < 0.1
    assert match_detections(gt, det, 0.1) == [1, 0]
    # more people than detections, and more detections than people
    assert match_detections(gt, det[:, :4], 0.1) == [1, 0]  # plain boxes work too
    assert match_detections(gt, det[:1], 0.1) == [0, None]
    assert match_detections(gt[:1], np.concatenate([det, [box(0, 99) + [0.1]]]), 0.1) == [2]
    assert match_detections(gt, np.zeros((0, 5)), 0.1) == [None, None]
    # a pair the assignment makes but below the IoU threshold is no match; a person without joints never matches
    assert match_detections([box(0, 100)], [box(95, 195) + [1]], 0.1) == [None]
    assert match_detections([[np.nan] * 4, box(0, 100)], det, 0.1) == [None, 0]


def test_choose_box_follows_posepile_rule():
    gt = np.array(box(0, 100))
    good = np.array(box(10, 105) + [0.9])
    np.testing.assert_array_equal(choose_box(gt, good)[0], good[:4])
    assert choose_box(gt, good)[1] == "detection"
    assert choose_box(gt, None)[1] == "projected"
    np.testing.assert_array_equal(choose_box(gt, None)[0], gt)
    # barely overlapping: IoU 5/195 <= 0.1
    assert choose_box(gt, box(95, 195) + [1])[1] == "projected"
    # covers the person but too big: IoU 0.4 > 0.1, area 2.5x >= 2x
    assert choose_box(gt, box(-75, 175) + [1])[1] == "projected"
    # the area bound is strict (posepile: area(det) < 2 area(gt))
    assert choose_box(gt, box(0, 200) + [1])[1] == "projected"
    assert choose_box(gt, box(0, 199) + [1])[1] == "detection"
    assert choose_box(gt, box(0, 199), max_area_ratio=1.5)[1] == "projected"


def test_select_boxes_rules_and_fallback():
    gt = np.array([box(0, 100), box(60, 160), box(500, 600)])
    det = np.array([box(25, 125) + [0.9], box(-30, 70) + [0.8]])
    chosen = select_boxes(gt, det, DetectParams())
    assert [s for _, s in chosen] == ["detection", "detection", "projected"]
    np.testing.assert_array_equal(chosen[0][0], det[1, :4])
    np.testing.assert_array_equal(chosen[2][0], gt[2])
    dropped = select_boxes(gt, det, DetectParams(fallback="drop", backend="hog"))
    assert all(s != "dropped" for _, s in select_boxes(gt, det, DetectParams(fallback="drop")))  # no detector
    assert dropped[2] == (None, "dropped") and dropped[0][1] == "detection"
    # undetected: as drop where the frame has detections, the projected box where it has none (posepile's ikea)
    undetected = DetectParams(fallback="undetected", backend="hog")
    assert [s for _, s in select_boxes(gt, det, undetected)] == ["detection", "detection", "dropped"]
    kept = select_boxes(gt, np.zeros((0, 5)), undetected)
    assert [s for _, s in kept] == ["projected"] * 3 and np.array_equal(kept[1][0], gt[1])
    # the single-person rule: hull of the most confident detection and the projected box
    hull_box, source = choose_hull_box(gt[0], det)
    assert source == "hull"
    np.testing.assert_allclose(hull_box, box(0, 125))
    assert choose_hull_box(gt[0], [box(300, 400) + [1]])[1] == "projected"
    assert [s for _, s in select_boxes(gt[:1], det, DetectParams(rule="hull"))] == ["hull"]
    assert [s for _, s in select_boxes(gt, np.zeros((0, 5)), DetectParams())] == ["projected"] * 3


def test_params():
    p = DetectParams.from_dict({"backend": "hog", "hog_box_scale": [1, 1]})
    assert p.hog_box_scale == (1.0, 1.0) and p.expansion == 1.15 and p.min_match_iou == 0.1
    with pytest.raises(ValueError, match="unknown setting"):
        DetectParams.from_dict({"backend": "hog", "treshold": 0.3})
    with pytest.raises(ValueError, match="needs `weights`"):
        DetectParams(backend="torchvision")
    with pytest.raises(ValueError, match="model: .yolo. is not one of"):
        DetectParams(model="yolo")
    assert make_detector(DetectParams()).detect([np.zeros((4, 4, 3), np.uint8)] * 2)[1].shape == (0, 5)


# -------------------------------------------------------------------------------------------------- HOG
def test_hog_finds_a_drawn_person_and_its_box_is_chosen():
    detector = make_detector(DetectParams(backend="hog"))
    images, joints = zip(*[draw_person(center_x=cx, height=hgt, seed=i)
                           for i, (cx, hgt) in enumerate([(200, 180), (330, 260), (450, 320)])])
    results = detector.detect([*images, add_noise(background((480, 640)), 5)])
    assert results[3].shape == (0, 5)
    for dets, points in zip(results[:3], joints):
        assert dets.dtype == np.float32 and dets.shape[1] == 5 and len(dets) >= 1
        assert np.all((dets[:, 4] > 0.5) & (dets[:, 4] < 1)) and np.all(np.diff(dets[:, 4]) <= 0)
        projected = box_from_points(points, 1.15)
        assert iou(projected, dets[0]) > 0.6, (projected, dets[0])
        (chosen, source), = select_boxes([projected], dets, DetectParams())
        assert source == "detection"
        np.testing.assert_array_equal(chosen, dets[0, :4])
    # raw 64x128 windows include the training margin: about twice the person's area, so the rule rejects them
    raw = make_detector(DetectParams(backend="hog", hog_box_scale=(1, 1))).detect(images[1:2])[0]
    projected = box_from_points(joints[1], 1.15)
    assert raw[0, 2] * raw[0, 3] > 2 * projected[2] * projected[3]
    assert select_boxes([projected], raw, DetectParams())[0][1] == "projected"


# ------------------------------------------------------------------------------------------ torchvision
MODEL = "fasterrcnn_mobilenet_v3_large_320_fpn"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch = pytest.importorskip("torch")
    detection = pytest.importorskip("torchvision.models.detection")
    torch.manual_seed(0)
    model = detection.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=91)
    with torch.no_grad():  # random weights score every class alike; favour "person" so that some boxes remain
        model.roi_heads.box_predictor.cls_score.bias[1] = 5.0
    path = tmp_path_factory.mktemp("detector") / "random.pth"
    torch.save(model.state_dict(), path)
    return path


def test_torchvision_detector_loads_a_checkpoint_and_batches(checkpoint):
    # every person box of this model scores 0.62; the threshold spares the non-maximum suppression of the
    # other 89 classes, whose boxes score ~0.004 each
    params = DetectParams(backend="torchvision", model=MODEL, weights=str(checkpoint), score_threshold=0.5)
    detector = make_detector(params)
    assert str(detector.device) == "cpu"
    images = [draw_person((240, 320), 160, 30, 180, seed=0), draw_person((200, 256), 120, 20, 150, seed=1),
              draw_person((240, 320), 100, 40, 160, seed=2)]
    images = [im for im, _ in images]
    batched = detector.detect(images)
    assert len(batched) == 3
    for dets, image in zip(batched, images):
        h, w = image.shape[:2]
        assert dets.dtype == np.float32 and dets.ndim == 2 and dets.shape[1] == 5 and len(dets) > 0
        assert np.isfinite(dets).all()
        assert np.all((dets[:, 4] >= 0) & (dets[:, 4] <= 1)) and np.all(np.diff(dets[:, 4]) <= 0)
        x, y, bw, bh = dets[:, :4].T
        assert np.all((bw > 0) & (bh > 0))
        eps = 1e-3
        assert np.all((x >= -0.5 - eps) & (y >= -0.5 - eps) & (x + bw <= w - 0.5 + eps) & (y + bh <= h - 0.5 + eps))
        assert len(nms(dets[:, :4], dets[:, 4], params.nms_iou)) == len(dets)  # already suppressed
    for image, dets in zip(images, batched):
        np.testing.assert_allclose(detector.detect([image])[0], dets, rtol=0, atol=1e-4)


def test_torchvision_checkpoint_formats_and_errors(checkpoint, tmp_path):
    torch = pytest.importorskip("torch")
    image = draw_person((240, 320), 160, 30, 180)[0]

    def run(path, **kw):
        return make_detector(DetectParams(backend="torchvision", model=MODEL, weights=str(path), **kw)).detect(
            [image])[0]

    state = torch.load(checkpoint, weights_only=True)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": state, "epoch": 3}, wrapped)
    detector = make_detector(DetectParams(backend="torchvision", model=MODEL, weights=str(wrapped),
                                          score_threshold=0.7))
    loaded = detector.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert detector.detect([image])[0].shape == (0, 5)  # all person scores are 0.62

    missing = tmp_path / "nowhere" / "detector.pth"
    with pytest.raises(ModelError, match=str(missing)):
        run(missing)
    other = tmp_path / "linear.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), other)
    with pytest.raises(ValueError, match="does not fit torchvision model") as e:
        run(other)
    assert str(other) in str(e.value)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read detector checkpoint"):
        run(garbage)


# ---------------------------------------------------------------------------------------------- devices
def test_resolve_device():
    torch = pytest.importorskip("torch")
    from posebank.vision.device import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="device"):
        resolve_device("tpu")
    if torch.cuda.is_available():
        pytest.skip("CUDA is present: the CPU-only behaviour is not testable here")
    assert resolve_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device(name)
