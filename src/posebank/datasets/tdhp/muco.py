"""MuCo-3DHP (Mehta et al., 3DV 2018): multi-person composites made from MPI-INF-3DHP training frames.

The authors distribute a MATLAB script, not images: it pastes people from frames of the *same camera* of
different 3DHP training sequences into one image, using the sequences' foreground and chair masks. posepile runs it
(patched, ``ds/muco/*.patch``) and keeps the composites numbered below 200000 (``muco_3dhp_200k``). posebank composes
in Python, deterministically from a seed, straight into the cache (no composite images are written to disk):

* composite ``k`` (id ``k + 1``, source ``composites/<id, 6 digits>`` as the script's ``<id>.jpg``; the default 199999
  composites are posepile's ids 1..199999) picks a camera, then ``people_per_composite`` people (4, as the script's
  quadruples) from distinct subjects: a random sequence, a random candidate frame (every ``frame_step``-th frame
  whose joints all project inside the image) and a brightness jitter, gamma 0.7 + U(0, 0.1), each (the patched
  script's ``imadjust(imread(img_path), [], [], 0.7 + rand()/10)``);
* the people are ordered by depth (pelvis distance along the optical axis); the farthest person's frame is the
  background; each nearer person's frame is pasted as the patched script does: first where its ChairMasks frame is
  dark (the chair), then with its FGmasks red channel (blurred by ``mask_blur_px``) as the alpha;
* each person's mask is its own FGmasks person (posepile's ``postprocess.py`` get_mask: red > 100, the component that
  best overlaps the person's box, within the box 1.3 x) minus what nearer people's pastes cover, so masks of different
  people never overlap; a joint covered by a nearer paste (or outside the image) is marked not visible.

Every person keeps its own sequence's camera and world joints (28 joints, as posepile's ``muco``); the raw tree
is the MPI-INF-3DHP training tree (``datasets.tdhp.raw``), with its FGmasks and ChairMasks videos. Reading frames
decodes the 3DHP videos from their start, so building the full set is meant to run on many cores.

Frames that cannot be candidates for a data reason (not every joint inside the image, no joint annotated, past
the end of a known short video) are reported as dropped, one entry per video.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from posebank.core.errors import DatasetError, ParamsError
from posebank.core.settings import check_dataset_params
from posebank.core.store import OCCLUDED, VISIBLE
from posebank.datasets.base import DatasetInfo, Dropped, Frame, RawInstance
from posebank.datasets.sampling import drop_missing_poses, record_drop
from posebank.datasets.tdhp import common
from posebank.datasets.tdhp.fixture import make_fixture  # noqa: F401  (the contract: the tree's fixture)

NAME = "muco_3dhp"
INFO = DatasetInfo(
    name=NAME,
    full_name="MuCo-3DHP (multi-person composites of MPI-INF-3DHP)",
    homepage="https://vcai.mpi-inf.mpg.de/projects/SingleShotMultiPerson/",
    licence="As MPI-INF-3DHP: research use only; the composites are generated locally from the user's 3DHP copy.",
    citation=("D. Mehta, O. Sotnychenko, F. Mueller, W. Xu, S. Sridhar, G. Pons-Moll, C. Theobalt. Single-Shot "
              "Multi-Person 3D Pose Estimation From Monocular RGB. 3DV 2018."),
)
JOINT_INFO = common.FULL_JOINT_INFO
# composites have no sequence of their own (four people from random 3DHP frames): cut in equal parts of their order
SHARD_KEY: tuple[str, ...] = ()
SELECTED_JOINTS = common.FULL_SELECTED_JOINTS
PELVIS = JOINT_INFO.index("pelv")
SOURCE_PREFIX = "composites/"

DEFAULT_PARAMS = {
    "n_composites": 199999,  # posepile's muco_3dhp_200k: the composites numbered 1..199999 (ids below 200000)
    "people_per_composite": [4, 4],  # inclusive range; the authors' script composes quadruples
    "seed": 0,
    "subjects": [1, 2, 3, 4, 5, 6, 7, 8],
    "sequences": [1, 2],
    "cameras": [0, 1, 2, 4, 5, 6, 7, 8],
    "frame_step": 5,  # candidate frames
    "mask_blur_px": 1.5,  # soft edge of the pasted foreground (the MATLAB script blurs it too)
}
GAMMA_RANGE = (0.7, 0.8)  # per-person brightness jitter: imadjust(..., 0.7 + rand()/10) of the patched script
BOX_REGION = 1.3  # a person's mask lies within its box 1.3 x (posepile postprocess.py get_mask)
NOT_A_CANDIDATE = (f"not all {len(SELECTED_JOINTS)} joints inside the image (the person is truncated or out of "
                   "view): not a composite candidate")


@dataclasses.dataclass(frozen=True)
class Person:
    subject: int
    sequence: int
    frame: int  # annotation row = video frame
    gamma: float = 1.0  # brightness jitter of the person's frame (output = input^gamma on 0..1)


def composite_id(k: int) -> int:
    """The id of composite ``k`` (0-based): ``k + 1``, as the authors' script numbers its images from 1."""
    return k + 1


def composite_source(k: int) -> str:
    return f"{SOURCE_PREFIX}{composite_id(k):06d}"


def check_params(params: dict | None) -> dict:
    """``params`` over DEFAULT_PARAMS, checked; ParamsError names the key."""
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    common.check_subject_params(NAME, p, ("subjects",))
    ppc = p["people_per_composite"]
    if len(ppc) != 2 or not 1 <= ppc[0] <= ppc[1]:
        raise ParamsError(f"datasets.{NAME}.people_per_composite",
                          f"must be [lo, hi] with 1 <= lo <= hi, got {ppc}")
    if ppc[1] > len(p["subjects"]):
        raise ParamsError(f"datasets.{NAME}.people_per_composite",
                          f"{ppc[1]} people per composite need as many subjects, have {p['subjects']}")
    if p["n_composites"] < 1:
        raise ParamsError(f"datasets.{NAME}.n_composites", f"must be at least 1, got {p['n_composites']}")
    if p["mask_blur_px"] < 0:
        raise ParamsError(f"datasets.{NAME}.mask_blur_px", f"must be >= 0, got {p['mask_blur_px']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    """Always ``train``."""
    check_params(params)
    return ("train",)


def check_layout(root, params: dict | None = None) -> list[tuple[int, int]]:
    """Verify that the training tree holds what the composites need, the mask videos included; returns the
    (subject, sequence) pairs."""
    p = check_params(params)
    return common.check_layout(root, NAME, p["subjects"], p["sequences"], p["cameras"], common.VIDEO_KINDS)


@functools.lru_cache(maxsize=4)
def _sequences(root: str, subjects: tuple, sequences: tuple) -> dict[tuple[int, int], common.TrainSequence]:
    return {(s, q): common.load_sequence(root, s, q, NAME) for s in subjects for q in sequences}


def plan(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[tuple[int, list[Person]]]:
    """The composites (composite ``k`` has id ``k + 1``): for each, its camera and its people (farthest first, each
    with its frame and brightness jitter). Deterministic from the seed. Frames that cannot be candidates for a data
    reason are appended to ``dropped``."""
    p = check_params(params)
    check_layout(root, p)
    seqs = _sequences(str(root), tuple(p["subjects"]), tuple(p["sequences"]))
    step = p["frame_step"]
    candidates: dict[tuple[int, int, int], np.ndarray] = {}
    for (s, q), seq in seqs.items():
        for cam in p["cameras"]:
            video = common.video_path(s, q, cam)
            n = common.record_short_video(dropped, s, q, cam, len(seq.annot["frames"]), step)
            world = seq.world_coords(cam, SELECTED_JOINTS)[:n]
            calib = seq.calibration[cam]
            annotated = drop_missing_poses(world, range(0, n, step), video, dropped)
            counts = common.visible_joint_counts(calib.camera, world[annotated], calib.image_size)
            inside = counts == len(SELECTED_JOINTS)
            record_drop(dropped, video, np.asarray(annotated, np.int64)[~inside], NOT_A_CANDIDATE)
            frames = np.asarray(annotated, np.int64)[inside]
            if len(frames):
                candidates[(s, q, cam)] = frames
    rng = np.random.default_rng(p["seed"])
    lo, hi = p["people_per_composite"]
    out = []
    for _ in range(p["n_composites"]):
        cam = int(rng.choice(p["cameras"]))
        subjects = sorted({s for (s, _q, c) in candidates if c == cam})
        if len(subjects) < lo:
            raise DatasetError(f"{NAME}: camera {cam}", f"has candidate frames (every joint inside the image) in "
                                                        f"only {len(subjects)} subjects, {lo} are needed")
        n = int(rng.integers(lo, min(hi, len(subjects)) + 1))
        people = []
        for s in rng.choice(subjects, n, replace=False):
            seqs_of_s = sorted(q for (s2, q, c) in candidates if s2 == s and c == cam)
            q = int(rng.choice(seqs_of_s))
            frame = int(rng.choice(candidates[(int(s), q, cam)]))
            people.append(Person(int(s), q, frame, float(rng.uniform(*GAMMA_RANGE))))
        depth = [seqs[(h.subject, h.sequence)].calibration[cam].camera.world_to_camera(
            seqs[(h.subject, h.sequence)].world_coords(cam, SELECTED_JOINTS)[h.frame, PELVIS])[2] for h in people]
        out.append((cam, [people[i] for i in np.argsort(depth)[::-1]]))
    return out


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every person of every composite, composite by composite, farthest first."""
    p = check_params(params)
    composites = plan(root, p, dropped)  # checks the raw layout first
    seqs = _sequences(str(root), tuple(p["subjects"]), tuple(p["sequences"]))
    out = []
    for k, (cam, people) in enumerate(composites):
        for slot, h in enumerate(people):
            seq = seqs[(h.subject, h.sequence)]
            out.append(RawInstance(
                source=composite_source(k), frame_index=composite_id(k),
                world_coords=seq.world_coords(cam, SELECTED_JOINTS)[h.frame].astype(np.float32),
                camera=seq.camera(cam), split="train", subject=f"S{h.subject}", sequence=f"Seq{h.sequence}",
                activity=f"frame{h.frame}", camera_name=str(cam), person_index=slot))
    return out


def adjust_gamma(image: np.ndarray, gamma: float) -> np.ndarray:
    """``image`` (uint8) with intensities mapped as MATLAB's ``imadjust(image, [], [], gamma)``: 255 (v/255)^gamma."""
    lut = np.round(255 * (np.arange(256) / 255) ** gamma).astype(np.uint8)
    return lut[image]


def own_mask(f: common.PersonFrame) -> np.ndarray:
    """A person's mask in its own frame (posepile's get_mask): the FGmasks component (red > 100) that best overlaps
    the person's box, within the box 1.3 x; all False when there is none."""
    h, w = f.fg_alpha.shape
    mask = f.person_mask(common.MUCO_MASK_THRESHOLD)
    if mask is None:
        return np.zeros((h, w), bool)
    return mask & common.box_region(common.expanded_box(f.box, BOX_REGION, (w, h)), (h, w))


def compose(frames: Sequence[common.PersonFrame], blur_px: float, gammas: Sequence[float] | None = None
            ) -> tuple[np.ndarray, list[np.ndarray], list]:
    """Paste people (farthest first) into one image as the authors' patched script does; returns the image, each
    person's visible mask, and each person's per-joint visibility.

    Each frame is brightness-jittered by its gamma; the farthest person's frame is the background; each nearer
    person's frame is pasted where its chair is (ChairMasks red dark: ``C = C m + I (1 - m)``, m = red / 255), then
    with its foreground (``C = I a + C (1 - a)``, a = FGmasks red / 255 blurred by ``blur_px``).
    """
    gammas = [1.0] * len(frames) if gammas is None else list(gammas)
    images = [adjust_gamma(f.image, g) if g != 1 else f.image for f, g in zip(frames, gammas)]
    composite = images[0].astype(np.float32)
    h, w = composite.shape[:2]

    def soft(alpha):
        return cv2.GaussianBlur(alpha, (0, 0), blur_px) if blur_px > 0 else alpha

    owns = [own_mask(f) for f in frames]
    pasted = [np.zeros((h, w), bool)]  # what each person's paste covers (the farthest is the background)
    for f, image in zip(frames[1:], images[1:]):
        person = image.astype(np.float32)
        chair = (f.chair_alpha.astype(np.float32) / 255)[..., None]
        composite = composite * chair + person * (1 - chair)
        alpha = soft(f.fg_alpha.astype(np.float32) / 255)[..., None]
        composite = person * alpha + composite * (1 - alpha)
        pasted.append((alpha[..., 0] > 0.5) | (chair[..., 0] < 0.5))
    masks, visibility = [], []
    for i, f in enumerate(frames):
        covered = np.zeros((h, w), bool)
        for j in range(i + 1, len(frames)):
            covered |= pasted[j] | owns[j]
        masks.append(owns[i] & ~covered)
        xy = np.round(f.camera.project(f.world_coords)).astype(int)
        inside = (xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] < w) & (xy[:, 1] < h)
        vis = np.full(len(xy), OCCLUDED, np.uint8)
        idx = np.flatnonzero(inside)
        vis[idx] = np.where(covered[xy[idx, 1], xy[idx, 0]], OCCLUDED, VISIBLE)
        visibility.append(vis)
    return np.clip(np.round(composite), 0, 255).astype(np.uint8), masks, visibility


def frame_source(raw_root, params: dict | None = None):
    """Renders composite ``k`` (source ``composites/<k + 1>``, frame index ``k + 1``) with its people's masks and
    visibilities."""
    p = check_params(params)
    composites = plan(raw_root, p)
    seqs = _sequences(str(raw_root), tuple(p["subjects"]), tuple(p["sequences"]))

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        for i in sorted(set(indices)):
            k = i - 1
            if not 0 <= k < len(composites) or source != composite_source(k):
                raise DatasetError(f"{NAME}: {source}#{i}", f"no such composite (ids 1..{len(composites)})")
            cam, people = composites[k]
            person_frames = [next(seqs[(h.subject, h.sequence)].read_frames(cam, [h.frame], SELECTED_JOINTS))
                             for h in people]
            image, masks, visibility = compose(person_frames, p["mask_blur_px"], [h.gamma for h in people])
            yield i, Frame(image, masks=dict(enumerate(masks)), visibility=dict(enumerate(visibility)))

    return frames
