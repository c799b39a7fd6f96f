"""Person detection on full frames, and posepile's rule for which box an example is cropped around.

Boxes are ``[x, y, w, h]`` floats in posebank's pixel convention (pixel centres at integer coordinates, so the
image spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``); a detection is ``[x, y, w, h, score]`` with the score in
[0, 1]. Detectors report boxes in the pixel-corner convention (pixel ``i`` spans ``[i, i + 1)``, as in COCO and
OpenCV), so their boxes are shifted by -0.5 px on the way out.

Backends (``DetectParams.backend``):

``projected``    no image work: every example keeps the box of its projected joints.
``hog``          OpenCV's built-in HOG + linear SVM people detector (Dalal & Triggs), no weights needed. Its
                 64x128 window holds the person with a margin of about 16 px on every side, so each window is
                 shrunk about its centre by ``hog_box_scale`` (width, height) to the person it was trained on.
                 Scores are the logistic function of the SVM margin.
``torchvision``  a torchvision detection model built without any download and filled from the checkpoint at
                 ``weights``; only COCO class 1 (person) is kept.

The box rule (posepile, ``ds/muco/main.py``, ``ds/panoptic/main.py``, also jta, sailvos): ground-truth boxes
of a frame are matched one-to-one to its detections by the Hungarian method on IoU
(``scipy.optimize.linear_sum_assignment(-iou)``); a matched detection replaces the ground-truth box when
``IoU > 0.1`` and ``area(detection) < 2 * area(ground truth)`` (jta: and its longer side exceeds 100 px,
``min_detection_side``). posepile drops the other people; here they keep the projected box unless ``fallback:
drop`` (``fallback: undetected``: dropped too, except in a frame where the detector found no one at all, which keeps
the projected box: posepile's ``ds/ikea/main.py``). ``rule: hull`` is posepile's single-person variant
(``ds/tdhp/main.py`` ``get_bbox``): the hull of the most confident detection and the ground-truth box, kept when
its IoU with the ground-truth box exceeds 0.5.
"""

from __future__ import annotations

import typing
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import scipy.optimize

from posebank.core.errors import ModelError
from posebank.core.settings import DETECT_MODELS, DetectParams

BACKENDS = typing.get_args(typing.get_type_hints(DetectParams)["backend"])
MODELS = DETECT_MODELS
PERSON_CLASS = 1
_HOG_PADDING = (8, 8)


# ------------------------------------------------------------------------------------------------ box geometry
def area(boxes) -> np.ndarray:
    """Areas of xywh boxes (..., 4); negative sizes count as empty."""
    b = np.asarray(boxes, np.float64)
    return np.clip(b[..., 2], 0, None) * np.clip(b[..., 3], 0, None)


def iou(a, b) -> np.ndarray:
    """Intersection over union of xywh boxes, broadcast over leading axes (``iou(a[:, None], b[None])`` gives the
    matrix). Only the first four numbers of each box are used, so detections can be passed as they are.
    Empty or non-finite boxes have IoU 0 with everything."""
    a = np.asarray(a, np.float64)[..., :4]
    b = np.asarray(b, np.float64)[..., :4]
    lo = np.maximum(a[..., :2], b[..., :2])
    hi = np.minimum(a[..., :2] + a[..., 2:], b[..., :2] + b[..., 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    union = area(a) + area(b) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        result = inter / union
    return np.where(np.isfinite(result) & (union > 0), result, 0.0)


def hull(a, b) -> np.ndarray:
    """Smallest xywh box holding both boxes."""
    a = np.asarray(a, np.float64)[:4]
    b = np.asarray(b, np.float64)[:4]
    lo = np.minimum(a[:2], b[:2])
    hi = np.maximum(a[:2] + a[2:], b[:2] + b[2:])
    return np.concatenate([lo, hi - lo])


def nms(boxes, scores, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, highest score first. A box is suppressed
    when its IoU with a kept, higher-scoring box exceeds ``iou_threshold``."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64).reshape(-1), kind="stable")
    keep = []
    while order.size:
        best, order = order[0], order[1:]
        keep.append(best)
        order = order[iou(boxes[best], boxes[order]) <= iou_threshold]
    return np.asarray(keep, np.int64)


def _scaled_about_center(boxes: np.ndarray, sx: float, sy: float) -> np.ndarray:
    out = boxes.astype(np.float64).copy()
    out[:, 0] += out[:, 2] * (1 - sx) / 2
    out[:, 1] += out[:, 3] * (1 - sy) / 2
    out[:, 2] *= sx
    out[:, 3] *= sy
    return out


def _empty() -> np.ndarray:
    return np.zeros((0, 5), np.float32)


def _finish(boxes_xywh, scores, params: DetectParams, suppress: bool = True) -> np.ndarray:
    """Threshold, suppress, sort by score and pack as float32 [x, y, w, h, score] rows."""
    boxes = np.asarray(boxes_xywh, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    ok = (scores > params.score_threshold) & np.isfinite(boxes).all(1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    boxes, scores = boxes[ok], scores[ok]
    keep = nms(boxes, scores, params.nms_iou) if suppress else np.argsort(-scores, kind="stable")
    keep = keep[: params.max_detections]
    return np.concatenate([boxes[keep], scores[keep, None]], axis=1).astype(np.float32)


def _as_bgr(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected BGR images of shape (H, W, 3), got {image.shape}")
    return image


# --------------------------------------------------------------------------------------------------- detectors
class Detector:
    """Finds people: ``detect(images)`` maps BGR uint8 frames to one float32 (K, 5) array [x, y, w, h, score]
    each, highest score first."""

    def __init__(self, params: DetectParams):
        self.params = params

    def detect(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError


class ProjectedDetector(Detector):
    """No detector: every frame has no detections, so each example keeps its projected box."""

    def detect(self, images):
        return [_empty() for _ in images]


class HogDetector(Detector):
    def __init__(self, params: DetectParams):
        super().__init__(params)
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect_one(self, image: np.ndarray) -> np.ndarray:
        p = self.params
        stride = (p.hog_win_stride, p.hog_win_stride)
        rects, weights = self.hog.detectMultiScale(_as_bgr(image), winStride=stride, padding=_HOG_PADDING,
                                                   scale=p.hog_scale)
        rects = np.asarray(rects, np.float64).reshape(-1, 4)
        if not len(rects):
            return _empty()
        margins = np.asarray(weights, np.float64).reshape(-1)
        boxes = _scaled_about_center(rects, *p.hog_box_scale)
        boxes[:, :2] -= 0.5  # corner convention -> pixel centres at integers
        return _finish(boxes, 1 / (1 + np.exp(-margins)), p)

    def detect(self, images):
        return [self.detect_one(im) for im in images]


def _checkpoint_state(ckpt, path: Path) -> dict:
    state = ckpt
    if isinstance(ckpt, Mapping):
        for key in ("model", "state_dict"):
            if isinstance(ckpt.get(key), Mapping):
                state = ckpt[key]
                break
    if not isinstance(state, Mapping) or not state:
        raise ModelError(path, "detector checkpoint holds no state_dict (expected a mapping of parameter names "
                         "to tensors, or a dict with one under 'model' or 'state_dict')")
    metadata = getattr(state, "_metadata", None)  # module versions, used by some modules when loading
    prefix = "module." if all(k.startswith("module.") for k in state) else ""  # saved from (Distributed)DataParallel
    state = OrderedDict((k[len(prefix):], v) for k, v in state.items())
    if metadata is not None:
        state._metadata = OrderedDict(
            (k[len(prefix):] if k.startswith(prefix) else "", v) for k, v in metadata.items())
    return state


def _check_fits(model, state: dict, path: Path, name: str):
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [k for k in state if k in own and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)]
    if missing or unexpected or wrong_shape:
        def few(keys):
            return ", ".join(keys[:3]) + (" ..." if len(keys) > 3 else "")

        raise ModelError(
            path, f"detector checkpoint does not fit torchvision model {name!r} (is it a checkpoint of another "
            f"architecture?): {len(missing)} missing [{few(missing)}], {len(unexpected)} unexpected "
            f"[{few(unexpected)}], {len(wrong_shape)} of another shape [{few(wrong_shape)}]")


class TorchvisionDetector(Detector):
    """A torchvision detection model; weights come only from the local checkpoint ``params.weights``."""

    def __init__(self, params: DetectParams):
        super().__init__(params)
        import torch
        import torchvision.models.detection as tvd

        from posebank.vision.device import resolve_device

        self.torch = torch
        path = Path(params.weights)
        if not path.is_file():
            raise ModelError(
                path, f"detector weights not found (the torchvision backend loads a local {params.model} "
                f"checkpoint and never downloads one)")
        self.device = resolve_device(params.device)
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ModelError(path, f"cannot read detector checkpoint as a torch file of tensors: {e}") from None
        state = _checkpoint_state(ckpt, path)
        builder = getattr(tvd, params.model)
        model = builder(weights=None, weights_backbone=None, num_classes=MODELS[params.model],
                        box_score_thresh=params.score_threshold, box_nms_thresh=params.nms_iou,
                        box_detections_per_img=params.max_detections)
        _check_fits(model, state, path, params.model)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise ModelError(path, f"detector checkpoint does not fit torchvision model {params.model!r}: "
                             f"{e}") from None
        self.model = model.eval().to(self.device)

    def _to_tensor(self, image: np.ndarray):
        rgb = np.ascontiguousarray(_as_bgr(image)[..., ::-1])
        t = self.torch.from_numpy(rgb).to(self.device).permute(2, 0, 1)
        return t.to(self.torch.float32).div_(255)

    def _postprocess(self, output) -> np.ndarray:
        from torchvision.ops import nms as tv_nms

        person = output["labels"] == PERSON_CLASS
        boxes, scores = output["boxes"][person], output["scores"][person]
        keep = scores > self.params.score_threshold
        boxes, scores = boxes[keep], scores[keep]
        keep = tv_nms(boxes, scores, self.params.nms_iou)  # sorted by decreasing score
        boxes, scores = boxes[keep].double().cpu().numpy(), scores[keep].double().cpu().numpy()
        xywh = np.concatenate([boxes[:, :2] - 0.5, boxes[:, 2:] - boxes[:, :2]], axis=1)
        return _finish(xywh, scores, self.params, suppress=False)

    def detect(self, images):
        """Images of one size go through the model together, ``batch_size`` at a time (no padding to a common
        size, so an image's detections do not depend on which images share its batch)."""
        results: list[np.ndarray | None] = [None] * len(images)
        by_size: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            by_size.setdefault(np.shape(im)[:2], []).append(i)
        bs = self.params.batch_size
        with self.torch.inference_mode():
            for indices in by_size.values():
                for start in range(0, len(indices), bs):
                    chunk = indices[start:start + bs]
                    outputs = self.model([self._to_tensor(images[i]) for i in chunk])
                    for i, out in zip(chunk, outputs):
                        results[i] = self._postprocess(out)
        return results


def make_detector(params: DetectParams) -> Detector:
    """The detector of ``params.backend`` (loads model weights for ``torchvision``)."""
    return {"projected": ProjectedDetector, "hog": HogDetector, "torchvision": TorchvisionDetector}[
        params.backend](params)


# ------------------------------------------------------------------------------------------------ box choice
def _as_detections(detections) -> np.ndarray:
    """(K, 5) float64 [x, y, w, h, score] from (K, 5) detections or (K, 4) boxes (score 1)."""
    det = np.asarray(detections, np.float64)
    if det.size == 0:
        return np.zeros((0, 5))
    if det.ndim != 2 or det.shape[1] not in (4, 5):
        raise ValueError(f"detections must be a (K, 5) or (K, 4) array, got shape {det.shape}")
    return det if det.shape[1] == 5 else np.concatenate([det, np.ones((len(det), 1))], axis=1)


def match_detections(gt_boxes, detections, min_iou: float = 0.1) -> list[int | None]:
    """For each ground-truth box, the index of its detection or None: a one-to-one assignment maximising the
    total IoU (Hungarian method), a pair kept only when its IoU exceeds ``min_iou``."""
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    result: list[int | None] = [None] * len(gt)
    det = _as_detections(detections)
    if not len(gt) or not len(det):
        return result
    overlap = iou(gt[:, None], det[None, :, :4])
    rows, cols = scipy.optimize.linear_sum_assignment(-overlap)
    for r, c in zip(rows, cols):
        if overlap[r, c] > min_iou:
            result[r] = int(c)
    return result


def choose_box(gt_box, detection, min_iou: float = 0.1, max_area_ratio: float | None = 2.0,
               min_side: float = 0.0) -> tuple[np.ndarray, str]:
    """posepile's rule for one person: the matched detection's box when it agrees with the ground truth (IoU
    above ``min_iou``, area below ``max_area_ratio`` x the ground-truth box's, longer side above ``min_side``),
    else the ground-truth (projected) box. Returns (box [x, y, w, h], "detection" | "projected")."""
    gt = np.asarray(gt_box, np.float64)[:4]
    if detection is not None:
        det = np.asarray(detection, np.float64)[:4]
        if (np.isfinite(det).all() and iou(gt, det) > min_iou and max(det[2], det[3]) > min_side
                and (max_area_ratio is None or area(det) < max_area_ratio * area(gt))):
            return det, "detection"
    return gt, "projected"


def choose_hull_box(gt_box, detections, min_iou: float = 0.5) -> tuple[np.ndarray, str]:
    """posepile's single-person rule (MPI-INF-3DHP): the hull of the most confident detection and the
    ground-truth box when that hull's IoU with the ground-truth box exceeds ``min_iou``, else the ground-truth
    box. Returns (box, "hull" | "projected")."""
    gt = np.asarray(gt_box, np.float64)[:4]
    det = _as_detections(detections)
    if len(det) and np.isfinite(gt).all():
        box = hull(det[np.argmax(det[:, 4]), :4], gt)
        if iou(box, gt) > min_iou:
            return box, "hull"
    return gt, "projected"


def select_boxes(gt_boxes, detections, params: DetectParams) -> list[tuple[np.ndarray | None, str]]:
    """The box of every person of one frame: (box, source) with source "detection", "hull" or "projected";
    with ``fallback: drop`` (and a detector) a person whose detection was not accepted gets (None, "dropped"); with
    ``fallback: undetected`` too, unless the frame has no detection at all (then every person keeps the projected
    box)."""
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    det = _as_detections(detections)
    if params.rule == "hull":
        chosen = [choose_hull_box(g, det, params.hull_min_iou) for g in gt]
    else:
        matches = match_detections(gt, det, params.min_match_iou)
        chosen = [choose_box(g, None if m is None else det[m], params.min_match_iou, params.max_area_ratio,
                             params.min_detection_side) for g, m in zip(gt, matches)]
    drop = params.fallback == "drop" or (params.fallback == "undetected" and len(det) > 0)
    if drop and params.backend != "projected":  # without a detector nothing is rejected
        chosen = [(None, "dropped") if source == "projected" else (box, source) for box, source in chosen]
    return chosen
