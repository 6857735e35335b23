"""Old photos: their faces are found, and what the engines paint takes the photo's colours, grain and blur
(grey in, grey out; soft in, soft paint)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from enliven import landmarks as lm
from enliven.analysis import analyze_image
from enliven.artifacts import edge_strength
from enliven.animator import Animator
from enliven.engines.palette import palette_of, photo_blur, photo_grain
from enliven.shared.presets import preset_motion

from conftest import channel_values

SEPIA = np.array([1.08, 0.97, 0.78])


def grey_of(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def sepia_of(rgb: np.ndarray, grain: float = 0.0) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    noise = np.random.default_rng(1).normal(0.0, grain, grey.shape) if grain else 0.0
    return np.clip((grey + noise)[..., None] * SEPIA, 0, 255).astype(np.uint8)


def test_the_palette_tells_one_tint_from_colour(astronaut):
    # (Not exactly 0: float32 rounding of the luma weights' sum differs between CPUs, 6e-8 on one of them.)
    assert palette_of(grey_of(astronaut)).colourfulness < 1e-6
    sepia = palette_of(sepia_of(astronaut, grain=5.0))
    assert sepia.colourfulness < 0.04 and np.allclose(sepia.tint / sepia.tint[1], SEPIA / SEPIA[1], atol=0.03)
    colour = palette_of(astronaut)
    red = np.array([[200.0, 40.0, 30.0]], np.float32)
    assert np.allclose(colour.paint(red), red)  # a colour photo keeps painted colours as they are
    toned = sepia.paint(red)
    assert np.allclose(toned / toned[0, 1], SEPIA / SEPIA[1], atol=0.03)  # a sepia photo gets sepia


ENGINES = ["warp", "refine"]


@pytest.mark.parametrize("engine", ENGINES)
def test_grey_in_grey_out(astronaut, engine):
    """A black-and-white photo stays black and white through every frame of the showcase: the mouth
    cavity, teeth, lids, sclera and the neural corrections included (the cavity was dark red before)."""
    animator = Animator(analyze_image(grey_of(astronaut)), engine=engine)
    for values in preset_motion("showcase", fps=24).full()[::6]:
        frame = animator.render(values).astype(int)
        assert (frame.max(axis=2) - frame.min(axis=2)).max() <= 1


def test_a_painted_mouth_has_the_photo_s_tint_and_grain(astronaut):
    photo = sepia_of(astronaut, grain=4.0)
    subject = analyze_image(photo)
    result = Animator(subject).engine.render_with_fields(channel_values(jaw_open=1), keep_fields=False)
    frame = result.frame.astype(np.float32)
    interior = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(interior, [np.round(result.target_landmarks[list(lm.inner_lip_polygon()), :2]).astype(np.int32)], 1)
    interior = cv2.erode(interior, np.ones((5, 5), np.uint8)) > 0
    assert interior.sum() > 200
    cavity = frame[interior]
    ratio = np.median(cavity / np.maximum(cavity[:, 1:2], 1.0), axis=0)
    assert np.allclose(ratio, SEPIA / SEPIA[1], atol=0.06)
    # As grainy as the photo around it (a clean painted patch in a grainy photo looks pasted on).
    assert photo_grain(frame.astype(np.uint8), interior) >= 0.5 * photo_grain(photo)


def soft_photo(rgb: np.ndarray, blur: float, grain: float) -> np.ndarray:
    noise = np.random.default_rng(1).normal(0.0, grain, rgb.shape[:2])[..., None]
    return np.clip(cv2.GaussianBlur(rgb, (0, 0), blur) + noise, 0, 255).astype(np.uint8)


def test_a_photo_s_blur_is_read_through_its_grain(astronaut):
    head = cv2.resize(astronaut, (768, 768), interpolation=cv2.INTER_CUBIC)[0:350, 150:520]
    sharp = photo_blur(head)
    for blur in (1.5, 3.0):
        for grain in (0.0, 10.0):
            expected = np.hypot(blur, sharp)
            assert abs(photo_blur(soft_photo(head, blur, grain)) - expected) < 0.25 * expected, (blur, grain)
    assert photo_blur(soft_photo(head, 10.0, 0.0)) >= 6.0  # the softest read soft, not as having no edges
    assert photo_blur(np.full_like(head, 128)) == 0.0  # a flat region has no edges to read: it is not softened


def test_paint_in_a_soft_photo_is_as_soft_as_the_photo(astronaut):
    """A soft, grainy photo (out of focus, or a small print scanned large): the mouth opened past the photo's
    own is painted as soft as the photo's edges, not drawn crisp into it (a sharp cavity rim and sharp teeth
    in a blurred face look pasted on)."""
    photo = soft_photo(astronaut, 2.5, 4.0)
    subject = analyze_image(photo)
    result = Animator(subject).engine.render_with_fields(channel_values(jaw_open=1), keep_fields=False)
    interior = np.zeros(photo.shape[:2], np.uint8)
    cv2.fillPoly(interior, [np.round(result.target_landmarks[list(lm.inner_lip_polygon()), :2]).astype(np.int32)], 1)
    x0, y0, x1, y1 = subject.head_region
    sharpest_in_photo = edge_strength(photo)[y0:y1, x0:x1].max()
    # Painted as before, crisp, the interior's edges read 35 (the photo's sharpest 28); softened, 17.
    assert edge_strength(result.frame)[interior > 0].max() < sharpest_in_photo


def test_every_face_of_a_black_and_white_group_photo_is_found(astronaut):
    """Six people in black and white (the astronaut, 200 px a portrait): seen whole, the detector finds
    none of the grey faces; searched in quarters too, every one."""
    from enliven.analysis import detect_faces

    portrait = cv2.resize(astronaut, (200, 200), interpolation=cv2.INTER_AREA)
    group = grey_of(np.vstack([np.hstack([portrait] * 3)] * 2))
    boxes = detect_faces(group)
    assert len(boxes) == 6
    centres = sorted((round((b[1] + b[3]) / 2 // 200), round((b[0] + b[2]) / 2 // 200)) for b in boxes)
    assert centres == [(row, column) for row in range(2) for column in range(3)]
