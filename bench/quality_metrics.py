"""Scores of one generated frame against the real one, as in DESIGN.md "Measuring quality".

All images are compared at SCORE_SIDE x SCORE_SIDE:

- AKD: mean distance in pixels between dlib's 68 landmarks of the generated
  and of the real frame (a detector independent of ours);
- AED: distance between dlib's 128-d face embeddings (0.6 is dlib's
  same-person threshold);
- L1: mean absolute pixel difference, pixels in [0, 1];
- NME: mean distance between MediaPipe's 478 landmarks of the two frames, in
  % of the real frame's inter-ocular (pupil to pupil) distance.

dlib comes from the `dlib-bin` wheel and its models from
`face-recognition-models`: evaluation-only dependencies, the `eval` extra
(`pip install -e '.[eval]'`, which pins the setuptools they need).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SCORE_SIDE = 256


def to_score_size(rgb: np.ndarray) -> np.ndarray:
    """The whole frame resized to SCORE_SIDE x SCORE_SIDE (area filter when shrinking)."""
    height, width = rgb.shape[:2]
    shrinking = max(height, width) > SCORE_SIDE
    return cv2.resize(rgb, (SCORE_SIDE, SCORE_SIDE), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


@dataclass
class RealFace:
    """What is measured once on a real frame and compared with every prediction of it."""

    image: np.ndarray  # score-size RGB
    dlib_box: object | None  # dlib.rectangle, reused for the prediction when dlib finds no face there
    dlib_points: np.ndarray | None  # (68, 2)
    embedding: np.ndarray | None  # (128,)
    mediapipe_points: np.ndarray | None  # (478, 2)


class Scorer:
    """Loads dlib's detector, 68-point predictor and face embedding network once."""

    def __init__(self):
        try:
            import dlib
            import face_recognition_models
        except ImportError as error:
            # (face-recognition-models imports pkg_resources, which setuptools 81+ no longer has: the extra pins
            # setuptools, so installing the two packages by name, as this line once said, still failed here)
            raise SystemExit(f"The quality benchmark needs the evaluation extras ({error}): in the repository, "
                             "pip install -e '.[eval]'") from error
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
        self.embedder = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())

    # ----- per image ----------------------------------------------------------

    def _dlib(self, image: np.ndarray, fallback_box=None):
        boxes = self.detector(image, 1)
        box = max(boxes, key=lambda b: b.area()) if len(boxes) else fallback_box
        if box is None:
            return None, None, None
        shape = self.predictor(image, box)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        embedding = np.array(self.embedder.compute_face_descriptor(image, shape))
        return box, points, embedding

    def real(self, rgb: np.ndarray) -> RealFace:
        image = to_score_size(rgb)
        box, points, embedding = self._dlib(image)
        return RealFace(image, box, points, embedding, _mediapipe_points(image))

    def score(self, real: RealFace, predicted_rgb: np.ndarray) -> dict[str, float]:
        """AKD, AED, L1 and NME of a prediction of `real` (NaN where a face was not found)."""
        image = to_score_size(predicted_rgb)
        l1 = float(np.abs(image.astype(np.float64) - real.image.astype(np.float64)).mean() / 255.0)
        akd = aed = nme = float("nan")
        if real.dlib_points is not None:
            _, points, embedding = self._dlib(image, real.dlib_box)
            akd = float(np.linalg.norm(points - real.dlib_points, axis=1).mean())
            aed = float(np.linalg.norm(embedding - real.embedding))
        if real.mediapipe_points is not None:
            predicted = _mediapipe_points(image)
            if predicted is not None:
                pupils = np.linalg.norm(real.mediapipe_points[468] - real.mediapipe_points[473])
                nme = float(np.linalg.norm(predicted - real.mediapipe_points, axis=1).mean() / pupils * 100)
        return {"AKD": akd, "AED": aed, "L1": l1, "NME": nme}


def _mediapipe_points(image: np.ndarray) -> np.ndarray | None:
    """MediaPipe's 478 landmarks (x, y) of the largest face, found as photo analysis finds them."""
    from enliven.analysis import detect_faces, find_landmarks

    boxes = detect_faces(image)
    height, width = image.shape[:2]
    box = boxes[0] if boxes else (0.0, 0.0, float(width), float(height))
    points = find_landmarks(image, box)
    return None if points is None else points[:, :2]
