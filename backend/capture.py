"""Performance capture: motion channels from a video of a face (an iPhone's Live Link Face CSV: livelink.py).

Video capture, frame by frame:
  1. read the video with imageio's ffmpeg (any common format);
  2. find the face and its 478 landmarks the same way photo analysis does
     (so frame 0 captured here and frame 0 analysed as a photo agree), the
     face followed from frame to frame by its box;
  3. choose the reference frame the channels are measured from (the first,
     a named one, or the clip's most neutral frame);
  4. solve each frame's landmarks for channel values against the rig of the
     reference frame (enliven.solver); lips that touch are pressed together
     (a reference with an open mouth closes it with negative jaw_open);
  5. where the reference frame shows the performer's shoulders, follow
     them and the chest through the clip and read breathing, shrugs, lean
     and turn from their motion (enliven.body_capture);
  6. fill frames where no face was found (short gaps quietly, long gaps
     reported), then smooth every channel with a One-Euro filter
     (enliven.filters).

The result is a Motion at the video's frame rate: editable keyframes.
Retargeting to another face is the rig's job (channels are relative to each
face's own neutral); `retarget` only scales groups of channels (pose, eyes,
brows, mouth, body) when the captured performance is too strong or weak for the
new face.

`add_commands` registers the `enliven capture` subcommand.
"""
from __future__ import annotations

import argparse
import logging
import math
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .shared import protocol
from . import landmarks as lm
from .arguments import number_in
from .arrays import runs_of
from .errors import EnlivenError, NoFaceError, UsageError
from .filters import DEFAULT_SMOOTHING, SMOOTHING_LEVELS, OneEuroSettings, smooth_channels, smoothing_settings
from .rig import smoothstep
from .sequence import media_header
from .shared.channels import CHANNEL_INDEX, CHANNEL_NAMES, CHANNELS, GROUPS
from .shared.motion import Motion

# Gaps (frames without a face) up to this long are filled silently; longer
# ones are filled the same way but reported, as the motion there is invented.
DEFAULT_MAX_GAP_S = 0.5
# A face box in the next frame belongs to the same face when its centre is
# within this many box sides of the previous box's centre.
TRACKING_REACH = 0.6
# Tracked mouth openness (lip gap / mouth width) under which the lips touch.
TOUCHING = 0.06

# Called as progress(stage, frames done, total frames or None if unknown); stage is "tracking", "body" or "solving".
Progress = Callable[[str, int, int | None], None]


class VideoError(EnlivenError):
    """The video cannot be read: missing, not a video, or damaged."""

    code = protocol.E_BAD_VIDEO
    exit_code = 4


# ---------------------------------------------------------------- reading video


@dataclass(frozen=True)
class VideoInfo:
    path: str
    fps: float
    size: tuple[int, int]  # width, height
    frame_count_estimate: int | None  # from the container's duration; the decoder has the last word


# ffmpeg turns a phone's video upright (its rotation metadata), as it should be read; imageio-ffmpeg logs a
# warning that the frames' size then differs from the stored one, which the command printed.
logging.getLogger("imageio_ffmpeg").addFilter(
    lambda record: "is different from the source frame size" not in record.getMessage())


def open_video(path: str | Path):
    """An imageio reader for `path` and its VideoInfo; VideoError with a human message if it cannot be read."""
    import imageio.v2 as imageio

    path = Path(path)
    if not path.exists():
        raise VideoError(f"Cannot open '{path}': no such file.")
    if path.is_dir():
        raise VideoError(f"'{path}' is a folder, not a video file.")
    try:
        reader = imageio.get_reader(str(path), format="FFMPEG")
        meta = reader.get_meta_data()
    except Exception as error:  # imageio/ffmpeg raise OSError, RuntimeError, IndexError... for bad files
        why = _first_line(error)
        if "can not handle the given uri" in why:  # (imageio's words for a name no video has: a photo, a .mp3)
            raise VideoError(f"'{path}' is not a video we can read (MP4, MOV, MKV, AVI, WebM...).") from None
        raise VideoError(f"'{path}' is not a video we can read (MP4, MOV, MKV, AVI, WebM...) or it is damaged: "
                         f"{why}") from None
    fps = float(meta.get("fps") or 0.0)
    if not (math.isfinite(fps) and fps > 0):
        reader.close()
        raise VideoError(f"'{path}' has no frame rate; is it a video?")
    if _nominal_rate(path) not in (None, fps):
        # A variable rate: decoded at the rate the motion is given, its average (ffmpeg's pipe gave it at its
        # nominal rate, filling gaps with copies: a phone clip's 3.96 s became 102 frames at 17.45 fps, 5.85 s
        # of motion). A constant rate decodes as it is (imageio rounds a forced rate: 23.976 to 23.98).
        reader.close()
        reader = imageio.get_reader(str(path), format="FFMPEG", fps=fps)
    duration = meta.get("duration")
    estimate = round(duration * fps) if duration and math.isfinite(duration) else None
    size = tuple(int(v) for v in meta.get("size", (0, 0)))
    return reader, VideoInfo(str(path), fps, size, estimate)


def _nominal_rate(path: Path) -> float | None:
    """The video stream's nominal frame rate ("tbr", as imageio reads "fps": rounded to 2 decimals), or None."""
    found = re.search(r"Stream #.*?: Video:.*? ([0-9]+\.?[0-9]*) tbr", media_header(path))
    return float(found.group(1)) if found else None


def iter_video_frames(reader, info: VideoInfo) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 RGB frames; a decoding failure midway is a VideoError naming the frame."""
    index = 0
    iterator = iter(reader)
    while True:
        try:
            frame = next(iterator)
        except StopIteration:
            return
        except Exception as error:
            raise VideoError(f"'{info.path}' is damaged: decoding failed at frame {index} "
                             f"({_first_line(error)}).") from None
        yield np.ascontiguousarray(frame[..., :3])
        index += 1


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# ---------------------------------------------------------------- landmarks per frame


class FaceTracker:
    """Landmarks of one face through a sequence of frames.

    Each frame is analysed like a photo (face detection, then the landmark
    model on a crop around the face), which keeps frame 0 identical to
    `analyze_image` of that frame. From the second frame on, the face kept is
    the detection nearest to the previous one, so a second person walking
    through the shot is not picked up; when detection misses, the previous
    box is tried.
    """

    def __init__(self, face_index: int = 0):
        self.face_index = face_index
        self.box: tuple[float, float, float, float] | None = None

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        from .analysis import detect_faces, find_landmarks, irises_on_the_eyes

        boxes = detect_faces(rgb)
        box = self._choose(boxes, rgb.shape)
        if box is None:
            return None
        points = find_landmarks(rgb, box)
        if points is None:
            self.box = None if not boxes else self.box
            return None
        self.box = box
        return irises_on_the_eyes(rgb, points)

    def _choose(self, boxes: list, shape: tuple[int, ...]) -> tuple[float, float, float, float] | None:
        if self.box is None:
            if boxes:
                return boxes[self.face_index] if self.face_index < len(boxes) else None
            # As in photo analysis: the detector can miss a face filling the frame; the mesh may not.
            return (0.0, 0.0, float(shape[1]), float(shape[0])) if self.face_index == 0 else None
        previous_centre = np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])
        side = max(self.box[2] - self.box[0], self.box[3] - self.box[1])
        best, best_distance = None, TRACKING_REACH * side
        for box in boxes:
            centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
            distance = float(np.linalg.norm(centre - previous_centre))
            if distance <= best_distance:
                best, best_distance = box, distance
        return best if best is not None else self.box


def track_video(path: str | Path, face_index: int = 0,
                progress: Progress | None = None) -> tuple[np.ndarray, VideoInfo]:
    """(frames, 478, 3) landmarks in pixels for every frame (NaN where no face), and the video's info."""
    reader, info = open_video(path)
    tracker = FaceTracker(face_index)
    landmarks = []
    try:
        for index, frame in enumerate(iter_video_frames(reader, info)):
            points = tracker(frame)
            landmarks.append(np.full((lm.COUNT, 3), np.nan) if points is None else points)
            if progress:
                progress("tracking", index + 1, info.frame_count_estimate)
    finally:
        reader.close()
    if not landmarks:
        raise VideoError(f"'{path}' has no frames.")
    return np.stack(landmarks), info


def track_body(path: str | Path, reference_frame: int, face: np.ndarray, with_face: np.ndarray,
               progress: Progress | None = None) -> np.ndarray | None:
    """(frames, 5) raw body channel values (body_capture.BODY_CHANNELS; NaN where the body was lost, and
    on frames without a face: `with_face` is False there, and whatever fills the picture is not the
    performer), or None when the reference frame shows no shoulders of the face with landmarks `face`.

    The video is read again: once up to the reference frame, where Pose finds the shoulders as photo
    analysis does, then through the whole clip, following them from frame 0 (a still camera keeps the body
    near where the reference shows it, so frames before the reference are followed from there too).
    """
    from .analysis import find_body, head_region_box
    from .body_capture import BODY_CHANNELS, PatchFollower, grey, patches_for, solve_body
    from .engines.body import BodyField

    reference = None
    reader, info = open_video(path)
    try:
        for index, frame in enumerate(iter_video_frames(reader, info)):
            if index == reference_frame:
                reference = frame
                break
    finally:
        reader.close()
    if reference is None:
        return None
    body = find_body(reference, face, head_region_box(face, reference.shape))
    patches = None if body is None else patches_for(body, face, reference.shape)
    if patches is None:
        return None
    field = BodyField.of(body, face[lm.CHIN, :2], reference.shape)
    follower = PatchFollower(grey(reference), patches)
    values, previous = [], None
    reader, info = open_video(path)
    try:
        for index, frame in enumerate(iter_video_frames(reader, info)):
            if frame.shape == reference.shape and index < len(with_face) and with_face[index]:
                previous = solve_body(field, patches.centres, follower(grey(frame)), previous)
                values.append(previous)
            else:
                values.append(np.full(len(BODY_CHANNELS), np.nan))
            if progress:
                progress("body", index + 1, info.frame_count_estimate)
    finally:
        reader.close()
    return np.array(values).reshape(-1, len(BODY_CHANNELS))


# ---------------------------------------------------------------- reference frame


def choose_reference(landmarks: np.ndarray, reference: str | int = "first") -> int:
    """The frame channels are measured from: "first" (first frame with a face), "auto" (the most neutral
    frame) or a 0-based frame number."""
    found = np.flatnonzero(np.isfinite(landmarks).all(axis=(1, 2)))
    if found.size == 0:
        raise NoFaceError("No face found in any frame of the video. Use a video where one face is clearly "
                          "visible, at least about 64 pixels wide.")
    if reference == "first":
        return int(found[0])
    if reference == "auto":
        return most_neutral_frame(landmarks)
    try:
        index = int(reference)
    except (TypeError, ValueError):
        raise EnlivenError(f"--reference must be 'auto', 'first' or a frame number, got '{reference}'.") from None
    if not 0 <= index < len(landmarks):
        raise UsageError(f"Reference frame {index} is outside the video (frames 0 to {len(landmarks) - 1}).")
    if index not in set(found.tolist()):
        nearest = int(found[np.argmin(np.abs(found - index))])
        raise NoFaceError(f"No face found in reference frame {index}; the nearest frame with a face is {nearest}.")
    return index


def neutrality_scores(landmarks: np.ndarray) -> np.ndarray:
    """How far each frame is from the performer's neutral face (lower = more neutral; inf where no face).

    Neutral means the clip's typical head pose (the median: someone filmed
    from the side is neutral from the side, so captured turns stay centred),
    the mouth as closed as it gets in the clip, eyes open and brows as usual
    (the median), and mouth corners low and narrow for this clip (smiles are
    common in a take, frowns rare). Measuring against the clip
    itself means narrow eyes, high brows or lips that never quite meet are
    not mistaken for an expression.
    """
    from .geometry import estimate_head_pose

    scores = np.full(len(landmarks), np.inf)
    found = np.flatnonzero(np.isfinite(landmarks).all(axis=(1, 2)))
    if found.size == 0:
        return scores
    features = []
    for index in found:
        points = landmarks[index]
        eye_distance = np.linalg.norm(points[263, :2] - points[33, :2])
        mouth_width = np.linalg.norm(points[lm.MOUTH_LEFT_CORNER, :2] - points[lm.MOUTH_RIGHT_CORNER, :2])
        brow_height = (points[list(lm.LEFT_EYE_UPPER + lm.RIGHT_EYE_UPPER), 1].mean()
                       - points[list(lm.LEFT_BROW + lm.RIGHT_BROW), 1].mean()) / eye_distance
        corner_lift = (points[[lm.MOUTH_INNER_TOP, lm.MOUTH_INNER_BOTTOM], 1].mean()
                       - points[[lm.MOUTH_LEFT_CORNER, lm.MOUTH_RIGHT_CORNER], 1].mean()) / eye_distance
        features.append([*estimate_head_pose(points).angles, lm.mouth_openness(points),
                         lm.eye_aspect_ratio(points, "left"), lm.eye_aspect_ratio(points, "right"),
                         mouth_width / eye_distance, brow_height, corner_lift])
    features = np.array(features)
    typical = np.median(features, axis=0)
    typical[3] = np.percentile(features[:, 3], 10)  # the mouth at its most closed
    # People smile in a take far more often than they frown or pucker: the
    # relaxed mouth is narrower and its corners lower than the median.
    typical[6:9:2] = np.percentile(features[:, 6:9:2], 30, axis=0)
    # Each feature's deviation in units of a just-visible change:
    # 5 degrees of pose, 0.05 of mouth opening, 0.04 of eye opening, 5% of mouth width...
    visible = np.array([5.0, 5.0, 5.0, 0.05, 0.04, 0.04, 0.05, 0.03, 0.03])
    deviation = (features - typical) / visible
    scores[found] = np.linalg.norm(deviation, axis=1)
    return scores


def most_neutral_frame(landmarks: np.ndarray) -> int:
    return int(np.argmin(neutrality_scores(landmarks)))


# ---------------------------------------------------------------- solving and gaps


def solve_landmarks(landmarks: np.ndarray, reference: int, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Raw channel values (frames x channels, NaN rows where no face) relative to the reference frame,
    and each frame's fit error in pixels (mean landmark distance; NaN where no face)."""
    from .solver import Solver, rig_for_reference

    solver = Solver(rig_for_reference(landmarks[reference]))
    values = np.full((len(landmarks), len(CHANNEL_NAMES)), np.nan)
    errors = np.full(len(landmarks), np.nan)
    for index, points in enumerate(landmarks):
        if np.isfinite(points).all():
            values[index] = solver.solve(points)
            errors[index] = solver.residual(points, values[index])
        if progress:
            progress("solving", index + 1, len(landmarks))
    return values, errors


def press_touching_lips(values: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Lips that touch in the video are pressed together in the output.

    The solver fits sealed lips with the inner lip lines just touching, but
    MediaPipe's inner lip line runs a little inside the real lip's edge, so
    "just touching" still shows a sliver of teeth between the lips of a photo
    whose mouth is open. Where the tracked mouth is nearly shut (openness under
    TOUCHING) and the jaw is closing (negative), jaw_open is drawn smoothly to
    -1, where the rig presses the lips together, and lips_part to 0, which would part them
    again.
    """
    values = values.copy()
    jaw = values[:, CHANNEL_INDEX["jaw_open"]]
    openness = np.array([lm.mouth_openness(points) if np.isfinite(points).all() else np.nan for points in landmarks])
    touching = 1.0 - smoothstep(0.0, TOUCHING, np.nan_to_num(openness, nan=TOUCHING))
    closing = np.isfinite(jaw) & (jaw < 0)
    values[closing, CHANNEL_INDEX["jaw_open"]] = jaw[closing] - (1.0 + jaw[closing]) * touching[closing]
    values[closing, CHANNEL_INDEX["lips_part"]] *= 1.0 - touching[closing]
    return values


def missing_runs(present: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) runs of frames where `present` is False."""
    return runs_of(~np.asarray(present, dtype=bool))


def fill_gaps(values: np.ndarray) -> np.ndarray:
    """Rows that are NaN filled by linear interpolation between the nearest frames with a face
    (held constant before the first and after the last)."""
    values = np.array(values, dtype=np.float64)
    present = np.isfinite(values).all(axis=1)
    if not present.any():
        raise NoFaceError("No face found in any frame.")
    frames = np.arange(len(values))
    for column in range(values.shape[1]):
        values[~present, column] = np.interp(frames[~present], frames[present], values[present, column])
    return values


def describe_gaps(runs: list[tuple[int, int]], fps: float, max_gap_s: float) -> list[str]:
    """A warning for each gap longer than `max_gap_s`."""
    warnings = []
    for start, stop in runs:
        length = stop - start
        if length / fps > max_gap_s:
            span = f"frame {start}" if length == 1 else f"frames {start}-{stop - 1}"
            warnings.append(f"no face in {span} ({length / fps:.1f} s); the motion there is interpolated, "
                            "check it or key it by hand")
    return warnings


# ---------------------------------------------------------------- the whole capture


@dataclass
class Capture:
    """A captured performance: the motion and how it was found."""

    motion: Motion
    reference_frame: int
    landmarks: np.ndarray = field(repr=False)  # (frames, 478, 3) pixels, NaN where no face
    raw_values: np.ndarray = field(repr=False)  # (frames, channels) before gap filling and smoothing
    fit_error_px: np.ndarray = field(repr=False)  # (frames,) mean landmark distance of the fit, NaN if no face
    missing: list[tuple[int, int]]  # [start, stop) runs of frames without a face
    warnings: list[str]
    body_followed: bool = False  # the reference frame showed shoulders, and the body channels were captured

    def speech_jaw(self) -> np.ndarray:
        """The captured mouth's opening per frame as jaw_open alone: the lip gap that jaw_open and lips_part
        make together on the reference's rig, turned back into the jaw_open that makes that gap
        (MouthOpening.jaw_for; lips_part parts about 0.6 as far as jaw_open). Lip-sync opens the mouth with
        jaw_open only, so this is what it learns from and is scored against."""
        from .solver import rig_for_reference

        reference = self.landmarks[self.reference_frame]
        rig = rig_for_reference(reference)
        mouth = rig.mouth_opening()
        parted = np.zeros(len(CHANNEL_NAMES))
        parted[CHANNEL_INDEX["lips_part"]] = 1.0
        lips_rate = lm.signed_lip_gap(rig.targets(parted)) - mouth.gap
        jaw, lips = (self.motion.values[:, self.motion.channels.index(name)].astype(np.float64)
                     for name in ("jaw_open", "lips_part"))
        # The rig is linear in each sign of a channel: the gap each frame's jaw_open and lips_part make.
        gap = mouth.gap + np.where(jaw >= 0, jaw * mouth.opens, jaw * mouth.closes) + lips * lips_rate
        return np.clip(mouth.jaw_for(gap / mouth.opens), -1.0, 1.0)  # opens > 0: the jaw swings 0.15 rad or more


def motion_from_landmarks(landmarks: np.ndarray, fps: float, reference: str | int = "first",
                          smoothing: OneEuroSettings | None = SMOOTHING_LEVELS[DEFAULT_SMOOTHING],
                          max_gap_s: float = DEFAULT_MAX_GAP_S, progress: Progress | None = None,
                          body_values: np.ndarray | None = None) -> Capture:
    """Solve, fill gaps and smooth tracked landmarks (frames x 478 x 3, NaN where no face), with the body
    channels from `body_values` (track_body's, for the same reference frame) where given."""
    reference_frame = choose_reference(landmarks, reference)
    raw, errors = solve_landmarks(landmarks, reference_frame, progress)
    raw = press_touching_lips(raw, landmarks)
    runs = missing_runs(np.isfinite(raw).all(axis=1))
    warnings = describe_gaps(runs, fps, max_gap_s)
    filled = fill_gaps(raw)
    body_followed = body_values is not None
    if body_values is not None:
        from .body_capture import BODY_CHANNELS, SATURATED_FRAMES, saturated_share

        columns = [CHANNEL_INDEX[name] for name in BODY_CHANNELS]
        saturated = saturated_share(body_values)
        if saturated > SATURATED_FRAMES:
            warnings.append(f"the body hit its limits in {saturated:.0%} of the frames (hands or a laugh in front of "
                            "the shoulders?): it is left at rest")
            body_followed = False
            raw[:, columns] = filled[:, columns] = 0.0
        else:
            lost = ~np.isfinite(body_values).all(axis=1)
            raw[:, columns] = body_values
            filled[:, columns] = 0.0 if lost.all() else fill_gaps(body_values)
            if lost.mean() > 0.1:
                warnings.append(f"the body was lost in {int(lost.sum())} of {len(lost)} frames; its channels are "
                                "interpolated there")
    values = smooth_channels(filled, CHANNEL_NAMES, fps, smoothing)
    values, clamp_warnings = _clamped(values)
    motion = Motion.from_full(values.astype(np.float32), fps)
    return Capture(motion, reference_frame, landmarks, raw, errors, runs, warnings + clamp_warnings,
                   body_followed=body_followed)


def capture_video(path: str | Path, reference: str | int = "first",
                  smoothing: OneEuroSettings | None = SMOOTHING_LEVELS[DEFAULT_SMOOTHING],
                  max_gap_s: float = DEFAULT_MAX_GAP_S, face_index: int = 0,
                  progress: Progress | None = None, body: bool = True) -> Capture:
    """Capture the motion of the face in a video file (see the module docstring); `body=False` leaves the
    body channels at rest without reading the video a second time."""
    if isinstance(reference, int) or (isinstance(reference, str) and reference.isdigit()):
        # A frame number past the video's end is refused before the video is tracked (minutes, for a long one),
        # as far as its container says how long it is; choose_reference has the last word.
        reader, info = open_video(path)
        reader.close()
        if info.frame_count_estimate is not None and int(reference) > info.frame_count_estimate:
            raise UsageError(f"Reference frame {int(reference)} is outside the video (about "
                             f"{info.frame_count_estimate} frames, numbered from 0).")
    landmarks, info = track_video(path, face_index, progress)
    if not np.isfinite(landmarks).all(axis=(1, 2)).any():
        if face_index > 0:  # the faces are numbered in each frame, largest first
            raise NoFaceError(f"No frame of '{path}' ({len(landmarks)} frames) shows a face number {face_index} "
                              f"(numbered from 0, largest first): choose a lower --face.")
        raise NoFaceError(f"No face found in any of the {len(landmarks)} frames of '{path}'. Use a video where "
                          "one face is clearly visible, at least about 64 pixels wide.")
    reference_frame = choose_reference(landmarks, reference)
    with_face = np.isfinite(landmarks).all(axis=(1, 2))
    body_values = (track_body(path, reference_frame, landmarks[reference_frame], with_face, progress)
                   if body else None)
    if body_values is not None and len(body_values) != len(landmarks):
        body_values = None  # the container changed its mind about its length between readings
    return motion_from_landmarks(landmarks, info.fps, reference_frame, smoothing, max_gap_s, progress, body_values)


def _clamped(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Values clipped into each channel's range, with a warning per channel that went outside."""
    warnings = []
    out = values.copy()
    for index, channel in enumerate(CHANNELS):
        column = out[:, index]
        outside = (column < channel.minimum) | (column > channel.maximum)
        if outside.any():
            warnings.append(f"{channel.name}: {int(outside.sum())} frame(s) beyond the channel's range "
                            f"{channel.minimum:g}..{channel.maximum:g} {channel.unit}, clamped")
            np.clip(column, channel.minimum, channel.maximum, out=column)
    return out, warnings


# ---------------------------------------------------------------- retargeting


RETARGET_GROUPS = ("pose", "eyes", "brows", "mouth", "body")


def retarget(motion: Motion, strengths: Mapping[str, float]) -> Motion:
    """Scale each group's channels about their defaults: {"mouth": 0.7} makes speech 30% smaller.

    Groups: pose, eyes (blinks and gaze), brows, mouth (jaw, smile, pucker, wide, lips_part), body (breathing,
    shrugs, lean, turn).
    Results are clamped into each channel's range.
    """
    values = motion.values.astype(np.float64).copy()
    for group, factor in strengths.items():
        _check_strength(group, factor)
        for name in GROUPS[group]:
            if name in motion.channels:
                column = motion.channels.index(name)
                channel = CHANNELS[CHANNEL_INDEX[name]]
                scaled = channel.default + factor * (values[:, column] - channel.default)
                values[:, column] = np.clip(scaled, channel.minimum, channel.maximum)
    return Motion(motion.fps, motion.channels, values.astype(np.float32))


def _check_strength(group: str, factor: float) -> None:
    if group not in RETARGET_GROUPS:
        raise EnlivenError(f"Unknown channel group '{group}'; groups are: {', '.join(RETARGET_GROUPS)}.")
    if not (math.isfinite(factor) and factor >= 0):
        raise EnlivenError(f"Strength for '{group}' must be a number >= 0, got {factor:g}.")


def parse_strengths(items: list[str] | None) -> dict[str, float]:
    """["pose=0.5", "mouth=1.2"] -> {"pose": 0.5, "mouth": 1.2}, checked (before any slow work)."""
    strengths = {}
    for item in items or []:
        group, _, number = item.partition("=")
        try:
            strengths[group.strip()] = float(number)
        except ValueError:
            raise EnlivenError(f"--strength expects GROUP=FACTOR such as mouth=0.8, got '{item}'.") from None
        _check_strength(group.strip(), strengths[group.strip()])
    return strengths


# ---------------------------------------------------------------- command line


def add_commands(subparsers) -> None:
    """Register `enliven capture` on the command line's subparsers."""
    parser = subparsers.add_parser(
        "capture", help="turn a video of a face (or a Live Link Face CSV) into a motion file",
        description="Capture a performance as motion channels (editable keyframes). From a video: each frame's "
                    "face is tracked and solved against a neutral reference frame, then smoothed. From an iPhone: "
                    "a Live Link Face CSV is mapped through the ARKit columns of the channel table.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("video", nargs="?", type=Path, help="video file (MP4, MOV, MKV, AVI, WebM...)")
    source.add_argument("--livelink", type=Path, metavar="CSV", help="Live Link Face CSV instead of a video")
    parser.add_argument("--out", type=Path, required=True, metavar="MOTION", help="motion file to write (.json or .csv)")
    parser.add_argument("--reference", default="first", metavar="auto|first|N",
                        help="the neutral frame channels are measured from: 'first' (default), 'auto' (the "
                             "clip's most neutral frame) or a frame number counted from 0")
    parser.add_argument("--smooth", choices=tuple(SMOOTHING_LEVELS), default=None,
                        help=f"temporal smoothing (One-Euro filter); default '{DEFAULT_SMOOTHING}' for videos, "
                             "'none' for Live Link CSV")
    normal = SMOOTHING_LEVELS[DEFAULT_SMOOTHING]
    parser.add_argument("--min-cutoff", type=float, metavar="HZ",
                        help=f"filter cutoff for still motion: lower is smoother (normal: {normal.min_cutoff:g})")
    parser.add_argument("--beta", type=float, metavar="B",
                        help=f"how much fast motion escapes smoothing: higher keeps quick moves sharper "
                             f"(normal: {normal.beta:g})")
    parser.add_argument("--max-gap", type=number_in(0.0, 3600.0, what="a number of seconds"),
                        default=DEFAULT_MAX_GAP_S, metavar="SECONDS",
                        help=f"report frames without a face longer than this (default {DEFAULT_MAX_GAP_S:g} s); "
                             "all gaps are interpolated")
    parser.add_argument("--strength", action="append", metavar="GROUP=FACTOR",
                        help="scale a channel group for another face: pose, eyes, brows, mouth or body, "
                             "e.g. --strength mouth=0.7 (repeatable)")
    parser.add_argument("--face", type=int, default=0, metavar="N", help="which face to follow, 0 = largest (default)")
    parser.add_argument("--no-body", dest="body", action="store_false",
                        help="leave the body channels at rest (by default, where the reference frame shows the "
                             "shoulders, breathing, shrugs, lean and turn are captured too)")
    parser.add_argument("--fps", type=float, help="frame rate of a Live Link CSV (default: from its timecodes)")
    parser.set_defaults(func=run_capture)


def run_capture(args: argparse.Namespace) -> int:
    from .arguments import check_motion_path, usable_fps
    from .livelink import load_livelink_csv
    from .shared.motion import save_motion

    # Every argument is checked before the video is tracked (minutes for a long one); a bad one is exit 2.
    check_motion_path(args.out)
    fps = None if args.fps is None else usable_fps(args.fps)
    try:
        strengths = parse_strengths(args.strength)
    except EnlivenError as error:
        raise UsageError(error.message) from None
    default_level = "none" if args.livelink else DEFAULT_SMOOTHING
    try:
        smoothing = smoothing_settings(args.smooth or default_level, args.min_cutoff, args.beta)
    except ValueError as error:
        raise UsageError(str(error)) from None
    reference = _reference_argument(args.reference)

    if args.livelink:
        motion = load_livelink_csv(args.livelink, fps)
        if smoothing is not None:
            motion = Motion(motion.fps, motion.channels,
                            smooth_channels(motion.values, motion.channels, motion.fps, smoothing))
        summary = f"{motion.frame_count} frames at {motion.fps:g} fps from {args.livelink}"
        warnings: list[str] = []
    else:
        progress = _progress_bar(args.video)
        capture = capture_video(args.video, reference, smoothing, args.max_gap,
                                args.face, progress=progress, body=args.body)
        motion, warnings = capture.motion, capture.warnings
        missing = sum(stop - start for start, stop in capture.missing)
        fit = np.nanmedian(capture.fit_error_px)
        summary = (f"{motion.frame_count} frames at {motion.fps:g} fps from {args.video}; reference frame "
                   f"{capture.reference_frame}; {missing} frame(s) without a face; median fit error {fit:.2f} px; "
                   + ("body followed" if capture.body_followed else "body channels at rest (no shoulders in the "
                      "reference frame, or not followed: see the warnings)" if args.body else "body channels at rest"))
    if strengths:
        motion = retarget(motion, strengths)
    for warning in warnings:
        print(f"enliven: warning: {warning}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_motion(motion, args.out)
    print(f"wrote {args.out}: {summary}")
    return 0


def _reference_argument(text: str) -> str | int:
    text = str(text).strip().lower()
    if text in ("auto", "first"):
        return text
    if re.fullmatch(r"\d+", text):
        return int(text)
    raise UsageError(f"--reference must be 'auto', 'first' or a frame number, got '{text}'.")


def _progress_bar(path: Path) -> Progress:
    """Progress bars on stderr, one per stage; the tracking total is the container's estimate."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(stage: str, done: int, total: int | None) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars[stage] = tqdm(total=total, unit="frame", desc=f"{stage} {path.name}", file=sys.stderr,
                               dynamic_ncols=True, leave=False)
        bar = bars[stage]
        bar.update(done - bar.n)
        if total is not None and done >= total:
            bar.close()

    return update
