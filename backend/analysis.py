"""Face analysis: find the face, its 478 landmarks, head pose and person mask.

MediaPipe 0.10.21's legacy "solutions" carry their models inside the wheel,
so nothing is downloaded. Faces are detected on a downscaled copy of the
photo, then landmarks are found on a square crop around the chosen face, so a
4096 px photo costs about as much as a 512 px one.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# MediaPipe logs through glog/absl to stderr at import; keep the terminal clean.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2
import numpy as np

from . import landmarks as lm
from .body_analysis import (POSE_CROPS, POSE_MAX_SIDE, Body, body_points, body_region_box, own_share,
                            pose_crop_box)
from .engines.palette import LUMA, ONE_TINT, tint_of
from .errors import NoFaceError
from .geometry import HeadPose, estimate_head_pose
from .rig import mouth_opening_of

DETECTION_MAX_SIDE = 1024  # faces are found on a copy at most this big
DETECTION_TILE = 0.6  # a larger photo is also searched in overlapping quarters this fraction of its sides
MESH_CROP_SIDE = 512  # the landmark crop is resampled to this size
MESH_CROP_FACTOR = 1.8  # crop side over the detected face box side
HEAD_REGION_FACTOR = 2.6  # the animated region's side over the face width
SEGMENTATION_SIDE = 512
PERSON_HALO = 3.0  # segmentation pixels: the person mask's faint outer tail is widened by a Gaussian this wide
HALO_FLOOR = 1e-3  # ... down to this value
# An iris is darker than the skin around its eye: the darkest tenth of its disc under this share of the skin's
# median luma. On a turned face's far eye the mesh can put the iris on the lid's skin beside the eye
# (2007_007763 #0: 0.90; every other eye of the evaluation photos, at two sizes, 0.02-0.67), and a gaze then
# moved a disc of skin and filled the eye with white where there was none.
IRIS_DARKER = 0.8
ASTRONAUT_PATH = Path(__file__).parent / "assets" / "astronaut.png"  # public domain (NASA)


@dataclass(frozen=True)
class Subject:
    """A photo and everything we know about its face; computed once per image."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    image_hash: str
    landmarks: np.ndarray  # (478, 3) float32 image pixels: x right, y down, z into the picture
    pose: HeadPose
    face_box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    faces_found: int
    face_index: int
    head_region: tuple[int, int, int, int]  # x0, y0, x1, y1: the only part of the photo that moves
    mask: np.ndarray = field(repr=False)  # float32 person mask over head_region, 1 = person
    body: Body | None = None  # shoulders and the body's region, None where the photo shows no shoulders
    # The detector's boxes (x0, y0, x1, y1) of the photo's other faces: this face's motion leaves them still.
    other_faces: tuple[tuple[float, float, float, float], ...] = ()

    @property
    def face_width(self) -> float:
        return float(np.linalg.norm(self.landmarks[lm.FACE_LEFT_EDGE, :2] - self.landmarks[lm.FACE_RIGHT_EDGE, :2]))

    @property
    def eye_openness(self) -> tuple[float, float]:
        """Eye aspect ratio of the subject's (left, right) eye."""
        return lm.eye_aspect_ratio(self.landmarks, "left"), lm.eye_aspect_ratio(self.landmarks, "right")

    @property
    def mouth_openness(self) -> float:
        return lm.mouth_openness(self.landmarks)

    def summary(self) -> dict:
        """A JSON-able description for people and for the wire."""
        yaw, pitch, roll = self.pose.angles
        eye_left, eye_right = self.eye_openness
        height, width = self.image.shape[:2]
        return {
            "image_hash": self.image_hash,
            "width": width,
            "height": height,
            "faces_found": self.faces_found,
            "face_index": self.face_index,
            "face_box": [round(v, 1) for v in self.face_box],
            "head_region": list(self.head_region),
            "head_pose_deg": {"yaw": round(yaw, 2), "pitch": round(pitch, 2), "roll": round(roll, 2)},
            "eye_openness": {"left": round(eye_left, 3), "right": round(eye_right, 3)},
            "mouth_openness": round(self.mouth_openness, 3),
            "mouth": mouth_opening_of(self).to_dict(),  # how jaw_open moves the lips: speech is fitted to them
            "face_width_px": round(self.face_width, 1),
            "body": None if self.body is None else self.body.summary(),
        }


def image_hash(rgb: np.ndarray) -> str:
    """Content hash of the decoded pixels, so the same photo re-saved as PNG or sent over the wire matches."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.asarray(rgb.shape, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(rgb).data)
    return digest.hexdigest()


@contextlib.contextmanager
def _native_stderr_silenced():
    """MediaPipe's C++ side logs start-up chatter straight to file descriptor 2;
    hide it while the graphs start (the only time it talks)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _Models:
    """The four MediaPipe graphs, created once. They are not thread-safe, hence the lock."""

    def __init__(self):
        import mediapipe as mp

        self.lock = threading.Lock()
        with _native_stderr_silenced():
            self.detector = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
            self.mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                        refine_landmarks=True, min_detection_confidence=0.3)
            self.segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
            # model_complexity 1: its model ships in the wheel (2 would be downloaded).
            self.pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)
            # The first inference of each graph logs too: run it now, on a face.
            warm_up = cv2.resize(cv2.imread(str(ASTRONAUT_PATH))[:256, 128:384], (256, 256))
            self.detector.process(warm_up)
            self.mesh.process(warm_up)
            self.segmenter.process(warm_up)
            self.pose.process(warm_up)


_models: _Models | None = None
_models_lock = threading.Lock()


def _get_models() -> _Models:
    global _models
    with _models_lock:
        if _models is None:
            _models = _Models()
        return _models


def detect_faces(rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Face boxes (x0, y0, x1, y1) in pixels, largest first.

    A photo larger than DETECTION_MAX_SIDE is searched whole and in four overlapping quarters (each
    DETECTION_TILE of its size): scaled down whole, the small faces of a group photo fall under what the
    detector sees. So is a black-and-white or sepia photo, whatever its size: the detector, trained on
    colour, misses colourless faces that it finds when they fill more of its view (a grey group photo:
    1 face of 7 whole). A face found in a quarter counts when its centre is in no face already found."""
    boxes = _detect(rgb)
    height, width = rgb.shape[:2]
    if max(height, width) > DETECTION_MAX_SIDE or tint_of(rgb)[1] < ONE_TINT:
        tile_h, tile_w = round(height * DETECTION_TILE), round(width * DETECTION_TILE)
        for top in (0, height - tile_h):
            for left in (0, width - tile_w):
                for x0, y0, x1, y1 in _detect(rgb[top:top + tile_h, left:left + tile_w]):
                    box = (x0 + left, y0 + top, x1 + left, y1 + top)
                    if not any(_holds(found, box) for found in boxes):
                        boxes.append(box)
    boxes.sort(key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)
    return boxes


def _holds(box: tuple[float, ...], other: tuple[float, ...]) -> bool:
    """Whether `other`'s centre lies inside `box`."""
    centre_x, centre_y = (other[0] + other[2]) / 2, (other[1] + other[3]) / 2
    return box[0] <= centre_x <= box[2] and box[1] <= centre_y <= box[3]


def _detect(rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
    """The detector's face boxes on `rgb` scaled to at most DETECTION_MAX_SIDE, in `rgb`'s pixels."""
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECTION_MAX_SIDE / max(height, width))
    small = cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    models = _get_models()
    with models.lock:
        result = models.detector.process(np.ascontiguousarray(small))
    boxes = []
    for detection in result.detections or []:
        box = detection.location_data.relative_bounding_box
        boxes.append((box.xmin * width, box.ymin * height, (box.xmin + box.width) * width, (box.ymin + box.height) * height))
    return boxes


def square_crop(rgb: np.ndarray, centre: tuple[float, float], side: float, out_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample a square around `centre` (padding with edge pixels past the border).

    Returns the crop and the 2x3 affine that maps crop pixels back to the photo.
    """
    scale = side / out_side
    to_photo = np.array([[scale, 0.0, centre[0] - side / 2], [0.0, scale, centre[1] - side / 2]])
    crop = cv2.warpAffine(rgb, to_photo, (out_side, out_side), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_AREA
                          if scale > 1 else cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, to_photo


def find_landmarks(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
    """478 landmarks in photo pixels for the face in `box`, or None if the mesh finds no face there."""
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    side = MESH_CROP_FACTOR * max(box[2] - box[0], box[3] - box[1])
    crop, to_photo = square_crop(rgb, centre, side, MESH_CROP_SIDE)
    models = _get_models()
    with models.lock:
        result = models.mesh.process(crop)
    if not result.multi_face_landmarks:
        return None
    normalised = np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=np.float64)
    crop_pixels = normalised * MESH_CROP_SIDE
    points = np.empty_like(crop_pixels)
    points[:, :2] = crop_pixels[:, :2] @ to_photo[:, :2].T + to_photo[:, 2]
    points[:, 2] = crop_pixels[:, 2] * to_photo[0, 0]
    return points


def irises_on_the_eyes(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`points` with each iris that lies no darker than the skin around its eye (IRIS_DARKER) moved, whole, to
    the darkest disc of its size inside the eye's opening, if that one is dark enough; others as they are."""
    points = points.copy()
    for iris, side in lm.IRISES:
        centre, radius = lm.iris_circle(points, iris)
        radius = max(radius, 1.0)
        opening = points[list(lm.eye_polygon(side)), :2].astype(np.float64)
        reach = int(np.ceil(2 * radius)) + 2  # the skin around the eye: this far out from its opening
        x0, y0 = np.floor(np.minimum(opening.min(axis=0), centre - radius)).astype(int) - reach
        x1, y1 = np.ceil(np.maximum(opening.max(axis=0), centre + radius)).astype(int) + reach + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, rgb.shape[1]), min(y1, rgb.shape[0])
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        luma = rgb[y0:y1, x0:x1].astype(np.float32) @ LUMA
        inside = np.zeros(luma.shape, np.uint8)
        cv2.fillPoly(inside, [np.round((opening - (x0, y0)) * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
        around = cv2.dilate(inside, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach - 1, 2 * reach - 1)))
        skin = (around > 0) & (cv2.dilate(inside, np.ones((3, 3), np.uint8), iterations=2) == 0)
        if not skin.any() or not inside.any():
            continue
        skin_luma = max(float(np.median(luma[skin])), 1.0)
        ys, xs = np.mgrid[:luma.shape[0], :luma.shape[1]]

        def darkness(x: float, y: float) -> float:  # the disc's darkest tenth (inside the opening) over the skin
            disc = np.hypot(xs - x, ys - y) <= radius
            shown = disc & (inside > 0)
            if not disc.any():  # off the photo (a face cut by its edge): nothing to judge, so left as it is
                return 0.0
            return float(np.percentile(luma[shown if shown.sum() >= 2 else disc], 10)) / skin_luma

        if darkness(*(centre - (x0, y0))) < IRIS_DARKER:
            continue
        blurred = np.where(inside > 0, cv2.GaussianBlur(luma, (0, 0), max(radius / 2, 0.7)), np.inf)
        y, x = np.unravel_index(np.argmin(blurred), blurred.shape)
        if darkness(x, y) < IRIS_DARKER:
            points[list(iris), :2] += np.array([x + x0, y + y0], np.float64) - centre
    return points


def head_region_box(points: np.ndarray, image_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The part of the photo that animation may change: a square around the head, clipped to the photo.

    Hair extends above the forehead and the neck below the chin, so the box is
    centred a little above the face centre.
    """
    height, width = image_shape[:2]
    face_width = float(np.linalg.norm(points[lm.FACE_LEFT_EDGE, :2] - points[lm.FACE_RIGHT_EDGE, :2]))
    face_height = float(np.linalg.norm(points[lm.FOREHEAD_TOP, :2] - points[lm.CHIN, :2]))
    side = HEAD_REGION_FACTOR * max(face_width, 0.8 * face_height)
    centre_x, centre_y = points[:, :2].mean(axis=0)
    centre_y -= 0.1 * face_height
    x0, y0 = max(0, int(centre_x - side / 2)), max(0, int(centre_y - side / 2))
    x1, y1 = min(width, int(np.ceil(centre_x + side / 2))), min(height, int(np.ceil(centre_y + side / 2)))
    return x0, y0, x1, y1


def person_mask(rgb: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    """Soft person mask (float32 0..1) over `region`, segmented on that region for detail around the head."""
    x0, y0, x1, y1 = region
    side = max(x1 - x0, y1 - y0)
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    crop, to_photo = square_crop(rgb, centre, side, SEGMENTATION_SIDE)
    models = _get_models()
    with models.lock:
        mask = models.segmenter.process(crop).segmentation_mask.astype(np.float32)
    # The segmenter's mask falls to nothing a few pixels short of the fuzz at hair's edge. Left out of the person,
    # that fuzz stayed behind as a dark, hair-shaped line when the head moved away from it. A faint tail beyond
    # the edge makes it part of the person (moved with the hair, and the background plate shown where it was)
    # without moving the mask's edge itself.
    halo = cv2.GaussianBlur(mask, (0, 0), PERSON_HALO)
    mask = np.maximum(mask, np.where(halo >= HALO_FLOOR, halo, 0.0))  # (the backdrop's own mask stays exactly 0)
    # Map the square mask back onto the (possibly clipped, non-square) region.
    region_to_crop = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]])
    to_photo_inverse = cv2.invertAffineTransform(to_photo)
    region_to_square = to_photo_inverse @ np.vstack([region_to_crop, [0, 0, 1]])
    return cv2.warpAffine(mask.astype(np.float32), region_to_square, (x1 - x0, y1 - y0),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def with_face_filled(mask: np.ndarray, points: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    """The person `mask` (over `region`) at 1 inside the face's oval (its landmarks `points`, photo pixels).
    The segmenter reads a face the photo's edge cuts as half a person there (0.5-0.7 at the edge): a turn
    blended the moved face with the still photo, two eyes and brows at once, a ghost."""
    oval = np.round((points[list(lm.FACE_OVAL), :2] - region[:2]) * 16).astype(np.int32)
    face = np.zeros(mask.shape, np.float32)
    cv2.fillPoly(face, [oval], 1.0, cv2.LINE_AA, shift=4)
    return np.maximum(mask, face)


def find_body(rgb: np.ndarray, face: np.ndarray, head_region: tuple[int, int, int, int],
              face_boxes: Sequence[tuple[float, float, float, float]] = (), face_index: int = 0) -> Body | None:
    """The upper body of the face with landmarks `face` (see body_analysis), or None where the photo does
    not show its shoulders. Pose runs on a box around the face's expected torso, so in a group photo each
    face gets its own shoulders; `face_boxes` (the photo's, this face's being number `face_index`) say
    which of the person mask is this face's person."""
    for crop in POSE_CROPS:
        keypoints = pose_keypoints(rgb, pose_crop_box(face, rgb.shape, crop))
        found = None if keypoints is None else body_points(keypoints, face, rgb.shape)
        if found is not None:
            shoulders, hips, visibility = found
            region = body_region_box(shoulders, head_region, rgb.shape)
            own = own_share(region, face_boxes, face_index)
            return Body(shoulders, hips, visibility, region, person_mask(rgb, region), own)
    return None


def pose_keypoints(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """Pose's 33 keypoints ((33, 3): x, y in photo pixels, visibility) on the photo's `box`, or None."""
    x0, y0, x1, y1 = box
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    crop = rgb[y0:y1, x0:x1]
    scale = min(1.0, POSE_MAX_SIDE / max(x1 - x0, y1 - y0))
    if scale < 1:
        crop = cv2.resize(crop, (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))),
                          interpolation=cv2.INTER_AREA)
    models = _get_models()
    with models.lock:
        result = models.pose.process(np.ascontiguousarray(crop))
    if not result.pose_landmarks:
        return None
    keypoints = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float64)
    keypoints[:, 0] = keypoints[:, 0] * (x1 - x0) + x0
    keypoints[:, 1] = keypoints[:, 1] * (y1 - y0) + y0
    return keypoints


def analyze_image(rgb: np.ndarray, face_index: int = 0) -> Subject:
    """Analyse a photo (cached by content and face index)."""
    return analyze_faces(rgb, [face_index])[0]


def first_face(rgb: np.ndarray) -> Subject:
    """The face a command animates when none is named: face 0, the largest, or where its landmarks cannot be
    found (a soft old photo), the next face whose can: the face `enliven analyze` describes."""
    try:
        return analyze_image(rgb, 0)
    except NoFaceError:
        usable = analyze_faces(rgb, None)  # (no face at all: its own NoFaceError)
        if not usable:
            raise
        return usable[0]


def analyze_faces(rgb: np.ndarray, faces: Sequence[int] | None = None) -> list[Subject]:
    """The subjects of the faces numbered `faces` (numbered from 0, largest first; None: every face
    whose landmarks can be found, the others skipped), in the order asked, each cached by content and
    face index. The faces are detected once for all of them."""
    digest = image_hash(rgb)
    with _cache_lock:
        wanted = _every_face.get(digest, ()) if faces is None else faces
        cached = {index: _cache[(digest, index)] for index in wanted if (digest, index) in _cache}
        for index in cached:
            _cache.move_to_end((digest, index))  # least recently used goes first
    if wanted and len(cached) == len(set(wanted)):
        return [cached[index] for index in wanted]
    boxes = _detected_faces(rgb, digest)
    if faces is None:
        with _cache_lock:  # a face analysed before is not analysed again
            cached = {index: _cache[(digest, index)] for index in range(len(boxes)) if (digest, index) in _cache}
        subjects, problems = [], []
        for index in range(max(1, len(boxes))):
            try:
                subjects.append(cached.get(index) or _analyze_uncached(rgb, digest, boxes, index))
            except NoFaceError as problem:
                problems.append(problem)
        if not subjects:
            raise problems[0]
    else:
        subjects = [cached.get(index) or _analyze_uncached(rgb, digest, boxes, index) for index in faces]
    with _cache_lock:
        for subject in subjects:
            _cache[(digest, subject.face_index)] = subject
            _cache.move_to_end((digest, subject.face_index))
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        if faces is None:
            _every_face[digest] = tuple(subject.face_index for subject in subjects)
            while len(_every_face) > CACHE_SIZE:
                _every_face.popitem(last=False)
    return subjects


CACHE_SIZE = 32  # a group photo holds a subject per face
_cache: OrderedDict[tuple[str, int], Subject] = OrderedDict()
_boxes: OrderedDict[str, list[tuple[float, float, float, float]]] = OrderedDict()  # photo -> its face boxes
_every_face: OrderedDict[str, tuple[int, ...]] = OrderedDict()  # photo -> the faces it has that can be animated
_cache_lock = threading.Lock()


def _detected_faces(rgb: np.ndarray, digest: str) -> list[tuple[float, float, float, float]]:
    """detect_faces, once per photo: each face of a group photo asked for on its own (a preview of face 0,
    then every face listed) would otherwise run the detector, up to five passes, again."""
    with _cache_lock:
        boxes = _boxes.get(digest)
        if boxes is not None:
            _boxes.move_to_end(digest)
            return boxes
    boxes = detect_faces(rgb)
    with _cache_lock:
        _boxes[digest] = boxes
        while len(_boxes) > CACHE_SIZE:
            _boxes.popitem(last=False)
    return boxes


def _analyze_uncached(rgb: np.ndarray, digest: str, boxes: list[tuple[float, float, float, float]],
                      face_index: int) -> Subject:
    if not boxes:
        # The detector can miss a face that fills the whole frame; the mesh
        # model, run on the full photo, still finds it.
        height, width = rgb.shape[:2]
        boxes_tried = [(0.0, 0.0, float(width), float(height))]
    else:
        boxes_tried = boxes
    if face_index < 0 or face_index >= len(boxes_tried):
        raise NoFaceError(f"There is no face number {face_index} in the photo: {len(boxes_tried)} face(s) found "
                          f"(numbered from 0, largest first).")
    points = find_landmarks(rgb, boxes_tried[face_index])
    if points is None:
        if not boxes:
            raise NoFaceError("No face found in the photo. Use a photo where one face is clearly visible, "
                              "at least about 64 pixels wide.")
        raise NoFaceError(f"A face was detected but its landmarks could not be found (face {face_index}); "
                          "it may be too small, too turned or partly hidden.")
    points = irises_on_the_eyes(rgb, points)
    region = head_region_box(points, rgb.shape)
    face_box = (float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()), float(points[:, 1].max()))
    return Subject(
        image=rgb, image_hash=digest, landmarks=points.astype(np.float32), pose=estimate_head_pose(points),
        face_box=face_box, faces_found=len(boxes_tried), face_index=face_index, head_region=region,
        mask=with_face_filled(person_mask(rgb, region), points, region),
        body=find_body(rgb, points, region, boxes, face_index),
        other_faces=tuple(tuple(float(v) for v in box) for index, box in enumerate(boxes) if index != face_index),
    )


def reduced_subject(subject: Subject, max_side: int) -> Subject:
    """The subject on its photo scaled down so its longer side is at most `max_side` (itself when it
    already is): every pixel measure scaled, nothing analysed again. For quick previews of large photos."""
    height, width = subject.image.shape[:2]
    factor = max_side / max(height, width)
    if factor >= 1:
        return subject
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    image = cv2.resize(subject.image, size, interpolation=cv2.INTER_AREA)
    x0, y0, x1, y1 = subject.head_region
    region = (int(x0 * factor), int(y0 * factor), min(size[0], int(np.ceil(x1 * factor))),
              min(size[1], int(np.ceil(y1 * factor))))
    mask = cv2.resize(subject.mask, (region[2] - region[0], region[3] - region[1]), interpolation=cv2.INTER_AREA)
    pose = HeadPose(subject.pose.rotation, subject.pose.origin * factor, subject.pose.scale * factor)
    return Subject(image=image, image_hash=image_hash(image), landmarks=(subject.landmarks * factor).astype(np.float32),
                   pose=pose, face_box=tuple(v * factor for v in subject.face_box), faces_found=subject.faces_found,
                   face_index=subject.face_index, head_region=region, mask=mask,
                   body=_reduced_body(subject.body, factor, size),
                   other_faces=tuple(tuple(v * factor for v in box) for box in subject.other_faces))


def _reduced_body(body: Body | None, factor: float, size: tuple[int, int]) -> Body | None:
    if body is None:
        return None
    x0, y0, x1, y1 = body.region
    region = (int(x0 * factor), int(y0 * factor), min(size[0], int(np.ceil(x1 * factor))),
              min(size[1], int(np.ceil(y1 * factor))))
    size = (region[2] - region[0], region[3] - region[1])
    mask = cv2.resize(body.mask, size, interpolation=cv2.INTER_AREA)
    own = None if body.own is None else cv2.resize(body.own, size, interpolation=cv2.INTER_AREA)
    return body.scaled(factor, mask, own, region)


def draw_overlay(subject: Subject, out: np.ndarray | None = None) -> np.ndarray:
    """Debug picture: person mask tinted, landmarks dotted, head region and pose axes drawn (over `out`, an
    overlay of another face of the photo, when given)."""
    out = subject.image.copy() if out is None else out
    x0, y0, x1, y1 = subject.head_region
    tint = out[y0:y1, x0:x1].astype(np.float32)
    tint[..., 2] = tint[..., 2] * 0.6 + 255 * 0.4 * subject.mask
    out[y0:y1, x0:x1] = tint.clip(0, 255).astype(np.uint8)
    radius = max(1, round(subject.face_width / 150))
    for index, (x, y, _) in enumerate(subject.landmarks):
        colour = (255, 220, 0) if index >= lm.MESH_POINTS else (0, 255, 0)
        cv2.circle(out, (round(x), round(y)), radius, colour, -1, cv2.LINE_AA)
    cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), max(1, radius))
    origin = subject.pose.origin
    for axis, colour in zip(subject.pose.rotation.T, ((255, 0, 0), (0, 255, 0), (0, 128, 255))):
        tip = origin + axis * subject.pose.scale
        start = (round(origin[0]), round(-origin[1]))
        cv2.arrowedLine(out, start, (round(tip[0]), round(-tip[1])), colour, max(1, radius), cv2.LINE_AA)
    # The face's number (what --face takes), above its landmarks, in white on black so it reads on any photo.
    label, scale = str(subject.face_index), max(0.4, subject.face_width / 160)
    (width, height), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, radius))
    fx0, fy0 = subject.face_box[:2]
    corner = (int(np.clip(fx0, 0, out.shape[1] - width - 2)), int(np.clip(fy0 - 4, height + 2, out.shape[0] - 2)))
    cv2.rectangle(out, (corner[0] - 2, corner[1] - height - 2), (corner[0] + width + 2, corner[1] + 3), (0, 0, 0), -1)
    cv2.putText(out, label, corner, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, radius), cv2.LINE_AA)
    return out
