"""Body capture: breathing, shrugs, lean and turn read from a video of the performer's upper body.

Real MediaPipe models, the real warp engine and real MP4s: the astronaut animated with known body motion
is written to a video, captured back, and the captured body channels are compared with the ones asked for.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import channel_values, run_enliven
from enliven import landmarks as lm
from enliven.body_capture import BODY_CHANNELS, PatchFollower, grey, motion_of, patches_for, solve_body
from enliven.capture import capture_video
from enliven.engines.body import BodyField
from enliven.sequence import VideoWriter
from enliven.shared.channels import CHANNEL_INDEX, default_vector
from enliven.shared.motion import load_motion

FPS = 12.0
FRAMES = 40


def _body_motion() -> np.ndarray:
    """Every channel at rest for 3 frames, then breathing, a lean, a turn and a shrug of each shoulder in
    turn, each at its own pace (full channel vectors, table order). The head stays still: on this photo
    Pose's shoulder joints lie on the suit's collar ring, which the head's own region carries along, so a
    head turn would move the shoulders' patches (the next test turns the head over a still body)."""
    t = np.arange(FRAMES)
    ramp = np.clip((t - 3) / 6, 0, 1)
    motion = np.tile(default_vector().astype(np.float64), (FRAMES, 1))
    motion[:, CHANNEL_INDEX["breathing"]] = 0.8 * ramp * np.sin(2 * np.pi * t / 16)
    motion[:, CHANNEL_INDEX["torso_lean"]] = 4.0 * ramp * np.sin(2 * np.pi * t / 40)
    motion[:, CHANNEL_INDEX["torso_turn"]] = 15.0 * ramp * np.sin(2 * np.pi * t / 28)
    motion[:, CHANNEL_INDEX["shrug_l"]] = 0.8 * np.sin(np.pi * np.clip((t - 8) / 10, 0, 1))
    motion[:, CHANNEL_INDEX["shrug_r"]] = -0.7 * np.sin(np.pi * np.clip((t - 22) / 10, 0, 1))
    return motion


@pytest.fixture(scope="module")
def body_motion() -> np.ndarray:
    return _body_motion()


@pytest.fixture(scope="module")
def body_video(tmp_path_factory, animator, body_motion):
    path = tmp_path_factory.mktemp("body_capture") / "breathing.mp4"
    writer = VideoWriter(path, FPS)
    for values in body_motion:
        writer.add(animator.render(values))
    writer.close()
    return path


def _body_columns(values: np.ndarray) -> np.ndarray:
    return values[:, [CHANNEL_INDEX[name] for name in BODY_CHANNELS]]


def test_the_fit_inverts_the_engines_body_model(subject):
    field = BodyField.of(subject.body, subject.landmarks[lm.CHIN, :2], subject.image.shape)
    patches = patches_for(subject.body, subject.landmarks, subject.image.shape)
    assert len(patches.centres) == 3  # both shoulders and the chest
    asked = np.array([0.5, 0.3, -0.4, 4.0, 12.0])
    moved = field.forward(patches.centres - field.origin, motion_of(asked))
    assert np.allclose(solve_body(field, patches.centres, moved), asked, atol=[0.02, 0.02, 0.02, 0.05, 0.2])
    # a lost patch is left out; all lost is no answer
    assert np.isnan(solve_body(field, patches.centres, np.full_like(moved, np.nan))).all()


def test_patches_are_followed_to_half_a_pixel_and_far_away(astronaut, subject):
    patches = patches_for(subject.body, subject.landmarks, astronaut.shape)
    follower = PatchFollower(grey(astronaut), patches)
    # The whole picture sliding 1.3 px a frame (a slow sway): after 30 frames the patches are 39 px away,
    # further than half their side, and still found where they are.
    for step in range(1, 31):
        shift = np.array([1.3 * step, -0.4 * step])
        moved_picture = cv2.warpAffine(astronaut, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]),
                                       astronaut.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
        moved = follower(grey(moved_picture))
        assert np.abs(moved - shift).max() < 0.5, (step, moved, shift)
    assert np.abs(shift).max() > patches.side / 2


def test_capture_reads_breathing_shrugs_lean_and_turn_from_the_video(body_video, body_motion):
    capture = capture_video(body_video, smoothing=None)
    assert capture.body_followed
    got, asked = _body_columns(capture.motion.full()), _body_columns(body_motion)
    assert np.abs(got[:3]).max() < 0.1  # at rest before the motion starts
    for index, name in enumerate(BODY_CHANNELS):
        correlation = np.corrcoef(got[:, index], asked[:, index])[0, 1]
        gain = (got[:, index] @ asked[:, index]) / (asked[:, index] @ asked[:, index])
        # (measured: r 0.79-0.94, gain 0.77-1.3; the channels overlap, a shrug lifts the chest a little)
        assert correlation > 0.7 and 0.6 < gain < 1.5, (name, correlation, gain)
    # the face stays where it was
    assert np.abs(capture.motion.full()[:, CHANNEL_INDEX["head_yaw"]]).max() < 3.0


def test_a_still_body_under_a_moving_head_stays_at_rest(tmp_path, animator):
    """Talking and turning the head while the body is still: no breathing, shrug or lean is invented."""
    path = tmp_path / "talking.mp4"
    writer = VideoWriter(path, FPS)
    t = np.arange(30)
    for frame in t:
        writer.add(animator.render(channel_values(head_yaw=12 * np.sin(2 * np.pi * frame / 15),
                                                  head_pitch=6 * np.sin(2 * np.pi * frame / 10),
                                                  jaw_open=0.6 * max(0.0, np.sin(2 * np.pi * frame / 6)))))
    writer.close()
    body = _body_columns(capture_video(path, smoothing=None).motion.full())
    # breathing 1 lifts the shoulders by 5 % of their width; 0.2 is a pixel and a half here
    assert np.abs(body[:, :3]).max() < 0.2
    assert np.abs(body[:, 3]).max() < 1.0 and np.abs(body[:, 4]).max() < 4.0


def test_a_video_cropped_at_the_neck_leaves_the_body_at_rest(tmp_path, animator, subject):
    chin = int(subject.landmarks[lm.CHIN, 1])
    path = tmp_path / "neck.mp4"
    writer = VideoWriter(path, FPS)
    for frame in range(8):
        rendered = animator.render(channel_values(head_yaw=3.0 * frame, breathing=0.1 * frame))
        writer.add(np.ascontiguousarray(rendered[:chin + 16]))
    writer.close()
    capture = capture_video(path, smoothing=None)
    assert not capture.body_followed
    assert not _body_columns(capture.motion.full()).any()
    assert capture.motion.full()[-1, CHANNEL_INDEX["head_yaw"]] > 10


def test_capture_command_body_switch(body_video, tmp_path):
    with_body, without = tmp_path / "with.json", tmp_path / "without.json"
    done = run_enliven("capture", str(body_video), "--out", str(with_body), "--strength", "body=0.5")
    assert done.returncode == 0 and "body followed" in done.stdout
    done = run_enliven("capture", str(body_video), "--out", str(without), "--no-body")
    assert done.returncode == 0 and "body channels at rest" in done.stdout
    halved = _body_columns(load_motion(with_body).full())
    full = _body_columns(capture_video(body_video).motion.full())  # default smoothing, as the command
    assert np.abs(full).max(axis=0)[BODY_CHANNELS.index("torso_lean")] > 2.0
    assert np.allclose(halved, 0.5 * full, atol=1e-3)  # --strength body=0.5 halves every body channel
    assert not _body_columns(load_motion(without).full()).any()


def test_a_body_stuck_at_its_limits_is_left_at_rest(subject):
    """Hands in front of the shoulders or a laugh that shakes the picture drive the fit to the channels'
    limits (a laughing evaluation clip: 85 % of its frames, and a self-reenactment whose head flew 26 px off):
    such a body is not followed, and says so; breathing, even deep enough to touch its limit at the peaks, is."""
    from enliven.capture import motion_from_landmarks

    frames = 30
    landmarks = np.repeat(subject.landmarks[None], frames, axis=0)
    stuck = np.zeros((frames, len(BODY_CHANNELS)))
    stuck[:, 0] = np.where(np.arange(frames) % 3 == 0, 0.3, 1.0)  # breathing at its limit on two frames of three
    capture = motion_from_landmarks(landmarks, 24.0, body_values=stuck)
    assert not capture.body_followed and any("limits" in warning for warning in capture.warnings)
    assert np.abs(capture.motion.full()[:, [CHANNEL_INDEX[name] for name in BODY_CHANNELS]]).max() == 0.0
    breathing = stuck.copy()
    breathing[:, 0] = 0.6 * np.sin(np.arange(frames) / 3)
    capture = motion_from_landmarks(landmarks, 24.0, body_values=breathing)
    assert capture.body_followed and np.ptp(capture.motion.full()[:, CHANNEL_INDEX["breathing"]]) > 0.5

